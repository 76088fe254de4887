#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Where partregd spends its CPU under a write load: starts a broker and an
# agent on loopback, registers a source, and records the agent with
# `perf record` while pr_bench_rtt runs lock+unlock (or register) commands;
# prints perf's top entries by symbol (self time, all threads).
#
#   tests/bench/profile.sh [lockunlock|register]
#
# Environment: PROFILE_N (commands, 20000), PROFILE_C (in flight, 16),
# PROFILE_PENDING (register: pending partitions made first, 2000),
# PROFILE_TOP (entries printed, 25), BENCH_BUILD_DIR (build-bench, a
# Release build with symbols is best: -DCMAKE_BUILD_TYPE=RelWithDebInfo),
# PROFILE_OUT (keep perf.data there), PARTREGD (another agent binary, e.g. an older
# build to compare with).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BENCH_BUILD_DIR:-$ROOT/build-bench}
MODE=${1:-lockunlock}
N=${PROFILE_N:-20000}
C=${PROFILE_C:-16}
PENDING=${PROFILE_PENDING:-2000}
TOP=${PROFILE_TOP:-25}
P=partreg/v1
W=$(mktemp -d "${TMPDIR:-/tmp}/partreg-profile.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
command -v perf >/dev/null || { echo "profile.sh: perf not installed (linux-perf)" >&2; exit 1; }

port=$((20000 + RANDOM % 40000))
# The shipped broker config (TCP_NODELAY, in-flight window), persistence off.
sed -e "s/^listener 1883 127.0.0.1/listener $port 127.0.0.1/" -e 's/^persistence true/persistence false/' \
  -e '/^persistence_location/d' "$ROOT/compose/mosquitto/mosquitto.conf" >"$W/m.conf"
mosquitto -c "$W/m.conf" >"$W/m.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
  mosquitto_sub -h 127.0.0.1 -p "$port" -t '$SYS/broker/version' -C 1 -W 1 >/dev/null 2>&1 && break
  sleep 0.1
done
"${PARTREGD:-$BUILD/src/partregd}" --broker "mqtt://127.0.0.1:$port" --data-dir "$W/data" --log-level warn \
  >"$W/agent.log" 2>&1 &
AGENT=$!
PIDS+=("$AGENT")
U="mqtt://127.0.0.1:$port"
rr() { mosquitto_rr -h 127.0.0.1 -p "$port" -q 1 -t "$P/cmd/$1" -e "$P/reply/profile-$$" -m "$2" -W 10; }
for _ in $(seq 100); do
  TOKEN=$(rr source/register '{"source":"bench","owner":"o"}' 2>/dev/null | jq -r '.result.access_token // empty') && [ -n "$TOKEN" ] && break
  sleep 0.1
done
rr provider/register "{\"source\":\"bench\",\"provider\":\"p\",\"access_token\":\"$TOKEN\"}" >/dev/null
RTT=$BUILD/tests/bench/pr_bench_rtt
args=(--broker "$U" --topic "$P/cmd" --source bench --token "$TOKEN")
if [ "$MODE" = register ]; then
  # PENDING pending days first (untimed), then new days after them.
  args=(--broker "$U" --topic "$P/cmd/partition/register" --source bench --token "$TOKEN")
  "$RTT" register "${args[@]}" --first-day 2100-01-01 -n "$PENDING" -c 64 >/dev/null
  args+=(--first-day "$(date -u -d "2100-01-01 + $PENDING days" +%F)")
fi
# cpu_ticks: the agent's user + system CPU so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$AGENT/stat"; }
perf record -q -g -o "$W/perf.data" -p "$AGENT" 2>"$W/perf.log" &
PERF=$!
sleep 0.5
t0=$(cpu_ticks)
"$RTT" "$MODE" "${args[@]}" -n "$N" -c "$C"
t1=$(cpu_ticks)
kill -INT "$PERF"
wait "$PERF" || true
awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$N" \
  'BEGIN { printf "agent CPU: %.2f s for %d commands, %.0f us per command\n", t / hz, n, t / hz * 1e6 / n }'
if [ -n "${PROFILE_OUT:-}" ]; then cp "$W/perf.data" "$PROFILE_OUT"; fi
echo "self time by thread, then by library, then the top $TOP symbols:"
report() { perf report -i "$W/perf.data" --no-children --sort "$1" --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n "$2" || true; }
report comm 8
report dso 8
report dso,symbol "$TOP"
