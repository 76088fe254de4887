#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Smoke run of every benchmark (tests/bench/run.sh) at tiny sizes, so that
# none of them rots: each figure must produce a number and the table must be
# written. Never checks a timing: benchmarks do not fail on a slow machine.
# Then pr_bench_etcd_raw on its own against a fresh etcd, checking what it
# wrote there (with etcd installed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_etcd.sh"
: "${PARTREG_BUILD_DIR:?set by ctest}"
ETCD_RAW=${PR_BENCH_ETCD_RAW:?set by ctest: path to pr_bench_etcd_raw}
out="$T/out"
have_etcd=0
if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then have_etcd=1; fi
# The keep-all republish run passes --ready-expiry 0; an agent built before
# that flag existed runs it with no flag (the same policy).
if ! "${PARTREGD:?set by ctest}" --help 2>&1 | grep -q -- '--ready-expiry'; then
  export BENCH_KEEPALL_FLAGS=
fi
BENCH_SKIP_BUILD=1 BENCH_BUILD_DIR="$PARTREG_BUILD_DIR" BENCH_OUT="$out" BENCH_REPEATS=1 \
  BENCH_INFLIGHT="1 4" BENCH_RTT_N=40 BENCH_REGISTER_PRE=100 \
  BENCH_DURABLE_N=64 BENCH_DURABLE_C=16 BENCH_LMDB_N=20 \
  BENCH_STORE_SIZES="100 1000" BENCH_STORE_SAMPLES=100 BENCH_REPUBLISH_N=300 \
  BENCH_WAIT_N=5 BENCH_BRIDGE_N=2 BENCH_HTTP_SECS=1 \
  BENCH_MIRROR_SIZES="100 1000" BENCH_MIRROR_SAMPLES=100 \
  bash "$PARTREG_SOURCE_DIR/tests/bench/run.sh" >"$T/bench.log" 2>&1 || {
  tail -n 40 "$T/bench.log"
  fail "tests/bench/run.sh failed"
}
ok "run.sh finished"
[ -s "$out/results.md" ] || fail "no results.md"
# One row per figure: query and lock at 1 and 4 in flight, register at 16,
# durable, unlock → summary p50/p99 local and bridged, query time at 100 and
# 1000, republish and the broker's RSS under the default policy and keep-all,
# memory; the mirror's reversed inserts at 100 and 1000, its in-order
# inserts at 1000, readiness, snapshot, read p99 and redelivery; and with
# wrk installed, the http group's readiness (original
# route and /v1) and lock+unlock through partreg-http at 1 and 4
# connections; with etcd and a partregd that has --etcd (issue 15's backend),
# the etcd agent's lock+unlock against the raw etcd loop and against the
# LMDB agent at 1 and 4 in flight; each with a number as its value (second
# column).
want=24
if command -v wrk >/dev/null 2>&1; then
  want=$((want + 6))
  grep -q '^| readiness over HTTP (GET /sources/{s}/check_readiness), requests/s, 4 connections' "$out/results.md" ||
    fail "no http readiness figure"
  grep -q '^| lock+unlock over HTTP' "$out/results.md" || fail "no http lock+unlock figure"
else
  echo "NOTE: no wrk: the http group is not smoked"
fi
if [ $have_etcd = 1 ]; then
  # The raw loop's rates are a note of results.md: "…: 1 1 RATE;1 4 RATE."
  rates=$(sed -n 's/^Raw etcd txn loop, commands\/s ([^)]*): //p' "$out/results.md")
  [[ "$rates" =~ ^1\ 1\ [0-9.]+\;1\ 4\ [0-9.]+\.$ ]] || fail "no raw etcd loop rates in results.md: '$rates'"
  ok "raw etcd txn loop in results.md: $rates"
  if grep -q -- '--etcd' <<<"$("$PARTREGD" --help 2>&1 || true)"; then
    want=$((want + 4))
    grep -q '^| etcd agent lock+unlock commands/s (replies), 4 in flight | [0-9.]* | raw etcd txn loop' \
      "$out/results.md" || fail "no etcd agent ÷ raw etcd loop figure"
  else
    grep -q "^The etcd agent's rows are missing: .* has no --etcd" "$out/results.md" ||
      fail "results.md does not say why the etcd agent's rows are missing"
    echo "NOTE: partregd has no --etcd: the etcd group's agent rows are not smoked"
  fi
else
  echo "NOTE: no etcd: the etcd group is not smoked"
fi
rows=$(grep '^| [a-z]' "$out/results.md" | grep -vc '^| figure |' || true)
[ "$rows" -eq "$want" ] || fail "expected $want figures in results.md, found $rows"
ok "$want figures"
while IFS= read -r row; do
  val=$(awk -F'|' '{ gsub(/ /, "", $3); print $3 }' <<<"$row")
  [[ "$val" =~ ^[0-9.e+-]+$ ]] || fail "no number in: $row"
  ok "$(cut -d'|' -f2 <<<"$row" | sed 's/^ *//; s/ *$//'): $val"
done < <(grep '^| [a-z]' "$out/results.md" | grep -v '^| figure |')
grep -q "^Machine: [0-9]* cores" "$out/results.md" || fail "no machine line"
ok "machine printed"
if command -v gnuplot >/dev/null 2>&1; then
  [ -s "$out/results.png" ] || fail "gnuplot is installed but no results.png"
  ok "results.png written"
fi

# ---- pr_bench_etcd_raw on its own: what it says it did is in etcd ----
# 20 commands from 2 clients: 20 committed txns (the store's revision up by
# exactly 20: a failed compare writes nothing), and the keys of the run: a
# guard and a record per client, an idempotency key per command.
if [ $have_etcd = 1 ]; then
  etcd_cluster 1
  # count: keys under the loop's prefix; revision: the store's.
  count() { etcdctl_at 0 get --prefix partreg-bench/raw/ -w json | jq '.count // 0'; }
  revision() { etcdctl_at 0 endpoint status -w json | jq '.[0].Status.header.revision'; }
  keys0=$(count) rev0=$(revision)
  line=$("$ETCD_RAW" --etcd "${ETCD_CLIENT[0]}" -n 20 -c 2 2>"$T/etcd-raw.log") ||
    fail "pr_bench_etcd_raw failed: $line $(cat "$T/etcd-raw.log")"
  ok "pr_bench_etcd_raw -n 20 -c 2: $line"
  [[ "$line" =~ ^n=20\ c=2\ secs=[0-9.]+\ rate=[0-9.]+\ min=[0-9]+\ .*\ retries=0\ errors=0$ ]] ||
    fail "not the line run.sh reads: $line"
  rate=$(sed -nE 's/.* rate=([0-9.]+) .*/\1/p' <<<"$line")
  awk -v r="$rate" 'BEGIN { exit !(r > 0) }' || fail "rate $rate is not positive"
  keys1=$(count) rev1=$(revision)
  [ "$keys1" -eq $((keys0 + 24)) ] || fail "etcd keys under partreg-bench/raw/: $keys0 → $keys1, not +24"
  [ "$rev1" -eq $((rev0 + 20)) ] || fail "etcd revision $rev0 → $rev1, not +20 (one per txn)"
  ok "etcd: 24 keys more (2 guards, 2 records, 20 idempotency keys), revision +20"
  # Each guard was put once per command of its client: version 10.
  for s in 0 1; do
    v=$(etcdctl_at 0 get --prefix partreg-bench/raw/ -w json |
      jq -r --arg s "/s$s/guard" '[.kvs[] | select(.key | @base64d | endswith($s)) | .version] | add')
    [ "$v" = 10 ] || fail "client $s's guard has version $v, not 10"
  done
  ok "each client's guard written 10 times"
fi
FAILED=0
echo PASS
