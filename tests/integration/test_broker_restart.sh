#!/usr/bin/env bash
# A broker restart is survived (issue 11): mosquitto, with persistence, is
# restarted under a running `partreg run` and a waiting `partreg wait` —
# gracefully (SIGTERM: mosquitto 2.0 then sends every client's Last Will at
# once, whatever its delay), and by a crash (kill -9).
#   - the runner's Will is session/abort with grace_s (--will-delay, 10 s):
#     the agent fails nothing unless no renew under the session comes
#     within the grace; the runner reconnects, renews, keeps its lock and
#     ends ready;
#   - wait reconnects and resubscribes by itself and sees the unlock made
#     after the restart;
#   - a runner that never comes back (killed while the broker is down)
#     still fails its partition.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_cli.sh"
start_broker true
start_agent
export PARTREG_BROKER=mqtt://127.0.0.1:$PORT
S=brs
new_source $S
umask 077
echo "$TOKEN" >"$T/tok"
day() { date -u -d "2023-01-01 UTC + $1 day" +%Y-%m-%dT%H:%M:%SZ; }
ptopic() { echo "$P/state/$S/partitions/$(day "$1")/$(day $(($1 + 1)))/p"; }
part() { sub1 "$(ptopic "$1")"; }
# state_within N STATE SECONDS: day N's retained state becomes STATE in time.
state_within() { retained_within "$(ptopic "$1")" ".state == \"$2\"" "$3"; }
# restart_broker SIGNAL: stop mosquitto with SIGNAL, then start it again on
# the same port and store.
restart_broker() {
  kill "-$1" "$BROKER_PID"
  wait "$BROKER_PID" 2>/dev/null || true
  mosquitto -c "$T/mosquitto.conf" >>"$T/broker.log" 2>&1 &
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  for _ in $(seq 50); do broker_up && return 0; sleep 0.1; done
  fail "mosquitto did not come back"
}

# scenario SIGNAL DAY: a run of day DAY and a wait for DAY+1 across a restart.
scenario() {
  local sig=$1 d=$2 RUN W rc L2
  # A job of 8 s under a runner, and a wait for day d+1 (locked by the test).
  "$PARTREG_CLI" --token-file "$T/tok" run $S --provider p --start "$(day $d)" --end "$(day $((d + 1)))" -- sleep 8 \
    >"$T/run.out" 2>"$T/run.err" &
  RUN=$!
  PIDS+=("$RUN")
  state_within $d locked 10 || fail "run did not lock day $d"
  L2="{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$(day $((d + 1)))\",\"end\":\"$(day $((d + 2)))\",\"access_token\":\"$TOKEN\""
  expect "$(rr partition/lock "$L2,\"ttl_s\":600}")" '.ok' "lock day $((d + 1)) (for the wait)"
  "$PARTREG_CLI" wait $S --start "$(day $((d + 1)))" --end "$(day $((d + 2)))" --timeout 60 >"$T/wait.out" 2>"$T/wait.err" &
  W=$!
  PIDS+=("$W")
  sleep 1

  restart_broker $sig
  ok "mosquitto restarted (SIG$sig)"
  wait_online
  state_within $d locked 5 || fail "after the restart day $d is $(part $d | jq -r .state), not locked"
  ok "after the restart the job still holds its lock"
  expect "$(rr partition/unlock "$L2,\"fence\":$(part $((d + 1)) | jq .fence)}")" '.ok' "unlock day $((d + 1)) after the restart"
  rc=0
  wait $W || rc=$?
  [ "$rc" = 0 ] || fail "wait exited $rc after the restart and the unlock: $(cat "$T/wait.err")"
  ok "wait reconnected and saw the unlock (exit 0)"
  rc=0
  wait $RUN || rc=$?
  [ "$rc" = 0 ] || fail "run exited $rc across the restart: $(cat "$T/run.err")"
  expect "$(part $d)" '.state == "ready" and .version == 1' "the job ended ready across the restart"
  if grep -q "session_aborted" "$T/agent.log"; then fail "a Last Will fired during the restart"; fi
  ok "no Last Will fired"
}

scenario TERM 0
scenario KILL 3

# A runner that never comes back: killed while the broker is down.
"$PARTREG_CLI" --token-file "$T/tok" run $S --provider p --start "$(day 6)" --end "$(day 7)" --ttl 60 \
  --will-delay 2 -- sleep 60 >"$T/run2.out" 2>"$T/run2.err" &
RUN=$!
PIDS+=("$RUN")
state_within 6 locked 10 || fail "run did not lock day 6"
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
kill -9 "$RUN"
mosquitto -c "$T/mosquitto.conf" >>"$T/broker.log" 2>&1 &
BROKER_PID=$!
PIDS+=("$BROKER_PID")
for _ in $(seq 50); do broker_up && break; sleep 0.1; done
state_within 6 failed 20 || fail "a runner that never came back left day 6 $(part 6 | jq -r .state)"
expect "$(part 6)" '.reason != "lease_expired"' "a runner that never came back: its partition failed by its Will ($(part 6 | jq -r .reason))"
pass
