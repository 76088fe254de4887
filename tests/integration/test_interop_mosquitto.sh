#!/usr/bin/env bash
# Broker interop baseline: the same MQTT 3.1.1 walk-through as
# test_interop_rabbitmq.sh and test_interop_nats.sh, against mosquitto with
# the shipped single-site config (compose/mosquitto/mosquitto.conf), so the
# three brokers' rows of the interop table are measured the same way.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_sites.sh"

BROKER="mosquitto $( (mosquitto -h 2>/dev/null || true) | sed -n "s/^mosquitto version //p" | head -n 1)"
t0=$(date +%s%N)
start_broker
row "broker start" "$((($(date +%s%N) - t0) / 1000000)) ms"
interop_walkthrough
printf '%s\n' "${ROWS[@]}"
pass
