#!/usr/bin/env bash
# partreg-http's JSON API under /v1/: every command forwarded, its envelope
# and status the ones mosquitto_rr gets over MQTT for the same command;
# readiness/query answered from the mirror exactly as the agent answers
# (several windows, blockers of several lengths and states in the agent's
# order), and from the agent when the summary is truncated (partregd
# --summary-max 4) or the source unknown; the GET routes; bad requests;
# the event stream (snapshot, then a partition event after a lock).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_http.sh"
start_broker
start_agent --summary-max 4 --stats-interval 1
start_http

# v1 CMD JSON [curl args]: POST /v1/CMD with the body.
v1() {
  local c=$1 b=$2
  shift 2
  hcall POST "/v1/$c" -H 'Content-Type: application/json' --data-binary "$b" "$@"
}
# same_as_mqtt CMD JSON DESCRIPTION: the HTTP reply to CMD equals
# mosquitto_rr's (request_id and volatile times aside), status included.
norm='del(.request_id) | walk(if type == "object" then del(.created_at, .updated_at, .since, .expires_at, .at) else . end)'
MQTT_Q=0
same_as_mqtt() {
  local m
  m=$(rr "$1" "$2")
  [ "$1" != readiness/query ] || MQTT_Q=$((MQTT_Q + 1))
  v1 "$1" "$2"
  [ "$HS" = "$(jq .status <<<"$m")" ] || fail "$3: HTTP $HS, MQTT status $(jq .status <<<"$m")"
  [ "$(jq -cS "$norm" <<<"$HB")" = "$(jq -cS "$norm" <<<"$m")" ] ||
    { echo "http: $HB" >&2; echo "mqtt: $m" >&2; fail "$3: replies differ"; }
  ok "$3: HTTP $HS and the envelope mosquitto_rr gets"
}
queries() { grep -c 'agent: readiness/query ok' "$T/agent.log" || true; }

# ---- commands
v1 source/register '{"source":"v1s","owner":"o"}'
hexpect 200 '.ok and .status == 200 and (.result.access_token | length) == 36' "source/register"
[[ $HCT == application/json* ]] || fail "Content-Type $HCT"
TOKEN=$(jq -r .result.access_token <<<"$HB")
same_as_mqtt source/register '{"source":"v1s","owner":"o"}' "source/register again (409 source_exists)"
v1 provider/register '{"provider":"p"}' -H "Authorization: Bearer $TOKEN"
hexpect 200 '.ok and .result.source == "v1s" and .result.provider == "p"' "provider/register, token from Authorization: Bearer"
v1 provider/register '{"source":"v1s","provider":"q"}' -H "Authorization: Bearer $TOKEN"
hexpect 200 '.result.provider == "q"' "provider/register q"
same_as_mqtt source/get '{"source":"v1s"}' "source/get"
same_as_mqtt source/get '{"source":"nosuch"}' "source/get of an unknown source (404)"
same_as_mqtt source/list '{}' "source/list"
pb() { jq -cn --arg t "$TOKEN" --arg p "${3:-p}" --arg s "$1" --arg e "$2" '{source:"v1s",provider:$p,start:$s,end:$e,access_token:$t}'; }
v1 partition/register "$(pb 2024-03-10 2024-03-11)"
hexpect 200 '.result.state == "pending"' "partition/register"
same_as_mqtt partition/register "$(pb 2024-03-10 2024-03-11)" "partition/register again (unchanged)"
v1 partition/lock "$(pb "2024-03-11 00:00:00" "2024-03-11 01:00:00" | jq -c '. + {ttl_s: 600}')"
hexpect 200 '.result.state == "locked" and .result.fence == 1' "partition/lock"
same_as_mqtt partition/lock "$(pb "2024-03-11 00:00:00" "2024-03-11 01:00:00")" "partition/lock of a locked one (409)"
v1 partition/renew "$(pb "2024-03-11 00:00:00" "2024-03-11 01:00:00" | jq -c '. + {fence: 1, ttl_s: 900}')"
hexpect 200 '.result.state == "locked"' "partition/renew"
v1 partition/lock "$(pb "2024-03-10 12:00:00" "2024-03-10 13:00:00" q)"
v1 partition/fail "$(pb "2024-03-10 12:00:00" "2024-03-10 13:00:00" q | jq -c '. + {reason: "disk full"}')"
hexpect 200 '.result.state == "failed" and .result.reason == "disk full"' "partition/fail"
for d in 1 2 3 4; do
  v1 partition/lock "$(pb 2024-03-0$d 2024-03-0$((d + 1)))"
  v1 partition/unlock "$(pb 2024-03-0$d 2024-03-0$((d + 1)) | jq -c ". + {fence: $(jq .result.fence <<<"$HB")}")"
  [ "$HS" = 200 ] || fail "unlock of day $d: $HB"
done
ok "partition/lock and partition/unlock: four ready days"
same_as_mqtt partition/unlock "$(pb 2024-03-01 2024-03-02)" "partition/unlock of a ready one (409)"
v1 partition/register "$(pb 2024-03-20 2024-03-21)"
v1 partition/delete "$(pb 2024-03-20 2024-03-21)"
hexpect 200 '.result.state == "deleted"' "partition/delete"
same_as_mqtt partition/list '{"source":"v1s"}' "partition/list"
same_as_mqtt history/query '{"source":"v1s","limit":5}' "history/query"
same_as_mqtt session/abort '{"session":"no-such-session"}' "session/abort"
v1 agent/resync '{"source":"v1s"}'
hexpect 200 '.ok' "agent/resync"
same_as_mqtt partition/lock "$(pb 2024-03-02 2024-03-01)" "partition/lock with start after end (422)"
v1 partition/lock '{"source":"v1s","provider":"p","start":"2024-05-01","end":"2024-05-02"}'
hexpect 401 '.ok == false and .error.code == "unauthorized"' "partition/lock without a token: the agent's 401"

# ---- readiness/query from the mirror, as the agent answers it
# Now: ready [03-01, 03-05); blockers p pending [03-10, 03-11) (a day),
# q failed [03-10 12:00, 13:00) and p locked [03-11 00:00, 01:00) (hours).
for _ in $(seq 50); do
  [ "$(curl -s "$H/v1/sources/v1s" | jq '.blocked | length')" = 3 ] && break
  sleep 0.1
done
before=$(queries)
mq=$MQTT_Q
for w in '2024-03-01 2024-03-05' '2024-03-01 2024-03-12' '2024-03-02T12:00:00+02:00 2024-03-03' \
  '2024-03-10T12:30:00Z 2024-03-11T00:30:00Z' '2024-02-01 2024-03-02' '2024-06-01 2024-06-02' \
  '2024-03-04 2024-03-10'; do
  read -r a b <<<"$w"
  q=$(jq -cn --arg a "$a" --arg b "$b" '{source:"v1s",start:$a,end:$b}')
  same_as_mqtt readiness/query "$q" "readiness/query [$a, $b)"
done
v1 readiness/query '{"source":"v1s","start":"2024-03-01","end":"2024-03-12"}'
expect "$HB" '[.result.blockers[] | .state] == ["failed", "locked", "pending"] and (.result.blockers[0] | has("epoch") | not)' "blockers in the agent's order (length class, then start), without epoch"
v1 readiness/query '{"source":"v1s","start":"2024-03-01","end":"2024-03-05","request_id":"r-1"}'
hexpect 200 '.request_id == "r-1" and .result.ready == true' "request_id echoed"
hcall GET '/v1/sources/v1s/readiness?start=2024-03-01&end=2024-03-12'
expect "$HB" "$(jq -c '.result' <<<"$(rr readiness/query '{"source":"v1s","start":"2024-03-01","end":"2024-03-12"}')") as \$a | .result == \$a" "GET /v1/sources/v1s/readiness equals readiness/query"
# The agent saw the queries mosquitto_rr sent (and the one just above), no more.
[ $(($(queries) - before)) -eq $((MQTT_Q - mq + 1)) ] ||
  fail "readiness/query reached the agent $(($(queries) - before)) times, mosquitto_rr sent $((MQTT_Q - mq + 1)): HTTP ones were not all answered locally"
ok "all those readiness queries were answered from the mirror (none reached the agent)"

# Truncated summary (5 separate ready ranges > --summary-max 4): the agent is asked.
for d in 01 03 05 07 09; do
  v1 partition/lock "$(pb 2024-04-$d "2024-04-$d 12:00:00")"
  v1 partition/unlock "$(pb 2024-04-$d "2024-04-$d 12:00:00" | jq -c ". + {fence: $(jq .result.fence <<<"$HB")}")"
done
for _ in $(seq 50); do
  [ "$(curl -s "$H/v1/sources/v1s" | jq .truncated)" = true ] && break
  sleep 0.1
done
expect "$(curl -s "$H/v1/sources/v1s")" '.truncated == true' "the summary is truncated"
before=$(queries)
mq=$MQTT_Q
same_as_mqtt readiness/query '{"source":"v1s","start":"2024-04-01","end":"2024-04-10"}' "readiness/query over a truncated summary"
hq GET /v1/sources/v1s/readiness start=2024-04-01 end=2024-04-02
hexpect 200 '.result.ready == false' "GET readiness over a truncated summary"
[ $(($(queries) - before)) -eq $((MQTT_Q - mq + 2)) ] ||
  fail "truncated summary: the agent answered $(($(queries) - before)) queries, expected $((MQTT_Q - mq + 2)) (the HTTP ones too)"
ok "truncated summary: readiness asked of the agent"
same_as_mqtt readiness/query '{"source":"nosuch","start":"2024-04-01","end":"2024-04-10"}' "readiness/query of an unknown source: the agent's 404"
same_as_mqtt readiness/query '{"source":"v1s","start":"2024-04-01"}' "readiness/query without end: the agent's 400"

# ---- GET routes
hcall GET /v1/sources
hexpect 200 '(.items | map(.source)) == ["v1s"] and .agent.status == "online"' "GET /v1/sources"
hcall GET /v1/sources/v1s
expect "$HB" "$(sub1 "$P/state/v1s") as \$s | . == \$s" "GET /v1/sources/v1s is the retained summary"
hcall GET /v1/sources/nosuch
hexpect 404 '.ok == false and .error.code == "not_found"' "GET /v1/sources/nosuch"
hcall GET '/v1/sources/v1s/partitions?start=2024-03-10&end=2024-03-12'
hexpect 200 '[.items[] | [.start, .provider, .state]] == [["2024-03-10T00:00:00Z","p","pending"],["2024-03-10T12:00:00Z","q","failed"],["2024-03-11T00:00:00Z","p","locked"]] and (.items[0] | has("epoch"))' "GET partitions over a window: retained states by start then provider"
hcall GET '/v1/sources/v1s/partitions'
hexpect 200 '(.items | length) >= 10 and any(.items[]; .state == "deleted")' "GET partitions without a window: all, tombstone included"
hcall GET '/v1/sources/v1s/partitions?start=2024-03-10'
hexpect 400 '.error.code == "bad_request" and (.error.message | test("end"))' "start without end: 400 naming end"
hcall GET '/v1/sources/v1s/readiness?start=2024-03-10&end=soon'
hexpect 400 '.error.message | test("end")' "bad end: 400 naming end"
hcall GET /v1/agent/status
expect "$HB" "$(sub1 "$P/agent/status") as \$s | . == \$s" "GET /v1/agent/status is the retained status"
for _ in $(seq 30); do hcall GET /v1/agent/stats; [ "$HS" = 200 ] && break; sleep 0.1; done
hexpect 200 '.commands.total > 0' "GET /v1/agent/stats"

# ---- bad requests
v1 nosuch/command '{}'
hexpect 404 '.error.code == "not_found"' "unknown command: 404"
hcall GET /v1/source/list
hexpect 405 '.error.code == "method_not_allowed"' "GET on a command: 405"
hcall DELETE /v1/sources
hexpect 405 '.error.code == "method_not_allowed"' "DELETE on a read: 405"
v1 source/get '{"source":"v1s","reply_to":"partreg/v1/reply/x"}'
hexpect 400 '.error.code == "bad_request" and (.error.message | test("reply_to"))' "reply_to refused, named"
v1 source/get '{"source":"v1s","correlation_id":"c"}'
hexpect 400 '.error.message | test("correlation_id")' "correlation_id refused, named"
v1 source/get '{"source": '
hexpect 400 '.error.code == "bad_request" and (.error.message | test("JSON"))' "bad JSON: 400"
v1 source/get '[1,2]'
hexpect 400 '.error.code == "bad_request"' "a JSON array: 400"

# ---- the event stream
curl -sN "$H/v1/stream" >"$T/stream" 2>/dev/null &
SSE=$!
PIDS+=("$SSE")
for _ in $(seq 50); do grep -q '^event: snapshot-end' "$T/stream" && break; sleep 0.1; done
grep -q '^event: snapshot-end' "$T/stream" || fail "no snapshot-end on /v1/stream"
grep -q '^event: status' "$T/stream" || fail "no status event in the snapshot"
grep -A1 '^event: summary' "$T/stream" | grep -c '"source":"v1s"' >/dev/null || fail "no summary of v1s in the snapshot"
[ "$(grep -c '^event: partition' "$T/stream")" -ge 10 ] || fail "the snapshot lacks partition events"
ok "/v1/stream: status, summaries and partitions, then snapshot-end"
v1 partition/lock "$(pb 2024-07-01 2024-07-02)"
for _ in $(seq 50); do
  grep -A1 '^event: partition' "$T/stream" | grep -c '"start":"2024-07-01T00:00:00Z".*"state":"locked"' >/dev/null && break
  sleep 0.1
done
after=$(sed -n '/^event: snapshot-end/,$p' "$T/stream")
grep -A1 '^event: partition' <<<"$after" | grep -c '"start":"2024-07-01T00:00:00Z".*"state":"locked"' >/dev/null ||
  fail "no partition event after the lock"
grep -A1 '^event: summary' <<<"$after" | grep -c '"source":"v1s"' >/dev/null ||
  fail "no summary event after the lock"
ok "/v1/stream: a partition and a summary event after a lock"
grep -qx 'partreg_http_sse_clients 1' <<<"$(curl -s "$H/metrics")" || fail "partreg_http_sse_clients is not 1"
kill "$SSE"
for _ in $(seq 30); do grep -qx 'partreg_http_sse_clients 0' <<<"$(curl -s "$H/metrics")" && break; sleep 0.1; done
grep -qx 'partreg_http_sse_clients 0' <<<"$(curl -s "$H/metrics")" || fail "the stream's client left, still counted"
ok "a stream's client leaving is seen within 3 s"

grep -q "$TOKEN" "$T/http.log" && fail "the token is in partreg-http's log"
ok "no token in partreg-http's debug log"
stop_http
pass
