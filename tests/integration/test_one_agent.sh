#!/usr/bin/env bash
# One agent per store and one per prefix (guard.h):
#   - a second partregd on the same data directory exits at once (3),
#     naming the first one's PID, and touches nothing;
#   - a second one on another store but the same broker and prefix exits
#     (4) before connecting under the agent's client id, so the running
#     agent is not pushed off the broker;
#   - after kill -9 the agent restarts on its store at once, also while the
#     retained status still says online (its own last run);
#   - with --takeover the newcomer starts, the running agent stops (5)
#     without publishing offline, and the two do not push each other off;
#   - a running agent that sees another instance come online on its prefix
#     says so in its log and in agent/stats, and stops if that one took over.
. "$(dirname "$0")/lib.sh"
start_broker
start_agent --stats-interval 1
A=$AGENT_PID
S1=$(sub1 "$P/agent/status")
expect "$S1" '.status == "online" and (.instance | length) > 0 and (.store | test("^[0-9a-f]{32}$"))' "the status carries instance and store"
new_source one

# launch NAME ARGS...: a partregd expected to exit; waits up to 10 s and
# sets RC and SECS.
launch() {
  local name=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  timeout 10 "$PARTREGD" --broker "mqtt://127.0.0.1:$PORT" --log-level debug "$@" >"$T/$name.log" 2>&1 || RC=$?
  t1=$(date +%s.%N)
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}

# ---- the same store ----
RC=0
launch second --data-dir "$T/data"
[ "$RC" -eq 3 ] || fail "a second agent on the same store exited $RC, not 3: $(cat "$T/second.log")"
grep -q "another partregd (pid $A) is using the store in $T/data" "$T/second.log" || fail "no clear message: $(cat "$T/second.log")"
ok "second agent on the same store: exit 3 in $SECS s, naming pid $A"
expect "$(sub1 "$P/agent/status")" ".status == \"online\" and .epoch == $(jq .epoch <<<"$S1") and .instance == $(jq .instance <<<"$S1")" "the running agent's status and epoch untouched"

# ---- another store, the same prefix ----
RC=0
launch other --data-dir "$T/data2"
[ "$RC" -eq 4 ] || fail "a second agent on the same prefix exited $RC, not 4: $(cat "$T/other.log")"
grep -q "another agent is online on prefix $P" "$T/other.log" || fail "no clear message: $(cat "$T/other.log")"
grep -q -- "--takeover" "$T/other.log" || fail "the message does not say how to take over"
ok "second agent on the same prefix: exit 4 in $SECS s"
if grep -q "connection to .* lost\|took over the session" "$T/agent.log"; then
  fail "the running agent lost its connection to the refused one"
fi
r=$(rr source/get '{"source":"one"}')
expect "$r" '.ok' "the running agent still answers"

# ---- kill -9, restart on the same store ----
kill_agent
# Its Last Will says offline at once here (the broker sees the socket
# close); when a machine dies silently it says online until the keepalive
# runs out. Put that back: this store's last run, online.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -r -t "$P/agent/status" -m "$S1"
start_agent --stats-interval 1
A=$AGENT_PID
# (wait_online may have matched the old status's epoch: wait for the new one)
for _ in $(seq 50); do [ "$(sub1 "$P/agent/status" | jq .epoch)" = 2 ] && break; sleep 0.1; done
grep -q "this store's last run" "$T/agent.log" || fail "the restart did not recognise its own last run"
expect "$(sub1 "$P/agent/status")" '.status == "online" and .epoch == 2' "restart after kill -9: online without --takeover"

# ---- --takeover ----
# Every status message from here on (the retained one first).
AI=$(sub1 "$P/agent/status" | jq -r .instance)
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/agent/status" >"$T/status.live" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$T/status.live" ] && break; sleep 0.1; done
"$PARTREGD" --broker "mqtt://127.0.0.1:$PORT" --data-dir "$T/data2" --log-level debug --takeover \
  --stats-interval 1 >"$T/b.log" 2>&1 &
B=$!
PIDS+=("$B")
rc=0
for _ in $(seq 100); do kill -0 "$A" 2>/dev/null || break; sleep 0.1; done
kill -0 "$A" 2>/dev/null && fail "the running agent did not stop when taken over"
wait "$A" || rc=$?
AGENT_PID=""
[ "$rc" -eq 5 ] || fail "the taken-over agent exited $rc, not 5"
grep -q "took over" "$T/agent.log" || fail "the taken-over agent's log does not say why"
ok "taken over: the running agent stopped with exit 5"
sanitizer_clean "$T/agent.log"
# The newcomer's instance, from its log. The agent it replaced may have
# reconnected once before it stopped (its connection was lost, not visibly
# taken over) and said online again: the newcomer's reconnect says it last.
BI=$(sed -n 's/.* instance \([0-9a-f-]*\), epoch .*/\1/p' "$T/b.log" | head -n 1)
[ -n "$BI" ] || fail "the newcomer's log names no instance"
retained_within "$P/agent/status" ".status == \"online\" and .takeover == true and .instance == \"$BI\"" 15 ||
  fail "the retained status is not the newcomer's online one: $(sub1 "$P/agent/status")"
s=$(sub1 "$P/agent/status")
expect "$s" '.status == "online" and .takeover == true' "the retained status is the newcomer's, online"
# The replaced agent may reconnect once before it learns it was replaced,
# but it reads the retained status before it says online: it never says
# online over the newcomer's status.
expect "$(jq -sc . "$T/status.live")" "(map(.instance) | index(\"$BI\")) as \$b | \$b != null and ([.[\$b:][] | select(.instance == \"$AI\" and .status == \"online\")] | length) == 0" \
  "the replaced agent never said online after the newcomer did"
# The old agent, pushed off by the broker, reconnects once (pushing the
# newcomer off in turn), finds the newcomer's status and stops; the
# newcomer reconnects and keeps the session.
lost0=$(grep -c "connection to .* lost" "$T/b.log" || true)
[ "$lost0" -le 1 ] || fail "the newcomer lost its connection $lost0 times"
sleep 2
kill -0 "$B" 2>/dev/null || fail "the newcomer died: $(tail -n 20 "$T/b.log")"
lost=$(grep -c "connection to .* lost" "$T/b.log" || true)
[ "$lost" = "$lost0" ] || fail "the newcomer keeps being pushed off the broker ($lost times)"
ok "no tug of war over the broker session (the newcomer was pushed off $lost0 time(s), then kept it)"
AGENT_PID=$B
# The newcomer serves the prefix from its own store (no source "one" there).
r=$(rr source/get '{"source":"one"}')
expect "$r" '.error.code == "unknown_source"' "the newcomer answers from its store"

# ---- a running agent sees another instance come online ----
fake='{"status":"online","agent_id":"rogue","version":"0","epoch":9,"instance":"rogue-1","store":"00000000000000000000000000000000","at":"2023-01-01T00:00:00Z"}'
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/agent/status" -m "$fake"
for _ in $(seq 30); do grep -q "ANOTHER AGENT came online" "$T/b.log" && break; sleep 0.1; done
grep -q "ANOTHER AGENT came online on prefix $P: rogue (instance rogue-1" "$T/b.log" || fail "the agent did not report the other instance"
ok "another instance online: reported in the log"
for _ in $(seq 30); do
  n=$(sub1 "$P/agent/stats" | jq -r '.other_agents // 0')
  [ "$n" -ge 1 ] && break
  sleep 0.2
done
[ "$n" -ge 1 ] || fail "agent/stats does not count the other agent"
ok "agent/stats: other_agents $n"
kill -0 "$B" 2>/dev/null || fail "the agent stopped for an instance that did not take over"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/agent/status" -m "$(jq -c '. + {takeover: true, instance: "rogue-2"}' <<<"$fake")"
rc=0
for _ in $(seq 50); do kill -0 "$B" 2>/dev/null || break; sleep 0.1; done
wait "$B" || rc=$?
[ "$rc" -eq 5 ] || fail "the agent did not stop (exit $rc) when another took over"
ok "another instance with --takeover: the running agent stopped (exit 5)"
AGENT_PID=""
FAILED=0
echo PASS
