#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run fuzz_decode and fuzz_client for PARTREG_FUZZ_SECONDS each (default 30)
# over a corpus kept in PARTREG_FUZZ_WORK (it grows from run to run), seeded
# with schemas/examples/ and tests/fuzz/seeds/. Fails on any crash, leak,
# sanitizer report, broken promise (a harness CHECK) or per-input timeout,
# printing the report and how to reproduce it; otherwise prints each
# target's executions and coverage.
#
# ctest runs it in the sanitizer build (tests/fuzz/CMakeLists.txt) with
# PARTREG_SOURCE_DIR and PARTREG_FUZZ_WORK set, and either
# PARTREG_FUZZ_DECODE/PARTREG_FUZZ_CLIENT (the build's compiler is clang:
# the targets are built there) or CMAKE_COMMAND and PARTREG_FUZZ_GENERATOR
# (gcc: configure this project with clang in PARTREG_FUZZ_WORK/clang and
# build just the two targets; the next run only rebuilds what changed).
# Exit 77 (a skip) without clang or its libFuzzer runtime.
set -uo pipefail
src=${PARTREG_SOURCE_DIR:?set by ctest: the source tree}
work=${PARTREG_FUZZ_WORK:?set by ctest: a directory of the build}
secs=${PARTREG_FUZZ_SECONDS:-30}
decode=${PARTREG_FUZZ_DECODE:-}
client=${PARTREG_FUZZ_CLIENT:-}

skip() {
  echo "SKIP: $*"
  exit 77
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
mkdir -p "$work" || fail "cannot create $work"

if [ -z "$decode" ]; then
  cc=${PARTREG_FUZZ_CC:-}
  if [ -z "$cc" ]; then
    for c in clang clang-14 clang-15 clang-16; do
      cc=$(command -v $c) && break
    done
  fi
  [ -n "$cc" ] || skip "clang is not installed (Debian 12: apt-get install clang libclang-rt-14-dev, as compose/install-deps.sh does)"
  printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$work/probe.c"
  "$cc" -fsanitize=fuzzer,address,undefined "$work/probe.c" -o "$work/probe" >"$work/probe.log" 2>&1 ||
    { cat "$work/probe.log"; skip "$cc cannot link -fsanitize=fuzzer: no libFuzzer runtime (Debian 12: apt-get install libclang-rt-14-dev)"; }
  cmake=${CMAKE_COMMAND:-cmake}
  gen=()
  [ -n "${PARTREG_FUZZ_GENERATOR:-}" ] && gen=(-G "$PARTREG_FUZZ_GENERATOR")
  sub=$work/clang
  # A fresh directory when the compiler changed (CMake refuses to switch).
  if [ -f "$sub/CMakeCache.txt" ] && ! grep -qx "CMAKE_C_COMPILER:[A-Z]*=$cc" "$sub/CMakeCache.txt"; then
    rm -rf "$sub"
  fi
  echo "building fuzz_decode and fuzz_client with $cc in $sub"
  # Debug with -O1: asserts stay on, and the fuzzer still runs fast. A
  # warning only clang gives in src/ is not this test's business (the
  # harnesses themselves always build with -Werror).
  "$cmake" -S "$src" -B "$sub" "${gen[@]}" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
    -DBUILD_TESTING=ON -DPARTREG_SANITIZE=OFF -DPARTREG_WERROR=OFF \
    >"$work/configure.log" 2>&1 ||
    { cat "$work/configure.log"; fail "configuring the clang build failed"; }
  "$cmake" --build "$sub" --target fuzz_decode fuzz_client -j "${PARTREG_FUZZ_JOBS:-2}" \
    >"$work/build.log" 2>&1 ||
    { tail -n 60 "$work/build.log"; fail "building the fuzz targets with clang failed"; }
  decode=$sub/tests/fuzz/fuzz_decode
  client=$sub/tests/fuzz/fuzz_client
fi

# Seeds, written afresh each run. fuzz_decode's input is
# "<command name>\n<payload>" (fuzz_decode.c): each example under
# schemas/examples/cmd/<noun>.<verb>/ gets its command's name.
seeds=$work/seeds
rm -rf "$seeds" && mkdir -p "$seeds/decode" "$seeds/client" || fail "cannot write $seeds"
shopt -s nullglob globstar
for f in "$src"/schemas/examples/cmd/*/*/*.json; do
  rel=${f#"$src/schemas/examples/cmd/"}
  dir=${rel%%/*}
  { printf '%s\n' "${dir/./\/}"; cat "$f"; } >"$seeds/decode/${rel//\//_}"
done
for f in "$src"/schemas/examples/**/*.json; do
  rel=${f#"$src/schemas/examples/"}
  cp "$f" "$seeds/client/${rel//\//_}"
done
for t in decode client; do
  for f in "$src"/tests/fuzz/seeds/$t/*; do cp "$f" "$seeds/$t/"; done
done

status=0
# run NAME BINARY: fuzz for $secs seconds; 0 when nothing was found.
run() {
  local name=$1 bin=$2 log=$work/$1.log corpus=$work/corpus/$1 art=$work/artifacts/$1
  rm -rf "$art"
  mkdir -p "$corpus" "$art"
  # -error_exitcode: libFuzzer's default, 77, would read as a skip to ctest.
  "$bin" -max_total_time="$secs" -timeout=10 -error_exitcode=1 -timeout_exitcode=1 \
    -print_final_stats=1 -dict="$src/tests/fuzz/fuzz_$name.dict" -artifact_prefix="$art/" \
    "$corpus" "$seeds/$name" >"$log" 2>&1
  local rc=$?
  local done_line runs cov ft corp eps
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
  runs=$(sed -nE 's/^stat::number_of_executed_units:[[:space:]]+([0-9]+)/\1/p' "$log" | tail -n 1)
  eps=$(sed -nE 's/^stat::average_exec_per_sec:[[:space:]]+([0-9]+)/\1/p' "$log" | tail -n 1)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$done_line")
  if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|broken promise' "$log"; then
    echo "=== fuzz_$name FAILED (exit $rc); the report (all of it in $log):"
    # From the first report line to the sanitizer's summary, and the input.
    sed -nE '/ERROR: |runtime error:|broken promise|deadly signal/,/^SUMMARY:/p' "$log" | head -n 60
    grep -E '^(MS: |Base64: |artifact_prefix=)' "$log" || tail -n 40 "$log"
    for a in "$art"/*; do
      echo "--- reproducer: $a ($(stat -c %s "$a") bytes), first bytes:"
      head -c 512 "$a" | od -c | head -n 20
      echo "--- reproduce with: $bin $a"
    done
    status=1
    return 1
  fi
  echo "fuzz_$name: ${runs:-?} runs in ${secs} s (${eps:-?} exec/s), cov ${cov:-?} edges, ft ${ft:-?} features, corpus ${corp:-?} inputs ($corpus)"
}

run decode "$decode"
run client "$client"
exit $status
