#!/usr/bin/env bash
# libpartreg in someone else's process (issue 9): TCP_NODELAY only on its own
# broker connection, nothing on stderr without a log callback, diagnostics
# through the callback when one is set. prog_client_host does the checks;
# this script gives it a real mosquitto and a port where nothing listens.
. "$(dirname "$0")/lib.sh"
: "${PARTREG_TEST_PROGS:?set by ctest}"
start_broker
# A loopback port where nothing listens (a connect is refused).
for _ in $(seq 20); do
  dead=$(random_port)
  (exec 3<>"/dev/tcp/127.0.0.1/$dead") 2>/dev/null || break
done
"$PARTREG_TEST_PROGS/prog_client_host" "mqtt://127.0.0.1:$PORT" "mqtt://127.0.0.1:$dead" \
  >"$T/prog.out" 2>"$T/prog.err" || { cat "$T/prog.out" "$T/prog.err"; fail "prog_client_host failed"; }
cat "$T/prog.out"
if [ -s "$T/prog.err" ]; then
  cat "$T/prog.err"
  fail "the library wrote to stderr without a log callback"
fi
ok "nothing on stderr"
pass
