#!/usr/bin/env bash
# Reproduces the quantization tables of llama-5m-kjv: slmopt's presets (without and with an importance matrix
# from kjv-calib.txt) against llama.cpp's own quantizer (llama_model_quantize in node-llama-cpp's libllama, without
# and with the same importance matrix), all from the same F32 GGUF and all scored the same way: slmopt's forward
# pass on every 256-token window of models/data/kjv-eval.txt, original (the F32 GGUF) against output — perplexity
# change, mean KL(original ‖ output), top-1 agreement (eval/perplexity.h compare_models; for slmopt's files the
# `slmopt quantize --eval` report, for llama.cpp's files llama_cpp_quantize_bench compare).
#
# Speed and memory: each quantizer runs once more on its own, without evaluation, under /usr/bin/time -v:
# throughput = F32 size of the input weights (MB) / quantize-and-write seconds (slmopt: the report's
# timings_s.quantize_and_write; llama.cpp: the llama_model_quantize call), peak RSS of the whole process. Both on
# THREADS threads (default 2).
#
# Builds nothing: expects build/ with the slmopt binary and the bench target llama_cpp_quantize_bench
# (cmake -S . -B build -DSLMOPT_BUILD_BENCH=ON && cmake --build build -j2 --target slmopt llama_cpp_quantize_bench).
# MAX_WINDOWS=K scores only the first K windows (default: all; the headings say which).
# Prints Markdown on stdout; scratch files go to $OUT (default: a temporary folder, removed at the end).
#
#   scripts/quant_table.sh [PRESET ...]      (default: all fourteen presets)
#
# KL table (issue 13): `scripts/quant_table.sh --kl [PRESET ...]` prints instead, for llama-5m-kjv and
# tinystories-656k (MODELS="..." to choose) and every preset from IQ1_S to Q4_K_M (default), file size,
# bits/weight, mean KL and top-1 on the model's eval text for: llama.cpp + imatrix, slmopt RTN + imatrix, slmopt
# GPTQ (--method gptq on the calibration text, the same importance matrix for the tensors GPTQ leaves to the
# writer) and, when `slmopt quantize --help` lists --rotate, slmopt rotation + GPTQ (and with --allocate, GPTQ with
# `--allocate size`). GPTQ_FLAGS adds options to every GPTQ column (e.g. "--act-order"). No timing here.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --kl ]; then
  shift
  exec "$root/scripts/quant_kl_table.sh" "$@"
fi
build=${BUILD:-$root/build}
slmopt=$build/tools/slmopt/slmopt
bench=$build/tests/llama_cpp_quantize_bench
model=$root/models/llama-5m-kjv
eval_text=$root/models/data/kjv-eval.txt
calib_text=$root/models/data/kjv-calib.txt
ctx=256
threads=${THREADS:-2}
max_windows=${MAX_WINDOWS:-0}
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K Q8_0 Q4_0 Q4_1 Q5_0 Q5_1)

for f in "$slmopt" "$bench" /usr/bin/time; do
  [ -x "$f" ] || { echo "quant_table.sh: $f is missing (build with -DSLMOPT_BUILD_BENCH=ON first)" >&2; exit 1; }
done
command -v jq > /dev/null || { echo "quant_table.sh: jq is required" >&2; exit 1; }

if [ -n "${OUT:-}" ]; then
  out=$OUT
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

log() { echo "quant_table.sh: $*" >&2; }
# Peak RSS in KiB from a /usr/bin/time -v log.
peak_rss() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1"; }

f32=$out/llama-5m-kjv-f32.gguf
imatrix=$out/kjv-imatrix.safetensors
log "F32 GGUF and importance matrix"
"$slmopt" -q compile "$model" --format gguf --type f32 -o "$f32" > /dev/null
# The importance matrix of --calib (defaults: 128 windows of min(context, 512) tokens, seed 0), saved once; every
# "+ imatrix" run below reads it, so calibration time stays out of the throughput figures.
"$slmopt" -q quantize "$f32" --type Q4_K_M --calib "$calib_text" --imatrix-out "$imatrix" -o "$out/calib-run.gguf" \
  --report "$out/calib-run" > /dev/null
weights=$("$bench" weight-bytes "$f32")
weight_bytes=$(jq -r .weight_bytes <<< "$weights")
weight_mb=$(jq -rn --argjson b "$weight_bytes" '$b / 1e6')

accuracy_rows=()
speed_rows=()
row() {  # preset method json(output_bytes bits_per_weight ppl_increase_percent mean_kl top1_agreement)
  accuracy_rows+=("$(jq -r --arg p "$1" --arg m "$2" \
    '"| \($p) | \($m) | \(.output_bytes / 1024 | . * 10 | round / 10) | \(.bits_per_weight * 1000 | round / 1000) | \(.ppl_increase_percent * 1000 | round / 1000) | \(.mean_kl * 100000 | round / 100000) | \(.top1_agreement * 10000 | round / 100) |"' <<< "$3")")
}

first_report=
for preset in "${presets[@]}"; do
  p=$(tr '[:upper:]' '[:lower:]' <<< "$preset")
  log "$preset"
  declare -A mbps=() rss=()
  variants=(plain imatrix)
  # llama.cpp (and slmopt) refuse these i-quant mixes without an importance matrix.
  case $preset in IQ3_XXS|IQ2_*|IQ1_*) variants=(imatrix) ;; esac
  for variant in "${variants[@]}"; do
    extra=()
    [ $variant = imatrix ] && extra=(--imatrix-in "$imatrix")
    # slmopt: timed run (no evaluation), then the evaluated run whose report gives the accuracy.
    /usr/bin/time -v -o "$out/time-slmopt-$p-$variant.txt" "$slmopt" -q -t "$threads" quantize "$f32" --type "$preset" \
      "${extra[@]}" -o "$out/slmopt-$p-$variant.gguf" --report "$out/slmopt-$p-$variant-timed" > /dev/null
    seconds=$(jq -r .timings_s.quantize_and_write "$out/slmopt-$p-$variant-timed.json")
    mbps[slmopt-$variant]=$(jq -rn --argjson mb "$weight_mb" --argjson s "$seconds" '$mb / $s * 10 | round / 10')
    rss[slmopt-$variant]=$(peak_rss "$out/time-slmopt-$p-$variant.txt")
    "$slmopt" -q -t "$threads" quantize "$f32" --type "$preset" "${extra[@]}" -o "$out/slmopt-$p-$variant.gguf" \
      --eval "$eval_text" --ctx "$ctx" --max-windows "$max_windows" --report "$out/slmopt-$p-$variant" > /dev/null
    [ -n "$first_report" ] || first_report=$out/slmopt-$p-$variant.json
    report=$(jq -c '{output_bytes: .output.bytes, bits_per_weight, ppl_increase_percent: .eval.ppl_increase_percent,
                      mean_kl: .eval.mean_kl, top1_agreement: .eval.top1_agreement}' "$out/slmopt-$p-$variant.json")
    row "$preset" "slmopt$([ $variant = imatrix ] && echo ' + imatrix')" "$report"

    # llama.cpp: the same input, the same importance matrix.
    llama_extra=()
    [ $variant = imatrix ] && llama_extra=(--imatrix "$imatrix")
    /usr/bin/time -v -o "$out/time-llama-$p-$variant.txt" "$bench" quantize "$f32" "$out/llama-$p-$variant.gguf" \
      "$preset" "${llama_extra[@]}" --threads "$threads" > "$out/llama-$p-$variant-quantize.json"
    seconds=$(jq -r .seconds "$out/llama-$p-$variant-quantize.json")
    mbps[llama-$variant]=$(jq -rn --argjson mb "$weight_mb" --argjson s "$seconds" '$mb / $s * 10 | round / 10')
    rss[llama-$variant]=$(peak_rss "$out/time-llama-$p-$variant.txt")
    report=$("$bench" compare "$f32" "$out/llama-$p-$variant.gguf" "$eval_text" "$ctx" "$max_windows")
    row "$preset" "llama.cpp$([ $variant = imatrix ] && echo ' + imatrix')" "$report"
    rm -f "$out/slmopt-$p-$variant.gguf" "$out/llama-$p-$variant.gguf"
  done
  kib_to_mib() { jq -rn --argjson k "$1" '$k / 1024 * 10 | round / 10'; }
  kib_or_na() { [ -n "$1" ] && kib_to_mib "$1" || echo n/a; }
  speed_rows+=("| $preset | ${mbps[slmopt-plain]:-n/a} | $(kib_or_na "${rss[slmopt-plain]:-}") | ${mbps[llama-plain]:-n/a} | $(kib_or_na "${rss[llama-plain]:-}") | ${mbps[slmopt-imatrix]} | $(kib_to_mib "${rss[slmopt-imatrix]}") | ${mbps[llama-imatrix]} | $(kib_to_mib "${rss[llama-imatrix]}") |")
  unset mbps rss
done

ppl=$(jq -r '.eval.ppl_original' "$first_report")
windows=$(jq -r '.eval.windows' "$first_report")
tokens=$(jq -r '.eval.tokens_scored' "$first_report")
echo "### llama-5m-kjv: accuracy (kjv-eval.txt, ctx $ctx, $windows windows$([ "$max_windows" = 0 ] && echo ' (all)' || echo " (the first $max_windows)"), $tokens tokens scored; F32 perplexity $(jq -rn --argjson x "$ppl" '$x * 1000 | round / 1000'))"
echo
echo "| preset | quantizer | size (KiB) | bits/weight | PPL Δ (%) | mean KL | top-1 (%) |"
echo "|---|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${accuracy_rows[@]}"
echo
echo "### llama-5m-kjv: quantization throughput (MB of F32 input weights per second; input $weight_mb MB) and peak RSS (MiB), $threads threads"
echo
echo "| preset | slmopt MB/s | slmopt RSS | llama.cpp MB/s | llama.cpp RSS | slmopt+imatrix MB/s | slmopt+imatrix RSS | llama.cpp+imatrix MB/s | llama.cpp+imatrix RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${speed_rows[@]}"
