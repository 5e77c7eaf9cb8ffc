#!/usr/bin/env bash
# Every family config in tests/families: `slmopt dev random-checkpoint` writes a checkpoint in the family's
# Hugging Face form, `inspect` reads it back as that family, and `compile --format hf` rewrites it byte for byte
# (names, fused Phi-3 tensors, config.json). Families whose real tokenizer is in /work/shared/tokenizers carry it.
source "$(dirname "$0")/lib.sh"

FAMILIES=$ROOT/tests/families
# The shared tokenizer files sit beside the main checkout (../shared) or beside the worktrees' parent (../../shared).
SHARED_TOKENIZERS=${SLMOPT_SHARED_TOKENIZERS:-}
for candidate in "$ROOT/../shared/tokenizers" "$ROOT/../../shared/tokenizers"; do
  [ -n "$SHARED_TOKENIZERS" ] || { [ -d "$candidate" ] && SHARED_TOKENIZERS=$candidate; }
done

# family folder → expected family name in `inspect --json`
declare -A FAMILY=([phi2]=phi2 [phi3-mini-4k]=phi3 [phi3.5-mini]=phi3 [phi4-mini]=phi3 [qwen3]=qwen3
                   [gemma2]=gemma2 [gemma3-1b]=gemma3 [smollm2]=llama [smollm3]=smollm3 [llama3.2]=llama
                   [granite3]=granite [olmo2]=olmo2 [mistral]=mistral)

test_random_checkpoints_round_trip_through_the_cli() {
  local f
  for f in "${!FAMILY[@]}"; do
    expect_exit 0 "$SLMOPT" dev random-checkpoint "$FAMILIES/$f/config.json" -o "$WORK/$f" --seed 3
    expect_exit 0 "$SLMOPT" inspect "$WORK/$f" --json
    python3 - "$WORK/out" "${FAMILY[$f]}" "$f" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["family"] == sys.argv[2], (sys.argv[3], j["family"])
PY
    expect_exit 0 "$SLMOPT" compile "$WORK/$f" --format hf -o "$WORK/$f.again"
    cmp "$WORK/$f/model.safetensors" "$WORK/$f.again/model.safetensors" || fail "$f: safetensors differ after compile --format hf"
    cmp "$WORK/$f/config.json" "$WORK/$f.again/config.json" || fail "$f: config.json differs after compile --format hf"
  done
}

test_phi3_checkpoint_stores_fused_projections() {
  expect_exit 0 "$SLMOPT" dev random-checkpoint "$FAMILIES/phi4-mini/config.json" -o "$WORK/phi4"
  python3 - "$WORK/phi4/model.safetensors" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
qkv = header["model.layers.0.self_attn.qkv_proj.weight"]["shape"]
gate_up = header["model.layers.1.mlp.gate_up_proj.weight"]["shape"]
assert qkv == [96 + 32 + 32, 96], qkv        # q 3 heads, k and v 1 KV head each, head_dim 32
assert gate_up == [2 * 256, 96], gate_up
assert not any(".q_proj." in k or ".gate_proj." in k for k in header), [k for k in header if "proj" in k][:4]
PY
}

test_real_tokenizers_travel_with_their_families() {
  if [ -z "$SHARED_TOKENIZERS" ]; then
    echo "    SKIPPED (not checked): no shared/tokenizers folder beside the checkout; set SLMOPT_SHARED_TOKENIZERS"
    return 0
  fi
  local pair f tok
  for pair in phi2:phi2 mistral:mistral phi3-mini-4k:llama2; do
    f=${pair%%:*}
    tok=${pair##*:}
    expect_exit 0 "$SLMOPT" dev random-checkpoint "$FAMILIES/$f/config.json" -o "$WORK/$f-tok" \
      --tokenizer "$SHARED_TOKENIZERS/$tok"
    expect_exit 0 "$SLMOPT" inspect "$WORK/$f-tok" --json
    python3 - "$WORK/out" "$f" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["tokenizer"]["vocab_size"] > 30000, (sys.argv[2], j.get("tokenizer"))
PY
  done
}

test_bad_family_config_is_one_error_line() {
  python3 - "$FAMILIES/gemma2/config.json" "$WORK/bad.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["hidden_activation"] = "gelu"
json.dump(j, open(sys.argv[2], "w"))
PY
  expect_exit 4 "$SLMOPT" dev random-checkpoint "$WORK/bad.json" -o "$WORK/bad"
  expect_one_error_line "hidden_activation 'gelu'"
  [ ! -e "$WORK/bad" ] || fail "a refused config left an output folder"
}

run_tests
