#!/usr/bin/env python3
"""Writes hostile model files (issue 12) into OUT_DIR, one per class, for hostile_test.sh and the note's table.

Each is tiny, well-formed except for one field that claims something huge, wraps, nests deeply or points past
the end. Only the standard library: GGUF, safetensors and the few ONNX protobuf fields are encoded by hand.
"""
import hashlib
import json
import os
import struct
import sys

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models")


def safetensors(header, data=b""):
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + data


def llama_config(**overrides):
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 16,
              "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 4,
              "max_position_embeddings": 16, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
              "tie_word_embeddings": True}
    config.update(overrides)
    return config


# --- GGUF (v3): header, key/values, tensor infos, aligned data -------------------------------------------------
GGUF_U32, GGUF_F32, GGUF_STRING, GGUF_ARRAY, GGUF_U64 = 4, 6, 8, 9, 10


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, vtype, value):
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == GGUF_U32:
        out += struct.pack("<I", value)
    elif vtype == GGUF_U64:
        out += struct.pack("<Q", value)
    elif vtype == GGUF_F32:
        out += struct.pack("<f", value)
    elif vtype == GGUF_STRING:
        out += gguf_string(value)
    return out


def gguf(kvs, tensors, data=b"", n_tensors=None, n_kv=None):
    """tensors: (name, dims in ggml order, ggml type, offset)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors) if n_tensors is None else n_tensors,
                                len(kvs) if n_kv is None else n_kv)
    out += b"".join(kvs)
    for name, dims, ggml_type, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
    out += b"\0" * (-len(out) % 32)
    return out + data


def llama_gguf_kvs(**overrides):
    values = {"llama.block_count": (GGUF_U32, 1), "llama.embedding_length": (GGUF_U32, 8),
              "llama.context_length": (GGUF_U32, 16), "llama.feed_forward_length": (GGUF_U32, 16),
              "llama.attention.head_count": (GGUF_U32, 2), "llama.attention.head_count_kv": (GGUF_U32, 2),
              "llama.attention.layer_norm_rms_epsilon": (GGUF_F32, 1e-6), "llama.rope.freq_base": (GGUF_F32, 1e4)}
    values.update(overrides)
    return [gguf_kv("general.architecture", GGUF_STRING, "llama")] + [gguf_kv(k, t, v) for k, (t, v) in values.items()]


# --- ONNX: just the protobuf fields a ModelProto with one initializer needs ------------------------------------
def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    return key + (varint(payload) if wire == 0 else varint(len(payload)) + payload)


def onnx_model(initializer):
    graph = field(5, 2, initializer) + field(2, 2, b"g")                  # GraphProto.initializer, .name
    opset = field(2, 0, 17)                                                 # OperatorSetIdProto.version
    return field(1, 0, 8) + field(8, 2, opset) + field(7, 2, graph)        # ir_version, opset_import, graph


def onnx_initializer(name, dims, data_type=1, raw=b""):
    t = b"".join(field(1, 0, d) for d in dims) + field(2, 0, data_type) + field(8, 2, name.encode())
    return t + (field(9, 2, raw) if raw else b"")                           # raw_data


# --- slmopt patch (include/slmopt/io/model_delta.h, version 1) ---------------------------------------------------
PATCH_OLD = b"an old model file, any bytes: patch checks only its size and sha256\n" * 4


def slm_patch(new_size, pieces, count=None):
    """pieces: ("copy", offset, length) or ("carry", bytes, claimed_length or None)."""
    digest = lambda b: hashlib.sha256(b).digest()
    out = b"SLMPATCH" + struct.pack("<IIQ", 1, 0, len(PATCH_OLD)) + digest(PATCH_OLD)
    out += struct.pack("<Q", new_size) + b"\0" * 32 + struct.pack("<Q", len(pieces) if count is None else count)
    for piece in pieces:
        if piece[0] == "copy":
            _, offset, length = piece
            out += struct.pack("<BQQ", 0, offset, length) + digest(PATCH_OLD[offset:offset + length])
        else:
            _, data, claimed = piece
            out += struct.pack("<BQ", 1, len(data) if claimed is None else claimed) + digest(data) + data
    return out


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def folder(out, name, config, weights=None, tokenizer=None, extra=None):
    d = os.path.join(out, name)
    write(os.path.join(d, "config.json"), config if isinstance(config, str) else json.dumps(config))
    write(os.path.join(d, "model.safetensors"), weights if weights is not None else safetensors({}))
    if tokenizer is not None:
        write(os.path.join(d, "tokenizer.json"), tokenizer)
    for file, data in (extra or {}).items():
        write(os.path.join(d, file), data)


def gptq_weights():
    """A complete 1-layer llama checkpoint whose q_proj is GPTQ-packed with an empty qweight."""
    header, data = {}, b""

    def add(name, dtype, shape, size):
        nonlocal data
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + size]}
        data += b"\0" * size

    add("model.embed_tokens.weight", "F32", [4, 8], 128)
    add("model.norm.weight", "F32", [8], 32)
    layer = "model.layers.0."
    for norm in ("input_layernorm", "post_attention_layernorm"):
        add(layer + norm + ".weight", "F32", [8], 32)
    for proj, shape in (("self_attn.k_proj", [8, 8]), ("self_attn.v_proj", [8, 8]), ("self_attn.o_proj", [8, 8]),
                        ("mlp.gate_proj", [16, 8]), ("mlp.up_proj", [16, 8]), ("mlp.down_proj", [8, 16])):
        add(layer + proj + ".weight", "F32", shape, 4 * shape[0] * shape[1])
    q = layer + "self_attn.q_proj"
    add(q + ".qweight", "I32", [0, 8], 0)
    add(q + ".qzeros", "I32", [1, 1], 4)
    add(q + ".scales", "F16", [1, 8], 16)
    return safetensors(header, data)


def main(out):
    deep = lambda n: "[" * n + "1" + "]" * n
    # Huge counts.
    folder(out, "config-layers-2e31", llama_config(num_hidden_layers=2**31))
    tok = json.load(open(os.path.join(MODELS, "tinystories-656k", "tokenizer.json")))
    tok["added_tokens"].append({"id": 2**24 - 2, "content": "<far>", "special": True, "single_word": False,
                                "lstrip": False, "rstrip": False, "normalized": False})
    folder(out, "tokenizer-id-2e24", llama_config(vocab_size=2048, hidden_size=128, intermediate_size=384,
                                                  num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=4),
           tokenizer=json.dumps(tok))
    write(os.path.join(out, "gguf-kv-count-2e60.gguf"), gguf(llama_gguf_kvs(), [], n_kv=2**60))
    write(os.path.join(out, "gguf-tensor-count-2e60.gguf"), gguf(llama_gguf_kvs(), [], n_tensors=2**60))
    # Huge lengths.
    folder(out, "safetensors-header-2e62", llama_config(), struct.pack("<Q", 2**62) + b"{}")
    big_string = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**62) + b"general.name"
    write(os.path.join(out, "gguf-string-2e62.gguf"), big_string)
    big_array = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gguf_string("tokenizer.ggml.tokens") +
                 struct.pack("<IIQ", GGUF_ARRAY, GGUF_STRING, 2**62))
    write(os.path.join(out, "gguf-array-2e62.gguf"), big_array)
    write(os.path.join(out, "onnx-init-2e29-floats", "model.onnx"),
          onnx_model(onnx_initializer("model.embed_tokens.weight", [2**15, 2**14])))
    # Shape overflows.
    write(os.path.join(out, "gguf-tensor-2e62-elements.gguf"),
          gguf(llama_gguf_kvs(), [("token_embd.weight", [2**62], 0, 0)]))
    write(os.path.join(out, "gguf-key-length-2e62.gguf"),
          gguf(llama_gguf_kvs(**{"llama.attention.key_length": (GGUF_U64, 2**62)}), []))
    folder(out, "safetensors-shape-overflow",
           llama_config(), safetensors({"w": {"dtype": "F32", "shape": [2**32, 2**32, 4], "data_offsets": [0, 0]}}))
    gptq = llama_config(quantization_config={"quant_method": "gptq", "bits": 4, "group_size": -1, "sym": True,
                                             "desc_act": False, "checkpoint_format": "gptq"})
    folder(out, "gptq-group-minus1-empty-qweight", gptq, gptq_weights())
    # Number out of range.
    folder(out, "config-number-1e400", json.dumps(llama_config()).replace('"rope_theta": 10000.0', '"rope_theta": 1e400'))
    # Deep nesting.
    folder(out, "config-deep-1e6", json.dumps(llama_config()).replace('"hidden_size": 8', '"hidden_size": ' + deep(10**6)))
    header = ('{"w": {"dtype": "F32", "shape": ' + deep(10**6) + ', "data_offsets": [0, 4]}}').encode()
    folder(out, "safetensors-deep-shape", llama_config(), struct.pack("<Q", len(header)) + header + b"\0" * 4)
    # Offsets past the end.
    folder(out, "safetensors-offset-past-end",
           llama_config(), safetensors({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 4))
    write(os.path.join(out, "gguf-offset-past-end.gguf"),
          gguf(llama_gguf_kvs(), [("token_embd.weight", [8, 4], 0, 1 << 40)], b"\0" * 128))
    # Model patches (`slmopt patch OLD PATCH -o NEW`): a huge piece count, a carried length past the end of the
    # patch, a copy from past the end of OLD, and pieces that fall short of the size NEW claims.
    write(os.path.join(out, "patch-old.bin"), PATCH_OLD)
    write(os.path.join(out, "patch-count-2e60.slmpatch"), slm_patch(16, [("carry", b"x" * 16, None)], count=2**60))
    write(os.path.join(out, "patch-carry-2e62.slmpatch"), slm_patch(2**62, [("carry", b"x" * 16, 2**62)]))
    write(os.path.join(out, "patch-copy-past-end.slmpatch"), slm_patch(16, [("copy", 2**63, 16)]))
    write(os.path.join(out, "patch-new-size-2e62.slmpatch"), slm_patch(2**62, [("carry", b"x" * 16, None)]))


if __name__ == "__main__":
    main(sys.argv[1])
