#!/usr/bin/env bash
# The broker-memory policy for per-partition retained topics (issue 12,
# point 3): a ready partition's retained message carries MQTT 5 message
# expiry, --ready-expiry seconds from when it became ready, and is not
# republished once that has passed; pending, locked and failed ones never
# expire; the summary and partition/list still cover the expired ones; and
# --ready-expiry 0 keeps every message (today's keep-all).
. "$(dirname "$0")/lib.sh"
start_broker
start_agent --ready-expiry 3

S=exp
D1=2023-01-01T00:00:00Z
D2=2023-01-02T00:00:00Z
D3=2023-01-03T00:00:00Z
new_source $S
# present TOPIC: is a retained message there (a fresh subscriber gets it)?
present() { [ -n "$(sub1 "$1")" ]; }

# Day 1 ready, day 2 pending.
F=$(rr partition/lock "$(pbody "{start:\"$D1\",end:\"$D2\"}")" | jq -r .result.fence)
rr partition/unlock "$(pbody "{start:\"$D1\",end:\"$D2\",fence:$F}")" | jq -e '.result.state == "ready"' >/dev/null ||
  fail "unlock of day 1"
rr partition/register "$(pbody "{start:\"$D2\",end:\"$D3\"}")" | jq -e '.result.state == "pending"' >/dev/null ||
  fail "register of day 2"
READY_T="$P/state/$S/partitions/$D1/$D2/p"
PEND_T="$P/state/$S/partitions/$D2/$D3/p"
expect "$(sub1 "$READY_T")" '.state == "ready"' "the ready partition is retained at first"
# The property itself, as a subscriber sees it (mosquitto_sub %E: expiry left).
left=$(mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "$PORT" -t "$READY_T" -C 1 -W 2 -F '%E' 2>/dev/null || true)
[[ "$left" =~ ^[0-9]+$ ]] && [ "$left" -ge 1 ] && [ "$left" -le 3 ] ||
  fail "the ready partition's message expiry left is '$left', expected 1..3 s"
ok "it carries MQTT 5 message expiry ($left s left of 3)"
left=$(mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "$PORT" -t "$PEND_T" -C 1 -W 2 -F '%E' 2>/dev/null || true)
[ "$left" = "" ] || [ "$left" = 0 ] || fail "the pending partition has message expiry '$left'"
ok "the pending partition's message has none"

sleep 4
present "$READY_T" && fail "the ready partition's retained message is still there after its expiry"
ok "after 3 s the broker has dropped the ready partition's message"
expect "$(sub1 "$PEND_T")" '.state == "pending"' "the pending partition's message stays"
expect "$(sub1 "$P/state/$S")" "(.ready == [[\"$D1\",\"$D2\"]]) and (.blocked | length) == 1" \
  "the summary still covers the expired ready partition"
expect "$(rr partition/list "{\"source\":\"$S\"}")" '(.result.items | map(.state)) == ["ready","pending"]' \
  "partition/list still lists it"

# A restart republishes: not the expired one, the pending one yes.
stop_agent
mosquitto_pub -h 127.0.0.1 -p "$PORT" -r -t "$PEND_T" -n
start_agent --ready-expiry 3
retained_within "$PEND_T" '.state == "pending"' 10 || fail "the pending partition was not republished"
ok "a restart republishes the pending partition"
present "$READY_T" && fail "a restart republished the expired ready partition"
ok "and not the expired ready one"

# Keep-all: --ready-expiry 0 republishes it and it stays.
stop_agent
start_agent --ready-expiry 0
retained_within "$READY_T" '.state == "ready"' 10 || fail "--ready-expiry 0 did not republish the ready partition"
sleep 4
expect "$(sub1 "$READY_T")" '.state == "ready"' "--ready-expiry 0: the ready partition's message is republished and stays"
left=$(mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "$PORT" -t "$READY_T" -C 1 -W 2 -F '%E' 2>/dev/null || true)
[ "$left" = "" ] || [ "$left" = 0 ] || fail "--ready-expiry 0 still set message expiry '$left'"
ok "without message expiry"
pass
