#!/usr/bin/env bash
# End-to-end: prune and distill-export through the binary — importance scores, GQA-consistent cuts written as HF
# and GGUF, refit with an accuracy report, the HF per-layer-count refusal, and a distillation kit whose student
# evaluates. Few short calibration windows and activation importance keep it fast.
source "$(dirname "$0")/lib.sh"
KJV=$MODELS/llama-5m-kjv
CALIB=(--calib "$MODELS/data/kjv-calib.txt" --calib-samples 4 --calib-seqlen 64 --importance activation)
EVAL=(--eval "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 4)

test_scores_alone_writes_per_layer_json() {
  expect_exit 0 "$SLMOPT" prune "$KJV" "${CALIB[@]}" --scores "$WORK/s.json" || return 1
  python3 - "$WORK/s.json" <<'PY' || return 1
import json, math, sys
s = json.load(open(sys.argv[1]))
assert s["method"] == "activation" and s["windows"] == 4, s
assert len(s["layers"]) == 4
for layer in s["layers"]:
    assert len(layer["heads"]) == 4 and len(layer["kv_groups"]) == 2 and len(layer["ffn"]) == 768
    assert all(math.isfinite(v) and v > 0 for v in layer["heads"] + layer["kv_groups"]), layer["heads"]
PY
  grep -q "^layer 3 heads:" "$WORK/out" || fail "no per-layer summary printed" || return 1
}

test_kv_group_pruning_writes_hf_that_evaluates() {
  expect_exit 0 "$SLMOPT" prune "$KJV" "${CALIB[@]}" --heads-per-layer 2 --head-unit kv-group -o "$WORK/kv" || return 1
  "$SLMOPT" inspect "$WORK/kv" --json >"$WORK/kv.json" || return 1
  python3 - "$WORK/kv.json" <<'PY' || return 1
import json, sys
c = json.load(open(sys.argv[1]))
assert (c["num_heads"], c["num_kv_heads"], c["head_dim"]) == (2, 1, 64), (c["num_heads"], c["num_kv_heads"])
t = {x["name"]: x["shape"] for x in c["tensors"]}
assert t["model.layers.0.self_attn.q_proj.weight"] == [128, 256]
assert t["model.layers.0.self_attn.k_proj.weight"] == [64, 256]
assert t["model.layers.0.self_attn.o_proj.weight"] == [256, 128]
PY
  expect_exit 0 "$SLMOPT" eval "$WORK/kv" --text "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 2 --json || return 1
  python3 -c 'import json,sys,math; p=json.load(open(sys.argv[1]))["perplexity"]; assert 1 < p < 1e4 and math.isfinite(p), p' \
    "$WORK/out" || return 1
}

test_scores_in_reproduces_the_cut() {
  expect_exit 0 "$SLMOPT" prune "$KJV" "${CALIB[@]}" --scores "$WORK/r.json" --heads-ratio 0.5 -o "$WORK/r1" || return 1
  expect_exit 0 "$SLMOPT" prune "$KJV" --scores-in "$WORK/r.json" --heads-ratio 0.5 -o "$WORK/r2" || return 1
  cmp -s "$WORK/r1/model.safetensors" "$WORK/r2/model.safetensors" || fail "--scores-in gave a different model" || return 1
}

test_ffn_refit_report_has_eval_and_refit() {
  expect_exit 0 "$SLMOPT" prune "$KJV" "${CALIB[@]}" --ffn-ratio 0.25 --refit "${EVAL[@]}" -o "$WORK/ffn" || return 1
  python3 - "$WORK/ffn/report.json" <<'PY' || return 1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["command"] == "prune" and r["method"] == "prune", r["method"]
x = r["extra"]
assert x["importance"] == "activation"
assert all(l["ffn"].startswith("576 of 768: ") for l in x["plan"]["layers"]), [l["ffn"][:20] for l in x["plan"]["layers"]]
assert x["parameters_after"] < x["parameters_before"]
subs = x["refit"]["sublayers"]
assert len(subs) == 4 and all(s["weight"].endswith("mlp.down_proj.weight") for s in subs), subs
assert all(s["error_after"] <= s["error_before"] + 1e-9 for s in subs), subs
e = r["eval"]
assert e["tokens_scored"] == 4 * 63 and e["ppl_output"] > 0 and e["mean_kl"] > 0, e
PY
  grep -q "^perplexity " "$WORK/out" || fail "no accuracy line printed" || return 1
}

test_per_layer_counts_need_gguf() {
  expect_exit 2 "$SLMOPT" prune "$KJV" "${CALIB[@]}" --ffn-ratio 0.25 --per-layer-counts -o "$WORK/pl" || return 1
  expect_one_error_line "--format gguf" || return 1
  [ ! -e "$WORK/pl" ] || fail "output written" || return 1
  expect_exit 0 "$SLMOPT" prune "$KJV" "${CALIB[@]}" --ffn-ratio 0.25 --per-layer-counts --format gguf -o "$WORK/pl.gguf" || return 1
  expect_exit 0 "$SLMOPT" inspect "$WORK/pl.gguf" --json || return 1
  python3 - "$WORK/out" <<'PY' || return 1
import json, sys
c = json.load(open(sys.argv[1]))
ffn = c["layer_intermediate_size"]
assert len(ffn) == 4 and len(set(ffn)) > 1, ffn
assert abs(sum(ffn) - 4 * 576) <= 4, ffn
t = {x["name"]: x["dtype"] for x in c["tensors"]}
assert t["model.layers.0.mlp.down_proj.weight"] == "bf16", t
PY
}

test_bad_options_are_one_line_usage_errors() {
  expect_exit 2 "$SLMOPT" prune "$KJV" "${CALIB[@]}" --heads-ratio 0.5 --head-unit group -o "$WORK/b" || return 1
  expect_one_error_line "--head-unit" || return 1
  expect_exit 2 "$SLMOPT" prune "$KJV" "${CALIB[@]}" --layer-heads 2,2 -o "$WORK/b" || return 1
  expect_one_error_line "--layer-heads" || return 1
  expect_exit 2 "$SLMOPT" prune "$KJV" --heads-ratio 0.5 -o "$WORK/b" || return 1
  expect_one_error_line "--calib" || return 1
  expect_exit 2 "$SLMOPT" distill-export "$KJV" --text "$MODELS/data/kjv-calib.txt" --student-layers 0,9 -o "$WORK/b" || return 1
  expect_one_error_line "--student-layers" || return 1
  [ ! -e "$WORK/b" ] || fail "output written" || return 1
}

test_distill_export_checks_the_corpus_before_writing() {
  : >"$WORK/empty.txt"
  expect_exit 3 "$SLMOPT" distill-export "$KJV" --tokens "$WORK/empty.txt" --student-layers 0,2 -o "$WORK/e" || return 1
  expect_one_error_line "empty.txt" || return 1
  [ ! -e "$WORK/e" ] || fail "partial kit left: $(ls -R "$WORK/e")" || return 1
}

test_distill_export_writes_a_kit_whose_student_evaluates() {
  expect_exit 0 "$SLMOPT" distill-export "$KJV" --text "$MODELS/data/kjv-calib.txt" --student-layers 0,2 --ctx 64 \
    --max-windows 4 --top-k 8 --logprob-dtype f16 --steps 10 -o "$WORK/kit" --json || return 1
  [ -s "$WORK/kit/student/config.json" ] && [ -s "$WORK/kit/soft_labels/soft_labels.json" ] &&
    [ -s "$WORK/kit/distill_recipe.json" ] || fail "missing outputs: $(ls -R "$WORK/kit")" || return 1
  python3 - "$WORK/kit" "$WORK/out" <<'PY' || return 1
import json, os, sys
kit = sys.argv[1]
m = json.load(open(os.path.join(kit, "soft_labels/soft_labels.json")))
assert m["format"] == "slmopt-soft-labels" and m["windows"] == 4 and m["top_k"] == 8 and m["ctx"] == 64, m
assert m["logprob_dtype"] == "F16" and all(os.path.exists(os.path.join(kit, "soft_labels", s["file"])) for s in m["shards"])
r = json.load(open(os.path.join(kit, "distill_recipe.json")))
assert r["format"] == "slmopt-distill-recipe" and r["student_init"]["layers"] == [0, 2], r
assert r["train"]["steps"] == 10 and r["loss"]["top_k"] == 8, r
cfg = json.load(open(os.path.join(kit, "student/config.json")))
assert cfg["num_hidden_layers"] == 2, cfg
summary = json.load(open(sys.argv[2]))
assert summary["windows"] == 4 and summary["student_layers"] == [0, 2], summary
PY
  expect_exit 0 "$SLMOPT" eval "$WORK/kit/student" --text "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 2 || return 1
}

run_tests
