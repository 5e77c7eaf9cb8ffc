#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests, end-to-end runs of the binary, and the
# cross-checks against llama.cpp (node-llama-cpp) and ONNX Runtime (onnxruntime-node).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${SLMOPT_BUILD_DIR:-build}
cd "$build_dir"
ctest --output-on-failure -j 2 --timeout 900 "$@"
