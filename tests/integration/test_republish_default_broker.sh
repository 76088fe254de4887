#!/usr/bin/env bash
# Republishing on a broker left at its defaults (in-flight window 20): Paho
# 1.3.12 stalls a second whenever the broker's window is full, which would
# make 5000 retained messages take ~100 s. The agent's own flow control
# keeps under the window; this checks that all arrive, and well before a
# stalled publisher could have sent them (60 s: a generous bound, not a
# benchmark). The partitions are loaded through the shipped config: at its
# defaults mosquitto drops QoS 1 messages past 1000 queued for a client, so
# a burst of 5000 commands would lose some (clients retry; see README).
# The summaries republished: N contiguous pending days are one run of count
# N; M > --summary-max (1000) separate ones are listed up to 1000, truncated.
. "$(dirname "$0")/lib.sh"
N=5000
M=1200
start_broker
start_agent
day() { date -u -d "2020-01-01 UTC +$1 day" +%Y-%m-%dT%H:%M:%SZ; }

new_source many
partition_lines many 2020-01-01 day $N >"$T/register.jsonl"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/register" -l <"$T/register.jsonl"
seq=$(wait_seq many $((N + 2)) 60)
[ "$seq" = $((N + 2)) ] || fail "only seq $seq of $((N + 2)) after 60 s"
ok "$N partitions registered"

# sparse: M days, every other day from 2020-01-01 -- M runs of one.
new_source sparse
seq 0 $((2 * M)) | sed 's/.*/2020-01-01 UTC +& day/' | date -u -f - +%Y-%m-%dT%H:%M:%SZ >"$T/sparse.times"
paste -d' ' <(sed -n '1~2p' "$T/sparse.times" | head -n $M) <(sed -n '2~2p' "$T/sparse.times") |
  while read -r s e; do
    echo "{\"source\":\"sparse\",\"provider\":\"p\",\"start\":\"$s\",\"end\":\"$e\",\"access_token\":\"$TOKEN\"}"
  done >"$T/sparse.jsonl"
[ "$(wc -l <"$T/sparse.jsonl")" = $M ] || fail "made $(wc -l <"$T/sparse.jsonl") of $M sparse partitions"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/register" -l <"$T/sparse.jsonl"
seq=$(wait_seq sparse $((M + 2)) 60)
[ "$seq" = $((M + 2)) ] || fail "only seq $seq of $((M + 2)) after 60 s (sparse)"
ok "$M separate partitions registered (every other day)"

# A restart on a default broker that lost everything: the agent republishes it all.
stop_agent
stop_broker
BROKER_DEFAULTS=1 start_broker
grep -q max_inflight_messages "$T/mosquitto.conf" && fail "the broker should run at its defaults"
t0=$(date +%s.%N)
start_agent
for _ in $(seq 600); do
  grep -q "retained state republished" <(sed -n '/epoch 2/,$p' "$T/agent.log") && break
  sleep 0.1
done
t1=$(date +%s.%N)
grep -q "retained state republished" <(sed -n '/epoch 2/,$p' "$T/agent.log") || fail "republishing did not finish in 60 s"
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
ok "republished $((N + M)) partitions on a default broker in $secs s (stalled Paho: ~$(((N + M) / 48)) s)"
# QoS 0 subscription: mosquitto's default queue limit applies only to QoS 1/2.
n=$(mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$P/state/many/partitions/#" -W 3 2>/dev/null | grep -c '"state":"pending"' || true)
[ "$n" -eq "$N" ] || fail "$n of $N retained partition states on the broker"
ok "all $N retained partition states are on the broker"
# The republished summaries (format 2: blocked lists runs).
expect "$(sub1 "$P/state/many")" ".v == 2 and .seq == $((N + 2)) and .ready == [] and .truncated == false and .blocked == [{start: \"$(day 0)\", end: \"$(day $N)\", provider: \"p\", state: \"pending\", count: $N}]" \
  "$N contiguous pending days: one run of count $N (no since: a run of many), not truncated"
SP=$(sub1 "$P/state/sparse")
expect "$SP" ".v == 2 and .seq == $((M + 2)) and .truncated == true and (.blocked | length) == 1000" "$M separate pending days: 1000 runs listed (--summary-max), truncated"
expect "$SP" "all(.blocked[]; .count == 1 and .state == \"pending\" and .provider == \"p\" and (.since | type) == \"string\")" "each a run of one, with its since"
FIRST=$(head -n 1000 "$T/sparse.jsonl" | jq -sc '[.[] | [.start, .end]]')
expect "$SP" "[.blocked[] | [.start, .end]] == $FIRST" "the first 1000 of them, in time order"
pass
