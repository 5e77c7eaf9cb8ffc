#!/usr/bin/env bash
# End-to-end: what a new user meets (issue 12, defect 13): suggestions for mistyped subcommands and options, usage
# lines that say "slmopt", overrides that match nothing, --dry-run without -o, NO_COLOR, and progress lines on a
# terminal that end properly, also on Ctrl-C.
source "$(dirname "$0")/lib.sh"
TINY=$MODELS/tinystories-656k
KJV=$MODELS/llama-5m-kjv

# on_terminal OUTFILE CMD...: runs CMD with stdout/stderr on a pseudo-terminal (util-linux script), output to
# OUTFILE.
on_terminal() {
  local out=$1
  shift
  script -qfec "$(printf '%q ' "$@")" /dev/null >"$out" 2>&1
}

test_unknown_subcommand_suggests_the_closest() {
  expect_exit 2 "$SLMOPT" quantise "$TINY"
  expect_one_error_line "unknown subcommand 'quantise'; did you mean 'quantize'?"
  expect_exit 2 "$SLMOPT" frobnicate
  expect_one_error_line "unknown subcommand 'frobnicate' (subcommands: quantize, compile"
  expect_exit 2 "$SLMOPT" -t 2
  expect_one_error_line "name a subcommand"
}

test_option_typo_suggests_the_closest() {
  expect_exit 2 "$SLMOPT" quantize "$TINY" --calib-sample 3 -o "$WORK/x.gguf"
  expect_one_error_line "unknown option --calib-sample for slmopt quantize; did you mean --calib-samples?"
  expect_exit 2 "$SLMOPT" eval "$TINY" --txt "$MODELS/data/tinystories-eval.txt"
  expect_one_error_line "did you mean --text?"
  [ ! -e "$WORK/x.gguf" ] || fail "output written"
}

test_usage_lines_name_slmopt_not_the_build_path() {
  expect_exit 0 "$SLMOPT" quantize --help
  grep -q "^Usage: slmopt quantize" "$WORK/out" || fail "usage line: $(grep -i usage "$WORK/out")"
  ! grep -q "$(dirname "$SLMOPT")" "$WORK/out" || fail "help shows the build path"
}

test_overrides_that_match_no_tensor_are_errors() {
  expect_exit 2 "$SLMOPT" quantize "$TINY" --type q4_0 --type-for 'blk.*.ffn_dwn.weight=q8_0' -o "$WORK/t.gguf"
  expect_one_error_line "--type-for 'blk.\*.ffn_dwn.weight' matches no tensor"
  expect_exit 2 "$SLMOPT" quantize "$TINY" --type q4_0 --keep 'model.layers.*.mlp.gate.weight' -o "$WORK/t.gguf"
  expect_one_error_line "--keep 'model.layers.\*.mlp.gate.weight' matches no tensor"
  [ ! -e "$WORK/t.gguf" ] || fail "output written"
  # A pattern that matches (GGUF or HF spelling) is accepted.
  expect_exit 0 "$SLMOPT" quantize "$TINY" --type q4_0 --keep 'blk.*.ffn_down.weight' --dry-run
}

test_dry_run_needs_no_output() {
  expect_exit 0 "$SLMOPT" quantize "$TINY" --type q4_k_m --dry-run
  grep -q "model.layers.0.mlp.down_proj.weight" "$WORK/out" || fail "no plan: $(head -3 "$WORK/out")"
  expect_exit 2 "$SLMOPT" quantize "$TINY" --type q4_k_m
  expect_one_error_line "-o/--output is required (unless --dry-run)"
}

test_no_color_turns_colour_off_on_a_terminal() {
  command -v script >/dev/null || { echo "    skipped: no util-linux script"; return 0; }
  on_terminal "$WORK/colour" "$SLMOPT" compile "$TINY" --format hf -o "$WORK/c1"
  grep -q $'\e\[' "$WORK/colour" || fail "no colour on a terminal without NO_COLOR: $(cat -v "$WORK/colour")"
  NO_COLOR=1 on_terminal "$WORK/plain" "$SLMOPT" compile "$TINY" --format hf -o "$WORK/c2"
  ! grep -q $'\e\[' "$WORK/plain" || fail "colour despite NO_COLOR: $(cat -v "$WORK/plain")"
  grep -q "^info: wrote" "$WORK/plain" || fail "log line missing: $(cat -v "$WORK/plain")"
}

test_eval_shows_progress_on_a_terminal_only() {
  command -v script >/dev/null || { echo "    skipped: no util-linux script"; return 0; }
  on_terminal "$WORK/tty" "$SLMOPT" eval "$TINY" --text "$MODELS/data/tinystories-eval.txt" --ctx 64 --max-windows 4
  grep -q "evaluating perplexity.*100.0%" "$WORK/tty" || fail "no progress line: $(cat -v "$WORK/tty")"
  "$SLMOPT" eval "$TINY" --text "$MODELS/data/tinystories-eval.txt" --ctx 64 --max-windows 4 2>"$WORK/pipe" >/dev/null
  ! grep -q "evaluating" "$WORK/pipe" || fail "progress drawn into a pipe"
}

test_ctrl_c_ends_the_progress_line() {
  command -v script >/dev/null || { echo "    skipped: no util-linux script"; return 0; }
  # SIGINT after 1 s of a whole-text evaluation (several seconds): the bar's line is ended, the run dies of SIGINT.
  on_terminal "$WORK/int" timeout -s INT 1 "$SLMOPT" -t 1 eval "$KJV" --text "$MODELS/data/kjv-eval.txt" --ctx 256 \
    || true  # the run ends by SIGINT
  grep -q "evaluating perplexity" "$WORK/int" || { echo "    skipped: finished before the interrupt"; return 0; }
  ! grep -q "100.0%" "$WORK/int" || { echo "    skipped: finished before the interrupt"; return 0; }
  [ "$(tail -c 2 "$WORK/int" | od -An -c | tr -d ' ')" = '\r\n' ] ||
    fail "the progress line was left open: $(tail -c 80 "$WORK/int" | cat -v)"
}

run_tests
