#!/usr/bin/env bash
# After the artifact: the over-the-air half of the workflow on the bundled llama-5m-kjv.
#   1. plan   — the lowest-KL GGUF mix within 4.5 MB for weights + KV cache at 256 tokens, as a recipe;
#   2. run    — build it (the "new" release); the "old" release on the device is plain Q4_K_M;
#   3. compare — old vs new on held-out text (KL, top-1, perplexity, sizes, the tensors that changed);
#   4. delta / patch — what the device downloads, and the byte-identical rebuild it verifies;
#   5. generate — does the new model still talk?
# Output in out/ota/. Usage: examples/ota-update.sh (after scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
slmopt=${SLMOPT_BUILD_DIR:-build}/tools/slmopt/slmopt
out=out/ota
mkdir -p "$out"
eval_text=models/data/kjv-eval.txt

"$slmopt" plan models/llama-5m-kjv --budget-mb 4.5 --ctx 256 --text "$eval_text" --write-recipe "$out/plan.yaml"
"$slmopt" -q run "$out/plan.yaml" -o "$out/new"
new=$(ls "$out"/new/*.gguf)

"$slmopt" -q quantize models/llama-5m-kjv --type q4_k_m -o "$out/old.gguf"
"$slmopt" compare "$out/old.gguf" "$new" --text "$eval_text" --ctx 128 --max-windows 16 --report "$out/compare"

"$slmopt" delta "$out/old.gguf" "$new" -o "$out/update.slmpatch"
"$slmopt" patch "$out/old.gguf" "$out/update.slmpatch" -o "$out/device.gguf"
cmp "$new" "$out/device.gguf" && echo "device copy is byte-identical to the release"

"$slmopt" generate "$out/device.gguf" --prompt "And God said, Let there be light" -n 32
