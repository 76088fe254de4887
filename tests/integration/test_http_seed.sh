#!/usr/bin/env bash
# partreg-http: the original service's routes. Its README's curl
# walk-through (register a source, a provider and a partition, lock,
# unlock, check readiness) against the front door, every reply's HTTP
# status and body fields checked, the HTTP status always equal to
# status_code; tokens now required on lock and unlock (401 without, saying
# so); refusals with their real status (401, 403, 404, 409, 422); readiness
# naming gaps and blockers, and right over three and more partitions (the
# original looked only at the partitions holding the start and the end).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_http.sh"
start_broker
start_agent
start_http

S=some_source
D1="2023-01-01 00:00:00"
D2="2023-01-02 00:00:00"
Z1=2023-01-01T00:00:00Z
Z2=2023-01-02T00:00:00Z
UUID='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
# Every reply of these routes carries its HTTP status as status_code too.
same() { expect "$HB" ".status_code == $HS" "status_code equals the HTTP status ($HS)"; }

hcall GET /
hexpect 200 '.status_code == 200 and (.message | startswith("partreg-http "))' "GET / answers JSON"
[[ $HCT == application/json* ]] || fail "GET /: Content-Type $HCT"

# ---- the walk-through
hq POST /sources/register source_name=$S owner=some_owner
hexpect 200 '.status_code == 200 and .registered_object.source_id == "some_source" and .registered_object.name == "some_source" and .registered_object.owner == "some_owner" and (.registered_object.registered_at | test("Z$"))' "source registered"
expect "$HB" ".registered_object.access_token.token | test(\"$UUID\")" "registered_object.access_token.token is the token"
[[ $HCT == application/json* ]] || fail "Content-Type $HCT"
TOKEN=$(jq -r .registered_object.access_token.token <<<"$HB")

hq POST /providers/register provider_name=some_provider access_token=$TOKEN
hexpect 200 '.status_code == 200 and .registered_object.provider_id == "some_provider" and .registered_object.name == "some_provider" and .registered_object.source == "some_source"' "provider registered with only provider_name and access_token (the source found from the token)"
expect "$HB" ".registered_object.access_token.token | test(\"$UUID\")" "the provider's token in registered_object.access_token.token"
PTOKEN=$(jq -r .registered_object.access_token.token <<<"$HB")

hq POST /partitions/register "start=$D1" "end=$D2" source_name=$S provider_name=some_provider access_token=$TOKEN
hexpect 200 ".registered_object.state == \"pending\" and .registered_object.start == \"$Z1\" and .registered_object.end == \"$Z2\" and .registered_object.partition_id == \"some_source/$Z1/$Z2/some_provider\" and .registered_object.registered_at == .registered_object.updated_at" "partition registered (times with a space, canonical in the reply)"

hq POST /partitions/lock "start=$D1" "end=$D2" source_name=$S provider_name=some_provider
hexpect 401 '.status_code == 401 and .code == "unauthorized" and .headers == null and (.detail | test("lock needs the access_token of source .some_source. or of its provider .some_provider."))' "lock without a token: 401 saying so"
grep -q 'partition/lock' "$T/agent.log" && fail "the tokenless lock reached the agent"
ok "the tokenless lock was not sent"

hq POST /partitions/lock "start=$D1" "end=$D2" source_name=$S provider_name=some_provider access_token=$PTOKEN
hexpect 200 ".registered_object.type == \"LOCK\" and .registered_object.partition.state == \"locked\" and .registered_object.fence == 1 and (.registered_object.expires_at | test(\"Z\$\")) and .registered_object.at == .registered_object.partition.since" "locked with the provider's token"
same

hq POST /partitions/lock "start=$D1" "end=$D2" source_name=$S provider_name=some_provider access_token=$PTOKEN
hexpect 409 '.code == "already_locked" and (.detail | length) > 0 and .headers == null' "second lock: 409"
same

hq GET /sources/$S/check_readiness "start=$D1" "end=$D2"
hexpect 200 ".status_code == 200 and .is_ready == false and (.message | test(\"locked partition \\\\[$Z1, $Z2\\\\) of provider .some_provider.\")) and (.message | test(\"not covered\"))" "not ready while locked; message names the gap and the lock"

hq POST /partitions/unlock "start=$D1" "end=$D2" source_name=$S provider_name=some_provider
hexpect 401 '.code == "unauthorized" and (.detail | test("^unlock needs the access_token"))' "unlock without a token: 401 saying so"
hq POST /partitions/unlock "start=$D1" "end=$D2" source_name=$S provider_name=some_provider fence=7 -- -H "Authorization: Bearer $PTOKEN"
hexpect 409 '.code == "stale_fence"' "unlock with another fence: 409 stale_fence"
hq POST /partitions/unlock "start=$D1" "end=$D2" source_name=$S provider_name=some_provider fence=1 -- -H "Authorization: Bearer $PTOKEN"
hexpect 200 '.registered_object.type == "UNLOCK" and .registered_object.partition.state == "ready" and .registered_object.partition.version == 1' "unlocked (token as Authorization: Bearer): the UNLOCK event, ready"
same

# The mirror follows the agent's retained summary: poll briefly.
for _ in $(seq 50); do
  hq GET /sources/$S/check_readiness "start=$D1" "end=$D2"
  [ "$(jq -r .is_ready <<<"$HB")" = true ] && break
  sleep 0.1
done
hexpect 200 '.status_code == 200 and .is_ready == true and .message == null' "ready after the unlock, message null"

# ---- refusals with their real status
hq POST /sources/register source_name=$S owner=someone_else
hexpect 409 '.status_code == 409 and .code == "source_exists" and (.detail | length) > 0 and .headers == null' "second source registration: 409"
hq POST /providers/register provider_name=other access_token=00000000-0000-4000-8000-000000000000
hexpect 401 '.code == "unauthorized"' "provider with a made-up token: 401"
hq POST /providers/register provider_name=other
hexpect 401 '.code == "unauthorized" and (.detail | test("access_token"))' "provider without a token: 401"
hq POST /providers/register provider_name=q access_token=$TOKEN source_name=$S
hexpect 200 '.registered_object.provider_id == "q"' "a second provider, q (source_name given too)"
hq POST /partitions/lock "start=$D1" "end=$D2" source_name=$S provider_name=q access_token=$PTOKEN
hexpect 403 '.status_code == 403 and .code == "forbidden"' "some_provider's token on q's partition: 403"
hq POST /partitions/lock "start=$D1" "end=$D2" source_name=$S provider_name=nobody access_token=$TOKEN
hexpect 404 '.code == "unknown_provider"' "unknown provider: 404"
hq GET /sources/nosuch/check_readiness "start=$D1" "end=$D2"
hexpect 404 '.status_code == 404 and .code == "unknown_source"' "readiness of an unknown source: 404 (asked the agent)"
hq POST /partitions/lock "start=$D2" "end=$D1" source_name=$S provider_name=some_provider access_token=$TOKEN
hexpect 422 '.code == "invalid_interval"' "start after end: 422"
same

# ---- 422 naming the parameter (FastAPI's shape)
hq POST /partitions/lock "end=$D2" source_name=$S provider_name=some_provider access_token=$TOKEN
hexpect 422 '.status_code == 422 and .detail[0].loc == ["query", "start"] and .detail[0].type == "missing"' "missing start: 422 naming start"
hq GET /sources/$S/check_readiness "start=$D1" "end=yesterday"
hexpect 422 '.detail[0].loc == ["query", "end"] and (.detail[0].msg | test("datetime"))' "bad end: 422 naming end"
hq POST /sources/register owner=o
hexpect 422 '.detail[0].loc == ["query", "source_name"]' "missing source_name: 422 naming it"
hq POST /partitions/lock "start=$D1" "end=$D2" source_name=$S provider_name=some_provider ttl_s=forever access_token=$TOKEN
hexpect 422 '.detail[0].loc == ["query", "ttl_s"]' "bad ttl_s: 422 naming it"
hq POST /partitions/register "start=$D1" "end=$D2" "source_name=a/b" provider_name=p access_token=$TOKEN
hexpect 422 '.detail[0].loc == ["query", "source_name"]' "a name with '/': 422 naming source_name"

# ---- readiness over several partitions (the original's bug)
day() { date -u -d "2024-03-01 +$1 day" '+%Y-%m-%d %H:%M:%S'; }
for i in 0 1 2 3; do
  hq POST /partitions/lock "start=$(day $i)" "end=$(day $((i + 1)))" source_name=$S provider_name=some_provider access_token=$TOKEN
  [ "$HS" = 200 ] || fail "lock of day $i: $HS $HB"
  F=$(jq .registered_object.fence <<<"$HB")
  # Day 2 stays locked: a blocker in the middle of a four-day window.
  [ $i -eq 2 ] && continue
  hq POST /partitions/unlock "start=$(day $i)" "end=$(day $((i + 1)))" source_name=$S provider_name=some_provider fence=$F access_token=$TOKEN
  [ "$HS" = 200 ] || fail "unlock of day $i: $HS $HB"
done
B2=$(date -u -d "2024-03-03" +%Y-%m-%dT%H:%M:%SZ)
B3=$(date -u -d "2024-03-04" +%Y-%m-%dT%H:%M:%SZ)
for _ in $(seq 50); do
  hq GET /sources/$S/check_readiness "start=$(day 0)" "end=$(day 4)"
  grep -q "locked partition" <<<"$HB" && break
  sleep 0.1
done
hexpect 200 ".is_ready == false and (.message | test(\"locked partition \\\\[$B2, $B3\\\\)\")) and (.message | test(\"not covered by a ready partition: \\\\[$B2, $B3\\\\)\"))" "four days, the third locked: not ready, the lock and the gap named"
hq GET /sources/$S/check_readiness "start=$(day 0)" "end=$(day 2)"
hexpect 200 '.is_ready == true and .message == null' "the first two days: ready"
hq GET /sources/$S/check_readiness "start=$(day 3)" "end=$(day 4)"
hexpect 200 '.is_ready == true' "the fourth day: ready"
# A hole: days 5 and 7 ready, day 6 never registered.
for i in 5 7; do
  hq POST /partitions/lock "start=$(day $i)" "end=$(day $((i + 1)))" source_name=$S provider_name=some_provider access_token=$TOKEN
  F=$(jq .registered_object.fence <<<"$HB")
  hq POST /partitions/unlock "start=$(day $i)" "end=$(day $((i + 1)))" source_name=$S provider_name=some_provider fence=$F access_token=$TOKEN
  [ "$HS" = 200 ] || fail "unlock of day $i: $HS $HB"
done
B6=$(date -u -d "2024-03-07" +%Y-%m-%dT%H:%M:%SZ)
B7=$(date -u -d "2024-03-08" +%Y-%m-%dT%H:%M:%SZ)
for _ in $(seq 50); do
  hq GET /sources/$S/check_readiness "start=$(day 5)" "end=$(day 8)"
  grep -q "$B7" <<<"$(curl -s "$H/v1/sources/$S")" && break
  sleep 0.1
done
hq GET /sources/$S/check_readiness "start=$(day 5)" "end=$(day 8)"
hexpect 200 ".is_ready == false and (.message | test(\"not covered by a ready partition: \\\\[$B6, $B7\\\\)\")) and (.message | test(\"blocked\") | not)" "three days with the middle one missing: not ready, the gap named"

# ---- wrong method, unknown route
hcall GET /partitions/lock
hexpect 405 '.status == 405 and .error.code == "method_not_allowed"' "GET on a POST route: 405"
grep -qi '^allow: POST' <(curl -s -D - -o /dev/null "$H/partitions/lock") || fail "405 without Allow: POST"
ok "405 names the allowed method in Allow"

grep -q "$TOKEN" "$T/http.log" && fail "the source's token is in partreg-http's log"
grep -q "$PTOKEN" "$T/http.log" && fail "the provider's token is in partreg-http's log"
ok "no token in partreg-http's debug log"
stop_http
pass
