#!/usr/bin/env bash
# Prompt throughput and peak RSS of `slmopt eval` against llama.cpp on the same F16 GGUF, side by side:
# 1B shape (TinyLlama: hidden 2048, FFN 5632, 22 layers, 32/4 heads, vocab 32000), ctx 512, 2 threads.
#
#   scripts/bench_eval.sh [MODEL]      MODEL: a Hugging Face folder or a .gguf file; default: a random-weight
#                                      1B-shaped checkpoint from `slmopt dev random-checkpoint`, cached in $WORK
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

model=${1:-}
if [ -z "$model" ]; then
  model=$work/tinyllama-shape
  if [ ! -f "$model/config.json" ]; then
    say "writing a random 1B-shaped checkpoint to $model"
    "$slmopt" dev random-checkpoint --shape 1b -o "$model" >&2
  fi
fi
gguf=$model
case "$model" in
  *.gguf) ;;
  *)
    gguf=$work/$(basename "$model")-f16.gguf
    if [ ! -f "$gguf" ] || [ "$model" -nt "$gguf" ]; then
      say "compiling $model to F16 GGUF: $gguf"
      "$slmopt" compile "$model" --format gguf --type f16 -o "$gguf" >&2
    fi
    ;;
esac

# Random ids below the vocabulary size, enough for WINDOWS windows.
vocab=$("$slmopt" inspect "$gguf" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(j.config?.vocab_size ?? j.vocab_size ?? 32000)})')
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
