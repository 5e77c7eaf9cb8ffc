#!/usr/bin/env bash
# Regenerates the seed inputs of tests/fuzz/corpus/<harness>/seed-* (committed; rerun when a format changes):
# make_seeds.py cuts the bundled configs, tokenizers and recipes down to size, and a tiny random Llama (32 wide,
# one layer, a 101-token byte-level BPE cut from llama-5m-kjv's) is written by slmopt itself in every format the
# harnesses read. Multi-file harnesses take their files as parts separated by "\n--slmopt-part--\n".
#
#   tests/fuzz/make_seeds.sh [SLMOPT]      (default: build/tools/slmopt/slmopt)
set -euo pipefail
cd "$(dirname "$0")/../.."
slmopt=$(realpath "${1:-build/tools/slmopt/slmopt}")
corpus=tests/fuzz/corpus
work=$(mktemp -d "${TMPDIR:-/tmp}/slmopt-seeds.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 tests/fuzz/make_seeds.py . "$corpus"

# parts OUT FILE...: the files joined with the part separator.
parts() {
  local out=$1 first=1
  shift
  : >"$out"
  for f in "$@"; do
    [ $first = 1 ] || printf '\n--slmopt-part--\n' >>"$out"
    first=0
    [ -z "$f" ] || cat "$f" >>"$out"
  done
}

mkdir -p "$work/tok"
python3 -c "import sys; sys.path.insert(0, 'tests/fuzz'); import make_seeds
open('$work/tok/tokenizer.json', 'w').write(make_seeds.reduced_tokenizer('models/llama-5m-kjv/tokenizer.json', keep=60))"
cp models/llama-5m-kjv/tokenizer_config.json "$work/tok/"
cat >"$work/llama.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
 "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 101, "max_position_embeddings": 64,
 "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "tie_word_embeddings": true}
JSON
head -c 3000 models/data/kjv-calib.txt >"$work/calib.txt"
cd "$work"
"$slmopt" -q dev random-checkpoint llama.json -o llama --dtype f16 --tokenizer tok
"$slmopt" -q compile llama --format gguf -o llama.gguf
"$slmopt" -q compile llama --format gguf --type q8_0 -o llama-q8_0.gguf
# Patches between small safetensors files (a few hundred bytes, so that an execution is not mostly hashing):
# one tensor kept (a copied piece), one changed and one added (carried), and an unchanged file (copies only).
python3 - <<'PY'
import json, struct
def write(path, tensors):
    header, blob = {}, b""
    for name, values in tensors:
        data = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": [len(values)], "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + blob)
write("old.safetensors", [("a", [float(i) for i in range(16)]), ("b", [0.5] * 8)])
write("new.safetensors", [("a", [float(i) for i in range(16)]), ("b", [0.25] * 8), ("c", [1.0, 2.0])])
PY
"$slmopt" -q delta old.safetensors new.safetensors -o changed.slmpatch >/dev/null
"$slmopt" -q delta old.safetensors old.safetensors -o same.slmpatch >/dev/null
# ONNX exports are self-contained folders (config.json, tokenizer files, onnx/model.onnx).
"$slmopt" -q compile llama --format onnx -o onnx32
"$slmopt" -q compile llama --format onnx --type f16 -o onnx16
for method in gptq awq; do
  "$slmopt" -q quantize llama --format hf --type int4 --group-size 32 --method "$method" --calib calib.txt \
    --calib-samples 2 --calib-seqlen 16 -o "$method" >/dev/null
done
"$slmopt" -q quantize llama --format hf --type int8 --group-size -1 --sym --method gptq --calib calib.txt \
  --calib-samples 2 --calib-seqlen 16 -o gptq8 >/dev/null
cd - >/dev/null

mkdir -p "$corpus"/{safetensors,hf_folder,gguf,onnx,hf_quantized,patch}
cp "$work/llama/model.safetensors" "$corpus/safetensors/seed-tiny-llama-f16"
cp "$work/gptq/model.safetensors" "$corpus/safetensors/seed-tiny-gptq"
parts "$corpus/hf_folder/seed-tiny-llama" "$work/llama/config.json" "$work/llama/model.safetensors" \
  "$work/llama/tokenizer.json"
parts "$corpus/hf_folder/seed-no-tokenizer" "$work/llama/config.json" "$work/llama/model.safetensors" ""
cp "$work/llama.gguf" "$corpus/gguf/seed-tiny-llama-f16"
cp "$work/llama-q8_0.gguf" "$corpus/gguf/seed-tiny-llama-q8_0"
parts "$corpus/onnx/seed-tiny-llama-f32" "$work/onnx32/onnx/model.onnx" ""
parts "$corpus/onnx/seed-tiny-llama-f16-config" "$work/onnx16/onnx/model_fp16.onnx" "$work/llama/config.json"
for q in gptq awq gptq8; do
  qc=""
  [ -f "$work/$q/quantize_config.json" ] && qc="$work/$q/quantize_config.json"
  parts "$corpus/hf_quantized/seed-$q" "$work/$q/config.json" "$work/$q/model.safetensors" "$qc"
done
parts "$corpus/patch/seed-changed" "$work/old.safetensors" "$work/changed.slmpatch"
parts "$corpus/patch/seed-unchanged" "$work/old.safetensors" "$work/same.slmpatch"
du -sh "$corpus"/*
