#!/usr/bin/env bash
# The hostile-input check CI runs (scripts/test.sh): in the clang ASan+UBSan build of scripts/fuzz.sh (build-fuzz),
#  1. the sanitized unit-test subset (slmopt_sanitized_tests: formats, tokenizers, JSON limits, hostile inputs),
#  2. every saved fuzz input (tests/fuzz/corpus/: seeds and past crashes) through its harness, once,
#  3. a smoke run of every parser harness for SLMOPT_FUZZ_SMOKE_SECONDS (default 5) each.
# Any sanitizer report, crash, leak of an exception other than slmopt::Error, or oversized allocation fails it.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${SLMOPT_FUZZ_BUILD_DIR:-build-fuzz}
start=$(date +%s)
SLMOPT_FUZZ_BUILD_ONLY=1 SLMOPT_FUZZ_TARGETS="fuzz_parsers slmopt_sanitized_tests" scripts/fuzz.sh
built=$(date +%s)
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$build_dir" -L sanitize --output-on-failure -j "$(nproc)"
tested=$(date +%s)
harnesses=()
for src in tests/fuzz/*_fuzz.cpp; do
  name=$(basename "$src" _fuzz.cpp)
  [ "$name" = recipe ] || harnesses+=("$name")  # recipes need every library: fuzzed locally, replayed in build/
done
scripts/fuzz.sh "${SLMOPT_FUZZ_SMOKE_SECONDS:-5}" "${harnesses[@]}"
echo "sanitize: build $((built - start)) s, sanitized tests $((tested - built)) s, fuzz smoke $(($(date +%s) - tested)) s" >&2
