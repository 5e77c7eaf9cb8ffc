#!/usr/bin/env bash
# Issue 12, defect 7: a model whose widths do not divide the group size (hidden 64, FFN 172, as small llama-style
# checkpoints have) quantizes to int4 GPTQ/AWQ/RTN for --format hf and onnx. ONNX MatMulNBits ends a row that is
# not a whole number of groups in a shorter group (ORT pads it), as `compile --type int4` does; a HF checkpoint
# keeps in float each linear its packing cannot hold (GPTQ: out·4 or in·4 not whole 32-bit words; AWQ: out % 8 or
# whole groups) and says so in quantization_config (so transformers/gptqmodel/vLLM leave them unconverted) and in
# the report; --keep is honoured on integer grids; a model the format cannot hold at all is refused in one line
# before calibrating. ORT runs the ONNX exports in tests/consumers/onnx_ort_test.cpp (OrtOddWidths).
source "$(dirname "$0")/lib.sh"
KJV=$MODELS/llama-5m-kjv
CAL=(--calib "$MODELS/data/kjv-calib.txt" --calib-samples 4 --calib-seqlen 64)
EV=(--eval "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 2)

# $WORK/odd: random llama weights, hidden 64 (4 heads of 16, 2 KV heads), FFN 172, 2 layers, the KJV tokenizer.
odd() {
  if [ ! -s "$WORK/odd/model.safetensors" ]; then
    python3 - "$KJV/config.json" "$WORK/odd.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
         head_dim=16)
json.dump(c, open(sys.argv[2], "w"))
PY
    "$SLMOPT" -q dev random-checkpoint "$WORK/odd.json" -o "$WORK/odd" --tokenizer "$KJV" --seed 1 >/dev/null
  fi
  echo "$WORK/odd"
}

# check_report REPORT QUANTIZED FLOAT_PATTERN...: the report lists QUANTIZED int4 linears, and each FLOAT_PATTERN
# names linears that stayed float with a reason containing it.
check_report() {
  python3 - "$@" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
want_quantized = int(sys.argv[2])
tensors = {t["name"]: t for t in r["tensors"]}
quantized = [n for n, t in tensors.items() if t["output_type"].startswith("int")]
assert len(quantized) == want_quantized, (len(quantized), quantized)
notes = " ".join(r.get("notes", []))
for spec in sys.argv[3:]:
    pattern, why = spec.split("=", 1)
    kept = [n for n in tensors if re.search(pattern, n) and not tensors[n]["output_type"].startswith("int")]
    assert kept, f"no float tensor matches {pattern}"
    for n in kept:
        assert why in tensors[n]["reason"], (n, tensors[n]["reason"])
        assert n in notes, f"{n} not named in the report's notes: {notes[:400]}"
PY
}

test_gptq_hf_keeps_unpackable_linears_float_and_reloads() {
  local m
  m=$(odd)
  expect_exit 0 "$SLMOPT" quantize "$m" --method gptq --type int4 --format hf "${CAL[@]}" "${EV[@]}" -o "$WORK/gptq-hf" || return 1
  # q/k/v/o: in 64 (one shorter group of 64 under group size 128) pack; gate/up (out 172) and down (in 172) do not.
  check_report "$WORK/gptq-hf/report.json" 8 'mlp\.(gate|up)_proj=output (172)' 'mlp\.down_proj=input (172)' || return 1
  grep -q "fell back" "$WORK/gptq-hf/report.md" || fail "the Markdown report does not say what fell back" || return 1
  python3 - "$WORK/gptq-hf" <<'PY' || fail "quantization_config / tensors: $(head -c 1500 "$WORK/gptq-hf/config.json")"
import json, struct, sys
d = sys.argv[1]
qc = json.load(open(d + "/config.json"))["quantization_config"]
assert json.load(open(d + "/quantize_config.json")) == qc
mlp = [f"model.layers.{l}.mlp.{p}" for l in range(2) for p in ("gate_proj", "up_proj", "down_proj")]
assert sorted(qc["dynamic"]) == sorted("-:^" + m.replace(".", "\\.") + "$" for m in mlp), qc["dynamic"]
assert qc["modules_in_block_to_quantize"] == [["self_attn.k_proj", "self_attn.o_proj", "self_attn.q_proj",
                                                "self_attn.v_proj"]], qc
with open(d + "/model.safetensors", "rb") as f:
    h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
# AutoGPTQ's QuantLinear shapes: qweight [in/8, out], qzeros [ceil(in/g), out/8], scales [ceil(in/g), out], g_idx [in].
q = "model.layers.0.self_attn.q_proj."
assert h[q + "qweight"]["shape"] == [8, 64] and h[q + "scales"]["shape"] == [1, 64], h[q + "scales"]
assert h[q + "qzeros"]["shape"] == [1, 8] and h[q + "g_idx"]["shape"] == [64]
for m in mlp:
    assert h[m + ".weight"]["dtype"] == "F16" and m + ".qweight" not in h, m
PY
  expect_exit 0 "$SLMOPT" eval "$WORK/gptq-hf" --text "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 2 || return 1
}

test_awq_hf_with_whole_groups_keeps_misfits_float() {
  local m
  m=$(odd)
  expect_exit 0 "$SLMOPT" quantize "$m" --method awq --type int4 --group-size 32 --format hf "${CAL[@]}" -o "$WORK/awq-hf" || return 1
  check_report "$WORK/awq-hf/report.json" 8 'mlp\.(gate|up)_proj=8 output columns' 'mlp\.down_proj=whole groups' || return 1
  python3 - "$WORK/awq-hf/config.json" <<'PY' || fail "$(head -c 1500 "$WORK/awq-hf/config.json")"
import json, sys
qc = json.load(open(sys.argv[1]))["quantization_config"]
assert qc["quant_method"] == "awq" and qc["q_group_size"] == 32
assert sorted(qc["modules_to_not_convert"]) == sorted(
    f"model.layers.{l}.mlp.{p}" for l in range(2) for p in ("gate_proj", "up_proj", "down_proj")), qc
PY
  expect_exit 0 "$SLMOPT" eval "$WORK/awq-hf" --text "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 2 || return 1
}

test_a_format_that_holds_no_linear_is_refused_before_calibrating() {
  local m
  m=$(odd)
  # AWQ needs whole groups: with group size 128 no linear of this model (inputs 64 and 172) has them.
  expect_exit 2 "$SLMOPT" quantize "$m" --method awq --type int4 --format hf "${CAL[@]}" -o "$WORK/none" || return 1
  expect_one_error_line "no block linear can be stored as int4 g128 asym in an AWQ checkpoint (e.g. model.layers.0.*: AWQ needs whole groups.*try another --group-size" || return 1
  [ ! -e "$WORK/none" ] || fail "a refused quantize left output"
  # --keep covering every linear: nothing left to quantize.
  expect_exit 2 "$SLMOPT" quantize "$m" --type int4 --format onnx --keep 'model.layers.*' -o "$WORK/none" || return 1
  expect_one_error_line "no block linear .*--keep matches every one" || return 1
  expect_exit 2 "$SLMOPT" quantize "$m" --type int4 --format hf --type-for 'lm_head.weight=q8_0' -o "$WORK/none" || return 1
  expect_one_error_line "--type-for sets GGUF types" || return 1
}

test_onnx_int4_pads_the_last_group_for_gptq_awq_and_rtn() {
  local m method
  m=$(odd)
  for method in gptq awq rtn; do
    local cal=("${CAL[@]}")
    [ "$method" = rtn ] && cal=()
    expect_exit 0 "$SLMOPT" quantize "$m" --method "$method" --type int4 --format onnx "${cal[@]}" "${EV[@]}" \
      -o "$WORK/onnx-$method" || return 1
    # Every block linear (14) on the grid; the head too (RTN), so nothing is listed as unquantized but the table.
    check_report "$WORK/onnx-$method/report.json" 14 || return 1
    expect_exit 0 "$SLMOPT" eval "$WORK/onnx-$method" --text "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 2 || return 1
  done
}

test_keep_is_honoured_on_integer_grids() {
  local m
  m=$(odd)
  expect_exit 0 "$SLMOPT" quantize "$m" --type int4 --format onnx --keep 'model.layers.0.mlp.*' --keep lm_head.weight \
    -o "$WORK/keep-onnx" || return 1
  check_report "$WORK/keep-onnx/report.json" 11 "model\.layers\.0\.mlp=--keep 'model.layers.0.mlp.*'" || return 1
  grep -q "lm_head.weight" "$WORK/keep-onnx/report.json" || fail "the kept head is not in the report" || return 1
  # The graph holds MatMulNBits for the other 11 block linears only; the kept ones and the head are float MatMuls.
  expect_exit 0 "$SLMOPT" inspect "$WORK/keep-onnx" || return 1
  [ "$(grep -c "^model.layers.*MatMulNBits int4" "$WORK/out")" -eq 11 ] || fail "inspect: $(grep -c "^model.layers.*MatMulNBits int4" "$WORK/out") MatMulNBits" || return 1
  grep -q "^model.layers.0.mlp.down_proj.weight .* f32 " "$WORK/out" || fail "down_proj of layer 0 is not float" || return 1
  expect_exit 0 "$SLMOPT" quantize "$m" --type int4 --format hf --group-size 32 --keep 'model.layers.1.self_attn.q_proj.weight' \
    -o "$WORK/keep-hf" || return 1
  python3 - "$WORK/keep-hf" <<'PY' || fail "$(head -c 1500 "$WORK/keep-hf/config.json")"
import json, struct, sys
d = sys.argv[1]
qc = json.load(open(d + "/config.json"))["quantization_config"]
assert "-:^model\\.layers\\.1\\.self_attn\\.q_proj$" in qc["dynamic"], qc["dynamic"]
assert "modules_in_block_to_quantize" not in qc, qc  # block 0 quantizes q_proj, block 1 does not
with open(d + "/model.safetensors", "rb") as f:
    h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
assert "model.layers.1.self_attn.q_proj.weight" in h and "model.layers.0.self_attn.q_proj.qweight" in h
PY
}

run_tests
