#!/usr/bin/env bash
# The main job on the bundled model: quantize llama-5m-kjv to GGUF Q4_K_M with an importance matrix from
# held-out calibration text, and report the accuracy cost on held-out evaluation text.
# Output: out/demo/llama-5m-kjv-q4_k_m.gguf and its report (.report.json, .report.md); then the example recipe
# (examples/llama-5m-kjv.recipe.yaml) into out/demo/recipe/ (artifacts, manifest.json, report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
slmopt=${SLMOPT_BUILD_DIR:-build}/tools/slmopt/slmopt
mkdir -p out/demo
# Through a file, not `| head`: with pipefail, head closing the pipe early would fail the script.
"$slmopt" inspect models/llama-5m-kjv >out/demo/inspect.txt
head -6 out/demo/inspect.txt
echo
"$slmopt" quantize models/llama-5m-kjv --type q4_k_m \
  --calib models/data/kjv-calib.txt --calib-samples 64 --calib-seqlen 256 \
  --eval models/data/kjv-eval.txt --ctx 256 --max-windows 64 \
  -o out/demo/llama-5m-kjv-q4_k_m.gguf
echo
sed -n '/## Accuracy/,/^## Tensors/p' out/demo/llama-5m-kjv-q4_k_m.report.md | sed '$d'
echo
# The whole seed workflow from one recipe: prune 25 % of the FFN channels with refit, then GPTQ Q4_K_M GGUF +
# ONNX int4 + HF GPTQ from the pruned model, each evaluated against the original, hashed into a manifest.
"$slmopt" run examples/llama-5m-kjv.recipe.yaml -o out/demo/recipe
echo
cat out/demo/recipe/report.md
