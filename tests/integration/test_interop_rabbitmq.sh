#!/usr/bin/env bash
# Broker interop: the core walk-through against Debian's RabbitMQ with the
# rabbitmq_mqtt plugin (MQTT 3.1.1 only; retained messages only on exact
# topic subscriptions), with partregd --mqtt-version 3.1.1 and 3.1.1 clients
# putting reply_to and correlation_id in the body. Its own node on free
# loopback ports (AMQP, distribution, epmd, MQTT) in a temporary directory,
# stopped with rabbitmqctl. Skipped (77) without rabbitmq-server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_sites.sh"

RMQ_BIN=/usr/lib/rabbitmq/bin
if [ ! -x "$RMQ_BIN/rabbitmq-server" ] || ! ls /usr/lib/rabbitmq/lib/*/plugins 2>/dev/null | grep -q '^rabbitmq_mqtt-'; then
  echo "SKIP: rabbitmq-server with rabbitmq_mqtt is not installed (apt-get install rabbitmq-server; compose/install-deps.sh does)"
  FAILED=0
  exit 77
fi
BROKER="RabbitMQ $(ls /usr/lib/rabbitmq/lib/ | sed -n 's/^rabbitmq_server-//p' | head -n 1)"

# The node's whole world is under $T/rabbit: its HOME (Erlang cookie),
# database, logs, config and plugin list; every port on 127.0.0.1. Run
# directly (not through /usr/sbin/rabbitmq-server, which switches to the
# user rabbitmq), so it works as root or as any user.
R="$T/rabbit"
mkdir -p "$R"
echo '[rabbitmq_mqtt].' >"$R/enabled_plugins"
rabbit_stop() {
  [ -n "${RMQ_PID:-}" ] || return 0
  if kill -0 "$RMQ_PID" 2>/dev/null; then
    timeout 30 "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" stop >>"$T/rabbitmqctl.log" 2>&1 ||
      kill -9 "$RMQ_PID" 2>/dev/null || true
  fi
  wait "$RMQ_PID" 2>/dev/null || true
  # The epmd this node started on its own port.
  epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
  RMQ_PID=""
}
trap 'rc=$?; rabbit_stop; (exit $rc); cleanup' EXIT

# rabbit_start: a node on fresh ports; 1 if it died while starting (seen:
# Erlang distribution failing to come up, now and then, under load).
rabbit_start() {
  rm -rf "$R/mnesia" "$R/log"
  PORT=$(free_port)
  export HOME="$R" \
    RABBITMQ_NODENAME="partreg-interop-$$-$RANDOM@localhost" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$(free_port) \
    RABBITMQ_DIST_PORT=$(free_port) \
    ERL_EPMD_PORT=$(free_port) \
    ERL_EPMD_ADDRESS=127.0.0.1 \
    ERL_CRASH_DUMP="$R/erl_crash.dump" \
    RABBITMQ_MNESIA_BASE="$R/mnesia" \
    RABBITMQ_LOG_BASE="$R/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$R/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$R/rabbitmq" \
    RABBITMQ_PID_FILE="$R/pid" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  cat >"$R/rabbitmq.conf" <<CONF
mqtt.listeners.tcp.default = 127.0.0.1:$PORT
mqtt.allow_anonymous = true
loopback_users = none
CONF
  echo "== start: node $RABBITMQ_NODENAME, mqtt $PORT, amqp $RABBITMQ_NODE_PORT, dist $RABBITMQ_DIST_PORT, epmd $ERL_EPMD_PORT" >>"$T/rabbit.log"
  "$RMQ_BIN/rabbitmq-server" >>"$T/rabbit.log" 2>&1 &
  RMQ_PID=$!
  PIDS+=($RMQ_PID)
  wait_port "$PORT" 60 "$RMQ_PID" && return 0
  kill -0 "$RMQ_PID" 2>/dev/null && { tail -n 30 "$T/rabbit.log"; fail "RabbitMQ did not start within 60 s"; }
  rabbit_stop
  return 1
}

t0=$(date +%s%N)
started=""
for attempt in 1 2 3; do
  if rabbit_start; then started=$attempt; break; fi
  echo "# RabbitMQ died while starting (attempt $attempt); retrying on other ports"
done
[ -n "$started" ] || { tail -n 30 "$T/rabbit.log"; fail "RabbitMQ did not start in 3 attempts"; }
row "broker start (rabbitmq_mqtt)" "$((($(date +%s%N) - t0) / 1000000)) ms"
interop_walkthrough

# Topic names with a dot: the plugin maps MQTT '/' to AMQP '.' and back.
r=$(rr311 source/register '{"source":"sales.eu","owner":"o"}')
expect "$r" '.ok and .result.source == "sales.eu"' "$BROKER: a source whose name has a dot"
expect "$(sub1 "$P/state/sales.eu")" '.source == "sales.eu"' "$BROKER: its retained summary, on the topic with the dot"
row "names with '.' (the plugin maps '/' to '.')" "work"
printf '%s\n' "${ROWS[@]}"
pass
