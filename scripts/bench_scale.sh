#!/usr/bin/env bash
# Scale benchmark (issue 10): slmopt against llama.cpp's quantizer on random-weight checkpoints of real shapes.
#
#   1. Generates the 1B shape (tests/scale/tinyllama-1b.json) and, unless SKIP_8B=1, the 8B shape
#      (tests/scale/llama-8b.json) as BF16 safetensors with `slmopt dev random-checkpoint`, and the 1B shape's F16
#      GGUF for llama.cpp (`slmopt compile --format gguf --type f16`: llama.cpp quantizes from an F16 GGUF, as
#      after its Python converter). All cached under $SLMOPT_SCALE_DIR (default /tmp/slmopt-scale): a second run
#      reuses them.
#   2. Q4_0, Q4_K_M, Q6_K, Q8_0 of the 1B shape, REPEATS times each (default 3), alternating the two tools:
#      slmopt from the BF16 safetensors (`slmopt quantize`, default encoder), llama.cpp from the F16 GGUF
#      (llama_model_quantize in node-llama-cpp's prebuilt libllama, through build/tests/llama_cpp_quantize_bench).
#      Each process under /usr/bin/time -v: CPU seconds (user + sys), wall seconds, peak RSS. Medians and the
#      ratios slmopt / llama.cpp.
#   3. Eval tokens/s of both on the same GGUF: scripts/bench_eval.sh when it exists (it prints its own table).
#   4. GPTQ (Q4_K_M grid, default calibration set: 128 × 512 tokens of models/data/kjv-calib.txt) of the 1B
#      shape: time and peak RSS, the time split (forward passes, Hessian products, factorisations, sweeps) from
#      the report, and the solver's share of this machine's F32 GEMM peak (build/tests/gptq_solver_study, same
#      run). SKIP_GPTQ=1 skips it (it takes long); GPTQ_SAMPLES / GPTQ_SEQLEN pick a smaller calibration set for
#      quick runs (e.g. GPTQ_SAMPLES=8 GPTQ_SEQLEN=256); GPTQ_ONLY=1 skips every other section.
#   5. AWQ (Q4_K_M grid, the same calibration set) of the 1B shape: time, peak RSS and the time split (forward
#      passes, input statistics, scale search) from the report. SKIP_AWQ=1 skips it (it takes longer than GPTQ);
#      AWQ_SAMPLES / AWQ_SEQLEN pick a smaller calibration set; AWQ_ONLY=1 skips every other section.
#   6. The 8B shape's Q4_K_M: time and peak RSS (one run).
#
# Not in CI. Builds nothing: expects build/ with slmopt and llama_cpp_quantize_bench
# (cmake -S . -B build -DSLMOPT_BUILD_BENCH=ON && cmake --build build -j2 --target slmopt llama_cpp_quantize_bench).
# SHAPE=tiny runs every section on tests/scale/tiny-llama.json instead of the 1B and 8B shapes (REPEATS 1, a small
# GPTQ calibration set, eval at CTX 128, 1 window, unless set): a check of the script, not a benchmark.
# THREADS (default 2) threads for both tools. Prints Markdown on stdout, with `uptime` (load average) first:
# figures taken on a busy machine say so.
#
#   scripts/bench_scale.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
slmopt=$build/tools/slmopt/slmopt
bench=$build/tests/llama_cpp_quantize_bench
cache=${SLMOPT_SCALE_DIR:-/tmp/slmopt-scale}
threads=${THREADS:-2}
repeats=${REPEATS:-3}
presets=(${PRESETS:-Q4_0 Q4_K_M Q6_K Q8_0})
calib_text=${CALIB_TEXT:-$root/models/data/kjv-calib.txt}
shape=${SHAPE:-1b}
case "$shape" in
  1b) config_1b=$root/tests/scale/tinyllama-1b.json config_8b=$root/tests/scale/llama-8b.json ;;
  tiny)
    config_1b=$root/tests/scale/tiny-llama.json config_8b=$config_1b
    repeats=${REPEATS:-1}
    : "${GPTQ_SAMPLES:=8}" "${GPTQ_SEQLEN:=128}" "${TOKENIZER_8B:=$root/models/tokenizers/llama2}"
    export REPEATS=$repeats CTX=${CTX:-128} WINDOWS=${WINDOWS:-1}
    ;;
  *) echo "bench_scale.sh: SHAPE='$shape': choose 1b (default) or tiny" >&2; exit 1 ;;
esac
if [ "${GPTQ_ONLY:-0}" = 1 ]; then presets=() SKIP_8B=1 SKIP_EVAL=1 SKIP_AWQ=1; fi
if [ "${AWQ_ONLY:-0}" = 1 ]; then presets=() SKIP_8B=1 SKIP_EVAL=1 SKIP_GPTQ=1; fi

for f in "$slmopt" "$bench" /usr/bin/time; do
  [ -x "$f" ] || { echo "bench_scale.sh: $f is missing (build with -DSLMOPT_BUILD_BENCH=ON first)" >&2; exit 1; }
done
command -v jq > /dev/null || { echo "bench_scale.sh: jq is required" >&2; exit 1; }
mkdir -p "$cache"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

log() { echo "bench_scale.sh: $*" >&2; }
# From a /usr/bin/time -v log: CPU seconds (user + sys), wall seconds, peak RSS in MB.
cpu_s() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$1"; }
wall_s() {
  sed -n 's/^[[:space:]]*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$1" |
    awk -F: '{ s = 0; for (i = 1; i <= NF; ++i) s = s * 60 + $i; printf "%.1f", s }'
}
rss_mb() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1" | awk '{ printf "%.0f", $1 / 1024 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# The tokenizer a generated checkpoint gets (so llama.cpp can load its GGUF): TOKENIZER_1B / TOKENIZER_8B, or the
# project's llama2 / llama3 tokenizer folders when present.
tokenizer_args() {
  local t=$1
  [ -n "$t" ] && [ -d "$t" ] && echo "--tokenizer $t"
  return 0
}

generate() {  # config dir tokenizer
  if [ ! -f "$2/config.json" ]; then
    log "generating $2 from $1"
    # shellcheck disable=SC2046
    "$slmopt" -q dev random-checkpoint "$1" -o "$2" --dtype bf16 $(tokenizer_args "$3") > /dev/null
  fi
}

name_1b=$(basename "$config_1b" .json)
ckpt_1b=$cache/$name_1b
gguf_1b=$cache/$name_1b-f16.gguf
generate "$config_1b" "$ckpt_1b" "${TOKENIZER_1B:-$root/models/tokenizers/llama2}"
if [ ! -f "$gguf_1b" ]; then
  log "F16 GGUF of $name_1b for llama.cpp"
  "$slmopt" -q compile "$ckpt_1b" --format gguf --type f16 -o "$gguf_1b" > /dev/null
fi

echo "# slmopt vs llama.cpp at scale"
echo
echo "Machine: $(nproc) cores; \`uptime\` before: $(uptime | sed 's/^ *//'). THREADS=$threads, REPEATS=$repeats."
echo "Input: $name_1b ($(jq -r '"hidden \(.hidden_size), FFN \(.intermediate_size), \(.num_hidden_layers) layers, \(.num_attention_heads)/\(.num_key_value_heads) heads, vocab \(.vocab_size)"' "$config_1b")); slmopt from BF16"
echo "safetensors, llama.cpp from the F16 GGUF of the same weights."
echo
echo "| preset | slmopt CPU s | llama.cpp CPU s | ratio | slmopt wall s | llama.cpp wall s | ratio | slmopt peak RSS MB | llama.cpp peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
for preset in ${presets[@]+"${presets[@]}"}; do
  p=$(tr '[:upper:]' '[:lower:]' <<< "$preset")
  s_cpu=() s_wall=() s_rss=() l_cpu=() l_wall=() l_rss=()
  for rep in $(seq 1 "$repeats"); do
    log "$preset run $rep/$repeats"
    /usr/bin/time -v -o "$scratch/s.txt" "$slmopt" -q -t "$threads" quantize "$ckpt_1b" --type "$preset" \
      -o "$scratch/slmopt-$p.gguf" > /dev/null
    s_cpu+=("$(cpu_s "$scratch/s.txt")") s_wall+=("$(wall_s "$scratch/s.txt")") s_rss+=("$(rss_mb "$scratch/s.txt")")
    rm -f "$scratch/slmopt-$p.gguf"
    /usr/bin/time -v -o "$scratch/l.txt" "$bench" quantize "$gguf_1b" "$scratch/llama-$p.gguf" "$preset" \
      --threads "$threads" > /dev/null
    l_cpu+=("$(cpu_s "$scratch/l.txt")") l_wall+=("$(wall_s "$scratch/l.txt")") l_rss+=("$(rss_mb "$scratch/l.txt")")
    rm -f "$scratch/llama-$p.gguf"
  done
  sc=$(median "${s_cpu[@]}") lc=$(median "${l_cpu[@]}") sw=$(median "${s_wall[@]}") lw=$(median "${l_wall[@]}")
  sr=$(median "${s_rss[@]}") lr=$(median "${l_rss[@]}")
  echo "| $preset | $sc | $lc | $(ratio "$sc" "$lc") | $sw | $lw | $(ratio "$sw" "$lw") | $sr | $lr |"
done
echo
echo "Medians of $repeats runs each; ratio = slmopt / llama.cpp (below 1: slmopt is faster)."

if [ "${SKIP_EVAL:-0}" != 1 ] && [ -x "$root/scripts/bench_eval.sh" ]; then
  echo
  echo "## Eval throughput (scripts/bench_eval.sh)"
  echo
  "$root/scripts/bench_eval.sh" "$ckpt_1b" "$gguf_1b" || log "bench_eval.sh failed"
fi

# One calibrated quantization of the 1B shape onto the Q4_K_M grid: prints its heading, CPU / wall / peak RSS and,
# from its report, the time split (jq filter $4 over .timings_s as $t and .extra as $e).
calibrated_run() {  # method samples seqlen jq-split
  local method=$1 samples=$2 seqlen=$3
  echo
  echo "## ${method^^} of $name_1b (Q4_K_M grid, $samples × $seqlen calibration tokens)"
  echo
  log "${method^^} (long)"
  echo "\`uptime\` before: $(uptime | sed 's/^ *//')"
  /usr/bin/time -v -o "$scratch/$method.txt" "$slmopt" -q -t "$threads" quantize "$ckpt_1b" --type Q4_K_M \
    --method "$method" --calib "$calib_text" --calib-samples "$samples" --calib-seqlen "$seqlen" \
    -o "$scratch/$method.gguf" --report "$scratch/$method" > /dev/null
  rm -f "$scratch/$method.gguf"
  echo
  echo "CPU $(cpu_s "$scratch/$method.txt") s, wall $(wall_s "$scratch/$method.txt") s," \
    "peak RSS $(rss_mb "$scratch/$method.txt") MB."
  if [ -f "$scratch/$method.json" ]; then
    echo
    jq -r ".timings_s as \$t | .extra as \$e | $4" "$scratch/$method.json"
  fi
}

if [ "${SKIP_GPTQ:-0}" != 1 ]; then
  calibrated_run gptq "${GPTQ_SAMPLES:-128}" "${GPTQ_SEQLEN:-512}" '
    "| forward passes s | Hessians (XᵀX) s | GPTQ factorisations s | GPTQ sweeps s | other solver s | solver GFLOP/s | peak activations MB |",
    "|---|---|---|---|---|---|---|",
    "| \($t.calibration_forward // 0 | . * 10 | round / 10) | \($t.calibration_hessians // 0 | . * 10 | round / 10) | \($t.gptq_factor // 0 | . * 10 | round / 10) | \((($t.gptq // 0) - ($t.gptq_factor // 0)) | . * 10 | round / 10) | \((($t.solver // 0) - ($t.gptq // 0)) | . * 10 | round / 10) | \($e.gptq_solver_gflops_per_s // 0 | . * 10 | round / 10) | \(($e.calib_peak_activation_bytes // 0) / 1048576 | round) |"'
  study=$build/tests/gptq_solver_study
  if [ -x "$study" ]; then
    echo
    "$study" "$threads" 4 | sed 's/^# /### /'
  else
    log "$study is missing: no share of GEMM peak (build with -DSLMOPT_BUILD_BENCH=ON)"
  fi
  echo "\`uptime\` after GPTQ: $(uptime | sed 's/^ *//')"
fi

if [ "${SKIP_AWQ:-0}" != 1 ]; then
  calibrated_run awq "${AWQ_SAMPLES:-${GPTQ_SAMPLES:-128}}" "${AWQ_SEQLEN:-${GPTQ_SEQLEN:-512}}" '
    "| forward passes s | input statistics (XᵀX) s | scale search and rounding s | peak activations MB |",
    "|---|---|---|---|",
    "| \($t.calibration_forward // 0 | . * 10 | round / 10) | \($t.calibration_hessians // 0 | . * 10 | round / 10) | \($t.solver // 0 | . * 10 | round / 10) | \(($e.calib_peak_activation_bytes // 0) / 1048576 | round) |"'
  echo "\`uptime\` after AWQ: $(uptime | sed 's/^ *//')"
fi

if [ "${SKIP_8B:-0}" != 1 ]; then
  name_8b=$(basename "$config_8b" .json)
  ckpt_8b=$cache/$name_8b
  generate "$config_8b" "$ckpt_8b" "${TOKENIZER_8B:-$root/models/tokenizers/llama3}"
  log "$name_8b Q4_K_M"
  /usr/bin/time -v -o "$scratch/e.txt" "$slmopt" -q -t "$threads" quantize "$ckpt_8b" --type Q4_K_M \
    -o "$scratch/8b.gguf" > /dev/null
  rm -f "$scratch/8b.gguf"
  echo
  echo "## $name_8b, Q4_K_M (slmopt, one run)"
  echo
  echo "CPU $(cpu_s "$scratch/e.txt") s, wall $(wall_s "$scratch/e.txt") s, peak RSS $(rss_mb "$scratch/e.txt") MB."
fi
echo
echo "\`uptime\` after: $(uptime | sed 's/^ *//')"
