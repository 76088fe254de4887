#!/usr/bin/env bash
# A subscription's arg must not outlive its frame (issue 9). partreg wait
# and watch subscribed with an inbox on their stack and returned without
# unsubscribing: a message arriving before pr_client_close ran the callback
# on a dead frame. prog_client_lifetime subscribes in a function with a
# stack arg while messages keep coming: unsubscribing before the return
# (the fix) no callback gets the dead arg; with --no-unsubscribe (the
# defect) it must report that some did (or, under AddressSanitizer, stop
# on a stack-use-after-return), which shows the check detects the bug.
# Then partreg wait and watch end, again and again, while their topics are
# flooded: exit codes as documented and no sanitizer report.
. "$(dirname "$0")/lib.sh"
: "${PARTREG_TEST_PROGS:?set by ctest}"
: "${PARTREG_CLI:?set by ctest: path to partreg}"
unset PARTREG_TOKEN PARTREG_TOKEN_FILE PARTREG_JSON PARTREG_TIMEOUT PARTREG_PREFIX PARTREG_MQTT_VERSION
PROG=$PARTREG_TEST_PROGS/prog_client_lifetime
# Under ASan: a frame that returned stays poisoned, so any use of it is caught.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_stack_use_after_return=1"
start_broker
URL=mqtt://127.0.0.1:$PORT

# ---- the library: unsubscribe, and no callback gets the dead arg ----
set +e; "$PROG" "$URL" >"$T/fixed.out" 2>"$T/fixed.err"; RC=$?; set -e
cat "$T/fixed.out"
[ "$RC" = 0 ] || { cat "$T/fixed.err"; fail "prog_client_lifetime (unsubscribing) exited $RC"; }
sanitizer_clean "$T/fixed.err"
grep -q "dead arg: 0$" "$T/fixed.out" || fail "no count of late callbacks in the output"
ok "unsubscribed before returning: no callback with the dead arg, though messages kept coming"

# ---- the defect is detected ----
set +e; "$PROG" "$URL" --no-unsubscribe >"$T/bug.out" 2>"$T/bug.err"; RC=$?; set -e
sed "s/^/  (expected here) /" "$T/bug.out"
if grep -q "AddressSanitizer: stack-use-after-return" "$T/bug.err"; then
  ok "without the unsubscribe: AddressSanitizer stopped on a stack-use-after-return (exit $RC)"
elif [ "${PARTREG_SANITIZE:-0}" = 1 ]; then
  cat "$T/bug.err"
  fail "without the unsubscribe, under ASan: no stack-use-after-return report (exit $RC)"
elif [ "$RC" = 1 ] && grep -qE "dead arg: [1-9][0-9]*$" "$T/bug.out"; then
  ok "without the unsubscribe: the late callbacks are counted (exit 1)"
else
  cat "$T/bug.err"
  fail "without the unsubscribe the late callbacks went unnoticed (exit $RC)"
fi

# ---- partreg wait and watch end while messages keep arriving ----
start_agent
export PARTREG_BROKER=$URL
S=lsrc
A=2023-01-01T00:00:00Z
B=2023-01-02T00:00:00Z
C=2023-01-03T00:00:00Z
new_source $S
body="{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$A\",\"end\":\"$B\",\"access_token\":\"$TOKEN\"}"
F=$(rr partition/lock "$body" | jq -r .result.fence)
r=$(rr partition/unlock "${body%\}},\"fence\":$F}")
expect "$r" '.ok and .result.state == "ready"' "day 1 ready"
SUMMARY=$(sub1 "$P/state/$S")
expect "$SUMMARY" ".ready == [[\"$A\",\"$B\"]]" "the retained summary says so"
# flood TOPIC PAYLOAD: a message every few milliseconds until the test ends
# (killing mosquitto_pub ends the loop feeding it).
flood() {
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -t "$1" -l \
    < <(while :; do printf '%s\n' "$2" || exit 0; sleep 0.002; done) 2>>"$T/flood.log" &
  PIDS+=($!)
}
flood "$P/state/$S" "$SUMMARY"
# A batch of three events (format 2): --count 20 stops inside a batch.
ev() { echo "{\"seq\":$1,\"epoch\":1,\"at\":\"2023-01-01T00:00:00Z\",\"type\":\"noise\",\"source\":\"$S\"}"; }
flood "$P/events/$S" "{\"v\":2,\"source\":\"$S\",\"epoch\":1,\"events\":[$(ev 1),$(ev 2),$(ev 3)]}"
cli() {
  set +e
  "$PARTREG_CLI" "$@" >"$T/cli.out" 2>>"$T/cli.err"
  RC=$?
  set -e
}
for i in 1 2 3 4 5; do
  cli wait $S --start $A --end $B --timeout 10
  [ "$RC" = 0 ] || { cat "$T/cli.err"; fail "wait on a ready day, topic flooded, exited $RC (round $i)"; }
  cli wait $S --start $A --end $C --timeout 0.5
  [ "$RC" = 4 ] || { cat "$T/cli.err"; fail "wait on a gap, topic flooded, exited $RC, expected 4 (round $i)"; }
  cli watch $S --count 20 --timeout 10
  [ "$RC" = 0 ] && [ "$(wc -l <"$T/cli.out")" = 20 ] ||
    { cat "$T/cli.err"; fail "watch --count 20, topic flooded, exited $RC with $(wc -l <"$T/cli.out") lines (round $i)"; }
  cli watch $S --timeout 0.5
  [ "$RC" = 0 ] || { cat "$T/cli.err"; fail "watch --timeout 0.5, topic flooded, exited $RC (round $i)"; }
done
sanitizer_clean "$T/cli.err"
ok "wait (ready and timed out) and watch (--count and --timeout) end cleanly while messages keep coming, 5 rounds"
pass
