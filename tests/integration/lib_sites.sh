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
    local port=${SITE_PORT[$name]:-$((20000 + RANDOM % 40000))}
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
