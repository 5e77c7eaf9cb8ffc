#!/usr/bin/env bash
# Idempotent set-up: installs only the Debian packages that are missing, the npm test consumers (pinned in
# tests/consumers/package.json + package-lock.json) into tests/consumers/node_modules (git-ignored), then
# configures and builds slmopt in build/. Safe to run again: each step is skipped when already done.
#
#   SLMOPT_BUILD_DIR   build folder (default: build)
#   SLMOPT_NO_NPM=1    skip the npm consumers (they are only needed by the cross-check tests)
#   CI=true            warnings become errors (and the sanitizer/fuzz packages below are installed)
#   SLMOPT_FUZZ_SETUP=1           also install clang 14 with its sanitizer and libFuzzer runtimes (scripts/fuzz.sh)
#   SLMOPT_SETUP_ONLY_PACKAGES=1  stop after the packages (no npm, no build)
#   SLMOPT_NO_TORCH=1  skip python3-torch (only the distillation training test needs it; it then skips)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build_dir=${SLMOPT_BUILD_DIR:-build}

say() { printf 'setup: %s\n' "$*" >&2; }

packages=(build-essential cmake pkg-config git ca-certificates
  libeigen3-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libprotobuf-dev protobuf-compiler libonnx-dev libpcre2-dev libutf8proc-dev
  libgtest-dev libgmock-dev libbenchmark-dev ccache libyaml-cpp-dev ninja-build)
# The distillation proof (DistillTrainScript test: scripts/distill_train.py) needs torch. Debian's python3-torch
# 1.13 adds ~650 MB / 174 packages (~150 MB download; ~100 s of CPU to unpack on this 2-core box);
# SLMOPT_NO_TORCH=1 leaves it out, and the test then reports itself skipped with the reason.
[ "${SLMOPT_NO_TORCH:-0}" = 1 ] || packages+=(python3-torch python3-numpy libopenblas0-pthread)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
# The hostile-input build (scripts/fuzz.sh, the sanitized tests CI runs): clang's ASan/UBSan/libFuzzer runtimes.
if [ "${SLMOPT_FUZZ_SETUP:-0}" = 1 ] || [ "${CI:-}" = true ]; then packages+=(clang-14 libclang-rt-14-dev); fi
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing missing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${SLMOPT_SETUP_ONLY_PACKAGES:-0}" = 1 ] && exit 0

if [ "${SLMOPT_NO_NPM:-0}" != 1 ]; then
  consumers=tests/consumers
  stamp=$consumers/node_modules/.slmopt-installed
  if [ ! -f "$stamp" ] || [ "$consumers/package-lock.json" -nt "$stamp" ] || [ "$consumers/package.json" -nt "$stamp" ]; then
    say "installing the npm consumers (node-llama-cpp, onnxruntime-node) into $consumers/node_modules"
    # Versions are pinned by package.json and package-lock.json. --ignore-scripts/--omit=optional: no CUDA builds
    # or downloads (the CPU binaries ship in the packages). Not `npm ci`: it insists on lock entries for every
    # platform's optional prebuilt, some of which do not exist at the pinned version. --no-save keeps the lock.
    (cd "$consumers" && ONNXRUNTIME_NODE_INSTALL=skip npm install --ignore-scripts --omit=optional --no-save \
      --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$stamp"
  fi
fi

werror=OFF bench=ON
# CI: warnings are errors; the benchmark programs (no test runs them; 9 programs, ~1 CPU-minute) are left out.
[ "${CI:-}" = true ] && werror=ON bench=OFF
# Ninja (ninja-build, above) when present: it compiles any object whose headers exist while another target links,
# where Make's generator waits for each library target to finish before the next one's objects start, leaving a
# core idle at every layer's last big file (10 layers, then the test programs).
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  say "configuring $build_dir"
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSLMOPT_WERROR=$werror \
    -DSLMOPT_BUILD_BENCH=$bench >/dev/null
fi
say "building (this takes a few minutes the first time)"
cmake --build "$build_dir" -j "$(nproc)" 2>&1 | grep -Ev '^\[ *[0-9]+(%|/[0-9]+)\]|^Consolidate|^-- ' || true
test -x "$build_dir/tools/slmopt/slmopt" || { say "build failed"; exit 1; }
say "ready: $root/$build_dir/tools/slmopt/slmopt"
