#!/usr/bin/env bash
# End-to-end: `quantize --rotate` (and `rotate: true` in a recipe). The rotated float model is the same function:
# `compile --rotate --type f32` evaluates against the input with KL ≈ 0 and top-1 100 %, and writes an ordinary
# checkpoint (every norm weight 1). Quantized with --rotate it writes GGUF (imatrix RTN), HF GPTQ and ONNX int4
# after a prune stage in one recipe; families the fold is not valid for are refused in one line with no output.
# Small calibration (4 windows of 64 tokens) and evaluation (4 windows of 64) keep it quick.
source "$(dirname "$0")/lib.sh"

MODEL=$MODELS/llama-5m-kjv
CALIB=(--calib "$MODELS/data/kjv-calib.txt" --calib-samples 4 --calib-seqlen 64)
EVAL=(--eval "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 4)

test_rotated_float_model_is_the_same_function() {
  expect_exit 0 "$SLMOPT" compile "$MODEL" --rotate --type f32 -o "$WORK/rot.gguf" "${EVAL[@]}" --json || return 1
  python3 - "$WORK/out" "$WORK/rot.gguf" "$ROOT" <<'PY' || return 1
import json, sys
sys.path.insert(0, sys.argv[3] + "/scripts")
r = json.load(open(sys.argv[1]))
e = r["eval"]
assert e["mean_kl"] < 1e-6 and e["top1_agreement"] == 1.0, e
assert r["extra"]["rotation"]["residual"].startswith("randomised Hadamard 256"), r["extra"]
PY
  expect_exit 0 "$SLMOPT" inspect "$WORK/rot.gguf" --json || return 1
}

test_quantize_rotate_gguf_imatrix_and_gptq() {
  expect_exit 0 "$SLMOPT" quantize "$MODEL" --rotate --type q4_k_m "${CALIB[@]}" -o "$WORK/r.gguf" "${EVAL[@]}" --json || return 1
  python3 - "$WORK/out" <<'PY' || return 1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["settings"]["rotate"] is True and r["method"] == "imatrix-rtn", r["settings"]
assert any("weights rotated" in n for n in r["notes"]), r["notes"]
assert 0 < r["eval"]["mean_kl"] < 0.5, r["eval"]
PY
  expect_exit 0 "$SLMOPT" quantize "$MODEL" --rotate --method gptq --type q3_k_m "${CALIB[@]}" -o "$WORK/g.gguf" "${EVAL[@]}" --json || return 1
  grep -q '"rotate": true' "$WORK/out" || fail "no rotate setting in the GPTQ report"
}

test_recipe_prune_then_rotated_targets_in_every_format() {
  cat >"$WORK/r.yaml" <<YAML
model: $MODEL
output: out
calibration: {text: $MODELS/data/kjv-calib.txt, samples: 4, seqlen: 64}
evaluation: {text: $MODELS/data/kjv-eval.txt, ctx: 64, max-windows: 4}
stages:
  - prune: {ffn-ratio: 0.25, importance: activation}
targets:
  - {name: q4km, format: gguf, type: q4_k_m, rotate: true}
  - {name: hf4, format: hf, type: int4, method: gptq, group-size: 32, rotate: true}
  - {name: onnx4, format: onnx, type: int4, method: gptq, group-size: 32, rotate: true, rotate-seed: 3}
YAML
  expect_exit 0 "$SLMOPT" run "$WORK/r.yaml" -o "$WORK/a" --json || return 1
  python3 - "$WORK/a/manifest.json" <<'PY' || return 1
import json, sys
m = json.load(open(sys.argv[1]))
a = {x["name"]: x for x in m["artifacts"]}
assert set(a) == {"q4km", "hf4", "onnx4"}, a
for x in a.values():
    assert 0 < x["metrics"]["mean_kl"] < 1, x
PY
}

test_refused_family_is_one_line_and_no_output() {
  "$SLMOPT" dev random-checkpoint "$ROOT/tests/families/phi2/config.json" -o "$WORK/phi2" >/dev/null 2>&1 || return 1
  expect_exit 2 "$SLMOPT" quantize "$WORK/phi2" --rotate --type q8_0 -o "$WORK/phi2.gguf" || return 1
  # The random checkpoint has no tokenizer.json: the loader's warning about that is not part of the refusal.
  grep -v '^warning: .*no tokenizer.json' "$WORK/err" >"$WORK/err.kept"; mv "$WORK/err.kept" "$WORK/err"
  expect_one_error_line "cannot be rotated: LayerNorm" || return 1
  [ ! -e "$WORK/phi2.gguf" ] || fail "a refused rotation left a file"
}

run_tests
