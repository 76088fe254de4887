#!/usr/bin/env bash
# Round-trip latency of readiness/query through a loopback mosquitto, next
# to a trivial echo responder on the same broker (the baseline). Prints the
# figures; fails only on the signature of Nagle's algorithm (a median of
# tens of milliseconds: 44 or 88 ms), never on a merely slow machine.
. "$(dirname "$0")/lib.sh"
: "${PR_BENCH_RTT:?set by ctest}"
N=${PARTREG_LATENCY_N:-500}
start_broker
start_agent --log-level info

new_source lat
partition_lines lat 2023-01-01 day 3 >"$T/days.jsonl"
while read -r body; do
  expect "$(rr partition/lock "$body")" '.ok' "lock a day"
  expect "$(rr partition/unlock "$body")" '.ok' "unlock it"
done <"$T/days.jsonl"

"$PR_BENCH_RTT" echo --broker "mqtt://127.0.0.1:$PORT" --topic bench/cmd/echo >"$T/echo.log" 2>&1 &
echo_pid=$!
PIDS+=("$echo_pid")
for _ in $(seq 50); do grep -q "echo responder" "$T/echo.log" && break; sleep 0.1; done
query='{"source":"lat","start":"2023-01-01T00:00:00Z","end":"2023-01-04T00:00:00Z"}'
echo_line=$("$PR_BENCH_RTT" query --broker "mqtt://127.0.0.1:$PORT" --topic bench/cmd/echo --payload "$query" -n "$N")
agent_line=$("$PR_BENCH_RTT" query --broker "mqtt://127.0.0.1:$PORT" --topic "$P/cmd/readiness/query" --payload "$query" -n "$N")
echo "echo baseline (µs):     $echo_line"
echo "readiness/query (µs):   $agent_line"
p50() { sed -E 's/.* p50=([0-9]+).*/\1/' <<<"$1"; }
e=$(p50 "$echo_line"); a=$(p50 "$agent_line")
echo "median ratio agent/echo: $(awk -v a="$a" -v e="$e" 'BEGIN { printf "%.2f", a / e }')"
[ "$a" -lt 20000 ] || fail "readiness/query median ${a} µs: Nagle's algorithm is on somewhere"
ok "readiness/query median ${a} µs (echo ${e} µs)"
grep -q "stray=0" <<<"$agent_line" || fail "replies that matched no request"
ok "every reply matched its request"
r=$(rr readiness/query "$query")
expect "$r" '.result.ready == true' "the queried interval is ready (the bench measured real work)"
pass
