#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Smoke run of every benchmark (tests/bench/run.sh) at tiny sizes, so that
# none of them rots: each figure must produce a number and the table must be
# written. Never checks a timing: benchmarks do not fail on a slow machine.
. "$(dirname "$0")/lib.sh"
: "${PARTREG_BUILD_DIR:?set by ctest}"
out="$T/out"
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
# connections; each with a number as its value (second column).
want=24
if command -v wrk >/dev/null 2>&1; then
  want=30
  grep -q '^| readiness over HTTP (GET /sources/{s}/check_readiness), requests/s, 4 connections' "$out/results.md" ||
    fail "no http readiness figure"
  grep -q '^| lock+unlock over HTTP' "$out/results.md" || fail "no http lock+unlock figure"
else
  echo "NOTE: no wrk: the http group is not smoked"
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
FAILED=0
echo PASS
