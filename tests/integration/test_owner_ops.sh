#!/usr/bin/env bash
# Owner operations and tokens (issue 3): provider tokens are scoped to
# (source, provider) — 403 elsewhere, 401 for a made-up or missing token;
# source/rotate-token replaces the owner token at once; partition/delete
# (owner only) withdraws a partition with a retained tombstone, out of the
# summary, the list and readiness, and a new lock re-creates it.
. "$(dirname "$0")/lib.sh"
start_broker
start_agent

A=own_a
B=own_b
D1=2023-01-01T00:00:00Z; D2=2023-01-02T00:00:00Z; D3=2023-01-03T00:00:00Z
UUID='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

r=$(rr source/register "{\"source\":\"$A\",\"owner\":\"o\"}"); OA=$(jq -r .result.access_token <<<"$r")
r=$(rr source/register "{\"source\":\"$B\",\"owner\":\"o\"}"); OB=$(jq -r .result.access_token <<<"$r")
r=$(rr provider/register "{\"source\":\"$A\",\"provider\":\"p1\",\"access_token\":\"$OA\"}")
expect "$r" ".ok and .result.source == \"$A\" and .result.provider == \"p1\" and (.result.provider_token | test(\"$UUID\"))" "provider/register returns a provider_token (UUIDv4)"
PA1=$(jq -r .result.provider_token <<<"$r")
[ "$PA1" != "$OA" ] || fail "the provider token is the owner token"
PA2=$(rr provider/register "{\"source\":\"$A\",\"provider\":\"p2\",\"access_token\":\"$OA\"}" | jq -r .result.provider_token)
PB1=$(rr provider/register "{\"source\":\"$B\",\"provider\":\"p1\",\"access_token\":\"$OB\"}" | jq -r .result.provider_token)
[ ${#PA2} -eq 36 ] && [ ${#PB1} -eq 36 ] || fail "could not register the providers"
[ "$(printf '%s\n' "$OA" "$OB" "$PA1" "$PA2" "$PB1" | sort -u | wc -l)" -eq 5 ] || fail "tokens repeat"
ok "five distinct tokens"
# provider/register without source (the original HTTP service's shape): the
# owner token names the source; a provider's token is 403, a made-up or no
# token 401, and nothing is registered by a refusal.
r=$(rr provider/register "{\"provider\":\"p3\",\"access_token\":\"$OB\"}")
expect "$r" ".ok and .result.source == \"$B\" and .result.provider == \"p3\" and (.result.provider_token | test(\"$UUID\"))" "provider/register without source: the owner token's source"
expect "$(rr provider/register "{\"provider\":\"p4\",\"access_token\":\"$PA1\"}")" '.status == 403 and .error.code == "forbidden" and (.error.message | test("provider .p1..s token of source .own_a."))' "without source, a provider's token: 403"
expect "$(rr provider/register '{"provider":"p4","access_token":"00000000-0000-4000-8000-000000000000"}')" '.status == 401 and (.error.message | test("not valid"))' "without source, a made-up token: 401"
expect "$(rr provider/register '{"provider":"p4"}')" '.status == 401 and (.error.message | test("no source and no access_token"))' "without source or token: 401"
expect "$(rr provider/register "{\"provider\":\"p3\",\"access_token\":\"$OB\"}")" ".status == 409 and (.error.message | test(\"already registered for source '$B'\"))" "without source, again: 409 naming the source"
for t in "$PA1" "$PA2" "$PB1"; do grep -q "$t" "$T/agent.log" && fail "a provider token appears in the agent's log"; done
ok "provider tokens not logged"

# body VERB-EXTRA: part SOURCE PROVIDER START END TOKEN [EXTRA MEMBERS]
part() {
  local tok=""
  [ -n "$5" ] && tok=",\"access_token\":\"$5\""
  echo "{\"source\":\"$1\",\"provider\":\"$2\",\"start\":\"$3\",\"end\":\"$4\"$tok${6:+,$6}}"
}
ptopic() { echo "$P/state/$1/partitions/$3/$4/$2"; }

# --- provider tokens: their own partitions only ---------------------------------
expect "$(rr partition/lock "$(part $A p1 $D1 $D2 "$PA1")")" '.ok and .result.state == "locked"' "p1's token locks p1's partition"
expect "$(rr partition/renew "$(part $A p1 $D1 $D2 "$PA1" '"fence":1')")" '.ok' "p1's token renews it"
expect "$(rr partition/unlock "$(part $A p1 $D1 $D2 "$PA1" '"fence":1')")" '.ok and .result.state == "ready"' "p1's token unlocks it"
expect "$(rr partition/register "$(part $A p2 $D1 $D2 "$PA2")")" '.ok and .result.state == "pending"' "p2's token registers p2's partition"
expect "$(rr partition/lock "$(part $A p2 $D2 $D3 "$OA")")" '.ok and .result.fence == 2' "the owner's token locks p2's partition"

for v in register lock; do
  r=$(rr partition/$v "$(part $A p2 $D1 $D2 "$PA1")")
  expect "$r" '.ok == false and .status == 403 and .error.code == "forbidden"' "p1's token on p2's partition: partition/$v forbidden"
done
for v in renew unlock; do
  r=$(rr partition/$v "$(part $A p2 $D2 $D3 "$PA1" '"fence":2')")
  expect "$r" '.ok == false and .status == 403 and .error.code == "forbidden"' "p1's token on p2's partition: partition/$v forbidden"
done
r=$(rr partition/fail "$(part $A p2 $D2 $D3 "$PA1" '"fence":2,"reason":"x"')")
expect "$r" '.status == 403 and .error.code == "forbidden"' "p1's token on p2's partition: partition/fail forbidden"
for v in register lock; do
  r=$(rr partition/$v "$(part $B p1 $D1 $D2 "$PA1")")
  expect "$r" '.status == 403 and .error.code == "forbidden"' "A's p1 token on B's p1: partition/$v forbidden"
  r=$(rr partition/$v "$(part $A p1 $D2 $D3 "$OB")")
  expect "$r" '.status == 403 and .error.code == "forbidden"' "B's owner token on A: partition/$v forbidden"
done
r=$(rr partition/lock "$(part $A p1 $D2 $D3 "$(cat /proc/sys/kernel/random/uuid)")")
expect "$r" '.status == 401 and .error.code == "unauthorized"' "a made-up token: unauthorized"
r=$(rr partition/lock "$(part $A p1 $D2 $D3 "not-a-token")")
expect "$r" '.status == 401 and .error.code == "unauthorized"' "a token of the wrong form: unauthorized"
r=$(rr partition/lock "$(part $A p1 $D2 $D3 "")")
expect "$r" '.status == 401 and .error.code == "unauthorized"' "no token: unauthorized"
expect "$(sub1 "$(ptopic $A p2 $D2 $D3)")" '.state == "locked" and .fence == 2' "p2's lock untouched by the refused commands"
expect "$(rr partition/list "{\"source\":\"$B\"}")" '.result.items == []' "source B untouched"
expect "$(rr partition/unlock "$(part $A p2 $D2 $D3 "$PA2" '"fence":2')")" '.ok and .result.state == "ready"' "p2's own token unlocks p2's partition"
expect "$(rr partition/lock "$(part $B p1 $D1 $D2 "$PB1")")" '.ok' "B's p1 token works on B"

# --- source/rotate-token ----------------------------------------------------------
r=$(rr source/rotate-token "{\"source\":\"$A\"}")
expect "$r" '.status == 401 and .error.code == "unauthorized"' "rotate-token without a token: unauthorized"
r=$(rr source/rotate-token "{\"source\":\"$A\",\"access_token\":\"$PA1\"}")
expect "$r" '.status == 403 and .error.code == "forbidden"' "rotate-token with a provider token: forbidden"
r=$(rr source/rotate-token "{\"source\":\"$A\",\"access_token\":\"$OB\"}")
expect "$r" '.status == 403 and .error.code == "forbidden"' "rotate-token with another source's owner token: forbidden"
r=$(rr source/rotate-token "{\"source\":\"$A\",\"access_token\":\"$OA\"}")
expect "$r" ".ok and .result.source == \"$A\" and (.result.access_token | test(\"$UUID\"))" "rotate-token returns a new access_token"
NA=$(jq -r .result.access_token <<<"$r")
[ "$NA" != "$OA" ] || fail "the rotated token is the old one"
grep -q "$NA" "$T/agent.log" && fail "the new token appears in the agent's log"
ok "new token differs and is not logged"
expect "$(rr partition/lock "$(part $A p1 $D2 $D3 "$OA")")" '.status == 401 and .error.code == "unauthorized"' "the old owner token: unauthorized"
expect "$(rr provider/register "{\"source\":\"$A\",\"provider\":\"p3\",\"access_token\":\"$OA\"}")" '.status == 401' "the old owner token cannot register providers"
expect "$(rr source/rotate-token "{\"source\":\"$A\",\"access_token\":\"$OA\"}")" '.status == 401' "the old owner token cannot rotate again"
expect "$(rr partition/lock "$(part $A p1 $D2 $D3 "$NA")")" '.ok and .result.state == "locked"' "the new owner token works"
expect "$(rr partition/unlock "$(part $A p1 $D2 $D3 "$PA1")")" '.ok and .result.state == "ready"' "provider tokens survive the rotation"
expect "$(rr provider/register "{\"source\":\"$A\",\"provider\":\"p3\",\"access_token\":\"$NA\"}")" '.ok' "the new owner token registers providers"
# ...and after a restart.
stop_agent
start_agent
expect "$(rr partition/register "$(part $A p1 $D1 $D2 "$OA")")" '.status == 401' "the old owner token stays refused after a restart"
expect "$(rr partition/register "$(part $A p1 $D1 $D2 "$NA")")" '.ok' "the new owner token works after a restart"

# --- partition/delete ---------------------------------------------------------------
# A: p1 [D1,D2) ready, p1 [D2,D3) ready, p2 [D1,D2) pending, p2 [D2,D3) ready.
q12="{\"source\":\"$A\",\"start\":\"$D1\",\"end\":\"$D2\"}"
expect "$(rr readiness/query "$q12")" '.result.ready == false and (.result.blockers | length) == 1 and .result.blockers[0].provider == "p2" and .result.blockers[0].state == "pending"' "p2's pending partition blocks [D1,D2)"
r=$(rr partition/delete "$(part $A p2 $D1 $D2 "$PA2")")
expect "$r" '.status == 403 and .error.code == "forbidden"' "delete with the provider's own token: forbidden"
r=$(rr partition/delete "$(part $A p2 $D1 $D2 "")")
expect "$r" '.status == 401 and .error.code == "unauthorized"' "delete without a token: unauthorized"

follow_events "$A"
r=$(rr partition/delete "$(part $A p2 $D1 $D2 "$NA")")
expect "$r" ".ok and .result.state == \"deleted\" and .result.provider == \"p2\" and .result.start == \"$D1\" and .result.end == \"$D2\"" "the owner deletes p2's pending partition"
DSEQ=$(jq .result.seq <<<"$r")
m=$(sub1 "$(ptopic $A p2 $D1 $D2)")
[ -n "$m" ] || fail "the deleted partition's retained topic is empty (expected a tombstone)"
expect "$m" ".state == \"deleted\" and .seq == $DSEQ" "retained tombstone {state: deleted, seq}"
expect "$(sub1 "$P/state/$A")" "[.blocked[] | select(.provider == \"p2\" and .start == \"$D1\")] == [] and .seq == $DSEQ" "summary no longer lists it"
expect "$(rr partition/list "{\"source\":\"$A\"}")" "[.result.items[] | select(.provider == \"p2\" and .start == \"$D1\")] == [] and (.result.items | length) == 3" "partition/list omits it"
expect "$(rr partition/list "{\"source\":\"$A\",\"provider\":\"p2\"}")" "[.result.items[].start] == [\"$D2\"]" "partition/list by provider omits it"
expect "$(rr readiness/query "$q12")" '.result.ready == true and .result.blockers == []' "readiness no longer blocked by it ([D1,D2) covered by p1)"
sleep 0.3
expect "$(events)" "[.[] | select(.type == \"deleted\" and .provider == \"p2\" and .start == \"$D1\" and .seq == $DSEQ)] | length == 1" "a deleted event"

# Deleting the only ready partition of an interval: not blocked, not ready.
expect "$(rr partition/delete "$(part $A p1 $D1 $D2 "$NA")")" '.ok and .result.state == "deleted"' "delete p1's ready [D1,D2)"
r=$(rr readiness/query "$q12")
expect "$r" ".result.ready == false and .result.blockers == [] and .result.gaps == [[\"$D1\",\"$D2\"]]" "readiness: a gap, no blocker"
expect "$(sub1 "$P/state/$A")" ".ready == [[\"$D2\",\"$D3\"]] and .blocked == []" "summary: only [D2,D3) ready"
expect "$(rr partition/delete "$(part $A p1 $D1 $D2 "$NA")")" '(.ok == false and .status == 404) or (.ok and .result.state == "deleted")' "deleting it again: not found, or the same tombstone"
expect "$(rr readiness/query "$q12")" '.result.ready == false and .result.blockers == []' "still a gap after the second delete"

# A new lock re-creates it.
r=$(rr partition/lock "$(part $A p1 $D1 $D2 "$PA1")")
expect "$r" '.ok and .result.state == "locked"' "locking a deleted partition re-creates it"
expect "$(sub1 "$(ptopic $A p1 $D1 $D2)")" '.state == "locked"' "retained partition: locked again"
expect "$(rr partition/list "{\"source\":\"$A\",\"provider\":\"p1\"}")" "[.result.items[] | select(.start == \"$D1\") | .state] == [\"locked\"]" "partition/list shows it again"
expect "$(rr readiness/query "$q12")" '.result.ready == false and .result.blockers[0].state == "locked"' "it blocks again"
# A restart (which republishes all retained state) does not resurrect it.
expect "$(rr partition/delete "$(part $A p2 $D2 $D3 "$NA")")" '.ok' "delete p2's [D2,D3)"
stop_agent
start_agent
sleep 0.5
m=$(sub1 "$(ptopic $A p2 $D2 $D3)")
[ -n "$m" ] || m='{}'
expect "$m" '(.state // "deleted") == "deleted"' "the restart's republish does not resurrect a deleted partition"
expect "$(rr partition/list "{\"source\":\"$A\",\"provider\":\"p2\"}")" '.result.items == []' "deleted partitions stay deleted after a restart"
pass
