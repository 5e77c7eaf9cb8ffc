#!/usr/bin/env bash
# End-to-end: inspect, eval, global options and the error contract (one line, category exit code).
source "$(dirname "$0")/lib.sh"

test_version() {
  expect_exit 0 "$SLMOPT" --version
  grep -q '^slmopt [0-9]' "$WORK/out" || fail "no version"
}

test_inspect_json_reports_config_and_tensors() {
  expect_exit 0 "$SLMOPT" inspect "$MODELS/llama-5m-kjv" --json
  python3 - "$WORK/out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["num_layers"] == 4 and j["num_kv_heads"] == 2 and j["head_dim"] == 64, j
assert j["parameters"] == 5245184, j["parameters"]
assert j["tokenizer"]["kind"] == "byte-level-bpe" and j["tokenizer"]["vocab_size"] == 4096
assert len(j["tensors"]) == 4 * 9 + 3
PY
}

test_inspect_tied_model_has_no_lm_head() {
  expect_exit 0 "$SLMOPT" inspect "$MODELS/tinystories-656k" --json
  python3 - "$WORK/out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
names = [t["name"] for t in j["tensors"]]
assert "lm_head.weight" not in names and "model.embed_tokens.weight" in names
assert j["tie_word_embeddings"] is True and j["tokenizer"]["bos_id"] == 1
PY
}

test_eval_perplexity_of_kjv_model() {
  expect_exit 0 "$SLMOPT" eval "$MODELS/llama-5m-kjv" --text "$MODELS/data/kjv-eval.txt" --ctx 256 --max-windows 8 --json
  python3 - "$WORK/out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["windows"] == 8 and j["tokens_scored"] == 8 * 255, j
assert 20 < j["perplexity"] < 80, j   # the model reaches ~40 on this text
PY
}

test_eval_threads_do_not_change_the_result() {
  "$SLMOPT" -t 1 eval "$MODELS/tinystories-656k" --text "$MODELS/data/tinystories-eval.txt" --ctx 128 --max-windows 6 --json >"$WORK/a"
  "$SLMOPT" -t 2 eval "$MODELS/tinystories-656k" --text "$MODELS/data/tinystories-eval.txt" --ctx 128 --max-windows 6 --json >"$WORK/b"
  [ "$(grep nll "$WORK/a")" = "$(grep nll "$WORK/b")" ] || fail "nll differs between 1 and 2 threads"
}

test_eval_token_file() {
  printf '1 2 3 4 5 6 7 8 9 10 11 12\n' >"$WORK/ids.txt"
  expect_exit 0 "$SLMOPT" eval "$MODELS/tinystories-656k" --tokens "$WORK/ids.txt" --ctx 8 --json
}

test_missing_model_is_one_line() {
  expect_exit 5 "$SLMOPT" inspect "$WORK/nope"
  expect_one_error_line "nope"
}

test_bad_config_names_the_file() {
  mkdir -p "$WORK/bad"
  cp "$MODELS/tinystories-656k/"* "$WORK/bad/"
  echo '{"architectures": ["LlamaForCausalLM"], "hidden_size": 128' >"$WORK/bad/config.json"
  expect_exit 3 "$SLMOPT" inspect "$WORK/bad"
  expect_one_error_line "config.json"
}

test_unsupported_architecture() {
  mkdir -p "$WORK/bert"
  cp "$MODELS/tinystories-656k/"* "$WORK/bert/"
  python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['architectures']=['BertModel']; c['model_type']='bert'; json.dump(c, open(sys.argv[1],'w'))" "$WORK/bert/config.json"
  expect_exit 4 "$SLMOPT" inspect "$WORK/bert"
  expect_one_error_line "BertModel"
}

test_truncated_safetensors() {
  mkdir -p "$WORK/trunc"
  cp "$MODELS/tinystories-656k/"* "$WORK/trunc/"
  head -c 100000 "$MODELS/tinystories-656k/model.safetensors" >"$WORK/trunc/model.safetensors"
  expect_exit 3 "$SLMOPT" inspect "$WORK/trunc"
  expect_one_error_line "model.safetensors"
}

test_unknown_option_is_a_usage_error() {
  expect_exit 2 "$SLMOPT" eval "$MODELS/tinystories-656k" --no-such-option
}

test_eval_needs_a_text() {
  expect_exit 2 "$SLMOPT" eval "$MODELS/tinystories-656k"
  expect_one_error_line "--text"
}

run_tests
