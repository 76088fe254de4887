#!/usr/bin/env bash
# libpartreg's pr_client_subscribe_msg (prog_subscribe_msg, a user of the
# shared library): a retained message published with a Message Expiry
# Interval comes with the seconds it has left (less than given, once some
# have passed) and retained=1; one without expiry with -1; a live message
# with retained=0. (partreg-http's mirror forgets what the broker forgets
# by this.)
. "$(dirname "$0")/lib.sh"
start_broker
PROG=$PARTREG_TEST_PROGS/prog_subscribe_msg
pub() { mosquitto_pub -h 127.0.0.1 -p "$PORT" -V mqttv5 "$@"; }
pub -t "$P/probe/a" -r -m A -D publish message-expiry-interval 100
pub -t "$P/probe/b" -r -m B
sleep 1.2
"$PROG" "mqtt://127.0.0.1:$PORT" 3 10 >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 50); do grep -q '^subscribed$' "$T/out" && break; sleep 0.1; done
grep -q '^subscribed$' "$T/out" || fail "prog_subscribe_msg did not subscribe: $(cat "$T/err")"
pub -t "$P/probe/c" -m C -D publish message-expiry-interval 30
rc=0
wait $pid || rc=$?
[ $rc -eq 0 ] || fail "prog_subscribe_msg exited $rc: $(cat "$T/out" "$T/err")"
grep -Eq "^$P/probe/a retained=1 expiry=(9[0-9]) A$" "$T/out" ||
  fail "retained with expiry 100 after a second: $(grep probe/a "$T/out")"
grep -qx "$P/probe/b retained=1 expiry=-1 B" "$T/out" || fail "retained without expiry: $(grep probe/b "$T/out")"
grep -Eq "^$P/probe/c retained=0 expiry=(30|29) C$" "$T/out" || fail "live with expiry 30: $(grep probe/c "$T/out")"
ok "retained flag and the expiry left, as the broker passes them on: $(tr '\n' ' ' <"$T/out")"
pass
