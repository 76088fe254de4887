#!/usr/bin/env bash
# Exactly-once effect (protocol.md §7): a repeated request_id on a write
# returns the first reply with "replayed": true and changes nothing, also
# after kill -9 and a restart, also when the first reply was an error; the
# same request_id for another command is request_id_conflict (409); reads
# are not recorded; an MQTT 3.1.1 retry gets the replay with its own
# correlation_id. A request_id is no key to someone else's reply: reused
# with another body, another token or none, it is request_id_conflict with
# nothing of the first reply, and the store holds no reply in clear.
. "$(dirname "$0")/lib.sh"
start_broker
start_agent

S=idem_src
D1=2023-01-01T00:00:00Z
D2=2023-01-02T00:00:00Z
D3=2023-01-03T00:00:00Z
D4=2023-01-04T00:00:00Z
RT="$P/reply/idem311-$$"
M311=(-V mqttv311 -h 127.0.0.1 -p "$PORT")

pub311() { mosquitto_pub "${M311[@]}" -q 1 -t "$P/cmd/$1" -m "$2"; }
# with311 JSON CID: JSON plus reply_to=$RT and correlation_id=CID.
with311() { jq -c --arg rt "$RT" --arg c "$2" '. + {reply_to: $rt, correlation_id: $c}' <<<"$1"; }
# wait_reply CID: the reply on $RT with that correlation_id (empty after 5 s).
wait_reply() {
  for _ in $(seq 50); do
    local line
    line=$(grep -F "\"correlation_id\":\"$1\"" "$T/sub.replies" | head -n 1 || true)
    if [ -n "$line" ]; then
      echo "${line#"$RT "}"
      return 0
    fi
    sleep 0.1
  done
}
rr311() { pub311 "$1" "$(with311 "$2" "$3")"; wait_reply "$3"; }
seq_of() { rr source/get "{\"source\":\"$S\"}" | jq -r .result.seq; }
# events_of TYPE: how many TYPE events the events subscriber has seen.
events_of() { sub_events events "$P/events/$S" | jq "[.[] | select(.type == \"$1\")] | length"; }

bg_sub311 replies "$RT"
bg_sub311 events "$P/events/$S"

r=$(rr source/register "{\"source\":\"$S\",\"owner\":\"o\",\"request_id\":\"reg-1\"}")
expect "$r" '.ok and .request_id == "reg-1" and (has("replayed") | not)' "first reply has request_id and no replayed flag"
REG=$r
TOKEN=$(jq -r .result.access_token <<<"$r")
r=$(rr provider/register "{\"source\":\"$S\",\"provider\":\"p\",\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok' "provider registered"

LOCK="{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$TOKEN\""
PT="$P/state/$S/partitions/$D1/$D2/p"

# ---- a repeated lock ----
first=$(rr partition/lock "$LOCK,\"request_id\":\"r1\"}")
expect "$first" '.ok and .result.fence == 1 and .request_id == "r1" and (has("replayed") | not)' "lock r1: fence 1"
SEQ=$(seq_of)
RETAINED=$(sub1 "$PT")
again=$(rr partition/lock "$LOCK,\"request_id\":\"r1\"}")
expect "$again" '.ok and .replayed == true and .request_id == "r1" and .result.fence == 1' "lock r1 again: replayed, same fence"
expect "$again" "del(.replayed) == $first" "the replay is the first reply, byte for byte but for replayed"
[ "$(seq_of)" = "$SEQ" ] || fail "seq changed by a replay"
ok "seq unchanged by the replay ($SEQ)"
[ "$(sub1 "$PT")" = "$RETAINED" ] || fail "retained partition changed by a replay"
ok "retained partition unchanged by the replay"
r=$(rr partition/lock "$LOCK,\"request_id\":\"r1b\"}")
expect "$r" '.status == 409 and .error.code == "already_locked"' "a new request_id on the same lock: already_locked"
sleep 0.3
[ "$(events_of locked)" = 1 ] || fail "expected one locked event, saw $(events_of locked)"
ok "one locked event"

# ---- source/register: the first reply, not source_exists ----
r2=$(rr source/register "{\"source\":\"$S\",\"owner\":\"o\",\"request_id\":\"reg-1\"}")
expect "$r2" '.ok and .replayed == true and .request_id == "reg-1"' "repeated source/register is replayed, not source_exists"
expect "$r2" ".result == $(jq -c .result <<<"$REG")" "the replay is the first reply (same token, same created_at)"
r=$(rr source/register "{\"source\":\"$S\",\"owner\":\"o\",\"request_id\":\"reg-2\"}")
expect "$r" '.status == 409 and .error.code == "source_exists"' "a new request_id is a new command"

# ---- the same request_id for another command ----
r=$(rr partition/unlock "$LOCK,\"fence\":1,\"request_id\":\"r1\"}")
expect "$r" '.ok == false and .status == 409 and .error.code == "request_id_conflict" and .request_id == "r1" and (.error.message | contains("partition/lock"))' "r1 for unlock: request_id_conflict naming the first command"
r=$(rr source/register "{\"source\":\"other\",\"owner\":\"o\",\"request_id\":\"r1\"}")
expect "$r" '.error.code == "request_id_conflict"' "r1 for source/register: request_id_conflict"
r=$(rr source/get '{"source":"other"}')
expect "$r" '.error.code == "unknown_source"' "the conflicting source/register did nothing"
expect "$(sub1 "$PT")" '.state == "locked"' "the conflicting unlock did nothing"
[ "$(seq_of)" = "$SEQ" ] || fail "seq changed by a request_id_conflict"
ok "seq unchanged by the conflicts"

# ---- reads are not recorded ----
q=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\",\"request_id\":\"q1\"}")
expect "$q" '.ok and .result.ready == false and .request_id == "q1"' "readiness q1: not ready"
g=$(rr source/get "{\"source\":\"$S\",\"request_id\":\"g1\"}")

# ---- an error reply is recorded too ----
e=$(rr partition/lock "$LOCK,\"request_id\":\"r2\"}")
expect "$e" '.status == 409 and .error.code == "already_locked" and .request_id == "r2"' "lock r2 while locked: already_locked"

u=$(rr partition/unlock "$LOCK,\"fence\":1,\"request_id\":\"r3\"}")
expect "$u" '.ok and .result.state == "ready" and .result.version == 1' "unlock r3: ready"
SEQ=$(seq_of)

q=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\",\"request_id\":\"q1\"}")
expect "$q" '.ok and .result.ready == true and (has("replayed") | not)' "readiness q1 again: the new answer, not a replay"
g2=$(rr source/get "{\"source\":\"$S\",\"request_id\":\"g1\"}")
expect "$g2" ".ok and (has(\"replayed\") | not) and .result.seq == $SEQ and .result.seq > $(jq .result.seq <<<"$g")" "source/get g1 again: the new seq"
r=$(rr partition/list "{\"source\":\"$S\",\"request_id\":\"q1\"}")
expect "$r" '.ok and .result.items[0].state == "ready"' "a read's request_id used by another read: no conflict"

# r2's first answer was already_locked; now a lock would succeed, but the
# repeat returns the first reply.
e2=$(rr partition/lock "$LOCK,\"request_id\":\"r2\"}")
expect "$e2" '.ok == false and .status == 409 and .error.code == "already_locked" and .replayed == true' "lock r2 again: already_locked replayed"
expect "$e2" "del(.replayed) == $e" "the error replay is the first reply"
expect "$(sub1 "$PT")" '.state == "ready" and .version == 1' "the replayed lock did not lock"
[ "$(seq_of)" = "$SEQ" ] || fail "seq changed by an error replay"
ok "seq unchanged by the error replay"

# A read's request_id was not recorded, so a write may use it.
r=$(rr partition/lock "$LOCK,\"request_id\":\"q1\"}")
expect "$r" '.ok and .result.state == "locked" and .result.fence == 2 and (has("replayed") | not)' "a write with a read's request_id runs (lock, fence 2)"
r=$(rr partition/unlock "$LOCK,\"fence\":2,\"request_id\":\"u2\"}")
expect "$r" '.ok and .result.version == 2' "unlock u2: version 2"
SEQ=$(seq_of)

# ---- replay survives kill -9 ----
kill_agent
start_agent
r=$(rr partition/lock "$LOCK,\"request_id\":\"r1\"}")
expect "$r" '.ok and .replayed == true and .result.fence == 1' "after kill -9: lock r1 replayed with fence 1"
expect "$r" "del(.replayed) == $first" "after kill -9: the first reply"
r=$(rr partition/unlock "$LOCK,\"fence\":1,\"request_id\":\"r3\"}")
expect "$r" ".replayed == true and del(.replayed) == $u" "after kill -9: unlock r3 replayed"
r=$(rr partition/lock "$LOCK,\"request_id\":\"r2\"}")
expect "$r" '.replayed == true and .error.code == "already_locked"' "after kill -9: the error reply r2 replayed"
r=$(rr partition/unlock "$LOCK,\"request_id\":\"r1\"}")
expect "$r" '.error.code == "request_id_conflict"' "after kill -9: r1 for unlock is still a conflict"
r=$(rr source/register "{\"source\":\"$S\",\"owner\":\"o\",\"request_id\":\"reg-1\"}")
expect "$r" ".replayed == true and .result.access_token == \"$TOKEN\"" "after kill -9: source/register replayed"
[ "$(seq_of)" = "$SEQ" ] || fail "seq changed by replays after the restart"
ok "seq unchanged by the replays after kill -9"
expect "$(sub1 "$PT")" '.state == "ready" and .version == 2 and .fence == 2' "state unchanged after the replays"

# ---- MQTT 3.1.1 retries ----
LOCK2="{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$D2\",\"end\":\"$D3\",\"access_token\":\"$TOKEN\",\"request_id\":\"r311\"}"
a=$(rr311 partition/lock "$LOCK2" cid-A)
expect "$a" '.ok and .correlation_id == "cid-A" and .request_id == "r311" and (has("replayed") | not)' "3.1.1 lock r311 (cid-A)"
SEQ=$(seq_of)
b=$(rr311 partition/lock "$LOCK2" cid-B)
expect "$b" '.ok and .replayed == true and .correlation_id == "cid-B" and .request_id == "r311"' "3.1.1 retry with cid-B: replayed with cid-B"
expect "$b" "del(.replayed, .correlation_id) == ($a | del(.correlation_id))" "3.1.1 retry: otherwise the first reply"
# the same request_id over MQTT 5: the stored correlation_id is not leaked
c=$(rr partition/lock "$LOCK2")
expect "$c" ".replayed == true and (has(\"correlation_id\") | not) and .result.fence == $(jq .result.fence <<<"$a")" "MQTT 5 retry of a 3.1.1 command: no stale correlation_id"
c=$(rr311 partition/unlock "$(jq -c '. + {request_id: "r311"}' <<<"$LOCK2")" cid-C)
expect "$c" '.error.code == "request_id_conflict" and .correlation_id == "cid-C"' "3.1.1: a conflict carries the retry's correlation_id"
[ "$(seq_of)" = "$SEQ" ] || fail "seq changed by 3.1.1 retries"
ok "seq unchanged by the 3.1.1 retries"

# ---- duplicates arriving together (QoS 1 redelivery, a client's retry) ----
LOCK3="{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$D3\",\"end\":\"$D4\",\"access_token\":\"$TOKEN\",\"request_id\":\"rdup\"}"
SEQ=$(seq_of)
LOCKED=$(events_of locked)
for c in d1 d2 d3 d4; do pub311 partition/lock "$(with311 "$LOCK3" "cid-$c")" & done
wait_pubs() { for c in d1 d2 d3 d4; do [ -n "$(wait_reply "cid-$c")" ] || fail "no reply to cid-$c"; done; }
wait_pubs
all=$(for c in d1 d2 d3 d4; do wait_reply "cid-$c"; done | jq -s -c '.')
expect "$all" '.[0].result.fence as $f | [.[] | select(.ok and .result.fence == $f)] | length == 4' "four duplicates: four ok replies with one fence"
expect "$all" '[.[] | select(has("replayed") | not)] | length == 1' "exactly one of them is not a replay"
sleep 0.3
[ "$(events_of locked)" = $((LOCKED + 1)) ] || fail "duplicates made $(( $(events_of locked) - LOCKED )) locked events"
ok "one locked event for the four duplicates"
r=$(rr partition/list "{\"source\":\"$S\"}")
expect "$r" '[.result.items[] | select(.state == "locked")] | length == 2' "two locked partitions (r311, rdup)"
# ---- a hostile client reusing request_ids (issue 10) ----
# The owner registers a source; whoever knows (or guesses) its request_id
# must not get the reply, hence the token, with any other body.
r=$(rr source/register '{"source":"sales","owner":"alice","request_id":"register-sales"}')
expect "$r" '.ok and (.result.access_token | length) == 36' "alice registers sales with request_id register-sales"
SALES=$(jq -r .result.access_token <<<"$r")
r=$(rr source/register '{"source":"sales","owner":"alice","request_id":"register-sales"}')
expect "$r" ".replayed == true and .result.access_token == \"$SALES\"" "the very same body is replayed (alice's retry)"
for body in '{"source":"evil","owner":"mallory","request_id":"register-sales"}' \
  '{"source":"sales","owner":"mallory","request_id":"register-sales"}'; do
  r=$(rr source/register "$body")
  expect "$r" '.error.code == "request_id_conflict" and .status == 409 and (has("result") | not) and (.error | has("details") | not)' "source/register $(jq -c 'del(.request_id)' <<<"$body"): conflict"
  if grep -qF "$SALES" <<<"$r"; then fail "the conflict disclosed the token"; fi
done
# The very same body from another user's reply topic (its body is public:
# source/get shows the owner) is a conflict too.
r=$(mosquitto_rr -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/source/register" -e "$P/reply/mallory/1" -W 10 \
  -m '{"source":"sales","owner":"alice","request_id":"register-sales"}')
expect "$r" '.error.code == "request_id_conflict" and (has("result") | not)' "alice's exact body replied to reply/mallory/: conflict"
r=$(rr source/get '{"source":"evil"}')
expect "$r" '.error.code == "unknown_source"' "the conflicting register did not create evil"

# rotate-token: the owner's retry replays; no token or another token is a conflict.
r=$(rr source/rotate-token "{\"source\":\"sales\",\"access_token\":\"$SALES\",\"request_id\":\"rot-1\"}")
expect "$r" '.ok and (.result.access_token | length) == 36' "alice rotates the token (rot-1)"
NEW=$(jq -r .result.access_token <<<"$r")
r=$(rr source/rotate-token '{"source":"sales","request_id":"rot-1"}')
expect "$r" '.error.code == "request_id_conflict" and (has("result") | not)' "rot-1 without a token: conflict, no token"
r=$(rr source/rotate-token "{\"source\":\"sales\",\"access_token\":\"$TOKEN\",\"request_id\":\"rot-1\"}")
expect "$r" '.error.code == "request_id_conflict"' "rot-1 with another source's token: conflict"
if grep -qF "$NEW" <<<"$r"; then fail "the conflict disclosed the new token"; fi
r=$(rr source/rotate-token "{\"source\":\"sales\",\"access_token\":\"$SALES\",\"request_id\":\"rot-1\"}")
expect "$r" ".replayed == true and .result.access_token == \"$NEW\"" "rot-1 with alice's old token again: replayed"

# A request_id reused for another partition: conflict, and B is not locked.
LA="{\"source\":\"$S\",\"provider\":\"p\",\"access_token\":\"$TOKEN\",\"request_id\":\"lock-a\""
r=$(rr partition/lock "$LA,\"start\":\"2023-02-01T00:00:00Z\",\"end\":\"2023-02-02T00:00:00Z\"}")
expect "$r" '.ok and .result.state == "locked"' "lock-a locks A"
r=$(rr partition/lock "$LA,\"start\":\"2023-02-02T00:00:00Z\",\"end\":\"2023-02-03T00:00:00Z\"}")
expect "$r" '.error.code == "request_id_conflict" and (.error.message | contains("other fields"))' "lock-a for partition B: request_id_conflict"
r=$(rr partition/list "{\"source\":\"$S\",\"limit\":1000}")
expect "$r" '[.result.items[] | select(.start == "2023-02-02T00:00:00Z")] | length == 0' "B was never locked"
r=$(rr partition/lock "$LA,\"start\":\"2023-02-01T00:00:00.000Z\",\"end\":\"2023-02-02T00:00:00+00:00\"}")
expect "$r" '.replayed == true and .result.state == "locked"' "the same instants written another way: the same body, replayed"

# The store keeps neither tokens nor request_ids in clear.
stop_agent
for needle in "$SALES" "$NEW" register-sales rot-1; do
  if grep -qaF "$needle" "$T"/data/*.mdb; then fail "the store holds '$needle' in clear"; fi
done
ok "no token or request_id in clear in the store"
pass
