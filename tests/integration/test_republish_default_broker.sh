#!/usr/bin/env bash
# Republishing on a broker left at its defaults (in-flight window 20): Paho
# 1.3.12 stalls a second whenever the broker's window is full, which would
# make 5000 retained messages take ~100 s. The agent's own flow control
# keeps under the window; this checks that all arrive, and well before a
# stalled publisher could have sent them (60 s: a generous bound, not a
# benchmark). The partitions are loaded through the shipped config: at its
# defaults mosquitto drops QoS 1 messages past 1000 queued for a client, so
# a burst of 5000 commands would lose some (clients retry; see README).
. "$(dirname "$0")/lib.sh"
N=5000
start_broker
start_agent

new_source many
partition_lines many 2020-01-01 day $N >"$T/register.jsonl"
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/register" -l <"$T/register.jsonl"
seq=$(wait_seq many $((N + 2)) 60)
[ "$seq" = $((N + 2)) ] || fail "only seq $seq of $((N + 2)) after 60 s"
ok "$N partitions registered"

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
ok "republished $N partitions on a default broker in $secs s (stalled Paho: ~$((N / 48)) s)"
# QoS 0 subscription: mosquitto's default queue limit applies only to QoS 1/2.
n=$(mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$P/state/many/partitions/#" -W 3 2>/dev/null | grep -c '"state":"pending"' || true)
[ "$n" -eq "$N" ] || fail "$n of $N retained partition states on the broker"
ok "all $N retained partition states are on the broker"
expect "$(sub1 "$P/state/many")" "(.blocked | length) == 1000 and .truncated == true" "summary lists 1000 blockers and says it is truncated"
pass
