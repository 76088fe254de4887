#!/usr/bin/env bash
# partreg-http forgets what the broker forgets. The agent publishes a ready
# partition's retained state with a message expiry (--ready-expiry after it
# became ready) and a deleted one's tombstone likewise (--tombstone-expiry);
# the broker then drops them without a word to its subscribers.
# partreg-http, told nothing of those options, takes each message's expiry
# as the broker passes it on (MQTT 5 Message Expiry Interval), drops them
# too, tells its stream (a partition event without state), and its
# partition list, metrics and dashboard agree with what a new subscriber of
# the broker gets. A pending partition, which does not expire, stays; so
# does what a partreg-http started later learns, with the expiry left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_http.sh"
start_broker
start_agent --ready-expiry 6 --tombstone-expiry 6
start_http

S=exp_src
new_source "$S"
curl -sN "$H/v1/stream" >"$T/stream" 2>/dev/null &
PIDS+=($!)
D1=2024-03-01T00:00:00Z; D2=2024-03-02T00:00:00Z; D3=2024-03-03T00:00:00Z; D4=2024-03-04T00:00:00Z
expect "$(rr partition/lock "$(pbody "{start:\"$D1\",end:\"$D2\"}")")" '.ok' "lock day 1"
expect "$(rr partition/unlock "$(pbody "{start:\"$D1\",end:\"$D2\"}")")" '.ok and .result.state == "ready"' "day 1 ready"
expect "$(rr partition/register "$(pbody "{start:\"$D2\",end:\"$D3\"}")")" '.ok and .result.state == "pending"' "day 2 pending"
expect "$(rr partition/register "$(pbody "{start:\"$D3\",end:\"$D4\"}")")" '.ok' "day 3 registered"
expect "$(rr partition/delete "$(pbody "{start:\"$D3\",end:\"$D4\"}")")" '.ok' "day 3 deleted (a tombstone)"
for _ in $(seq 30); do
  hcall GET "/v1/sources/$S/partitions"
  [ "$(jq -c '[.items[].state]' <<<"$HB")" = '["ready","pending","deleted"]' ] && break
  sleep 0.1
done
hexpect 200 '[.items[].state] == ["ready", "pending", "deleted"]' "the mirror holds the three"
t0=$(date +%s.%N)

# A second partreg-http, started 3.5 s later, gets the retained messages
# with the expiry they have left (2.5 s), not the agent's 6 s.
sleep 3.5
H1=$H; HTTP1_PID=$HTTP_PID
start_http
t2=$(date +%s.%N)
for _ in $(seq 100); do
  hcall GET "/v1/sources/$S/partitions"
  [ "$(jq -c '[.items[].state]' <<<"$HB")" = '["pending"]' ] && break
  sleep 0.1
done
hexpect 200 '[.items[].state] == ["pending"]' "the later partreg-http, after the expiry: only the pending day"
after=$(echo "$(date +%s.%N) - $t2" | bc)
# The expiry left (2.5 s) plus at most one 2 s check, and some slack; the
# agent's whole 6 s from its own start would be later.
[ "$(echo "$after < 5.5" | bc)" = 1 ] || fail "the later partreg-http forgot them $after s after its start (expected the 2.5 s they had left, plus its 2 s check)"
ok "the later partreg-http forgot them $(printf '%.1f' "$after") s after its start (they had 2.5 s left)"
stop_http
H=$H1; HTTP_PID=$HTTP1_PID

# The first: the broker dropped days 1 and 3 six seconds after their
# change; the mirror checks every 2 s.
for _ in $(seq 100); do
  hcall GET "/v1/sources/$S/partitions"
  [ "$(jq -c '[.items[].state]' <<<"$HB")" = '["pending"]' ] && break
  sleep 0.1
done
hexpect 200 '[.items[].state] == ["pending"] and .items[0].start == "2024-03-02T00:00:00Z"' "after the expiry: only the pending day"
ok "ready and deleted partitions forgotten $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s after the three were seen"
broker=$(mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$P/state/$S/partitions/#" -W 1 2>/dev/null | jq -sc '[.[].state]' || true)
[ "$broker" = '["pending"]' ] || fail "a new subscriber of the broker gets $broker, not the mirror's [\"pending\"]"
ok "a new subscriber of the broker gets the same: $broker"
for d in "$D1\",\"end\":\"$D2" "$D3\",\"end\":\"$D4"; do
  grep -q "^data: {\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$d\"}$" "$T/stream" ||
    { cat "$T/stream" >&2; fail "no state-less partition event for $d in the stream"; }
done
ok "the stream told both removals (partition events without state)"
m=$(curl -s "$H/metrics")
grep -qx "partreg_source_partitions{source=\"$S\",state=\"ready\"} 0" <<<"$m" &&
  grep -qx "partreg_source_partitions{source=\"$S\",state=\"pending\"} 1" <<<"$m" ||
  { grep partreg_source_partitions <<<"$m" >&2; fail "metrics still count the expired partitions"; }
ok "metrics: ready 0, pending 1"
hq GET /sources/$S/check_readiness start=2024-03-01 end=2024-03-02
hexpect 200 '.is_ready == true' "readiness comes from the summary: day 1 is still ready"
stop_http
pass
