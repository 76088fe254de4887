# SPDX-License-Identifier: MIT
# Helpers for integration tests: each test sources this file, starts its
# own mosquitto on a free loopback port (from compose/mosquitto's config)
# and its own partregd, and talks to them with the stock mosquitto clients.
# Everything started here is stopped by PID on exit; on failure the broker
# and agent logs are printed.
set -euo pipefail

: "${PARTREGD:?set by ctest: path to partregd}"
: "${PARTREG_SOURCE_DIR:?set by ctest}"
P=partreg/v1
T=$(mktemp -d "${TMPDIR:-/tmp}/partreg-test.XXXXXX")
BROKER_PID=""
AGENT_PID=""
PORT=""
PIDS=()
FAILED=1

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # 77 is a skip (said in the output), not a failure.
  if [ $rc -ne 77 ] && { [ $FAILED -ne 0 ] || [ $rc -ne 0 ]; }; then
    echo "---- test failed (rc $rc); logs in $T ----"
    for f in "$T"/*.log; do if [ -f "$f" ]; then echo "== $f"; tail -n 60 "$f"; fi; done
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

. "$(dirname "${BASH_SOURCE[0]}")/lib_port.sh" # random_port
ok() { echo "ok - $*"; }
# pass: stop the agent gracefully (which also checks it), then succeed.
pass() {
  [ -z "$AGENT_PID" ] || stop_agent
  FAILED=0
  echo "PASS"
}

# sanitizer_clean LOG: no AddressSanitizer/UBSan/LeakSanitizer report in LOG.
sanitizer_clean() {
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$1"; then
    fail "sanitizer report in $1"
  fi
}

# stop_agent: SIGTERM; partregd must exit 0 within 10 s, publish "offline",
# and leave no sanitizer report (leaks are reported at exit).
stop_agent() {
  kill -TERM "$AGENT_PID"
  local rc=0
  for _ in $(seq 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$AGENT_PID" 2>/dev/null && fail "partregd did not stop within 10 s of SIGTERM"
  wait "$AGENT_PID" || rc=$?
  [ $rc -eq 0 ] || fail "partregd exited $rc after SIGTERM"
  sanitizer_clean "$T/agent.log"
  if broker_up; then
    [ "$(sub1 "$P/agent/status" | jq -r .status)" = offline ] || fail "no retained offline status after SIGTERM"
  fi
  AGENT_PID=""
}

# kill_agent: kill -9, as a crash would.
kill_agent() {
  kill -9 "$AGENT_PID"
  wait "$AGENT_PID" 2>/dev/null || true
  AGENT_PID=""
}

# broker_conf PORT PERSIST: the shipped config with the port and persistence
# changed; with BROKER_DEFAULTS=1 also without its flow-control lines, as a
# broker left at mosquitto's defaults.
broker_conf() {
  local strip='^$'
  [ "${BROKER_DEFAULTS:-0}" = 1 ] && strip='^max_(inflight|queued)_messages'
  grep -Ev "$strip" "$PARTREG_SOURCE_DIR/compose/mosquitto/mosquitto.conf" |
  sed -e "s/^listener 1883 127.0.0.1/listener $1 127.0.0.1/" \
      -e "s|^persistence true|persistence $2|" \
      -e "s|^persistence_location .*|persistence_location $T/mosquitto/|" >"$T/mosquitto.conf"
  mkdir -p "$T/mosquitto"
}

broker_up() { mosquitto_sub -h 127.0.0.1 -p "$PORT" -t '$SYS/broker/version' -C 1 -W 1 >/dev/null 2>&1; }

# start_broker [persist=false]: on a free port (random, retried when taken).
start_broker() {
  local persist=${1:-false}
  for _ in $(seq 30); do
    [ -n "$PORT" ] || PORT=$(random_port)
    broker_conf "$PORT" "$persist"
    mosquitto -c "$T/mosquitto.conf" >>"$T/broker.log" 2>&1 &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    for _ in $(seq 50); do
      if broker_up; then return 0; fi
      kill -0 "$BROKER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$BROKER_PID" 2>/dev/null || true
    PORT=""
  done
  fail "could not start mosquitto"
}

stop_broker() { kill -9 "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; }

# The store backend the agents of this test use: lmdb (default), or etcd
# (PARTREG_BACKEND=etcd, set by ctest for the integration_etcd.* runs of the
# shared behaviour tests): then start_agent starts a one-member etcd the
# first time and gives every agent --etcd, its data dir the read index.
BACKEND=${PARTREG_BACKEND:-lmdb}
BACKEND_FLAGS=()
if [ "$BACKEND" = etcd ]; then
  . "$PARTREG_SOURCE_DIR/tests/integration/lib_etcd.sh"
  etcd_require
fi

# start_agent [extra partregd flags...]: waits until it is online.
start_agent() {
  if [ "$BACKEND" = etcd ] && [ ${#BACKEND_FLAGS[@]} -eq 0 ]; then
    etcd_cluster 1 --max-txn-ops 10000 >/dev/null
    BACKEND_FLAGS=(--etcd "$ETCD_ENDPOINTS" --etcd-max-txn-ops 10000)
  fi
  "$PARTREGD" --broker "mqtt://127.0.0.1:$PORT" --data-dir "$T/data" --log-level debug \
    "${BACKEND_FLAGS[@]}" "$@" >>"$T/agent.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
  wait_online
}

# wait_online: the retained agent status says online with the agent's current epoch.
wait_online() {
  for _ in $(seq 100); do
    local s
    s=$(mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$P/agent/status" -C 1 -W 1 2>/dev/null || true)
    if [ "$(jq -r .status <<<"$s" 2>/dev/null)" = online ] && kill -0 "$AGENT_PID" 2>/dev/null; then
      # The status must come from this agent run (its epoch is in its log).
      local e
      e=$(jq -r .epoch <<<"$s")
      grep -q "epoch $e" "$T/agent.log" && return 0
    fi
    kill -0 "$AGENT_PID" 2>/dev/null || fail "partregd exited"
    sleep 0.1
  done
  fail "partregd did not come online"
}

# rr VERB JSON: send one command with mosquitto_rr (MQTT 5 request/response), print the reply.
rr() {
  mosquitto_rr -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/$1" -e "$P/reply/test-$$/$RANDOM" \
    -m "$2" -W 10
}

# rr_until_ok VERB JSON: rr until the reply says ok (20 s at most, every
# 0.2 s); prints the last reply.
rr_until_ok() {
  local r=""
  for _ in $(seq 100); do
    r=$(rr "$1" "$2")
    jq -e .ok >/dev/null 2>&1 <<<"$r" && break
    sleep 0.2
  done
  echo "$r"
}

# sub1 TOPIC: the retained message on TOPIC (empty if none).
sub1() { mosquitto_sub -h 127.0.0.1 -p "$PORT" -t "$1" -C 1 -W 2 2>/dev/null || true; }

# retained_within TOPIC JQ SECONDS: wait until the retained message on
# TOPIC satisfies the jq expression JQ; fails (1) if it does not in time.
retained_within() {
  for _ in $(seq $(($3 * 10))); do
    jq -e "$2" >/dev/null 2>&1 <<<"$(sub1 "$1")" && return 0
    sleep 0.1
  done
  return 1
}

# expect JSON JQ-EXPR DESCRIPTION: the jq expression must be true. An empty
# JSON (no reply came) fails: jq -e on empty input exits 0.
expect() {
  if [ -z "${1//[[:space:]]/}" ]; then
    fail "$3: no JSON (no reply?) (expected $2)"
  fi
  if ! jq -e "$2" >/dev/null 2>&1 <<<"$1"; then
    echo "got: $1" >&2
    fail "$3 (expected $2)"
  fi
  ok "$3"
}

# new_source SOURCE: register SOURCE (owner "o") and its provider "p"; sets TOKEN.
new_source() {
  TOKEN=$(rr source/register "{\"source\":\"$1\",\"owner\":\"o\"}" | jq -r .result.access_token)
  [ ${#TOKEN} -eq 36 ] || fail "could not register source $1"
  local r
  r=$(rr provider/register "{\"source\":\"$1\",\"provider\":\"p\",\"access_token\":\"$TOKEN\"}")
  jq -e .ok >/dev/null <<<"$r" || fail "could not register provider p of $1: $r"
}

# pbody JQ-OBJECT: a partition command body for provider p of source $S with
# $TOKEN, merged with the jq object (e.g. '{start: "...", end: "..."}').
pbody() { jq -cn --arg s "$S" --arg t "$TOKEN" "{source:\$s,provider:\"p\",access_token:\$t} + $1"; }

# partition_lines SOURCE FROM UNIT N: N command bodies, one per line, for
# consecutive UNIT-long (hour, day) partitions of provider p from date FROM.
partition_lines() {
  local times="$T/times.$$"
  # `date -f` converts all the times in one run.
  seq 0 "$4" | sed "s/.*/$2 UTC +& $3/" | date -u -f - +%Y-%m-%dT%H:%M:%SZ >"$times"
  paste -d' ' <(head -n "$4" "$times") <(tail -n "$4" "$times") |
    while read -r s e; do
      echo "{\"source\":\"$1\",\"provider\":\"p\",\"start\":\"$s\",\"end\":\"$e\",\"access_token\":\"$TOKEN\"}"
    done
}

# wait_seq SOURCE SEQ SECONDS: poll source/get until its seq is SEQ; prints the last seq seen.
wait_seq() {
  local seq=""
  for _ in $(seq $(($3 * 10))); do
    seq=$(rr source/get "{\"source\":\"$1\"}" | jq -r .result.seq)
    [ "$seq" = "$2" ] && break
    sleep 0.1
  done
  echo "$seq"
}

# follow_events SOURCE [FILE]: every message on P/events/SOURCE from now on,
# one JSON per line, into $T/FILE (events.json), with marker lines,
# {"mark":N}, that prove the subscription is in place before this returns.
# The agent publishes one message per source per group commit:
# {"v":2, "source", "epoch", "events":[event...]}; `events` flattens them.
follow_events() {
  local out="$T/${2:-events.json}" mark="test/mark/$$/${2:-events.json}"
  stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/events/$1" -t "$mark" \
    >"$out" 2>>"$T/sub.log" &
  PIDS+=($!)
  for i in $(seq 50); do
    mosquitto_pub -h 127.0.0.1 -p "$PORT" -t "$mark" -m "{\"mark\":$i}"
    grep -q mark "$out" && return 0
    sleep 0.1
  done
  fail "the event subscriber did not start"
}

# jq, over an array of messages of P/events/<source> (and marker lines,
# which it drops): their events, flattened in arrival order. An error (jq
# fails, prints nothing) unless every message is a batch of format 2 --
# v 2, a source, an epoch, at least one event, each event of that source
# and epoch, seqs rising within the message -- and seqs rise across
# messages too (one source, one subscriber: nothing lost to reordering).
EVENTS_FLAT='def batch: . as $m
  | if ($m.v == 2) and ($m.source | type) == "string" and ($m.epoch | type) == "number"
       and ($m | keys) == ["epoch", "events", "source", "v"]
       and ($m.events | type) == "array" and ($m.events | length) > 0
       and all($m.events[]; .source == $m.source and .epoch == $m.epoch)
       and ([$m.events[].seq] as $s | [range(1; $s | length) | $s[.] > $s[. - 1]] | all)
    then $m.events[] else error("not an events batch: \($m | tojson)") end;
  [.[] | select(has("mark") | not) | batch]
  | if ([.[].seq] as $s | [range(1; $s | length) | $s[.] > $s[. - 1]] | all) then .
    else error("events out of order: \([.[].seq])") end'

# events [FILE]: the events follow_events captured so far in $T/FILE
# (events.json), flattened from their batches, as one JSON array; nothing
# (and status 1) when a message is not a well-formed batch or seqs do not
# rise (see EVENTS_FLAT), so that `expect "$(events)" ...` fails then.
events() { grep '^{' "$T/${1:-events.json}" | jq -sc "$EVENTS_FLAT"; }

# sub_events NAME TOPIC: the events bg_sub311 NAME received on TOPIC (one
# P/events/<source>) so far, flattened like `events`.
sub_events() { { grep -F "$2 {" "$T/sub.$1" || true; } | sed "s|^$2 ||" | jq -sc "$EVENTS_FLAT"; }

# batches [FILE]: the messages follow_events captured so far, marker lines
# left out, as one JSON array.
batches() { grep '^{' "$T/${1:-events.json}" | jq -sc '[.[] | select(has("mark") | not)]'; }

# bg_sub311 NAME TOPIC...: an MQTT 3.1.1 QoS 1 subscriber in the background,
# "topic payload" a line (with mosquitto_sub's -d lines) into $T/sub.NAME;
# returns once the broker acknowledged the subscription. Connects with
# ${M311[@]} when the test set it, else to this test's broker.
bg_sub311() {
  local name=$1 out="$T/sub.$1" m=(-V mqttv311 -h 127.0.0.1 -p "$PORT")
  shift
  [ -n "${M311+x}" ] && m=("${M311[@]}")
  local args=()
  for t in "$@"; do args+=(-t "$t"); done
  stdbuf -oL mosquitto_sub "${m[@]}" -q 1 -d -v "${args[@]}" >"$out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q SUBACK "$out" && return 0; sleep 0.05; done
  fail "subscriber $name did not subscribe"
}
