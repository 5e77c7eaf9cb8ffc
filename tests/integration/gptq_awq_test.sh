#!/usr/bin/env bash
# End-to-end: calibrated quantization (GPTQ, AWQ) to GGUF grids, HF GPTQ/AWQ checkpoints and ONNX MatMulNBits.
source "$(dirname "$0")/lib.sh"
KJV=$MODELS/llama-5m-kjv
CAL=(--calib "$MODELS/data/kjv-calib.txt" --calib-samples 8 --calib-seqlen 128)
EV=(--eval "$MODELS/data/kjv-eval.txt" --ctx 128 --max-windows 6)

test_gptq_on_gguf_grid_reports_reconstruction_against_rtn() {
  expect_exit 0 "$SLMOPT" quantize "$KJV" --method gptq --type q4_0 "${CAL[@]}" "${EV[@]}" -o "$WORK/g.gguf"
  python3 - "$WORK/g.report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["method"] == "gptq" and r["type"] == "Q4_0"
layers = r["layer_reconstruction"]
assert len(layers) == 28, len(layers)
better = sum(l["relative_output_error"] < l["rtn_relative_output_error"] for l in layers)
assert better >= 26, f"GPTQ beat RTN on only {better} of 28 linears"
assert r["eval"]["ppl_increase_percent"] < 5 and "solver" in r["timings_s"]
PY
}

test_gptq_hf_checkpoint_reloads() {
  expect_exit 0 "$SLMOPT" quantize "$KJV" --method gptq --type int4 --group-size 128 --format hf "${CAL[@]}" -o "$WORK/hf"
  for f in config.json quantize_config.json model.safetensors tokenizer.json; do [ -s "$WORK/hf/$f" ] || fail "missing $f"; done
  grep -q '"quant_method": "gptq"' "$WORK/hf/config.json" || fail "no quantization_config"
  expect_exit 0 "$SLMOPT" eval "$WORK/hf" --text "$MODELS/data/kjv-eval.txt" --ctx 128 --max-windows 2
}

test_awq_hf_checkpoint_and_onnx() {
  expect_exit 0 "$SLMOPT" quantize "$KJV" --method awq --type int4 --format hf "${CAL[@]}" -o "$WORK/awq"
  grep -q '"quant_method": "awq"' "$WORK/awq/config.json" || fail "no awq quantization_config"
  expect_exit 0 "$SLMOPT" quantize "$KJV" --method awq --type int4 --format onnx "${CAL[@]}" "${EV[@]}" -o "$WORK/awq-onnx"
  [ -s "$WORK/awq-onnx/onnx/model_q4.onnx" ] && [ -s "$WORK/awq-onnx/tokenizer.json" ] || fail "no onnx export folder"
}

test_calibrated_methods_need_calibration_text() {
  expect_exit 2 "$SLMOPT" quantize "$KJV" --method gptq --type q4_0 -o "$WORK/n.gguf"
  expect_one_error_line "--calib"
}

test_int_grid_to_gguf_is_a_usage_error() {
  expect_exit 2 "$SLMOPT" quantize "$KJV" --method gptq --type int4 "${CAL[@]}" -o "$WORK/n.gguf"
  expect_one_error_line "format hf"
}

# --gptq-head-embed: the report lists the embedding and head with GPTQ's weighted error below round-to-nearest's,
# the file keeps the preset's types and size; the option needs GPTQ onto a GGUF preset.
test_gptq_head_embed_rounds_embedding_and_head() {
  expect_exit 0 "$SLMOPT" quantize "$KJV" --method gptq --type q4_0 --gptq-head-embed "${CAL[@]}" -o "$WORK/he.gguf"
  expect_exit 0 "$SLMOPT" quantize "$KJV" --method gptq --type q4_0 "${CAL[@]}" -o "$WORK/plain.gguf"
  [ "$(stat -c %s "$WORK/he.gguf")" -eq "$(stat -c %s "$WORK/plain.gguf")" ] || fail "file size changed"
  python3 - "$WORK/he.report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["settings"]["gptq_head_embed"] is True
layers = {l["name"]: l for l in r["layer_reconstruction"]}
assert len(layers) == 30, len(layers)
for name in ("model.embed_tokens.weight", "lm_head.weight"):
    l = layers[name]
    assert 0 < l["relative_output_error"] < l["rtn_relative_output_error"], (name, l)
types = {t["name"]: t["output_type"] for t in r["tensors"]}
assert types["model.embed_tokens.weight"] == "q4_0" and types["lm_head.weight"] == "q6_k", types
PY
  expect_exit 2 "$SLMOPT" quantize "$KJV" --type q4_0 --gptq-head-embed "${CAL[@]}" -o "$WORK/n.gguf"
  expect_one_error_line "--gptq-head-embed applies to --method gptq"
  [ ! -e "$WORK/n.gguf" ] || fail "a refused command left its output"
}

test_gptq_is_deterministic_across_threads() {
  "$SLMOPT" -t 1 quantize "$KJV" --method gptq --type q4_k_m "${CAL[@]}" -o "$WORK/t1.gguf" >/dev/null 2>&1
  "$SLMOPT" -t 2 quantize "$KJV" --method gptq --type q4_k_m "${CAL[@]}" -o "$WORK/t2.gguf" >/dev/null 2>&1
  cmp -s "$WORK/t1.gguf" "$WORK/t2.gguf" || fail "GPTQ output differs between 1 and 2 threads"
}

run_tests
