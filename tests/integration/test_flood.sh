#!/usr/bin/env bash
# Bounded memory under a flood (issue 10): N valid partition/lock commands,
# each padded with whitespace to ~64 KB, published at QoS 1 as fast as
# mosquitto_pub can. The agent's queue is bounded (--queue-max,
# --queue-max-mb); when it is full the agent stops reading and the broker
# holds the rest. Every command is applied (none lost), the agent's peak
# RSS stays under 256 MiB and, after the burst, its anonymous memory under
# 32 MiB (malloc_trim). Under the sanitizers (shadow memory, quarantine)
# only the no-loss part is checked, with fewer commands.
# FLOOD_N overrides N (tests/bench/flood.sh runs the 50,000 of the README).
. "$(dirname "$0")/lib.sh"
N=${FLOOD_N:-10000}
[ "${PARTREG_SANITIZE:-0}" = 1 ] && N=${FLOOD_N:-1500}
start_broker
start_agent --stats-interval 1 ${FLOOD_AGENT_FLAGS:---queue-max-mb 16}
new_source flood

# rss KEY: the agent's KEY line of /proc/PID/status, in KiB.
rss() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$AGENT_PID/status"; }
base=$(rss VmRSS)

partition_lines flood 2020-01-01 hour "$N" | awk '{ printf "%s%64000s\n", $0, "" }' >"$T/flood.jsonl"
bytes=$(stat -c %s "$T/flood.jsonl")
t0=$(date +%s.%N)
# Every agent/stats message during the flood (for the queue's peaks).
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$P/agent/stats" >"$T/stats.jsonl" 2>/dev/null &
PIDS+=($!)
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/lock" -l <"$T/flood.jsonl" &
PUB=$!
PIDS+=("$PUB")
# Sample the agent's memory while the flood runs.
peak=0
while kill -0 "$PUB" 2>/dev/null; do
  r=$(rss VmRSS)
  [ "$r" -gt "$peak" ] && peak=$r
  sleep 0.2
done
wait "$PUB" || fail "mosquitto_pub failed"
want=$((2 + N))
seq=$(wait_seq flood $want 120)
t1=$(date +%s.%N)
rm -f "$T/flood.jsonl"
[ "$seq" = "$want" ] || fail "seq $seq, expected $want: commands were lost"
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
ok "all $N locks of ~64 KB applied ($((bytes / 1048576)) MiB in $secs s), none lost"

hwm=$(rss VmHWM)
sleep 1.5 # a stats period, and time for the trim after the last batch
anon=$(rss RssAnon)
stats=$(sub1 "$P/agent/stats")
echo "agent RSS: before $((base / 1024)) MiB, peak $((hwm / 1024)) MiB (sampled $((peak / 1024)) MiB), after: anonymous $((anon / 1024)) MiB"
echo "flow: $(jq -c .flow <<<"$stats")"
qpeak=$(jq -s 'map(.flow.peak_bytes) | max' "$T/stats.jsonl")
echo "queue: at most $((qpeak / 1048576)) MiB waiting (limit $(jq '.flow.max_bytes / 1048576' <<<"$stats") MiB)"
expect "$stats" '.flow.full_waits > 0' "the queue filled and arrivals waited (flow control engaged)"
if [ "${PARTREG_SANITIZE:-0}" != 1 ]; then
  [ "$hwm" -le $((256 * 1024)) ] || fail "peak RSS $((hwm / 1024)) MiB > 256 MiB"
  ok "peak RSS $((hwm / 1024)) MiB <= 256 MiB"
  [ "$anon" -le $((32 * 1024)) ] || fail "anonymous memory after the burst $((anon / 1024)) MiB > 32 MiB"
  ok "anonymous memory after the burst $((anon / 1024)) MiB <= 32 MiB"
fi
r=$(rr readiness/query '{"source":"flood","start":"2020-01-01T00:00:00Z","end":"2020-01-01T01:00:00Z"}')
expect "$r" '.ok and .result.ready == false' "the agent still answers"
pass
