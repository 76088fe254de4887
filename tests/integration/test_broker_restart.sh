#!/usr/bin/env bash
# A broker that dies and comes back is survived (issue 11, point 8, in
# part): mosquitto, with persistence, is killed and started again on the
# same port and store under a running `partreg run` and a waiting
# `partreg wait`.
#   - the runner reconnects to its broker session (its Last Will has a
#     delay, --will-delay, and the session outlives the disconnect):
#     nothing is failed, the job keeps its lock and ends ready;
#   - wait reconnects and resubscribes by itself and sees the unlock made
#     after the restart;
#   - a runner that never comes back (killed while the broker is down)
#     still fails its partition (its lease runs out).
# Not covered yet: a graceful stop of mosquitto 2.0 (SIGTERM) sends every
# client's Will at once, whatever its delay, so a routine restart still
# fails running jobs (README, "partreg run").
. "$(dirname "$0")/lib.sh"
: "${PARTREG_CLI:?set by ctest: path to partreg}"
unset PARTREG_TOKEN PARTREG_TOKEN_FILE PARTREG_JSON PARTREG_TIMEOUT PARTREG_PREFIX PARTREG_MQTT_VERSION
start_broker true
start_agent
export PARTREG_BROKER=mqtt://127.0.0.1:$PORT
S=brs
new_source $S
umask 077
echo "$TOKEN" >"$T/tok"
day() { date -u -d "2023-01-01 UTC + $1 day" +%Y-%m-%dT%H:%M:%SZ; }
part() { sub1 "$P/state/$S/partitions/$(day "$1")/$(day $(($1 + 1)))/p"; }
state_within() {
  for _ in $(seq $(($3 * 10))); do
    [ "$(part "$1" | jq -r .state)" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
# restart_broker: kill -9 (a crash), then start it again on the same port
# and store.
restart_broker() {
  kill -9 "$BROKER_PID"
  wait "$BROKER_PID" 2>/dev/null || true
  mosquitto -c "$T/mosquitto.conf" >>"$T/broker.log" 2>&1 &
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  for _ in $(seq 50); do broker_up && return 0; sleep 0.1; done
  fail "mosquitto did not come back"
}

# A job of 8 s under a runner, and a wait for day 2 (locked by the test).
"$PARTREG_CLI" --token-file "$T/tok" run $S --provider p --start "$(day 0)" --end "$(day 1)" -- sleep 8 \
  >"$T/run.out" 2>"$T/run.err" &
RUN=$!
PIDS+=("$RUN")
state_within 0 locked 10 || fail "run did not lock day 0"
L2="{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$(day 1)\",\"end\":\"$(day 2)\",\"access_token\":\"$TOKEN\""
expect "$(rr partition/lock "$L2,\"ttl_s\":600}")" '.ok' "lock day 1 (for the wait)"
"$PARTREG_CLI" wait $S --start "$(day 1)" --end "$(day 2)" --timeout 60 >"$T/wait.out" 2>"$T/wait.err" &
W=$!
PIDS+=("$W")
sleep 1

restart_broker
ok "mosquitto restarted"
wait_online
state_within 0 locked 5 || fail "after the restart day 0 is $(part 0 | jq -r .state), not locked"
ok "after the restart the job still holds its lock"
expect "$(rr partition/unlock "$L2,\"fence\":2}")" '.ok' "unlock day 1 after the restart"
rc=0
wait $W || rc=$?
[ "$rc" = 0 ] || fail "wait exited $rc after the restart and the unlock: $(cat "$T/wait.err")"
ok "wait reconnected and saw the unlock (exit 0)"
rc=0
wait $RUN || rc=$?
[ "$rc" = 0 ] || fail "run exited $rc across the restart: $(cat "$T/run.err")"
expect "$(part 0)" '.state == "ready" and .version == 1' "the job ended ready across the restart"
if grep -q "session_aborted" "$T/agent.log"; then fail "a Last Will fired during the restart"; fi
ok "no Last Will fired"

# A runner that never comes back: killed while the broker is down.
"$PARTREG_CLI" --token-file "$T/tok" run $S --provider p --start "$(day 2)" --end "$(day 3)" --ttl 6 \
  --will-delay 2 -- sleep 60 >"$T/run2.out" 2>"$T/run2.err" &
RUN=$!
PIDS+=("$RUN")
state_within 2 locked 10 || fail "run did not lock day 2"
kill -9 "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
kill -9 "$RUN"
mosquitto -c "$T/mosquitto.conf" >>"$T/broker.log" 2>&1 &
BROKER_PID=$!
PIDS+=("$BROKER_PID")
for _ in $(seq 50); do broker_up && break; sleep 0.1; done
state_within 2 failed 20 || fail "a runner that never came back left day 2 $(part 2 | jq -r .state)"
ok "a runner that never came back: its partition failed ($(part 2 | jq -r .reason))"
pass
