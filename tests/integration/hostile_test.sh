#!/usr/bin/env bash
# End-to-end: hostile model files (tests/integration/hostile_inputs.py writes one per class) are refused with one
# error line naming the field, exit 3 (bad input), quickly and within a memory cap: a file must not make slmopt
# allocate more than its size plus a small constant (issue 12). Before the fixes, several of these ran for
# minutes and reached 1.2–2.1 GB, or passed silently.
source "$(dirname "$0")/lib.sh"

python3 "$ROOT/tests/integration/hostile_inputs.py" "$WORK/in" || exit 1
IN=$WORK/in

# inspect_capped INPUT: `slmopt inspect` with 1 GiB of address space and 60 s; out/err as expect_exit leaves them.
inspect_capped() { expect_exit 3 timeout 60 prlimit --as=1073741824 -- "$SLMOPT" inspect "$1"; }

test_capped_inspect_still_loads_a_real_model() {
  expect_exit 0 timeout 60 prlimit --as=1073741824 -- "$SLMOPT" inspect "$MODELS/tinystories-656k"
}

test_layer_count_2e31_in_config() {
  inspect_capped "$IN/config-layers-2e31"
  expect_one_error_line "config.json: num_hidden_layers 2147483648 is beyond the supported maximum"
}

test_token_id_near_2e24() {
  inspect_capped "$IN/tokenizer-id-2e24"
  expect_one_error_line "tokenizer.json: token id 16777214 ('<far>') leaves"
}

test_onnx_initializer_claiming_2e29_floats() {
  inspect_capped "$IN/onnx-init-2e29-floats/model.onnx"
  expect_one_error_line "initializer 'model.embed_tokens.weight' has 0 values, its shape needs 536870912"
}

test_gguf_tensor_of_2e62_elements() {
  inspect_capped "$IN/gguf-tensor-2e62-elements.gguf"
  expect_one_error_line "tensor 'token_embd.weight' is absurdly large"
}

test_gguf_key_length_2e62() {
  inspect_capped "$IN/gguf-key-length-2e62.gguf"
  expect_one_error_line "key 'llama.attention.key_length' has the value 4611686018427387904"
}

test_gptq_group_minus_one_with_empty_qweight() {
  inspect_capped "$IN/gptq-group-minus1-empty-qweight"
  expect_one_error_line "'model.layers.0.self_attn.q_proj.qweight' shape \[0, 8\] holds no weights"
}

test_number_out_of_range_names_its_field() {
  inspect_capped "$IN/config-number-1e400"
  expect_one_error_line "config.json: the value of 'rope_theta' is a number out of range"
}

test_number_out_of_range_in_tokenizer_is_bad_input() {
  mkdir -p "$WORK/tok"
  cp "$MODELS/tinystories-656k/config.json" "$MODELS/tinystories-656k/model.safetensors" "$WORK/tok/"
  sed 's/"id": 0,/"id": 1e400,/' "$MODELS/tinystories-656k/tokenizer.json" >"$WORK/tok/tokenizer.json"
  grep -q 1e400 "$WORK/tok/tokenizer.json" || fail "the test input has no 1e400"
  inspect_capped "$WORK/tok"
  expect_one_error_line "tokenizer.json: the value of 'id' is a number out of range"
}

test_other_hostile_classes_are_clean_bad_input() {
  local f
  for f in config-deep-1e6 safetensors-deep-shape safetensors-header-2e62 safetensors-shape-overflow \
      safetensors-offset-past-end gguf-kv-count-2e60.gguf gguf-tensor-count-2e60.gguf gguf-string-2e62.gguf \
      gguf-array-2e62.gguf gguf-offset-past-end.gguf; do
    inspect_capped "$IN/$f" || { echo "    input: $f"; return 1; }
    expect_one_error_line "$f" || return 1
  done
}

# A model patch is untrusted too (it is downloaded): every count and length is checked against the bytes present
# before use, and a refused patch leaves no NEW behind.
test_hostile_patches_are_refused_without_output() {
  local f message
  while IFS='|' read -r f message; do
    expect_exit 3 timeout 60 prlimit --as=1073741824 -- "$SLMOPT" patch "$IN/patch-old.bin" "$IN/$f" -o "$WORK/new.bin" ||
      { echo "    input: $f"; return 1; }
    expect_one_error_line "$f: $message" || return 1
    [ ! -e "$WORK/new.bin" ] || fail "$f left $WORK/new.bin"
  done <<'EOF'
patch-count-2e60.slmpatch|piece count 1152921504606846976 does not fit in the
patch-carry-2e62.slmpatch|truncated patch: carried bytes needs 4611686018427387904 bytes
patch-copy-past-end.slmpatch|piece 0 copies \[9223372036854775808, +16) outside OLD's 272 bytes
patch-new-size-2e62.slmpatch|the pieces make 16 bytes, NEW has 4611686018427387904
EOF
}

# Output path = input path: the GGUF bytes used to replace the checkpoint's weights, exit 0.
test_output_over_an_input_file_is_refused() {
  cp -r "$MODELS/tinystories-656k" "$WORK/model"
  expect_exit 2 "$SLMOPT" compile "$WORK/model" --format gguf -o "$WORK/model/model.safetensors"
  # Refused before any work by the output-path check (a checkpoint file is not a GGUF output), or by the
  # AtomicFile guard on files the run reads; either way the input stays as it was.
  expect_one_error_line "model.safetensors: \(is a file of the input model this run reads\|slmopt writes a Hugging Face checkpoint as a folder\)"
  cmp -s "$MODELS/tinystories-656k/model.safetensors" "$WORK/model/model.safetensors" || fail "the input changed"
  expect_exit 0 "$SLMOPT" compile "$WORK/model" --format gguf -o "$WORK/m.gguf"
  expect_exit 2 "$SLMOPT" compile "$WORK/m.gguf" --format gguf -o "$WORK/m.gguf"
  expect_one_error_line "m.gguf: is \(a file of \)\?the input model"
}

run_tests
