#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests, end-to-end runs of the binary, and the
# cross-checks against llama.cpp (node-llama-cpp) and ONNX Runtime (onnxruntime-node).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${SLMOPT_BUILD_DIR:-build}
cd "$build_dir"
ctest --output-on-failure -j 2 --timeout 900 "$@"
# The hostile-input check (issue 12): a clang ASan+UBSan build of the parsers, the sanitized unit-test subset,
# the saved fuzz inputs and a short libFuzzer run per parser (scripts/sanitize.sh). In CI unless
# SLMOPT_SANITIZE=0 (its cold build is ~23 CPU-minutes; with a warm ccache only what changed); locally with
# SLMOPT_SANITIZE=1.
if { [ "${CI:-}" = true ] && [ "${SLMOPT_SANITIZE:-1}" != 0 ]; } || [ "${SLMOPT_SANITIZE:-0}" = 1 ]; then
  cd - >/dev/null
  scripts/sanitize.sh
fi
