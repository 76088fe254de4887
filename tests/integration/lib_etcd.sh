# SPDX-License-Identifier: MIT
# etcd members for the tests (sourced after lib.sh): each on free loopback
# ports, its data under $T, killed by PID on exit like everything in PIDS.
#
#   etcd_cluster N [etcd flags...]  start N members as one new cluster and
#                                   wait until it has a leader; sets
#                                   ETCD_URLS ("u1,u2,u3"), ETCD_URL[i],
#                                   ETCD_PID[i] (i from 0)
#   etcd_pid_of URL                 the PID of the member at URL

command -v etcd >/dev/null && command -v etcdctl >/dev/null || {
  echo "etcd or etcdctl not installed (Debian: etcd-server etcd-client): skipped"
  exit 77
}

ETCD_URL=()
ETCD_PID=()
ETCD_URLS=""
ETCD_CLUSTERS=0

# A port nothing listens on (loopback; random, so parallel tests rarely
# meet; etcd failing to bind is retried by etcd_cluster).
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  fail "no free port"
}

etcd_healthy() { curl -s -m 1 "$1/health" 2>/dev/null | jq -e '.health == "true"' >/dev/null 2>&1; }

etcd_cluster() {
  local n=$1 i try
  shift
  for try in 1 2 3; do
    ETCD_CLUSTERS=$((ETCD_CLUSTERS + 1))
    local tag="c$ETCD_CLUSTERS" peers=() clients=() initial=""
    for ((i = 0; i < n; i++)); do
      clients[i]="http://127.0.0.1:$(free_port)"
      peers[i]="http://127.0.0.1:$(free_port)"
      initial+="${initial:+,}$tag-m$i=${peers[i]}"
    done
    ETCD_URL=()
    ETCD_PID=()
    for ((i = 0; i < n; i++)); do
      etcd --name "$tag-m$i" --data-dir "$T/etcd-$tag-m$i" \
        --listen-client-urls "${clients[i]}" --advertise-client-urls "${clients[i]}" \
        --listen-peer-urls "${peers[i]}" --initial-advertise-peer-urls "${peers[i]}" \
        --initial-cluster "$initial" --initial-cluster-state new \
        --initial-cluster-token "partreg-$tag-$$" "$@" >>"$T/etcd-$tag-m$i.log" 2>&1 &
      ETCD_PID[i]=$!
      PIDS+=("$!")
      ETCD_URL[i]=${clients[i]}
    done
    ETCD_URLS=$(IFS=,; echo "${ETCD_URL[*]}")
    local up=0
    for _ in $(seq 100); do
      up=1
      for ((i = 0; i < n; i++)); do etcd_healthy "${ETCD_URL[i]}" || { up=0; break; }; done
      [ $up -eq 1 ] && return 0
      for ((i = 0; i < n; i++)); do kill -0 "${ETCD_PID[i]}" 2>/dev/null || { up=2; break; }; done
      [ $up -eq 2 ] && break
      sleep 0.1
    done
    echo "etcd cluster $tag did not come up (try $try)"
    for ((i = 0; i < n; i++)); do kill -9 "${ETCD_PID[i]}" 2>/dev/null || true; done
  done
  fail "could not start a $n-member etcd cluster"
}

etcd_pid_of() {
  local i
  for i in "${!ETCD_URL[@]}"; do
    [ "${ETCD_URL[i]}" = "$1" ] && { echo "${ETCD_PID[i]}"; return 0; }
  done
  fail "no member at $1"
}
