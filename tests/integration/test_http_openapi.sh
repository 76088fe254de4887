#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# http/openapi.json against the OpenAPI 3.1 meta-schema and the real
# partreg-http (issue 14, point 2):
#  - openapi-spec-validator (from PyPI, in a venv under the build directory
#    made once and reused: a stamp file after a complete install, a lock
#    for ctest -j) validates the document; pip unable to reach its index
#    skips that part only, said;
#  - tests/unit/check_openapi.py --live against a real mosquitto, partregd
#    and partreg-http: /openapi.json is the file, every operation of the
#    document is called with real arguments and answers a status it lists
#    with a body matching that status's schema, and every route /metrics
#    counted is in the document;
#  - /docs rendered in headless Chromium (when installed) shows every
#    operation of the document.
# The venv and Chromium are heavy real clients: under PARTREG_SANITIZE the
# test exits 77 (the static checks run in unit.openapi there too).
. "$(dirname "$0")/lib.sh"
case "${PARTREG_SANITIZE:-0}" in 1 | ON | on | TRUE | true)
  echo "SKIP: the OpenAPI validator's venv and Chromium run in the plain build only (this build has the sanitizers)"
  FAILED=0
  exit 77 ;;
esac
command -v curl >/dev/null || { echo "SKIP: no curl"; FAILED=0; exit 77; }
HTTPD=${PARTREG_HTTP:-${PARTREG_BUILD_DIR:?set by ctest}/http/partreg-http}
[ -x "$HTTPD" ] || fail "no partreg-http at $HTTPD (PARTREG_HTTP)"
DOC=$PARTREG_SOURCE_DIR/http/openapi.json
CHECK=$PARTREG_SOURCE_DIR/tests/unit/check_openapi.py

# ---- the venv with openapi-spec-validator ----
OAS_VERSION=0.9.0
VENV=$PARTREG_BUILD_DIR/openapi-venv
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
want="openapi-spec-validator==$OAS_VERSION python=$("$PY" -c 'import sys; print(sys.version.split()[0])')"
exec 8>"$PARTREG_BUILD_DIR/openapi-venv.lock"
flock 8
VPY=""
if [ "$(cat "$VENV/.partreg-stamp" 2>/dev/null)" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  VPY=$VENV/bin/python
  ok "reusing $VENV ($want)"
else
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || fail "$PY -m venv $VENV"
  if "$VENV/bin/pip" install --disable-pip-version-check --timeout 20 --retries 1 \
    "openapi-spec-validator==$OAS_VERSION" >"$T/pip.log" 2>&1; then
    echo "$want" >"$VENV/.partreg-stamp"
    VPY=$VENV/bin/python
    ok "made $VENV ($want)"
  elif grep -qE 'NewConnectionError|Max retries exceeded|ConnectTimeout|ReadTimeout|Temporary failure in name resolution|Name or service not known|Network is unreachable|Connection refused|SSLError|ProxyError|No matching distribution' "$T/pip.log"; then
    tail -n 3 "$T/pip.log"
    rm -rf "$VENV"
    echo "NOTE: pip cannot reach its index: the OpenAPI 3.1 meta-schema check is skipped, the rest runs"
  else
    tail -n 20 "$T/pip.log"
    fail "pip install openapi-spec-validator==$OAS_VERSION"
  fi
fi
flock -u 8
if [ -n "$VPY" ]; then
  "$VPY" "$CHECK" --root "$PARTREG_SOURCE_DIR" --require-validator >"$T/static.log" 2>&1 ||
    { cat "$T/static.log"; fail "check_openapi.py (with openapi-spec-validator)"; }
  grep '^ok - valid OpenAPI' "$T/static.log" || fail "openapi-spec-validator did not run"
else
  VPY=$PY
fi

# ---- the real daemon ----
start_broker
start_agent
for _ in $(seq 20); do
  hp=$(random_port)
  "$HTTPD" --broker "mqtt://127.0.0.1:$PORT" --listen "127.0.0.1:$hp" --log-level debug >>"$T/http.log" 2>&1 &
  HTTP_PID=$!
  PIDS+=("$HTTP_PID")
  H="http://127.0.0.1:$hp"
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$H/readyz")" = 200 ] && break 2
    kill -0 "$HTTP_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$HTTP_PID" 2>/dev/null || true
  H=""
done
[ -n "$H" ] || fail "partreg-http did not become ready"
ok "partreg-http ready at $H"

curl -sf "$H/openapi.json" -o "$T/served.json" || fail "GET /openapi.json"
cmp -s "$T/served.json" "$DOC" || fail "/openapi.json is not http/openapi.json byte for byte"
ok "/openapi.json is http/openapi.json byte for byte"
"$VPY" "$CHECK" --root "$PARTREG_SOURCE_DIR" --live "$H" >"$T/live.log" 2>&1 ||
  { cat "$T/live.log"; fail "check_openapi.py --live"; }
grep '^ok' "$T/live.log"

# A route that is not in the document is 404 not_found (the daemon serves
# nothing else under these names).
for path in /v2/sources /v1/nope/nothing /admin /sources; do
  c=$(curl -s -o "$T/nf.json" -w '%{http_code}' "$H$path")
  [ "$c" = 404 ] || [ "$c" = 405 ] || fail "GET $path: $c, expected 404 (not in the document)"
done
ok "paths outside the document: 404"

# ---- /docs in a real browser ----
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
  echo "NOTE: no chromium: /docs is not rendered here"
else
  timeout 90 "$CHROME" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --user-data-dir="$T/chrome" --virtual-time-budget=10000 --dump-dom "$H/docs" >"$T/docs.dom" 2>>"$T/chrome.log" ||
    fail "chromium --dump-dom $H/docs"
  n=$(jq '[.paths[] | keys[] | select(. as $m | ["get","put","post","delete","patch","head","options","trace"] | index($m))] | length' "$DOC")
  grep -q "data-rendered=\"$n\"" "$T/docs.dom" || { head -c 2000 "$T/docs.dom"; fail "/docs did not render the $n operations"; }
  for route in $(jq -r '.paths | to_entries[] | .key as $p | .value | keys[] | select(. == "get" or . == "post") | ascii_upcase + "_" + $p' "$DOC"); do
    grep -qF "data-route=\"${route/_/ }\"" "$T/docs.dom" || fail "/docs does not show ${route/_/ }"
  done
  ok "/docs in headless Chromium shows the document's $n operations"
fi
grep -q "$(jq -r '.info.title' "$DOC")" "$T/docs.dom" 2>/dev/null || [ -z "$CHROME" ] || fail "/docs: no title"
pass
