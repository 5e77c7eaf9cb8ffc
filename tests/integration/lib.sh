# Helpers for end-to-end tests of the slmopt binary. Each test file sources this, defines test_* functions and
# calls run_tests; the summary line "N passed, N failed" is what CI reads.
set -u
SLMOPT=${SLMOPT:?SLMOPT must name the slmopt binary}
ROOT=${SLMOPT_SOURCE_DIR:?SLMOPT_SOURCE_DIR must name the repository}
MODELS=$ROOT/models
WORK=$(mktemp -d "${TMPDIR:-/tmp}/slmopt-it.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Whatever the commands under test leave in the temp folder (onnxruntime-node writes a mat-debug-<pid>.log into
# it from every process) goes with $WORK.
export TMPDIR=$WORK/tmp
mkdir -p "$TMPDIR"
passed=0
failed=0

fail() { echo "    FAIL: $*"; return 1; }

# expect_exit CODE CMD...: runs CMD, checks its exit code; stdout/stderr land in $WORK/out, $WORK/err.
expect_exit() {
  local want=$1
  shift
  local got=0
  "$@" >"$WORK/out" 2>"$WORK/err" || got=$?
  [ "$got" -eq "$want" ] || { echo "    command: $*"; sed 's/^/    stderr: /' "$WORK/err" | head -5; fail "exit $got, wanted $want"; }
}

# expect_one_error_line PATTERN: stderr is exactly one line, it starts with "slmopt: error:" and matches PATTERN.
expect_one_error_line() {
  local lines
  lines=$(grep -c . "$WORK/err")
  [ "$lines" -eq 1 ] || { sed 's/^/    stderr: /' "$WORK/err"; fail "stderr has $lines lines, wanted 1"; return 1; }
  grep -q "^slmopt: error: .*$1" "$WORK/err" || { sed 's/^/    stderr: /' "$WORK/err"; fail "stderr does not match '$1'"; }
}

run_tests() {
  local t
  for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
    # Not `if (set -e; $t)` nor `(set -e; $t) || status=$?`: bash ignores set -e inside a condition or on the
    # left of || (the subshell too), so only a test's last command would count.
    local status=0
    (set -e; $t)
    status=$?
    if [ "$status" -eq 0 ]; then
      echo "[ OK ] $t"
      passed=$((passed + 1))
    else
      echo "[FAIL] $t"
      failed=$((failed + 1))
    fi
  done
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
