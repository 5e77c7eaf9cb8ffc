#!/usr/bin/env bash
# End-to-end: compile --format onnx for every weight type (export folders, io/onnx_folder.h), re-import the
# export, and the error contract.
source "$(dirname "$0")/lib.sh"
KJV=$MODELS/llama-5m-kjv

test_every_onnx_weight_type_is_written_as_an_export_folder() {
  for t in f32:model f16:model_fp16 int8:model_int8 int8-dynamic:model_quantized int4:model_q4; do
    expect_exit 0 "$SLMOPT" compile "$KJV" --format onnx --type "${t%%:*}" -o "$WORK/${t%%:*}"
    [ -s "$WORK/${t%%:*}/onnx/${t#*:}.onnx" ] && [ -s "$WORK/${t%%:*}/genai_config.json" ] &&
      [ -s "$WORK/${t%%:*}/tokenizer.json" ] && [ -s "$WORK/${t%%:*}/config.json" ] ||
      fail "$t: missing files: $(ls -R "$WORK/${t%%:*}")"
  done
  # Sizes shrink with the weight type.
  s32=$(stat -c %s "$WORK/f32/onnx/model.onnx"); s16=$(stat -c %s "$WORK/f16/onnx/model_fp16.onnx")
  s4=$(stat -c %s "$WORK/int4/onnx/model_q4.onnx")
  [ "$s16" -lt $((s32 * 55 / 100)) ] && [ "$s4" -lt "$s16" ] || fail "sizes f32 $s32, f16 $s16, int4 $s4"
}

test_f32_export_reimports_to_the_same_perplexity() {
  expect_exit 0 "$SLMOPT" compile "$KJV" --format onnx -o "$WORK/kjv"
  "$SLMOPT" eval "$KJV" --text "$MODELS/data/kjv-eval.txt" --ctx 128 --max-windows 3 --json >"$WORK/a"
  "$SLMOPT" eval "$WORK/kjv" --text "$MODELS/data/kjv-eval.txt" --ctx 128 --max-windows 3 --json >"$WORK/b"
  [ "$(grep '"nll"' "$WORK/a")" = "$(grep '"nll"' "$WORK/b")" ] || fail "nll differs: $(grep nll "$WORK/a") vs $(grep nll "$WORK/b")"
}

test_bad_onnx_type_is_a_usage_error() {
  expect_exit 2 "$SLMOPT" compile "$KJV" --format onnx --type q4_k -o "$WORK/x"
  expect_one_error_line "int4"
  [ ! -e "$WORK/x" ] || fail "output written"
}

test_truncated_onnx_input_is_one_line() {
  head -c 5000 "$MODELS/capp-gpt2-onnx/model.onnx" >"$WORK/trunc.onnx"
  expect_exit 3 "$SLMOPT" inspect "$WORK/trunc.onnx"
  expect_one_error_line "trunc.onnx"
}

run_tests
