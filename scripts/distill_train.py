#!/usr/bin/env python3
"""Train a student exported by `slmopt distill-export` on the teacher's soft labels, and save it as a
Hugging Face folder that slmopt (and transformers) load.

Needs only python3 + torch + numpy (Debian: python3-torch python3-numpy libopenblas0-pthread); the llama
forward pass and the safetensors reader/writer are written out here, so transformers is not needed.

Loss per position with an in-window target (window position j predicts token j+1):
    kl_weight * T^2 * KL(p_T || q_T)  +  ce_weight * CE(student logits, token j+1)
where p_T = softmax(teacher top-k log-probs / T) and q_T = softmax(student logits at the teacher's top-k
ids / T), both renormalised over the k ids (the soft labels keep only the top k). --ce-only trains the
same student with plain cross-entropy (kl_weight 0, ce_weight 1): the baseline distillation must beat.

Usage:
    distill_train.py EXPORT_DIR OUT_DIR [--steps N] [--lr X] [--batch B] [--ce-only] [--threads N]
EXPORT_DIR holds distill_recipe.json, student/ and soft_labels/ (as written by distill-export).
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as missing:  # one line and exit 4 (slmopt's "unsupported" class), not a traceback
    sys.stderr.write("distill_train.py: needs python3 with torch and numpy ({}); on Debian: apt-get install "
                     "python3-torch python3-numpy libopenblas0-pthread\n".format(missing))
    sys.exit(4)

# ---------------------------------------------------------------- safetensors (read and write, F32/F16/BF16/I32)

_NP_DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64, "BF16": np.uint16}


def read_safetensors(path):
    """{name: torch tensor} (floats as float32, BF16 widened exactly), plus the __metadata__ dict."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        sys.exit(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        sys.exit(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out, meta = {}, header.pop("__metadata__", {})
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in _NP_DTYPES:
            sys.exit(f"{path}: tensor {name} has unsupported dtype {dt}")
        begin, end = info["data_offsets"]
        if base + end > len(data) or begin > end:
            sys.exit(f"{path}: tensor {name} lies outside the file")
        arr = np.frombuffer(data, dtype=_NP_DTYPES[dt], count=(end - begin) // np.dtype(_NP_DTYPES[dt]).itemsize,
                            offset=base + begin).reshape(info["shape"])
        if dt == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            arr = arr.astype(np.float32)
        out[name] = torch.from_numpy(np.array(arr))
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: float32 torch tensor} → F32 safetensors (header keys sorted, data 8-byte aligned)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype(np.float32))
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
        f.flush()
        os.fsync(f.fileno())


def read_checkpoint(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for f in files:
        t, _ = read_safetensors(os.path.join(folder, f))
        tensors.update(t)
    return tensors

# ---------------------------------------------------------------- the llama forward pass


class Llama(torch.nn.Module):
    """Llama/Mistral/Qwen2 decoder with HF tensor names; uniform layers, RoPE in rotate_half layout."""

    def __init__(self, config, tensors):
        super().__init__()
        c = config
        self.c = c
        self.hidden = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.kv = c.get("num_key_value_heads", self.heads)
        self.hd = c.get("head_dim") or self.hidden // self.heads
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.layers = c["num_hidden_layers"]
        self.tied = bool(c.get("tie_word_embeddings", False))
        scaling = c.get("rope_scaling")
        factor = 1.0
        if scaling:
            kind = scaling.get("rope_type", scaling.get("type"))
            if kind != "linear":
                sys.exit(f"rope_scaling type {kind} is not supported by distill_train.py")
            factor = float(scaling["factor"])
        inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd))
        self.register_buffer("inv_freq", (inv / factor).float(), persistent=False)
        self.params = torch.nn.ParameterDict()
        self.names = {}
        for name, t in tensors.items():
            if name.endswith("rotary_emb.inv_freq"):
                continue
            key = name.replace(".", "__")
            self.names[name] = key
            self.params[key] = torch.nn.Parameter(t.float().clone())
        if self.tied and "lm_head.weight" in self.names:
            del self.params[self.names.pop("lm_head.weight")]

    def p(self, name):
        return self.params[self.names[name]]

    def has(self, name):
        return name in self.names

    def linear(self, x, name):
        b = name[:-len("weight")] + "bias"
        return F.linear(x, self.p(name), self.p(b) if self.has(b) else None)

    def rms(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.p(name)

    def rope(self, x, cos, sin):
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def forward(self, ids):
        B, T = ids.shape
        x = F.embedding(ids, self.p("model.embed_tokens.weight"))
        pos = torch.arange(T, dtype=torch.float32)
        ang = torch.outer(pos, self.inv_freq)
        cos = torch.cat((ang.cos(), ang.cos()), -1)[None, None]
        sin = torch.cat((ang.sin(), ang.sin()), -1)[None, None]
        mask = torch.full((T, T), float("-inf")).triu(1)
        group = self.heads // self.kv
        for l in range(self.layers):
            pre = f"model.layers.{l}."
            h = self.rms(x, pre + "input_layernorm.weight")
            q = self.linear(h, pre + "self_attn.q_proj.weight").view(B, T, self.heads, self.hd).transpose(1, 2)
            k = self.linear(h, pre + "self_attn.k_proj.weight").view(B, T, self.kv, self.hd).transpose(1, 2)
            v = self.linear(h, pre + "self_attn.v_proj.weight").view(B, T, self.kv, self.hd).transpose(1, 2)
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
            o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, self.heads * self.hd)
            x = x + self.linear(o, pre + "self_attn.o_proj.weight")
            h = self.rms(x, pre + "post_attention_layernorm.weight")
            g = self.linear(h, pre + "mlp.gate_proj.weight")
            u = self.linear(h, pre + "mlp.up_proj.weight")
            x = x + self.linear(F.silu(g) * u, pre + "mlp.down_proj.weight")
        x = self.rms(x, "model.norm.weight")
        head = self.p("model.embed_tokens.weight") if self.tied else self.p("lm_head.weight")
        return F.linear(x, head)

    def state(self):
        return {name: self.params[key] for name, key in self.names.items()}

# ---------------------------------------------------------------- soft labels


def load_labels(labels_dir):
    manifest = json.load(open(os.path.join(labels_dir, "soft_labels.json")))
    if manifest.get("format") != "slmopt-soft-labels" or manifest.get("version") != 1:
        sys.exit(f"{labels_dir}: not a version-1 slmopt soft-label export")
    k = manifest["top_k"]
    windows = []  # (ids [L], topk ids [L, k], topk log-probs [L, k])
    for shard in manifest["shards"]:
        t, _ = read_safetensors(os.path.join(labels_dir, shard["file"]))
        ids, lengths = t["input_ids"], t["window_lengths"]
        top_ids, top_lp = t["topk_ids"], t["topk_logprobs"].float()
        if top_ids.shape != (ids.shape[0], k) or int(lengths.sum()) != ids.shape[0]:
            sys.exit(f"{shard['file']}: shapes disagree with the manifest")
        start = 0
        for n in lengths.tolist():
            windows.append((ids[start:start + n].long(), top_ids[start:start + n].long(), top_lp[start:start + n]))
            start += n
    if len(windows) != manifest["windows"]:
        sys.exit(f"{labels_dir}: {len(windows)} windows, the manifest says {manifest['windows']}")
    return manifest, windows


def batch(windows, picks):
    """Pads to the longest window; mask marks positions whose next token is inside the window."""
    T = max(windows[i][0].shape[0] for i in picks)
    k = windows[picks[0]][1].shape[1]
    ids = torch.zeros(len(picks), T, dtype=torch.long)
    top_ids = torch.zeros(len(picks), T, k, dtype=torch.long)
    top_lp = torch.zeros(len(picks), T, k)
    mask = torch.zeros(len(picks), T, dtype=torch.bool)
    for b, i in enumerate(picks):
        w_ids, w_top, w_lp = windows[i]
        n = w_ids.shape[0]
        ids[b, :n], top_ids[b, :n], top_lp[b, :n] = w_ids, w_top, w_lp
        mask[b, :n - 1] = True
    return ids, top_ids, top_lp, mask


def losses(logits, ids, top_ids, top_lp, mask, temperature):
    targets = ids[:, 1:]
    m = mask[:, :-1]
    z = logits[:, :-1]
    ce = F.cross_entropy(z[m], targets[m])
    student_k = torch.gather(z, -1, top_ids[:, :-1])[m] / temperature
    teacher_k = top_lp[:, :-1][m] / temperature
    p_log = teacher_k.log_softmax(-1)
    q_log = student_k.log_softmax(-1)
    kl = (p_log.exp() * (p_log - q_log)).sum(-1).mean() * temperature ** 2
    return kl, ce

# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--temperature", type=float)
    ap.add_argument("--kl-weight", type=float)
    ap.add_argument("--ce-weight", type=float)
    ap.add_argument("--ce-only", action="store_true", help="plain cross-entropy baseline (no teacher)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--dump-logits", metavar="PATH",
                    help="before training, write the student's logits for the first soft-label window to PATH "
                         "(safetensors, tensor 'logits' [T, vocab] F32) — a check of this forward pass against slmopt's")
    args = ap.parse_args()

    recipe_path = os.path.join(args.export_dir, "distill_recipe.json")
    recipe = json.load(open(recipe_path))
    if recipe.get("format") != "slmopt-distill-recipe":
        sys.exit(f"{recipe_path}: not an slmopt distillation recipe")
    loss, train = recipe["loss"], recipe["train"]
    T = args.temperature or loss["temperature"]
    kl_w = loss["kl_weight"] if args.kl_weight is None else args.kl_weight
    ce_w = loss["ce_weight"] if args.ce_weight is None else args.ce_weight
    if args.ce_only:
        kl_w, ce_w = 0.0, 1.0
    steps = train["steps"] if args.steps is None else args.steps
    if steps < 0:
        sys.exit("--steps must be >= 0")
    lr = args.lr or train["learning_rate"]
    bsz = args.batch or train["batch_windows"]
    seed = train["seed"] if args.seed is None else args.seed
    torch.set_num_threads(args.threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    student_dir = os.path.join(args.export_dir, recipe["student"])
    config = json.load(open(os.path.join(student_dir, "config.json")))
    if "hidden_size" not in config:  # e.g. a GPT2LMHeadModel student (n_embd, Conv1D weights)
        arch = (config.get("architectures") or ["this"])[0]
        sys.exit(f"{student_dir}: {arch} students are not supported here (the forward pass below is Llama's); "
                 "train it with transformers on the same soft labels")
    model = Llama(config, read_checkpoint(student_dir))
    manifest, windows = load_labels(os.path.join(args.export_dir, recipe["soft_labels"]))
    if manifest["vocab_size"] != config["vocab_size"]:
        sys.exit("the soft labels and the student have different vocabularies")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=train.get("weight_decay", 0.0))
    print(f"student: {config['num_hidden_layers']} layers, {sum(p.numel() for p in model.parameters())} "
          f"parameters; {len(windows)} windows; loss = {kl_w}*T^2*KL(T={T}) + {ce_w}*CE; {steps} steps, "
          f"lr {lr}, batch {bsz}", flush=True)
    if args.dump_logits:
        with torch.no_grad():
            logits = model(windows[0][0][None])[0]
        write_safetensors(args.dump_logits, {"logits": logits})
    start = time.time()
    for step in range(1, steps + 1):
        picks = rng.choice(len(windows), size=min(bsz, len(windows)), replace=False).tolist()
        ids, top_ids, top_lp, mask = batch(windows, picks)
        lr_now = lr * min(1.0, step / max(1, steps // 20)) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr_now
        kl, ce = losses(model(ids), ids, top_ids, top_lp, mask, T)
        total = kl_w * kl + ce_w * ce
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % args.log_every == 0 or step == steps:
            print(f"step {step:5d}  loss {total.item():.4f}  kl {kl.item():.4f}  ce {ce.item():.4f}  "
                  f"{time.time() - start:.0f}s", flush=True)

    # Save: config.json, model.safetensors (F32) and the student's tokenizer files, into a temp folder that
    # replaces out_dir only when complete.
    out = os.path.abspath(args.out_dir)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".distill-", dir=parent)
    cfg = dict(config)
    cfg["torch_dtype"] = "float32"
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(tmp, "model.safetensors"), model.state(),
                      {"format": "pt", "trained_by": "slmopt distill_train.py",
                       "loss": "ce" if kl_w == 0 else f"{kl_w}*kl+{ce_w}*ce"})
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"):
        src = os.path.join(student_dir, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(tmp, name))
    if os.path.exists(out):
        if not os.path.exists(os.path.join(out, "config.json")) and os.listdir(out):
            sys.exit(f"{out} exists and does not hold a model; refusing to replace it")
        shutil.rmtree(out)
    os.rename(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
