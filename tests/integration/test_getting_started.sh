#!/usr/bin/env bash
# What a new user reads first (README "The two commands" and "Getting
# partreg, and installing") leads somewhere:
#  1. the README's install block runs as written, with `sudo` a no-op,
#     `build` this build and `cmake --install` given a scratch --prefix;
#     then `partreg --help` and `man partreg` work from the install (the
#     README never said how to get the CLI, and `man partreg` failed);
#  2. `man -l cli/partreg.1`, for the uninstalled CLI, renders;
#  3. every repository path named in compose/ and the README exists
#     (mosquitto.conf pointed to a compose/README.md that never existed).
for tool in cmake man; do
  command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_readme.sh"
: "${PARTREG_BUILD_DIR:?set by ctest}"

# 1. In a directory where build is this build.
PREFIX=$T/prefix
mkdir -p "$T/top"
ln -s "$PARTREG_BUILD_DIR" "$T/top/build"
readme_block install >"$T/install.sh"
(
  cd "$T/top"
  sudo() { "$@"; }
  cmake() {
    if [ "${1:-}" = --install ]; then command cmake "$@" --prefix "$PREFIX"; else command cmake "$@"; fi
  }
  export PATH=$PREFIX/bin:$PREFIX/sbin:$PATH MANPATH=$PREFIX/share/man MANPAGER=cat PAGER=cat
  export CMAKE_BUILD_PARALLEL_LEVEL=2
  set -e
  # shellcheck disable=SC1091
  . "$T/install.sh"
) >"$T/install.log" 2>&1 || fail "the README's install block failed: $(cat "$T/install.sh" "$T/install.log")"
[ -x "$PREFIX/bin/partreg" ] || fail "the README's install block installed no bin/partreg"
grep -q 'partreg' "$T/install.log" || fail "partreg --help and man partreg printed nothing"
out=$(PATH=$PREFIX/bin:$PATH MANPATH=$PREFIX/share/man man -w partreg) ||
  fail "man partreg finds no manual after the install"
[ "$out" = "$PREFIX/share/man/man1/partreg.1" ] || fail "man partreg finds $out"
ok "the README's install block: partreg --help and man partreg work from the install"

# 2.
MANPAGER=cat man -l "$PARTREG_SOURCE_DIR/cli/partreg.1" 2>/dev/null | grep -q 'partreg' ||
  fail "man -l cli/partreg.1 shows nothing"
ok "man -l cli/partreg.1"

# 3. Paths as compose/ and the README write them: under a top-level folder
# of the repository. compose/secrets/ is made by the user (compose.yaml's
# first steps say how); {a,b} is brace expansion.
cd "$PARTREG_SOURCE_DIR"
missing=0
for f in README.md compose/* compose/*/*; do
  [ -f "$f" ] || continue
  grep -oE '(^|[^A-Za-z0-9_./-])(compose|tests|cli|src|lib|common|include|examples|schemas|\.ci)/[A-Za-z0-9_.*{},/-]*[A-Za-z0-9_*}]' "$f" |
    sed -E 's/^[^a-z.]//' | sort -u >"$T/paths" || true
  while read -r p; do
    case $p in compose/secrets | compose/secrets/*) continue ;; esac
    # shellcheck disable=SC2086 # globs and braces, as the text means them
    eval "ls -d $p" >/dev/null 2>&1 || { echo "$f names $p, which does not exist" >&2; missing=1; }
  done <"$T/paths"
done
[ $missing -eq 0 ] || fail "paths named in compose/ or the README do not exist"
ok "every path named in compose/ and the README exists"
FAILED=0
echo PASS
