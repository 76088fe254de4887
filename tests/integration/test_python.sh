#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Python package (python/): installed into a venv as users install it
# (pip install, not editable: the installed package is what is tested), then
# ruff, ruff format, mypy --strict, and pytest, whose fixtures start their
# own mosquitto and the partregd of this build ($PARTREGD).
#
# The venv lives in $PARTREG_BUILD_DIR/python-venv and is kept between runs
# while python/pyproject.toml (the pinned dependencies) and the Python are
# the same: a stamp file holds their hash. The package itself is reinstalled
# every run, from a copy of python/ (a build writes into its source tree),
# without build isolation, so that a kept venv needs no network.
#
# Skipped (77) only when there is no python3 >= 3.11 able to make a venv; a
# failing or slow pip install fails the test.
. "$(dirname "$0")/lib.sh"

: "${PARTREG_BUILD_DIR:=$PARTREG_SOURCE_DIR/build}"
PKG=$PARTREG_SOURCE_DIR/python
VENV=$PARTREG_BUILD_DIR/python-venv
PY=${PARTREG_PYTHON:-python3}

if ! command -v "$PY" >/dev/null ||
   ! "$PY" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "no python3 >= 3.11 with venv and ensurepip here: skipped"
  exit 77
fi

stamp=$({ sha256sum "$PKG/pyproject.toml"; "$PY" -c 'import sys; print(sys.version, sys.executable)'; } |
  sha256sum | cut -c1-64)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.partreg-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "making $VENV"
  rm -rf "$VENV"
  if ! "$PY" -m venv "$VENV" >"$T/venv.log" 2>&1; then
    cat "$T/venv.log"
    echo "$PY cannot make a venv: skipped"
    exit 77
  fi
  # The build backend first (the version pyproject.toml asks for), then the
  # package with its pinned dependencies and the [dev] tools.
  backend=$(sed -n 's/^requires = \["\(setuptools==[0-9.]*\)"\]$/\1/p' "$PKG/pyproject.toml")
  [ -n "$backend" ] || fail "no pinned setuptools in $PKG/pyproject.toml [build-system]"
  "$VENV/bin/pip" install -q "$backend" || fail "pip install $backend"
  cp -r "$PKG" "$T/pkg"
  rm -rf "$T/pkg/tests"
  "$VENV/bin/pip" install -q --no-build-isolation "$T/pkg[dev]" || fail "pip install python[dev]"
  echo "$stamp" >"$VENV/.partreg-stamp"
  rm -rf "$T/pkg"
fi
cp -r "$PKG" "$T/pkg"
rm -rf "$T/pkg/tests"
"$VENV/bin/pip" install -q --no-deps --no-build-isolation --force-reinstall "$T/pkg" ||
  fail "pip install python"
installed=$(cd "$T" && "$VENV/bin/python" -c 'import partreg; print(partreg.__file__, partreg.__version__)')
case "$installed" in
  "$VENV"/lib/*/site-packages/partreg/__init__.py\ 0.2.0) ok "installed: $installed" ;;
  *) fail "partreg is not the installed package: $installed" ;;
esac

cd "$PKG"
# Caches go to the build tree, not the source tree.
export RUFF_CACHE_DIR=$VENV/.ruff_cache MYPY_CACHE_DIR=$VENV/.mypy_cache
"$VENV/bin/ruff" check . || fail "ruff check"
ok "ruff check"
"$VENV/bin/ruff" format --check . || fail "ruff format --check (run: ruff format python/)"
ok "ruff format --check"
"$VENV/bin/mypy" --strict || fail "mypy --strict"
ok "mypy --strict"

# pytest from the source tree's tests, against the installed package (src
# layout: python/src is not on sys.path). Under the sanitizer build PARTREGD
# is the ASan+UBSan partregd; the fixtures check its log for reports.
t0=$(date +%s)
PARTREGD=$PARTREGD PARTREG_VECTORS=$PARTREG_SOURCE_DIR/tests/vectors \
  "$VENV/bin/pytest" -p no:cacheprovider --basetemp="$T/pytest" -q --durations=5 tests ||
  fail "pytest"
ok "pytest ($(($(date +%s) - t0)) s)"
pass
