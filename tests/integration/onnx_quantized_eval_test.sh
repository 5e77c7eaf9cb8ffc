#!/usr/bin/env bash
# End-to-end: `eval` and `inspect` accept slmopt's own int4 ONNX export (issue 12, defect 10; both refused it
# before). eval's mean NLL on the export equals ONNX Runtime's on the same file and tokens (accuracy_level 0: ORT
# computes in float) within 1e-5 relative. The ORT half is skipped, with the reason, when the npm consumers are
# not installed.
source "$(dirname "$0")/lib.sh"
KJV=$MODELS/llama-5m-kjv

test_int4_onnx_inspects_and_evaluates_like_onnx_runtime() {
  expect_exit 0 "$SLMOPT" compile "$KJV" --format onnx --type int4 --asymmetric --accuracy-level 0 \
    -o "$WORK/q4" || return 1
  expect_exit 0 "$SLMOPT" inspect "$WORK/q4/onnx/model_q4.onnx" || return 1
  grep -q "^quantization MatMulNBits int4, block 32, asymmetric" "$WORK/out" || fail "$(head -12 "$WORK/out")" || return 1
  head -c 2000 "$MODELS/data/kjv-eval.txt" >"$WORK/snip.txt"
  expect_exit 0 "$SLMOPT" tokenize "$WORK/q4/onnx/model_q4.onnx" --file "$WORK/snip.txt" --json || return 1
  python3 - "$WORK/out" "$WORK" <<'PY' || return 1
import json, sys
d = json.load(open(sys.argv[1])); ids = (d["ids"] if isinstance(d, dict) else d)[:128]
json.dump(ids, open(sys.argv[2] + "/ids.json", "w")); open(sys.argv[2] + "/ids.txt", "w").write(" ".join(map(str, ids)))
PY
  expect_exit 0 "$SLMOPT" eval "$WORK/q4/onnx/model_q4.onnx" --tokens "$WORK/ids.txt" --ctx 128 --json || return 1
  cp "$WORK/out" "$WORK/eval.json"
  local harness=$ROOT/tests/consumers/ort_harness.mjs
  if ! command -v node >/dev/null 2>&1 || [ ! -d "$ROOT/tests/consumers/node_modules/onnxruntime-node" ]; then
    echo "    SKIP (ORT half): node or tests/consumers/node_modules/onnxruntime-node is missing"
    return 0
  fi
  node "$harness" --model "$WORK/q4/onnx/model_q4.onnx" --tokens "$WORK/ids.json" 2>/dev/null | tail -1 >"$WORK/ort.json" || return 1
  python3 - "$WORK/eval.json" "$WORK/ort.json" <<'PY' || return 1
import json, sys
ours = json.load(open(sys.argv[1]))["nll"]; ort = json.load(open(sys.argv[2]))["mean_nll"]
assert abs(ours - ort) <= 1e-5 * ort, (ours, ort)
PY
}
run_tests
