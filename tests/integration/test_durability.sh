#!/usr/bin/env bash
# Durability and self-healing: state survives kill -9 of the agent; the Last
# Will says "offline"; commands sent while the agent is down are answered
# when it comes back (persistent session); a broker restarted without
# persistence gets every retained message back from the agent.
. "$(dirname "$0")/lib.sh"
start_broker false
start_agent

S=orders
Z1=2023-01-01T00:00:00Z; Z2=2023-01-02T00:00:00Z; Z3=2023-01-03T00:00:00Z
TOKEN=$(rr source/register "{\"source\":\"$S\",\"owner\":\"team\"}" | jq -r .result.access_token)
rr provider/register "{\"source\":\"$S\",\"provider\":\"etl\",\"access_token\":\"$TOKEN\"}" >/dev/null
part() { echo "{\"source\":\"$S\",\"provider\":\"etl\",\"start\":\"$1\",\"end\":\"$2\",\"access_token\":\"$TOKEN\"${3:-}}"; }
expect "$(rr partition/lock "$(part $Z1 $Z2)")" '.result.fence == 1' "lock day 1"
expect "$(rr partition/unlock "$(part $Z1 $Z2)")" '.result.state == "ready"' "unlock day 1"
expect "$(rr partition/lock "$(part $Z2 $Z3)")" '.result.fence == 2' "lock day 2"

# kill -9: the broker publishes the Last Will.
kill_agent
for _ in $(seq 30); do
  [ "$(sub1 "$P/agent/status" | jq -r .status)" = offline ] && break
  sleep 0.1
done
expect "$(sub1 "$P/agent/status")" '.status == "offline"' "Last Will: offline after kill -9"

# A command sent while the agent is down waits in its broker session.
mosquitto_rr -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/readiness/query" -e "$P/reply/offline-$$" \
  -m "{\"source\":\"$S\",\"start\":\"$Z1\",\"end\":\"$Z2\"}" -W 20 >"$T/offline-reply.json" 2>&1 &
rr_pid=$!
PIDS+=("$rr_pid")
sleep 0.5
start_agent
wait "$rr_pid" || fail "no reply to the command sent while the agent was down"
expect "$(cat "$T/offline-reply.json")" '.ok and .result.ready == true' "command queued while down is answered after restart"

# Everything committed before kill -9 is still there.
r=$(rr partition/list "{\"source\":\"$S\"}")
expect "$r" '[.result.items[].state] == ["ready","locked"]' "partitions survived kill -9"
expect "$(rr partition/lock "$(part $Z2 $Z3)")" '.error.code == "already_locked"' "the lock survived kill -9"
expect "$(rr partition/unlock "$(part $Z2 $Z3 ',"fence":2')")" '.result.state == "ready" and .result.version == 1' "unlock with the fence from before the crash"
expect "$(rr source/get "{\"source\":\"$S\"}")" '.result.seq == 6' "seq continues after restart"
expect "$(sub1 "$P/agent/status")" '.status == "online" and .epoch == 2' "a restarted agent has a new epoch"

# The broker restarts with no persistence: all retained state is gone...
stop_broker
start_broker false
[ -z "$(mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$P/state/$S" -C 1 -W 1 2>/dev/null)" ] || fail "retained state survived a broker without persistence?"
# ...and comes back: the agent reconnects and republishes it.
for _ in $(seq 100); do
  s=$(sub1 "$P/state/$S")
  [ -n "$s" ] && break
  sleep 0.2
done
expect "$s" ".ready == [[\"$Z1\",\"$Z3\"]] and .blocked == [] and .seq == 6" "summary republished after the broker lost it"
expect "$(sub1 "$P/state/$S/partitions/$Z2/$Z3/etl")" '.state == "ready" and .fence == 2 and .version == 1' "partition state republished"
expect "$(sub1 "$P/agent/status")" '.status == "online"' "online again after the broker restart"
expect "$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$Z1\",\"end\":\"$Z3\"}")" '.result.ready == true' "commands work after the broker restart"

# agent/resync republishes on request.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -t "$P/state/$S" -r -n
[ -z "$(mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$P/state/$S" -C 1 -W 1 2>/dev/null)" ] || fail "could not clear the retained summary"
expect "$(rr agent/resync "{\"source\":\"$S\"}")" '.ok' "agent/resync accepted"
for _ in $(seq 50); do s=$(sub1 "$P/state/$S"); [ -n "$s" ] && break; sleep 0.1; done
expect "$s" '.seq == 6' "agent/resync republished the summary"
pass
