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

# ha_finish [ha_check.py flags...]: end the workload started as $WL (its
# --stop-file is $T/stop, its --out $T/ops, its --token-file $T/token,
# source $S, seed $SEED) and check its run: the snapshot of the agent's
# record and the retained state (once the leases have run out and the
# retained state agrees, or 20 s passed: then the checker says what did not
# converge; 30 acknowledged commands resent as they were), ha_check.py with
# the flags (any violation fails the test), and then the checker proven
# able to fail on this very run's record, doctored twice: an acknowledged
# lock's event dropped (C1) and a later lock given an earlier lock's fence
# (B3).
ha_finish() {
  local rc=0
  touch "$T/stop"
  wait "$WL" || rc=$?
  [ $rc -eq 0 ] || fail "the workload exited $rc: $(tail -n 5 "$T/workload.log")"
  ok "workload: $(tail -n 1 "$T/workload.log")"
  ha_workload snapshot --source "$S" --token-file "$T/token" --ops "$T/ops" \
    --out "$T/snapshot.json" --seed "$SEED" >"$T/snapshot.log" 2>&1 ||
    { cat "$T/snapshot.log"; fail "snapshot"; }
  ok "$(tail -n 1 "$T/snapshot.log")"
  if ! ha_check "$@" --ops "$T/ops" --snapshot "$T/snapshot.json" --json "$T/check.json" \
    >"$T/check.log" 2>&1; then
    cat "$T/check.log"
    fail "ha_check.py found violations"
  fi
  cat "$T/check.log"
  ok "checker: no violation"
  python3 - "$T/ops" "$T/snapshot.json" "$T" <<'PY' || fail "could not doctor the record"
import json, pathlib, random, sys
ops_dir, snap, out = pathlib.Path(sys.argv[1]), json.loads(pathlib.Path(sys.argv[2]).read_text()), pathlib.Path(sys.argv[3])
ops = [json.loads(l) for f in sorted(ops_dir.glob("c*.jsonl")) for l in f.read_text().splitlines()]
src = snap["source"]["result"]["source"]
locks = [o for o in ops if o["op"] == "lock" and o["outcome"] == "ok"]
rng = random.Random(1)
# 1. One acknowledged lock's event dropped from the history (an ack lost).
victim = rng.choice(locks)
s1 = json.loads(json.dumps(snap))
s1["history"][src] = [e for e in s1["history"][src] if e["seq"] != victim["result"]["seq"]]
(out / "doctored-drop.json").write_text(json.dumps(s1))
# 2. A later lock of the same source given an earlier lock's fence (a fence twice).
a, b = sorted(rng.sample(locks, 2), key=lambda o: o["result"]["fence"])
for o in ops:
    if o["request_id"] == b["request_id"]:
        o["result"]["fence"] = a["result"]["fence"]
d = out / "doctored-ops"
d.mkdir()
(d / "c0.jsonl").write_text("".join(json.dumps(o) + "\n" for o in ops))
PY
  ha_check "$@" --ops "$T/ops" --snapshot "$T/doctored-drop.json" >"$T/doctored-drop.log" 2>&1 &&
    fail "the checker passed a history that lost an acknowledged lock"
  grep -q 'VIOLATION C1' "$T/doctored-drop.log" || { cat "$T/doctored-drop.log"; fail "no C1 for the lost lock"; }
  ok "doctored (an acknowledged lock's event dropped): caught"
  ha_check "$@" --ops "$T/doctored-ops" --snapshot "$T/snapshot.json" >"$T/doctored-fence.log" 2>&1 &&
    fail "the checker passed a fence handed out twice"
  grep -q 'VIOLATION B3' "$T/doctored-fence.log" || { cat "$T/doctored-fence.log"; fail "no B3 for the fence twice"; }
  ok "doctored (a fence acknowledged to two locks): caught"
}
