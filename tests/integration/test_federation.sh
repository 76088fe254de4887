#!/usr/bin/env bash
# Two sites on loopback, each a mosquitto from the shipped production
# configs (compose/mosquitto/site-a.conf at A with partregd, site-b-bridge.conf
# at B bridged to A, both with the shipped ACL and logins): a producer at B
# registers, locks and unlocks through the bridge; a consumer at B sees the
# retained state and wakes on an unlock made at A; the bridge's added
# latency is measured; the bridge is cut (broker B stopped) while partitions
# change at A, and B converges to A's state when it is back (partition
# topics with their seq, the deletion tombstone, summaries), and a
# persistent subscriber at B gets every event it missed; a site that joins
# afterwards gets the full state.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_sites.sh"

BRIDGE_B=partreg-bridge-site-b
make_users
start_site a site-a.conf
A=${SITE_PORT[a]}
PORT=$A
start_agent --username partregd --password-file "$T/agent.pw"
start_site b site-b-bridge.conf "$A"
B=${SITE_PORT[b]}
wait_bridge "$B" "$BRIDGE_B"
ok "site A on 127.0.0.1:$A with partregd (user partregd), site B on 127.0.0.1:$B bridged to A"
grep -qE "New (client|bridge) connected from 127.0.0.1:[0-9]+ as $BRIDGE_B .*u'site-b'" "$T/broker-a.log" ||
  fail "the bridge did not log in at A as user site-b"
ok "the bridge logs in at A as user site-b"

S=fed
day() { date -u -d "2023-01-01 UTC +$1 day" +%Y-%m-%dT%H:%M:%SZ; }
part() { echo "\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$(day "$1")\",\"end\":\"$(day $(($1 + 1)))\""; }
ptopic() { echo "$P/state/$S/partitions/$(day "$1")/$(day $(($1 + 1)))/p"; }

# ---- a producer at site B, through the bridge: commands in, replies back ----
r=$(cmd_at "$B" source/register "{\"source\":\"$S\",\"owner\":\"o\"}")
expect "$r" '.ok and (.result.access_token | length) == 36' "producer at B: source registered through the bridge (MQTT 5 reply topic carried by the v5 bridge)"
TOKEN=$(jq -r .result.access_token <<<"$r")
AUTH="\"access_token\":\"$TOKEN\""
r=$(cmd_at "$B" provider/register "{\"source\":\"$S\",\"provider\":\"p\",$AUTH}")
expect "$r" '.ok and .result.provider == "p"' "producer at B: provider registered"
for d in 0 1 2 3; do
  r=$(cmd_at "$B" partition/register "{$(part $d),$AUTH}")
  expect "$r" '.ok and .result.state == "pending"' "producer at B: partition day $d registered"
done
r=$(cmd_at "$B" partition/lock "{$(part 0),$AUTH}")
expect "$r" '.ok and .result.state == "locked"' "producer at B: day 0 locked"
F0=$(jq -r .result.fence <<<"$r")
SEQ=$(jq -r .result.seq <<<"$r")

# A 3.1.1 client at B (reply_to in the body) works through the bridge too.
mosquitto_sub -V mqttv311 -h 127.0.0.1 -p "$B" -u client -P "$PW_CLIENT" -q 1 -t "$P/reply/client/c311" \
  -C 1 -W 10 >"$T/r311" 2>/dev/null &
R311=$!
sleep 0.3
mosquitto_pub -V mqttv311 -h 127.0.0.1 -p "$B" -u client -P "$PW_CLIENT" -q 1 -t "$P/cmd/source/get" \
  -m "{\"source\":\"$S\",\"reply_to\":\"$P/reply/client/c311\",\"correlation_id\":\"k1\"}"
wait "$R311" || true
expect "$(cat "$T/r311")" ".ok and .correlation_id == \"k1\" and .result.seq == $SEQ" "a 3.1.1 client at B gets its reply_to reply through the bridge"

# ---- a consumer at B: retained state, and waking on an unlock made at A ----
s=$(sub_at "$B" "$P/state/$S")
expect "$s" ".v == 2 and .seq == $SEQ and .ready == [] and [.blocked[] | [.state, .start, .end, .count]] == [[\"locked\",\"$(day 0)\",\"$(day 1)\",1],[\"pending\",\"$(day 1)\",\"$(day 4)\",3]]" "consumer at B: the retained summary (seq $SEQ, day 0 locked, a run of 3 pending)"
s=$(sub_at "$B" "$(ptopic 0)")
expect "$s" ".state == \"locked\" and .fence == $F0 and .seq == $SEQ" "consumer at B: the retained partition topic of day 0"

# The consumer waits for its day as a sensor would: on the partition topic,
# until the state is ready (the retained "locked" arrives first).
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$B" -u client -P "$PW_CLIENT" -q 1 -t "$(ptopic 0)" \
  -F '%U %p' -W 20 >"$T/wake" 2>/dev/null &
WAKE=$!
for _ in $(seq 50); do [ -s "$T/wake" ] && break; sleep 0.1; done
[ -s "$T/wake" ] || fail "consumer at B did not get the retained partition"
# And the CLI: partreg wait at B, as user "client" (its replies come under
# $P/reply/client/, the only replies the shipped ACL lets that user read).
printf '%s\n' "$PW_CLIENT" >"$T/client.pw"
"$PARTREG_CLI" --broker "mqtt://127.0.0.1:$B" --username client --password-file "$T/client.pw" \
  wait "$S" --start "$(day 0)" --end "$(day 1)" --timeout 20 >"$T/cli-wait.out" 2>"$T/cli-wait.log" &
CLI_WAIT=$!
PIDS+=($CLI_WAIT)
sleep 1
kill -0 "$CLI_WAIT" 2>/dev/null || { cat "$T/cli-wait.log" >&2; fail "partreg wait at B returned before the unlock"; }
t0=$(date +%s.%N)
r=$(cmd_at "$A" partition/unlock "{$(part 0),\"fence\":$F0,$AUTH}")
expect "$r" '.ok and .result.state == "ready" and .result.version == 1' "producer at A: day 0 unlocked"
for _ in $(seq 50); do grep -q '"state":"ready"' "$T/wake" && break; sleep 0.1; done
line=$(grep '"state":"ready"' "$T/wake" | head -n 1 || true)
kill "$WAKE" 2>/dev/null || true
[ -n "$line" ] || fail "consumer at B did not wake on the unlock made at A"
expect "${line#* }" '.state == "ready" and .version == 1' "consumer at B woke on the unlock made at A, $(echo "(${line%% *} - $t0) * 1000" | bc | xargs printf '%.0f') ms after the unlock was sent"
s=$(sub_at "$B" "$P/state/$S")
expect "$s" ".ready == [[\"$(day 0)\",\"$(day 1)\"]]" "consumer at B: the summary shows day 0 ready"
for _ in $(seq 30); do kill -0 "$CLI_WAIT" 2>/dev/null || break; sleep 0.1; done
kill -0 "$CLI_WAIT" 2>/dev/null && fail "partreg wait at B (user client) did not return within 3 s of the unlock: $(tail -n 1 "$T/cli-wait.log")"
rc=0
wait "$CLI_WAIT" || rc=$?
[ $rc -eq 0 ] || fail "partreg wait at B (user client) exited $rc: $(tail -n 3 "$T/cli-wait.log")"
ok "partreg wait at B (user client, through the ACL) exited 0 after the unlock at A"

# Lock and unlock through the bridge.
r=$(cmd_at "$B" partition/lock "{$(part 1),$AUTH}")
expect "$r" '.ok and .result.state == "locked"' "producer at B: day 1 locked"
F1=$(jq -r .result.fence <<<"$r")
r=$(cmd_at "$B" partition/unlock "{$(part 1),\"fence\":$F1,$AUTH}")
expect "$r" '.ok and .result.state == "ready" and .result.version == 1' "producer at B: day 1 unlocked"
r=$(cmd_at "$A" readiness/query "{\"source\":\"$S\",\"start\":\"$(day 0)\",\"end\":\"$(day 2)\"}")
expect "$r" '.result.ready == true' "at A the agent has days 0-1 ready"

# ---- the bridge's added latency ----
# One way, A -> B: the same events received at A and at B, receive times
# compared. Round trip: readiness/query answered at A vs sent from B (a
# command crosses out, its reply back in).
evsub() {
  stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$1" -u client -P "$PW_CLIENT" -q 1 -t "$P/events/$S" \
    -F '%U %p' -W 30 >"$2" 2>/dev/null &
  PIDS+=($!)
  echo $!
}
EA=$(evsub "$A" "$T/ev.a")
EB=$(evsub "$B" "$T/ev.b")
sleep 0.5
for i in $(seq 10); do
  r=$(cmd_at "$A" partition/lock "{$(part 2),$AUTH}")
  f=$(jq -r .result.fence <<<"$r")
  cmd_at "$A" partition/unlock "{$(part 2),\"fence\":$f,$AUTH}" | replied .ok || fail "unlock $i at A"
done
# nev FILE: the events in FILE's messages (batches, one per group commit).
nev() { cut -d' ' -f2- "$1" | jq -s '[.[].events[]] | length'; }
for _ in $(seq 30); do [ "$(nev "$T/ev.b")" -ge 20 ] && break; sleep 0.1; done
kill "$EA" "$EB" 2>/dev/null || true
[ "$(nev "$T/ev.b")" -ge 20 ] || fail "site B got $(nev "$T/ev.b") of 20 events"
# seq_times FILE: "seq receive-time" a line (each event of a batch with its
# message's receive time; a command's request_id), sorted by seq.
seq_times() {
  while read -r ts json; do
    jq -r --arg ts "$ts" '([.events[]?.seq] + [.request_id // empty])[] | "\(.) \($ts)"' <<<"$json"
  done <"$1" | sort
}
oneway=$(join <(seq_times "$T/ev.a") <(seq_times "$T/ev.b") | awk '{printf "%.3f\n", ($3 - $2) * 1000}' | sort -n)
n=$(wc -l <<<"$oneway")
[ "$n" -ge 20 ] || fail "only $n events matched between A and B"
ow_p50=$(sed -n "$(((n + 1) / 2))p" <<<"$oneway")
ow_max=$(tail -n 1 <<<"$oneway")
# One way, B -> A: commands (readiness queries without a reply topic, so
# nothing answers) sent at B by one client, 50 ms apart, seen at B and at A
# by the agent's user (the only one that may read commands).
cmdsub() {
  stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$1" -u partregd -P "$PW_AGENT" -q 1 -t "$P/cmd/readiness/query" \
    -F '%U %p' -W 30 >"$2" 2>/dev/null &
  PIDS+=($!)
  echo $!
}
CA=$(cmdsub "$A" "$T/cmd.a")
CB=$(cmdsub "$B" "$T/cmd.b")
sleep 0.5
for i in $(seq 20); do
  echo "{\"source\":\"$S\",\"start\":\"$(day 0)\",\"end\":\"$(day 1)\",\"request_id\":\"idle-$i\"}"
  sleep 0.05
done | mosquitto_pub -h 127.0.0.1 -p "$B" -u client -P "$PW_CLIENT" -q 1 -t "$P/cmd/readiness/query" -l
# Request/response from B, one after the other (each command follows the
# bridge's PUBACK of the previous reply: Nagle holds it until A's delayed ACK).
t1=$(date +%s%N)
for i in $(seq 20); do
  cmd_at "$B" readiness/query "{\"source\":\"$S\",\"start\":\"$(day 0)\",\"end\":\"$(day 1)\",\"request_id\":\"rr-$i\"}" |
    replied .ok || fail "readiness/query $i from B"
done
rr_b=$((($(date +%s%N) - t1) / 20000000))
t1=$(date +%s%N)
for i in $(seq 20); do
  cmd_at "$A" readiness/query "{\"source\":\"$S\",\"start\":\"$(day 0)\",\"end\":\"$(day 1)\"}" |
    replied .ok || fail "readiness/query $i at A"
done
rr_a=$((($(date +%s%N) - t1) / 20000000))
for _ in $(seq 30); do [ "$(wc -l <"$T/cmd.a")" -ge 40 ] && break; sleep 0.1; done
kill "$CA" "$CB" 2>/dev/null || true
crossings() { join <(seq_times "$T/cmd.b" | grep "^$1-") <(seq_times "$T/cmd.a" | grep "^$1-") | awk '{printf "%.3f\n", ($3 - $2) * 1000}' | sort -n; }
idle=$(crossings idle)
busy=$(crossings rr)
[ "$(wc -l <<<"$idle")" -eq 20 ] && [ "$(wc -l <<<"$busy")" -eq 20 ] || fail "not every command crossed from B to A"
in_p50=$(sed -n 10p <<<"$idle")
in_max=$(tail -n 1 <<<"$idle")
rr_p50=$(sed -n 10p <<<"$busy")
rr_max=$(tail -n 1 <<<"$busy")
echo "# bridge latency, one crossing: A->B (state, events, replies) p50 ${ow_p50} ms, max ${ow_max} ms ($n events);" \
  "B->A (commands) on an idle bridge p50 ${in_p50} ms, max ${in_max} ms;" \
  "B->A in back-to-back request/response p50 ${rr_p50} ms, max ${rr_max} ms"
echo "# readiness/query with mosquitto_rr (a new process and connection per call), mean: at A ${rr_a} ms, from B ${rr_b} ms"
in_max=$(printf '%s\n' "$in_max" "$rr_max" | sort -n | tail -n 1)
awk -v m="$in_max" 'BEGIN { exit !(m < 1000) }' || fail "a command took ${in_max} ms to cross the bridge"
awk -v m="$ow_max" 'BEGIN { exit !(m < 1000) }' || fail "an event took ${ow_max} ms to cross the bridge"
ok "every event and command crossed the bridge in under a second"

# ---- the bridge cut while partitions change at A ----
# A persistent consumer at B (clean session off, QoS 1) that is away during
# the outage must get every event it missed, in order, when it reconnects.
mosquitto_sub -V mqttv311 -h 127.0.0.1 -p "$B" -u client -P "$PW_CLIENT" -q 1 -c -i fed-consumer-b -t "$P/events/$S" \
  -W 3 >"$T/persist.0" 2>/dev/null || true
SEQ_BEFORE=$(cmd_at "$A" source/get "{\"source\":\"$S\"}" | jq -r .result.seq)
stop_site b
port_open "$B" && fail "broker B still listens"
ok "bridge cut: broker B stopped (SIGTERM: it saved its retained state), A at seq $SEQ_BEFORE"

r=$(cmd_at "$A" partition/lock "{$(part 0),$AUTH}")
expect "$r" '.ok and .result.state == "locked"' "during the cut, at A: day 0 locked again (reprocessing)"
F0b=$(jq -r .result.fence <<<"$r")
r=$(cmd_at "$A" partition/unlock "{$(part 0),\"fence\":$F0b,$AUTH}")
expect "$r" '.ok and .result.version == 2' "during the cut, at A: day 0 unlocked, version 2"
r=$(cmd_at "$A" partition/lock "{$(part 3),$AUTH}")
expect "$r" '.ok and .result.state == "locked"' "during the cut, at A: day 3 locked"
r=$(cmd_at "$A" partition/delete "{$(part 1),$AUTH}")
expect "$r" '.ok and .result.state == "deleted"' "during the cut, at A: day 1 deleted"
DEL_SEQ=$(jq -r .result.seq <<<"$r")
r=$(cmd_at "$A" partition/register "{$(part 4),$AUTH}")
expect "$r" '.ok and .result.state == "pending"' "during the cut, at A: day 4 registered"
r=$(cmd_at "$A" source/register '{"source":"fed2","owner":"o"}')
expect "$r" '.ok' "during the cut, at A: a new source fed2"
SEQ_AFTER=$(cmd_at "$A" source/get "{\"source\":\"$S\"}" | jq -r .result.seq)
[ "$SEQ_AFTER" -eq $((SEQ_BEFORE + 5)) ] || fail "seq of $S went from $SEQ_BEFORE to $SEQ_AFTER, expected 5 changes"

start_site b site-b-bridge.conf "$A"
wait_bridge "$B" "$BRIDGE_B"
ok "bridge restored: broker B restarted from its saved state"

# B converges to A: every retained topic under state/ and agent/, payloads
# (seq, version, fence, timestamps) byte for byte.
RESYNC=no
converged=""
for i in $(seq 20); do
  retained_at "$A" "$P/#" >"$T/ret.a"
  retained_at "$B" "$P/#" >"$T/ret.b"
  if cmp -s "$T/ret.a" "$T/ret.b"; then
    converged=yes
    break
  fi
  # Not converged after ~10 s: ask the agent to republish (and say so).
  if [ "$i" = 10 ]; then
    RESYNC=yes
    cmd_at "$A" agent/resync '{}' >/dev/null
  fi
done
if [ -z "$converged" ]; then
  diff "$T/ret.a" "$T/ret.b" >&2 || true
  fail "site B did not converge to A's retained state"
fi
ok "site B converged to A: $(wc -l <"$T/ret.b") retained topics identical (agent/resync needed: $RESYNC)"
[ "$RESYNC" = no ] || fail "convergence needed agent/resync"
expect "$(sub_at "$B" "$(ptopic 1)")" ".state == \"deleted\" and .seq == $DEL_SEQ" "at B: day 1's tombstone (state deleted, seq $DEL_SEQ)"
expect "$(sub_at "$B" "$(ptopic 0)")" ".state == \"ready\" and .version == 2 and .fence == $F0b" "at B: day 0 ready, version 2, fence $F0b"
expect "$(sub_at "$B" "$(ptopic 3)")" '.state == "locked"' "at B: day 3 locked"
expect "$(sub_at "$B" "$(ptopic 4)")" '.state == "pending"' "at B: day 4 pending"
expect "$(sub_at "$B" "$P/state/$S")" ".seq == $SEQ_AFTER and [.blocked[] | select(.start < \"$(day 2)\" and .end > \"$(day 1)\")] == [] and [.blocked[] | [.state, .start, .count]] == [[\"locked\",\"$(day 3)\",1],[\"pending\",\"$(day 4)\",1]]" "at B: the summary at seq $SEQ_AFTER, without the deleted day (no run covers it)"
expect "$(sub_at "$B" "$P/state/fed2")" '.source == "fed2"' "at B: the source created during the cut"

# Events published while the bridge was down are not replayed at B:
# mosquitto 2.0's MQTT 5 bridge asks for no session expiry, so site A drops
# the bridge's session (and what it queued) when the bridge goes. A consumer
# that needs every event fills the gap from the history, by seq.
mosquitto_sub -V mqttv311 -h 127.0.0.1 -p "$B" -u client -P "$PW_CLIENT" -q 1 -c -i fed-consumer-b -t "$P/events/$S" \
  -W 2 >"$T/persist.1" 2>/dev/null || true
got=$(jq -s -c "[.[].events[]] | map(select(.seq > $SEQ_BEFORE) | .seq)" "$T/persist.1")
echo "# a persistent (clean session off) consumer at B got $(jq length <<<"$got") of the 5 events published during the cut $got"
r=$(cmd_at "$B" history/query "{\"source\":\"$S\",\"since_seq\":$SEQ_BEFORE}")
expect "$r" ".ok and ([.result.events[].seq] == [range($SEQ_BEFORE + 1; $SEQ_AFTER + 1)]) and ([.result.events[].type] == [\"locked\",\"unlocked\",\"locked\",\"deleted\",\"registered\"]) and .result.next_cursor == null" \
  "at B, history/query since_seq $SEQ_BEFORE returns the 5 events of the cut, in order"

# ---- a site that joins afterwards ----
start_site c site-b-bridge.conf "$A" partreg-bridge-site-c
C=${SITE_PORT[c]}
wait_bridge "$C" partreg-bridge-site-c
converged=""
for _ in $(seq 10); do
  retained_at "$A" "$P/#" >"$T/ret.a"
  retained_at "$C" "$P/#" >"$T/ret.c"
  if cmp -s "$T/ret.a" "$T/ret.c"; then converged=yes; break; fi
done
[ -n "$converged" ] || { diff "$T/ret.a" "$T/ret.c" >&2 || true; fail "a site joining late did not get the full state"; }
grep -q "^$P/agent/status .*\"online\"" "$T/ret.c" || fail "late site: no online agent status"
ok "a site that joins late (site C, same config, its own bridge client id) has the full state: $(wc -l <"$T/ret.c") retained topics"
stop_site c
pass
