#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lib_etcd.sh itself, before any agent uses it (tests/integration/HA.md): a
# 3-member etcd cluster on free loopback ports; a client's proxy cut
# (refused, then silent) and healed while the cluster stays reachable
# directly; the leader SIGSTOPped (another is elected, writes go on) and
# resumed; the leader kill -9ed (another is elected) and restarted (back,
# healthy, with every write). Skipped (77) without etcd.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_etcd.sh"

etcd_require
t0=$(date +%s%N)
etcd_cluster 3
ok "3 members up in $((($(date +%s%N) - t0) / 1000000)) ms: $ETCD_ENDPOINTS"
L=$(etcd_leader) || fail "no leader"
ok "leader: member $L"

ctl() { etcdctl --endpoints "$1" --dial-timeout 1s --command-timeout 2s "${@:2}"; }
etcd_proxy agent1
etcd_proxy agent2
ctl "${PROXY_URL[agent1]}" put /k v1 >/dev/null || fail "put through proxy agent1"
[ "$(ctl "${PROXY_URL[agent2]}" get /k --print-value-only)" = v1 ] || fail "get through proxy agent2"
ok "two proxies forward to the cluster"

proxy_cut agent1 refused
t0=$(date +%s%N)
ctl "${PROXY_URL[agent1]}" get /k >/dev/null 2>&1 && fail "agent1's proxy, refused, still forwards"
ok "agent1 cut (refused): its etcdctl fails in $((($(date +%s%N) - t0) / 1000000)) ms"
[ "$(ctl "${PROXY_URL[agent2]}" get /k --print-value-only)" = v1 ] || fail "agent2 was cut too"
ok "agent2 unaffected"
proxy_heal agent1
[ "$(ctl "${PROXY_URL[agent1]}" get /k --print-value-only)" = v1 ] || fail "agent1's proxy healed does not forward"
ok "agent1 healed"

proxy_cut agent1 silent
t0=$(date +%s%N)
ctl "${PROXY_URL[agent1]}" get /k >/dev/null 2>&1 && fail "agent1's proxy, silent, still forwards"
ok "agent1 cut (silent): its etcdctl times out in $((($(date +%s%N) - t0) / 1000000)) ms"
proxy_heal agent1
[ "$(ctl "${PROXY_URL[agent1]}" get /k --print-value-only)" = v1 ] || fail "agent1 healed from silent does not forward"
ok "agent1 healed from silent"

# The leader paused past the election timeout: the others elect one.
etcd_stop "$L"
t0=$(date +%s%N)
etcd_wait_write "$L" || fail "no write while the leader $L is stopped"
NL=$(etcd_leader) || fail "no new leader"
[ "$NL" != "$L" ] || fail "the stopped member $L still counts as leader"
ok "leader $L SIGSTOPped: member $NL leads, a write after $((($(date +%s%N) - t0) / 1000000)) ms"
etcd_cont "$L"
for _ in $(seq 100); do etcd_healthy "$L" && break; sleep 0.1; done
etcd_healthy "$L" || fail "member $L not healthy after SIGCONT"
ok "member $L resumed, healthy"

L=$(etcd_leader)
ctl "$ETCD_ENDPOINTS" put /k v2 >/dev/null
etcd_kill "$L"
t0=$(date +%s%N)
etcd_wait_write "$L" || fail "no write after the leader $L was killed"
NL=$(etcd_leader) || fail "no leader after the kill"
ok "leader $L kill -9ed: member $NL leads, a write after $((($(date +%s%N) - t0) / 1000000)) ms"
etcd_restart "$L"
[ "$(etcdctl_at "$L" get /k --print-value-only)" = v2 ] || fail "restarted member $L lacks the write"
[ "$(etcdctl_at "$L" member list | wc -l)" = 3 ] || fail "not 3 members"
ok "member $L restarted: healthy, has every write, 3 members"
FAILED=0
echo PASS
