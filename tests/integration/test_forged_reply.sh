#!/usr/bin/env bash
# Our clients take a reply only when it is the answer to what they sent:
# the Correlation Data / correlation_id (random, unguessable) and the
# request_id must both be the request's. Forged replies published first on
# the CLI's reply topic (by a client that can read the command: the worst
# case, which the shipped ACL rules out) are ignored, and the real answer,
# which comes later, is the one printed. MQTT 3.1.1, so that the command
# body shows the forger the reply topic and the ids.
. "$(dirname "$0")/lib.sh"
: "${PARTREG_CLI:?set by ctest}"
start_broker
M311=(-V mqttv311 -h 127.0.0.1 -p "$PORT")

# The forger reads the command as it goes by (no agent runs yet).
stdbuf -oL mosquitto_sub "${M311[@]}" -q 1 -t "$P/cmd/#" -C 1 >"$T/cmd.json" 2>>"$T/sub.log" &
PIDS+=($!)
sleep 0.3
"$PARTREG_CLI" --broker "mqtt://127.0.0.1:$PORT" --mqtt-version 3.1.1 --timeout 20 --json \
  source get forged_src >"$T/cli.out" 2>"$T/cli.err" &
CLI=$!
PIDS+=("$CLI")
for _ in $(seq 50); do [ -s "$T/cmd.json" ] && break; sleep 0.1; done
[ -s "$T/cmd.json" ] || fail "the command never went by"
RT=$(jq -r .reply_to "$T/cmd.json")
CID=$(jq -r .correlation_id "$T/cmd.json")
RID=$(jq -r .request_id "$T/cmd.json")
ok "the forger saw reply_to $RT, correlation_id $CID, request_id $RID"
[ ${#CID} -ge 32 ] || fail "the correlation_id '$CID' is short enough to guess"

forge() {
  mosquitto_pub "${M311[@]}" -q 1 -t "$RT" -m "$1"
}
FAKE='"ok":true,"status":200,"result":{"source":"forged_src","owner":"mallory","seq":666}'
# A guessed correlation with the right request_id, the right correlation with
# another request_id or none, and a guess at the old counter-style id.
forge "{$FAKE,\"correlation_id\":\"c1\",\"request_id\":\"$RID\"}"
forge "{$FAKE,\"correlation_id\":\"$CID\",\"request_id\":\"not-$RID\"}"
forge "{$FAKE,\"correlation_id\":\"$CID\"}"
forge "{\"ok\":false,\"status\":404,\"correlation_id\":\"$CID\",\"error\":{\"code\":\"unknown_source\",\"message\":\"forged\"}}"
sleep 0.5
kill -0 "$CLI" 2>/dev/null || fail "the CLI took a forged reply: $(cat "$T/cli.out" "$T/cli.err")"
ok "four forged replies ignored; the CLI still waits"

# The real agent answers the CLI's resend.
start_agent
rc=0
wait "$CLI" || rc=$?
out=$(cat "$T/cli.out" "$T/cli.err")
if grep -q "mallory\|forged\"" <<<"$out"; then fail "the CLI printed a forged reply: $out"; fi
grep -q unknown_source <<<"$out" || fail "the CLI did not print the agent's answer (rc $rc): $out"
ok "the CLI printed the agent's own answer (unknown_source, exit $rc)"
pass
