#!/usr/bin/env bash
# End-to-end: Ctrl-C leaves no partial output (issue 12, defect 9). distill-export is interrupted with SIGINT
# after its student is written and while it exports soft labels; the kit must not appear (no student without
# labels and recipe), no temporary folder may stay behind, and the exit code is 128 + SIGINT.
source "$(dirname "$0")/lib.sh"
KJV=$MODELS/llama-5m-kjv

test_interrupted_distill_export_leaves_no_kit() {
  local pid status=0 i dir=$WORK/interrupted
  mkdir -p "$dir"
  # A background job of a script starts with SIGINT ignored; give it the default disposition a terminal's
  # foreground job has (slmopt keeps an inherited "ignore", as nohup expects).
  python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$SLMOPT" distill-export "$KJV" --text "$MODELS/data/kjv-calib.txt" --ctx 128 -o "$dir/kit" \
    >"$WORK/out" 2>"$WORK/err" &
  pid=$!
  # Wait until the student is on disk (in the kit, or in the temporary folder it is assembled in).
  for ((i = 0; i < 600; i++)); do
    compgen -G "$dir/kit/student/config.json" >/dev/null && break
    compgen -G "$dir/.kit.tmp.*/student/config.json" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -INT "$pid" 2>/dev/null || fail "distill-export finished before it could be interrupted" || return 1
  wait "$pid" || status=$?
  [ "$status" -eq 130 ] || fail "exit $status, wanted 130: $(cat "$WORK/err")" || return 1
  [ ! -e "$dir/kit" ] || fail "a partial kit was left: $(ls -R "$dir/kit" | head -20)" || return 1
  local left
  left=$(ls -A "$dir")
  [ -z "$left" ] || fail "temporary files left behind: $left" || return 1
  grep -q "interrupted" "$WORK/err" || fail "no interruption message: $(cat "$WORK/err")" || return 1
}

test_completed_distill_export_replaces_an_earlier_kit_only() {
  expect_exit 0 "$SLMOPT" distill-export "$KJV" --text "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 2 \
    -o "$WORK/kit2" || return 1
  [ -f "$WORK/kit2/distill_recipe.json" ] && [ -d "$WORK/kit2/soft_labels" ] || fail "incomplete kit" || return 1
  expect_exit 0 "$SLMOPT" distill-export "$KJV" --text "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 2 \
    -o "$WORK/kit2" || return 1
  mkdir -p "$WORK/notakit" && echo keep >"$WORK/notakit/mine.txt"
  expect_exit 2 "$SLMOPT" distill-export "$KJV" --text "$MODELS/data/kjv-eval.txt" --ctx 64 --max-windows 2 \
    -o "$WORK/notakit" || return 1
  expect_one_error_line "not a distillation kit" || return 1
  [ "$(cat "$WORK/notakit/mine.txt")" = keep ] || fail "a foreign folder was touched" || return 1
}
run_tests
