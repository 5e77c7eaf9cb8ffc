#!/usr/bin/env bash
# End-to-end: quantize and compile through the binary — outputs, reports, gates, imatrix reuse, determinism,
# and bad input leaving no output behind.
source "$(dirname "$0")/lib.sh"
KJV=$MODELS/llama-5m-kjv
TS=$MODELS/tinystories-656k

test_quantize_writes_gguf_and_report_with_accuracy() {
  expect_exit 0 "$SLMOPT" quantize "$KJV" --type q4_k_m -o "$WORK/q.gguf" --eval "$MODELS/data/kjv-eval.txt" \
    --ctx 128 --max-windows 8
  [ -s "$WORK/q.gguf" ] && [ -s "$WORK/q.report.json" ] && [ -s "$WORK/q.report.md" ] || fail "missing outputs"
  python3 - "$WORK/q.report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["type"] == "Q4_K_M" and r["method"] == "rtn"
assert 4.5 < r["bits_per_weight"] < 6.0, r["bits_per_weight"]
e = r["eval"]
assert e["tokens_scored"] == 8 * 127
assert -2 < e["ppl_increase_percent"] < 5, e   # 8 windows: the sign is noise; KL is the firm measure
assert 0 < e["mean_kl"] < 0.05 and e["top1_agreement"] > 0.85, e
types = {t["name"]: t["output_type"] for t in r["tensors"]}
assert types["lm_head.weight"] == "q6_k"                              # llama.cpp's output rule
assert types["model.layers.3.mlp.down_proj.weight"] == "q6_k"         # use_more_bits (last layer)
assert types["model.layers.1.mlp.down_proj.weight"] == "q4_k"
assert all(0 < t["relative_error"] < 0.2 for t in r["tensors"] if t["output_type"].startswith("q"))
PY
}

test_quantize_is_deterministic_across_threads() {
  "$SLMOPT" -t 1 quantize "$TS" --type q4_0 -o "$WORK/a.gguf" >/dev/null 2>&1
  "$SLMOPT" -t 2 quantize "$TS" --type q4_0 -o "$WORK/b.gguf" >/dev/null 2>&1
  cmp -s "$WORK/a.gguf" "$WORK/b.gguf" || fail "outputs differ between 1 and 2 threads"
}

test_imatrix_saved_and_reused_gives_the_same_file() {
  expect_exit 0 "$SLMOPT" quantize "$KJV" --type q3_k_m -o "$WORK/c1.gguf" --calib "$MODELS/data/kjv-calib.txt" \
    --calib-samples 8 --calib-seqlen 128 --imatrix-out "$WORK/kjv.imatrix"
  expect_exit 0 "$SLMOPT" quantize "$KJV" --type q3_k_m -o "$WORK/c2.gguf" --imatrix-in "$WORK/kjv.imatrix"
  cmp -s "$WORK/c1.gguf" "$WORK/c2.gguf" || fail "reusing the imatrix changed the output"
  grep -q '"method": "imatrix-rtn"' "$WORK/c2.report.json" || fail "method not reported"
}

test_gate_fails_with_exit_6_but_keeps_outputs() {
  expect_exit 6 "$SLMOPT" quantize "$KJV" --type q2_k -o "$WORK/g.gguf" --eval "$MODELS/data/kjv-eval.txt" \
    --ctx 128 --max-windows 4 --max-ppl-increase 0.01
  expect_one_error_line "max-ppl-increase"
  [ -s "$WORK/g.gguf" ] && grep -q '"passed": false' "$WORK/g.report.json" || fail "gate result not recorded"
}

test_gate_passes_when_within_limit() {
  expect_exit 0 "$SLMOPT" quantize "$KJV" --type q8_0 -o "$WORK/p.gguf" --eval "$MODELS/data/kjv-eval.txt" \
    --ctx 128 --max-windows 4 --max-ppl-increase 1 --max-kl 0.01
}

test_unknown_preset_is_a_usage_error_and_writes_nothing() {
  expect_exit 2 "$SLMOPT" quantize "$KJV" --type q4_k_x -o "$WORK/x.gguf"
  expect_one_error_line "q4_k_x"
  [ ! -e "$WORK/x.gguf" ] || fail "output written"
}

test_corrupt_imatrix_leaves_no_output() {
  # A corrupt importance matrix is found after the model loaded: no output file may appear.
  echo "garbage" >"$WORK/bad.imatrix"
  expect_exit 3 "$SLMOPT" quantize "$KJV" --type q4_k_m -o "$WORK/y.gguf" --imatrix-in "$WORK/bad.imatrix"
  expect_one_error_line "bad.imatrix"
  [ -z "$(ls "$WORK" | grep '^y\.')" ] || fail "partial output left: $(ls "$WORK")"
}

test_imatrix_with_a_nan_or_negative_value_is_refused() {
  # A well-formed importance matrix whose values no calibration can produce: named, and no output.
  expect_exit 0 "$SLMOPT" quantize "$KJV" --type q3_k_m -o "$WORK/n1.gguf" --calib "$MODELS/data/kjv-calib.txt" \
    --calib-samples 2 --calib-seqlen 32 --imatrix-out "$WORK/good.imatrix"
  for bad in nan -1; do
    python3 - "$WORK/good.imatrix" "$WORK/bad-$bad.imatrix" "$bad" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
name = sorted(k for k in header if k != "__metadata__")[0]
start = 8 + n + header[name]["data_offsets"][0]
body = bytearray(data)
body[start + 4:start + 8] = struct.pack("<f", float(sys.argv[3]))  # column 1 of the first entry
open(sys.argv[2], "wb").write(bytes(body))
PY
    expect_exit 3 "$SLMOPT" quantize "$KJV" --type q3_k_m -o "$WORK/n2.gguf" --imatrix-in "$WORK/bad-$bad.imatrix"
    expect_one_error_line "at column 1 (importance is finite and not negative)"
    [ ! -e "$WORK/n2.gguf" ] || fail "output written for $bad"
  done
}

test_type_overrides_apply() {
  expect_exit 0 "$SLMOPT" quantize "$KJV" --type q4_0 --type-for 'blk.*.ffn_down.weight=q8_0' --keep 'lm_head.weight' \
    -o "$WORK/o.gguf"
  "$SLMOPT" inspect "$WORK/o.gguf" --json >"$WORK/o.json"
  python3 - "$WORK/o.json" <<'PY'
import json, sys
t = {x["name"]: x["dtype"] for x in json.load(open(sys.argv[1]))["tensors"]}
assert t["model.layers.0.mlp.down_proj.weight"] == "q8_0", t
assert t["lm_head.weight"] == "bf16", t
assert t["model.layers.0.mlp.up_proj.weight"] == "q4_0", t
PY
}

test_tinystories_128_wide_rows_fall_back() {
  expect_exit 0 "$SLMOPT" quantize "$TS" --type q4_k_m -o "$WORK/t.gguf" --dry-run
  grep -q 'model.layers.0.mlp.gate_proj.weight *q5_0' "$WORK/out" || { cat "$WORK/out"; fail "no Q5_0 fallback"; }
}

test_compile_gguf_and_hf_roundtrip() {
  expect_exit 0 "$SLMOPT" compile "$TS" --format gguf --type f32 -o "$WORK/ts.gguf"
  expect_exit 0 "$SLMOPT" compile "$WORK/ts.gguf" --format hf -o "$WORK/ts-hf"
  "$SLMOPT" eval "$TS" --text "$MODELS/data/tinystories-eval.txt" --ctx 64 --max-windows 4 --json >"$WORK/e1"
  "$SLMOPT" eval "$WORK/ts-hf" --text "$MODELS/data/tinystories-eval.txt" --ctx 64 --max-windows 4 --json >"$WORK/e2"
  [ "$(grep '"nll"' "$WORK/e1")" = "$(grep '"nll"' "$WORK/e2")" ] || fail "HF -> GGUF -> HF changed the model"
}

test_compile_rejects_q4_type() {
  expect_exit 2 "$SLMOPT" compile "$TS" --format gguf --type q4_0 -o "$WORK/z.gguf"
  expect_one_error_line "quantize"
}

run_tests
