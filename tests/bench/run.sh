#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One command for every benchmark of partregd (issue 6): builds Release into
# build-bench/, runs each figure next to its baseline in the same run (on
# loopback, repeated), and writes tests/bench/results.md (the table) and
# tests/bench/results.png (gnuplot), printing the machine first.
#
#   tests/bench/run.sh
#
# Sizes and switches (environment):
#   BENCH_REPEATS        repeats of every figure and its baseline (3)
#   BENCH_ONLY           groups to run, of: query lock register durable store republish
#                        wait http mirror etcd (all)
#   BENCH_INFLIGHT       requests in flight for query and lock ("1 16 64")
#   BENCH_RTT_N          requests per throughput run (5000)
#   BENCH_REGISTER_PRE   pending partitions registered in a fresh source before the
#                        register run times BENCH_REGISTER_N (BENCH_RTT_N) new ones (2000),
#                        BENCH_REGISTER_C in flight (16)
#   BENCH_DURABLE_N      commands in the durable-rate run (20000), BENCH_DURABLE_C in flight (256)
#   BENCH_LMDB_N         commits of the raw LMDB loop (2000)
#   BENCH_STORE_SIZES    partitions per store for the query-time figure ("1000 100000 1000000")
#   BENCH_STORE_SAMPLES  queries timed per size (20000)
#   BENCH_REPUBLISH_N    partitions of the store republished on start (1000000), an hourly
#                        history ending now: once under the agent's default --ready-expiry
#                        (the last week of ready ones), once keeping all; the agent's
#                        memory and the broker's RSS are read then
#   BENCH_KEEPALL_FLAGS  partregd's flags for the keep-all run (--ready-expiry 0)
#   BENCH_WAIT_N         unlock → summary samples (1000); BENCH_BRIDGE_N across the bridge (200:
#                        the bridge's echo round trip takes ~44 ms, Nagle on its sockets)
#   BENCH_HTTP_SECS      seconds of each wrk run of the http group (5): readiness and
#                        lock+unlock through partreg-http (wrk, tests/bench/http.lua) at
#                        BENCH_INFLIGHT connections, against the same commands sent
#                        directly over MQTT (pr_bench_rtt) at as many in flight; skipped,
#                        said, without wrk. PARTREG_HTTP: the daemon (BUILD/http/partreg-http)
#   BENCH_MIRROR_SIZES   partitions fed to partreg-http's mirror in process (pr_bench_mirror)
#                        ("10000 100000 1000000"): inserts newest first against the same in
#                        order, and in order against the first size; at the last size local
#                        readiness (against the first size), a watcher's snapshot and its
#                        reads (against the listing of the same partitions) and a full
#                        redelivery under a connected watcher (against the feed itself);
#                        BENCH_MIRROR_SAMPLES readiness calls (20000)
#   BENCH_ETCD_AGENT_FLAGS  more partregd flags for the etcd group's agent (none). The
#                        etcd group (issue 15): durable lock+unlock through partregd's etcd
#                        backend, BENCH_RTT_N commands at BENCH_INFLIGHT in flight, against
#                        a raw etcd txn loop shaped like the backend's (pr_bench_etcd_raw,
#                        as many commands and clients; goal >= 0.5) and against the LMDB
#                        agent's (the lock group's run; information), all in commands/s, on
#                        a 1-member etcd with its data in the data dir; the etcd agent gets
#                        --etcd URL --data-dir DIR --prefix partreg-bench-etcd/v1
#                        --client-id partregd-bench-etcd-PID. Without etcd the group is
#                        skipped, said; with a partregd without --etcd only the raw loop
#                        runs (its rates in results.md's notes). BENCH_ETCD_SERVER_FLAGS:
#                        more flags for etcd itself (none; e.g. --max-txn-ops N if the
#                        backend puts more than etcd's 128 operations in a txn)
#   BENCH_DATA_DIR       where stores go (a fresh directory under $TMPDIR or /tmp)
#   BENCH_OUT            where results.md/.png go (tests/bench)
#   BENCH_BUILD_DIR      build directory (build-bench); BENCH_SKIP_BUILD=1 uses it as is
#
# Every process is started here and stopped by its PID on exit. Benchmarks
# never fail on a slow machine: the exit status is 0 whenever every figure
# produced a number, whatever the goals say.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BENCH_BUILD_DIR:-$ROOT/build-bench}
OUT=${BENCH_OUT:-$ROOT/tests/bench}
REPEATS=${BENCH_REPEATS:-3}
ONLY=${BENCH_ONLY:-query lock register durable store republish wait http mirror etcd}
INFLIGHT=${BENCH_INFLIGHT:-1 16 64}
RTT_N=${BENCH_RTT_N:-5000}
REGISTER_PRE=${BENCH_REGISTER_PRE:-2000}
REGISTER_N=${BENCH_REGISTER_N:-$RTT_N}
REGISTER_C=${BENCH_REGISTER_C:-16}
DURABLE_N=${BENCH_DURABLE_N:-20000}
DURABLE_C=${BENCH_DURABLE_C:-256}
LMDB_N=${BENCH_LMDB_N:-2000}
STORE_SIZES=${BENCH_STORE_SIZES:-1000 100000 1000000}
STORE_SAMPLES=${BENCH_STORE_SAMPLES:-20000}
REPUBLISH_N=${BENCH_REPUBLISH_N:-1000000}
# Unset: the flag; set (even empty): as given, split into words.
read -ra KEEPALL_FLAGS <<<"${BENCH_KEEPALL_FLAGS---ready-expiry 0}"
WAIT_N=${BENCH_WAIT_N:-1000}
HTTP_SECS=${BENCH_HTTP_SECS:-5}
MIRROR_SIZES=${BENCH_MIRROR_SIZES:-10000 100000 1000000}
MIRROR_SAMPLES=${BENCH_MIRROR_SAMPLES:-20000}
BRIDGE_N=${BENCH_BRIDGE_N:-200}
P=partreg/v1
# shellcheck source=../integration/lib_port.sh
. "$ROOT/tests/integration/lib_port.sh" # random_port
W=$(mktemp -d "${TMPDIR:-/tmp}/partreg-bench.XXXXXX")
DATA=${BENCH_DATA_DIR:-$W/data}
mkdir -p "$DATA" "$OUT"
PIDS=()

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "---- bench failed (rc $rc); logs in $W ----" >&2
    for f in "$W"/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }; done
  else
    rm -rf "$W"
    [ -n "${BENCH_DATA_DIR:-}" ] || rm -rf "$DATA"
  fi
}
trap cleanup EXIT
die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }
wants() { [[ " $ONLY " == *" $1 "* ]]; }

# ---- build ----
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD" partregd pr_bench_rtt pr_bench_store pr_bench_lmdb pr_bench_mirror >/dev/null
  if [[ " $ONLY " == *" etcd "* ]]; then ninja -C "$BUILD" pr_bench_etcd_raw >/dev/null; fi
  if [[ " $ONLY " == *" http "* ]]; then ninja -C "$BUILD" partreg-http >/dev/null; fi
fi
PARTREGD=${PARTREGD:-$BUILD/src/partregd}
HTTPD=${PARTREG_HTTP:-$BUILD/http/partreg-http}
RTT=$BUILD/tests/bench/pr_bench_rtt
STORE=$BUILD/tests/bench/pr_bench_store
LMDB=$BUILD/tests/bench/pr_bench_lmdb
MIRROR=$BUILD/tests/bench/pr_bench_mirror
ETCD_RAW=$BUILD/tests/bench/pr_bench_etcd_raw # checked by the etcd group
for b in "$PARTREGD" "$RTT" "$STORE" "$LMDB" "$MIRROR"; do [ -x "$b" ] || die "missing $b"; done

# ---- the machine ----
fs=$(df -PT "$DATA" | awk 'NR == 2 { print $2 " on " $1 }')
broker_version=$( (mosquitto -h 2>&1 || true) | head -n 1)
MACHINE="$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(uname -sr), \
data dir $DATA: $fs, $broker_version"
echo "machine: $MACHINE"

# ---- results: one line per measurement: id, repeat, value, baseline ----
RAW=$W/raw.tsv
: >"$RAW"
record() {
  [[ "$3" =~ ^[0-9.]+$ && "$4" =~ ^[0-9.]+$ ]] || die "$1 #$2: no number (got '$3', baseline '$4')"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; echo "  $1 #$2: $3 (baseline $4)"; }
# field LINE KEY: the value of KEY=… in a result line.
field() { sed -nE "s/.*(^| )$2=([^ ]+).*/\\2/p" <<<"$1"; }

# ---- broker and agent ----
# broker_start NAME [extra config lines]: the shipped config on a free port,
# persistence off; sets PORT_<NAME>.
broker_start() {
  local name=$1 extra=${2:-} port conf pid
  for _ in $(seq 30); do
    port=$(random_port)
    conf=$W/$name.conf
    sed -e "s/^listener 1883 127.0.0.1/listener $port 127.0.0.1/" \
        -e "s|^persistence true|persistence false|" \
        -e "s|^persistence_location .*||" "$ROOT/compose/mosquitto/mosquitto.conf" >"$conf"
    [ -z "$extra" ] || printf '%s\n' "$extra" >>"$conf"
    mosquitto -c "$conf" >>"$W/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 50); do
      if mosquitto_sub -h 127.0.0.1 -p "$port" -t '$SYS/broker/version' -C 1 -W 1 >/dev/null 2>&1; then
        printf -v "PORT_$name" '%s' "$port"
        printf -v "PID_$name" '%s' "$pid"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  die "could not start mosquitto $name"
}
stop_pid() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# agent_start PORT DATADIR [FLAG...]: partregd at log level info, its log in
# $W/agent.log; sets AGENT. agent_start_as NAME …: the same, log $W/NAME.log.
agent_start() { agent_start_as agent "$@"; }
agent_start_as() {
  local log=$W/$1.log port=$2 dir=$3
  shift 3
  : >"$log"
  "$PARTREGD" --broker "mqtt://127.0.0.1:$port" --data-dir "$dir" --log-level info "$@" \
    >>"$log" 2>&1 &
  AGENT=$!
  PIDS+=("$AGENT")
  for _ in $(seq 600); do
    grep -q "agent: online" "$log" && return 0
    kill -0 "$AGENT" 2>/dev/null || die "partregd exited (flags: ${*:-none})"
    sleep 0.05
  done
  die "partregd did not come online"
}
# rr PORT COMMAND BODY [PREFIX]: one command to the agent of PREFIX ($P).
rr() {
  local pfx=${4:-$P}
  mosquitto_rr -h 127.0.0.1 -p "$1" -q 1 -t "$pfx/cmd/$2" -e "$pfx/reply/bench-$$" -m "$3" -W 10
}
# register_source PORT NAME [PREFIX]: source NAME with provider p; prints the owner's token.
register_source() {
  local token
  token=$(rr "$1" source/register "{\"source\":\"$2\",\"owner\":\"o\"}" "${3:-}" | jq -r .result.access_token)
  [ ${#token} -eq 36 ] || die "could not register source $2"
  rr "$1" provider/register "{\"source\":\"$2\",\"provider\":\"p\",\"access_token\":\"$token\"}" "${3:-}" |
    jq -e .ok >/dev/null || die "could not register provider p of $2"
  echo "$token"
}
# agent_lockunlock PORT PREFIX TOKEN C [N]: pr_bench_rtt lockunlock of source
# "bench" on the agent of PREFIX, N (RTT_N) commands, C in flight.
agent_lockunlock() {
  rtt lockunlock --broker "mqtt://127.0.0.1:$1" --topic "$2/cmd" --source bench --token "$3" \
    -n "${5:-$RTT_N}" -c "$4"
}

# A broker, an agent with a source "bench" (token in TOKEN) and an echo responder.
setup_agent() {
  broker_start A
  agent_start "$PORT_A" "$DATA/agent"
  TOKEN=$(register_source "$PORT_A" bench)
  "$RTT" echo --broker "mqtt://127.0.0.1:$PORT_A" --topic bench/cmd/echo >"$W/echo.log" 2>&1 &
  ECHO=$!
  PIDS+=("$ECHO")
  for _ in $(seq 50); do grep -q "echo responder" "$W/echo.log" && break; sleep 0.1; done
  # 64 days locked and unlocked: the query below covers 31 of them (ready).
  agent_lockunlock "$PORT_A" "$P" "$TOKEN" 64 128 >/dev/null || die "warm-up lock/unlock failed"
}
teardown_agent() { stop_pid "$ECHO"; stop_pid "$AGENT"; stop_pid "$PID_A"; }

QUERY='{"source":"bench","start":"2001-01-01T00:00:00Z","end":"2001-02-01T00:00:00Z"}'
# rate_of OUTPUT: the rate, after checking the run saw no error reply.
rate_of() {
  if [ "$(field "$1" errors)" = 0 ]; then field "$1" rate; else echo "error-replies:$1"; fi
}
# rtt ARGS: pr_bench_rtt, its log lines (the transport's) kept aside.
rtt() { "$RTT" "$@" 2>>"$W/clients.log"; }
declare -A CMD BASE GOAL LABEL

# ---- readiness/query, lock+unlock and register throughput vs the echo ----
# register: each repeat in a fresh source "regbenchR" holding REGISTER_PRE
# pending days from 2100-01-01 (registered by the tool, untimed), then
# REGISTER_N new days after them, each a new pending partition that changes
# the source's summary; the echo gets the same bodies.
REG_FIRST=2100-01-01
REG_DAY=$(date -u -d "$REG_FIRST + $REGISTER_PRE days" +%F)
REG_TOPIC=$P/cmd/partition/register

# ---- etcd (issue 15 point 8): the etcd agent's durable lock+unlock vs a raw etcd txn loop ----
# A 1-member etcd (tests/integration/lib_etcd.sh's etcd_cluster: the HA
# tests' flags and health wait; it fsyncs its WAL per commit, as LMDB's
# durable commit does), its data in $DATA/etcd: on the filesystem of the
# LMDB agent's store, so that both pay the same disk. For each c of
# INFLIGHT, in the loop below, next to the lock group:
#   - the LMDB agent's lock+unlock (the lock group's run, shared),
#   - the etcd agent's lock+unlock: a second partregd with --etcd, its own
#     fresh --data-dir and its own --prefix and --client-id on the same
#     broker (extra flags: BENCH_ETCD_AGENT_FLAGS), source "bench" warmed
#     up as setup_agent does,
#   - the raw loop, pr_bench_etcd_raw -n RTT_N -c c: one txn per command
#     shaped like the backend's (tests/bench/etcd_raw.c), each client its
#     own guard key (independent sources).
# Units: every figure is commands/s. pr_bench_rtt's lockunlock rate counts
# replies (a lock and its unlock are two) and the raw loop counts txns, one
# per command: the ratios take them as they are. A partregd without --etcd
# (the backend not built in): said, and only the raw loop is measured (its
# rates in the notes of results.md).
ETCD_OK=0    # the group runs: etcd is installed
ETCD_AGENT=0 # and partregd has --etcd: the agent rows too
EP=partreg-bench-etcd/v1 # the etcd agent's prefix
read -ra ETCD_AGENT_FLAGS <<<"${BENCH_ETCD_AGENT_FLAGS:-}"
read -ra ETCD_SERVER_FLAGS <<<"${BENCH_ETCD_SERVER_FLAGS:-}"
if wants etcd; then
  if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
    note "no etcd / etcdctl (Debian: etcd-server, etcd-client): the etcd group is skipped"
  else
    ETCD_OK=1
    [ -x "$ETCD_RAW" ] || die "missing $ETCD_RAW"
    # Not `--help | grep -q`: under pipefail an early grep exit may fail the pipe.
    help=$("$PARTREGD" --help 2>&1 || true)
    if grep -q -- '--etcd' <<<"$help"; then
      ETCD_AGENT=1
    else
      note "$PARTREGD has no --etcd (issue 15's etcd backend is not in this build):" \
        "the etcd group skips the agent rows and measures the raw etcd txn loop only"
    fi
    # The integration tests' lib_etcd.sh, with what it takes from their
    # lib.sh (fail, T, PIDS; random_port is lib_port.sh's, above): the
    # member's log is $W/etcd-m0.log.
    fail() { die "$*"; }
    T=$W
    ETCD_DATA_ROOT=$DATA/etcd
    # shellcheck source=../integration/lib_etcd.sh
    . "$ROOT/tests/integration/lib_etcd.sh"
  fi
fi
etcd_setup() {
  etcd_cluster 1 "${ETCD_SERVER_FLAGS[@]}"
  ETCD_URL=${ETCD_CLIENT[0]}
  echo "etcd $(etcd --version | sed -n 's/^etcd Version: //p') at $ETCD_URL${ETCD_SERVER_FLAGS[*]:+ (${ETCD_SERVER_FLAGS[*]})}, data in $ETCD_DATA_ROOT"
  [ "$ETCD_AGENT" = 1 ] || return 0
  local lmdb_agent=$AGENT
  rm -rf "$DATA/etcd-agent"
  agent_start_as agent-etcd "$PORT_A" "$DATA/etcd-agent" --etcd "$ETCD_URL" --prefix "$EP" \
    --client-id "partregd-bench-etcd-$$" "${ETCD_AGENT_FLAGS[@]}"
  ETCD_AGENT_PID=$AGENT
  AGENT=$lmdb_agent
  ETCD_TOKEN=$(register_source "$PORT_A" bench "$EP")
  agent_lockunlock "$PORT_A" "$EP" "$ETCD_TOKEN" 64 128 >/dev/null || die "etcd agent: warm-up lock/unlock failed"
}
# etcd_round REPEAT C LMDB: the raw loop and (with --etcd) the etcd agent at
# C in flight; LMDB: the LMDB agent's pr_bench_rtt line of the same round.
etcd_round() {
  local r=$1 c=$2 x raw
  if [ "$ETCD_AGENT" = 1 ]; then
    x=$(agent_lockunlock "$PORT_A" "$EP" "$ETCD_TOKEN" "$c")
  fi
  raw=$("$ETCD_RAW" --etcd "$ETCD_URL" -n "$RTT_N" -c "$c" 2>>"$W/etcd-raw.log") ||
    die "pr_bench_etcd_raw -c $c failed: $raw"
  echo "$r $c $(rate_of "$raw")" >>"$W/etcd-raw.txt"
  echo "  raw etcd txn loop, $c in flight #$r: $(rate_of "$raw") commands/s ($raw)"
  if [ "$ETCD_AGENT" = 1 ]; then
    record "etcd_raw_c$c" "$r" "$(rate_of "$x")" "$(rate_of "$raw")"
    record "etcd_lmdb_c$c" "$r" "$(rate_of "$x")" "$(rate_of "$3")"
  fi
}
etcd_teardown() {
  [ -z "${ETCD_AGENT_PID:-}" ] || stop_pid "$ETCD_AGENT_PID"
  stop_pid "${ETCD_PID[0]}"
  rm -rf "$DATA/etcd" "$DATA/etcd-agent"
}

# The LMDB agent: for these groups, and for the etcd group's agent rows.
NEED_AGENT=0
if wants query || wants lock || wants register || wants durable || wants wait || [ "$ETCD_AGENT" = 1 ]; then
  NEED_AGENT=1
fi
if [ "$NEED_AGENT" = 1 ] || [ "$ETCD_OK" = 1 ]; then
  if [ "$NEED_AGENT" = 1 ]; then
    setup_agent
    U="mqtt://127.0.0.1:$PORT_A"
  fi
  if [ "$ETCD_OK" = 1 ]; then etcd_setup; fi
  for r in $(seq "$REPEATS"); do
    for c in $INFLIGHT; do
      if wants query; then
        e=$(rtt query --broker "$U" --topic bench/cmd/echo --payload "$QUERY" -n "$RTT_N" -c "$c")
        a=$(rtt query --broker "$U" --topic "$P/cmd/readiness/query" --payload "$QUERY" -n "$RTT_N" -c "$c")
        record "query_c$c" "$r" "$(rate_of "$a")" "$(rate_of "$e")"
      fi
      # The LMDB agent's lock+unlock: the lock group's figure and the etcd
      # group's second baseline, one run for both.
      if wants lock || [ "$ETCD_AGENT" = 1 ]; then
        if wants lock; then e=$(rtt lockunlock --broker "$U" --topic bench/cmd/echo -n "$RTT_N" -c "$c"); fi
        lu=$(agent_lockunlock "$PORT_A" "$P" "$TOKEN" "$c")
        if wants lock; then record "lock_c$c" "$r" "$(rate_of "$lu")" "$(rate_of "$e")"; fi
      fi
      if [ "$ETCD_OK" = 1 ]; then etcd_round "$r" "$c" "${lu:-}"; fi
    done
    if wants register; then
      t=$(register_source "$PORT_A" "regbench$r")
      a=$(rtt register --broker "$U" --topic "$REG_TOPIC" --source "regbench$r" --token "$t" \
        --first-day "$REG_FIRST" -n "$REGISTER_PRE" -c 64)
      [ "$(field "$a" errors)" = 0 ] || die "registering $REGISTER_PRE pending partitions: $a"
      e=$(rtt register --broker "$U" --topic bench/cmd/echo --source "regbench$r" --token "$t" \
        --first-day "$REG_DAY" -n "$REGISTER_N" -c "$REGISTER_C")
      a=$(rtt register --broker "$U" --topic "$REG_TOPIC" --source "regbench$r" --token "$t" \
        --first-day "$REG_DAY" -n "$REGISTER_N" -c "$REGISTER_C")
      record "register_c$REGISTER_C" "$r" "$(rate_of "$a")" "$(rate_of "$e")"
    fi
    if wants durable; then
      rm -rf "$DATA/lmdb"
      l=$("$LMDB" "$DATA/lmdb" -n "$LMDB_N")
      a=$(rtt lockunlock --broker "$U" --topic "$P/cmd" --source bench --token "$TOKEN" -n "$DURABLE_N" -c "$DURABLE_C")
      record durable "$r" "$(rate_of "$a")" "$(field "$l" rate)"
    fi
    if wants wait; then
      e=$(rtt query --broker "$U" --topic bench/cmd/echo --payload "$QUERY" -n "$WAIT_N")
      a=$(rtt unlockwait --broker "$U" --topic "$P/cmd" --source bench --token "$TOKEN" -n "$WAIT_N")
      record wait_local_p50 "$r" "$(field "$a" p50)" "$(field "$e" p50)"
      record wait_local_p99 "$r" "$(field "$a" p99)" "$(field "$e" p99)"
    fi
  done
  if [ "$ETCD_OK" = 1 ]; then etcd_teardown; fi
  if wants wait; then
    # A second broker bridged to the first (MQTT 5, so properties cross):
    # commands and the echo's requests go out to A, state and replies come in.
    broker_start B "connection bench-bridge
address 127.0.0.1:$PORT_A
bridge_protocol_version mqttv50
cleansession true
topic $P/state/# in 1
topic bench/cmd/# out 1
topic bench/reply/# in 1"
    UB="mqtt://127.0.0.1:$PORT_B"
    # Up once A's retained summary has crossed to B (the bridge subscribes on connect).
    for _ in $(seq 100); do
      [ -n "$(mosquitto_sub -h 127.0.0.1 -p "$PORT_B" -t "$P/state/bench" -C 1 -W 1 2>/dev/null)" ] && break
      sleep 0.1
    done
    for r in $(seq "$REPEATS"); do
      e=$(rtt query --broker "$UB" --topic bench/cmd/echo --payload "$QUERY" -n "$BRIDGE_N")
      a=$(rtt unlockwait --broker "$U" --sub-broker "$UB" --topic "$P/cmd" --source bench --token "$TOKEN" -n "$BRIDGE_N")
      record wait_bridge_p50 "$r" "$(field "$a" p50)" "$(field "$e" p50)"
      record wait_bridge_p99 "$r" "$(field "$a" p99)" "$(field "$e" p99)"
    done
    stop_pid "$PID_B"
  fi
  if [ "$NEED_AGENT" = 1 ]; then teardown_agent; fi
fi
for c in $INFLIGHT; do
  LABEL[query_c$c]="readiness/query replies/s, $c in flight"
  BASE[query_c$c]="echo replies/s, $c in flight"
  GOAL[query_c$c]=">= 0.8"
  CMD[query_c$c]="pr_bench_rtt query --topic $P/cmd/readiness/query --payload '$QUERY' -n $RTT_N -c $c (echo: --topic bench/cmd/echo)"
  LABEL[lock_c$c]="lock+unlock replies/s, $c in flight"
  BASE[lock_c$c]="echo replies/s, same bodies, $c in flight"
  GOAL[lock_c$c]=">= 0.5"
  [ "$c" != 16 ] || GOAL[lock_c$c]=">= 0.6" # issue 12's goal at 16 in flight
  CMD[lock_c$c]="pr_bench_rtt lockunlock --topic $P/cmd --source bench --token T -n $RTT_N -c $c (echo: --topic bench/cmd/echo)"
done
LABEL[register_c$REGISTER_C]="partition/register replies/s, $REGISTER_PRE pending already, $REGISTER_C in flight"
BASE[register_c$REGISTER_C]="echo replies/s, same bodies, $REGISTER_C in flight"
GOAL[register_c$REGISTER_C]=">= 0.5"
CMD[register_c$REGISTER_C]="pr_bench_rtt register --topic $REG_TOPIC --source S --token T --first-day $REG_FIRST -n $REGISTER_PRE -c 64 (untimed); the same --first-day $REG_DAY -n $REGISTER_N -c $REGISTER_C (echo: --topic bench/cmd/echo)"
LABEL[durable]="durable commands/s (lock/unlock, $DURABLE_C in flight)"
BASE[durable]="raw LMDB, 1 put per txn, default sync"
GOAL[durable]=">= 2"
CMD[durable]="pr_bench_rtt lockunlock --topic $P/cmd --source bench --token T -n $DURABLE_N -c $DURABLE_C; pr_bench_lmdb DIR -n $LMDB_N"
for q in p50 p99; do
  LABEL[wait_local_$q]="unlock → summary subscriber sees it, $q µs, local"
  BASE[wait_local_$q]="echo round trip $q µs"
  GOAL[wait_local_$q]="<= 3"
  CMD[wait_local_$q]="pr_bench_rtt unlockwait --topic $P/cmd --source bench --token T -n $WAIT_N; pr_bench_rtt query (echo) -n $WAIT_N"
  LABEL[wait_bridge_$q]="unlock → summary subscriber sees it, $q µs, across a bridge"
  BASE[wait_bridge_$q]="echo round trip across the bridge $q µs"
  GOAL[wait_bridge_$q]="<= 3"
  CMD[wait_bridge_$q]="pr_bench_rtt unlockwait --broker A --sub-broker B … -n $BRIDGE_N; pr_bench_rtt query --broker B (echo on A)"
done
for c in $INFLIGHT; do
  ea="partregd --etcd URL --data-dir DIR --prefix $EP --client-id partregd-bench-etcd-PID${ETCD_AGENT_FLAGS[*]:+ ${ETCD_AGENT_FLAGS[*]}}; pr_bench_rtt lockunlock --topic $EP/cmd --source bench --token T -n $RTT_N -c $c"
  LABEL[etcd_raw_c$c]="etcd agent lock+unlock commands/s (replies), $c in flight"
  BASE[etcd_raw_c$c]="raw etcd txn loop commands/s (1 txn each), $c in flight (a guard key each)"
  GOAL[etcd_raw_c$c]=">= 0.5"
  CMD[etcd_raw_c$c]="$ea; pr_bench_etcd_raw --etcd URL -n $RTT_N -c $c"
  LABEL[etcd_lmdb_c$c]="${LABEL[etcd_raw_c$c]}"
  BASE[etcd_lmdb_c$c]="LMDB agent lock+unlock commands/s (replies), $c in flight"
  GOAL[etcd_lmdb_c$c]="" # information: what the etcd backend costs
  CMD[etcd_lmdb_c$c]="$ea; the same on the LMDB agent (--topic $P/cmd)"
done

# ---- the HTTP front door (partreg-http) vs the same commands over MQTT ----
# A fresh broker, agent and source "bench" (setup_agent: days 2001-01-01 on
# locked and unlocked, so that QUERY's month is ready), and partreg-http on
# that broker. Readiness: wrk GETs /sources/bench/check_readiness (and
# POSTs /v1/readiness/query) for QUERY's month, answered by the front door
# from its mirror of the retained state, against pr_bench_rtt sending
# QUERY to the agent's readiness/query over MQTT. Lock+unlock: wrk with C
# connections on as few threads as readiness (one per core at most: one
# thread per connection made wrk compete with the daemons for the CPU in
# the HTTP arm only), each connection alternating the original lock and
# unlock routes on its own day (token in Authorization), against
# pr_bench_rtt lockunlock over MQTT with as many in flight; each HTTP run on
# days no run used before (a run stopped by wrk's clock may leave its days
# locked): SPAN days per wrk thread.
if wants http && ! command -v wrk >/dev/null 2>&1; then
  note "no wrk (apt-get install wrk): the http group is skipped"
elif wants http; then
  [ -x "$HTTPD" ] || die "missing $HTTPD"
  rm -rf "$DATA/agent" # a fresh store: the groups above registered "bench" in theirs
  setup_agent
  U="mqtt://127.0.0.1:$PORT_A"
  HP=""
  for _ in $(seq 20); do
    hp=$(random_port)
    "$HTTPD" --broker "$U" --listen "127.0.0.1:$hp" --log-level info >>"$W/http.log" 2>&1 &
    HTTP_PID=$!
    PIDS+=("$HTTP_PID")
    for _ in $(seq 100); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hp/readyz")" = 200 ] && { HP=$hp; break 2; }
      kill -0 "$HTTP_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$HTTP_PID" 2>/dev/null || true
  done
  [ -n "$HP" ] || die "partreg-http did not become ready"
  HU="http://127.0.0.1:$HP"
  QS="start=$(jq -r .start <<<"$QUERY")&end=$(jq -r .end <<<"$QUERY")"
  READY_URL="$HU/sources/bench/check_readiness?$QS"
  # The front door's mirror has the warm-up's unlocks: QUERY's month is ready.
  for _ in $(seq 100); do
    [ "$(curl -s "$READY_URL" | jq -r .is_ready)" = true ] && break
    sleep 0.1
  done
  [ "$(curl -s "$READY_URL" | jq -r .is_ready)" = true ] || die "readiness over HTTP: not ready: $(curl -s "$READY_URL")"
  [ "$(curl -s -X POST -H 'Content-Type: application/json' -d "$QUERY" "$HU/v1/readiness/query" | jq -r .result.ready)" = true ] ||
    die "POST /v1/readiness/query: not ready"
  LUA=$ROOT/tests/bench/http.lua
  # wrkrun THREADS CONNS URL ARGS...: wrk's result line (see http.lua); its
  # own output and the script's complaints go to $W/wrk.log.
  wrkrun() {
    local t=$1 c=$2 url=$3 out
    shift 3
    out=$(wrk -t "$t" -c "$c" -d "${HTTP_SECS}s" --timeout 10s -s "$LUA" "$url" -- "$@" 2>>"$W/wrk.log")
    printf '%s\n' "$out" >>"$W/wrk.log"
    grep '^requests=' <<<"$out" | tail -n 1
  }
  # Days since 1970-01-01 of 2010-01-01: the first HTTP lock run's first day;
  # each run takes SPAN days per wrk thread (http.lua).
  HTTP_DAY=14610
  SPAN=1000
  for r in $(seq "$REPEATS"); do
    for c in $INFLIGHT; do
      tr=$((c < $(nproc) ? c : $(nproc)))
      a=$(wrkrun "$tr" "$c" "$READY_URL" get)
      e=$(rtt query --broker "$U" --topic "$P/cmd/readiness/query" --payload "$QUERY" -n "$RTT_N" -c "$c")
      record "http_ready_c$c" "$r" "$(rate_of "$a")" "$(rate_of "$e")"
      a=$(wrkrun "$tr" "$c" "$HU/v1/readiness/query" post-json "$QUERY")
      record "http_v1ready_c$c" "$r" "$(rate_of "$a")" "$(rate_of "$e")"
      a=$(wrkrun "$tr" "$c" "$HU/" lockunlock bench "$TOKEN" "$HTTP_DAY" "$SPAN")
      HTTP_DAY=$((HTTP_DAY + tr * SPAN))
      # As long as wrk's run: a run of RTT_N (about a second) ended before
      # the front door's mirror had caught up with the state it changed.
      e=$(rtt lockunlock --broker "$U" --topic "$P/cmd" --source bench --token "$TOKEN" -d "$HTTP_SECS" -c "$c")
      record "http_lock_c$c" "$r" "$(rate_of "$a")" "$(rate_of "$e")"
    done
  done
  stop_pid "$HTTP_PID"
  teardown_agent
fi
for c in $INFLIGHT; do
  tr=$((c < $(nproc) ? c : $(nproc)))
  LABEL[http_ready_c$c]="readiness over HTTP (GET /sources/{s}/check_readiness), requests/s, $c connections"
  BASE[http_ready_c$c]="readiness/query over MQTT replies/s, $c in flight"
  GOAL[http_ready_c$c]=">= 2"
  CMD[http_ready_c$c]="wrk -t $tr -c $c -d ${HTTP_SECS}s -s tests/bench/http.lua 'URL/sources/bench/check_readiness?start=…&end=…' -- get; pr_bench_rtt query --topic $P/cmd/readiness/query --payload QUERY -n $RTT_N -c $c"
  LABEL[http_v1ready_c$c]="readiness over HTTP (POST /v1/readiness/query), requests/s, $c connections"
  BASE[http_v1ready_c$c]="${BASE[http_ready_c$c]}"
  GOAL[http_v1ready_c$c]=">= 2"
  CMD[http_v1ready_c$c]="wrk -t $tr -c $c -d ${HTTP_SECS}s -s tests/bench/http.lua URL/v1/readiness/query -- post-json QUERY; the same pr_bench_rtt query"
  LABEL[http_lock_c$c]="lock+unlock over HTTP (POST /partitions/lock, unlock), requests/s, $c connections"
  BASE[http_lock_c$c]="lock+unlock over MQTT replies/s, $c in flight"
  GOAL[http_lock_c$c]=">= 0.7"
  CMD[http_lock_c$c]="wrk -t $tr -c $c -d ${HTTP_SECS}s -s tests/bench/http.lua URL/ -- lockunlock bench TOKEN DAY 1000; pr_bench_rtt lockunlock --topic $P/cmd --source bench --token T -d $HTTP_SECS -c $c"
done

# ---- agent-side readiness/query time vs store size ----
if wants store; then
  first=${STORE_SIZES%% *}
  for n in $STORE_SIZES; do
    rm -rf "$DATA/store-$n"
    "$STORE" fill "$DATA/store-$n" -n "$n" >/dev/null
  done
  for r in $(seq "$REPEATS"); do
    b=$(field "$("$STORE" query "$DATA/store-$first" -s "$STORE_SAMPLES")" p50_ns)
    for n in $STORE_SIZES; do
      a=$(field "$("$STORE" query "$DATA/store-$n" -s "$STORE_SAMPLES")" p50_ns)
      record "store_$n" "$r" "$a" "$b"
    done
  done
  for n in $STORE_SIZES; do
    [ "$n" = "$first" ] || rm -rf "$DATA/store-$n"
    LABEL[store_$n]="readiness/query in process, p50 ns, $n partitions"
    BASE[store_$n]="the same at $first partitions"
    GOAL[store_$n]="<= 2"
    CMD[store_$n]="pr_bench_store fill DIR -n $n; pr_bench_store query DIR -s $STORE_SAMPLES"
  done
  rm -rf "$DATA/store-$first"
fi

# ---- republishing retained state on start: the agent's rate and memory, the broker's RSS ----
# wait_lines FILE N SECS: until FILE has N lines or SECS pass; prints the count.
wait_lines() {
  local n=0
  for _ in $(seq $(($3 * 20))); do
    n=$(wc -l <"$1")
    [ "$n" -ge "$2" ] && break
    sleep 0.05
  done
  echo "$n"
}
# wait_quiet FILE N SECS: until FILE has N lines, or has not grown for 2 s,
# or SECS pass; prints the count.
wait_quiet() {
  local n=0 last=-1 still=0
  for _ in $(seq $(($3 * 20))); do
    n=$(wc -l <"$1")
    [ "$n" -ge "$2" ] && break
    if [ "$n" = "$last" ]; then
      still=$((still + 1))
      [ "$still" -ge 40 ] && break
    else
      still=0
      last=$n
    fi
    sleep 0.05
  done
  echo "$n"
}
now_ms() { date +%s%3N; }
# log_us TEXT: the time of the agent's first log line containing TEXT, in µs.
log_us() { date -u -d "$(grep -m1 "$1" "$W/agent.log" | cut -d' ' -f1)" +%s%6N; }
# kib_to_mib KB: MiB with one decimal.
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# republish_run NAME [FLAG...]: partregd with FLAGs on the store
# $DATA/republish, into a fresh broker with a subscriber of the partitions'
# retained topics (there before the agent). Times "online" → "retained
# state republished" (every partition it publishes sent at QoS 1 and
# acknowledged) as RP_RATE (the store's partitions per second), reads the
# agent's anonymous memory (RP_ANON, RP_RSSANON, kB) then, waits until the
# subscriber has what it will get (RP_GOT: N, or no growth for 2 s; under an
# expiry policy fewer than N are published) and reads the broker's VmRSS
# (RP_RSS, kB). Leaves what arrived in $W/sub-NAME.txt.
republish_run() {
  local name=$1 sub t0 t1
  shift
  broker_start R
  mosquitto_sub -h 127.0.0.1 -p "$PORT_R" -t "$P/state/bench/partitions/#" >"$W/sub-$name.txt" 2>/dev/null &
  sub=$!
  PIDS+=("$sub")
  sleep 0.3
  agent_start "$PORT_R" "$DATA/republish" "$@"
  for _ in $(seq 60000); do
    grep -q "retained state republished" "$W/agent.log" && break
    kill -0 "$AGENT" 2>/dev/null || die "partregd exited while republishing"
    sleep 0.02
  done
  grep -q "retained state republished" "$W/agent.log" || die "republishing did not finish in 20 min"
  # The agent's own log times (µs) of both lines.
  t0=$(log_us "agent: online")
  t1=$(log_us "retained state republished")
  RP_ANON=$(awk '/^Anonymous:/ { print $2 }' "/proc/$AGENT/smaps_rollup")
  RP_RSSANON=$(awk '/^RssAnon:/ { print $2 }' "/proc/$AGENT/status")
  RP_GOT=$(wait_quiet "$W/sub-$name.txt" "$REPUBLISH_N" 120)
  RP_RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID_R/status")
  stop_pid "$AGENT"
  stop_pid "$sub"
  stop_pid "$PID_R"
  RP_RATE=$(awk -v n="$REPUBLISH_N" -v us=$((t1 - t0)) 'BEGIN { printf "%.1f", n * 1e6 / (us > 0 ? us : 1) }')
  echo "  $name: the subscriber got $RP_GOT partitions of $REPUBLISH_N; agent Anonymous ${RP_ANON:-?} kB," \
    "RssAnon ${RP_RSSANON:-?} kB; broker VmRSS ${RP_RSS:-?} kB"
}
if wants republish; then
  rm -rf "$DATA/republish"
  "$STORE" fill "$DATA/republish" -n "$REPUBLISH_N" --history >/dev/null
  for r in $(seq "$REPEATS"); do
    # The same store under the agent's default policy, then keeping all.
    republish_run default
    d_rate=$RP_RATE d_got=$RP_GOT d_rss=$RP_RSS d_anon=${RP_ANON:-$RP_RSSANON}
    republish_run keepall "${KEEPALL_FLAGS[@]}"
    k_rate=$RP_RATE k_got=$RP_GOT k_rss=$RP_RSS
    echo "$r $d_got $k_got" >>"$W/republish-arrivals.txt"

    # The baseline: N payloads of the agent's (those of the run that
    # published most, repeated if it published fewer than N) with
    # mosquitto_pub -l, QoS 0 retained (QoS 1 would stop at 65,535 lines),
    # into a fresh broker with a subscriber that checks they all arrived.
    if [ ! -s "$W/payloads.txt" ]; then
      src=$W/sub-keepall.txt
      [ "$k_got" -ge "$d_got" ] || src=$W/sub-default.txt
      [ -s "$src" ] || die "republish #$r: the subscriber got no partition"
      : >"$W/payloads.txt"
      while [ "$(wc -l <"$W/payloads.txt")" -lt "$REPUBLISH_N" ]; do
        head -n "$REPUBLISH_N" "$src" >>"$W/payloads.txt"
      done
      head -n "$REPUBLISH_N" "$W/payloads.txt" >"$W/payloads.tmp"
      mv "$W/payloads.tmp" "$W/payloads.txt"
    fi
    rm -f "$W/sub-default.txt" "$W/sub-keepall.txt"
    broker_start R
    mosquitto_sub -h 127.0.0.1 -p "$PORT_R" -t bench/republish >"$W/raw-sub.txt" 2>/dev/null &
    sub=$!
    PIDS+=("$sub")
    sleep 0.3
    t0=$(now_ms)
    mosquitto_pub -h 127.0.0.1 -p "$PORT_R" -q 0 -r -t bench/republish -l <"$W/payloads.txt"
    t1=$(now_ms)
    sent=$(wc -l <"$W/payloads.txt")
    got=$(wait_lines "$W/raw-sub.txt" "$sent" 30)
    stop_pid "$sub"
    stop_pid "$PID_R"
    [ "$got" -ge "$sent" ] || note "mosquitto_pub #$r: the subscriber got $got of $sent (QoS 0 drops)"
    raw_rate=$(awk -v n="$sent" -v ms=$((t1 - t0)) 'BEGIN { printf "%.1f", n * 1000 / (ms > 0 ? ms : 1) }')
    echo "$r $got $sent" >>"$W/raw-arrivals.txt"
    record republish "$r" "$d_rate" "$raw_rate"
    record republish_keepall "$r" "$k_rate" "$raw_rate"
    record broker_rss "$r" "$(kib_to_mib "$d_rss")" 256
    record broker_rss_keepall "$r" "$(kib_to_mib "$k_rss")" 256
    record memory "$r" "$(kib_to_mib "$d_anon")" 64
  done
  rm -rf "$DATA/republish"
  fill="pr_bench_store fill DIR -n $REPUBLISH_N --history"
  LABEL[republish]="republish $REPUBLISH_N partitions on start, default policy, partitions/s (QoS 1)"
  BASE[republish]="mosquitto_pub -l, QoS 0, retained, msg/s"
  GOAL[republish]=">= 0.5"
  CMD[republish]="$fill; partregd --data-dir DIR (online → 'retained state republished'); mosquitto_pub -q 0 -r -l"
  LABEL[republish_keepall]="republish $REPUBLISH_N partitions on start, keep-all, partitions/s (QoS 1)"
  BASE[republish_keepall]="${BASE[republish]}"
  GOAL[republish_keepall]=">= 0.5"
  CMD[republish_keepall]="$fill; partregd --data-dir DIR ${KEEPALL_FLAGS[*]} (online → 'retained state republished'); mosquitto_pub -q 0 -r -l"
  LABEL[broker_rss]="mosquitto RSS after the agent republished $REPUBLISH_N, default policy, MiB"
  BASE[broker_rss]="goal 256 MiB"
  GOAL[broker_rss]="<= 1"
  CMD[broker_rss]="VmRSS: in /proc/PID/status of the agent's mosquitto once its subscriber is quiet ($fill; partregd --data-dir DIR)"
  LABEL[broker_rss_keepall]="mosquitto RSS after the agent republished $REPUBLISH_N, keep-all, MiB"
  BASE[broker_rss_keepall]="goal 256 MiB"
  GOAL[broker_rss_keepall]="<= 1"
  CMD[broker_rss_keepall]="the same with partregd --data-dir DIR ${KEEPALL_FLAGS[*]}"
  LABEL[memory]="agent anonymous memory after republishing $REPUBLISH_N, default policy, MiB"
  BASE[memory]="goal 64 MiB"
  GOAL[memory]="<= 1"
  CMD[memory]="Anonymous: in /proc/PID/smaps_rollup of that partregd"
fi

# ---- partreg-http's mirror in process: arrival order, readiness, streams ----
if wants mirror; then
  mfirst=${MIRROR_SIZES%% *}
  mlast=${MIRROR_SIZES##* }
  for r in $(seq "$REPEATS"); do
    base_rate=""
    for n in $MIRROR_SIZES; do
      f=$("$MIRROR" inserts -n "$n")
      b=$("$MIRROR" inserts -n "$n" --reverse)
      record "mirror_reverse_$n" "$r" "$(field "$b" rate)" "$(field "$f" rate)"
      if [ -z "$base_rate" ]; then
        base_rate=$(field "$f" rate)
      else
        record "mirror_insert_$n" "$r" "$(field "$f" rate)" "$base_rate"
      fi
      [ "$n" != "$mlast" ] || last_secs=$(field "$f" secs)
    done
    a=$("$MIRROR" readiness -n "$mlast" -s "$MIRROR_SAMPLES")
    e=$("$MIRROR" readiness -n "$mfirst" -s "$MIRROR_SAMPLES")
    [ "$(field "$a" local)" = "$MIRROR_SAMPLES" ] || note "mirror readiness #$r: only $(field "$a" local) answered locally"
    record mirror_ready "$r" "$(field "$a" rate)" "$(field "$e" rate)"
    a=$("$MIRROR" snapshot -n "$mlast")
    echo "$r $(field "$a" dropped) $(field "$a" watch_us)" >>"$W/mirror-snapshot.txt"
    record mirror_snapshot "$r" "$(field "$a" snap_secs)" "$(field "$a" list_secs)"
    list_us=$(awk -v s="$(field "$a" list_secs)" 'BEGIN { printf "%.0f", s * 1e6 }')
    record mirror_read_p99 "$r" "$(field "$a" p99_read_us)" "$list_us"
    record mirror_redeliver "$r" "$(field "$a" redeliver_secs)" "$last_secs"
  done
  for n in $MIRROR_SIZES; do
    LABEL[mirror_reverse_$n]="mirror: $n partitions arriving newest first, messages/s"
    BASE[mirror_reverse_$n]="the same in time order"
    GOAL[mirror_reverse_$n]=">= 0.5"
    CMD[mirror_reverse_$n]="pr_bench_mirror inserts -n $n --reverse; pr_bench_mirror inserts -n $n"
    LABEL[mirror_insert_$n]="mirror: $n partitions in time order, messages/s"
    BASE[mirror_insert_$n]="the same at $mfirst"
    GOAL[mirror_insert_$n]=">= 0.5"
    CMD[mirror_insert_$n]="pr_bench_mirror inserts -n $n; pr_bench_mirror inserts -n $mfirst"
  done
  LABEL[mirror_ready]="mirror: local readiness at $mlast partitions, calls/s"
  BASE[mirror_ready]="the same at $mfirst partitions"
  GOAL[mirror_ready]=">= 0.1"
  CMD[mirror_ready]="pr_bench_mirror readiness -n $mlast -s $MIRROR_SAMPLES; the same -n $mfirst"
  LABEL[mirror_snapshot]="mirror: a watcher's whole snapshot at $mlast partitions, s"
  BASE[mirror_snapshot]="listing the same partitions once (/v1/sources/{s}/partitions), s"
  GOAL[mirror_snapshot]="<= 3"
  CMD[mirror_snapshot]="pr_bench_mirror snapshot -n $mlast (snap_secs; list_secs)"
  LABEL[mirror_read_p99]="mirror: a watcher's read (mirror lock held) p99 at $mlast partitions, µs"
  BASE[mirror_read_p99]="the listing's lock hold, µs"
  GOAL[mirror_read_p99]="<= 0.01"
  CMD[mirror_read_p99]="pr_bench_mirror snapshot -n $mlast (p99_read_us; list_secs)"
  LABEL[mirror_redeliver]="mirror: $mlast unchanged messages again under a watcher mid-snapshot, s"
  BASE[mirror_redeliver]="feeding them the first time, s"
  GOAL[mirror_redeliver]="<= 0.5"
  CMD[mirror_redeliver]="pr_bench_mirror snapshot -n $mlast (redeliver_secs); pr_bench_mirror inserts -n $mlast (secs)"
fi

# ---- the table and the plot ----
META=$W/meta.tsv
: >"$META"
for id in $(cut -f1 "$RAW" | awk '!seen[$0]++'); do
  printf '%s\t%s\t%s\t%s\t%s\n' "$id" "${LABEL[$id]}" "${BASE[$id]}" "${GOAL[$id]}" "${CMD[$id]}" >>"$META"
done
note="Repeats: $REPEATS. Ratios are figure / baseline of the same repeat (latencies and
memory: lower is better). Reproduce all: \`tests/bench/run.sh\`; one group:
\`BENCH_ONLY=<query|lock|register|durable|store|republish|wait|http|mirror|etcd> tests/bench/run.sh\`."
if [ -f "$W/republish-arrivals.txt" ]; then
  note="$note
Republished partitions a subscriber received (repeat, default policy, keep-all; of $REPUBLISH_N): \
$(paste -sd';' "$W/republish-arrivals.txt")."
fi
if [ -f "$W/mirror-snapshot.txt" ]; then
  note="$note
Mirror snapshot runs (repeat, a watcher dropped 0/1, connect µs with the lock held): \
$(paste -sd';' "$W/mirror-snapshot.txt")."
fi
if [ -f "$W/raw-arrivals.txt" ]; then
  note="$note
mosquitto_pub QoS 0 arrivals at the subscriber (repeat, got, sent): $(paste -sd';' "$W/raw-arrivals.txt")."
fi
if [ -f "$W/etcd-raw.txt" ]; then
  note="$note
Raw etcd txn loop, commands/s (repeat, in flight, rate; pr_bench_etcd_raw --etcd URL -n $RTT_N -c C, \
etcd $(etcd --version | sed -n 's/^etcd Version: //p'), data in the data dir): $(paste -sd';' "$W/etcd-raw.txt")."
  [ "$ETCD_AGENT" = 1 ] || note="$note
The etcd agent's rows are missing: $PARTREGD has no --etcd."
fi
bash "$ROOT/tests/bench/table.sh" "$RAW" "$META" "$MACHINE" "$note" "$OUT/results.md" "$OUT/results.png"
cat "$OUT/results.md"
