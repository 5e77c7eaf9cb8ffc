#!/usr/bin/env bash
# End-to-end: slmopt tokenize — ids equal Hugging Face's own tokenizers (@huggingface/tokenizers, via node) on
# both bundled tokenizer styles, --special adds BOS, and a missing text is a one-line usage error.
source "$(dirname "$0")/lib.sh"
REF=$ROOT/tests/consumers/hf_tokenizers_reference.mjs

# same_ids_as_hf MODEL TEXT: slmopt's ids for TEXT equal the HF reference's (skipped only with SLMOPT_SKIP_CONSUMERS=1).
same_ids_as_hf() {
  printf '%s' "$2" >"$WORK/t.txt"
  expect_exit 0 "$SLMOPT" tokenize "$1" --file "$WORK/t.txt" --json || return 1
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["ids"], separators=(",", ":")))' \
    "$WORK/out" >"$WORK/ours" || return 1
  if [ ! -d "$ROOT/tests/consumers/node_modules/@huggingface/tokenizers" ]; then
    [ "${SLMOPT_SKIP_CONSUMERS:-0}" = 1 ] && { echo "    skipped: @huggingface/tokenizers not installed"; return 0; }
    fail "@huggingface/tokenizers not installed (scripts/setup.sh installs it)"; return 1
  fi
  node "$REF" "$1/tokenizer.json" "$WORK/t.txt" --whole >"$WORK/theirs" || return 1
  cmp -s "$WORK/ours" "$WORK/theirs" || fail "ids differ: ours $(cat "$WORK/ours"), HF $(cat "$WORK/theirs")"
}

test_byte_level_bpe_matches_hf() {
  same_ids_as_hf "$MODELS/llama-5m-kjv" "In the beginning God created the heaven and the earth. 123 ünïcödé!"
}

test_sentencepiece_style_bpe_matches_hf() {
  same_ids_as_hf "$MODELS/tinystories-656k" "Once upon a time, there was a little girl named Lily."
}

test_special_adds_bos_and_text_output_lists_pieces() {
  expect_exit 0 "$SLMOPT" tokenize "$MODELS/tinystories-656k" --text "Once upon a time" --special --json || return 1
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["ids"][0] == 1 and len(j["ids"]) == len(j["pieces"]) > 2, j' \
    "$WORK/out" || return 1
  expect_exit 0 "$SLMOPT" tokenize "$MODELS/tinystories-656k" --text "Once upon a time" || return 1
  grep -q ' tokens$' "$WORK/out" && grep -q $'^[0-9]*\t"' "$WORK/out" || fail "no id/piece lines: $(cat "$WORK/out")"
}

test_missing_text_is_a_usage_error() {
  expect_exit 2 "$SLMOPT" tokenize "$MODELS/tinystories-656k" || return 1
  expect_one_error_line "--text" || return 1
}

run_tests
