#!/usr/bin/env bash
# partreg wait against a real mosquitto + partregd: exits 0 within a
# fraction of a second of the unlock that makes the interval ready (the
# figure is printed), at once when it already is, 4 on --timeout when
# nothing comes, 5 for an unknown source, 3 when the broker is unreachable;
# it follows the retained summary and sends no command while it waits (no
# polling); a failed partition or a gap keeps it waiting.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_cli.sh"
start_broker
start_agent
export PARTREG_BROKER=mqtt://127.0.0.1:$PORT
S=wsrc
A=2023-01-01T00:00:00Z
B=2023-01-02T00:00:00Z
C=2023-01-03T00:00:00Z
new_source $S
body() { echo "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$1\",\"end\":\"$2\",\"access_token\":\"$TOKEN\"${3:-}}"; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
lt() { [ "$(echo "$1 < $2" | bc)" = 1 ]; }

# start_wait NAME ARGS...: partreg wait in the background; its exit status
# and the time it exited go to $T/NAME.done.
start_wait() {
  local name=$1
  shift
  ( set +e
    "$PARTREG_CLI" wait "$@" >"$T/$name.out" 2>"$T/$name.err" &
    echo $! >"$T/$name.pid"
    wait $!
    echo "$? $(date +%s.%N)" >"$T/$name.done" ) &
  PIDS+=("$!")
  for _ in $(seq 100); do [ -s "$T/$name.pid" ] && break; sleep 0.01; done
  PIDS+=("$(cat "$T/$name.pid")")
}
# done_within NAME SECONDS: wait for NAME to exit; sets WRC and WAT.
done_within() {
  for _ in $(seq $(($2 * 100))); do [ -s "$T/$1.done" ] && break; sleep 0.01; done
  [ -s "$T/$1.done" ] || { cat "$T/$1.err" >&2; fail "wait ($1) did not exit within $2 s"; }
  read -r WRC WAT <"$T/$1.done"
}
still_waiting() { [ ! -e "$T/$1.done" ] || { cat "$T/$1.err" >&2; fail "wait ($1) exited early: $(cat "$T/$1.done")"; }; }

# ---- exits within a fraction of a second of the unlock ----
r=$(rr partition/lock "$(body $A $B)")
expect "$r" '.ok and .result.state == "locked"' "day 1 locked"
F=$(jq -r .result.fence <<<"$r")
start_wait w1 $S --start $A --end $B --timeout 30
# Watch the command topics meanwhile: wait must not poll the agent.
mosquitto_sub -h 127.0.0.1 -p "$PORT" -v -t "$P/cmd/#" >"$T/cmds.log" 2>/dev/null &
SUBPID=$!
PIDS+=("$SUBPID")
sleep 3
still_waiting w1
ok "wait keeps waiting while the day is locked"
t0=$(now)
r=$(rr partition/unlock "$(body $A $B ",\"fence\":$F")")
t1=$(now)
expect "$r" '.ok and .result.state == "ready"' "day 1 unlocked"
done_within w1 5
[ "$WRC" = 0 ] || { cat "$T/w1.err" >&2; fail "wait exited $WRC after the unlock, expected 0"; }
ok "wait exits 0 once ready"
d=$(secs "$t0" "$WAT")
echo "  wait exited $d s after the unlock was sent (the unlock's round trip took $(secs "$t0" "$t1") s)"
lt "$d" 2 || fail "wait took $d s after the unlock (expected < 2 s)"
ok "wait exits within a fraction of a second of the unlock ($d s)"
kill "$SUBPID" 2>/dev/null || true
n=$(grep -vcE "^$P/cmd/partition/(lock|unlock) " "$T/cmds.log" || true)
[ "$n" -le 1 ] || { cat "$T/cmds.log" >&2; fail "wait sent $n commands in 3 s of waiting (polling?)"; }
ok "no polling: wait sent $n command(s) to the agent while it waited 3 s"
has_line() { grep -qE -- "$2" "$1" || { cat "$1" >&2; fail "$3"; }; ok "$3"; }
has_line "$T/w1.err" "locked|$A" "wait said what it waits for (the locked day) on stderr"

# ---- already ready: at once ----
t0=$(now)
set +e; "$PARTREG_CLI" wait $S --start $A --end $B --timeout 10 >"$T/w2.out" 2>"$T/w2.err"; RC=$?; set -e
d=$(secs "$t0" "$(now)")
[ "$RC" = 0 ] || { cat "$T/w2.err" >&2; fail "wait on a ready day exited $RC"; }
echo "  wait on a ready day took $d s (connect included)"
lt "$d" 2 || fail "wait on a ready day took $d s"
ok "already ready: exit 0 at once ($d s)"
set +e; "$PARTREG_CLI" wait $S --start 2023-01-01T06:00:00Z --end 2023-01-01T18:00:00Z >/dev/null 2>&1; RC=$?; set -e
[ "$RC" = 0 ] || fail "wait inside a ready day (no --timeout) exited $RC"
ok "a part of a ready day is ready, also without --timeout"

# ---- timeout: 4 after --timeout when nothing comes ----
t0=$(now)
set +e; "$PARTREG_CLI" wait $S --start $A --end $C --timeout 1.5 >"$T/w3.out" 2>"$T/w3.err"; RC=$?; set -e
d=$(secs "$t0" "$(now)")
[ "$RC" = 4 ] || { cat "$T/w3.err" >&2; fail "wait with a gap exited $RC, expected 4 on timeout"; }
echo "  timed out after $d s (--timeout 1.5)"
lt 1.4 "$d" && lt "$d" 4 || fail "wait --timeout 1.5 took $d s"
ok "nothing comes: exit 4 after --timeout ($d s)"
grep -q "$B" "$T/w3.err" || { cat "$T/w3.err" >&2; fail "the timeout message does not name the gap"; }
ok "the timeout message names what is missing"
set +e; PARTREG_TIMEOUT=1 "$PARTREG_CLI" wait $S --start $A --end $C >/dev/null 2>&1; RC=$?; set -e
[ "$RC" = 4 ] || fail "PARTREG_TIMEOUT=1: exit $RC, expected 4"
ok "PARTREG_TIMEOUT gives wait a timeout"

# ---- on a terminal: a live status line (rewritten in place) of what it waits for ----
if command -v script >/dev/null; then
  r=$(rr partition/lock "$(body $B $C)")
  expect "$r" '.ok and .result.state == "locked"' "day 2 locked"
  set +e
  SHELL=/bin/sh script -qfec "'$PARTREG_CLI' wait $S --start $A --end $C --timeout 2.5" "$T/tty.log" >/dev/null 2>&1
  RC=$?
  set -e
  [ "$RC" = 4 ] || { cat -v "$T/tty.log" >&2; fail "wait on a terminal exited $RC, expected 4"; }
  grep -q $'\r\e\[K' "$T/tty.log" || { cat -v "$T/tty.log" >&2; fail "no live line (carriage return + erase line) on a terminal"; }
  grep -aq "locked by p" "$T/tty.log" || { cat -v "$T/tty.log" >&2; fail "the live line does not say who holds the lock"; }
  ok "on a terminal: a live line says what wait still waits for (the locked day and its provider)"
  r=$(rr partition/fail "$(body $B $C ",\"fence\":$(jq -r .result.fence <<<"$r")")")
  expect "$r" '.ok' "day 2 failed again"
else
  echo "  (no script(1): the terminal check is skipped)"
fi

# ---- a failed partition keeps it waiting; a new run that succeeds ends it ----
r=$(rr partition/lock "$(body $B $C)")
F2=$(jq -r .result.fence <<<"$r")
start_wait w4 $S --start $A --end $C --timeout 30
sleep 1
r=$(rr partition/fail "$(body $B $C ",\"fence\":$F2")")
expect "$r" '.ok and .result.state == "failed"' "day 2 failed"
sleep 1.5
still_waiting w4
ok "a failed partition does not end the wait"
r=$(rr partition/lock "$(body $B $C)")
F3=$(jq -r .result.fence <<<"$r")
sleep 0.5
still_waiting w4
t0=$(now)
r=$(rr partition/unlock "$(body $B $C ",\"fence\":$F3")")
done_within w4 5
[ "$WRC" = 0 ] || { cat "$T/w4.err" >&2; fail "wait over two days exited $WRC"; }
ok "two days: ready when the second is unlocked ($(secs "$t0" "$WAT") s)"

# ---- any provider's unfinished partition blocks ----
r=$(rr provider/register "{\"source\":\"$S\",\"provider\":\"q\",\"access_token\":\"$TOKEN\"}")
r=$(rr partition/register "{\"source\":\"$S\",\"provider\":\"q\",\"start\":\"$A\",\"end\":\"$B\",\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok and .result.state == "pending"' "q declares day 1: pending"
set +e; "$PARTREG_CLI" wait $S --start $A --end $B --timeout 1 >/dev/null 2>&1; RC=$?; set -e
[ "$RC" = 4 ] || fail "wait with a pending partition of another provider exited $RC"
ok "another provider's pending partition blocks the wait"
start_wait w5 $S --start $A --end $B --timeout 30
sleep 1
r=$(rr partition/delete "{\"source\":\"$S\",\"provider\":\"q\",\"start\":\"$A\",\"end\":\"$B\",\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok' "q's day deleted"
done_within w5 5
[ "$WRC" = 0 ] || { cat "$T/w5.err" >&2; fail "wait exited $WRC after the blocker was deleted"; }
ok "deleting the blocker ends the wait"

# ---- --json ----
set +e; "$PARTREG_CLI" --json wait $S --start $A --end $C --timeout 5 >"$T/w6.out" 2>"$T/w6.err"; RC=$?; set -e
[ "$RC" = 0 ] || fail "wait --json exited $RC"
[ ! -s "$T/w6.err" ] || { cat "$T/w6.err" >&2; fail "wait --json wrote on stderr"; }
if [ -s "$T/w6.out" ]; then expect "$(cat "$T/w6.out")" 'type == "object"' "wait --json: stdout is JSON"; fi
ok "wait --json: exit 0, nothing on stderr"

# ---- unknown source 5, unreachable broker 3, usage 2 ----
set +e; "$PARTREG_CLI" wait nosuch --start $A --end $B --timeout 5 >/dev/null 2>"$T/w7.err"; RC=$?; set -e
[ "$RC" = 5 ] || fail "wait on an unknown source exited $RC, expected 5"
grep -q unknown_source "$T/w7.err" || fail "unknown source not named"
ok "unknown source: exit 5"
CLOSED=$((PORT + 1))
while mosquitto_sub -h 127.0.0.1 -p $CLOSED -t x -C 1 -W 1 >/dev/null 2>&1; do CLOSED=$((CLOSED + 1)); done
set +e; "$PARTREG_CLI" --broker mqtt://127.0.0.1:$CLOSED wait $S --start $A --end $B --timeout 1 >/dev/null 2>&1; RC=$?; set -e
[ "$RC" = 3 ] || fail "wait with the broker unreachable exited $RC, expected 3"
ok "broker unreachable: exit 3"
set +e; "$PARTREG_CLI" wait $S --start $A >/dev/null 2>&1; RC=$?; set -e
[ "$RC" = 2 ] || fail "wait without --end exited $RC"
set +e; "$PARTREG_CLI" wait $S --start $B --end $A --timeout 2 >/dev/null 2>&1; RC=$?; set -e
[ "$RC" = 2 ] || [ "$RC" = 1 ] || fail "wait with start > end exited $RC"
set +e; "$PARTREG_CLI" wait $S --start yesterday --end $A --timeout 2 >/dev/null 2>&1; RC=$?; set -e
[ "$RC" = 2 ] || [ "$RC" = 1 ] || fail "wait with a bad time exited $RC"
ok "usage errors: no --end 2, bad intervals refused"

# ---- SIGTERM ends a wait without an answer ----
start_wait w8 $S --start $A --end 2023-01-05T00:00:00Z
sleep 1
still_waiting w8
kill -TERM "$(cat "$T/w8.pid")"
done_within w8 3
[ "$WRC" != 0 ] && [ "$WRC" != 4 ] || fail "wait exited $WRC on SIGTERM (not ready: must not be 0, nor the timeout code)"
ok "SIGTERM ends a wait with status $WRC"
for f in "$T"/*.err; do sanitizer_clean "$f"; done
ok "no sanitizer report from partreg"
pass
