#!/usr/bin/env bash
# Leases, fencing, reprocessing and metadata (issue 3): ttl_s limits from
# the agent's flags; renew extends a live lease; an expired lease turns the
# partition failed/lease_expired (retained partition, summary, event) within
# about a second of its deadline, never ready; renew and unlock after the
# deadline are refused, also before the agent noticed; deadlines survive a
# restart; fences rise with every lock of the source and a stale fence is
# refused; an unlock raises version and may carry size-capped metadata.
. "$(dirname "$0")/lib.sh"
start_broker
LEASE_FLAGS=(--lease-default 30 --lease-max 60)
start_agent "${LEASE_FLAGS[@]}"

S=leases
new_source "$S"
D1=2023-01-01T00:00:00Z; D2=2023-01-02T00:00:00Z; D3=2023-01-03T00:00:00Z
D4=2023-01-04T00:00:00Z; D5=2023-01-05T00:00:00Z; D6=2023-01-06T00:00:00Z

# part START END [EXTRA MEMBERS]: a partition command body of provider p.
part() { echo "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$1\",\"end\":\"$2\",\"access_token\":\"$TOKEN\"${3:+,$3}}"; }
ptopic() { echo "$P/state/$S/partitions/$1/$2/p"; }
# us TIME: a canonical time in microseconds since the epoch; now_us: now.
us() { date -u -d "$1" +%s%6N; }
now_us() { date +%s%6N; }
# near T_US EXPECTED_US SLACK_S: |T - EXPECTED| <= SLACK seconds.
near() { local d=$(($1 - $2)); [ ${d#-} -le $(($3 * 1000000)) ]; }
# wait_state START END STATE SECONDS: poll the retained partition until its
# state is STATE; prints the last message seen.
wait_state() {
  local s=""
  for _ in $(seq $(($4 * 20))); do
    s=$(sub1 "$(ptopic "$1" "$2")")
    [ "$(jq -r .state <<<"$s" 2>/dev/null)" = "$3" ] && break
    sleep 0.05
  done
  echo "$s"
}
FENCES=()
# lock START END [EXTRA]: lock; the reply into $r, its fence into FENCES.
lock() {
  r=$(rr partition/lock "$(part "$1" "$2" "${3:-}")")
  FENCES+=("$(jq -r '.result.fence // "none"' <<<"$r")")
}

# Every event of the source, from now on, into events.json (the marker
# proves the subscription is in place); `events` (lib.sh) reads them back
# from their batches.
follow_events "$S"

# --- ttl_s limits and the default lease --------------------------------------
r=$(rr partition/lock "$(part $D1 $D2 '"ttl_s":61')")
expect "$r" '.ok == false and .status == 400 and .error.code == "invalid_field"' "ttl_s above --lease-max is refused"
r=$(rr partition/lock "$(part $D1 $D2 '"ttl_s":0')")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "ttl_s 0 is refused"
r=$(rr partition/lock "$(part $D1 $D2 '"ttl_s":"2"')")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "ttl_s as a string is refused"
expect "$(rr partition/list "{\"source\":\"$S\"}")" '.result.items == []' "a refused lock changed nothing"

t0=$(now_us)
lock $D1 $D2
expect "$r" '.ok and .result.state == "locked" and .result.fence == 1 and (.result.expires_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{6})?Z$"))' "lock: fence 1 and a canonical expires_at"
E=$(jq -r .result.expires_at <<<"$r")
near "$(us "$E")" $((t0 + 30000000)) 2 || fail "a lock without ttl_s should get --lease-default (30 s): expires_at $E"
ok "a lock without ttl_s gets --lease-default"
expect "$(sub1 "$(ptopic $D1 $D2)")" ".state == \"locked\" and .expires_at == \"$E\" and .fence == 1" "retained partition carries expires_at"

r=$(rr partition/renew "$(part $D1 $D2 '"fence":1,"ttl_s":61')")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "renew with ttl_s above --lease-max is refused"
t0=$(now_us)
r=$(rr partition/renew "$(part $D1 $D2 '"fence":1,"ttl_s":45')")
expect "$r" '.ok and .result.state == "locked" and .result.fence == 1' "renew of a live lease"
near "$(us "$(jq -r .result.expires_at <<<"$r")")" $((t0 + 45000000)) 2 || fail "renew ttl_s 45: expires_at $(jq -r .result.expires_at <<<"$r")"
ok "renew sets expires_at to now + ttl_s"
t0=$(now_us)
r=$(rr partition/renew "$(part $D1 $D2 '"fence":1')")
near "$(us "$(jq -r .result.expires_at <<<"$r")")" $((t0 + 30000000)) 2 || fail "renew without ttl_s: expires_at $(jq -r .result.expires_at <<<"$r")"
ok "renew without ttl_s uses --lease-default"
r=$(rr partition/renew "$(part $D1 $D2 '"ttl_s":5')")
expect "$r" '.status == 400 and .error.code == "missing_field"' "renew needs the fence"

# --- reprocessing and metadata ------------------------------------------------
r=$(rr partition/unlock "$(part $D1 $D2 '"fence":1')")
expect "$r" '.ok and .result.state == "ready" and .result.version == 1 and (.result.expires_at == null)' "unlock: ready, version 1, no lease"
r=$(rr partition/renew "$(part $D1 $D2 '"fence":1')")
expect "$r" '.status == 409 and .error.code == "not_locked"' "renew of a ready partition: not_locked"
expect "$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\"}")" '.result.ready == true' "ready after the first run"

lock $D1 $D2
expect "$r" '.ok and .result.state == "locked" and .result.fence == 2 and .result.version == 1' "reprocessing: lock a ready partition again (fence 2)"
r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\"}")
expect "$r" '.result.ready == false and .result.blockers[0].state == "locked" and .result.blockers[0].fence == 2' "not ready while reprocessing"
expect "$(sub1 "$P/state/$S")" '.ready == [] and .blocked[0].state == "locked"' "summary: the reprocessed partition blocks"
r=$(rr partition/unlock "$(part $D1 $D2 '"fence":2,"metadata":{"rows":10,"run_id":"r-1"}')")
expect "$r" '.ok and .result.state == "ready" and .result.version == 2 and .result.metadata == {"rows":10,"run_id":"r-1"}' "unlock with metadata: version 2"
expect "$(sub1 "$(ptopic $D1 $D2)")" '.state == "ready" and .version == 2 and .metadata == {"rows":10,"run_id":"r-1"}' "retained partition shows the metadata"
expect "$(rr partition/list "{\"source\":\"$S\"}")" '.result.items[0].version == 2 and .result.items[0].metadata == {"rows":10,"run_id":"r-1"}' "partition/list shows the metadata"

lock $D1 $D2
expect "$r" '.result.fence == 3' "lock again (fence 3)"
# {"x":"<n a>"} is n + 8 bytes as compact JSON.
big=$(printf 'a%.0s' $(seq 1017))
r=$(rr partition/unlock "$(part $D1 $D2 "\"fence\":3,\"metadata\":{\"x\":\"$big\"}")")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "metadata of 1025 bytes compacted is refused"
expect "$(sub1 "$(ptopic $D1 $D2)")" '.state == "locked" and .version == 2' "the refused unlock changed nothing"
r=$(rr partition/unlock "$(part $D1 $D2 '"fence":3,"metadata":[1,2]')")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "metadata that is not an object is refused"
# 1024 bytes compacted, more with the spaces: accepted, returned compact.
r=$(rr partition/unlock "$(part $D1 $D2 "\"fence\":3,\"metadata\":{ \"x\" :  \"${big:1}\" }")")
expect "$r" ".ok and .result.version == 3 and (.result.metadata.x | length) == 1016" "metadata of exactly 1024 bytes compacted is accepted"

# --- expiry: renewals keep a lease alive, then it runs out --------------------
t0=$(now_us)
lock $D2 $D3 '"ttl_s":2'
expect "$r" '.ok and .result.state == "locked" and .result.fence == 4' "lock with ttl_s 2 (fence 4)"
E0=$(jq -r .result.expires_at <<<"$r")
near "$(us "$E0")" $((t0 + 2000000)) 1 || fail "ttl_s 2: expires_at $E0"
ok "expires_at is now + ttl_s"
prev=$E0
for i in 1 2 3; do
  sleep 0.8
  r=$(rr partition/renew "$(part $D2 $D3 '"fence":4,"ttl_s":2')")
  expect "$r" '.ok and .result.state == "locked"' "heartbeat $i"
  e=$(jq -r .result.expires_at <<<"$r")
  [ "$(us "$e")" -gt "$(us "$prev")" ] || fail "renew did not move expires_at ($prev -> $e)"
  prev=$e
done
[ "$(now_us)" -gt "$(us "$E0")" ] || fail "test too fast: the first deadline has not passed"
expect "$(sub1 "$(ptopic $D2 $D3)")" ".state == \"locked\" and .expires_at == \"$prev\"" "renewed past the first deadline: still locked"
EL=$prev
s=$(wait_state $D2 $D3 failed 5)
seen=$(now_us)
expect "$s" '.state == "failed" and .reason == "lease_expired" and .version == 0 and .fence == 4' "expired lease: retained partition failed, lease_expired"
[ "$seen" -le $(($(us "$EL") + 1500000)) ] || fail "expiry seen $(((seen - $(us "$EL")) / 1000)) ms after the deadline $EL"
ok "expiry published within about a second of the deadline"
sleep 0.3
ev=$(events)
expect "$ev" "[.[] | select(.type == \"failed\" and .reason == \"lease_expired\" and .start == \"$D2\" and .end == \"$D3\" and .provider == \"p\" and .state == \"failed\" and .fence == 4)] | length == 1" "one failed/lease_expired event"
at=$(jq -r "[.[] | select(.type == \"failed\" and .start == \"$D2\")][0].at" <<<"$ev")
[ "$(us "$at")" -ge "$(us "$EL")" ] || fail "expired at $at, before the deadline $EL"
[ "$(us "$at")" -le $(($(us "$EL") + 1000000)) ] || fail "expired at $at, more than a second after the deadline $EL"
ok "the expiry event is at the deadline (within a second)"
expect "$(sub1 "$P/state/$S")" "[.blocked[] | select(.start == \"$D2\" and .state == \"failed\" and .reason == \"lease_expired\")] | length == 1" "summary: the expired partition blocks as failed"
expect "$(sub1 "$P/state/$S")" ".ready == [[\"$D1\",\"$D2\"]]" "summary: an expired partition is never ready"
r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$D2\",\"end\":\"$D3\"}")
expect "$r" '.result.ready == false and .result.blockers[0].state == "failed" and .result.blockers[0].reason == "lease_expired"' "readiness: blocked by the expired partition"
r=$(rr partition/renew "$(part $D2 $D3 '"fence":4')")
expect "$r" '.status == 409 and .error.code == "lease_expired"' "renew after the deadline: lease_expired"
r=$(rr partition/unlock "$(part $D2 $D3 '"fence":4')")
expect "$r" '.ok == false and .status == 409' "unlock after expiry is refused"
expect "$(sub1 "$(ptopic $D2 $D3)")" '.state == "failed" and .reason == "lease_expired"' "still failed"

# --- fencing: a zombie run cannot touch the next run's lock -------------------
lock $D2 $D3 '"ttl_s":30'
expect "$r" '.ok and .result.state == "locked" and .result.fence == 5 and (.result | has("reason") | not)' "run 2 locks the expired partition (fence 5)"
r=$(rr partition/unlock "$(part $D2 $D3 '"fence":4')")
expect "$r" '.status == 409 and .error.code == "stale_fence"' "run 1's unlock with fence 4: stale_fence"
r=$(rr partition/renew "$(part $D2 $D3 '"fence":4')")
expect "$r" '.status == 409 and .error.code == "stale_fence"' "run 1's renew with fence 4: stale_fence"
r=$(rr partition/fail "$(part $D2 $D3 '"fence":4,"reason":"zombie"')")
expect "$r" '.status == 409 and .error.code == "stale_fence"' "run 1's fail with fence 4: stale_fence"
expect "$(sub1 "$(ptopic $D2 $D3)")" '.state == "locked" and .fence == 5' "run 2's lock is untouched"
expect "$(rr partition/renew "$(part $D2 $D3 '"fence":5,"ttl_s":30')")" '.ok and .result.fence == 5' "run 2 renews with fence 5"
r=$(rr partition/unlock "$(part $D2 $D3 '"fence":5')")
expect "$r" '.ok and .result.state == "ready" and .result.version == 1 and .result.fence == 5' "run 2 unlocks with fence 5: ready"

# --- after the deadline, before the agent noticed (agent paused) -------------
# renew
lock $D3 $D4 '"ttl_s":1'
expect "$r" '.result.fence == 6' "lock with ttl_s 1 (fence 6)"
kill -STOP "$AGENT_PID"
sleep 1.5
rr partition/renew "$(part $D3 $D4 '"fence":6,"ttl_s":30')" >"$T/late-renew.json" &
rp=$!
PIDS+=("$rp")
sleep 0.3
kill -CONT "$AGENT_PID"
wait "$rp" || fail "no reply to the late renew"
expect "$(cat "$T/late-renew.json")" '.status == 409 and .error.code == "lease_expired"' "renew sent after the deadline, before the agent could notice: lease_expired"
expect "$(wait_state $D3 $D4 failed 3)" '.state == "failed" and .reason == "lease_expired"' "the late-renewed partition is failed"
# unlock
lock $D4 $D5 '"ttl_s":1'
expect "$r" '.result.fence == 7' "lock with ttl_s 1 (fence 7)"
kill -STOP "$AGENT_PID"
sleep 1.5
rr partition/unlock "$(part $D4 $D5 '"fence":7')" >"$T/late-unlock.json" &
rp=$!
PIDS+=("$rp")
sleep 0.3
kill -CONT "$AGENT_PID"
wait "$rp" || fail "no reply to the late unlock"
expect "$(cat "$T/late-unlock.json")" '.status == 409 and .error.code == "lease_expired"' "unlock sent after the deadline, before the agent could notice: lease_expired"
expect "$(wait_state $D4 $D5 failed 3)" '.state == "failed" and .reason == "lease_expired" and .version == 0' "the late-unlocked partition is failed, never ready"
expect "$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$D4\",\"end\":\"$D5\"}")" '.result.ready == false' "not ready after a late unlock"

# --- deadlines survive a restart ----------------------------------------------
lock $D5 $D6 '"ttl_s":3'
expect "$r" '.result.fence == 8' "lock with ttl_s 3 (fence 8)"
E=$(jq -r .result.expires_at <<<"$r")
stop_agent
expect "$(sub1 "$(ptopic $D5 $D6)")" '.state == "locked"' "the agent stopped while the lease was live"
while [ "$(now_us)" -le $(($(us "$E") + 500000)) ]; do sleep 0.1; done
start_agent "${LEASE_FLAGS[@]}"
t_on=$(now_us)
r=""
for _ in $(seq 30); do
  r=$(rr partition/list "{\"source\":\"$S\"}")
  [ "$(jq -r ".result.items[] | select(.start == \"$D5\") | .state" <<<"$r")" = failed ] && break
  sleep 0.05
done
expect "$r" ".result.items[] | select(.start == \"$D5\") | .state == \"failed\" and .reason == \"lease_expired\"" "a lease that ran out while the agent was down: failed on start"
[ "$(now_us)" -le $((t_on + 1500000)) ] || fail "expired $(( ($(now_us) - t_on) / 1000 )) ms after the agent came online"
ok "expired right after start"
expect "$(sub1 "$(ptopic $D5 $D6)")" '.state == "failed" and .reason == "lease_expired"' "retained partition: failed after restart"
expect "$(rr history/query "{\"source\":\"$S\",\"start\":\"$D5\",\"end\":\"$D6\"}")" '[.result.events[] | select(.type == "failed" and .reason == "lease_expired" and .fence == 8)] | length == 1' "history records the expiry at start"

# --- fences: 1, 2, 3, ... across the whole run, also after the restart --------
lock $D6 2023-01-07T00:00:00Z
expect "$r" '.result.fence == 9' "the fence continues after the restart (9)"
expect "$(printf '%s\n' "${FENCES[@]}" | jq -s .)" '. == [range(1; length + 1)]' "every lock got the next fence, none repeated"
expect "$(events)" '[.[] | select(.type == "locked") | .fence] == [range(1; 10)]' "locked events carry fences 1..9 in order"
# --- the defaults without flags: --lease-default 3600, --lease-max 604800 -------
stop_agent
start_agent
r=$(rr partition/lock "$(part 2023-02-01T00:00:00Z 2023-02-02T00:00:00Z '"ttl_s":604801')")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "default --lease-max: ttl_s 604801 is refused"
t0=$(now_us)
lock 2023-02-01T00:00:00Z 2023-02-02T00:00:00Z
near "$(us "$(jq -r .result.expires_at <<<"$r")")" $((t0 + 3600000000)) 2 || fail "default --lease-default: expires_at $(jq -r .result.expires_at <<<"$r")"
ok "default --lease-default: an hour"
t0=$(now_us)
r=$(rr partition/renew "$(part 2023-02-01T00:00:00Z 2023-02-02T00:00:00Z "\"fence\":$(jq .result.fence <<<"$r"),\"ttl_s\":604800")")
near "$(us "$(jq -r .result.expires_at <<<"$r")")" $((t0 + 604800000000)) 2 || fail "ttl_s 604800: expires_at $(jq -r .result.expires_at <<<"$r")"
ok "default --lease-max: ttl_s 604800 is accepted"

# Last, so that a failure here hides no other check: the expiry found at
# start is published as an event like any other (subscribers of the events
# topic would otherwise never learn of it).
expect "$(events)" "[.[] | select(.type == \"failed\" and .reason == \"lease_expired\" and .start == \"$D5\")] | length == 1" "an event for the expiry at start"
pass
