#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The HA harness against today's single LMDB agent (tests/integration/HA.md):
# 8 clients (ha_workload.py) contend for 3 days x 2 providers of one source
# -- lock with a ttl_s of 1-4 s (half under a session), renew, unlock or
# fail with the fence, session/abort, leases left to run out -- each command
# resent with the same request_id after a timeout, while the agent is
# kill -9ed and restarted (HA_KILLS times, default 6) and the broker is
# kill -9ed and restarted once (retained state lost: the agent must
# republish it). Then the agent's record and the broker's retained state
# are collected and ha_check.py must find no violation of its properties
# (one holder at a time, fences rising, every acknowledged command in the
# history once, nothing applied twice, retained state converged, no
# impossible refusal), and the clients must have made progress after every
# restart. Safety properties only: no timing is asserted.
#
# Also proves the checker can fail: its hand-made bad histories
# (ha_histories/, --self-test) and two doctored copies of this run's record
# (an acknowledged event dropped; a fence handed out twice) must fail.
# HA_SEED repeats a run's fault schedule and client choices.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ha.sh"

SEED=${HA_SEED:-$((($$ + $(date +%s)) % 32768))}
RANDOM=$SEED
KILLS=${HA_KILLS:-6}
S=ha
echo "seed $SEED (HA_SEED=$SEED repeats it), $KILLS kills -9 of the agent, 1 of the broker"

# The checker first: every hand-made bad history must fail, the good ones pass.
ha_check --self-test "$HA_DIR/ha_histories" >"$T/selftest.log" 2>&1 ||
  { cat "$T/selftest.log"; fail "ha_check.py --self-test"; }
ok "checker self-test: $(tail -n 1 "$T/selftest.log")"

ha_python
now_us() { date +%s%6N; }
msleep() {
  local ms=$(($1 + RANDOM % ($2 - $1 + 1)))
  sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
}

start_broker false
start_agent
ha_workload setup --source "$S" --providers 2 --token-file "$T/token" >"$T/setup.log" 2>&1 ||
  { cat "$T/setup.log"; fail "workload setup"; }

ha_workload run --source "$S" --providers 2 --token-file "$T/token" --clients 8 --partitions 3 \
  --duration 80 --stop-file "$T/stop" --out "$T/ops" --seed "$SEED" --attempt-s 0.8 --attempts 3 \
  >"$T/workload.log" 2>&1 &
WL=$!
PIDS+=("$WL")
for _ in $(seq 100); do [ -s "$T/ops/c0.jsonl" ] && break; sleep 0.1; done
[ -s "$T/ops/c0.jsonl" ] || fail "the clients did not start: $(cat "$T/workload.log")"

# The faults: the agent killed at a random moment 1-3 s after it came
# online and left down 0-1.5 s (commands pile up in its broker session; a
# client's attempt waits 0.8 s, so some commands are sent again with their
# request_id, and some end unknown after 3 attempts);
# halfway, the broker killed instead and restarted empty (no persistence:
# the retained state is gone, the agent's session too).
: >"$T/faults"
for i in $(seq "$KILLS"); do
  msleep 1000 3000
  kill -0 "$WL" 2>/dev/null || fail "the workload exited early: $(tail -n 5 "$T/workload.log")"
  if [ "$i" -eq $((KILLS / 2)) ]; then
    echo "broker_kill $(now_us)" >>"$T/faults"
    stop_broker
    msleep 200 800
    start_broker false
    echo "broker_start $(now_us)" >>"$T/faults"
    wait_online
    msleep 1000 3000
  fi
  echo "agent_kill $(now_us)" >>"$T/faults"
  kill_agent
  msleep 0 1500
  echo "agent_start $(now_us)" >>"$T/faults"
  start_agent
  echo "agent_online $(now_us)" >>"$T/faults"
done
msleep 2000 3000
echo "faults_end $(now_us)" >>"$T/faults"
ha_finish

# Progress, and the numbers: ops by outcome, and after each restart (agent
# or broker) the time to the first acknowledged command invoked after it.
python3 - "$T/ops" "$T/faults" >"$T/progress.log" <<'EOF' || { cat "$T/progress.log"; fail "no progress after a restart"; }
import json, pathlib, sys
ops = [json.loads(l) for f in sorted(pathlib.Path(sys.argv[1]).glob("c*.jsonl")) for l in f.read_text().splitlines()]
faults = [l.split() for l in pathlib.Path(sys.argv[2]).read_text().splitlines()]
oks = sorted(o["complete_wall"] for o in ops if o["outcome"] == "ok")
bad, lines = 0, []
for name, t in faults:
    if name not in ("agent_start", "broker_start"):
        continue
    t = int(t)
    after = [c for c in oks if c > t]
    if not after:
        bad += 1
        lines.append(f"{name} at +{t}: no acknowledged command after it")
    else:
        lines.append(f"{name}: first ok {(after[0] - t) / 1000:.0f} ms after the restart")
kills = sum(1 for n, _ in faults if n == "agent_kill")
print(f"# {len(ops)} commands, {len(oks)} ok; {kills} agent kills -9, "
      f"{sum(1 for n, _ in faults if n == 'broker_kill')} broker kill -9; " + "; ".join(lines))
sys.exit(1 if bad else 0)
EOF
cat "$T/progress.log"
ok "progress after every restart"

pass
