#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The etcd backend with several agents, tested the way such systems are
# (issue 15; tests/integration/HA.md): a 3-member etcd cluster, 3 agents
# sharing the commands of one prefix (MQTT shared subscription), each
# reaching etcd through its own cuttable proxy, and 8 clients
# (ha_workload.py) contending for 3 days x 2 providers of one source, while
#   - an agent is kill -9ed and restarted (twice),
#   - an agent is cut off from etcd, refused then silent, and healed,
#   - the publisher is SIGSTOPped past its lease and resumed,
#   - the etcd leader is kill -9ed and restarted,
#   - the publisher is kill -9ed.
# Then ha_check.py --writers many over the recorded history: one holder at a
# time, fences strictly rising, no acknowledged command lost or applied
# twice, the retained state converged to etcd's (read through the agents),
# no impossible refusal. Timings are measured and printed (failover times
# for the README), never asserted, except the safety ones: a deposed
# publisher must stop publishing, and a write to an agent without etcd gets
# a 503 store_unavailable within the etcd client's deadline (quick, never
# a hang) while reads go on.
# HA_SEED repeats a run's fault schedule and client choices.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ha.sh"
. "$(dirname "$0")/lib_etcd.sh"
etcd_require

SEED=${HA_SEED:-$((($$ + $(date +%s)) % 32768))}
RANDOM=$SEED
S=ha
TTL=4
echo "seed $SEED (HA_SEED=$SEED repeats it); 3 etcd members, 3 agents, publisher lease ${TTL} s"

ha_python
now_us() { date +%s%6N; }
msleep() {
  local ms=$(($1 + RANDOM % ($2 - $1 + 1)))
  sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
}

etcd_cluster 3 --max-txn-ops 10000 >/dev/null
start_broker false
N=3
for i in $(seq 0 $((N - 1))); do etcd_proxy "a$i"; done

start_ha_agent() { etcd_agent_start "$1" "${PROXY_URL[a$1]}" --publisher-ttl "$TTL"; }
kill_ha_agent() { etcd_agent_kill "$1"; }
publisher() { etcd_publisher; }
# status_epoch: the epoch of the retained agent status when online, else 0.
status_epoch() { sub1 "$P/agent/status" | jq -r 'if .status == "online" then .epoch else 0 end' 2>/dev/null || echo 0; }
# wait_new_publisher EPOCH: until the retained status is online with an
# epoch above EPOCH; prints the milliseconds it took.
wait_new_publisher() {
  local t0 e
  t0=$(now_us)
  for _ in $(seq 300); do
    e=$(status_epoch)
    if [ "${e:-0}" -gt "$1" ]; then echo $((($(now_us) - t0) / 1000)); return 0; fi
    sleep 0.1
  done
  fail "no new publisher within 30 s (status epoch still $e)"
}

for i in $(seq 0 $((N - 1))); do start_ha_agent "$i"; done
for _ in $(seq 100); do [ "$(publisher)" -ge 0 ] && break; sleep 0.1; done
[ "$(publisher)" -ge 0 ] || fail "no agent became the publisher"
ok "3 agents online; agent $(publisher) publishes (epoch $(status_epoch))"

ha_workload setup --source "$S" --providers 2 --token-file "$T/token" >"$T/setup.log" 2>&1 ||
  { cat "$T/setup.log"; fail "workload setup"; }
# A live subscriber to the source's summary and the agents' status for
# the whole run: the summaries must never go backwards in (epoch, seq),
# whoever publishes, and each one's epoch is one an "online" status
# announced before it (the retained copies read at the subscription
# excepted: "%r" marks them).
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -F '%r %t %p' -t "$P/state/$S" \
  -t "$P/agent/status" >"$T/live_summary" 2>/dev/null &
PIDS+=($!)
ha_workload run --source "$S" --providers 2 --token-file "$T/token" --clients 8 --partitions 3 \
  --duration 150 --stop-file "$T/stop" --out "$T/ops" --seed "$SEED" --attempt-s 1.0 --attempts 4 \
  >"$T/workload.log" 2>&1 &
WL=$!
PIDS+=("$WL")
for _ in $(seq 100); do [ -s "$T/ops/c0.jsonl" ] && break; sleep 0.1; done
[ -s "$T/ops/c0.jsonl" ] || fail "the clients did not start: $(cat "$T/workload.log")"
alive() { kill -0 "$WL" 2>/dev/null || fail "the workload exited early: $(tail -n 5 "$T/workload.log")"; }

: >"$T/faults"
fault() { echo "$1 $(now_us) ${2:-}" >>"$T/faults"; }

# 1. Agents killed -9 and restarted (one of them the publisher, if chosen).
for k in 1 2; do
  msleep 2000 4000
  alive
  v=$((RANDOM % N))
  fault agent_kill "$v"
  kill_ha_agent "$v"
  msleep 500 2000
  start_ha_agent "$v"
  fault agent_start "$v"
done

# 2. An agent cut off from etcd: refused, then silent; healed each time.
for mode in refused silent; do
  msleep 2000 3000
  alive
  v=$((RANDOM % N))
  fault "etcd_cut_$mode" "$v"
  proxy_cut "a$v" "$mode"
  msleep 3000 5000
  proxy_heal "a$v"
  fault etcd_heal "$v"
done

# 3. The publisher paused past its lease, then resumed: another must
# publish, and the paused one must not publish again once resumed.
msleep 2000 3000
alive
pub=$(publisher)
[ "$pub" -ge 0 ] || fail "no publisher before the pause"
e0=$(status_epoch)
fault publisher_stop "$pub"
kill -STOP "${APID[pub]}"
took=$(wait_new_publisher "$e0")
fault publisher_replaced "$took"
echo "# publisher (agent $pub) paused: another publishes after $took ms"
sleep 2
kill -CONT "${APID[pub]}"
fault publisher_cont "$pub"
sleep 1
grep -q "stops publishing\|no longer the publisher" "$T/agent$pub.log" ||
  fail "the resumed publisher (agent $pub) did not say it stopped publishing"
ok "the resumed publisher knows it was deposed"

# 4. The etcd leader killed -9, restarted 2-4 s later.
msleep 2000 3000
alive
L=$(etcd_leader)
fault etcd_leader_kill "$L"
etcd_kill "$L"
msleep 2000 4000
etcd_restart "$L"
fault etcd_leader_restart "$L"

# 5. The publisher killed -9 (and restarted once another publishes).
msleep 2000 3000
alive
pub=$(publisher)
e0=$(status_epoch)
fault publisher_kill "$pub"
kill_ha_agent "$pub"
took=$(wait_new_publisher "$e0")
fault publisher_replaced "$took"
echo "# publisher (agent $pub) killed -9: another publishes after $took ms"
start_ha_agent "$pub"
fault agent_start "$pub"

msleep 3000 4000
fault faults_end
ha_finish --writers many

# Retained state never went backwards: the live summaries, in arrival order.
python3 - "$T/live_summary" <<'EOF' || fail "a live summary went backwards or had an unannounced epoch"
import json, sys
keys, announced, unannounced = [], set(), []
for line in open(sys.argv[1]):
    retained, topic, payload = line.split(" ", 2)
    if not payload.startswith("{"):
        continue
    m = json.loads(payload)
    if topic.endswith("/agent/status"):
        if m["status"] == "online":
            announced.add(m["epoch"])
        continue
    keys.append((m["epoch"], m["seq"]))
    if m["epoch"] not in announced and retained == "0":
        unannounced.append(keys[-1])
back = [(a, b) for a, b in zip(keys, keys[1:]) if b < a]
print(f"# {len(keys)} live summaries from {len({k[0] for k in keys})} publisher epochs; "
      f"went back: {back[:5]}; under an epoch not announced online before: {unannounced[:5]}")
sys.exit(1 if back or unannounced or len(keys) < 10 else 0)
EOF
ok "live summaries never went backwards in (epoch, seq), each under an epoch announced online"

# Progress after each fault, and the failover numbers: the time from a
# fault to the first acknowledged command invoked after it.
python3 - "$T/ops" "$T/faults" >"$T/progress.log" <<'EOF' || { cat "$T/progress.log"; fail "no progress after a fault"; }
import json, pathlib, sys
ops = [json.loads(l) for f in sorted(pathlib.Path(sys.argv[1]).glob("c*.jsonl")) for l in f.read_text().splitlines()]
oks = sorted(o["complete_wall"] for o in ops if o["outcome"] == "ok")
bad, lines = 0, []
for line in pathlib.Path(sys.argv[2]).read_text().splitlines():
    name, t, *rest = line.split()
    if name in ("faults_end", "publisher_replaced"):
        continue
    after = [c for c in oks if c > int(t)]
    if not after:
        bad += 1
        lines.append(f"{name}: no acknowledged command after it")
    else:
        lines.append(f"{name} {' '.join(rest)}: next ok after {(after[0] - int(t)) / 1000:.0f} ms")
print(f"# {len(ops)} commands, {len(oks)} ok; " + "; ".join(lines))
sys.exit(1 if bad else 0)
EOF
cat "$T/progress.log"
ok "progress after every fault"

# Idle agents, the publisher and the others: no busy loop (each wakes for
# its campaign or a look at its lease a few times a second at most).
declare -A ticks0=()
for i in $(seq 0 $((N - 1))); do ticks0[$i]=$(awk '{print $14 + $15}' "/proc/${APID[i]}/stat"); done
sleep 2
for i in $(seq 0 $((N - 1))); do
  ticks=$(($(awk '{print $14 + $15}' "/proc/${APID[i]}/stat") - ticks0[$i]))
  [ "$ticks" -lt 50 ] || fail "agent $i used $ticks ticks of CPU in 2 idle seconds"
done
ok "idle agents (publisher: $(publisher)): under 50 ticks of CPU each in 2 s"

# Failure behaviour: one agent alone, cut off from etcd (silent: the worst
# case, nothing answers): a write gets 503 store_unavailable, quickly;
# reads go on from its read index.
for i in $(seq 0 $((N - 1))); do [ "$i" = 0 ] || kill_ha_agent "$i"; done
sleep 1
proxy_cut a0 silent
TOKEN=$(cat "$T/token")
t0=$(now_us)
r=$(rr partition/register "{\"source\":\"$S\",\"provider\":\"p0\",\"start\":\"2030-01-01T00:00:00Z\",\"end\":\"2030-01-02T00:00:00Z\",\"access_token\":\"$TOKEN\"}")
ms=$((($(now_us) - t0) / 1000))
expect "$r" '.ok == false and .status == 503 and .error.code == "store_unavailable"' \
  "cut off from etcd: a write gets 503 store_unavailable ($ms ms)"
[ "$ms" -lt 8000 ] || fail "the 503 took $ms ms: not quick"
expect "$(rr source/get "{\"source\":\"$S\"}")" '.ok' "cut off from etcd: reads answer from the read index"
expect "$(rr readiness/query "{\"source\":\"$S\",\"start\":\"2000-01-01T00:00:00Z\",\"end\":\"2100-01-01T00:00:00Z\"}")" '.ok' \
  "cut off from etcd: readiness answers"
proxy_heal a0
expect "$(rr_until_ok partition/register "{\"source\":\"$S\",\"provider\":\"p0\",\"start\":\"2030-01-01T00:00:00Z\",\"end\":\"2030-01-02T00:00:00Z\",\"access_token\":\"$TOKEN\"}")" \
  '.ok' "healed: writes go through again"
echo "# write refused while cut off from etcd after $ms ms"
# A graceful stop: SIGTERM, exit 0, no sanitizer report (leaks at exit).
etcd_agent_term 0
for i in $(seq 0 $((N - 1))); do sanitizer_clean "$T/agent$i.log"; done
ok "SIGTERM: agent 0 exits 0; no sanitizer report in any agent's log"
# Why batches were refused (503), by the agents' logs: for the record.
echo "# refused batches by reason:"
cat "$T"/agent*.log | sed -n 's/.*batch of [0-9]* commands not applied: //p' |
  sed 's/[0-9][0-9]*/N/g' | sort | uniq -c | sort -rn | head -n 8 || true
echo "# batches run again after another agent's change: $(cat "$T"/agent*.log | grep -c 'the batch runs again' || true)"
pass
