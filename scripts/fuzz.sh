#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ (clang, ASan+UBSan, build folder build-fuzz) and runs each for
# SECONDS (default 60) over its corpus: the saved seeds and regressions of tests/fuzz/corpus/<name>/ plus a
# working corpus in build-fuzz/corpus/<name>/ that grows between runs. A crash leaves its input in
# build-fuzz/crashes/<name>/; copy it into tests/fuzz/corpus/<name>/ once fixed, and the ordinary build's
# fuzz.replay.<name> test replays it forever.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]
#   SLMOPT_FUZZ_BUILD_DIR   build folder (default: build-fuzz)
#   SLMOPT_FUZZ_JOBS        build jobs (default: nproc)
#   SLMOPT_FUZZ_TARGETS     what to build (default: fuzz_all; scripts/sanitize.sh: the parsers and sanitized tests)
#   SLMOPT_FUZZ_BUILD_ONLY=1  configure and build, run nothing
#   SLMOPT_FUZZ_SKIP_BUILD=1  run the harnesses already built (lanes of one campaign that share the folder: two
#                           builds at once in one folder would race)
#   SLMOPT_FUZZ_OPT         optimisation of a new build folder (default -O1, fast fuzzing; scripts/sanitize.sh: -O0)
#   SLMOPT_FUZZ_TMPDIR      where harnesses write each input as the file a reader opens (default /dev/shm when
#                           writable: a disk-backed /tmp costs a write and a close per execution)
#   SLMOPT_FUZZ_RUNS        stop a harness after this many executions too (default: no limit; the campaign aim
#                           of issue 12 is 10000000)
#   SLMOPT_FUZZ_PARALLEL    harnesses run at once (default 1; a long campaign: the number of cores)
#   ASAN_OPTIONS           appended to the script's own (later settings win). A long campaign may add
#                           malloc_context_size=2: ASan then records two frames per allocation instead of 30, 10-14 %
#                           more executions; a finding's input is saved, and replaying it without the option gives
#                           the full allocation stack.
#   SLMOPT_FUZZ_MALLOC_MB   largest single allocation allowed (default 512): harness inputs are at most 128 KiB,
#                           so a bigger allocation is a header that makes slmopt allocate beyond its file's size.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
build_dir=${SLMOPT_FUZZ_BUILD_DIR:-build-fuzz}
SLMOPT_FUZZ_SETUP=1 SLMOPT_NO_NPM=1 SLMOPT_SETUP_ONLY_PACKAGES=1 scripts/setup.sh

if [ "${SLMOPT_FUZZ_SKIP_BUILD:-0}" != 1 ]; then
  # build.ninja too: scripts/test.sh may stop a background build of this folder while it is being configured.
  if [ ! -f "$build_dir/CMakeCache.txt" ] || [ ! -f "$build_dir/build.ninja" ]; then
    cmake -S . -B "$build_dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${SLMOPT_FUZZ_OPT:--O1} -gline-tables-only" -DSLMOPT_FUZZ=ON -DSLMOPT_BUILD_BENCH=OFF \
      -DSLMOPT_WERROR="$([ "${CI:-}" = true ] && echo ON || echo OFF)" >/dev/null
  fi
  # shellcheck disable=SC2086  # a list of targets
  cmake --build "$build_dir" -j "${SLMOPT_FUZZ_JOBS:-$(nproc)}" --target ${SLMOPT_FUZZ_TARGETS:-fuzz_all}
fi
[ "${SLMOPT_FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

harnesses=("$@")
if ((${#harnesses[@]} == 0)); then
  for src in tests/fuzz/*_fuzz.cpp; do
    name=$(basename "$src" _fuzz.cpp)
    # SLMOPT_FUZZ_TARGETS=fuzz_parsers builds every harness but the recipe one; a harness named on the command
    # line and not built still fails below.
    if [ ! -x "$build_dir/tests/fuzz/fuzz_$name" ]; then
      echo "fuzz: $name skipped: not built by SLMOPT_FUZZ_TARGETS=${SLMOPT_FUZZ_TARGETS:-fuzz_all}" >&2
      continue
    fi
    harnesses+=("$name")
  done
fi
scratch=${SLMOPT_FUZZ_TMPDIR:-}
[ -z "$scratch" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && scratch=/dev/shm
[ -n "$scratch" ] && export TMPDIR=$scratch  # tests/fuzz/fuzz_support.cpp: scratch_dir()
# One harness: its run, then its figures (or its failure) on stderr. Returns non-zero on a finding.
fuzz_one() {
  local name=$1 corpus=$build_dir/corpus/$1 crashes=$build_dir/crashes/$1 log=$build_dir/fuzz-$1.log status=0
  mkdir -p "$corpus" "$crashes"
  local dict=()
  [ -f "tests/fuzz/dict/$name.dict" ] && dict=(-dict="tests/fuzz/dict/$name.dict")
  echo "fuzz: $name for ${seconds}s" >&2
  # -max_len: every seed fits, with room to grow; no larger, since libFuzzer lets inputs grow towards it and a
  # longer input is a slower execution (a config.json past a few KiB adds nothing the parser has not seen: in a
  # 1,000 s run at 131072 the hf_config harness averaged 2,400 exec/s, from 12,000 at the start, as inputs grew
  # to 16 KiB; a build shared the cores part of that time).
  # -timeout 10: a hang (e.g. a loop over a huge count) is a finding.
  local max_len=131072
  case "$name" in
    hf_config | safetensors_index | recipe | patch) max_len=8192 ;;  # seeds up to 1.6 KiB
    safetensors) max_len=32768 ;;                            # seeds up to 26 KiB (the bundled headers)
  esac
  if ! ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" "$build_dir/tests/fuzz/fuzz_$name" \
      "${dict[@]}" -max_total_time="$seconds" -runs="${SLMOPT_FUZZ_RUNS:--1}" -max_len="$max_len" -timeout=10 \
      -rss_limit_mb=2048 -malloc_limit_mb="${SLMOPT_FUZZ_MALLOC_MB:-512}" -print_final_stats=1 \
      -artifact_prefix="$crashes/" \
      "$corpus" "tests/fuzz/corpus/$name" >"$log" 2>&1; then
    echo "fuzz: $name FAILED, see $log and $crashes/" >&2
    tail -n 40 "$log" >&2
    status=1
  fi
  grep -aE '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^#[0-9]+[[:space:]]+DONE' "$log" | \
    sed "s/^/fuzz: $name: /" >&2 || true
  return $status
}

# SLMOPT_FUZZ_PARALLEL harnesses at a time (each is one process on one core), each waited for by its pid, oldest
# first; any failing harness fails the run.
parallel=${SLMOPT_FUZZ_PARALLEL:-1}
status=0
pids=()
for name in "${harnesses[@]}"; do
  if ((${#pids[@]} >= parallel)); then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
  fuzz_one "$name" &
  pids+=($!)
done
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
exit $status
