#!/usr/bin/env bash
# partregd's command line, environment and config file: --help and
# --version; every kind of bad input exits 2 naming the option and touches
# nothing; with a broker, precedence (file < environment < flag, pairwise
# and all three), --data-dir from the file, --client-id, --mqtt-version,
# --log-level error, and SIGINT / SIGHUP.
. "$(dirname "$0")/lib.sh"

# Nothing from the caller's environment may leak into these runs.
for v in $(compgen -e | grep '^PARTREG_' || true); do
  case $v in PARTREG_SOURCE_DIR | PARTREG_BUILD_DIR) ;; *) unset "$v" ;; esac
done
: >>"$T/agent.log"

# run OUT ERR ARGS...: partregd, bounded in time (RUN_TIMEOUT s, default 20);
# its exit code in RC (124: still running then).
run() {
  local out=$1 err=$2
  shift 2
  RC=0
  timeout -s KILL "${RUN_TIMEOUT:-20}" "$@" >"$T/$out" 2>"$T/$err" || RC=$?
  sanitizer_clean "$T/$err"
}

# ---- --help and --version
run help.out help.err "$PARTREGD" --help
[ $RC -eq 0 ] || fail "--help exited $RC"
[ ! -s "$T/help.err" ] || fail "--help wrote to stderr"
# The options section: from "options:" to the next blank line.
awk '/^options:$/ { f = 1; next } /^$/ { f = 0 } f' "$T/help.out" >"$T/help.opts"
# The options this test knows, and every option of config.c's table and of
# the broker options it takes from common/options.h (so a new one is
# checked too): each listed once, with its PARTREG_* variable.
KNOWN="broker username password-file cafile cert key data-dir prefix client-id log-level config
  mqtt-version max-payload session-expiry map-size batch-max idempotency-ttl summary-max help version"
TABLE=$(cat "$PARTREG_SOURCE_DIR/src/config.c" "$PARTREG_SOURCE_DIR/common/options.h" |
  grep -E '^[[:space:]]+[{][[:space:]]*"[a-z-]+",' |
  sed -E 's/^[^"]*"([a-z-]+)".*/\1/')
for o in $KNOWN; do
  grep -qx -- "$o" <<<"$TABLE" || fail "--$o is no longer in config.c's option table"
done
for o in $TABLE; do
  [ "$(grep -cE "^  --$o " "$T/help.opts")" -eq 1 ] || fail "--help does not list --$o once"
  case $o in help | version | takeover) ;; *)
    env=PARTREG_$(tr 'a-z-' 'A-Z_' <<<"$o")
    grep -qE "^  --$o .*\[$env\]$" "$T/help.opts" || fail "--help does not name $env for --$o" ;;
  esac
done
n_src=$(wc -l <<<"$TABLE")
n_help=$(grep -cE '^  --[a-z-]+ ' "$T/help.opts")
[ "$n_help" -eq "$n_src" ] || fail "options: $n_help in --help, $n_src in config.c"
ok "--help exits 0 and lists all $n_src options with their PARTREG_* variables"

VERSION=$(sed -nE 's/^project\(partreg VERSION ([0-9.]+) .*/\1/p' "$PARTREG_SOURCE_DIR/CMakeLists.txt")
[ -n "$VERSION" ] || fail "no version in CMakeLists.txt"
run version.out version.err "$PARTREGD" --version
[ $RC -eq 0 ] || fail "--version exited $RC"
grep -qx "partregd $VERSION (protocol v[0-9]*)" "$T/version.out" || fail "--version printed '$(cat "$T/version.out")', expected partregd $VERSION"
ok "--version prints partregd $VERSION and exits 0"

# Accepted spellings (so the refusals below are about the values).
run ok.out ok.err "$PARTREGD" --mqtt-version 3.1.1 --max-payload=1024 --session-expiry 0 \
  --map-size 64 --batch-max 1 --idempotency-ttl 60 --summary-max 5 --log-level warn --version
[ $RC -eq 0 ] || fail "valid values refused: $(cat "$T/ok.err")"
ok "valid values in both spellings (--opt v, --opt=v) are accepted"

# ---- refusals: exit 2, the offending option named on stderr, nothing started
# (no data directory, no broker contacted).
NEVER="$T/never"
# refuse DESCRIPTION PATTERN [env VAR=VALUE...] -- ARGS...
refuse() {
  local what=$1 pat=$2
  shift 2
  local pre=()
  while [ "$1" != -- ]; do pre+=("$1"); shift; done
  shift
  run bad.out bad.err "${pre[@]}" "$PARTREGD" --broker mqtt://127.0.0.1:9 --data-dir "$NEVER" "$@"
  [ $RC -ne 137 ] || fail "$what: partregd started (still running after ${RUN_TIMEOUT:-20} s) instead of exiting 2"
  [ $RC -eq 2 ] || fail "$what: exit $RC, expected 2 (stderr: $(cat "$T/bad.err"))"
  grep -qE -- "$pat" "$T/bad.err" || fail "$what: stderr '$(cat "$T/bad.err")' does not match /$pat/"
  [ ! -e "$NEVER" ] || fail "$what: partregd created its data directory"
  ok "$what: exit 2, '$(head -n 1 "$T/bad.err")'"
}
refuse "unknown flag" "unknown option '--colour'" -- --colour blue
refuse "unknown flag with =" "unknown option '--colour=blue'" -- --colour=blue
refuse "stray argument" "unexpected argument 'serve'" -- serve
refuse "missing value" "option --prefix needs a value" -- --prefix
refuse "missing value (--config)" "option --config needs a value" -- --config
refuse "non-numeric --max-payload" "invalid value 'abc' for max-payload" -- --max-payload abc
refuse "zero --max-payload" "invalid value '0' for max-payload" -- --max-payload=0
refuse "trailing junk" "invalid value '10k' for batch-max" -- --batch-max 10k
refuse "negative --session-expiry" "invalid value '-1' for session-expiry" -- --session-expiry -1
refuse "overflowing --session-expiry" "invalid value '4294967296' for session-expiry" -- --session-expiry 4294967296
refuse "overflowing --map-size" "invalid value '99999999999999999999999' for map-size" -- --map-size 99999999999999999999999
refuse "--mqtt-version 4.5" "invalid value '4.5' for mqtt-version" -- --mqtt-version 4.5
refuse "--mqtt-version 3" "invalid value '3' for mqtt-version" -- --mqtt-version 3
refuse "--log-level loud" "--log-level must be" -- --log-level loud
refuse "bad environment value" "PARTREG_MAX_PAYLOAD: invalid value 'abc' for max-payload" env PARTREG_MAX_PAYLOAD=abc --
refuse "bad PARTREG_LOG_LEVEL" "--log-level must be" env PARTREG_LOG_LEVEL=verbose --

printf '# a comment\n\nprefix = x/y\ncolour = blue\n' >"$T/unknown.conf"
refuse "unknown config-file key" "unknown.conf:4: unknown key 'colour'" -- --config "$T/unknown.conf"
refuse "unknown key, file named by PARTREG_CONFIG" "unknown.conf:4: unknown key 'colour'" env PARTREG_CONFIG="$T/unknown.conf" --
printf 'help = 1\n' >"$T/flagkey.conf"
refuse "a flag-only key in the config file" "flagkey.conf:1: unknown key 'help'" -- --config "$T/flagkey.conf"
printf 'config = %s\n' "$T/unknown.conf" >"$T/nested.conf"
refuse "config key in the config file" "nested.conf:1: unknown key 'config'" -- --config "$T/nested.conf"
printf 'batch-max = many\n' >"$T/badvalue.conf"
refuse "bad value in the config file" "badvalue.conf:1: invalid value 'many' for batch-max" -- --config "$T/badvalue.conf"
printf 'prefix x/y\n' >"$T/noeq.conf"
refuse "config line without '='" "noeq.conf:1: expected 'key = value'" -- --config "$T/noeq.conf"
refuse "missing config file" "cannot read config file $T/nothere.conf" -- --config "$T/nothere.conf"

# ---- with a broker
start_broker
BROKER="mqtt://127.0.0.1:$PORT"

# launch LOG COMMAND...: start partregd (possibly through env), no waiting.
launch() {
  local log=$1
  shift
  "$@" >>"$T/$log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
}

# online_prefixes: the candidate prefixes whose retained agent status is
# "online" (earlier agents were stopped: offline), one a line. Takes 1 s.
CANDIDATES=(from/file from/env from/flag partreg/v1)
online_prefixes() {
  local a=() t p
  for p in "${CANDIDATES[@]}"; do a+=(-t "$p/agent/status"); done
  { mosquitto_sub -h 127.0.0.1 -p "$PORT" --retained-only -W 1 -F '%t %p' "${a[@]}" 2>/dev/null || true; } |
    while read -r t p; do
      [ "$(jq -r .status <<<"$p" 2>/dev/null)" != online ] || echo "${t%/agent/status}"
    done
}

# stop_with SIGNAL LOG PREFIX: partregd exits 0 within 10 s, leaves an
# offline status under PREFIX and no sanitizer report.
stop_with() {
  kill -"$1" "$AGENT_PID"
  local rc=0
  for _ in $(seq 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$AGENT_PID" 2>/dev/null && fail "partregd did not stop within 10 s of SIG$1"
  wait "$AGENT_PID" || rc=$?
  [ $rc -eq 0 ] || fail "partregd exited $rc after SIG$1"
  sanitizer_clean "$T/$2"
  [ "$(sub1 "$3/agent/status" | jq -r .status)" = offline ] || fail "no retained offline status under $3 after SIG$1"
  AGENT_PID=""
}

# expect_prefix WANT DESCRIPTION [LOG]: the agent came online under WANT
# and no other candidate. With LOG, its "agent: online" line is awaited first.
expect_prefix() {
  local got="" log=${3:-agent.log}
  for _ in $(seq 100); do
    kill -0 "$AGENT_PID" 2>/dev/null || fail "$2: partregd exited"
    if [ "$(grep -c 'agent: online (epoch' "$T/$log")" -gt "${ONLINE_SEEN:-0}" ] || [ "$log" = quiet.log ]; then
      got=$(online_prefixes)
      [ -z "$got" ] || break
    fi
    sleep 0.1
  done
  ONLINE_SEEN=$(grep -c 'agent: online (epoch' "$T/agent.log" || true)
  [ -n "$got" ] || fail "$2: not online under any of ${CANDIDATES[*]}"
  [ "$got" = "$1" ] || fail "$2: online under '$(echo $got)', expected '$1'"
  ok "$2: online under $1"
}

cat >"$T/agent.conf" <<EOF
# partregd test config
broker = $BROKER
prefix = from/file   # trailing comment
data-dir = $T/filedata
log-level = debug
EOF

# file only; its data-dir holds the LMDB store; the default client id
# follows the prefix; SIGHUP is ignored.
launch agent.log "$PARTREGD" --config "$T/agent.conf"
expect_prefix from/file "config file alone"
[ -f "$T/filedata/data.mdb" ] || fail "no LMDB store (data.mdb) in the config file's data-dir $T/filedata"
[ ! -e "$T/data" ] || fail "a store appeared outside the configured data-dir"
ok "data-dir from the config file holds the LMDB store"
grep -q "New client connected from .* as partregd:from/file (p5," "$T/broker.log" || fail "default client id partregd:from/file not in the broker log"
expect "$(sub1 from/file/agent/status)" '.agent_id == "partregd:from/file"' "default client id partregd:<prefix>, MQTT 5"
kill -HUP "$AGENT_PID"
sleep 0.3
kill -0 "$AGENT_PID" 2>/dev/null || fail "partregd exited on SIGHUP"
grep -q "SIGHUP ignored" "$T/agent.log" || fail "SIGHUP not logged"
[ "$(sub1 from/file/agent/status | jq -r .status)" = online ] || fail "not online after SIGHUP"
ok "SIGHUP ignored (logged, still online)"
stop_with TERM agent.log from/file

# file < environment
launch agent.log env PARTREG_PREFIX=from/env "$PARTREGD" --config "$T/agent.conf"
expect_prefix from/env "file + environment"
stop_with TERM agent.log from/env

# file < flag; also --mqtt-version from a flag reaches the broker
launch agent.log "$PARTREGD" --config "$T/agent.conf" --prefix from/flag --mqtt-version 3.1.1
expect_prefix from/flag "file + flag"
grep -q "as partregd:from/flag (p2," "$T/broker.log" || fail "--mqtt-version 3.1.1: the broker did not see MQTT 3.1.1 (p2)"
ok "--mqtt-version 3.1.1 connects with MQTT 3.1.1"
stop_with TERM agent.log from/flag

# environment < flag (no file); --client-id is the MQTT client id
CID="flags-test-$$-$RANDOM"
launch agent.log env PARTREG_PREFIX=from/env PARTREG_BROKER="$BROKER" PARTREG_DATA_DIR="$T/envdata" \
  "$PARTREGD" --prefix from/flag --client-id "$CID" --log-level debug
expect_prefix from/flag "environment + flag"
[ -f "$T/envdata/data.mdb" ] || fail "PARTREG_DATA_DIR not used"
grep -q "New client connected from .* as $CID (p5," "$T/broker.log" || fail "--client-id $CID not in the broker log"
expect "$(sub1 from/flag/agent/status)" ".agent_id == \"$CID\"" "--client-id is the MQTT client id (broker log, status)"
stop_with TERM agent.log from/flag

# file < environment < flag, the file named by PARTREG_CONFIG; data-dir
# from the environment over the file; stopped with SIGINT.
launch agent.log env PARTREG_CONFIG="$T/agent.conf" PARTREG_PREFIX=from/env PARTREG_DATA_DIR="$T/envdata" \
  "$PARTREGD" --prefix from/flag
expect_prefix from/flag "file (PARTREG_CONFIG) + environment + flag"
grep 'agent: partregd ' "$T/agent.log" | tail -n 1 | grep -q "store $T/envdata, .* prefix from/flag$" || fail "startup line does not show store $T/envdata, prefix from/flag"
ok "PARTREG_DATA_DIR wins over the file's data-dir"
stop_with INT agent.log from/flag
grep -q "partregd: Interrupt received; stopping" "$T/agent.log" || fail "SIGINT not logged"
ok "SIGINT stops partregd: exit 0, offline status"

# --log-level error: no info, warn or debug lines, from start to stop
launch quiet.log "$PARTREGD" --broker "$BROKER" --data-dir "$T/quietdata" --prefix from/flag --log-level error
expect_prefix from/flag "--log-level error" quiet.log
stop_with TERM quiet.log from/flag
! grep -qE '^[^ ]+ (warn|info|debug) ' "$T/quiet.log" || fail "--log-level error: $(grep -E '^[^ ]+ (warn|info|debug) ' "$T/quiet.log" | head -n 1)"
[ ! -s "$T/quiet.log" ] || fail "--log-level error: unexpected output: $(head -n 1 "$T/quiet.log")"
grep -qE '^[^ ]+ info ' "$T/agent.log" || fail "the default agents logged no info lines (the check above proves nothing)"
ok "--log-level error suppresses info lines"

# ---- known bug (see the report): a prefix with an MQTT wildcard cannot work
# (the will and status topics are invalid, the broker drops every connect,
# and the log blames TCP), so it must be refused up front like a bad number.
RUN_TIMEOUT=3 refuse "prefix with a wildcard" "prefix" -- --prefix 'a/+'
pass
