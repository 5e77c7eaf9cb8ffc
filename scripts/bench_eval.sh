#!/usr/bin/env bash
# Prompt throughput and peak RSS of `slmopt eval` against llama.cpp on the same F16 GGUF, side by side:
# 1B shape (TinyLlama: hidden 2048, FFN 5632, 22 layers, 32/4 heads, vocab 32000), ctx 512, 2 threads.
#
#   scripts/bench_eval.sh [CHECKPOINT [GGUF]]
#       GGUF: the F16 GGUF both tools evaluate; made from CHECKPOINT (a Hugging Face folder) with
#       `slmopt compile --format gguf --type f16` when missing. Default CHECKPOINT: the random-weight 1B shape
#       that scripts/bench_scale.sh uses ($SLMOPT_SCALE_DIR/tinyllama-1b, default /tmp/slmopt-scale, generated
#       from tests/scale/tinyllama-1b.json by `slmopt dev random-checkpoint` when missing), GGUF beside it.
#   env: SLMOPT (binary, default build/tools/slmopt/slmopt), THREADS (2), CTX (512), REPEATS (3 runs each),
#        WINDOWS (windows per slmopt run, 2), WORK (scratch folder, default /tmp/slmopt-bench-eval)
#
# slmopt: `slmopt eval --tokens` over WINDOWS windows of CTX random ids; tokens/s as eval reports it (model
# load excluded; logits of every position, as perplexity needs). llama.cpp: tests/consumers/
# llama_cpp_prompt_speed.mjs (node-llama-cpp's prebuilt library), one batch of CTX ids per run, logits of the
# last position only (llama-bench's pp512). Peak RSS: GNU time's maximum resident set for slmopt, the node
# process's maxRSS for llama.cpp (includes node itself, ~50 MB). Prints medians and the slmopt/llama.cpp ratios,
# with the load average (figures from a busy machine are not quiet-machine figures).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
slmopt=${SLMOPT:-$root/build/tools/slmopt/slmopt}
threads=${THREADS:-2}
ctx=${CTX:-512}
repeats=${REPEATS:-3}
windows=${WINDOWS:-2}
work=${WORK:-/tmp/slmopt-bench-eval}
mkdir -p "$work"

say() { printf 'bench_eval: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[ -x "$slmopt" ] || die "no slmopt binary at $slmopt (build first, or set SLMOPT)"
[ -d tests/consumers/node_modules/node-llama-cpp ] || die "node-llama-cpp is missing: run scripts/setup.sh"
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is needed for peak RSS"

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

scale_dir=${SLMOPT_SCALE_DIR:-/tmp/slmopt-scale}
model=${1:-$scale_dir/tinyllama-1b}
gguf=${2:-}
if [ -z "$gguf" ]; then
  case "$model" in
    *.gguf) gguf=$model ;;
    "$scale_dir/tinyllama-1b") gguf=$scale_dir/tinyllama-1b-f16.gguf ;;
    *) gguf=$work/$(basename "$model")-f16.gguf ;;
  esac
fi
if [ ! -f "$gguf" ]; then
  if [ ! -f "$model/config.json" ]; then
    [ "$model" = "$scale_dir/tinyllama-1b" ] || die "no checkpoint at $model"
    tokenizer=()
    [ -d models/tokenizers/llama2 ] && tokenizer=(--tokenizer models/tokenizers/llama2)
    say "generating the random 1B-shaped checkpoint $model"
    mkdir -p "$scale_dir"
    "$slmopt" -q dev random-checkpoint tests/scale/tinyllama-1b.json -o "$model" --dtype bf16 "${tokenizer[@]}" >&2
  fi
  say "compiling $model to F16 GGUF: $gguf"
  "$slmopt" -q compile "$model" --format gguf --type f16 -o "$gguf" >&2
fi

# Random ids below the vocabulary size, enough for WINDOWS windows.
vocab=$("$slmopt" inspect "$gguf" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(j.vocab_size)})')
ids=$work/ids-$ctx-$windows.txt
awk -v n=$((ctx * windows)) -v v="$vocab" 'BEGIN {s = 12345; for (i = 0; i < n; ++i) {s = (s * 1103515245 + 12345) % 2147483648; printf "%d\n", s % v}}' >"$ids"

say "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
slm_rates=() slm_rss=()
for ((r = 0; r < repeats; ++r)); do
  json=$(/usr/bin/time -f '%M' -o "$work/time.txt" "$slmopt" -t "$threads" eval "$gguf" --tokens "$ids" --ctx "$ctx" \
    --max-windows "$windows" --json)
  slm_rates+=("$(node -e 'console.log(JSON.parse(process.argv[1]).tokens_per_second)' "$json")")
  slm_rss+=("$(tail -n1 "$work/time.txt")")
  say "slmopt run $((r + 1)): ${slm_rates[-1]} tokens/s, peak RSS ${slm_rss[-1]} kB"
done

llama_json=$(SLMOPT_HARNESS_THREADS=$threads node tests/consumers/llama_cpp_prompt_speed.mjs "$gguf" "$ctx" "$repeats")
mapfile -t llama_rates < <(node -e 'for (const r of JSON.parse(process.argv[1]).tokens_per_second) console.log(r)' "$llama_json")
llama_rss=$(node -e 'console.log(JSON.parse(process.argv[1]).max_rss_kb)' "$llama_json")
say "llama.cpp runs: ${llama_rates[*]} tokens/s, peak RSS $llama_rss kB"

slm_med=$(printf '%s\n' "${slm_rates[@]}" | median)
slm_rss_med=$(printf '%s\n' "${slm_rss[@]}" | median)
llama_med=$(printf '%s\n' "${llama_rates[@]}" | median)
awk -v s="$slm_med" -v l="$llama_med" -v sr="$slm_rss_med" -v lr="$llama_rss" 'BEGIN {
  printf "%-10s %14s %14s\n", "", "tokens/s", "peak RSS MB"
  printf "%-10s %14.1f %14.0f\n", "slmopt", s, sr / 1024
  printf "%-10s %14.1f %14.0f\n", "llama.cpp", l, lr / 1024
  printf "%-10s %14.2f %14.2f\n", "ratio", s / l, sr / lr
}'
echo "model $gguf, ctx $ctx, threads $threads, medians of $repeats runs; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
