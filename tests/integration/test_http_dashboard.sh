#!/usr/bin/env bash
# The dashboard at / of partreg-http in Debian's headless Chromium, driven
# by playwright-core (http_dashboard_browser.js), against a real mosquitto,
# partregd and partreg-http: a source with two providers, ready partitions,
# a gap, a pending, a failed and a deleted one, and a source named with
# markup; the DOM must show each with its state, the gap, the owner and the
# agent online; a screenshot goes to $PARTREG_BUILD_DIR/http-dashboard.png.
# Then, live over /v1/stream: a lock shows locked, the unlock shows ready
# within a second of its reply (measured in the page), the agent's crash
# (kill -9) shows offline since the page saw it go, its connection lost, partreg-http's stop shows "disconnected", and its restart
# live again.
#
# playwright-core (PW_VERSION) is installed with npm into
# $PARTREG_BUILD_DIR/playwright once: a stamp written after a complete
# install lets the next run reuse it; a lock serialises two runs (ctest -j).
# Skipped (77, said) under the sanitizers (heavy real clients run in the
# plain build only), without Chromium or node >= 20, or when npm cannot
# reach its registry for the first install.
. "$(dirname "$0")/lib.sh"

skip() { echo "SKIP: $*"; FAILED=0; exit 77; }
case "${PARTREG_SANITIZE:-0}" in 1 | ON | on | TRUE | true)
  skip "Chromium runs in the plain build only (this build has the sanitizers)" ;;
esac

CHROMIUM=${PARTREG_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip "no Chromium at $CHROMIUM (Debian's chromium package)"
command -v node >/dev/null || skip "no node (Debian's nodejs) to run playwright-core"
command -v npm >/dev/null || skip "no npm to install playwright-core"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || skip "node $(node --version) is older than playwright-core's minimum (20)"
HTTP=${PARTREG_HTTP:-${PARTREG_BUILD_DIR:?set by ctest}/http/partreg-http}
[ -x "$HTTP" ] || fail "no partreg-http at $HTTP (PARTREG_HTTP, or the build's http/partreg-http)"

# ---- playwright-core, once per build directory ----
PW_VERSION=1.65.1
PW_DIR=$PARTREG_BUILD_DIR/playwright
pw_offline() { grep -qE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|proxy|CERT_|UNABLE_TO_' "$1"; }
pw_install() {
  local t0 want stamp="$PW_DIR/.partreg-stamp" log="$T/npm.log"
  t0=$(date +%s.%N)
  want="playwright-core@$PW_VERSION node-$NODE_MAJOR"
  exec 8>"$PARTREG_BUILD_DIR/playwright.lock"
  flock 8
  PW_REUSED=1
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -f "$PW_DIR/node_modules/playwright-core/package.json" ]; then
    PW_REUSED=0
    echo "  installing $want into $PW_DIR"
    rm -rf "$PW_DIR"
    mkdir -p "$PW_DIR"
    # --ignore-scripts: playwright-core has none, and downloads no browser.
    if ! npm install --prefix "$PW_DIR" --no-audit --no-fund --ignore-scripts --prefer-offline \
      --fetch-timeout 20000 --fetch-retries 1 "playwright-core@$PW_VERSION" >"$log" 2>&1; then
      tail -n 10 "$log"
      rm -rf "$PW_DIR"
      pw_offline "$log" && skip "npm cannot reach its registry to install playwright-core@$PW_VERSION"
      fail "npm install playwright-core@$PW_VERSION failed (log above)"
    fi
    [ "$(node -p "require('$PW_DIR/node_modules/playwright-core/package.json').version")" = "$PW_VERSION" ] ||
      fail "npm installed another playwright-core than $PW_VERSION"
    echo "$want" >"$stamp"
  fi
  flock -u 8
  exec 8>&-
  PW_SECONDS=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
}
pw_install
ok "playwright-core $PW_VERSION in $PW_DIR ($([ "$PW_REUSED" = 1 ] && echo reused || echo installed), ${PW_SECONDS} s)"

T_START=$(date +%s.%N)
start_broker
start_agent

# ---- the registry's state ----
S=web_orders
EVIL=$'<img src=x onerror=alert(1)>&"\'<script>'
EVIL_OWNER='<b>owner<b>'
day() { date -u -d "2024-03-01 +$1 day" +%Y-%m-%dT%H:%M:%SZ; }
TOKEN=$(rr source/register "{\"source\":\"$S\",\"owner\":\"data-team\"}" | jq -r .result.access_token)
[ ${#TOKEN} -eq 36 ] || fail "could not register $S"
for p in etl backfill; do
  rr provider/register "$(jq -cn --arg s "$S" --arg p $p --arg t "$TOKEN" '{source:$s,provider:$p,access_token:$t}')" |
    jq -e .ok >/dev/null || fail "could not register provider $p"
done
r=$(rr source/register "$(jq -cn --arg s "$EVIL" --arg o "$EVIL_OWNER" '{source:$s,owner:$o}')")
expect "$r" '.ok' "a source named with markup registered"
ETOKEN=$(jq -r .result.access_token <<<"$r")
rr provider/register "$(jq -cn --arg s "$EVIL" --arg t "$ETOKEN" '{source:$s,provider:"<i>p",access_token:$t}')" | jq -e .ok >/dev/null ||
  fail "could not register its provider"
rr partition/register "$(jq -cn --arg s "$EVIL" --arg t "$ETOKEN" --arg a "$(day 0)" --arg b "$(day 1)" \
  '{source:$s,provider:"<i>p",start:$a,end:$b,access_token:$t}')" | jq -e .ok >/dev/null || fail "its partition"

# cmd VERB PROVIDER FROM-DAY TO-DAY [JQ-OBJECT]: a partition command of source $S.
cmd() {
  local r
  r=$(rr "partition/$1" "$(jq -cn --arg s "$S" --arg p "$2" --arg a "$(day "$3")" --arg b "$(day "$4")" --arg t "$TOKEN" \
    "{source:\$s,provider:\$p,start:\$a,end:\$b,access_token:\$t} + ${5:-{\}}")")
  jq -e .ok >/dev/null <<<"$r" || fail "partition/$1 $2 $3..$4: $r"
  echo "$r"
}
# ready PROVIDER FROM TO: registered, locked and unlocked.
ready() { cmd register "$@" >/dev/null; cmd lock "$@" >/dev/null; cmd unlock "$@" >/dev/null; }
ready etl 0 1
ready etl 1 2
ready etl 2 3
# etl has nothing from day 3 to day 4: the gap.
ready etl 4 5
cmd register etl 5 6 >/dev/null # pending
cmd register etl 6 7 >/dev/null
cmd lock etl 6 7 >/dev/null
cmd fail etl 6 7 '{reason:"export crashed: <disk full>"}' >/dev/null
cmd register etl 7 8 >/dev/null # pending: the browser locks and unlocks it
cmd register etl 8 9 >/dev/null
cmd delete etl 8 9 >/dev/null
ready backfill 1 3
expect "$(sub1 "$P/state/$S/partitions/$(day 8)/$(day 9)/etl")" '.state == "deleted"' "the deleted one's tombstone is retained"
ok "state: ready days 0-3 and 4-5, a gap at 3-4, pending 5-6, failed 6-7, pending 7-8, deleted 8-9; backfill ready 1-3"

EXPECT=$(jq -cn --arg d0 "$(day 0)" --arg d1 "$(day 1)" --arg d2 "$(day 2)" --arg d3 "$(day 3)" --arg d4 "$(day 4)" \
  --arg d5 "$(day 5)" --arg d6 "$(day 6)" --arg d7 "$(day 7)" --arg d8 "$(day 8)" --arg d9 "$(day 9)" '[
  {provider:"etl", start:$d0, end:$d1, state:"ready"},
  {provider:"etl", start:$d1, end:$d2, state:"ready"},
  {provider:"etl", start:$d2, end:$d3, state:"ready"},
  {provider:"etl", start:$d4, end:$d5, state:"ready"},
  {provider:"etl", start:$d5, end:$d6, state:"pending"},
  {provider:"etl", start:$d6, end:$d7, state:"failed", reason:"export crashed: <disk full>"},
  {provider:"etl", start:$d7, end:$d8, state:"pending"},
  {provider:"etl", start:$d8, end:$d9, state:"deleted"},
  {provider:"backfill", start:$d1, end:$d3, state:"ready"}]')

# ---- partreg-http on a free loopback port ----
HPORT=""
HTTP_ARGV=()
for _ in $(seq 20); do
  HPORT=$(random_port)
  HTTP_ARGV=("$HTTP" --broker "mqtt://127.0.0.1:$PORT" --listen "127.0.0.1:$HPORT" --log-level debug)
  "${HTTP_ARGV[@]}" >>"$T/http.log" 2>&1 &
  HTTP_PID=$!
  PIDS+=("$HTTP_PID")
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$HPORT/healthz" >/dev/null 2>&1 && break 2
    kill -0 "$HTTP_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$HTTP_PID" 2>/dev/null || true
  HTTP_PID=""
done
[ -n "$HTTP_PID" ] || fail "partreg-http did not come up"
B=http://127.0.0.1:$HPORT
ok "partreg-http up on $B"

# The files are served as they are in http/www/, with their types.
W=$PARTREG_SOURCE_DIR/http/www
curl -sf -H 'Accept: text/html,application/xhtml+xml,*/*;q=0.8' -o "$T/index.html" -D "$T/index.h" "$B/" || fail "GET / as a browser"
cmp -s "$T/index.html" "$W/index.html" || fail "GET / (Accept: text/html) is not http/www/index.html"
grep -qi '^content-type: text/html' "$T/index.h" || fail "GET / is not text/html"
for f in app.js:javascript style.css:text/css; do
  curl -sf -o "$T/${f%%:*}" -D "$T/${f%%:*}.h" "$B/${f%%:*}" || fail "GET /${f%%:*}"
  cmp -s "$T/${f%%:*}" "$W/${f%%:*}" || fail "/${f%%:*} is not http/www/${f%%:*}"
  grep -qi "^content-type: .*${f#*:}" "$T/${f%%:*}.h" || fail "/${f%%:*} is not served as ${f#*:}"
done
ok "/, /app.js and /style.css are http/www's files with their types"
grep -nE '(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\( *["'"'"']?(https?:|//)' "$W"/index.html "$W"/app.js "$W"/style.css &&
  fail "the dashboard refers to another site (it must work offline)"
ok "no external URL in the dashboard"

# ---- the browser ----
export PW_MODULE=$PW_DIR/node_modules/playwright-core DASH_CHROMIUM=$CHROMIUM DASH_BASE=$B DASH_SOURCE=$S \
  DASH_EVIL_SOURCE=$EVIL DASH_EVIL_OWNER=$EVIL_OWNER DASH_TOKEN=$TOKEN DASH_EXPECT=$EXPECT \
  DASH_SHOT=$PARTREG_BUILD_DIR/http-dashboard.png DASH_AGENT_PID=$AGENT_PID DASH_HTTP_PID=$HTTP_PID \
  DASH_HTTP_PIDFILE=$T/http2.pid DASH_HTTP_LOG=$T/http.log TMPDIR=$T
DASH_TARGET=$(jq -cn --arg a "$(day 7)" --arg b "$(day 8)" '{provider:"etl",start:$a,end:$b}')
DASH_GAP=$(jq -cn --arg a "$(day 3)" --arg b "$(day 4)" '{provider:"etl",start:$a,end:$b}')
DASH_HTTP_CMD=$(printf '%s\n' "${HTTP_ARGV[@]}" | jq -Rsc 'split("\n")[:-1]')
export DASH_TARGET DASH_GAP DASH_HTTP_CMD
rc=0
node "$(dirname "$0")/http_dashboard_browser.js" 2>&1 | tee "$T/browser.log" || rc=$?
if [ -f "$T/http2.pid" ]; then PIDS+=("$(cat "$T/http2.pid")"); fi
[ "$rc" -eq 0 ] || fail "the dashboard in Chromium (above)"

# The browser killed the agent (-9, a crash).
wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=""
grep -qi "$TOKEN" "$T/http.log" && fail "a token appears in partreg-http's log"
ok "no token in partreg-http's log"
[ -s "$PARTREG_BUILD_DIR/http-dashboard.png" ] || fail "no screenshot"
echo "  unlock reply -> DOM: $(sed -n 's/^time: unlock-reply-to-dom //p' "$T/browser.log") ms"
echo "  timing: playwright ${PW_SECONDS} s ($([ "$PW_REUSED" = 1 ] && echo reused || echo installed)), the rest $(printf '%.1f' "$(echo "$(date +%s.%N) - $T_START" | bc)") s"
pass
