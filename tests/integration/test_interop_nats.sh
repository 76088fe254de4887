#!/usr/bin/env bash
# Broker interop: the core walk-through against nats-server's MQTT support
# (Debian's nats-server; MQTT needs JetStream and an mqtt {} block; MQTT
# 3.1.1 only), with partregd --mqtt-version 3.1.1 and 3.1.1 clients putting
# reply_to and correlation_id in the body. Its own nats-server on free
# loopback ports in a temporary directory. Skipped (77) without nats-server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_sites.sh"

command -v nats-server >/dev/null || { echo "SKIP: nats-server is not installed (apt-get install nats-server; compose/install-deps.sh does)"; FAILED=0; exit 77; }
BROKER="nats-server $(nats-server --version | sed 's/.* v//')"
t0=$(date +%s%N)
for _ in $(seq 10); do
  PORT=$(free_port)
  NPORT=$(free_port)
  cat >"$T/nats.conf" <<CONF
server_name: partreg_interop_$$
listen: 127.0.0.1:$NPORT
jetstream {
  store_dir: "$T/jetstream"
}
mqtt {
  listen: 127.0.0.1:$PORT
}
CONF
  nats-server -c "$T/nats.conf" >>"$T/nats.log" 2>&1 &
  NATS_PID=$!
  PIDS+=($NATS_PID)
  wait_port "$PORT" 10 "$NATS_PID" && break
  kill -9 "$NATS_PID" 2>/dev/null || true
  PORT=""
done
[ -n "$PORT" ] || fail "nats-server did not start"
row "broker start (JetStream + mqtt)" "$((($(date +%s%N) - t0) / 1000000)) ms"
interop_walkthrough

# Retained state survives a broker restart (JetStream stores it).
conns=$(grep -c 'transport: connected' "$T/agent.log")
kill -TERM "$NATS_PID"
wait "$NATS_PID" 2>/dev/null || true
nats-server -c "$T/nats.conf" >>"$T/nats.log" 2>&1 &
NATS_PID=$!
PIDS+=($NATS_PID)
wait_port "$PORT" 10 "$NATS_PID" || fail "nats-server did not restart"
expect "$(mosquitto_sub "${M311[@]}" -t "$P/state/interop" -C 1 -W 5 2>/dev/null || true)" '.seq == 6' "$BROKER: the retained summary survives a broker restart"
row "retained state across a broker restart" "kept (JetStream)"
for _ in $(seq 150); do [ "$(grep -c 'transport: connected' "$T/agent.log")" -gt "$conns" ] && break; sleep 0.1; done
[ "$(grep -c 'transport: connected' "$T/agent.log")" -gt "$conns" ] || fail "$BROKER: the agent did not reconnect after the broker restart"
r=$(rr311 source/get '{"source":"interop"}')
expect "$r" '.ok and .result.seq == 6' "$BROKER: the agent reconnects after the broker restart and answers"
row "agent reconnects after a broker restart" "yes"
printf '%s\n' "${ROWS[@]}"
pass
