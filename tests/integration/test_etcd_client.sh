#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The etcd client (src/etcd.c) against real etcd members: one member, then a
# three-member cluster whose members are killed one by one. The checks are
# tests/etcd/pr_etcd_test.c's; this script starts, stops, hangs and kills
# the members around them. Skipped (77) without etcd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_etcd.sh"
PROG=${PARTREG_ETCD_PROG:?set by ctest: path to pr_etcd_test}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# check ENDPOINTS CHECK [ARGS]: run one check; its stderr into prog.log.
check() {
  local t0=$SECONDS rc=0
  "$PROG" "$@" 2>>"$T/prog.log" || rc=$?
  tail -n 20 "$T/prog.log" | grep -E 'FAIL|ERROR' >&2 || true
  [ $rc -eq 0 ] || fail "check $2 failed (rc $rc)"
  sanitizer_clean "$T/prog.log"
  echo "   ($2: $((SECONDS - t0)) s)"
}

# ---- one member ----
etcd_cluster 1 --experimental-watch-progress-notify-interval=1s --auth-token-ttl=2
U=${ETCD_CLIENT[0]}
ok "one member at $U"
check "$U" basic
check "$U" cas
check "$U" lease
check "$U" watch progress
check "$U" compacted

# A hung member (SIGSTOP: its kernel still accepts connections) must not
# hang calls: they end at the request timeout, a write in doubt.
kill -STOP "${ETCD_PID[0]}"
PR_ETCD_REQUEST_MS=1000 check "$U" down hung
kill -CONT "${ETCD_PID[0]}"
for _ in $(seq 50); do etcd_healthy 0 && break; sleep 0.1; done

# Authentication, with tokens that expire after 2 s.
etcdctl --endpoints="$U" user add root:secret-pw >/dev/null
etcdctl --endpoints="$U" role add root >/dev/null
etcdctl --endpoints="$U" user grant-role root root >/dev/null
etcdctl --endpoints="$U" auth enable >/dev/null
check "$U" auth root secret-pw 2
ok "authentication: as root, token renewed after its TTL"

# Every member down (this one killed, plus a port nobody listens on).
kill -9 "${ETCD_PID[0]}"
check "$U,http://127.0.0.1:$(free_port)" down unavailable

# ---- three members ----
etcd_cluster 3
ok "three members: $ETCD_ENDPOINTS"
check "$ETCD_ENDPOINTS" basic
check "$ETCD_ENDPOINTS" cas
check "$ETCD_ENDPOINTS" watch

# failover MODE: kill -9 the member the client uses (the leader, or a
# follower), between two of its calls.
failover() {
  coproc FO { "$PROG" "$ETCD_ENDPOINTS" failover "$1" 2>>"$T/prog.log"; }
  # bash unsets FO and FO_PID when the coprocess ends: keep them.
  local fo_pid=$FO_PID fo_out fo_in word line
  exec {fo_out}<&"${FO[0]}" {fo_in}>&"${FO[1]}"
  read -r -t 10 word url <&"$fo_out" || fail "failover check did not start"
  [ "$word" = using ] || fail "failover check said: $word $url"
  victim=${ETCD_PID[$(etcd_index_of "$url")]}
  # Reaped before the next call: a request written while the process dies
  # is in doubt (PR__ETCD_EINDOUBT), rightly -- the kernel took it, etcd may
  # have. Once it is gone its connections are closed and the client sees so.
  kill -9 "$victim"
  wait "$victim" 2>/dev/null || true
  echo go >&"$fo_in"
  while read -r -t 15 line <&"$fo_out"; do echo "$line"; done
  wait "$fo_pid" || fail "failover check ($1) failed"
  exec {fo_out}<&- {fo_in}>&-
  sanitizer_clean "$T/prog.log"
  ok "killed the $1 at $url"
}
failover follower

# A minority: kill a second member, the third one alone cannot write.
for i in 0 1 2; do
  if [ "${ETCD_CLIENT[i]}" != "$url" ]; then
    kill -9 "${ETCD_PID[i]}"
    wait "${ETCD_PID[i]}" 2>/dev/null || true
    ok "killed member at ${ETCD_CLIENT[i]}: one of three left"
    break
  fi
done
check "$ETCD_ENDPOINTS" minority

# All three down.
for i in 0 1 2; do kill -9 "${ETCD_PID[i]}" 2>/dev/null || true; done
check "$ETCD_ENDPOINTS" down unavailable

# A new cluster, whose leader is killed under the client.
etcd_cluster 3
ok "three members: $ETCD_ENDPOINTS"
failover leader

pass
