#!/usr/bin/env bash
# The shipped ACL (compose/mosquitto/acl with site-a.conf): no anonymous
# client; a client cannot publish fake state, events, agent status or
# replies (its retained state stays, no subscriber ever sees the fake), nor
# read another user's replies; clients still send commands and get replies.
# And the agent never publishes outside its prefix: at a plain test broker
# (compose/mosquitto/mosquitto.conf, no ACL), a subscriber to '#' watches a
# walk-through with the agent on another prefix; every topic seen is under
# that prefix, and the agent's client was never denied a publish at the
# ACL broker.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_sites.sh"

make_users
# The broker logs the PUBLISHes it receives and denies (and who sent them).
SITE_EXTRA[a]="log_type all"
start_site a site-a.conf
A=${SITE_PORT[a]}
PORT=$A
start_agent --username partregd --password-file "$T/agent.pw"
AGENT_ID="partregd:$P"

# ---- logins ----
out=$(mosquitto_sub -h 127.0.0.1 -p "$A" -t "$P/state/#" -C 1 -W 2 2>&1 || true)
grep -qi 'not authori' <<<"$out" || fail "an anonymous client was not refused: $out"
ok "an anonymous client is refused"
out=$(mosquitto_sub -h 127.0.0.1 -p "$A" -u client -P wrong -t "$P/state/#" -C 1 -W 2 2>&1 || true)
grep -qi 'not authori' <<<"$out" || fail "a wrong password was not refused: $out"
ok "a wrong password is refused"

# ---- clients send commands and get replies ----
S=acl
D="\"start\":\"2023-01-01T00:00:00Z\",\"end\":\"2023-01-02T00:00:00Z\""
r=$(cmd_at "$A" source/register "{\"source\":\"$S\",\"owner\":\"o\"}")
expect "$r" '.ok and (.result.access_token | length) == 36' "a client registers a source and gets the reply"
TOKEN=$(jq -r .result.access_token <<<"$r")
r=$(cmd_at "$A" provider/register "{\"source\":\"$S\",\"provider\":\"p\",\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok' "a client registers a provider"
r=$(cmd_at "$A" partition/lock "{\"source\":\"$S\",\"provider\":\"p\",$D,\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok and .result.state == "locked"' "a client locks a partition"
PTOPIC="$P/state/$S/partitions/2023-01-01T00:00:00Z/2023-01-02T00:00:00Z/p"
before_sum=$(sub1 "$P/state/$S")
before_part=$(sub1 "$PTOPIC")
before_status=$(sub1 "$P/agent/status")
expect "$before_part" '.state == "locked"' "the retained partition is locked"

# A watcher with every read right of a client, for the whole attack.
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$A" -u client -P "$PW_CLIENT" -q 1 -v \
  -t "$P/state/#" -t "$P/events/#" -t "$P/agent/#" -t "$P/reply/client/#" >"$T/watch" 2>&1 &
WATCH=$!
PIDS+=($WATCH)
sleep 0.5

# ---- fakes: refused, never seen, nothing changed ----
fake() { # USER PASSWORD TOPIC [retain]: publish a fake at QoS 1 with MQTT 5, print the PUBACK line
  mosquitto_pub -V mqttv5 -d -h 127.0.0.1 -p "$A" -u "$1" -P "$2" -q 1 ${4:+-r} -t "$3" \
    -m '{"fake": true, "state": "ready", "status": "offline", "ok": true}' 2>&1 | grep PUBACK || true
}
for t in "$P/state/$S" "$PTOPIC" "$P/agent/status"; do
  a=$(fake client "$PW_CLIENT" "$t" retain)
  grep -q 'RC:135' <<<"$a" || fail "a fake retained $t by a client: '$a' (expected PUBACK 135 not authorized)"
  ok "a client's fake retained $t is refused (PUBACK reason 135, not authorized)"
done
for t in "$P/events/$S" "$P/reply/client/x" "$P/reply/client2/x"; do
  a=$(fake client "$PW_CLIENT" "$t")
  grep -q 'RC:135' <<<"$a" || fail "a fake $t by a client: '$a'"
  ok "a client's fake $t is refused (no fake events; no forged replies, its own or another's)"
done
a=$(fake site-b "$PW_BRIDGE" "$P/state/$S" retain)
grep -q 'RC:135' <<<"$a" || fail "a fake state by the bridge user: '$a'"
ok "the bridge user cannot publish state either"
# An MQTT 3.1.1 client gets no refusal (3.1.1 has none) but nothing passes.
mosquitto_pub -V mqttv311 -h 127.0.0.1 -p "$A" -u client -P "$PW_CLIENT" -q 1 -r -t "$P/state/$S" \
  -m '{"fake": true}'
sleep 0.5
grep -q fake "$T/watch" && { cat "$T/watch" >&2; fail "a subscriber saw a fake message"; }
ok "no subscriber saw any of the fakes"
[ "$(sub1 "$P/state/$S")" = "$before_sum" ] || fail "the retained summary changed"
[ "$(sub1 "$PTOPIC")" = "$before_part" ] || fail "the retained partition changed"
[ "$(sub1 "$P/agent/status")" = "$before_status" ] || fail "the retained agent status changed"
ok "the retained summary, partition and agent status are unchanged"
grep -q "Denied PUBLISH from .*'$P/state/$S'" "$T/broker-a.log" || fail "the broker logged no denied PUBLISH"
ok "the broker logged the denied publishes"

# ---- replies are private to their user ----
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$A" -u client -P "$PW_CLIENT" -q 1 -v -t "$P/reply/#" >"$T/snoop" 2>&1 &
PIDS+=($!)
sleep 0.3
r=$(mosquitto_rr -h 127.0.0.1 -p "$A" -u client2 -P "$PW_CLIENT2" -q 1 -t "$P/cmd/source/register" \
  -e "$P/reply/client2/r1" -m '{"source":"secret","owner":"o2"}' -W 10 2>/dev/null || true)
expect "$r" '.ok and (.result.access_token | length) == 36' "client2 gets its reply (with its token) under $P/reply/client2/"
sleep 0.3
grep -q secret "$T/snoop" && fail "client read client2's reply"
ok "client, subscribed to $P/reply/#, does not see client2's reply"
r=$(mosquitto_rr -h 127.0.0.1 -p "$A" -u client -P "$PW_CLIENT" -q 1 -t "$P/cmd/source/get" \
  -e "$P/reply/client2/steal" -m '{"source":"secret"}' -W 2 2>/dev/null || true)
[ -z "$r" ] || fail "a client got a reply on another user's reply topic: $r"
ok "a client cannot read replies on another user's reply topic either"

# ---- and the agent still works, and was never denied ----
r=$(cmd_at "$A" partition/unlock "{\"source\":\"$S\",\"provider\":\"p\",$D,\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok and .result.state == "ready"' "a client unlocks after all that"
expect "$(sub1 "$PTOPIC")" '.state == "ready"' "and the retained partition shows it"
stop_agent
grep -q "Denied PUBLISH from $AGENT_ID" "$T/broker-a.log" && fail "the broker denied a publish of the agent"
grep -q "Received PUBLISH from $AGENT_ID" "$T/broker-a.log" || fail "the broker logged no publish of the agent (log check broken)"
ok "the broker never denied a publish of the agent (its state, events, status, replies are all within the ACL)"
stop_site a

# ---- the agent publishes only under its prefix ----
# A plain broker (the single-site config) and an agent on another prefix,
# watched by a subscriber to '#': every topic that anyone but the test's own
# command publisher sends is the agent's.
T_PREFIX=site1/registry
start_broker
P0=$P
P=$T_PREFIX
"$PARTREGD" --broker "mqtt://127.0.0.1:$PORT" --data-dir "$T/data2" --prefix "$P" --log-level debug \
  >>"$T/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=($AGENT_PID)
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -F '%t %p' -t '#' >"$T/all" 2>&1 &
ALL=$!
PIDS+=($ALL)
plain_sub1() { mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$1" -C 1 -W 2 2>/dev/null || true; }
for _ in $(seq 100); do [ "$(plain_sub1 "$P/agent/status" | jq -r .status 2>/dev/null)" = online ] && break; sleep 0.1; done
[ "$(plain_sub1 "$P/agent/status" | jq -r .status)" = online ] || fail "agent on prefix $P not online"
prr() { mosquitto_rr -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/$1" -e "${3:-$P/reply/w}" -m "$2" -W "${4:-10}" 2>/dev/null || true; }
r=$(prr source/register "{\"source\":\"$S\",\"owner\":\"o\"}")
TOKEN=$(jq -r .result.access_token <<<"$r")
[ ${#TOKEN} -eq 36 ] || fail "walk-through on prefix $P: register"
AUTH="\"source\":\"$S\",\"provider\":\"p\",$D,\"access_token\":\"$TOKEN\""
prr provider/register "{\"source\":\"$S\",\"provider\":\"p\",\"access_token\":\"$TOKEN\"}" | replied .ok || fail "provider"
prr partition/register "{$AUTH}" | replied .ok || fail "partition/register"
F=$(prr partition/lock "{$AUTH,\"ttl_s\":60,\"session\":\"s1\"}" | jq -r .result.fence)
prr partition/renew "{$AUTH,\"fence\":$F}" | replied .ok || fail "renew"
prr readiness/query "{\"source\":\"$S\",$D}" | replied '.result.ready == false' || fail "readiness"
prr partition/unlock "{$AUTH,\"fence\":$F,\"metadata\":{\"rows\":1}}" | replied .ok || fail "unlock"
prr partition/lock "{$AUTH,\"session\":\"s2\"}" | replied .ok || fail "lock 2"
prr session/abort '{"session":"s2"}' | replied .ok || fail "session/abort"
prr partition/delete "{$AUTH}" | replied .ok || fail "delete"
prr history/query "{\"source\":\"$S\"}" | replied .ok || fail "history"
prr agent/resync '{}' | replied .ok || fail "resync"
prr partition/explode '{}' | replied '.status == 404' || fail "unknown command"
prr source/get '{"source": "x"' | replied '.status == 400' || fail "bad json"
# Reply topics outside the prefix's reply/ are refused, not answered.
for rt in other/reply "$P0/reply/x" "$P/state/$S" "$P/cmd/source/get"; do
  prr source/get "{\"source\":\"$S\"}" "$rt" 1 >/dev/null
done
mosquitto_pub -V mqttv311 -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/source/get" \
  -m "{\"source\":\"$S\",\"reply_to\":\"elsewhere/x\",\"correlation_id\":\"c\"}"
# A prefix-less command and another prefix's: the agent must not react.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P0/cmd/source/register" -m '{"source":"other","owner":"o"}'
sleep 0.5
stop_agent
sleep 0.3
kill "$ALL"
# The agent's offline status and its Will are within the prefix too.
n=$(wc -l <"$T/all")
[ "$n" -ge 20 ] || fail "the '#' subscriber saw only $n messages"
outside=$(grep -v "^$P/" "$T/all" | grep -v "^$P0/cmd/" || true)
if [ -n "$outside" ]; then
  echo "$outside" >&2
  fail "messages outside the prefix $P/"
fi
agent_topics=$(cut -d' ' -f1 "$T/all" | grep "^$P/" | grep -v "^$P/cmd/" | sed -E "s|^$P/(state/[^/]*/partitions)/.*|$P/\1/...|" | sort | uniq -c | awk '{print $2 "(" $1 ")"}' | xargs)
ok "a '#' subscriber saw $n messages; all but the test's own commands under $P/: $agent_topics"
grep -q "^$P/reply/w " "$T/all" || fail "no reply seen (check broken)"
grep -qE "^$P/(state|events|agent)/" "$T/all" || fail "no state seen (check broken)"
grep -q "^$P/state/$S " "$T/all" || fail "no summary seen (check broken)"
grep -E "^($P/state/$S|$P/cmd/source/get) " "$T/all" | grep -q '"ok":' && fail "the agent answered on a state or command topic"
ok "no reply on the refused reply topics ($P/state/$S and $P/cmd/source/get got none; other/reply, $P0/reply/x, elsewhere/x are outside)"
P=$P0
FAILED=0
echo PASS
