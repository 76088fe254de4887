#!/usr/bin/env bash
# Build everything twice, plain and under AddressSanitizer + UBSan, and run
# the whole test suite (unit and integration) in both builds.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
compose/install-deps.sh || exit 1
jobs=$(nproc 2>/dev/null || echo 2)
passed=0; failed=0; status=0
for variant in plain asan; do
  dir=build
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
  if [ $variant = asan ]; then
    dir=build-asan
    flags=(-DCMAKE_BUILD_TYPE=Debug -DPARTREG_SANITIZE=ON)
  fi
  echo "=== $variant build ($dir) ==="
  cmake -S . -B $dir -G Ninja "${flags[@]}" >/dev/null || exit 1
  cmake --build $dir || exit 1
  echo "=== $variant tests ==="
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir $dir -j "$jobs" --output-on-failure 2>&1 | tee $dir/ctest.log
  rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || status=1
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' $dir/ctest.log | tail -1)
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  nfail=$(sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$line")
  if [ -z "$line" ]; then total=0; nfail=1; status=1; fi
  passed=$((passed + total - nfail)); failed=$((failed + nfail))
done
echo
echo "$passed passed, $failed failed"
exit $status
