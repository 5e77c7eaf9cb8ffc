#!/usr/bin/env bash
# End-to-end: packaging (issue 12, defect 15). --version names the build; the man page and the bash/zsh
# completions are generated from the command tables, so every subcommand and every option --help lists appears in
# them; `cmake --install` lays out binary, man page, completions and docs; distill_train.py without torch says so
# in one line instead of a traceback.
source "$(dirname "$0")/lib.sh"

test_version_names_commit_compiler_build_type_and_simd() {
  expect_exit 0 "$SLMOPT" --version || return 1
  grep -qE '^slmopt [0-9]+\.[0-9]+\.[0-9]+$' "$WORK/out" || fail "$(cat "$WORK/out")" || return 1
  grep -qE '^commit ([0-9a-f]{12}(-dirty)?|unknown)$' "$WORK/out" || fail "no commit: $(cat "$WORK/out")" || return 1
  grep -qE '^compiler (GNU|Clang) [0-9]' "$WORK/out" || fail "no compiler" || return 1
  grep -qE '^build type [A-Za-z]+' "$WORK/out" || fail "no build type" || return 1
  grep -qE '^SIMD kernels .*portable.* \(in use: (avx512|avx2|portable)\)$' "$WORK/out" || fail "no SIMD line" || return 1
}

# Every option --help prints for each subcommand is in the man page and in both completions.
test_man_page_and_completions_cover_every_help_option() {
  "$SLMOPT" dev man >"$WORK/slmopt.1" || return 1
  "$SLMOPT" dev completion bash >"$WORK/slmopt.bash" || return 1
  "$SLMOPT" dev completion zsh >"$WORK/_slmopt" || return 1
  local commands cmd opt
  commands=$("$SLMOPT" --help | awk '/^Subcommands:/{on=1; next} on && /^  [a-z]/{print $1}')
  [ "$(echo "$commands" | wc -w)" -ge 7 ] || fail "could not read the subcommands: $commands" || return 1
  for cmd in $commands; do
    grep -q "^\.SS \"$cmd\"" "$WORK/slmopt.1" || fail "man page lacks $cmd" || return 1
    grep -q "^    $cmd) " "$WORK/slmopt.bash" || fail "bash completion lacks $cmd" || return 1
    # The first long name on each option line of --help (descriptions may mention other options).
    for opt in $("$SLMOPT" "$cmd" --help | grep -E '^  +(-[a-z],)?--[a-z]' |
                 sed -E 's/^  +(-[a-z],)?(--[a-z][a-z0-9-]*).*/\2/'); do
      grep -qF -- "\\fB$(echo "$opt" | sed 's/-/\\-/g')\\fR" "$WORK/slmopt.1" || fail "man page lacks $cmd $opt" || return 1
      grep "^    $cmd) " "$WORK/slmopt.bash" | grep -qF -- " $opt" || grep "^    $cmd) " "$WORK/slmopt.bash" | grep -qF -- "\"$opt" ||
        fail "bash completion lacks $cmd $opt" || return 1
      grep -qF -- "'$opt[" "$WORK/_slmopt" || fail "zsh completion lacks $opt" || return 1
    done
  done
  # The bash completion works: subcommands after "slmopt", options after "slmopt prune --hea".
  bash -c 'source "$1"; COMP_WORDS=(slmopt pr); COMP_CWORD=1; _slmopt; echo "${COMPREPLY[*]}"' _ "$WORK/slmopt.bash" \
    >"$WORK/c1" || return 1
  grep -qw prune "$WORK/c1" || fail "completing 'pr': $(cat "$WORK/c1")" || return 1
  bash -c 'source "$1"; COMP_WORDS=(slmopt prune m --heads-r); COMP_CWORD=3; _slmopt; echo "${COMPREPLY[*]}"' _ \
    "$WORK/slmopt.bash" >"$WORK/c2" || return 1
  [ "$(cat "$WORK/c2")" = "--heads-ratio" ] || fail "completing '--heads-r': $(cat "$WORK/c2")" || return 1
  if command -v man >/dev/null 2>&1; then
    MANWIDTH=100 man -l "$WORK/slmopt.1" 2>"$WORK/man.err" | grep -q "heads-ratio" || fail "man cannot render it" || return 1
  fi
  if command -v zsh >/dev/null 2>&1; then zsh -n "$WORK/_slmopt" || fail "zsh completion does not parse" || return 1; fi
}

test_install_lays_out_binary_man_page_completions_and_docs() {
  local build
  build=$(cd "$(dirname "$SLMOPT")/../.." && pwd)
  [ -f "$build/cmake_install.cmake" ] || fail "no cmake_install.cmake in $build" || return 1
  cmake --install "$build" --prefix "$WORK/prefix" --component Unspecified >"$WORK/install.log" 2>&1 ||
    fail "install failed: $(tail -5 "$WORK/install.log")" || return 1
  for f in bin/slmopt share/man/man1/slmopt.1 share/bash-completion/completions/slmopt share/zsh/site-functions/_slmopt \
           share/doc/slmopt/README.md share/doc/slmopt/ARCHITECTURE.md; do
    [ -s "$WORK/prefix/$f" ] || fail "install lacks $f" || return 1
  done
  "$WORK/prefix/bin/slmopt" --version | grep -q '^commit ' || fail "the installed binary does not run" || return 1
}

test_distill_train_without_torch_says_so_in_one_line() {
  # python3 -S: no site packages, so no numpy/torch whether or not they are installed.
  local status=0
  python3 -S "$ROOT/scripts/distill_train.py" "$WORK/kit" "$WORK/trained" \
    >"$WORK/out" 2>"$WORK/err" || status=$?
  [ "$status" -eq 4 ] || fail "exit $status, wanted 4: $(cat "$WORK/err")" || return 1
  [ "$(grep -c . "$WORK/err")" -eq 1 ] && grep -q "needs python3 with torch and numpy" "$WORK/err" ||
    fail "stderr: $(cat "$WORK/err")" || return 1
}
run_tests
