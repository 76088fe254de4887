#!/usr/bin/env bash
# Group commit: commands that arrive together share one durable commit. A
# burst of 2000 locks published at once must all be applied, in fewer
# commits than commands, and each batch is logged with its size.
. "$(dirname "$0")/lib.sh"
N=2000
start_broker
start_agent

new_source burst
partition_lines burst 2023-01-01 hour $N >"$T/locks.jsonl"
t0=$(date +%s.%N)
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/lock" -l <"$T/locks.jsonl"
want=$((2 + N))
seq=$(wait_seq burst $want 30)
t1=$(date +%s.%N)
[ "$seq" = "$want" ] || fail "seq $seq, expected $want: not every lock was applied"
ok "all $N locks applied (seq $seq) in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
batches=$(grep -c "batch of" "$T/agent.log")
largest=$(grep -o "batch of [0-9]*" "$T/agent.log" | awk '{ if ($3 > m) m = $3 } END { print m }')
echo "commits: $batches for $N+ commands; largest batch: $largest"
[ "$largest" -gt 1 ] || fail "no batch held more than one command"
[ "$batches" -lt "$N" ] || fail "$batches commits for $N commands: no group commit"
ok "group commit: $batches commits, largest batch $largest"
r=$(rr readiness/query '{"source":"burst","start":"2023-01-01T00:00:00Z","end":"2023-01-02T00:00:00Z"}')
expect "$r" '.result.ready == false and (.result.blockers | length) == 24' "24 locked hours block the first day"
pass
