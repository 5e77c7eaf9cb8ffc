#!/usr/bin/env bash
# End-to-end: `slmopt run RECIPE` — one load, shared calibration, every target written and evaluated against the
# original, manifest hashes that sha256sum agrees with, byte-identical artifacts and manifest at 1 and 2 threads,
# the gate exit code with outputs kept, bad recipes as one error line naming file, line and key with nothing
# written, and `--emit ninja|make` run by Debian's ninja/make (a second run has nothing to do) giving the same
# artifacts as the in-process run. Small calibration (4 windows of 64 tokens) keeps it quick.
source "$(dirname "$0")/lib.sh"

THREE_TARGETS='  - {name: q4km, format: gguf, type: q4_k_m, method: gptq}
  - {name: onnx4, format: onnx, type: int4, method: gptq, group-size: 32}
  - name: hf4
    format: hf
    type: int4
    method: gptq
    group-size: 32'
ONE_TARGET='  - {name: q4km, format: gguf, type: q4_k_m, method: gptq}'

# write_recipe FILE [EXTRA_YAML [TARGETS]]: the test recipe (prune → by default GGUF Q4_K_M + ONNX int4 + HF GPTQ,
# GPTQ everywhere).
write_recipe() {
  cat >"$1" <<YAML
model: $MODELS/llama-5m-kjv
output: out
calibration: {text: $MODELS/data/kjv-calib.txt, samples: 4, seqlen: 64}
evaluation: {text: $MODELS/data/kjv-eval.txt, ctx: 64, max-windows: 4}
stages:
  - prune: {ffn-ratio: 0.25, refit: true, importance: activation}
targets:
${3:-$THREE_TARGETS}
${2:-}
YAML
}

test_recipe_writes_targets_manifest_and_report() {
  write_recipe "$WORK/r.yaml" "gates: {max-ppl-increase: 1000, max-kl: 5, max-size-mb: 20}"
  expect_exit 0 "$SLMOPT" -t 1 run "$WORK/r.yaml" -o "$WORK/a" --json || return 1
  [ -s "$WORK/a/q4km.gguf" ] && [ -s "$WORK/a/onnx4/onnx/model_q4.onnx" ] && [ -s "$WORK/a/hf4/config.json" ] &&
    [ -s "$WORK/a/report.md" ] || fail "missing outputs: $(ls -R "$WORK/a")" || return 1
  (cd "$WORK/a" && sha256sum q4km.gguf) >"$WORK/sums" || return 1
  python3 - "$WORK/a/manifest.json" "$WORK/out" "$WORK/sums" <<'PY' || return 1
import json, sys
m = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
sums = dict(reversed(l.split()) for l in open(sys.argv[3]))
assert m["format"] == "slmopt-manifest" and m["passed"] is True and len(m["input"]["sha256"]) == 64, m
a = {x["name"]: x for x in m["artifacts"]}
assert set(a) == {"q4km", "onnx4", "hf4"}
assert a["q4km"]["sha256"] == sums["q4km.gguf"], (a, sums)
assert any(f["path"] == "onnx/model_q4.onnx" for f in a["onnx4"]["files"]), a["onnx4"]
assert a["hf4"]["files"] and any(f["path"] == "model.safetensors" for f in a["hf4"]["files"])
for x in a.values():
    e = x["metrics"]
    assert e["tokens_scored"] == 4 * 63 and e["ppl"] > 0 and 0 < e["mean_kl"] < 5, x
    assert x["type_mix"] and all(g["passed"] for g in x["gates"]) and len(x["gates"]) == 3, x
# The pruned model has 576 FFN channels: the GGUF's mix shows the fallback of non-256 rows and q4_k elsewhere.
assert "q4_k" in a["q4km"]["type_mix"], a["q4km"]["type_mix"]
assert any(x["pareto"] for x in a.values())
# One set of calibration windows for prune and every target; ONNX int4 g32 and HF int4 g32 share one GPTQ run.
run = r["run"]
assert run["calibration_window_sets"] == 1 and run["gptq_awq_runs"] == 2, run
assert all(t["eval_tokens_per_second"] > 0 for t in r["targets"]), r["targets"]
PY
  grep -q "| q4km | gguf | Q4_K_M | gptq |" "$WORK/a/report.md" || fail "no table row: $(cat "$WORK/a/report.md")" || return 1
  # Same recipe at 2 threads: byte-identical artifacts and manifest.
  expect_exit 0 "$SLMOPT" -t 2 run "$WORK/r.yaml" -o "$WORK/b" || return 1
  for f in q4km.gguf onnx4/onnx/model_q4.onnx onnx4/config.json hf4/model.safetensors hf4/config.json manifest.json; do
    cmp -s "$WORK/a/$f" "$WORK/b/$f" || fail "$f differs between 1 and 2 threads" || return 1
  done
}

test_failed_gate_exits_6_and_keeps_everything() {
  write_recipe "$WORK/g.yaml" "gates: {max-kl: 0.0000001}" "$ONE_TARGET"
  expect_exit 6 "$SLMOPT" -q run "$WORK/g.yaml" -o "$WORK/g" || return 1
  expect_one_error_line "gate failed: q4km: max-kl" || return 1
  [ -s "$WORK/g/q4km.gguf" ] && grep -q '"passed": false' "$WORK/g/manifest.json" &&
    grep -q FAIL "$WORK/g/report.md" || fail "outputs or failed gate not recorded" || return 1
}

# bad_recipe PATTERN: the recipe in $WORK/bad.yaml is refused with exit 2, one error line matching PATTERN, and
# nothing written.
bad_recipe() {
  expect_exit 2 "$SLMOPT" run "$WORK/bad.yaml" -o "$WORK/bad-out" || return 1
  expect_one_error_line "$1" || return 1
  [ ! -e "$WORK/bad-out" ] || fail "output written for a bad recipe" || return 1
}

test_bad_recipes_name_file_line_and_key() {
  write_recipe "$WORK/bad.yaml"
  sed -i 's/method: gptq$/method: gptq\n    groupsize: 32/' "$WORK/bad.yaml"
  bad_recipe "bad.yaml:1[0-9]: unknown key 'groupsize' for stage quantize" || return 1
  write_recipe "$WORK/bad.yaml"
  sed -i 's/ffn-ratio: 0.25/ffn-ratio: lots/' "$WORK/bad.yaml"
  bad_recipe "bad.yaml:6: key 'ffn-ratio': expected number, got 'lots'" || return 1
  write_recipe "$WORK/bad.yaml"
  sed -i 's/ffn-ratio: 0.25/ffn-ratio: 1.5/' "$WORK/bad.yaml"
  bad_recipe "bad.yaml:6: key 'ffn-ratio': 1.5 is outside \[0, 1\]" || return 1
  write_recipe "$WORK/bad.yaml" "colour: blue"
  bad_recipe "bad.yaml:1[0-9]: unknown key 'colour'" || return 1
  write_recipe "$WORK/bad.yaml"
  sed -i 's/  - prune:/  - quantise:/' "$WORK/bad.yaml"
  bad_recipe "bad.yaml:6: 'quantise' is not a recipe stage" || return 1
  write_recipe "$WORK/bad.yaml"
  sed -i 's/type: q4_k_m/type: q4_k_x/' "$WORK/bad.yaml"
  bad_recipe "target q4km: type 'q4_k_x'" || return 1
  write_recipe "$WORK/bad.yaml"
  sed -i 's/group-size: 32}/group-size: 32, output: x.onnx}/' "$WORK/bad.yaml"
  bad_recipe "key 'output' of stage quantize is set by the recipe itself" || return 1
  write_recipe "$WORK/bad.yaml"
  sed -i 's/seqlen: 64}/seqlen: [64]}/' "$WORK/bad.yaml"
  bad_recipe "bad.yaml:3: key 'calib-seqlen': expected integer" || return 1
  printf 'model: [unclosed\n' >"$WORK/bad.yaml"
  bad_recipe "bad.yaml:[0-9]*: not valid YAML" || return 1
}

test_emit_ninja_builds_the_same_artifacts_and_then_has_nothing_to_do() {
  command -v ninja >/dev/null || { echo "    ninja not installed (scripts/setup.sh installs ninja-build)"; return 1; }
  write_recipe "$WORK/n.yaml"
  expect_exit 0 "$SLMOPT" run "$WORK/n.yaml" -o "$WORK/n" --emit ninja || return 1
  [ "$(grep -c '^build ' "$WORK/n/build.ninja")" -eq 5 ] || fail "expected 5 edges (prune, 3 targets, manifest)" || return 1
  ninja -f "$WORK/n/build.ninja" >"$WORK/ninja1.log" 2>&1 || { cat "$WORK/ninja1.log"; fail "ninja failed"; return 1; }
  ninja -f "$WORK/n/build.ninja" >"$WORK/ninja2.log" 2>&1 || return 1
  grep -q "no work to do" "$WORK/ninja2.log" || fail "second ninja run did work: $(cat "$WORK/ninja2.log")" || return 1
  expect_exit 0 "$SLMOPT" run "$WORK/n.yaml" -o "$WORK/i" || return 1
  for f in q4km.gguf onnx4/onnx/model_q4.onnx hf4/model.safetensors manifest.json; do
    cmp -s "$WORK/n/$f" "$WORK/i/$f" || fail "$f from ninja differs from the one-run recipe" || return 1
  done
}

test_emit_make_builds_and_is_then_up_to_date() {
  write_recipe "$WORK/m.yaml" "" "$ONE_TARGET"
  expect_exit 0 "$SLMOPT" run "$WORK/m.yaml" -o "$WORK/m" --emit make || return 1
  make -s -f "$WORK/m/Makefile" >"$WORK/make1.log" 2>&1 || { cat "$WORK/make1.log"; fail "make failed"; return 1; }
  [ -s "$WORK/m/manifest.json" ] || fail "no manifest" || return 1
  make -q -f "$WORK/m/Makefile" || fail "make -q: not up to date after a build" || return 1
}

run_tests
