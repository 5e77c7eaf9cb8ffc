#!/usr/bin/env bash
# The hostile-input check CI runs (scripts/test.sh): in the clang ASan+UBSan build of scripts/fuzz.sh (build-fuzz),
#  1. the sanitized unit tests (slmopt_sanitized_tests: every unit test that needs only core, ir, io and text),
#  2. every saved fuzz input (tests/fuzz/corpus/: seeds and past crashes) through its harness, once,
#  3. a smoke run of every parser harness for SLMOPT_FUZZ_SMOKE_SECONDS (default 5) each.
# Any sanitizer report, crash, leak of an exception other than slmopt::Error, or oversized allocation fails it.
# SLMOPT_SANITIZE_BUILD_ONLY=1: build, run nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${SLMOPT_FUZZ_BUILD_DIR:-build-fuzz}
start=$(date +%s)
# -O0 when this configures the folder: the compiler's optimiser is half of an instrumented compile (13.6 s of
# CPU instead of 29.2 s for src/io/hf_tokenizer.cpp), and the runs below are short. A folder scripts/fuzz.sh made
# (-O1) is used as it is.
SLMOPT_FUZZ_OPT=${SLMOPT_FUZZ_OPT:--O0} SLMOPT_FUZZ_BUILD_ONLY=1 SLMOPT_FUZZ_TARGETS="fuzz_parsers slmopt_sanitized_tests" \
  scripts/fuzz.sh
built=$(date +%s)
[ "${SLMOPT_SANITIZE_BUILD_ONLY:-0}" = 1 ] && exit 0  # scripts/test.sh builds it while the suite runs
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$build_dir" -L sanitize --output-on-failure -j "$(nproc)"
tested=$(date +%s)
harnesses=()
for src in tests/fuzz/*_fuzz.cpp; do
  name=$(basename "$src" _fuzz.cpp)
  [ "$name" = recipe ] || harnesses+=("$name")  # recipes need every library: fuzzed locally, replayed in build/
done
# fuzz_parsers, not fuzz.sh's default fuzz_all: the recipe harness would pull every library into this build.
SLMOPT_FUZZ_TARGETS=fuzz_parsers scripts/fuzz.sh "${SLMOPT_FUZZ_SMOKE_SECONDS:-5}" "${harnesses[@]}"
echo "sanitize: build $((built - start)) s, sanitized tests $((tested - built)) s, fuzz smoke $(($(date +%s) - tested)) s" >&2
