#!/usr/bin/env bash
# partreg-http when the agent or the broker is away. Agent stopped
# (SIGTERM): readiness, summaries and partition states still answer from
# the retained state; writes answer 503 "agent offline since <at>" (the at
# of the retained offline status) and are not sent; /readyz 503. Agent
# back: writes work again. Broker stopped: readiness still answers from the
# mirror, /readyz says the broker is disconnected, writes 503
# broker_unavailable; broker back: connected again. Agent killed (-9): its
# Last Will says lost, and the 503 says since when partreg-http saw it go.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_http.sh"
start_broker
start_agent
start_http

S=off_src
hq POST /sources/register source_name=$S owner=o
TOKEN=$(jq -r .registered_object.access_token.token <<<"$HB")
[ ${#TOKEN} -eq 36 ] || fail "source not registered: $HB"
hq POST /providers/register provider_name=p access_token=$TOKEN
hq POST /partitions/lock start=2024-01-01 end=2024-01-02 source_name=$S provider_name=p access_token=$TOKEN
hq POST /partitions/unlock start=2024-01-01 end=2024-01-02 source_name=$S provider_name=p access_token=$TOKEN
hexpect 200 '.registered_object.partition.state == "ready"' "day 1 ready"
hq POST /partitions/lock start=2024-01-02 end=2024-01-03 source_name=$S provider_name=p access_token=$TOKEN
hexpect 200 '.registered_object.partition.state == "locked"' "day 2 locked"
FENCE=$(jq .registered_object.fence <<<"$HB")
hcall GET /readyz
hexpect 200 '.broker == "connected" and .agent == "online"' "/readyz with broker and agent"

# Every command published from now on, to prove none is sent while offline.
# Subscribed once a probe on a topic of its own comes through.
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$P/cmd/#" -t probe/offline -v >"$T/cmds" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 50); do
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -t probe/offline -m x
  grep -q '^probe/offline x$' "$T/cmds" && break
  sleep 0.1
done
grep -q '^probe/offline x$' "$T/cmds" || fail "the command subscriber did not come up"

stop_agent
AT=$(sub1 "$P/agent/status" | jq -r .at)
for _ in $(seq 50); do hcall GET /readyz; [ "$HS" = 503 ] && break; sleep 0.1; done
hexpect 503 ".broker == \"connected\" and .agent == \"offline\" and .agent_since == \"$AT\"" "/readyz: 503, agent offline"

hq GET /sources/$S/check_readiness start=2024-01-01 end=2024-01-02
hexpect 200 '.is_ready == true and .message == null' "agent stopped: check_readiness of the ready day"
hq GET /sources/$S/check_readiness start=2024-01-01 end=2024-01-03
hexpect 200 '.is_ready == false and (.message | test("locked partition"))' "agent stopped: check_readiness of two days, one locked"
hcall POST /v1/readiness/query -d "{\"source\":\"$S\",\"start\":\"2024-01-01\",\"end\":\"2024-01-03\"}"
hexpect 200 '.ok and .result.ready == false and .result.ready_through == "2024-01-02T00:00:00Z" and .result.blockers[0].state == "locked"' "agent stopped: POST /v1/readiness/query"
hcall GET /v1/sources/$S
hexpect 200 ".source == \"$S\" and (.ready | length) == 1" "agent stopped: the summary"
hcall GET /v1/sources/$S/partitions
hexpect 200 '[.items[].state] == ["ready", "locked"]' "agent stopped: the partition states"
hcall GET /v1/sources
hexpect 200 '.agent.status == "offline"' "agent stopped: /v1/sources shows the offline status"

hq POST /partitions/unlock start=2024-01-02 end=2024-01-03 source_name=$S provider_name=p fence=$FENCE access_token=$TOKEN
hexpect 503 ".status_code == 503 and .code == \"agent_offline\" and .detail == \"agent offline since $AT\"" "agent stopped: unlock answers 503 agent offline since <at>"
hq POST /sources/register source_name=other owner=o
hexpect 503 '.detail | startswith("agent offline since ")' "agent stopped: source registration 503"
hcall POST /v1/partition/lock -d "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"2024-02-01\",\"end\":\"2024-02-02\",\"access_token\":\"$TOKEN\"}"
hexpect 503 ".ok == false and .error.code == \"agent_offline\" and .error.message == \"agent offline since $AT\"" "agent stopped: POST /v1/partition/lock 503"
hq GET /sources/nosuch/check_readiness start=2024-01-01 end=2024-01-02
hexpect 503 '.code == "agent_offline"' "agent stopped: readiness of a source the mirror does not know: 503"
sleep 0.3
grep -v "^probe/offline " "$T/cmds" >"$T/cmds.only" || true
[ ! -s "$T/cmds.only" ] || fail "commands were published while the agent was offline: $(cat "$T/cmds.only")"
ok "no command was sent while the agent was offline"

start_agent
for _ in $(seq 50); do hcall GET /readyz; [ "$HS" = 200 ] && break; sleep 0.1; done
hexpect 200 '.agent == "online"' "agent back: /readyz 200"
hq POST /partitions/unlock start=2024-01-02 end=2024-01-03 source_name=$S provider_name=p fence=$FENCE access_token=$TOKEN
hexpect 200 '.registered_object.partition.state == "ready"' "agent back: unlock works"
for _ in $(seq 50); do
  hq GET /sources/$S/check_readiness start=2024-01-01 end=2024-01-03
  [ "$(jq -r .is_ready <<<"$HB")" = true ] && break
  sleep 0.1
done
hexpect 200 '.is_ready == true' "agent back: both days ready"

# ---- the agent killed: the broker publishes its Last Will ("lost": true),
# whose at is when its connection began. The 503 says when partreg-http saw
# it go; a partreg-http that starts after the crash says what it knows.
epoch_of() { date -u -d "$(sed -e 's/T/ /' -e 's/Z$//' <<<"$1") UTC" +%s.%N; }
t_kill=$(date -u +%s.%N)
kill_agent
for _ in $(seq 100); do hcall GET /readyz; [ "$HS" = 503 ] && break; sleep 0.1; done
hexpect 503 '.agent == "offline" and .agent_lost == true and (.agent_since | type) == "string"' "agent killed: /readyz 503, agent_lost"
SEEN=$(jq -r .agent_since <<<"$HB")
WILL=$(sub1 "$P/agent/status")
expect "$WILL" '.status == "offline" and .lost == true' "the retained status is the Last Will, lost: true"
WILL_AT=$(jq -r .at <<<"$WILL")
[ "$(echo "$(epoch_of "$WILL_AT") < $t_kill && $(epoch_of "$SEEN") >= $t_kill" | bc)" = 1 ] ||
  fail "agent_since $SEEN is not when it was seen going (kill at $t_kill; the will's at $WILL_AT)"
ok "agent_since is when partreg-http saw the Last Will ($SEEN), not the will's at ($WILL_AT)"
hq POST /partitions/lock start=2024-01-05 end=2024-01-06 source_name=$S provider_name=p access_token=$TOKEN
hexpect 503 ".code == \"agent_offline\" and .detail == \"agent offline since $SEEN (its connection was lost: the broker published its Last Will)\"" "agent killed: writes 503 saying the connection was lost"
H1=$H; HTTP1_PID=$HTTP_PID
start_http
hcall GET /readyz
hexpect 503 ".agent_lost == true and (has(\"agent_since\") | not)" "a partreg-http started after the crash: agent_lost, no agent_since"
hq POST /partitions/lock start=2024-01-05 end=2024-01-06 source_name=$S provider_name=p access_token=$TOKEN
hexpect 503 ".detail == \"agent offline: its connection was lost some time after $WILL_AT (the broker published its Last Will)\"" "started after the crash: the 503 says lost after the will's at"
stop_http
H=$H1; HTTP_PID=$HTTP1_PID
start_agent
for _ in $(seq 50); do hcall GET /readyz; [ "$HS" = 200 ] && break; sleep 0.1; done
hexpect 200 '.agent == "online"' "agent restarted: /readyz 200"

# ---- the broker goes away
stop_broker
for _ in $(seq 100); do hcall GET /readyz; [ "$(jq -r .broker <<<"$HB")" = disconnected ] && break; sleep 0.1; done
hexpect 503 '.broker == "disconnected"' "broker stopped: /readyz 503, broker disconnected"
hq GET /sources/$S/check_readiness start=2024-01-01 end=2024-01-03
hexpect 200 '.is_ready == true' "broker stopped: readiness still from the mirror"
hcall GET "/v1/sources/$S/readiness?start=2024-01-01&end=2024-01-02"
hexpect 200 '.result.ready == true' "broker stopped: GET /v1 readiness from the mirror"
hq POST /partitions/lock start=2024-01-05 end=2024-01-06 source_name=$S provider_name=p access_token=$TOKEN
hexpect 503 '.code == "broker_unavailable"' "broker stopped: writes 503 broker_unavailable"
grep -qx 'partreg_http_broker_connected 0' <<<"$(curl -s "$H/metrics")" || fail "metrics: broker_connected is not 0"
ok "metrics: partreg_http_broker_connected 0"

start_broker
for _ in $(seq 300); do hcall GET /readyz; [ "$HS" = 200 ] && break; sleep 0.1; done
hexpect 200 '.broker == "connected" and .agent == "online"' "broker back: /readyz 200"
stop_http

# ---- started while the broker is away: it serves at once (/healthz), says
# what is missing (/readyz), stops at once on SIGTERM, and fills its mirror
# when the broker comes
stop_broker
t0=$(date +%s.%N)
start_http
hcall GET /readyz
hexpect 503 '.broker == "disconnected" and .agent == "unknown"' "started with the broker away: /readyz 503"
ok "started with the broker away: serving after $(printf '%.2f' "$(echo "$(date +%s.%N) - $t0" | bc)") s"
start_broker
for _ in $(seq 300); do hcall GET /readyz; [ "$HS" = 200 ] && break; sleep 0.1; done
hexpect 200 '.broker == "connected" and .agent == "online"' "the broker came: /readyz 200"
for _ in $(seq 50); do hq GET /sources/$S/check_readiness start=2024-01-01 end=2024-01-03; [ "$HS" = 200 ] && break; sleep 0.1; done
hexpect 200 '.is_ready == true' "and the mirror filled from the retained state"
t0=$(date +%s.%N)
stop_http
[ "$(echo "$(date +%s.%N) - $t0 < 2" | bc)" = 1 ] || fail "partreg-http took more than 2 s to stop"
grep -q "$TOKEN" "$T/http.log" && fail "the token is in partreg-http's log"
pass
