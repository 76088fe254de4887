#!/usr/bin/env bash
# partreg-http's limits and refusals, and its options: a body over
# --max-body is 413 (announced by Content-Length or sent chunked); bad JSON
# 400; an unknown route 404; a wrong method 405; a bad time 422 (original
# routes) or 400 (/v1) naming the parameter; --max-streams caps the event
# streams below --max-connections, beyond which a connection is closed at
# once; tokens in query strings, headers
# and bodies never reach the debug log, not even on refusals; options as
# partregd's (flag > PARTREG_HTTP_* > config file, --help, --version, exit
# 2 naming a bad one); SIGINT stops it cleanly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_http.sh"
start_broker
start_agent
start_http --max-body 1024 --max-connections 3 --max-streams 2


hq POST /sources/register source_name=bad_src owner=o
TOKEN=$(jq -r .registered_object.access_token.token <<<"$HB")
[ ${#TOKEN} -eq 36 ] || fail "source not registered"

# ---- body size
head -c 2000 /dev/zero | tr '\0' 'x' >"$T/big"
hcall POST /v1/source/get --data-binary @"$T/big"
hexpect 413 '.ok == false and .status == 413 and .error.code == "payload_too_large" and (.error.message | test("max-body"))' "a 2000-byte body over --max-body 1024 (Content-Length): 413"
hcall POST /v1/source/get -H 'Transfer-Encoding: chunked' --data-binary @"$T/big"
hexpect 413 '.error.code == "payload_too_large"' "the same body sent chunked (no Content-Length): 413"
hcall POST /partitions/lock -H "Authorization: Bearer $TOKEN" --data-binary @"$T/big"
hexpect 413 '.status == 413' "an oversize body on an original route: 413"
printf '{"source":"bad_src","pad":"%s"}' "$(head -c 900 /dev/zero | tr '\0' 'y')" >"$T/fits"
hcall POST /v1/source/get --data-binary @"$T/fits"
hexpect 400 '.error.code == "invalid_field"' "a body under the limit reaches the agent (its invalid_field for pad)"

# ---- malformed requests
hcall POST /v1/source/get --data-binary '{"source":'
hexpect 400 '.error.code == "bad_request" and (.error.message | test("JSON"))' "truncated JSON: 400"
hcall POST /v1/source/get --data-binary "{\"source\":\"bad_src\",\"access_token\":\"$TOKEN\"} trailing"
hexpect 400 '.error.code == "bad_request"' "JSON with trailing garbage: 400"
hcall GET /nope
hexpect 404 '.status == 404 and .error.code == "not_found" and (.error.message | test("/nope"))' "unknown route: 404 naming it"
hcall GET /sources/bad_src/elsewhere
hexpect 404 '.error.code == "not_found"' "unknown route under /sources: 404"
hcall PUT /sources/register
hexpect 405 '.error.code == "method_not_allowed"' "PUT on a POST route: 405"
hcall POST /healthz
hexpect 405 '.error.code == "method_not_allowed"' "POST /healthz: 405"
hcall POST /v1/stream
hexpect 405 '.status == 405' "POST /v1/stream: 405"
hq GET /sources/bad_src/check_readiness "start=2024-13-01 00:00:00" end=2024-01-02
hexpect 422 '.detail[0].loc == ["query", "start"]' "month 13: 422 naming start"
hq POST /partitions/lock start=2024-01-01 "end=2024-01-02 25:00:00" source_name=bad_src provider_name=p access_token=$TOKEN
hexpect 422 '.detail[0].loc == ["query", "end"] and (.detail | length) == 1' "hour 25: 422 naming end (only end)"
hq POST /partitions/unlock start=2024-01-01 end=2024-01-02 source_name=bad_src provider_name=p fence=-1 -- -H "Authorization: Bearer $TOKEN"
hexpect 422 '.detail[0].loc == ["query", "fence"]' "negative fence: 422 naming fence"
hq POST /partitions/lock source_name=bad_src access_token=$TOKEN
hexpect 422 '([.detail[].loc[1]] | sort) == ["end", "provider_name", "start"]' "three missing parameters: 422 naming all three"

# ---- names the agent refuses are refused here, at once, named (they used
# to reach the agent, whose reply never came: 504 after 10 s)
t0=$(date +%s.%N)
hcall POST '/sources/register?source_name=%FF%FE&owner=o'
hexpect 422 '.detail[0].loc == ["query", "source_name"]' "a source name that is not UTF-8: 422 naming source_name"
hcall POST '/sources/register?source_name=fine&owner=%C2%85'
hexpect 422 '.detail[0].loc == ["query", "owner"]' "an owner with a C1 control character: 422 naming owner"
hcall GET '/sources/%FF/check_readiness?start=2024-01-01&end=2024-01-02'
hexpect 422 '.detail[0].loc == ["path", "source_name"] or .detail[0].loc == ["query", "source_name"]' "check_readiness of a source named by invalid UTF-8: 422"
hcall GET '/v1/sources/%EF%B7%90'
hexpect 400 '.ok == false and (.error.message | test("source"))' "a /v1 source name with a noncharacter (U+FDD0): 400 naming source"
# (Each was 10 s when the agent was asked; a loaded machine may take a few.)
[ "$(echo "$(date +%s.%N) - $t0 < 8" | bc)" = 1 ] || fail "the refusals of bad names took 8 s or more"
ok "bad names refused at once"
# /v1/readiness/query with a request_id or token the agent would refuse is
# the agent's to answer (not answered locally with a 200).
hcall POST /v1/readiness/query --data-binary '{"source":"bad_src","start":"2024-01-01","end":"2024-01-02","request_id":""}'
hexpect 400 '.error.code == "invalid_field" and (.error.message | test("request_id"))' "readiness/query with an empty request_id: the agent's 400"
hcall POST /v1/readiness/query --data-binary '{"source":"bad_src","start":"2024-01-01","end":"2024-01-02","access_token":7}'
hexpect 400 '.error.code == "invalid_field" and (.error.message | test("access_token"))' "readiness/query with a numeric access_token: the agent's 400"
hq GET /v1/sources/bad_src/readiness start=2024-01-01 end=2024-01-02x
hexpect 400 '.error.code == "bad_request" and (.error.message | test("query parameter end"))' "/v1 readiness with a bad end: 400 naming end"
hq GET /v1/sources/bad_src/readiness start=2024-01-02 end=2024-01-01
hexpect 422 '.error.code == "invalid_interval"' "/v1 readiness with start after end: 422"

# ---- GET / and Accept
hcall GET / -H 'Accept: application/json'
hexpect 200 '.status_code == 200' "GET / with Accept: application/json"
[[ $HCT == application/json* ]] || fail "Content-Type $HCT"
if [ -f "$PARTREG_SOURCE_DIR/http/www/index.html" ]; then
  hcall GET / -H 'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
  [ "$HS" = 200 ] && [[ $HCT == text/html* ]] || fail "GET / as a browser: $HS $HCT"
  ok "GET / as a browser: the dashboard, text/html"
fi
hcall GET /healthz
[ "$HS" = 200 ] && [ "$HB" = ok ] && [[ $HCT == text/plain* ]] || fail "/healthz: $HS $HCT '$HB'"
ok "/healthz: 200 ok, text/plain"
hcall GET /metrics
[ "$HS" = 200 ] && [[ $HCT == "text/plain; version=0.0.4"* ]] || fail "/metrics: $HS $HCT"
ok "/metrics: Prometheus text format 0.0.4"
hcall GET /redoc
[ "$HS" = 308 ] || fail "/redoc: $HS"
ok "/redoc: 308"

# ---- streams (--max-streams 2) and connections (--max-connections 3)
for i in 1 2; do
  curl -sN "$H/v1/stream" >"$T/stream$i" 2>/dev/null &
  eval "SSE$i=\$!"
  PIDS+=($!)
  for _ in $(seq 50); do grep -q snapshot-end "$T/stream$i" && break; sleep 0.1; done
  grep -q snapshot-end "$T/stream$i" || fail "stream $i did not start"
done
hcall GET /v1/stream --max-time 5
hexpect 503 '.error.code == "too_many_streams" and (.error.message | test("max-streams"))' "a third stream over --max-streams 2: 503"
hcall GET /healthz
[ "$HS" = 200 ] || fail "/healthz with two streams open: $HS"
ok "two streams open, /healthz still answers (streams cannot take every connection)"
# A silent connection takes the last slot: at the limit libmicrohttpd
# closes a new connection at once (the client can go elsewhere, or retry).
exec 5<>"/dev/tcp/127.0.0.1/$HPORT"
sleep 0.3
rc=0
t0=$(date +%s.%N)
curl -sS -o /dev/null --max-time 8 "$H/healthz" 2>"$T/curl.err" || rc=$?
# 52: closed before a reply; 56: reset (closed with the request unread).
[ $rc -eq 52 ] || [ $rc -eq 56 ] ||
  fail "a fourth connection with --max-connections 3: curl exit $rc, $(cat "$T/curl.err") (expected 52 or 56, closed)"
[ "$(echo "$(date +%s.%N) - $t0 < 5" | bc)" = 1 ] || fail "the fourth connection was not closed at once"
grep -q "reached connection limit" "$T/http.log" || fail "no word of the connection limit in the log"
ok "--max-connections 3: a fourth connection is closed at once while three are open"
kill "$SSE1"
wait "$SSE1" 2>/dev/null || true
for _ in $(seq 30); do hcall GET /healthz; [ "$HS" = 200 ] && break; sleep 0.1; done
[ "$HS" = 200 ] && [ "$HB" = ok ] || fail "no slot freed by a closed stream: $HS"
ok "a closed stream frees its slot: a new connection is served"
# The silent one goes at --idle-timeout (not waited for here); close it.
kill "$SSE2"
exec 5>&-

# ---- tokens never logged (query, header, body; accepted and refused)
hq POST /partitions/register start=2024-01-01 end=2024-01-02 source_name=bad_src provider_name=nobody access_token=$TOKEN
hcall POST /v1/partition/register --data-binary "{\"source\":\"bad_src\",\"provider\":\"x\",\"start\":\"2024-01-01\",\"end\":\"2024-01-02\",\"access_token\":\"$TOKEN\"}"
hcall POST "/v1/source/get?access_token=$TOKEN" -H "Authorization: Bearer $TOKEN" --data-binary '{"source":'
hcall GET "/nope?access_token=$TOKEN"
hq POST /partitions/lock start=bad source_name=bad_src provider_name=p access_token=$TOKEN
hcall POST "/v1/source/get?access_token=$TOKEN" --data-binary @"$T/big"
grep -q 'debug http: POST /partitions/lock -> 422' "$T/http.log" || fail "the debug log has no request lines (the check below would prove nothing)"
grep -q -- "$TOKEN" "$T/http.log" && fail "the token is in partreg-http's log: $(grep -- "$TOKEN" "$T/http.log" | head -n 1)"
grep -q 'access_token=' "$T/http.log" && fail "a query string is in the log"
ok "no token in the debug log (query, Authorization, body; accepted and refused requests)"
stop_http INT
grep -q 'Interrupt received; stopping' "$T/http.log" || fail "SIGINT not logged"
ok "SIGINT: exit 0"

# ---- options: as partregd's (common/options.c), prefix PARTREG_HTTP_
rc=0
"$PARTREG_HTTP" --help >"$T/help" 2>"$T/e" || rc=$?
[ $rc -eq 0 ] || fail "--help exit $rc"
for o in broker prefix listen max-connections max-body request-timeout tls-cert tls-key log-level config; do
  env=PARTREG_HTTP_$(tr 'a-z-' 'A-Z_' <<<"$o")
  grep -qE "^  --$o .*\[$env\]$" "$T/help" || fail "--help does not list --$o with $env"
done
ok "--help lists the options with their PARTREG_HTTP_* variables"
"$PARTREG_HTTP" --version | grep -cE '^partreg-http [0-9]+\.[0-9]+\.[0-9]+' >/dev/null || fail "--version"
ok "--version"
bad() {
  local pat=$1
  shift
  rc=0
  env "$@" >"$T/o" 2>"$T/e" || rc=$?
  [ $rc -eq 2 ] && grep -qE -- "$pat" "$T/e" || fail "$*: exit $rc, '$(cat "$T/e")' (expected 2, /$pat/)"
  ok "refused (2): $(head -n 1 "$T/e")"
}
bad "unknown option '--colour'" "$PARTREG_HTTP" --colour blue
bad "invalid value 'lots' for max-body" "$PARTREG_HTTP" --max-body lots
bad "PARTREG_HTTP_MAX_CONNECTIONS: invalid value 'x' for max-connections" PARTREG_HTTP_MAX_CONNECTIONS=x "$PARTREG_HTTP"
bad "max-connections must be at least 1" "$PARTREG_HTTP" --max-connections 0
bad "log-level must be" "$PARTREG_HTTP" --log-level loud
bad "--prefix 'a/\\+' must be topic levels" "$PARTREG_HTTP" --prefix 'a/+'
bad "--prefix '#' must be topic levels" "$PARTREG_HTTP" --prefix '#'
bad "need an mqtts:// --broker" "$PARTREG_HTTP" --cafile /etc/hosts
printf 'listen = 127.0.0.1:1\ncolour = blue\n' >"$T/bad.conf"
bad "bad.conf:2: unknown key 'colour'" "$PARTREG_HTTP" --config "$T/bad.conf"

# Precedence: the file's port < PARTREG_HTTP_LISTEN < --listen.
# Three ports the kernel has just found free (random ones above 32768 may
# be some connection's ephemeral port).
read -r P1 P2 P3 < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
printf 'broker = mqtt://127.0.0.1:%s\nlisten = 127.0.0.1:%s\n' "$PORT" "$P1" >"$T/http.conf"
listens_on() {
  local port=$1
  shift
  env "$@" >>"$T/http.log" 2>&1 &
  HTTP_PID=$!
  PIDS+=("$HTTP_PID")
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  curl -s -o /dev/null "http://127.0.0.1:$port/healthz" || fail "$*: not listening on $port"
  stop_http
}
listens_on "$P1" "$PARTREG_HTTP" --config "$T/http.conf"
ok "listen from the config file"
listens_on "$P2" PARTREG_HTTP_LISTEN=127.0.0.1:$P2 "$PARTREG_HTTP" --config "$T/http.conf"
ok "PARTREG_HTTP_LISTEN wins over the file"
listens_on "$P3" PARTREG_HTTP_CONFIG="$T/http.conf" PARTREG_HTTP_LISTEN=127.0.0.1:$P2 "$PARTREG_HTTP" --listen 127.0.0.1:$P3
ok "--listen wins over PARTREG_HTTP_LISTEN and the file (named by PARTREG_HTTP_CONFIG)"
pass
