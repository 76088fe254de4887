# SPDX-License-Identifier: MIT
# Helpers for the tests of partreg-http (the HTTP front door), sourced after
# lib.sh: start it on a free loopback port against this test's broker, call
# it with curl, stop it and check it stopped cleanly.
: "${PARTREG_HTTP:?set by ctest: path to partreg-http}"
HTTP_PID=""
HPORT=""
H=""

# start_http [extra flags...]: on a free port (retried when taken), log in
# $T/http.log at debug level; waits until /healthz answers and, with the
# broker up, until the mirror knows the retained agent status (or 3 s: none
# may be retained). Sets H (its URL).
start_http() {
  local scheme=http
  case " $* " in *" --tls-cert "*) scheme=https ;; esac
  for _ in $(seq 20); do
    HPORT=$(random_port)
    "$PARTREG_HTTP" --broker "mqtt://127.0.0.1:$PORT" --listen "127.0.0.1:$HPORT" \
      --log-level debug "$@" >>"$T/http.log" 2>&1 &
    HTTP_PID=$!
    PIDS+=("$HTTP_PID")
    H=$scheme://127.0.0.1:$HPORT
    for _ in $(seq 50); do
      if curl -sk -o /dev/null "$H/healthz"; then
        broker_up || return 0
        for _ in $(seq 30); do
          [ "$(curl -sk "$H/readyz" | jq -r .agent 2>/dev/null)" != unknown ] && return 0
          sleep 0.1
        done
        return 0
      fi
      kill -0 "$HTTP_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$HTTP_PID" 2>/dev/null || true
    wait "$HTTP_PID" 2>/dev/null || true
  done
  fail "could not start partreg-http"
}

# stop_http [SIGNAL]: partreg-http must exit 0 within 10 s, with no
# sanitizer report in its log.
stop_http() {
  kill -"${1:-TERM}" "$HTTP_PID"
  local rc=0
  for _ in $(seq 100); do kill -0 "$HTTP_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$HTTP_PID" 2>/dev/null && fail "partreg-http did not stop within 10 s of SIG${1:-TERM}"
  wait "$HTTP_PID" || rc=$?
  [ $rc -eq 0 ] || fail "partreg-http exited $rc after SIG${1:-TERM}"
  sanitizer_clean "$T/http.log"
  HTTP_PID=""
}

# hcall METHOD PATH [curl args...]: one request; sets HS (HTTP status), HB
# (body) and HCT (Content-Type).
hcall() {
  local m=$1 p=$2 out
  shift 2
  out=$(curl -sS -k -o "$T/hbody" -w '%{http_code} %{content_type}' -X "$m" "$@" "$H$p") || true
  HS=${out%% *}
  HCT=${out#* }
  HB=$(cat "$T/hbody" 2>/dev/null || true)
}

# hq METHOD PATH NAME=VALUE...: a request with its parameters in the query
# string (URL-encoded, so "2023-01-01 00:00:00" may be given as is), like
# the original service's callers; -H and other curl options may follow --.
hq() {
  local m=$1 p=$2 args=() extra=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=(--data-urlencode "$1"); shift; done
  [ "${1:-}" = -- ] && { shift; extra=("$@"); }
  hcall "$m" "$p" -G "${args[@]}" "${extra[@]}"
}

# hexpect STATUS JQ DESCRIPTION: the last reply had HTTP status STATUS and
# its body satisfies JQ.
hexpect() {
  [ "$HS" = "$1" ] || { echo "body: $HB" >&2; fail "$3: HTTP $HS, expected $1"; }
  expect "$HB" "$2" "$3 (HTTP $1)"
}
