#!/usr/bin/env bash
# Build partregd and run it against a local mosquitto on 127.0.0.1:1883,
# with its LMDB store in var/data under the repository. Ctrl-C stops both.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
compose/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target partregd
mkdir -p var/data var/mosquitto
broker_pid=""
if mosquitto_sub -h 127.0.0.1 -p 1883 -t '$SYS/broker/version' -C 1 -W 2 >/dev/null 2>&1; then
  echo "using the mosquitto already listening on 127.0.0.1:1883"
else
  mosquitto -c compose/mosquitto/mosquitto.conf >var/mosquitto.log 2>&1 &
  broker_pid=$!
  for _ in $(seq 50); do
    mosquitto_sub -h 127.0.0.1 -p 1883 -t '$SYS/broker/version' -C 1 -W 1 >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "started mosquitto (pid $broker_pid, log var/mosquitto.log)"
fi
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
echo "partregd on mqtt://127.0.0.1:1883, prefix partreg/v1, store var/data (Ctrl-C stops)"
build/partregd --broker mqtt://127.0.0.1:1883 --data-dir var/data "$@" &
agent_pid=$!
trap 'kill -TERM $agent_pid 2>/dev/null' INT TERM
wait $agent_pid || true
wait $agent_pid 2>/dev/null || true
