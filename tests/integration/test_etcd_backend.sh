#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The etcd backend's own behaviour (issue 15), with real etcd 3.4 members:
#   1. the read index: an agent stopped while another writes, etcd
#      compacted past the stopped agent's revision, the agent restarted: it
#      loads a full copy and then answers exactly what the other did;
#      restarted without a compaction, it resumes from its revision;
#   2. a minority: 2 of 3 members killed, a write gets 503
#      store_unavailable within the etcd client's deadline, and once the
#      member left knows it has no leader at once (etcd's hasleader, not its
#      7 s timeout); reads go on; the members back, writes go through;
#   3. commits, in process (pr_replica_test): a commit that only compares
#      makes no revision and is never adopted over another writer's change;
#      a stale one names the guard's revision to catch up to; and a read
#      index meeting a rebuilt etcd (another registry) is loaded anew, and
#      then follows the new etcd's writes;
#   3b. two agents: agent/stats under the publisher's epoch; a deferred
#      session/abort (grace_s) held by one agent is dropped by a lock
#      under the session through the other, and without one the holder
#      aborts the session when the grace runs out;
#   4. TLS and authentication: a member serving https with a certificate
#      made here, etcd users and a role limited to the agent's prefix; the
#      agent with --etcd-cafile, --etcd-user and --etcd-password-file works,
#      and refuses to start (exit 1, saying why) with a wrong password or
#      without the CA.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_etcd.sh"
etcd_require
command -v openssl >/dev/null || { echo "SKIP: no openssl"; FAILED=0; exit 77; }

day() { date -u -d "2024-03-01 +$1 day" +%Y-%m-%dT%H:%M:%SZ; }
part() { jq -cn --arg s "$S" --arg t "$TOKEN" --arg a "$(day "$1")" --arg b "$(day $(($1 + 1)))" \
  "{source:\$s,provider:\"p\",start:\$a,end:\$b,access_token:\$t} + ${2:-{\}}"; }
# What an agent says of the source: its partitions and its readiness.
view() {
  rr partition/list "{\"source\":\"$S\",\"limit\":1000}" | jq -c '.result.items'
  rr readiness/query "{\"source\":\"$S\",\"start\":\"$(day 0)\",\"end\":\"$(day 40)\"}" |
    jq -c '.result | {ready, gaps, blockers: [.blockers[] | {start, state}]}'
}

# ---- 1. the read index: resume, and a full copy after a compaction ----
etcd_cluster 3 --max-txn-ops 10000 >/dev/null
start_broker false
etcd_agent_start 0 "$ETCD_ENDPOINTS"
etcd_agent_start 1 "$ETCD_ENDPOINTS"
S=resync
new_source "$S"
for d in $(seq 0 9); do expect "$(rr partition/lock "$(part "$d")")" '.ok' "lock day $d" >/dev/null; done
etcd_agent_term 1
ok "agent 1 stopped (SIGTERM, exit 0)"
for d in $(seq 0 9); do
  rr partition/unlock "$(part "$d")" | jq -e .ok >/dev/null || fail "unlock day $d through agent 0"
done
for d in $(seq 10 19); do rr partition/register "$(part "$d")" | jq -e .ok >/dev/null || fail "register day $d"; done
rev=$(etcdctl_at 0 get / --write-out=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
etcdctl_at 0 compact "$rev" >/dev/null || fail "etcdctl compact $rev"
ok "20 more writes through agent 0, then etcd compacted at revision $rev"
before=$(view)
loads=$(grep -c 'loading a full copy' "$T/agent1.log" || true)
etcd_agent_start 1 "$ETCD_ENDPOINTS"
[ "$(grep -c 'loading a full copy' "$T/agent1.log")" -gt "$loads" ] ||
  fail "agent 1 did not load a full copy after the compaction: $(grep replica "$T/agent1.log" | tail -n 3)"
ok "agent 1 restarted past the compaction: it loaded a full copy"
etcd_agent_kill 0
after=$(view)
[ "$after" = "$before" ] || fail "agent 1 answers otherwise than agent 0 did: $after vs $before"
expect "$(jq -s '.[0] | length' <<<"$after")" '. == 20' "agent 1 alone lists the 20 partitions agent 0 did, equal"
# Resumed (no compaction): from its revision, no full copy.
expect "$(rr partition/lock "$(part 20)")" '.ok' "a write through agent 1"
etcd_agent_term 1
etcd_agent_start 0 "$ETCD_ENDPOINTS"
expect "$(rr partition/unlock "$(part 20)")" '.ok' "a write through agent 0 while agent 1 is down"
loads=$(grep -c 'loading a full copy' "$T/agent1.log")
etcd_agent_start 1 "$ETCD_ENDPOINTS"
[ "$(grep -c 'loading a full copy' "$T/agent1.log")" -eq "$loads" ] || fail "agent 1 loaded a full copy without a compaction"
grep -q "read index at etcd revision" "$T/agent1.log" || fail "no resume line"
etcd_agent_kill 0
expect "$(rr partition/list "{\"source\":\"$S\",\"limit\":1000}")" \
  "[.result.items[] | select(.start == \"$(day 20)\")][0].state == \"ready\"" \
  "agent 1 resumed from its revision and has agent 0's unlock"

# ---- 2. a minority: 2 of 3 members gone ----
L=$(etcd_leader)
others=()
for i in 0 1 2; do [ "$i" = "$L" ] || others+=("$i"); done
etcd_kill "${others[0]}"
etcd_kill "$L"
t0=$(date +%s%3N)
r=$(rr partition/lock "$(part 21)")
ms=$(($(date +%s%3N) - t0))
expect "$r" '.ok == false and .status == 503 and .error.code == "store_unavailable"' \
  "2 of 3 etcd members down: a write gets 503 store_unavailable ($ms ms)"
# The first within the etcd client's deadline (the member left still
# believes in its leader until its election timeout); once it knows it has
# none, at once.
[ "$ms" -lt 3000 ] || fail "the refusal took $ms ms: more than the deadline"
sleep 1.5
t0=$(date +%s%3N)
r=$(rr partition/lock "$(part 21)")
ms2=$(($(date +%s%3N) - t0))
expect "$r" '.status == 503 and .error.code == "store_unavailable"' "and the next one too ($ms2 ms)"
[ "$ms2" -lt 1000 ] || fail "the second refusal took $ms2 ms: not at once"
expect "$(rr source/get "{\"source\":\"$S\"}")" '.ok' "reads go on from the read index"
etcd_restart "${others[0]}"
etcd_restart "$L"
etcd_wait_write
expect "$(rr_until_ok partition/lock "$(part 21)")" '.ok and .result.state == "locked"' \
  "quorum back: the write goes through"
echo "# minority: 503 after $ms ms, then $ms2 ms"
etcd_agent_term 1
for i in 0 1 2; do etcd_kill "$i"; done

# ---- 3. commits, in process (tests/etcd/pr_replica_test.c) ----
# A fresh one-member cluster: revisions must be the program's own.
etcd_cluster 1 >/dev/null
"${PARTREG_REPLICA_PROG:?set by ctest}" "$ETCD_ENDPOINTS" "$T/replica-test" >"$T/replica-test.log" 2>&1 ||
  { cat "$T/replica-test.log"; fail "pr_replica_test"; }
cat "$T/replica-test.log" | grep '^ok' || true
ok "commits: a put adopted, a compare-only commit never, a stale one told the guard's revision"
# Agent 1's read index (part 1) against this other etcd: it holds another
# registry, so it is not resumed but loaded anew (empty here).
etcd_agent_start 1 "$ETCD_ENDPOINTS"
grep -q "holds another registry" "$T/agent1.log" || fail "agent 1 resumed a read index of another registry"
expect "$(rr source/get "{\"source\":\"resync\"}")" '.status == 404' \
  "agent 1 on a rebuilt etcd: its old index was dropped (the old source is unknown)"

# ---- 3b. a deferred session/abort across agents ----
# The agent given a session/abort with grace_s holds it back; the session's
# next lock may go to the other agent (the shared subscription), and the
# holder learns that sign of life from the watch. Without one, the holder
# aborts the session once the grace has run out.
etcd_agent_start 0 "$ETCD_ENDPOINTS"
# (agent/stats comes from the publisher too, under the same epoch.)
for _ in $(seq 30); do
  e1=$(sub1 "$P/agent/status" | jq .epoch) e2=$(sub1 "$P/agent/stats" | jq .epoch)
  [ -n "$e1" ] && [ "$e1" = "$e2" ] && break
  sleep 0.1
done
[ -n "$e1" ] && [ "$e1" = "$e2" ] || fail "agent/status says epoch $e1, agent/stats $e2"
ok "agent/status and agent/stats under one epoch ($e1)"
S=sessions
new_source "$S"
locks() { grep -c 'partition/lock ok' "$T/agent$1.log" || true; }
holder() { grep -l "session/abort of $1\\.\\.\\. deferred" "$T/agent0.log" "$T/agent1.log" | grep -o '[01]\.log' | cut -c1; }
locked() { rr partition/list "{\"source\":\"$S\"}" | jq -r ".result.items[] | select(.start == \"$(day "$1")\") | .state"; }
cross=0
for k in 1 2 3; do
  expect "$(rr partition/lock "$(part "$k" "{session:\"job-$k\"}")")" '.ok' "round $k: a lock under session job-$k"
  expect "$(rr session/abort "{\"session\":\"job-$k\",\"grace_s\":3}")" '.ok' "its session/abort with grace_s 3"
  h=$(holder "job-$k")
  [ -n "$h" ] || fail "no agent deferred the abort of job-$k"
  l0=$(locks 0) l1=$(locks 1)
  expect "$(rr partition/lock "$(part $((k + 10)) "{session:\"job-$k\"}")")" '.ok' "a lock under job-$k within the grace"
  if [ "$(locks "$h")" = "$([ "$h" = 0 ] && echo "$l0" || echo "$l1")" ]; then cross=$((cross + 1)); fi
done
[ "$cross" -ge 1 ] || fail "the sign of life never went to the agent not holding the abort: nothing tested across agents"
sleep 4
for k in 1 2 3; do
  [ "$(locked "$k")" = locked ] || fail "round $k: the session showed a sign of life, but its lock is $(locked "$k")"
done
ok "3 deferred aborts dropped on a sign of life ($cross of them shown by the other agent), the locks held"
expect "$(rr partition/lock "$(part 4 '{session:"job-4"}')")" '.ok' "a lock under session job-4"
expect "$(rr session/abort '{"session":"job-4","grace_s":2}')" '.ok' "its session/abort with grace_s 2, and no sign of life"
for _ in $(seq 60); do [ "$(locked 4)" = failed ] && break; sleep 0.1; done
[ "$(locked 4)" = failed ] || fail "job-4 showed no sign of life, but its lock is $(locked 4) after 6 s"
grep -q "session job-4... showed no sign of life" "$T/agent$(holder job-4).log" ||
  fail "the holder of job-4's abort did not abort it"
ok "the holder aborted job-4 after its grace: its lock is failed"
etcd_agent_term 0
etcd_agent_term 1

# ---- 3c. etcd's answer to a commit lost: in doubt ----
# An agent whose etcd goes silent mid-commit cannot know whether the
# commit was applied: it says so (503 store_unavailable, details.in_doubt),
# and the command sent again under its request_id is applied at most once.
# partreg (libpartreg) sends it again by itself until a definite answer.
etcd_proxy a2
etcd_agent_start 2 "${PROXY_URL[a2]}"
S=doubt
new_source "$S"
body=$(part 30 '{request_id: "doubt-1"}')
proxy_cut a2 silent
r=$(rr partition/lock "$body")
proxy_heal a2
expect "$r" '.status == 503 and .error.code == "store_unavailable" and .error.details.in_doubt == true' \
  "etcd silent during a lock's commit: 503 store_unavailable, details.in_doubt"
expect "$(rr_until_ok partition/lock "$body")" '.ok and .result.state == "locked" and .result.fence == 1' \
  "the lock sent again under its request_id once etcd answers: locked, fence 1"
echo "$TOKEN" >"$T/doubt-token"
proxy_cut a2 silent
( sleep 4; proxy_heal a2 ) &
PIDS+=($!)
t0=$(date +%s%3N)
"$PARTREG_CLI" --broker "mqtt://127.0.0.1:$PORT" --prefix "$P" --token-file "$T/doubt-token" --timeout 20 \
  --json partition lock "$S" --provider p --start "$(day 31)" --end "$(day 32)" >"$T/cli-doubt.out" 2>&1 ||
  fail "partreg partition lock across a silent etcd: $(cat "$T/cli-doubt.out")"
[ "$(grep -c "etcd's answer to a commit was lost" "$T/agent2.log")" -ge 2 ] ||
  fail "the agent did not answer partreg's lock in doubt: the test did not test it"
expect "$(cat "$T/cli-doubt.out")" '.state == "locked" and .fence == 2' \
  "partreg sent a lock answered in doubt again by itself: locked after $(($(date +%s%3N) - t0)) ms"
locked_events=$(rr history/query "{\"source\":\"$S\",\"limit\":100}" | jq '[.result.events[] | select(.type == "locked")] | length')
[ "$locked_events" = 2 ] || fail "$locked_events locked events in the history, not 2: a lock in doubt applied twice?"
ok "two locks, two locked events: none applied twice"
etcd_agent_term 2
etcd_kill 0

# ---- 4. TLS and authentication ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/etcd.key" -out "$T/etcd.pem" -days 2 \
  -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" 2>"$T/openssl.log" ||
  fail "openssl: $(cat "$T/openssl.log")"
free_port
TLS_URL=https://127.0.0.1:$FREE_PORT
free_port
TLS_PEER=http://127.0.0.1:$FREE_PORT
etcd --name tls --data-dir "$T/etcd-tls" --listen-client-urls "$TLS_URL" \
  --advertise-client-urls "$TLS_URL" --cert-file "$T/etcd.pem" --key-file "$T/etcd.key" \
  --listen-peer-urls "$TLS_PEER" --initial-advertise-peer-urls "$TLS_PEER" \
  --initial-cluster "tls=$TLS_PEER" --max-txn-ops 10000 >"$T/etcd-tls.log" 2>&1 &
PIDS+=($!)
ectl() { etcdctl --endpoints "$TLS_URL" --cacert "$T/etcd.pem" --dial-timeout 1s --command-timeout 3s "$@"; }
for _ in $(seq 100); do ectl endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
ectl endpoint health >/dev/null 2>&1 || fail "the TLS member did not start: $(tail -n 5 "$T/etcd-tls.log")"
P=partreg/tls
ectl user add root:root-pw >/dev/null
ectl user grant-role root root >/dev/null
ectl role add partreg >/dev/null
ectl role grant-permission partreg --prefix=true readwrite "/$P/" >/dev/null
ectl user add partregd:agent-pw >/dev/null
ectl user grant-role partregd partreg >/dev/null
ectl auth enable >/dev/null
printf 'agent-pw\n' >"$T/etcd-pw"
printf 'wrong\n' >"$T/etcd-wrong"
ok "etcd over https with authentication; user partregd may use /$P/ only"
etcd_agent_start 2 "$TLS_URL" --etcd-cafile "$T/etcd.pem" --etcd-user partregd \
  --etcd-password-file "$T/etcd-pw"
S=tls
new_source "$S"
expect "$(rr partition/lock "$(part 0)")" '.ok and .result.fence == 1' "a lock through the TLS, authenticated etcd"
n=$(ectl --user root:root-pw get --prefix "/$P/r/t" --keys-only | grep -c . || true)
[ "$n" -ge 1 ] || fail "no partition record under /$P/r/t in etcd"
ok "its record is in etcd under the agent's prefix"
etcd_agent_term 2
for bad in "--etcd-password-file $T/etcd-wrong --etcd-cafile $T/etcd.pem" "--etcd-password-file $T/etcd-pw"; do
  rc=0
  # shellcheck disable=SC2086
  timeout 20 "$PARTREGD" --broker "mqtt://127.0.0.1:$PORT" --prefix "$P" --data-dir "$T/a3" \
    --etcd "$TLS_URL" --etcd-user partregd $bad >"$T/bad.log" 2>&1 || rc=$?
  [ $rc -eq 1 ] || fail "with $bad partregd exited $rc, not 1"
  grep -q "cannot use etcd" "$T/bad.log" || fail "no reason given: $(tail -n 3 "$T/bad.log")"
  ok "refused to start ($bad): $(grep -o 'etcd: [^;]*' "$T/bad.log" | head -n 1)"
done
pass
