# SPDX-License-Identifier: MIT
# etcd for the HA tests (tests/integration/HA.md); source after lib.sh.
#
# etcd_cluster N [ETCD FLAGS...]: start an N-member (1 or 3) etcd cluster,
# each member with the extra flags (kept in ETCD_FLAGS for restarts), on free loopback
# ports, data under $ETCD_DATA_ROOT/<name> (default $T/etcd; tests/bench/run.sh
# puts it beside its stores), each member's log in $T/etcd-<name>.log,
# and wait until every member is healthy and a write goes through. Ports are
# random and checked free; when a member cannot start (a port was taken
# between the check and the bind), every member is killed and the cluster is
# started again on other ports (up to 5 times). Sets, per member i (0..N-1):
#   ETCD_NAME[i], ETCD_PID[i], ETCD_CLIENT[i] (http://127.0.0.1:port),
#   ETCD_PEER[i]; and ETCD_ENDPOINTS (the client URLs, comma-separated).
# Every PID goes into lib.sh's PIDS: its cleanup kill -9s them (also a
# stopped one) whatever happens.
#
# Faults, by member index, by PID:
#   etcd_kill I      kill -9 (and reap)
#   etcd_stop I      SIGSTOP (paused: its peers see it silent)
#   etcd_cont I      SIGCONT
#   etcd_restart I   start a killed member again, same name, ports and data
#                    (--initial-cluster-state existing), wait until healthy
# Questions:
#   etcd_leader      the index of the current leader (from `etcdctl endpoint
#                    status -w json` of the members that answer: the one whose
#                    member_id is the leader); fails if none within 10 s
#   etcd_healthy I   member I answers `endpoint health`
#   etcd_index_of URL  the index of the member whose client URL is URL
#   etcd_wait_write [EXCEPT...]  until a put through the members but EXCEPT
#                    succeeds (a leader exists and a quorum commits); 15 s
#   etcdctl_at I ARGS...  etcdctl against member I only (1 s timeouts)
#
# Cutting one process off from etcd: a TCP proxy per client process
# (ha_proxy.py; HA.md says why not network namespaces).
#   etcd_proxy NAME [I...]  start a proxy to the members I (default all);
#                    sets PROXY_PID[NAME] and PROXY_URL[NAME] (http://127.0.0.1:port,
#                    what the agent is given as --etcd)
#   proxy_cut NAME [refused|silent]  refused (default): reset connections and
#                    refuse new ones; silent: keep them, forward nothing
#   proxy_heal NAME  forward again
ETCD_NAME=()
ETCD_PID=()
ETCD_CLIENT=()
ETCD_PEER=()
ETCD_ENDPOINTS=""
ETCD_INITIAL=""
ETCD_TOKEN="partreg-ha-$$-$RANDOM"
ETCD_FLAGS=()
ETCD_DATA_ROOT=${ETCD_DATA_ROOT:-$T/etcd}
declare -A PROXY_PID=()
declare -A PROXY_URL=()

etcd_require() {
  command -v etcd >/dev/null && command -v etcdctl >/dev/null || {
    echo "SKIP: no etcd / etcdctl here (Debian: etcd-server, etcd-client)"
    FAILED=0
    exit 77
  }
}

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a random loopback port (random_port) nothing listens on and
# not handed out before by this test (two members must not both get one
# still unbound); sets FREE_PORT (not printed: a subshell would forget what
# it handed out).
TAKEN_PORTS=" "
free_port() {
  local p
  for _ in $(seq 100); do
    p=$(random_port)
    [[ "$TAKEN_PORTS" == *" $p "* ]] && continue
    if port_free "$p"; then
      TAKEN_PORTS+="$p "
      FREE_PORT=$p
      return 0
    fi
  done
  fail "no free port"
}

# etcd_member_start I STATE: start member I (new or existing cluster state).
etcd_member_start() {
  local i=$1 name=${ETCD_NAME[$1]}
  mkdir -p "$ETCD_DATA_ROOT"
  etcd --name "$name" --data-dir "$ETCD_DATA_ROOT/$name" \
    --listen-client-urls "${ETCD_CLIENT[$i]}" --advertise-client-urls "${ETCD_CLIENT[$i]}" \
    --listen-peer-urls "${ETCD_PEER[$i]}" --initial-advertise-peer-urls "${ETCD_PEER[$i]}" \
    --initial-cluster "$ETCD_INITIAL" --initial-cluster-state "$2" \
    --initial-cluster-token "$ETCD_TOKEN" \
    --heartbeat-interval 100 --election-timeout 1000 \
    --logger zap --log-outputs stderr "${ETCD_FLAGS[@]}" \
    >>"$T/etcd-$name.log" 2>&1 &
  ETCD_PID[$i]=$!
  PIDS+=("${ETCD_PID[$i]}")
}

etcdctl_at() {
  local i=$1
  shift
  etcdctl --endpoints "${ETCD_CLIENT[$i]}" --dial-timeout 1s --command-timeout 2s "$@"
}

etcd_healthy() { etcdctl_at "$1" endpoint health >/dev/null 2>&1; }

etcd_index_of() {
  local i
  for i in "${!ETCD_CLIENT[@]}"; do
    [ "${ETCD_CLIENT[$i]}" = "$1" ] && { echo "$i"; return 0; }
  done
  fail "no etcd member at $1"
}

etcd_cluster() {
  local n=$1 attempt i
  shift
  ETCD_FLAGS=("$@")
  etcd_require
  [ "$n" = 1 ] || [ "$n" = 3 ] || fail "etcd_cluster: 1 or 3 members, not $n"
  for attempt in $(seq 5); do
    ETCD_NAME=() ETCD_PID=() ETCD_CLIENT=() ETCD_PEER=() ETCD_INITIAL=""
    for i in $(seq 0 $((n - 1))); do
      ETCD_NAME[$i]=m$i
      free_port
      ETCD_CLIENT[$i]=http://127.0.0.1:$FREE_PORT
      free_port
      ETCD_PEER[$i]=http://127.0.0.1:$FREE_PORT
      ETCD_INITIAL+="${ETCD_INITIAL:+,}m$i=${ETCD_PEER[$i]}"
    done
    ETCD_ENDPOINTS=$(IFS=,; echo "${ETCD_CLIENT[*]}")
    rm -rf "$ETCD_DATA_ROOT"
    for i in $(seq 0 $((n - 1))); do etcd_member_start "$i" new; done
    local up=0
    for _ in $(seq 200); do
      up=1
      for i in $(seq 0 $((n - 1))); do
        if ! kill -0 "${ETCD_PID[$i]}" 2>/dev/null; then up=dead; break; fi
        etcd_healthy "$i" || up=0
      done
      [ "$up" = 1 ] || [ "$up" = dead ] && break
      sleep 0.1
    done
    if [ "$up" = 1 ] && etcd_wait_write; then
      return 0
    fi
    echo "# etcd cluster attempt $attempt failed ($up); again on other ports" >&2
    for i in $(seq 0 $((n - 1))); do etcd_kill "$i"; done
  done
  fail "could not start a $n-member etcd cluster (logs: $T/etcd-*.log)"
}

etcd_kill() {
  [ -n "${ETCD_PID[$1]:-}" ] || return 0
  kill -CONT "${ETCD_PID[$1]}" 2>/dev/null || true
  kill -9 "${ETCD_PID[$1]}" 2>/dev/null || true
  wait "${ETCD_PID[$1]}" 2>/dev/null || true
  ETCD_PID[$1]=""
}
etcd_stop() { kill -STOP "${ETCD_PID[$1]}"; }
etcd_cont() { kill -CONT "${ETCD_PID[$1]}"; }

etcd_restart() {
  [ -z "${ETCD_PID[$1]:-}" ] || fail "etcd_restart $1: member still running (kill it first)"
  etcd_member_start "$1" existing
  for _ in $(seq 150); do
    etcd_healthy "$1" && return 0
    kill -0 "${ETCD_PID[$1]}" 2>/dev/null || fail "etcd member $1 exited on restart"
    sleep 0.1
  done
  fail "etcd member $1 not healthy 15 s after its restart"
}

# etcd_status_json: `endpoint status -w json` of every member that answers,
# one line each: {i, id, leader, term}. Read with python3 (member ids are
# 64-bit: jq's doubles would round them).
etcd_status_json() {
  local i
  for i in "${!ETCD_CLIENT[@]}"; do
    [ -n "${ETCD_PID[$i]:-}" ] || continue
    etcdctl_at "$i" endpoint status -w json 2>/dev/null |
      python3 -c 'import json, sys
for s in json.load(sys.stdin):
    st = s["Status"]
    print(json.dumps({"i": int(sys.argv[1]), "id": str(st["header"]["member_id"]),
                      "leader": str(st["leader"]), "term": st["raftTerm"]}))' "$i" || true
  done
}

etcd_leader() {
  local l
  for _ in $(seq 100); do
    l=$(etcd_status_json | jq -rs 'map(select(.id == .leader and .leader != "0")) | sort_by(-.term) | .[0].i // empty')
    [ -n "$l" ] && { echo "$l"; return 0; }
    sleep 0.1
  done
  return 1
}

etcd_wait_write() {
  local eps=() i
  for i in "${!ETCD_CLIENT[@]}"; do
    [[ " $* " == *" $i "* ]] && continue
    [ -n "${ETCD_PID[$i]:-}" ] && eps+=("${ETCD_CLIENT[$i]}")
  done
  [ ${#eps[@]} -gt 0 ] || return 1
  for _ in $(seq 150); do
    etcdctl --endpoints "$(IFS=,; echo "${eps[*]}")" --dial-timeout 1s --command-timeout 1s \
      put /partreg-test/probe "$(date +%s%N)" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

etcd_proxy() {
  local name=$1 targets=() i
  shift
  local idx=("$@")
  [ ${#idx[@]} -gt 0 ] || idx=("${!ETCD_CLIENT[@]}")
  for i in "${idx[@]}"; do targets+=("${ETCD_CLIENT[$i]#http://}"); done
  # On a port below the ephemeral range (free_port): it listens there
  # again after a refusing cut.
  for _ in 1 2 3 4 5; do
    rm -f "$T/proxy-$name.port"
    free_port
    python3 "$PARTREG_SOURCE_DIR/tests/integration/ha_proxy.py" --listen "127.0.0.1:$FREE_PORT" \
      --target "$(IFS=,; echo "${targets[*]}")" --port-file "$T/proxy-$name.port" \
      --state-file "$T/proxy-$name.state" 2>>"$T/proxy-$name.log" &
    PROXY_PID[$name]=$!
    PIDS+=("${PROXY_PID[$name]}")
    for _ in $(seq 100); do
      [ -s "$T/proxy-$name.port" ] && break
      kill -0 "${PROXY_PID[$name]}" 2>/dev/null || break # (the port was taken)
      sleep 0.05
    done
    [ -s "$T/proxy-$name.port" ] && break
  done
  [ -s "$T/proxy-$name.port" ] || fail "proxy $name did not start: $(cat "$T/proxy-$name.log")"
  PROXY_URL[$name]=http://127.0.0.1:$(cat "$T/proxy-$name.port")
}

# proxy_signal NAME SIG STATE: signal the proxy and wait until it says STATE.
proxy_signal() {
  kill "-$2" "${PROXY_PID[$1]}"
  for _ in $(seq 100); do
    [ "$(cat "$T/proxy-$1.state" 2>/dev/null)" = "$3" ] && return 0
    sleep 0.02
  done
  fail "proxy $1 did not turn $3"
}
proxy_cut() {
  case "${2:-refused}" in
    refused) proxy_signal "$1" USR1 refused ;;
    silent) proxy_signal "$1" USR2 silent ;;
    *) fail "proxy_cut: refused or silent, not $2" ;;
  esac
}
proxy_heal() { proxy_signal "$1" HUP up; }

# Agents of the etcd backend, by index (several on one broker and prefix):
#   etcd_agent_start I ETCD_URL [partregd flags...]  agent I with its own read
#                    index ($T/aI), client id, log ($T/agentI.log) and --etcd
#                    ETCD_URL; waits for its "online" line (only the
#                    publisher says so on agent/status). APID[I] its PID.
#   etcd_agent_kill I   kill -9 (and reap)
#   etcd_agent_term I   SIGTERM: exit 0 within 10 s, no sanitizer report
#   etcd_publisher      the index of the agent holding <prefix>r/P (-1: none)
declare -a APID=()
etcd_agent_start() {
  local i=$1 url=$2 before
  shift 2
  before=$(grep -c 'agent: online' "$T/agent$i.log" 2>/dev/null || true)
  "$PARTREGD" --broker "mqtt://127.0.0.1:$PORT" --prefix "$P" --data-dir "$T/a$i" \
    --client-id "etcd-agent-$i" --etcd "$url" --etcd-max-txn-ops 10000 \
    --log-level debug "$@" >>"$T/agent$i.log" 2>&1 &
  APID[i]=$!
  PIDS+=("${APID[i]}")
  for _ in $(seq 150); do
    [ "$(grep -c 'agent: online' "$T/agent$i.log" 2>/dev/null || true)" -gt "${before:-0}" ] && return 0
    kill -0 "${APID[i]}" 2>/dev/null || fail "agent $i exited: $(tail -n 5 "$T/agent$i.log")"
    sleep 0.1
  done
  fail "agent $i did not come online"
}
etcd_agent_kill() { kill -9 "${APID[$1]}" 2>/dev/null || true; wait "${APID[$1]}" 2>/dev/null || true; }
etcd_agent_term() {
  local rc=0
  kill -TERM "${APID[$1]}"
  for _ in $(seq 100); do kill -0 "${APID[$1]}" 2>/dev/null || break; sleep 0.1; done
  kill -0 "${APID[$1]}" 2>/dev/null && fail "agent $1 did not stop within 10 s of SIGTERM"
  wait "${APID[$1]}" || rc=$?
  [ $rc -eq 0 ] || fail "agent $1 exited $rc after SIGTERM"
  sanitizer_clean "$T/agent$1.log"
}
etcd_publisher() {
  local inst i
  inst=$(etcdctl_at "$(etcd_leader)" get "/$P/r/P" --print-value-only 2>/dev/null | head -n 1)
  [ -n "$inst" ] || { echo -1; return; }
  for i in "${!APID[@]}"; do
    grep -q "instance $inst" "$T/agent$i.log" 2>/dev/null && { echo "$i"; return; }
  done
  echo -1
}
