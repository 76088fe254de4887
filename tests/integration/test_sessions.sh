#!/usr/bin/env bash
# Sessions (issue 3): a lock may name a session; session/abort (no token:
# the session id is the capability) fails every lock of that session at
# once, across sources, and nothing else; the session survives a restart;
# and as an MQTT Last Will it releases a kill -9'd client's locks in
# seconds.
. "$(dirname "$0")/lib.sh"
start_broker
start_agent

SA=sess_a
SB=sess_b
new_source "$SA"; TA=$TOKEN
new_source "$SB"; TB=$TOKEN
day() { date -u -d "2023-01-01 UTC +$1 day" +%Y-%m-%dT%H:%M:%SZ; }
# part SOURCE N [EXTRA MEMBERS]: the command body for day N of SOURCE, provider p.
part() {
  local tok=$TA
  [ "$1" = "$SB" ] && tok=$TB
  echo "{\"source\":\"$1\",\"provider\":\"p\",\"start\":\"$(day "$2")\",\"end\":\"$(day $(($2 + 1)))\",\"access_token\":\"$tok\"${3:+,$3}}"
}
ptopic() { echo "$P/state/$1/partitions/$(day "$2")/$(day $(($2 + 1)))/p"; }
# pstate SOURCE N: day N's partition as partition/list shows it.
pstate() { rr partition/list "{\"source\":\"$1\"}" | jq -c ".result.items[] | select(.start == \"$(day "$2")\")"; }

# Events of sources B and A, from now on.
follow_events "$SB"
follow_events "$SA" events_a.json

# sd SESSION: the session_digest partreg publishes for SESSION.
sd() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

# --- session names --------------------------------------------------------------
S64=$(printf 's%.0s' $(seq 64))
r=$(rr partition/lock "$(part $SA 0 "\"session\":\"${S64}x\"")")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "a session of 65 characters is refused"
r=$(rr partition/lock "$(part $SA 0 '"session":""')")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "an empty session is refused"
r=$(rr partition/lock "$(part $SA 0 '"session":"j\u00f6b"')")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "a session that is not ASCII is refused"
r=$(rr partition/lock "$(part $SA 0 '"session":"job\t1"')")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "a session with a control character is refused"
r=$(rr partition/lock "$(part $SA 0 '"session":7')")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "a session that is a number is refused"
expect "$(rr partition/list "{\"source\":\"$SA\"}")" '.result.items == []' "refused locks changed nothing"
r=$(rr session/abort '{}')
expect "$r" '.status == 400 and .error.code == "missing_field"' "session/abort needs a session"
r=$(rr session/abort "{\"session\":\"${S64}x\"}")
expect "$r" '.status == 400 and .error.code == "invalid_field"' "session/abort with a 65-character session is refused"

# --- abort: every lock of the session, across sources, and nothing else -------
r=$(rr partition/lock "$(part $SA 0 "\"session\":\"$S64\"")")
expect "$r" ".ok and .result.session_digest == \"$(sd "$S64")\"" "a session of 64 characters is accepted"
expect "$(rr partition/lock "$(part $SA 1 '"session":"job-7"')")" '.ok and .result.state == "locked" and .result.session_digest == "c37bd1a8462d7ad637654ed3043935aa95e808767e0adee1400d206ef5e2a5ff"' "lock A day 1 under job-7"
expect "$(rr partition/lock "$(part $SA 2 '"session":"job-7"')")" '.ok and .result.session_digest == "c37bd1a8462d7ad637654ed3043935aa95e808767e0adee1400d206ef5e2a5ff"' "lock A day 2 under job-7"
expect "$(rr partition/lock "$(part $SB 1 '"session":"job-7"')")" '.ok and .result.session_digest == "c37bd1a8462d7ad637654ed3043935aa95e808767e0adee1400d206ef5e2a5ff"' "lock B day 1 under job-7"
expect "$(rr partition/lock "$(part $SA 3 '"session":"job-8"')")" '.ok and .result.session_digest == "8c06992db1914444fbe046ee06e4613ad6c144e776b902a00a45c98b30eaf24c"' "lock A day 3 under job-8"
expect "$(rr partition/lock "$(part $SA 4)")" '.ok and (.result | has("session_digest") | not)' "lock A day 4 without a session"
expect "$(rr partition/lock "$(part $SA 5 '"session":"job-7"')")" '.ok' "lock A day 5 under job-7..."
expect "$(rr partition/unlock "$(part $SA 5)")" '.ok and .result.state == "ready"' "...and finish it"
expect "$(sub1 "$(ptopic $SB 1)")" ".state == \"locked\" and .session_digest == \"$(sd job-7)\" and (has(\"session\") | not)" "retained partition names its session's digest, never the id"
r=$(rr partition/list "{\"source\":\"$SA\"}")
if grep -q job-7 <<<"$r"; then fail "partition/list shows a session id: $r"; fi
ok "partition/list shows no session id"
# What a reader sees is no capability: aborting "the session" it read fails nothing.
seen=$(sub1 "$(ptopic $SB 1)" | jq -r .session_digest)
r=$(rr session/abort "{\"session\":\"$seen\"}")
expect "$r" '.ok and .result.failed == []' "session/abort with the published digest fails nothing"
expect "$(sub1 "$(ptopic $SB 1)")" '.state == "locked"' "B day 1 still locked after the reader's abort"
F7=$(pstate $SA 1 | jq .fence)

r=$(rr session/abort '{"session":"job-7"}')
expect "$r" '.ok and .status == 200 and .result.session == "job-7" and (.result.failed | length) == 3' "session/abort without a token: three locks failed"
expect "$r" "[.result.failed[] | [.source, .start]] | sort == [[\"$SA\",\"$(day 1)\"],[\"$SA\",\"$(day 2)\"],[\"$SB\",\"$(day 1)\"]]" "the session's locks in both sources, and only those"
expect "$r" '[.result.failed[] | .state == "failed" and .reason == "session_aborted"] | all' "each failed with reason session_aborted"
expect "$(pstate $SA 1)" '.state == "failed" and .reason == "session_aborted"' "A day 1: failed"
expect "$(pstate $SA 2)" '.state == "failed" and .reason == "session_aborted"' "A day 2: failed"
expect "$(pstate $SB 1)" '.state == "failed" and .reason == "session_aborted"' "B day 1: failed"
expect "$(pstate $SA 0)" '.state == "locked"' "A day 0 (another session) still locked"
expect "$(pstate $SA 3)" ".state == \"locked\" and .session_digest == \"$(sd job-8)\"" "A day 3 (job-8) still locked"
expect "$(pstate $SA 4)" '.state == "locked"' "A day 4 (no session) still locked"
expect "$(pstate $SA 5)" '.state == "ready" and .version == 1' "A day 5 (finished under job-7) still ready"
expect "$(sub1 "$(ptopic $SB 1)")" '.state == "failed" and .reason == "session_aborted"' "retained partition: failed"
expect "$(sub1 "$P/state/$SB")" "[.blocked[] | select(.start == \"$(day 1)\" and .state == \"failed\" and .reason == \"session_aborted\")] | length == 1" "summary: the aborted partition blocks as failed"
sleep 0.3
expect "$(events)" "[.[] | select(.type == \"failed\" and .reason == \"session_aborted\" and .start == \"$(day 1)\" and .source == \"$SB\")] | length == 1" "a failed/session_aborted event"
# One command, one group commit: A's two failed partitions come as ONE
# message on P/events/sess_a holding both events, in seq order.
expect "$(events events_a.json)" "[.[] | select(.reason == \"session_aborted\")] | length == 2" "A: two failed/session_aborted events"
AB=$(batches events_a.json | jq -c '[.[] | select(any(.events[]; .reason == "session_aborted"))]')
expect "$AB" "length == 1 and .[0].v == 2 and .[0].source == \"$SA\" and (.[0].events | length) == 2" "A: both in one message (v 2, source $SA, two events)"
expect "$AB" ".[0].events | all(.type == \"failed\" and .state == \"failed\" and .reason == \"session_aborted\") and ([.[].start] | sort) == [\"$(day 1)\", \"$(day 2)\"]" "A: the batch holds days 1 and 2, failed"
expect "$AB" '.[0] | .epoch as $e | .events[1].seq == .events[0].seq + 1 and all(.events[]; .epoch == $e)' "A: the batch's events in seq order, with its epoch"

r=$(rr session/abort '{"session":"job-7"}')
expect "$r" '.ok and .result.session == "job-7" and .result.failed == []' "aborting the session again fails nothing"
r=$(rr session/abort '{"session":"never-used"}')
expect "$r" '.ok and .result.failed == []' "aborting an unknown session fails nothing"
r=$(rr partition/unlock "$(part $SA 1 "\"fence\":$F7")")
expect "$r" '.ok == false and .status == 409' "the aborted run cannot unlock afterwards"
expect "$(pstate $SA 1)" '.state == "failed"' "still failed"

r=$(rr session/abort '{"session":"job-8","reason":"worker lost"}')
expect "$r" '.ok and (.result.failed | length) == 1 and .result.failed[0].reason == "worker lost"' "session/abort with a reason"
expect "$(sub1 "$(ptopic $SA 3)")" '.state == "failed" and .reason == "worker lost"' "retained partition carries the given reason"

# A new run of an aborted partition under another session is not touched by
# the old session's abort.
expect "$(rr partition/lock "$(part $SA 1 '"session":"job-9"')")" '.ok and .result.state == "locked" and .result.session_digest == "e7a4577ffc3da084456e4f8e5950e67cab1816793f0297612b8ccba2738c0218"' "relock A day 1 under job-9"
expect "$(rr session/abort '{"session":"job-7"}')" '.result.failed == []' "job-7's abort does not touch job-9's lock"
expect "$(pstate $SA 1)" ".state == \"locked\" and .session_digest == \"$(sd job-9)\"" "A day 1 still locked by job-9"

# --- the session survives a restart ---------------------------------------------
stop_agent
start_agent
r=$(rr session/abort '{"session":"job-9"}')
expect "$r" ".ok and (.result.failed | length) == 1 and .result.failed[0].start == \"$(day 1)\"" "a session's locks are remembered across a restart"

# --- Last Will: kill -9 of a client releases its session's locks ---------------
mosquitto_sub -h 127.0.0.1 -p "$PORT" -V mqttv5 -t "test/will/$$" \
  --will-topic "$P/cmd/session/abort" --will-payload '{"session":"job-42"}' --will-qos 1 \
  >"$T/will.out" 2>&1 &
WILL_PID=$!
PIDS+=("$WILL_PID")
for i in $(seq 50); do
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -t "test/will/$$" -m "up $i"
  grep -q up "$T/will.out" && break
  sleep 0.1
done
# A session of 300 locks aborted at once: 300 failed events, published as
# messages of at most 256 events (256 + 44), every one once, in seq order.
follow_events "$SA" events_big.json
for i in $(seq 100 399); do part $SA "$i" '"session":"job-big"'; done |
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/lock" -l
for _ in $(seq 100); do
  [ "$(events events_big.json | jq '[.[] | select(.type == "locked")] | length')" = 300 ] && break
  sleep 0.1
done
r=$(rr session/abort '{"session":"job-big"}')
expect "$r" '.ok and (.result.failed | length) == 300' "session/abort of 300 locks"
for _ in $(seq 100); do
  [ "$(events events_big.json | jq '[.[] | select(.reason == "session_aborted")] | length')" = 300 ] && break
  sleep 0.1
done
expect "$(events events_big.json)" '[.[] | select(.reason == "session_aborted") | .start] | unique | length == 300' \
  "300 failed/session_aborted events, each once"
expect "$(batches events_big.json | jq -c '[.[] | select(any(.events[]; .reason == "session_aborted")) | .events | length]')" \
  '. == [256, 44]' "in two messages of 256 and 44 events"
grep -q up "$T/will.out" || fail "the client with the Last Will did not connect"
expect "$(rr partition/lock "$(part $SA 10 '"session":"job-42"')")" '.ok and .result.session_digest == "5359ae12ca11e5d628161c38de88522b51cb30c79b1ad9ba67e4860c6119bfff"' "the job locks A day 10 under job-42"
expect "$(rr partition/lock "$(part $SB 10 '"session":"job-42"')")" '.ok and .result.session_digest == "5359ae12ca11e5d628161c38de88522b51cb30c79b1ad9ba67e4860c6119bfff"' "the job locks B day 10 under job-42"
sleep 0.5
expect "$(pstate $SA 10)" '.state == "locked"' "locked while the job lives"
t0=$(date +%s%N)
kill -9 "$WILL_PID"
a="" b=""
for _ in $(seq 100); do
  a=$(pstate $SA 10); b=$(pstate $SB 10)
  [ "$(jq -r .state <<<"$a")" = failed ] && [ "$(jq -r .state <<<"$b")" = failed ] && break
  sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
expect "$a" '.state == "failed" and .reason == "session_aborted"' "Last Will: A day 10 failed"
expect "$b" '.state == "failed" and .reason == "session_aborted"' "Last Will: B day 10 failed"
[ $ms -le 5000 ] || fail "the Last Will took $ms ms"
ok "the killed job's locks were released in $ms ms"
pass
