#!/usr/bin/env bash
# The KL table of issue 13 (run through `scripts/quant_table.sh --kl`, see there): per model and preset, file
# size, bits/weight, mean KL(original ‖ output) and top-1 agreement on every 256-token window of the model's eval
# text (MAX_WINDOWS=K: the first K), for llama.cpp + imatrix, slmopt RTN + imatrix, slmopt GPTQ and (when the
# binary has --rotate) slmopt rotation + GPTQ. All from the same F32 GGUF, scored by slmopt's forward pass
# (eval/perplexity.h compare_models). The importance matrix comes from the calibration text (defaults of --calib);
# GPTQ calibrates on the same text. Prints Markdown; scratch in $OUT (default: a temporary folder, removed).
#
#   scripts/quant_table.sh --kl [PRESET ...]     MODELS="llama-5m-kjv tinystories-656k" GPTQ_FLAGS="" THREADS=2
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
slmopt=$build/tools/slmopt/slmopt
bench=$build/tests/llama_cpp_quantize_bench
ctx=256
threads=${THREADS:-2}
max_windows=${MAX_WINDOWS:-0}
read -r -a models <<< "${MODELS:-llama-5m-kjv tinystories-656k}"
read -r -a gptq_flags <<< "${GPTQ_FLAGS:-}"
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ2_M IQ3_XXS IQ3_XS IQ3_S IQ3_M Q2_K Q3_K_S
                                     Q3_K_M Q3_K_L IQ4_XS Q4_0 Q4_K_S Q4_K_M)

for f in "$slmopt" "$bench"; do
  [ -x "$f" ] || { echo "quant_kl_table.sh: $f is missing (build slmopt and llama_cpp_quantize_bench first)" >&2; exit 1; }
done
command -v jq > /dev/null || { echo "quant_kl_table.sh: jq is required" >&2; exit 1; }
# The help text is read whole first: `slmopt … | grep -q` under pipefail fails whenever grep exits before slmopt
# has written everything (SIGPIPE), which silently dropped these columns.
quantize_help=$("$slmopt" quantize --help 2>&1)
rotate=no
grep -q -- '--rotate' <<< "$quantize_help" && rotate=yes
allocate=no  # a column for GPTQ with `--allocate size` (per-tensor types within llama.cpp's preset bytes)
grep -q -- '--allocate' <<< "$quantize_help" && allocate=yes

if [ -n "${OUT:-}" ]; then
  out=$OUT
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
log() { echo "quant_kl_table.sh: $*" >&2; }

cell() {  # json(output_bytes bits_per_weight mean_kl top1_agreement) → "| KiB | bpw | KL | top-1 |"
  jq -r '"| \(.output_bytes / 1024 | . * 10 | round / 10) | \(.bits_per_weight * 1000 | round / 1000) | \(.mean_kl * 100000 | round / 100000) | \(.top1_agreement * 10000 | round / 100) "' <<< "$1"
}
slmopt_json() {
  jq -c '{output_bytes: .output.bytes, bits_per_weight, mean_kl: .eval.mean_kl, top1_agreement: .eval.top1_agreement}' "$1"
}

for model_name in "${models[@]}"; do
  model=$root/models/$model_name
  case $model_name in
    llama-5m-kjv) eval_text=$root/models/data/kjv-eval.txt calib_text=$root/models/data/kjv-calib.txt ;;
    tinystories-656k) eval_text=$root/models/data/tinystories-eval.txt calib_text=$root/models/data/tinystories-calib.txt ;;
    *) echo "quant_kl_table.sh: no eval/calibration text known for $model_name" >&2; exit 1 ;;
  esac
  f32=$out/$model_name-f32.gguf
  imatrix=$out/$model_name-imatrix.safetensors
  log "$model_name: F32 GGUF and importance matrix"
  "$slmopt" -q compile "$model" --format gguf --type f32 -o "$f32" > /dev/null
  "$slmopt" -q quantize "$f32" --type Q4_K_M --calib "$calib_text" --imatrix-out "$imatrix" -o "$out/calib-run.gguf" \
    > /dev/null
  rows=()
  first_report=
  for preset in "${presets[@]}"; do
    p=$(tr '[:upper:]' '[:lower:]' <<< "$preset")
    log "$model_name $preset"
    line="| $preset "
    "$bench" quantize "$f32" "$out/llama-$p.gguf" "$preset" --imatrix "$imatrix" --threads "$threads" > /dev/null
    line+=$(cell "$("$bench" compare "$f32" "$out/llama-$p.gguf" "$eval_text" "$ctx" "$max_windows")")
    rm -f "$out/llama-$p.gguf"
    variants=(rtn gptq)
    [ $rotate = yes ] && variants+=(rotate)
    [ $allocate = yes ] && variants+=(alloc)
    for v in "${variants[@]}"; do
      case $v in
        rtn) args=(--imatrix-in "$imatrix") ;;
        gptq) args=(--method gptq --calib "$calib_text" --imatrix-in "$imatrix" "${gptq_flags[@]}") ;;
        # The matrix above is of the unrotated activations: with --rotate, slmopt measures its own on --calib.
        rotate) args=(--rotate --method gptq --calib "$calib_text" "${gptq_flags[@]}") ;;
        alloc) args=(--allocate size --method gptq --calib "$calib_text" --imatrix-in "$imatrix" "${gptq_flags[@]}") ;;
      esac
      "$slmopt" -q -t "$threads" quantize "$f32" --type "$preset" "${args[@]}" -o "$out/slmopt-$p-$v.gguf" \
        --eval "$eval_text" --ctx "$ctx" --max-windows "$max_windows" --report "$out/slmopt-$p-$v" > /dev/null
      [ -n "$first_report" ] || first_report=$out/slmopt-$p-$v.json
      line+=$(cell "$(slmopt_json "$out/slmopt-$p-$v.json")")
      rm -f "$out/slmopt-$p-$v.gguf"
    done
    rows+=("$line|")
  done
  windows=$(jq -r '.eval.windows' "$first_report")
  echo "### $model_name: mean KL / top-1 on $(basename "$eval_text") (ctx $ctx, $windows windows); load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  head="| preset | llama.cpp+imatrix KiB | bpw | KL | top-1 % | slmopt RTN+imatrix KiB | bpw | KL | top-1 % | slmopt GPTQ KiB | bpw | KL | top-1 %"
  sep="|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
  if [ $rotate = yes ]; then head+=" | rotation+GPTQ KiB | bpw | KL | top-1 %"; sep+="|---:|---:|---:|---:"; fi
  if [ $allocate = yes ]; then head+=" | GPTQ+allocate KiB | bpw | KL | top-1 %"; sep+="|---:|---:|---:|---:"; fi
  echo "$head |"
  echo "$sep|"
  printf '%s\n' "${rows[@]}"
  echo
done
