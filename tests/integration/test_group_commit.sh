#!/usr/bin/env bash
# Group commit: commands that arrive together share one durable commit. A
# burst of 2000 locks published at once must all be applied, in fewer
# commits than commands, as the agent's own counters on the retained
# P/agent/stats say ("commands.total" handled, "batches" committed), and
# their events come one message per commit (P/events/<source>).
. "$(dirname "$0")/lib.sh"
N=2000
start_broker
start_agent --stats-interval 1

# stats_at_least TOTAL: the retained P/agent/stats once it counts TOTAL or
# more commands (it is refreshed every --stats-interval second).
stats_at_least() {
  local s="" n
  for _ in $(seq 100); do
    s=$(sub1 "$P/agent/stats")
    n=$(jq -r '.commands.total // 0' <<<"$s" 2>/dev/null || true)
    [ "${n:-0}" -ge "$1" ] && {
      echo "$s"
      return 0
    }
    sleep 0.2
  done
  fail "P/agent/stats did not reach $1 commands (last: $s)"
}

new_source burst
s0=$(stats_at_least 2) || fail "no P/agent/stats before the burst"
c0=$(jq -r '.commands.total' <<<"$s0")
b0=$(jq -r '.batches' <<<"$s0")

# Every events message of the burst: one per source per commit.
follow_events burst
partition_lines burst 2023-01-01 hour $N >"$T/locks.jsonl"
t0=$(date +%s.%N)
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/lock" -l <"$T/locks.jsonl"
want=$((2 + N))
seq=$(wait_seq burst $want 30)
t1=$(date +%s.%N)
[ "$seq" = "$want" ] || fail "seq $seq, expected $want: not every lock was applied"
ok "all $N locks applied (seq $seq) in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"

# The locks and wait_seq's source/get polls, which arrive among them.
s1=$(stats_at_least $((c0 + N))) || fail "P/agent/stats never counted the burst"
commands=$(($(jq -r '.commands.total' <<<"$s1") - c0))
batches=$(($(jq -r '.batches' <<<"$s1") - b0))
echo "commits: $batches for $commands commands ($N locks and the polls)"
[ "$batches" -gt 0 ] || fail "no commit counted for the burst"
[ "$batches" -lt "$commands" ] || fail "$batches commits for $commands commands: no batch held more than one"
[ "$batches" -lt "$N" ] || fail "$batches commits for $N locks: no group commit"
ok "group commit: $batches commits, $(awk -v c="$commands" -v b="$batches" 'BEGIN { printf "%.1f", c / b }') commands per commit"
# Events: one message per source per group commit, {v: 2, source, epoch,
# events}, so the burst's N events come in fewer messages, each lock's
# event once and in seq order (`events` also checks every message's shape).
for _ in $(seq 100); do [ "$(events | jq length)" = "$N" ] && break; sleep 0.1; done
expect "$(events)" "length == $N and [.[].seq] == [range(3; $want + 1)] and all(.[]; .type == \"locked\")" "the $N locked events, each once, in seq order"
nb=$(batches | jq length)
expect "$(batches)" "length < $N and any(.[]; (.events | length) > 1)" "the events came in $nb messages ($batches commits): some held more than one event"
r=$(rr readiness/query '{"source":"burst","start":"2023-01-01T00:00:00Z","end":"2023-01-02T00:00:00Z"}')
expect "$r" '.result.ready == false and (.result.blockers | length) == 24' "24 locked hours block the first day"
pass
