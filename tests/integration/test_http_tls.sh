#!/usr/bin/env bash
# partreg-http over HTTPS (--tls-cert/--tls-key, libmicrohttpd's TLS): a
# certificate made here with openssl; curl --cacert verifies it and the
# original routes and /v1 answer over it; curl without the CA refuses it;
# plain HTTP to the port gets no HTTP answer; --tls-cert without --tls-key
# is a usage error (2) and unreadable or wrong files stop the start (1).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_http.sh"
command -v openssl >/dev/null || { echo "openssl not installed: skipped"; exit 77; }
start_broker
start_agent

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 \
  -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>"$T/openssl.log" ||
  fail "openssl could not make a certificate: $(cat "$T/openssl.log")"
start_http --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
[[ $H == https://* ]] || fail "start_http did not take the https scheme"
grep -q "listening on https://127.0.0.1:$HPORT" "$T/http.log" || fail "no https listening line in the log"

out=$(curl -sS --cacert "$T/cert.pem" "$H/") || fail "curl --cacert could not fetch $H/"
expect "$out" '.status_code == 200' "GET / over HTTPS, certificate verified with --cacert"
r=$(curl -sS --cacert "$T/cert.pem" -X POST "$H/sources/register?source_name=tls_src&owner=o")
expect "$r" '.status_code == 200 and (.registered_object.access_token.token | length) == 36' "POST /sources/register over HTTPS"
TOKEN=$(jq -r .registered_object.access_token.token <<<"$r")
r=$(curl -sS --cacert "$T/cert.pem" -X POST "$H/v1/source/get" -H "Authorization: Bearer $TOKEN" -d '{"source":"tls_src"}')
expect "$r" '.ok and .result.source == "tls_src"' "POST /v1/source/get over HTTPS"
r=$(curl -sS --cacert "$T/cert.pem" "$H/sources/tls_src/check_readiness?start=2024-01-01&end=2024-01-02")
expect "$r" '.is_ready == false' "check_readiness over HTTPS"

rc=0
curl -sS -o /dev/null "$H/healthz" 2>"$T/curl.err" || rc=$?
[ $rc -ne 0 ] || fail "curl without the CA accepted the self-signed certificate"
ok "curl without --cacert refuses the certificate (exit $rc)"
rc=0
curl -sS -o /dev/null --max-time 5 "http://127.0.0.1:$HPORT/healthz" 2>"$T/curl.err" || rc=$?
[ $rc -ne 0 ] || fail "plain HTTP got an answer from the HTTPS port"
ok "plain HTTP to the HTTPS port gets no answer (curl exit $rc)"
grep -q "$TOKEN" "$T/http.log" && fail "the token is in the log"
grep -q "PRIVATE KEY" "$T/http.log" && fail "the key is in the log"
ok "neither the token nor the key in the log"
stop_http

# ---- refusals at start
rc=0
"$PARTREG_HTTP" --tls-cert "$T/cert.pem" --listen 127.0.0.1:1 >"$T/o" 2>"$T/e" || rc=$?
[ $rc -eq 2 ] && grep -q -- '--tls-cert and --tls-key go together' "$T/e" || fail "--tls-cert alone: exit $rc, $(cat "$T/e")"
ok "--tls-cert without --tls-key: exit 2, named"
rc=0
timeout 20 "$PARTREG_HTTP" --broker "mqtt://127.0.0.1:$PORT" --tls-cert "$T/nothere.pem" --tls-key "$T/key.pem" \
  --listen 127.0.0.1:0 >"$T/o" 2>"$T/e" || rc=$?
[ $rc -eq 1 ] && grep -q 'cannot read --tls-cert' "$T/e" || fail "missing certificate file: exit $rc, $(cat "$T/e")"
ok "unreadable certificate: exit 1, named"
rc=0
timeout 20 "$PARTREG_HTTP" --broker "mqtt://127.0.0.1:$PORT" --tls-cert "$T/key.pem" --tls-key "$T/cert.pem" \
  --listen 127.0.0.1:0 >"$T/o" 2>"$T/e" || rc=$?
[ $rc -eq 1 ] || fail "certificate and key swapped: exit $rc, $(cat "$T/e")"
sanitizer_clean "$T/e"
ok "certificate and key swapped: exit 1"
pass
