#!/usr/bin/env bash
# An MQTT 3.1.1 client end to end (protocol.md §5): no Response Topic or
# Correlation Data, so commands carry reply_to and correlation_id in the
# body and replies arrive on reply_to with the same correlation_id. The
# register -> provider -> lock -> unlock -> readiness cycle this way; the
# retained state and events seen by 3.1.1 subscribers; a reply_to outside
# P/reply/ gets no reply.
. "$(dirname "$0")/lib.sh"
start_broker
start_agent

S=src311
D1="2023-01-01 00:00:00"
D2="2023-01-02 00:00:00"
Z1=2023-01-01T00:00:00Z
Z2=2023-01-02T00:00:00Z
RT="$P/reply/c311-$$"
M311=(-V mqttv311 -h 127.0.0.1 -p "$PORT")

bg_sub311 replies "$RT"

# pub311 VERB JSON: publish a command as an MQTT 3.1.1 client at QoS 1.
pub311() { mosquitto_pub "${M311[@]}" -q 1 -t "$P/cmd/$1" -m "$2"; }

# rr311 VERB JSON [CID]: add reply_to=$RT and correlation_id, publish, print
# the reply carrying that correlation_id (empty after 5 s).
rr311() {
  local cid=${3:-cid-$RANDOM-$RANDOM}
  pub311 "$1" "$(jq -c --arg rt "$RT" --arg c "$cid" '. + {reply_to: $rt, correlation_id: $c}' <<<"$2")"
  wait_reply "$cid" 50
}
# wait_reply CID TENTHS: the reply on $RT with correlation_id CID.
wait_reply() {
  for _ in $(seq "$2"); do
    local line
    line=$(grep -F "\"correlation_id\":\"$1\"" "$T/sub.replies" | head -n 1 || true)
    if [ -n "$line" ]; then
      echo "${line#"$RT "}"
      return 0
    fi
    sleep 0.1
  done
}

bg_sub311 events "$P/events/$S"

# ---- the cycle ----
r=$(rr311 source/register "{\"source\":\"$S\",\"owner\":\"o311\"}" c-reg)
expect "$r" '.ok and .status == 200 and .correlation_id == "c-reg" and .result.source == "src311" and (.result.access_token | length) == 36' "3.1.1: source registered, correlation_id echoed"
TOKEN=$(jq -r .result.access_token <<<"$r")

r=$(rr311 provider/register "{\"source\":\"$S\",\"provider\":\"p\",\"access_token\":\"$TOKEN\",\"request_id\":\"req-prov\"}" c-prov)
expect "$r" '.ok and .correlation_id == "c-prov" and .request_id == "req-prov" and .result.provider == "p"' "3.1.1: provider registered, request_id and correlation_id echoed"
PTOKEN=$(jq -r .result.provider_token <<<"$r")

r=$(rr311 partition/lock "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$PTOKEN\"}" c-lock)
expect "$r" ".ok and .correlation_id == \"c-lock\" and .result.state == \"locked\" and .result.fence == 1 and .result.start == \"$Z1\"" "3.1.1: locked with the provider token"
FENCE=$(jq -r .result.fence <<<"$r")

r=$(rr311 partition/lock "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$PTOKEN\"}" c-lock2)
expect "$r" '.ok == false and .status == 409 and .error.code == "already_locked" and .correlation_id == "c-lock2"' "3.1.1: an error reply carries its correlation_id"

r=$(rr311 readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\"}" c-rq1)
expect "$r" '.ok and .correlation_id == "c-rq1" and .result.ready == false and .result.blockers[0].state == "locked"' "3.1.1: not ready while locked"

r=$(rr311 partition/unlock "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$D1\",\"end\":\"$D2\",\"fence\":$FENCE,\"metadata\":{\"rows\":5},\"access_token\":\"$PTOKEN\"}" c-unlock)
expect "$r" '.ok and .correlation_id == "c-unlock" and .result.state == "ready" and .result.version == 1 and .result.metadata == {"rows":5}' "3.1.1: unlocked, ready"

r=$(rr311 readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\"}" c-rq2)
expect "$r" ".ok and .correlation_id == \"c-rq2\" and .result.ready == true and .result.gaps == [] and .result.ready_through == \"$Z2\"" "3.1.1: ready"

# ---- what 3.1.1 subscribers see ----
s=$(mosquitto_sub "${M311[@]}" -t "$P/state/$S" -C 1 -W 2 2>/dev/null || true)
expect "$s" ".source == \"$S\" and .ready == [[\"$Z1\",\"$Z2\"]] and .blocked == []" "a 3.1.1 subscriber gets the retained summary"
s=$(mosquitto_sub "${M311[@]}" -t "$P/state/$S/partitions/$Z1/$Z2/p" -C 1 -W 2 2>/dev/null || true)
expect "$s" '.state == "ready" and .version == 1' "a 3.1.1 subscriber gets the retained partition"
s=$(mosquitto_sub "${M311[@]}" -t "$P/state/+" -C 1 -W 2 -v 2>/dev/null || true)
[ "${s%% *}" = "$P/state/$S" ] || fail "3.1.1 wildcard subscription: got '$s'"
ok "a 3.1.1 wildcard subscriber gets the retained summary"
sleep 0.3
ev=$(sub_events events "$P/events/$S" | jq -c '[.[].type]')
expect "$ev" '. == ["source_registered","provider_registered","locked","unlocked"]' "a 3.1.1 subscriber saw the events of the cycle ($ev)"

# ---- error replies also reach reply_to ----
r=$(rr311 partition/lock "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"2023-13-01T00:00:00Z\",\"end\":\"$D2\",\"access_token\":\"$PTOKEN\"}" c-badtime)
expect "$r" '.status == 400 and .error.code == "invalid_time" and .correlation_id == "c-badtime"' "3.1.1: a decode error is answered on reply_to"
r=$(rr311 partition/lock "{\"strat\":\"$D1\",\"source\":\"$S\"}" c-typo)
expect "$r" '.status == 400 and .error.code == "invalid_field" and .correlation_id == "c-typo"' "3.1.1: an unknown field before reply_to is still answered"
r=$(rr311 partition/explode "{\"source\":\"$S\",\"provider\":\"p\"}" c-explode)
expect "$r" '.status == 404 and .error.code == "unknown_command" and .correlation_id == "c-explode"' "3.1.1: unknown command answered on reply_to"
r=$(rr311 partition/lock "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$D1\",\"end\":\"$D2\"}" c-noauth)
expect "$r" '.status == 401 and .error.code == "unauthorized" and .correlation_id == "c-noauth"' "3.1.1: unauthorized answered on reply_to"
# without correlation_id the reply simply has none
pub311 source/get "{\"source\":\"$S\",\"reply_to\":\"$RT\",\"request_id\":\"no-cid\"}"
for _ in $(seq 50); do grep -q '"request_id":"no-cid"' "$T/sub.replies" && break; sleep 0.1; done
r=$(grep -F '"request_id":"no-cid"' "$T/sub.replies" | head -n 1 || true)
expect "${r#"$RT "}" '.ok and (has("correlation_id") | not) and .result.source == "src311"' "3.1.1: reply_to without correlation_id"

# ---- reply_to outside P/reply/: no reply, nothing done ----
bg_sub311 outside "other/topic" "$P/state/x" "$P/events/$S/x" "$P/replyx/a" "$P/reply"
i=0
for rt in "other/topic" "$P/state/x" "$P/events/$S/x" "$P/replyx/a" "$P/reply"; do
  i=$((i + 1))
  pub311 source/register "{\"source\":\"evil$i\",\"owner\":\"o\",\"reply_to\":\"$rt\",\"correlation_id\":\"c-evil$i\"}"
  pub311 partition/explode "{\"reply_to\":\"$rt\",\"correlation_id\":\"c-evilx$i\"}"
done
# wildcards are not topics one can publish on
pub311 source/register "{\"source\":\"evilw\",\"owner\":\"o\",\"reply_to\":\"$P/reply/+\",\"correlation_id\":\"c-evilw\"}"
pub311 source/register "{\"source\":\"evilh\",\"owner\":\"o\",\"reply_to\":\"$P/reply/#\",\"correlation_id\":\"c-evilh\"}"
r=$(rr311 source/list '{"limit":1000}' c-list)
expect "$r" "[.result.items[].source] == [\"$S\"]" "commands with a reply_to outside $P/reply/ created nothing"
sleep 1.5
if grep -qE 'received PUBLISH \([^)]*r0,' "$T/sub.outside"; then
  grep -A2 'received PUBLISH' "$T/sub.outside" >&2
  fail "the agent published on a reply_to outside $P/reply/"
fi
ok "no reply on a reply_to outside $P/reply/"
grep -q 'c-evil' "$T/sub.replies" && fail "a refused reply_to was answered on $RT"
ok "and none on the client's own reply topic either"

r=$(rr311 source/get "{\"source\":\"$S\"}" c-final)
expect "$r" '.ok and .correlation_id == "c-final"' "the agent still answers 3.1.1 clients"
pass
