#!/usr/bin/env bash
# End-to-end: writing a GGUF of a SentencePiece-style vocabulary without <0xNN> byte tokens warns, in one line,
# that llama.cpp aborts on text with characters outside the vocabulary (issue 12, defect 17: tinystories-656k).
source "$(dirname "$0")/lib.sh"

test_gguf_without_byte_tokens_warns_once() {
  expect_exit 0 "$SLMOPT" compile "$MODELS/tinystories-656k" --format gguf -o "$WORK/ts.gguf" || return 1
  [ "$(grep -c "no byte tokens" "$WORK/err")" -eq 1 ] || fail "stderr: $(cat "$WORK/err")" || return 1
  grep -q "llama.cpp aborts on any text with a character outside the vocabulary" "$WORK/err" || return 1
  [ -s "$WORK/ts.gguf" ] || fail "no GGUF written" || return 1
}
run_tests
