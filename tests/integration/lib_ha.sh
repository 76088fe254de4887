# SPDX-License-Identifier: MIT
# The HA harness (tests/integration/HA.md); source after lib.sh.
#
# ha_python: sets HA_PY, a python with paho-mqtt and aiomqtt (the versions
# python/pyproject.toml pins) and python/src on PYTHONPATH, for
# ha_workload.py. The venv is $PARTREG_BUILD_DIR/ha-venv, made once and kept
# while pyproject.toml and the python are the same (a stamp file written
# after a complete install; a lock file serialises two tests that want it).
# No python3 >= 3.11 with venv, or pip unable to reach its index: skip (77).
#
# ha_workload MODE ARGS...: runs ha_workload.py MODE against this test's
# broker. ha_check ARGS...: runs ha_check.py (stdlib only).

: "${PARTREG_BUILD_DIR:=$PARTREG_SOURCE_DIR/build}"
HA_DIR=$PARTREG_SOURCE_DIR/tests/integration
HA_VENV=$PARTREG_BUILD_DIR/ha-venv

ha_skip() {
  echo "SKIP: $*"
  FAILED=0
  exit 77
}

ha_python() {
  local py=${PARTREG_PYTHON:-python3} stamp pin log="$T/ha-venv.log"
  command -v "$py" >/dev/null &&
    "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    ha_skip "no python3 >= 3.11 with venv and ensurepip"
  # The package's pinned dependencies (paho-mqtt, aiomqtt: partreg imports both).
  pin=$(grep -oE '"(paho-mqtt|aiomqtt)==[0-9.]*"' "$PARTREG_SOURCE_DIR/python/pyproject.toml" | tr -d '"' | tr '\n' ' ')
  [ -n "$pin" ] || fail "no pinned paho-mqtt in python/pyproject.toml"
  stamp="$pin $("$py" -c 'import sys; print(sys.version.split()[0], sys.executable)')"
  exec 9>"$PARTREG_BUILD_DIR/ha-venv.lock"
  flock 9
  if [ "$(cat "$HA_VENV/.partreg-stamp" 2>/dev/null)" != "$stamp" ] || [ ! -x "$HA_VENV/bin/python" ]; then
    echo "  making $HA_VENV ($pin)"
    rm -rf "$HA_VENV"
    "$py" -m venv "$HA_VENV" >"$log" 2>&1 || { cat "$log"; ha_skip "$py cannot make a venv"; }
    if ! "$HA_VENV/bin/pip" install -q --timeout 20 --retries 1 $pin >>"$log" 2>&1; then
      tail -n 5 "$log"
      rm -rf "$HA_VENV"
      grep -qE 'NewConnectionError|Max retries exceeded|Temporary failure in name resolution|Network is unreachable|Connection refused|ProxyError|No matching distribution' "$log" &&
        ha_skip "pip cannot install $pin (no package index)"
      fail "pip install $pin"
    fi
    echo "$stamp" >"$HA_VENV/.partreg-stamp"
  fi
  flock -u 9
  HA_PY=$HA_VENV/bin/python
}

ha_workload() {
  local mode=$1
  shift
  PYTHONPATH=$PARTREG_SOURCE_DIR/python/src "$HA_PY" "$HA_DIR/ha_workload.py" "$mode" \
    --broker "mqtt://127.0.0.1:$PORT" "$@"
}

ha_check() { python3 "$HA_DIR/ha_check.py" "$@"; }
