#!/usr/bin/env bash
# libpartreg as its users get it: `cmake --install` into a scratch prefix,
# then only what was installed is used.
#  1. examples/ built with pkg-config, against libpartreg.so and (once)
#     against libpartreg.a (`pkg-config --static`);
#  2. examples/ built as a CMake project with find_package(partreg);
#  3. the examples run against the installed partregd and are driven with
#     the installed partreg CLI: readiness says not ready, then ready;
#     wait_ready, started before the unlock, returns 0 after it;
#  4. libpartreg.so exports exactly the functions declared PR_API in the
#     installed headers (the set is read from the headers), no pr__*;
#  5. the installed partreg CLI carries none of the agent's modules and
#     every pr_ symbol it needs is exported by libpartreg.so;
#  6. the installed binaries and man pages work.
# In the ASan build (PARTREG_SANITIZE=1) the installed library is
# instrumented, so the examples are compiled with the same sanitizers (an
# uninstrumented program cannot load an instrumented library).
# (The skip comes before lib.sh, whose exit trap would report it as a failure.)
for tool in cc cmake pkg-config nm readelf perl man; do
  command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
. "$(dirname "$0")/lib.sh"
: "${PARTREG_BUILD_DIR:?set by ctest}"
SRC=$PARTREG_SOURCE_DIR/examples
PREFIX=$T/prefix
cmake --install "$PARTREG_BUILD_DIR" --prefix "$PREFIX" >"$T/install.log" 2>&1 ||
  fail "cmake --install failed (see $T/install.log)"
SO=$(find "$PREFIX" -name libpartreg.so -type l | head -n 1)
[ -n "$SO" ] || fail "no libpartreg.so under $PREFIX"
LIBDIR=$(dirname "$SO")
for f in "$LIBDIR/libpartreg.so.1" "$LIBDIR/libpartreg.a" "$LIBDIR/pkgconfig/partreg.pc" \
  "$LIBDIR/cmake/partreg/partregConfig.cmake" "$PREFIX/include/partreg/partreg.h" \
  "$PREFIX/bin/partreg" "$PREFIX/sbin/partregd" "$PREFIX/sbin/partreg-http" \
  "$PREFIX/share/man/man1/partreg.1" "$PREFIX/share/man/man8/partregd.8" \
  "$PREFIX/share/man/man8/partreg-http.8" "$PREFIX/etc/partreg/partreg-http.conf"; do
  [ -e "$f" ] || fail "not installed: ${f#"$PREFIX"/}"
done
ok "installed into a scratch prefix (libdir ${LIBDIR#"$PREFIX"/})"
# The unit and config, with the unit's paths rewritten for this prefix.
grep -qx "ExecStart=$PREFIX/sbin/partregd --config $PREFIX/etc/partreg/partregd.conf --data-dir /var/lib/partreg" \
  "$PREFIX/lib/systemd/system/partregd.service" ||
  fail "unit: $(grep ExecStart "$PREFIX/lib/systemd/system/partregd.service" 2>&1)"
grep -qx "ExecStart=$PREFIX/sbin/partreg-http --config $PREFIX/etc/partreg/partreg-http.conf" \
  "$PREFIX/lib/systemd/system/partreg-http.service" ||
  fail "unit: $(grep ExecStart "$PREFIX/lib/systemd/system/partreg-http.service" 2>&1)"
ok "partregd.service, partreg-http.service and their configs in etc/partreg installed for this prefix"

SAN=()
[ "${PARTREG_SANITIZE:-0}" = 1 ] && SAN=(-fsanitize=address,undefined -fno-omit-frame-pointer)
CFLAGS=(-std=c11 -O1 -g -Wall -Wextra -Werror "${SAN[@]}")
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
# The relocatable .pc must point into the prefix, not at the build tree.
[ "$(pkg-config --variable=libdir partreg)" -ef "$LIBDIR" ] || fail "partreg.pc: libdir is not $LIBDIR"
[ "$(pkg-config --variable=includedir partreg)" -ef "$PREFIX/include" ] || fail "partreg.pc: includedir is not $PREFIX/include"
ok "partreg.pc is relocated into the prefix"

# resolves_to_prefix BIN: the dynamic loader finds libpartreg.so.1 in $LIBDIR.
resolves_to_prefix() {
  local where
  where=$(ldd "$1" | awk '$1 == "libpartreg.so.1" { print $3 }')
  [ -n "$where" ] && [ "$where" -ef "$LIBDIR/libpartreg.so.1" ] ||
    fail "$1 loads libpartreg.so.1 from '${where:-nowhere}', not $LIBDIR"
}

# ---- 1. pkg-config: shared, then static ----
mkdir -p "$T/pc" "$T/static"
for ex in readiness wait_ready; do
  # shellcheck disable=SC2046 # pkg-config's output is a list of words
  cc "${CFLAGS[@]}" -pthread -o "$T/pc/$ex" "$SRC/$ex.c" \
    $(pkg-config --cflags --libs partreg) -Wl,-rpath,"$LIBDIR" 2>>"$T/cc.log" ||
    fail "cc $ex.c with pkg-config --libs partreg (see $T/cc.log)"
  resolves_to_prefix "$T/pc/$ex"
  # The archive in place of -lpartreg, so the linker cannot pick the .so.
  # shellcheck disable=SC2046
  cc "${CFLAGS[@]}" -pthread -o "$T/static/$ex" "$SRC/$ex.c" $(pkg-config --cflags partreg) \
    $(pkg-config --static --libs partreg | sed "s|-lpartreg\\b|$LIBDIR/libpartreg.a|") \
    2>>"$T/cc.log" || fail "cc $ex.c against libpartreg.a with pkg-config --static (see $T/cc.log)"
  # (Outputs go to files: grep -q would end a pipe early, which pipefail
  # reports as a failure.)
  readelf -d "$T/static/$ex" >"$T/readelf.out"
  ! grep -q 'libpartreg\.so' "$T/readelf.out" || fail "static $ex needs libpartreg.so"
  nm "$T/static/$ex" >"$T/nm.out"
  grep -q ' T pr_client_open$' "$T/nm.out" || fail "static $ex lacks pr_client_open"
done
ok "examples built with pkg-config (shared and --static)"

# ---- 2. CMake: find_package(partreg) ----
CM=(-DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_C_FLAGS="${CFLAGS[*]}")
[ ${#SAN[@]} -eq 0 ] || CM+=(-DCMAKE_EXE_LINKER_FLAGS="${SAN[*]}")
cmake -S "$SRC" -B "$T/cm" "${CM[@]}" >"$T/cmake.log" 2>&1 || fail "cmake -S examples (see $T/cmake.log)"
grep -q "^partreg_DIR:PATH=$LIBDIR/cmake/partreg\$" "$T/cm/CMakeCache.txt" ||
  fail "find_package(partreg) found $(grep ^partreg_DIR "$T/cm/CMakeCache.txt"), not the prefix's"
cmake --build "$T/cm" >>"$T/cmake.log" 2>&1 || fail "cmake --build examples (see $T/cmake.log)"
resolves_to_prefix "$T/cm/readiness"
resolves_to_prefix "$T/cm/wait_ready"
ok "examples built with find_package(partreg)"

# ---- 3. run them: the installed agent and CLI ----
PARTREGD=$PREFIX/sbin/partregd
CLI=$PREFIX/bin/partreg
resolves_to_prefix "$CLI"
start_broker
start_agent --config "$PREFIX/etc/partreg/partregd.conf"
export PARTREG_BROKER=mqtt://127.0.0.1:$PORT
S=inst
A=2024-05-01T00:00:00Z
B=2024-05-02T00:00:00Z
C=2024-05-03T00:00:00Z
new_source $S
cli() { PARTREG_TOKEN=$TOKEN "$CLI" --json "$@" >"$T/cli.out" 2>>"$T/cli.log"; }
cli partition register $S --provider p --start $A --end $B || fail "partreg partition register"
cli partition lock $S --provider p --start $A --end $B || fail "partreg partition lock"
FENCE=$(jq -r .fence "$T/cli.out")
ok "partition registered and locked with the installed CLI (fence $FENCE)"
# The installed front door, with its installed config (the flags win over
# its broker and listen lines), loading the installed library.
PARTREG_HTTP=$PREFIX/sbin/partreg-http
resolves_to_prefix "$PARTREG_HTTP"
. "$(dirname "$0")/lib_http.sh"
start_http --config "$PREFIX/etc/partreg/partreg-http.conf"
hcall GET "/v1/sources/$S/partitions"
hexpect 200 '[.items[].state] == ["locked"]' "the installed partreg-http shows the lock from the retained state"
stop_http

# run_rc WANT DESC CMD...: CMD exits WANT; its output is in $T/run.out.
run_rc() {
  local want=$1 desc=$2 rc=0
  shift 2
  "$@" >"$T/run.out" 2>>"$T/run.err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$T/run.out" "$T/run.err" >&2; fail "$desc: exit $rc, expected $want"; }
  ok "$desc"
}
for b in pc static cm; do
  run_rc 1 "readiness ($b): not ready while locked" "$T/$b/readiness" $S $A $B
  expect "$(cat "$T/run.out")" '.ok and .result.ready == false' "readiness ($b) printed the reply"
done
run_rc 2 "readiness: an unknown source is an error" "$T/pc/readiness" nosuch $A $B
run_rc 2 "readiness: a bad time is an error" "$T/pc/readiness" $S yesterday $B
run_rc 1 "wait_ready (static): times out on a locked interval" "$T/static/wait_ready" $S $A $B 1

# wait_ready from before the unlock: it must be waiting (subscribed, told
# not ready) when the unlock comes, and return 0 after it.
"$T/cm/wait_ready" $S $A $B 30 >"$T/wait.out" 2>&1 &
WAIT_PID=$!
PIDS+=("$WAIT_PID")
for _ in $(seq 100); do grep -q '^waiting' "$T/wait.out" && break; sleep 0.1; done
grep -q '^waiting' "$T/wait.out" || fail "wait_ready did not subscribe: $(cat "$T/wait.out")"
sleep 0.3
kill -0 "$WAIT_PID" 2>/dev/null || fail "wait_ready returned before the unlock: $(cat "$T/wait.out")"
ok "wait_ready is waiting"
cli partition unlock $S --provider p --start $A --end $B --fence "$FENCE" || fail "partreg partition unlock"
rc=0
for _ in $(seq 100); do kill -0 "$WAIT_PID" 2>/dev/null || break; sleep 0.1; done
wait "$WAIT_PID" || rc=$?
[ $rc -eq 0 ] || fail "wait_ready exited $rc after the unlock: $(cat "$T/wait.out")"
grep -q 'ready$' "$T/wait.out" || fail "wait_ready printed: $(cat "$T/wait.out")"
ok "wait_ready returned 0 after the unlock"
for b in pc static cm; do
  run_rc 0 "readiness ($b): ready after the unlock" "$T/$b/readiness" $S $A $B
  expect "$(cat "$T/run.out")" '.ok and .result.ready == true' "readiness ($b) printed the reply"
done
run_rc 0 "wait_ready (pkg-config): ready at once" "$T/pc/wait_ready" $S $A $B 10
run_rc 1 "readiness: a longer interval has a gap" "$T/pc/readiness" $S $A $C
[ ${#SAN[@]} -eq 0 ] || { for f in "$T/run.err" "$T/wait.out"; do [ ! -f "$f" ] || sanitizer_clean "$f"; done; }

# ---- 4. exports of libpartreg.so == PR_API of the installed headers ----
# Comments stripped, declarations joined, then the name before the first
# "(" of each PR_API declaration; export.h's own #define has no pr_ name.
perl -0777 -pe 's{/\*.*?\*/}{}gs' "$PREFIX"/include/partreg/*.h | tr '\n' ' ' |
  grep -o 'PR_API[^;(]*(' | sed -n 's/.*[^A-Za-z0-9_]\(pr_[A-Za-z0-9_]*\) *($/\1/p' |
  sort -u >"$T/api.txt"
grep -qx pr_client_open "$T/api.txt" || fail "no PR_API functions found in the headers: $(cat "$T/api.txt")"
nm -D --defined-only "$LIBDIR/libpartreg.so" >"$T/nm.txt"
# ASan/UBSan add their own hooks (__asan_*, __ubsan_*) to an instrumented
# library; only the project's names are compared.
awk '$2 ~ /^[TtWiD]$/ { print $3 }' "$T/nm.txt" | grep -Ev '^(__(asan|ubsan|lsan|sanitizer)_|_init$|_fini$)' |
  sort -u >"$T/exports.txt"
if ! diff -u "$T/api.txt" "$T/exports.txt" >"$T/exports.diff"; then
  cat "$T/exports.diff" >&2
  fail "libpartreg.so exports differ from the PR_API declarations (- headers only, + exported only)"
fi
! grep -q ' pr__' "$T/nm.txt" || fail "libpartreg.so exports internal symbols: $(grep ' pr__' "$T/nm.txt" | head -n 5)"
ok "libpartreg.so exports exactly the $(wc -l <"$T/api.txt") PR_API functions, no pr__"

# ---- 5. the CLI: a user of the library, none of the agent inside ----
nm "$CLI" >"$T/cli.nm" 2>/dev/null || nm -D "$CLI" >"$T/cli.nm"
if grep -E ' (pr__store_|pr__json_|pr__handle|pr__cmd_decode)' "$T/cli.nm" >"$T/cli.bad"; then
  fail "the installed partreg holds agent modules: $(head -n 5 "$T/cli.bad")"
fi
# And by name from the build, so a renamed module is still caught: no
# global symbol of the agent's modules (libpartregd_core.a, which also holds
# common/) is defined in the CLI.
CORE=$PARTREG_BUILD_DIR/src/libpartregd_core.a
[ -f "$CORE" ] || fail "no $CORE"
nm --defined-only -g "$CORE" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u >"$T/core.syms"
awk 'NF == 3 && $2 != "U" { print $3 }' "$T/cli.nm" | sort -u >"$T/cli.syms"
both=$(comm -12 "$T/core.syms" "$T/cli.syms")
[ -z "$both" ] || fail "the installed partreg defines agent symbols: $(head -n 5 <<<"$both")"
readelf -d "$CLI" >"$T/readelf.out"
grep -q 'NEEDED.*libpartreg\.so\.1' "$T/readelf.out" || fail "partreg does not link libpartreg.so.1"
nm -D --undefined-only "$CLI" | awk '{ print $NF }' | grep '^pr_' | sort -u >"$T/cli.undef"
[ -s "$T/cli.undef" ] || fail "partreg uses no pr_ function of the library"
missing=$(comm -23 "$T/cli.undef" "$T/exports.txt")
[ -z "$missing" ] || fail "partreg needs pr_ symbols libpartreg.so does not export: $missing"
ok "partreg: none of the $(wc -l <"$T/core.syms") agent/common symbols; its $(wc -l <"$T/cli.undef") pr_ imports are all exported"

# ---- 6. the installed binaries and pages ----
"$PARTREGD" --version >"$T/v.out" 2>&1 || fail "partregd --version: $(cat "$T/v.out")"
grep -q '[0-9]\.[0-9]' "$T/v.out" || fail "partregd --version: $(cat "$T/v.out")"
"$CLI" --version >"$T/v.out" 2>&1 || fail "partreg --version: $(cat "$T/v.out")"
grep -q '[0-9]\.[0-9]' "$T/v.out" || fail "partreg --version: $(cat "$T/v.out")"
ok "partregd --version, partreg --version"
for page in man8/partregd.8 man1/partreg.1; do
  name=$(basename "$page" | cut -d. -f1)
  MANWIDTH=80 MANPAGER=cat PAGER=cat man -l "$PREFIX/share/man/$page" >"$T/man.out" 2>"$T/man.err" ||
    fail "man -l $page: $(cat "$T/man.err")"
  grep -q "^NAME" "$T/man.out" && grep -qi "^ *$name " "$T/man.out" || fail "man -l $page rendered no NAME section for $name"
  ! grep -qi 'warning' "$T/man.err" || fail "man -l $page: $(cat "$T/man.err")"
done
ok "man -l renders partregd(8) and partreg(1)"
pass
