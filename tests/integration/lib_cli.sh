# SPDX-License-Identifier: MIT
# Helpers for the tests of partreg, the CLI; source after lib.sh. Nothing
# from the caller's environment may steer the CLI.
: "${PARTREG_CLI:?set by ctest: path to partreg}"
unset PARTREG_TOKEN PARTREG_TOKEN_FILE PARTREG_JSON PARTREG_TIMEOUT PARTREG_PREFIX \
  PARTREG_USERNAME PARTREG_PASSWORD_FILE PARTREG_CAFILE PARTREG_CERT PARTREG_KEY PARTREG_MQTT_VERSION

# cli ARGS...: run partreg; sets RC, OUT (stdout) and ERR (stderr). Every
# output is also kept in $T/all.out (test_cli.sh checks it never holds a
# token; KEEP_TOKEN_OUTPUT=1 leaves one out).
cli() {
  set +e
  "$PARTREG_CLI" "$@" >"$T/out" 2>"$T/err"
  RC=$?
  set -e
  OUT=$(cat "$T/out")
  ERR=$(cat "$T/err")
  if [ "${KEEP_TOKEN_OUTPUT:-0}" != 1 ]; then cat "$T/out" "$T/err" >>"$T/all.out"; fi
}
# has TEXT PATTERN DESCRIPTION: grep -E PATTERN in TEXT; hasnt: not in it.
has() { grep -qE -- "$2" <<<"$1" || { echo "got: $1" >&2; fail "$3 (expected /$2/)"; }; ok "$3"; }
hasnt() { ! grep -qE -- "$2" <<<"$1" || { echo "got: $1" >&2; fail "$3 (unexpected /$2/)"; }; ok "$3"; }
# rc N DESCRIPTION: the last call (cli, or a test's own runner setting RC,
# OUT, ERR) exited N.
rc() {
  if [ "$RC" != "$1" ]; then
    echo "stdout: $OUT" >&2
    echo "stderr: $ERR" >&2
    fail "$2 (exit $RC, expected $1)"
  fi
  ok "$2 (exit $1)"
}
