#!/usr/bin/env python3
"""Seeds for the fuzz harnesses that come from the bundled files alone (make_seeds.sh adds those slmopt writes).

  make_seeds.py REPO OUT     writes OUT/<harness>/seed-* (OUT is tests/fuzz/corpus)

Real tokenizers are megabytes; a fuzzer mutates small inputs best, so each bundled tokenizer.json is cut down to
its first 300 tokens, its first 40 merges among them (and their results), renumbered, and its added tokens, keeping every
component (normalizers, pre-tokenizers, decoders) as it is.
"""
import glob
import json
import os
import struct
import sys

SEP = b"\n--slmopt-part--\n"


def write(out, harness, name, data):
    os.makedirs(os.path.join(out, harness), exist_ok=True)
    with open(os.path.join(out, harness, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def reduced_tokenizer(path, keep=300, merges_kept=40):
    tok = json.load(open(path, encoding="utf-8"))
    model = tok["model"]
    old = model["vocab"]
    kept = {t for t, i in old.items() if i < keep}
    merges = []
    for m in model.get("merges", []):
        if len(merges) == merges_kept:
            break
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in kept and b in kept and a + b in old:
            merges.append(m)
            kept.add(a + b)
    ids = sorted(old[t] for t in kept)
    renumber = {i: n for n, i in enumerate(ids)}
    model["vocab"] = {t: renumber[i] for t, i in old.items() if t in kept}
    model["merges"] = merges
    next_id = len(ids)
    for added in tok.get("added_tokens") or []:
        if added["id"] in renumber:
            added["id"] = renumber[added["id"]]
        else:
            added["id"] = next_id
            next_id += 1
    return json.dumps(tok, ensure_ascii=False, separators=(",", ":"))


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main(repo, out):
    models = os.path.join(repo, "models")
    # config.json of every family fixture and bundled model.
    for path in sorted(glob.glob(os.path.join(repo, "tests/families/*/config.json")) +
                       glob.glob(os.path.join(models, "*/config.json"))):
        write(out, "hf_config", os.path.basename(os.path.dirname(path)), open(path, "rb").read())
    # Tokenizers (tokenizer.json + tokenizer_config.json + a text to encode).
    for path in sorted(glob.glob(os.path.join(models, "*/tokenizer.json")) +
                       glob.glob(os.path.join(models, "tokenizers/*/tokenizer.json"))):
        name = os.path.basename(os.path.dirname(path))
        config = os.path.join(os.path.dirname(path), "tokenizer_config.json")
        parts = [reduced_tokenizer(path).encode(), open(config, "rb").read() if os.path.exists(config) else b"",
                 "Hello wörld, 123 <s> \u2581x\n".encode()]
        write(out, "tokenizer", name, SEP.join(parts))
    # safetensors: every dtype slmopt reads, metadata, an empty file, an unaligned tensor.
    write(out, "safetensors", "dtypes", safetensors([
        ("a", "F32", [2, 2], struct.pack("<4f", 1, -2, 3.5, 0)), ("b", "F16", [3], b"\x00\x3c\x00\xc0\x00\x00"),
        ("c", "BF16", [1, 2], b"\x80\x3f\x00\x40"), ("d", "I8", [4], b"\x01\xff\x02\x00"),
        ("e", "I32", [2], struct.pack("<2i", 7, -7)), ("f", "I64", [1], struct.pack("<q", 1 << 40))],
        {"format": "pt"}))
    write(out, "safetensors", "empty", safetensors([]))
    write(out, "safetensors", "unaligned", safetensors([("x", "I8", [3], b"abc"), ("y", "F32", [1], b"\0\0\x80\x3f")]))
    # Sharded: an index naming two shards.
    shard1 = safetensors([("model.embed_tokens.weight", "F32", [2, 2], b"\0" * 16)], {"format": "pt"})
    shard2 = safetensors([("model.norm.weight", "F32", [2], b"\0" * 8)], {"format": "pt"})
    index = json.dumps({"metadata": {"total_size": 24}, "weight_map": {
        "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
        "model.norm.weight": "model-00002-of-00002.safetensors"}}).encode()
    write(out, "safetensors_index", "two-shards", SEP.join([index, shard1, shard2]))
    # Recipes: the bundled example.
    for path in sorted(glob.glob(os.path.join(repo, "examples/*.yaml"))):
        write(out, "recipe", os.path.basename(path), open(path, "rb").read())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
