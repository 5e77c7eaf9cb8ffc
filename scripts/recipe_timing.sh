#!/usr/bin/env bash
# The example recipe (examples/llama-5m-kjv.recipe.yaml, the one scripts/demo.sh runs) as one `slmopt run` against
# the same steps as separate commands: the build file `slmopt run --emit ninja` writes, run by `ninja -j1`, has one
# slmopt process per stage and target (prune, three quantize targets, manifest) — each loads the model, calibrates
# and evaluates again, as a shell script of separate commands would. Prints wall, user and system seconds of each
# (children included), the load average before and after (a figure on a busy machine is not a quiet-machine
# figure), and checks that both ways wrote the same artifacts.
#
#   scripts/recipe_timing.sh [BUILD_DIR] [-t THREADS]     (default build/, slmopt's default thread count)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
slmopt=$build/tools/slmopt/slmopt
[ -x "$slmopt" ] || { echo "recipe_timing: no $slmopt (build first)" >&2; exit 2; }
command -v ninja >/dev/null || { echo "recipe_timing: ninja not installed (apt-get install ninja-build)" >&2; exit 2; }
recipe=examples/llama-5m-kjv.recipe.yaml
work=$(mktemp -d "${TMPDIR:-/tmp}/recipe-timing.XXXXXX")
trap 'rm -rf "$work"' EXIT

TIMEFORMAT='%R %U %S'
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)   cores: $(nproc)"
one=$({ time "$slmopt" -q "$@" run "$recipe" -o "$work/one" >/dev/null 2>"$work/one.log"; } 2>&1) ||
  { cat "$work/one.log" >&2; exit 1; }
"$slmopt" -q "$@" run "$recipe" -o "$work/sep" --emit ninja >/dev/null
sep=$({ time ninja -j1 -f "$work/sep/build.ninja" >"$work/sep.log" 2>&1; } 2>&1) || { cat "$work/sep.log" >&2; exit 1; }
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %8s %8s %8s\n' "" "wall s" "user s" "sys s"
read -r w u s <<<"$one"; printf '%-34s %8s %8s %8s\n' "one slmopt run" "$w" "$u" "$s"
read -r w u s <<<"$sep"; printf '%-34s %8s %8s %8s\n' "separate commands (ninja -j1, $(grep -c '^build ' "$work/sep/build.ninja") edges)" "$w" "$u" "$s"
same=yes
for f in $(cd "$work/one" && find . -type f \( -name '*.gguf' -o -name '*.onnx' -o -name '*.safetensors' \) | sort); do
  cmp -s "$work/one/$f" "$work/sep/$f" || { same=no; echo "differs: $f"; }
done
echo "same artifacts: $same"
