#!/usr/bin/env bash
# P/agent/stats: retained, refreshed every --stats-interval seconds, with
# counters that follow what the agent did.
. "$(dirname "$0")/lib.sh"
start_broker
start_agent --stats-interval 1

new_source st
rr source/get '{"source":"nope"}' >/dev/null                               # refused
rr partition/lock '{"source":"st","provider":"p","start":"2023-02-30","end":"2023-03-01"}' >/dev/null # refused
body="{\"source\":\"st\",\"provider\":\"p\",\"start\":\"2023-01-01T00:00:00Z\",\"end\":\"2023-01-02T00:00:00Z\",\"request_id\":\"s-1\",\"access_token\":\"$TOKEN\"}"
expect "$(rr partition/lock "$body")" '.ok' "lock"
expect "$(rr partition/lock "$body")" '.replayed == true' "replayed lock"
# 2 (new_source) + 4 above = 6 commands, 2 refused, 1 replayed.
for _ in $(seq 40); do
  s=$(sub1 "$P/agent/stats")
  [ "$(jq -r '.commands.total' <<<"$s" 2>/dev/null)" = 6 ] && break
  sleep 0.1
done
expect "$s" '.commands.total == 6 and .commands.refused == 2 and .commands.replayed == 1' "counters: 6 commands, 2 refused, 1 replayed"
expect "$s" '.batches >= 3 and .commit_ms.last >= 0 and .queue == 0 and .uptime_s >= 0' "batches, commit time, queue"
expect "$s" '.store.used_bytes > 0 and .store.map_bytes >= .store.used_bytes and .epoch == 1' "store size and epoch"
expect "$s" '.agent_id == "partregd:partreg/v1" and (.at | test("Z$"))' "agent id and time"
pass
