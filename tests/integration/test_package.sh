#!/usr/bin/env bash
# The Debian package (`cpack -G DEB`, CPack settings at the end of the top
# CMakeLists.txt): built from the plain build into a scratch directory, its
# control data and contents checked, then used as installed:
# - as root, when no partreg package is installed yet (and no other run of
#   this test holds the lock), `dpkg -i` into this machine, the installed
#   /usr/sbin/partregd and /usr/bin/partreg run against a broker on a free
#   loopback port, examples/readiness.c compiled with the system's
#   pkg-config (and the examples with find_package), then `dpkg --purge`
#   (always, also when the test fails);
# - otherwise (or with PARTREG_PACKAGE_EXTRACT=1) `dpkg -x` into a scratch
#   root and the same from there, with LD_LIBRARY_PATH and PKG_CONFIG_PATH.
# Skipped in the ASan build: the package is built from the plain one.
# Skips come before lib.sh, whose exit trap would report them as failures.
if [ "${PARTREG_SANITIZE:-0}" = 1 ]; then
  echo "SKIP: the package is made from the plain build, not the sanitizer build"
  exit 77
fi
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps file cc pkg-config cmake flock; do
  command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
. "$(dirname "$0")/lib.sh"
: "${PARTREG_BUILD_DIR:?set by ctest}"

# ---- build the package ----
cpack -G DEB -B "$T/pkg" --config "$PARTREG_BUILD_DIR/CPackConfig.cmake" >"$T/cpack.log" 2>&1 ||
  fail "cpack -G DEB failed (see $T/cpack.log)"
VERSION=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$PARTREG_BUILD_DIR/CPackConfig.cmake")
DEB=$T/pkg/partreg_${VERSION}_$(dpkg --print-architecture).deb
[ -f "$DEB" ] || fail "no $(basename "$DEB"); cpack made: $(ls "$T/pkg")"
ok "cpack made $(basename "$DEB")"

# ---- control data ----
dpkg-deb --info "$DEB" >"$T/info.txt"
field() { dpkg-deb --field "$DEB" "$1"; }
[ "$(field Package)" = partreg ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$VERSION" ] || fail "Version: $(field Version)"
# Depends come from dpkg-shlibdeps: the libraries the binaries link.
for dep in libc6 libpaho-mqtt liblmdb libjson-c libuuid libssl; do
  field Depends | grep -q "$dep" || fail "Depends lacks $dep: $(field Depends)"
done
[ "$(field Recommends)" = mosquitto ] || fail "Recommends: $(field Recommends)"
dpkg-deb --ctrl-tarfile "$DEB" | tar -x -C "$T" -f - ./conffiles ./shlibs ||
  fail "no conffiles or shlibs in the control archive"
for c in partregd.conf partreg-http.conf; do
  grep -qx "/etc/partreg/$c" "$T/conffiles" || fail "$c is not a conffile: $(cat "$T/conffiles")"
done
grep -q '^libpartreg 1 partreg' "$T/shlibs" || fail "shlibs: $(cat "$T/shlibs")"
ok "control: Depends from shlibdeps ($(field Depends | tr -d '\n' | cut -c1-60)...), Recommends mosquitto, conffile, shlibs"

# ---- contents ----
dpkg-deb --contents "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||' >"$T/contents.txt"
SO1=$(grep -E '^/usr/lib(/[a-z0-9_-]+-linux-gnu[a-z0-9_]*)?/libpartreg\.so\.1$' "$T/contents.txt" || true)
[ -n "$SO1" ] || fail "no libpartreg.so.1 under /usr/lib: $(grep libpartreg "$T/contents.txt")"
LIBDIR=$(dirname "$SO1")
for f in /usr/sbin/partregd /usr/sbin/partreg-http /usr/bin/partreg \
  "$LIBDIR/libpartreg.so" "$LIBDIR/libpartreg.so.1" "$LIBDIR/libpartreg.so.$VERSION" "$LIBDIR/libpartreg.a" \
  /usr/include/partreg/partreg.h /usr/include/partreg/client.h /usr/include/partreg/export.h \
  "$LIBDIR/pkgconfig/partreg.pc" "$LIBDIR/cmake/partreg/partregConfig.cmake" \
  "$LIBDIR/cmake/partreg/partregConfigVersion.cmake" "$LIBDIR/cmake/partreg/partregTargets.cmake" \
  /usr/share/man/man8/partregd.8 /usr/share/man/man1/partreg.1 \
  /usr/lib/systemd/system/partregd.service /etc/partreg/partregd.conf \
  /usr/share/man/man8/partreg-http.8 /usr/lib/systemd/system/partreg-http.service \
  /etc/partreg/partreg-http.conf \
  /usr/share/doc/partreg/examples/readiness.c /usr/share/doc/partreg/examples/wait_ready.c; do
  grep -qx "$f" "$T/contents.txt" || fail "the package lacks $f"
done
for h in "$PARTREG_SOURCE_DIR"/include/partreg/*.h; do
  grep -qx "/usr/include/partreg/$(basename "$h")" "$T/contents.txt" || fail "the package lacks header $(basename "$h")"
done
# Nothing outside /usr and /etc/partreg (no build paths, no /usr/local).
if grep -vE '^(/usr(/.*)?|/etc|/etc/partreg(/.*)?)$' "$T/contents.txt" >"$T/stray.txt"; then
  fail "files outside /usr and /etc/partreg: $(head -n 5 "$T/stray.txt")"
fi
! grep -q '^/usr/local' "$T/contents.txt" || fail "the package installs into /usr/local"
ok "contents: binaries, libpartreg.so*/.a in $LIBDIR, headers, .pc, CMake package, man pages, unit, config"

# The unit starts the packaged binary with the packaged config.
dpkg-deb --fsys-tarfile "$DEB" | tar -xO -f - ./usr/lib/systemd/system/partregd.service >"$T/unit"
grep -q '^ExecStart=/usr/sbin/partregd --config /etc/partreg/partregd.conf ' "$T/unit" ||
  fail "the unit's ExecStart: $(grep ExecStart "$T/unit")"
ok "partregd.service: ExecStart=/usr/sbin/partregd --config /etc/partreg/partregd.conf"
dpkg-deb --fsys-tarfile "$DEB" | tar -xO -f - ./usr/lib/systemd/system/partreg-http.service >"$T/unit-http"
grep -qx 'ExecStart=/usr/sbin/partreg-http --config /etc/partreg/partreg-http.conf' "$T/unit-http" ||
  fail "partreg-http.service's ExecStart: $(grep ExecStart "$T/unit-http")"
ok "partreg-http.service: ExecStart=/usr/sbin/partreg-http --config /etc/partreg/partreg-http.conf"

# ---- install: into this machine, or extracted ----
exec 9>"${TMPDIR:-/tmp}/partreg-test-package.lock"
MODE=extract
if [ "$(id -u)" -eq 0 ] && [ "${PARTREG_PACKAGE_EXTRACT:-0}" != 1 ] && flock -n 9 &&
  ! dpkg-query -W -f='${Status}' partreg 2>/dev/null | grep -q installed; then
  MODE=system
fi
PURGE=0
purge() {
  [ "$PURGE" = 1 ] || return 0
  PURGE=0
  dpkg --purge partreg >>"$T/dpkg.log" 2>&1 || echo "dpkg --purge partreg failed (see $T/dpkg.log)" >&2
}
# lib.sh's cleanup reads the exit status as $?: hand it on past the purge
# ("|| cleanup", since set -e would end the trap at a bare failing "(exit)").
trap 'rc=$?; purge; if [ $rc -eq 0 ]; then cleanup; else (exit $rc) || cleanup; fi' EXIT

if [ $MODE = system ]; then
  PURGE=1
  dpkg -i "$DEB" >"$T/dpkg.log" 2>&1 || fail "dpkg -i failed (see $T/dpkg.log)"
  R=""
  unset PKG_CONFIG_PATH LD_LIBRARY_PATH
  dpkg-query -W -f='${Status}' partreg | grep -q 'install ok installed' || fail "partreg is not installed after dpkg -i"
  [ -f /etc/partreg/partregd.conf ] || fail "no /etc/partreg/partregd.conf after dpkg -i"
  ok "dpkg -i $(basename "$DEB")"
else
  R=$T/root
  dpkg -x "$DEB" "$R" || fail "dpkg -x failed"
  export LD_LIBRARY_PATH=$R$LIBDIR
  export PKG_CONFIG_PATH=$R$LIBDIR/pkgconfig
  ok "dpkg -x into a scratch root (not root, or a partreg package is already installed)"
fi

# The packaged agent, with the packaged config (the flags start_agent adds
# win over its broker line).
PARTREGD=$R/usr/sbin/partregd
start_broker
start_agent --config "$R/etc/partreg/partregd.conf"
ok "$R/usr/sbin/partregd runs with $R/etc/partreg/partregd.conf"
CLI=$R/usr/bin/partreg
[ "$(ldd "$CLI" | awk '$1 == "libpartreg.so.1" { print $3 }')" -ef "$R$LIBDIR/libpartreg.so.1" ] ||
  fail "$CLI does not load the packaged libpartreg.so.1: $(ldd "$CLI" | grep partreg)"
"$CLI" --broker "mqtt://127.0.0.1:$PORT" --json source register pkg --owner o >"$T/cli.out" 2>"$T/cli.err" ||
  fail "partreg source register: $(cat "$T/cli.err")"
expect "$(cat "$T/cli.out")" '.source == "pkg" and .owner == "o" and (.access_token | length) == 36' \
  "$CLI source register: a round trip with the packaged agent"
# The packaged front door, with its packaged config, loading the packaged
# library.
PARTREG_HTTP=$R/usr/sbin/partreg-http
[ "$(ldd "$PARTREG_HTTP" | awk '$1 == "libpartreg.so.1" { print $3 }')" -ef "$R$LIBDIR/libpartreg.so.1" ] ||
  fail "$PARTREG_HTTP does not load the packaged libpartreg.so.1: $(ldd "$PARTREG_HTTP" | grep partreg)"
. "$(dirname "$0")/lib_http.sh"
start_http --config "$R/etc/partreg/partreg-http.conf"
hcall GET /v1/sources/pkg
hexpect 200 '.source == "pkg" and .owner == "o"' "$PARTREG_HTTP with its packaged config: the source's summary"
stop_http

# A user's program from the packaged headers, .pc and library.
# shellcheck disable=SC2046 # pkg-config's output is a list of words
cc -Wall -Wextra -Werror -o "$T/readiness" "$R/usr/share/doc/partreg/examples/readiness.c" \
  $(pkg-config --cflags --libs partreg) 2>"$T/cc.log" || fail "cc readiness.c with pkg-config: $(cat "$T/cc.log")"
cmp -s "$R/usr/share/doc/partreg/examples/readiness.c" "$PARTREG_SOURCE_DIR/examples/readiness.c" ||
  fail "the packaged readiness.c differs from examples/readiness.c"
[ "$(ldd "$T/readiness" | awk '$1 == "libpartreg.so.1" { print $3 }')" -ef "$R$LIBDIR/libpartreg.so.1" ] ||
  fail "readiness does not load the packaged libpartreg.so.1"
rc=0
PARTREG_BROKER=mqtt://127.0.0.1:$PORT "$T/readiness" pkg 2024-01-01T00:00:00Z 2024-01-02T00:00:00Z \
  >"$T/readiness.out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "readiness: exit $rc (expected 1, not ready): $(cat "$T/readiness.out")"
expect "$(cat "$T/readiness.out")" '.ok and .result.ready == false' "readiness.c built with pkg-config --cflags --libs partreg"
if [ $MODE = system ]; then
  # find_package from the default paths, no CMAKE_PREFIX_PATH.
  cmake -S /usr/share/doc/partreg/examples -B "$T/cm" >"$T/cmake.log" 2>&1 &&
    cmake --build "$T/cm" >>"$T/cmake.log" 2>&1 || fail "examples with find_package(partreg) (see $T/cmake.log)"
  grep -q "^partreg_DIR:PATH=$LIBDIR/cmake/partreg\$" "$T/cm/CMakeCache.txt" || fail "find_package did not find $LIBDIR/cmake/partreg"
  ok "examples built with find_package(partreg) from $LIBDIR/cmake/partreg"
  [ "$(man -w partregd)" = /usr/share/man/man8/partregd.8 ] || fail "man -w partregd: $(man -w partregd 2>&1)"
  ok "man partregd finds the page"
fi
stop_agent

if [ $MODE = system ]; then
  purge
  ! dpkg-query -W -f='${Status}' partreg 2>/dev/null | grep -q installed || fail "partreg still installed after purge"
  for f in /usr/sbin/partregd /usr/bin/partreg "$SO1" /etc/partreg/partregd.conf "$LIBDIR/pkgconfig/partreg.pc"; do
    [ ! -e "$f" ] || fail "$f is left after dpkg --purge"
  done
  ok "dpkg --purge partreg removed it all, the conffile too"
fi
pass
