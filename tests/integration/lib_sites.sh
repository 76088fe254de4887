# SPDX-License-Identifier: MIT
# Helpers for the federation and ACL tests, sourced after lib.sh: brokers
# started from the production configs in compose/mosquitto (site-a.conf,
# site-b-bridge.conf, acl) with only ports, the bridge address and password
# and file paths substituted; users made with mosquitto_passwd; commands
# sent as a logged-in client. Every broker is stopped by PID (lib.sh's
# cleanup kills everything in PIDS).

CONF_DIR="$PARTREG_SOURCE_DIR/compose/mosquitto"
declare -A SITE_PID=() SITE_PORT=() SITE_CONF=()
# SITE_EXTRA[name]: lines appended to that site's config (e.g. "log_type all").
declare -A SITE_EXTRA=()

# The shipped brokers refuse anonymous clients, so lib.sh's helpers that
# read the broker at $PORT (start_agent's wait_online, stop_agent's sub1 and
# broker_up) are redefined here to log in as the user "client".
# ... | replied [JQ-EXPR]: stdin is a reply (not empty) for which JQ-EXPR
# (default .ok) is true.
replied() {
  local r
  r=$(cat)
  [ -n "${r//[[:space:]]/}" ] && jq -e "${1:-.ok}" >/dev/null 2>&1 <<<"$r"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
broker_up() { port_open "$PORT"; }
sub1() { sub_at "$PORT" "$1" client "$PW_CLIENT"; }
wait_online() {
  for _ in $(seq 100); do
    local s
    s=$(sub1 "$P/agent/status")
    if [ "$(jq -r .status <<<"$s" 2>/dev/null)" = online ] && kill -0 "$AGENT_PID" 2>/dev/null; then
      grep -q "epoch $(jq -r .epoch <<<"$s")" "$T/agent.log" && return 0
    fi
    kill -0 "$AGENT_PID" 2>/dev/null || fail "partregd exited"
    sleep 0.1
  done
  fail "partregd did not come online"
}

# make_users: a password file with the agent (partregd), the bridge of site
# B (site-b) and two clients (client, client2), each with a random password.
make_users() {
  PW_AGENT=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  PW_BRIDGE=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  PW_CLIENT=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  : >"$T/passwd"
  mosquitto_passwd -b "$T/passwd" partregd "$PW_AGENT"
  mosquitto_passwd -b "$T/passwd" site-b "$PW_BRIDGE"
  mosquitto_passwd -b "$T/passwd" client "$PW_CLIENT"
  PW_CLIENT2=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mosquitto_passwd -b "$T/passwd" client2 "$PW_CLIENT2"
  printf '%s\n' "$PW_AGENT" >"$T/agent.pw"
  chmod 600 "$T/agent.pw"
}

# subst FILE SED-EXPR...: each expression must change a line of FILE (so a
# drift of the shipped config fails the test instead of being ignored).
subst() {
  local f=$1
  shift
  for e in "$@"; do
    local before
    before=$(cksum <"$f")
    sed -i -e "$e" "$f"
    [ "$(cksum <"$f")" != "$before" ] || fail "shipped config changed: '$e' matches nothing in $f"
  done
}

# site_conf NAME SHIPPED PORT [A_PORT CLIENT_ID]: $T/NAME.conf from
# compose/mosquitto/SHIPPED, listening on 127.0.0.1:PORT, its password and
# persistence files in $T, the shipped ACL as is; with A_PORT also the
# bridge's address (127.0.0.1:A_PORT), password and, if given, client id.
site_conf() {
  local name=$1 shipped=$2 port=$3 aport=${4:-} cid=${5:-}
  local c="$T/$name.conf"
  cp "$CONF_DIR/$shipped" "$c"
  mkdir -p "$T/$name.db"
  subst "$c" "s/^listener 1883\$/listener $port 127.0.0.1/" \
    "s|^password_file .*|password_file $T/passwd|" \
    "s|^acl_file .*|acl_file $CONF_DIR/acl|" \
    "s|^persistence_location .*|persistence_location $T/$name.db/|"
  if [ -n "$aport" ]; then
    subst "$c" "s/^address .*/address 127.0.0.1:$aport/" \
      "s/^remote_password .*/remote_password $PW_BRIDGE/"
    [ -z "$cid" ] || subst "$c" "s/^remote_clientid .*/remote_clientid $cid/"
  fi
  # mosquitto started as root drops to the user "mosquitto", which cannot
  # read the test's private directory: keep root here.
  [ "$(id -u)" != 0 ] || echo "user root" >>"$c"
  [ -z "${SITE_EXTRA[$name]:-}" ] || echo "${SITE_EXTRA[$name]}" >>"$c"
  SITE_CONF[$name]=$c
}

# start_site NAME SHIPPED [A_PORT CLIENT_ID]: a broker from the shipped
# config on a free port (kept across restarts of the same NAME).
start_site() {
  local name=$1 shipped=$2
  shift 2
  for _ in $(seq 20); do
    local port=${SITE_PORT[$name]:-$(random_port)}
    [ -n "${SITE_PORT[$name]:-}" ] || ! port_open "$port" || continue
    site_conf "$name" "$shipped" "$port" "$@"
    mosquitto -c "${SITE_CONF[$name]}" >>"$T/broker-$name.log" 2>&1 &
    SITE_PID[$name]=$!
    PIDS+=($!)
    for _ in $(seq 50); do
      if port_open "$port"; then
        SITE_PORT[$name]=$port
        return 0
      fi
      kill -0 "${SITE_PID[$name]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "${SITE_PID[$name]}" 2>/dev/null || true
    [ -z "${SITE_PORT[$name]:-}" ] || fail "could not restart broker $name on ${SITE_PORT[$name]}"
  done
  fail "could not start broker $name"
}

# stop_site NAME [SIGNAL]: SIGTERM (mosquitto saves its retained messages)
# or -9; waits until it has exited.
stop_site() {
  local pid=${SITE_PID[$1]}
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# A logged-in client at the broker on PORT: C_PORT=... cmd VERB JSON. The
# reply topic is under partreg/v1/reply/client/, the only replies the ACL
# lets the user "client" read.
cmd_at() {
  mosquitto_rr -h 127.0.0.1 -p "$1" -u client -P "$PW_CLIENT" -q 1 -t "$P/cmd/$2" \
    -e "$P/reply/client/$$-$RANDOM" -m "$3" -W 10 2>/dev/null || true
}

# sub_at PORT TOPIC [USER PASSWORD]: the retained message on TOPIC, if any
# (as the user "client" unless another is given).
sub_at() {
  mosquitto_sub -h 127.0.0.1 -p "$1" -u "${3:-client}" -P "${4:-$PW_CLIENT}" -t "$2" -C 1 -W 2 2>/dev/null || true
}

# retained_at PORT FILTER: every retained message under FILTER (as the user
# "client"), "topic payload" a line, sorted; reads for a second.
retained_at() {
  mosquitto_sub -h 127.0.0.1 -p "$1" -u client -P "$PW_CLIENT" -t "$2" -v --retained-only -W 1 2>/dev/null |
    sort || true
}

# bridge_state PORT CLIENT_ID: 1 while the bridge with CLIENT_ID is up, 0 when down.
bridge_state() {
  sub_at "$1" "\$SYS/broker/connection/$2/state"
}
wait_bridge() {
  for _ in $(seq 100); do
    [ "$(bridge_state "$1" "$2")" = 1 ] && return 0
    sleep 0.1
  done
  fail "bridge $2 at port $1 did not come up"
}

# ---- broker interop (MQTT 3.1.1 brokers without logins) ----
# interop_mode: lib.sh's helpers (start_agent's wait_online, stop_agent's
# sub1, broker_up) speak MQTT 3.1.1 to the broker at $PORT, anonymously.
interop_mode() {
  M311=(-V mqttv311 -h 127.0.0.1 -p "$PORT")
  sub1() { mosquitto_sub "${M311[@]}" -t "$1" -C 1 -W 2 2>/dev/null || true; }
  broker_up() { port_open "$PORT"; }
  wait_online() {
    for _ in $(seq 150); do
      local s
      s=$(sub1 "$P/agent/status")
      if [ "$(jq -r .status <<<"$s" 2>/dev/null)" = online ] && kill -0 "$AGENT_PID" 2>/dev/null; then
        grep -q "epoch $(jq -r .epoch <<<"$s")" "$T/agent.log" && return 0
      fi
      kill -0 "$AGENT_PID" 2>/dev/null || fail "partregd exited"
      sleep 0.1
    done
    fail "partregd did not come online"
  }
}

# free_port: a loopback TCP port nothing listens on.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$(random_port)
    port_open "$p" || { echo "$p"; return 0; }
  done
  fail "no free port"
}

# wait_port PORT SECONDS PID: until PORT accepts TCP (fails if PID exits).
wait_port() {
  for _ in $(seq $(($2 * 10))); do
    port_open "$1" && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# rr311 VERB JSON: the command with reply_to and a fresh correlation_id in
# the body, published at QoS 1; prints the reply (empty after 10 s).
rr311() {
  local cid=c$RANDOM$RANDOM
  mosquitto_pub "${M311[@]}" -q 1 -t "$P/cmd/$1" \
    -m "$(jq -c --arg rt "$P/reply/interop" --arg c "$cid" '. + {reply_to: $rt, correlation_id: $c}' <<<"$2")"
  for _ in $(seq 1000); do
    local line
    line=$(grep -F "\"correlation_id\":\"$cid\"" "$T/sub.replies" | head -n 1 || true)
    if [ -n "$line" ]; then
      echo "${line#"$P/reply/interop "}"
      return 0
    fi
    sleep 0.01
  done
}

# row FEATURE RESULT: a line of the broker's interop table (printed at the end).
ROWS=()
row() { ROWS+=("| $BROKER | $1 | $2 |"); echo "# $BROKER: $1: $2"; }

# interop_walkthrough: the core walk-through as an MQTT 3.1.1 client against
# the broker at $PORT with partregd --mqtt-version 3.1.1, checking every
# step and recording what the broker does with retained messages, wildcards,
# QoS 1, the agent's Last Will and MQTT 5.
interop_walkthrough() {
  interop_mode
  local S=interop D1="2023-01-01 00:00:00" D2="2023-01-02 00:00:00"
  local Z1=2023-01-01T00:00:00Z Z2=2023-01-02T00:00:00Z
  local t0 r
  t0=$(date +%s%N)
  start_agent --mqtt-version 3.1.1
  row "agent online (--mqtt-version 3.1.1)" "yes, $((($(date +%s%N) - t0) / 1000000)) ms after start"
  bg_sub311 replies "$P/reply/interop"
  bg_sub311 events "$P/events/$S"

  r=$(rr311 source/register "{\"source\":\"$S\",\"owner\":\"o\"}")
  expect "$r" '.ok and (.result.access_token | length) == 36' "$BROKER: source registered (reply on reply_to)"
  TOKEN=$(jq -r .result.access_token <<<"$r")
  r=$(rr311 provider/register "{\"source\":\"$S\",\"provider\":\"p\",\"access_token\":\"$TOKEN\"}")
  expect "$r" '.ok and .result.provider == "p"' "$BROKER: provider registered"
  local PART="\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$TOKEN\""
  r=$(rr311 partition/register "{$PART}")
  expect "$r" '.ok and .result.state == "pending" and .result.seq == 3' "$BROKER: partition registered"
  expect "$(sub1 "$P/state/$S")" ".seq == 3 and .blocked[0].state == \"pending\" and .ready == []" "$BROKER: the retained summary (exact topic) shows it pending"
  r=$(rr311 partition/lock "{$PART}")
  expect "$r" '.ok and .result.state == "locked" and .result.fence == 1' "$BROKER: locked"
  r=$(rr311 readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\"}")
  expect "$r" '.ok and .result.ready == false and .result.blockers[0].state == "locked"' "$BROKER: not ready while locked"
  r=$(rr311 partition/unlock "{$PART,\"fence\":1}")
  expect "$r" '.ok and .result.state == "ready" and .result.version == 1' "$BROKER: unlocked"
  r=$(rr311 readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\"}")
  expect "$r" ".ok and .result.ready == true and .result.ready_through == \"$Z2\"" "$BROKER: ready"
  expect "$(sub1 "$P/state/$S")" ".seq == 5 and .ready == [[\"$Z1\",\"$Z2\"]] and .blocked == []" "$BROKER: the retained summary shows the day ready"
  expect "$(sub1 "$P/state/$S/partitions/$Z1/$Z2/p")" '.state == "ready" and .version == 1 and .fence == 1' "$BROKER: the retained partition topic"
  row "walk-through: register, provider, partition, lock, readiness, unlock, retained summary and partition (exact topics)" "passes"
  sleep 0.3
  expect "$(sub_events events "$P/events/$S" | jq -c '[.[].type]')" '. == ["source_registered","provider_registered","registered","locked","unlocked"]' "$BROKER: a QoS 1 subscriber saw the five events in order"
  grep -q "received PUBLISH (d0, q1" "$T/sub.events" || fail "$BROKER: events were not delivered at QoS 1"
  row "QoS 1 commands, replies and events, in order" "yes"

  # Round trip without a process per call: one mosquitto_pub -l connection
  # sends 20 queries 100 ms apart, each with its send time as correlation_id;
  # a running subscriber stamps the replies' arrival.
  stdbuf -oL mosquitto_sub "${M311[@]}" -q 1 -t "$P/reply/rtt" -F '%U %p' >"$T/rtt" 2>/dev/null &
  local rtt_sub=$!
  PIDS+=($rtt_sub)
  sleep 0.5
  # (the first line after mosquitto_pub has connected)
  for _ in $(sleep 0.5; seq 20); do
    printf '{"source":"%s","start":"%s","end":"%s","reply_to":"%s","correlation_id":"%s"}\n' \
      "$S" "$D1" "$D2" "$P/reply/rtt" "$EPOCHREALTIME"
    sleep 0.1
  done | mosquitto_pub "${M311[@]}" -q 1 -t "$P/cmd/readiness/query" -l
  for _ in $(seq 30); do [ "$(wc -l <"$T/rtt")" -ge 20 ] && break; sleep 0.1; done
  kill "$rtt_sub" 2>/dev/null || true
  local rtts
  rtts=$(while read -r ts json; do
    [ "$(jq -r .ok <<<"$json")" = true ] && jq -r .correlation_id <<<"$json" | awk -v t="$ts" '{printf "%.3f\n", (t - $1) * 1000}'
  done <"$T/rtt" | sort -n)
  [ "$(wc -l <<<"$rtts")" -eq 20 ] || fail "$BROKER: $(wc -l <<<"$rtts") of 20 readiness queries answered"
  row "readiness/query round trip, one 3.1.1 client connection (p50 / max of 20)" "$(sed -n 10p <<<"$rtts") / $(tail -n 1 <<<"$rtts") ms"

  # Retained messages on wildcard subscriptions.
  local w
  w=$(mosquitto_sub "${M311[@]}" -t "$P/state/+" -v -C 1 -W 2 2>/dev/null || true)
  if [ "${w%% *}" = "$P/state/$S" ]; then
    row "retained messages on a wildcard subscription (state/+)" "delivered"
  else
    row "retained messages on a wildcard subscription (state/+)" "NOT delivered: subscribe to exact topics (state/<source>, one partition topic)"
  fi

  # The tombstone of a deletion is retained (3.1.1: no message expiry).
  r=$(rr311 partition/delete "{$PART}")
  expect "$r" '.ok and .result.state == "deleted"' "$BROKER: partition deleted"
  expect "$(sub1 "$P/state/$S/partitions/$Z1/$Z2/p")" '.state == "deleted" and .seq == 6' "$BROKER: the retained tombstone replaces the partition"
  row "deletion tombstone retained" "yes (never expires: 3.1.1 has no message expiry)"

  # Commands sent while the agent is down wait in its persistent session.
  stop_agent
  row "clean stop publishes retained offline" "yes"
  mosquitto_pub "${M311[@]}" -q 1 -t "$P/cmd/source/get" \
    -m "{\"source\":\"$S\",\"reply_to\":\"$P/reply/interop\",\"correlation_id\":\"while-down\"}"
  start_agent --mqtt-version 3.1.1
  for _ in $(seq 50); do grep -q '"correlation_id":"while-down"' "$T/sub.replies" && break; sleep 0.1; done
  grep -q '"correlation_id":"while-down"' "$T/sub.replies" || fail "$BROKER: a command sent while the agent was down was not answered after its restart"
  ok "$BROKER: a command sent while the agent was down is answered when it is back"
  row "commands queued in the agent's persistent session while it is down" "yes"

  # The Last Will: kill -9, the broker publishes the retained offline.
  kill_agent
  local st=""
  for _ in $(seq 100); do
    st=$(sub1 "$P/agent/status" | jq -r .status 2>/dev/null || true)
    [ "$st" = offline ] && break
    sleep 0.1
  done
  [ "$st" = offline ] || fail "$BROKER: no retained offline status (Last Will) after kill -9"
  row "Last Will (kill -9 -> retained offline)" "yes"
  start_agent --mqtt-version 3.1.1

  # MQTT 5: a subscriber and a request/response client (mosquitto_rr).
  local v5 rc=0
  v5=$(mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "$PORT" -t "$P/state/$S" -C 1 -W 3 2>&1) || rc=$?
  echo "# $BROKER: MQTT 5 subscriber: exit $rc: $(head -n 1 <<<"$v5" | cut -c1-100)"
  if [ $rc -eq 0 ] && replied .source <<<"$v5"; then
    local rr5=""
    rr5=$(mosquitto_rr -V mqttv5 -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/source/get" -e "$P/reply/v5" \
      -m "{\"source\":\"$S\"}" -W 5 2>&1) || true
    echo "# $BROKER: MQTT 5 request/response: $(head -n 1 <<<"$rr5" | cut -c1-100)"
    if replied .ok <<<"$rr5"; then
      row "MQTT 5 clients" "accepted, Response Topic works"
    else
      row "MQTT 5 clients" "connect; the agent on 3.1.1 never sees their Response Topic (mosquitto_rr: $(head -n 1 <<<"$rr5" | cut -c1-30)): reply_to in the body"
    fi
  else
    row "MQTT 5 clients" "refused (mosquitto_sub -V mqttv5 exits $rc${v5:+: $(head -n 1 <<<"$v5" | cut -c1-60)}): agent and clients use 3.1.1, reply_to in the body"
  fi
}
