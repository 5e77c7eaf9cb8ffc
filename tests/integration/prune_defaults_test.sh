#!/usr/bin/env bash
# End-to-end: prune's defaults (issue 12, defects 2, 14 and 16). The default importance is "mixed" (FFN channels
# by activation, heads by masked loss within a budget) and finishes in seconds on llama-5m-kjv; a head ratio that
# rounds to no cut is refused before any calibration; the report is a readable summary, not a JSON dump.
source "$(dirname "$0")/lib.sh"
KJV=$MODELS/llama-5m-kjv
SMALL_CALIB=(--calib "$MODELS/data/kjv-calib.txt" --calib-samples 6 --calib-seqlen 64)

test_default_importance_is_mixed_and_the_report_is_readable() {
  expect_exit 0 "$SLMOPT" prune "$KJV" "${SMALL_CALIB[@]}" --heads-ratio 0.5 --ffn-ratio 0.25 \
    --eval "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 2 -o "$WORK/p" || return 1
  grep -q "parameters .* removed" "$WORK/out" || fail "no parameter line: $(cat "$WORK/out")" || return 1
  python3 - "$WORK/p/report.json" "$WORK/p/report.md" <<'PY' || return 1
import json, sys
r = json.load(open(sys.argv[1]))
md = open(sys.argv[2]).read()
x = r["extra"]
assert x["importance"] == "mixed" and x["importance_heads"] == "loss", x["importance"]
assert r["settings"]["importance"] == "mixed" and "layer_heads" not in r["settings"], r["settings"]
assert r["command_line"].startswith("slmopt prune ") and "--heads-ratio 0.5" in r["command_line"], r["command_line"]
assert r["output_parameters"] < r["parameters"], (r["output_parameters"], r["parameters"])
for l in x["plan"]["layers"]:
    assert l["heads"].startswith("2 of 4: ") and l["ffn"].startswith("576 of 768: "), l
# Readable: a plan table, details one line each, and short (the full index lists made ~800 lines).
assert "## What each layer kept" in md and "| 0 | 0 | 2 / 4 | 2 / 2 | 576 / 768 |" in md, md
assert len(md.splitlines()) < 80, len(md.splitlines())
assert len(json.dumps(r, indent=2).splitlines()) < 200
PY
}

test_head_ratio_that_removes_nothing_is_refused_up_front() {
  # 4 query heads in 2 KV groups per layer: a cut removes 2 at a time, so 0.1 and 0.25 keep all 4. No --calib:
  # the refusal comes before any calibration work.
  for ratio in 0.1 0.25; do
    expect_exit 2 "$SLMOPT" prune "$KJV" --heads-ratio "$ratio" -o "$WORK/none" || return 1
    expect_one_error_line "head ratio of $ratio removes no head.*use a ratio above 0.25" || return 1
    [ ! -e "$WORK/none" ] || fail "an output was written" || return 1
  done
}
run_tests
