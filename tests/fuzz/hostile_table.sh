#!/usr/bin/env bash
# Prints a Markdown table of hostile inputs → exit code, error line, wall time and peak RSS (/usr/bin/time -v):
# the files of tests/integration/hostile_inputs.py through `slmopt inspect`, and output-side cases (read-only or
# missing folders, output over the input) through `compile`, and hostile model patches through `patch`. For the
# issue-12 note; not a test.
#
#   tests/fuzz/hostile_table.sh [SLMOPT]
set -uo pipefail
cd "$(dirname "$0")/../.."
slmopt=$(realpath "${1:-build/tools/slmopt/slmopt}")
work=$(mktemp -d "${TMPDIR:-/tmp}/slmopt-hostile.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 tests/integration/hostile_inputs.py "$work/in"
cp -r models/tinystories-656k "$work/model"

row() {  # row CLASS LABEL CMD...
  local class=$1 label=$2
  shift 2
  /usr/bin/time -v -o "$work/time" timeout 120 "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  local rss wall msg
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$work/time")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time")
  # The error line when there is one (a warning may come first), else the first line that is not info.
  msg=$({ grep -m 1 'error:' "$work/err" || grep -v '^info:' "$work/err" | head -n 1; } | sed "s|$work/||g; s/|/\\\\|/g" | cut -c1-150)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$class" "$label" "$rc" "$msg" "$rss" "$wall"
}

echo "| class | input | exit | message | peak RSS (MB) | wall |"
echo "|---|---|---|---|---|---|"
cd "$work"
for f in config-layers-2e31 tokenizer-id-2e24 gguf-kv-count-2e60.gguf gguf-tensor-count-2e60.gguf; do
  row "huge count" "$f" "$slmopt" inspect "in/$f"
done
for f in safetensors-header-2e62 gguf-string-2e62.gguf gguf-array-2e62.gguf onnx-init-2e29-floats/model.onnx; do
  row "huge length" "$f" "$slmopt" inspect "in/$f"
done
for f in gguf-tensor-2e62-elements.gguf gguf-key-length-2e62.gguf safetensors-shape-overflow \
    gptq-group-minus1-empty-qweight; do
  row "shape overflow" "$f" "$slmopt" inspect "in/$f"
done
for f in patch-count-2e60 patch-carry-2e62 patch-copy-past-end patch-new-size-2e62; do
  row "model patch" "$f" "$slmopt" patch in/patch-old.bin "in/$f.slmpatch" -o new.bin
done
row "number out of range" config-number-1e400 "$slmopt" inspect in/config-number-1e400
for f in config-deep-1e6 safetensors-deep-shape; do row "deep nesting" "$f" "$slmopt" inspect "in/$f"; done
for f in safetensors-offset-past-end gguf-offset-past-end.gguf; do row "offset past the end" "$f" "$slmopt" inspect "in/$f"; done
row "read-only folder" "compile -o /proc/x.gguf" "$slmopt" compile model --format gguf -o /proc/x.gguf
row "read-only folder" "compile --format hf -o /proc/x" "$slmopt" compile model --format hf -o /proc/x
row "missing folder" "compile -o missing/a/x.gguf" "$slmopt" compile model --format gguf -o missing/a/x.gguf
row "missing folder" "compile --format onnx -o missing/b/x.onnx" "$slmopt" compile model --format onnx -o missing/b/x.onnx
"$slmopt" -q compile model --format gguf -o model.gguf >/dev/null
row "output = input" "compile model.gguf -o model.gguf" "$slmopt" compile model.gguf --format gguf -o model.gguf
row "output = input" "compile model.gguf (reloaded)" "$slmopt" inspect model.gguf
row "output = input" "compile DIR --format hf -o DIR" "$slmopt" compile model --format hf -o model
row "output = input" "compile DIR -o DIR/model.safetensors" "$slmopt" compile model --format gguf -o model/model.safetensors
row "output = input" "inspect DIR afterwards" "$slmopt" inspect model
