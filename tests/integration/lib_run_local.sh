# SPDX-License-Identifier: MIT
# Helpers for test_run_local*.sh (sourced after lib.sh and lib_readme.sh):
# run compose/run-local.sh as a user does — in a process group of its own,
# as a shell runs a foreground job — on a free port, with its build and var
# directories under $T, and stop it as Ctrl-C does: SIGINT to that whole
# process group.

RL_AS=()      # a command prefix running the script as another user (setpriv ...)
RL_ENV=()     # extra environment for it (HOME=...)
RL_BUILD=""   # PARTREG_BUILD_DIR
RL_VAR=""     # PARTREG_VAR_DIR
RL_PID=""     # the script's pid, also its process group's id
RL_AGENT=""   # the pids it printed
RL_BROKER=""
RL_INSTANCE="" # the agent's instance id (from its log line)
RL_ONLINE_AT="" # its online status's "at"

# free_port: a loopback port nothing listens on.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$(random_port)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  fail "no free port"
}

# rl_start NAME [partregd flags...]: start compose/run-local.sh, output into
# $T/NAME.log; returns once its agent is online on $PORT.
rl_start() {
  local log=$T/$1.log
  shift
  # setsid: a new session and process group, whose id is the script's pid
  # (setsid does not fork: the background job is no group leader).
  env PARTREG_PORT="$PORT" PARTREG_BUILD_DIR="$RL_BUILD" PARTREG_VAR_DIR="$RL_VAR" \
    CMAKE_BUILD_PARALLEL_LEVEL=2 "${RL_ENV[@]}" \
    setsid "${RL_AS[@]}" bash "$PARTREG_SOURCE_DIR/compose/run-local.sh" --log-level debug "$@" \
    >"$log" 2>&1 </dev/null &
  RL_PID=$!
  PIDS+=("$RL_PID")
  RL_AGENT="" RL_BROKER="" RL_INSTANCE=""
  local s
  for _ in $(seq 900); do
    if [ -z "$RL_BROKER" ]; then
      RL_BROKER=$(sed -n 's/^started mosquitto (pid \([0-9]*\).*/\1/p' "$log")
      [ -z "$RL_BROKER" ] || PIDS+=("$RL_BROKER")
    fi
    if [ -z "$RL_AGENT" ]; then
      RL_AGENT=$(sed -n 's/^partregd (pid \([0-9]*\)).*/\1/p' "$log")
      [ -z "$RL_AGENT" ] || PIDS+=("$RL_AGENT")
    fi
    [ -n "$RL_INSTANCE" ] || RL_INSTANCE=$(sed -n 's/.* instance \([0-9a-f-]\{36\}\),.*/\1/p' "$log")
    if [ -n "$RL_INSTANCE" ]; then
      s=$(mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$P/agent/status" -C 1 -W 1 2>/dev/null || true)
      if [ "$(jq -r '.status + " " + .instance' <<<"$s" 2>/dev/null)" = "online $RL_INSTANCE" ]; then
        RL_ONLINE_AT=$(jq -r .at <<<"$s")
        [ -n "$RL_BROKER" ] || fail "run-local.sh did not start its own mosquitto: $(cat "$log")"
        ok "run-local.sh: partregd (pid $RL_AGENT) online on port $PORT, mosquitto pid $RL_BROKER"
        return 0
      fi
    fi
    kill -0 "$RL_PID" 2>/dev/null || fail "run-local.sh exited: $(cat "$log")"
    sleep 0.1
  done
  fail "run-local.sh: no agent online within 90 s"
}

# rl_ctrl_c: SIGINT to the script's process group, as a terminal's Ctrl-C;
# the script must exit 0 within 15 s and leave neither agent nor broker.
rl_ctrl_c() {
  kill -INT -- "-$RL_PID"
  for _ in $(seq 150); do kill -0 "$RL_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$RL_PID" 2>/dev/null && fail "run-local.sh still runs 15 s after Ctrl-C"
  local rc=0
  wait "$RL_PID" || rc=$?
  [ $rc -eq 0 ] || fail "run-local.sh exited $rc after Ctrl-C"
  for pid in $RL_AGENT $RL_BROKER; do
    kill -0 "$pid" 2>/dev/null && fail "process $pid still runs after run-local.sh exited"
  done
  ok "Ctrl-C: run-local.sh, partregd and mosquitto exited"
}

# rl_check_saved: the broker saved its state without an error, and a fresh
# mosquitto on the same config and persistence directory has the clean
# "offline" of the agent that ran — published at its stop, after its online
# status — not the Last Will (stamped with the agent's start time).
rl_check_saved() {
  local log=$RL_VAR/mosquitto.log
  grep -q 'Error' "$log" && fail "mosquitto logged an error: $(grep Error "$log")"
  [ -s "$RL_VAR/mosquitto/mosquitto.db" ] || fail "mosquitto saved no $RL_VAR/mosquitto/mosquitto.db"
  ok "mosquitto saved its state without an error"
  "${RL_AS[@]}" mosquitto -c "$RL_VAR/mosquitto.conf" >"$T/fresh-broker.log" 2>&1 </dev/null &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 50); do broker_up && break; sleep 0.1; done
  broker_up || fail "the fresh mosquitto did not start"
  local s
  s=$(sub1 "$P/agent/status")
  expect "$s" ".status == \"offline\" and .instance == \"$RL_INSTANCE\" and .at > \"$RL_ONLINE_AT\"" \
    "saved status: the clean offline of instance $RL_INSTANCE, stamped after its online ($RL_ONLINE_AT)"
  expect "$(sub1 "$P/state/some_source")" '.seq == 5 and (.ready | length) == 1' \
    "saved state: the walk-through's summary"
  kill -TERM "$pid"
  wait "$pid" || true
}
