#!/usr/bin/env bash
# Build partregd, partreg and partreg-http, and run partregd against a local mosquitto on
# 127.0.0.1:1883, with its LMDB store in var/data under the repository.
# Ctrl-C stops the agent (it publishes its retained "offline" status and
# disconnects), then the broker. Works as root and as any user who may
# write the build and var directories. Extra arguments go to partregd.
#
# Environment, all optional:
#   PARTREG_PORT       the broker's port on 127.0.0.1 (1883)
#   PARTREG_BUILD_DIR  the build directory (build)
#   PARTREG_VAR_DIR    the store (data/), the broker's persistence
#                      (mosquitto/), its config and log (var)
# Relative paths are taken from the repository's top.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
port=${PARTREG_PORT:-1883}
build=${PARTREG_BUILD_DIR:-build}
var=${PARTREG_VAR_DIR:-var}

compose/install-deps.sh
# The generator and build type only for a new build directory: an existing
# one (say an ASan build) keeps its own.
if [ -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" >/dev/null
else
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target partregd partreg partreg-http

mkdir -p "$var/data" "$var/mosquitto"
broker_up() { mosquitto_sub -h 127.0.0.1 -p "$port" -t '$SYS/broker/version' -C 1 -W "$1" >/dev/null 2>&1; }
broker_pid=""
stop_broker() {
  [ -n "$broker_pid" ] || return 0
  kill -TERM "$broker_pid" 2>/dev/null || true
  wait "$broker_pid" 2>/dev/null || true
}
trap stop_broker EXIT
# Ctrl-C reaches partregd itself too (it is in the terminal's process
# group); a SIGTERM to this script, or a closed terminal, is passed on.
# Either way partregd publishes "offline" and disconnects cleanly, and only
# then, when this script exits, does the EXIT trap stop the broker. A signal
# before partregd runs stops the script before it starts it.
agent_pid=""
stopping=0
trap 'stopping=1; [ -z "$agent_pid" ] || kill -TERM "$agent_pid" 2>/dev/null || true' INT TERM HUP
if broker_up 2; then
  echo "using the mosquitto already listening on 127.0.0.1:$port"
else
  # The shipped config with only the port and the persistence directory
  # changed, as the tests do. As root, mosquitto would switch to the user
  # "mosquitto" (its default `user`), which cannot write $var/mosquitto/ (or
  # even reach it under /root) and fails every autosave: it stays root.
  sed -e "s/^listener 1883 127.0.0.1\$/listener $port 127.0.0.1/" \
    -e "s|^persistence_location .*|persistence_location $var/mosquitto/|" \
    compose/mosquitto/mosquitto.conf >"$var/mosquitto.conf"
  [ "$(id -u)" -ne 0 ] || printf '\n# compose/run-local.sh runs as root\nuser root\n' >>"$var/mosquitto.conf"
  # In a session of its own, so that Ctrl-C (which the terminal sends to its
  # whole foreground process group) does not reach it: a broker that stops
  # while the agent is still connected publishes the agent's Last Will, an
  # "offline" with the agent's start time, over the clean "offline" the agent
  # has just published. The EXIT trap stops it, after the agent.
  setsid mosquitto -c "$var/mosquitto.conf" >"$var/mosquitto.log" 2>&1 </dev/null &
  broker_pid=$!
  for _ in $(seq 50); do
    broker_up 1 && break
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! broker_up 1; then
    echo "mosquitto did not start on 127.0.0.1:$port; its log, $var/mosquitto.log:" >&2
    cat "$var/mosquitto.log" >&2
    exit 1
  fi
  echo "started mosquitto (pid $broker_pid, config $var/mosquitto.conf, log $var/mosquitto.log)"
fi

[ "$stopping" -eq 0 ] || exit 130
"$build/src/partregd" --broker "mqtt://127.0.0.1:$port" --data-dir "$var/data" "$@" &
agent_pid=$!
echo "partregd (pid $agent_pid) on mqtt://127.0.0.1:$port, prefix partreg/v1, store $var/data (Ctrl-C stops)"
echo "the CLI: $(cd "$build" && pwd)/cli/partreg (with PARTREG_BROKER=mqtt://127.0.0.1:$port)"
status=0
while :; do
  # wait returns early (above 128) when a trapped signal arrives.
  wait "$agent_pid" && status=0 || status=$?
  kill -0 "$agent_pid" 2>/dev/null || break
done
exit "$status"
