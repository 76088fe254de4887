#!/usr/bin/env bash
# The cron and Airflow examples (compose/cron/, compose/airflow/), run for
# real against mosquitto + partregd, so an example that rots fails here.
#
# Cron: the crontab's job lines, taken from the file, run with cron's own
# rules (VAR=value lines as the environment, $SHELL -c, \% as %). The
# consumer line starts first and must be waiting; the producer line must
# make yesterday ready; the consumer's wait must then succeed and its load
# run.
#
# Airflow: the two DAG files run unchanged in Apache Airflow 3.3.2 (pip, a
# venv under the build directory, lib_airflow.sh), in two isolated
# instances: A (the producer DAG, its token in the workers' environment) and
# B (the consumer DAG, no token), sharing only the broker and the data
# directory. Airflow renders the templates and runs the tasks (`airflow
# dags test`): B's run starts first and its sensor must be waiting (partreg
# ready exits 1, re-poked), A's run must lock, export and unlock the run's
# data interval, then B's sensor must succeed and its load run with the
# same interval. Then: an export that fails fails the partition (with its
# exit status) and A's task; and B with an unreachable broker fails at
# once (exit 3 is not re-poked). No network is needed but pip's package
# index, the first time; without it the test is skipped (77).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_airflow.sh"
: "${PARTREG_CLI:?set by ctest: path to partreg}"
command -v python3 >/dev/null || fail "no python3 (cron's rules are read with it; Airflow runs on it)"
T_START=$(date +%s.%N)
EX=$PARTREG_SOURCE_DIR/compose
CRONTAB=$EX/cron/crontab
PRODUCER_DAG=$EX/airflow/sales_producer.py
CONSUMER_DAG=$EX/airflow/sales_consumer.py
for f in "$CRONTAB" "$EX/cron/export.sh" "$EX/cron/load.sh" "$PRODUCER_DAG" "$CONSUMER_DAG"; do
  [ -f "$f" ] || fail "missing example file $f"
done
# Airflow first: if pip cannot reach its index the test is skipped before
# anything runs.
airflow_venv
if [ "$AIRFLOW_VENV_REUSED" = 1 ]; then
  ok "Airflow $AIRFLOW_VERSION venv reused ($AIRFLOW_VENV_SECONDS s)"
else
  ok "Airflow $AIRFLOW_VERSION venv made ($AIRFLOW_VENV_SECONDS s)"
fi
start_broker
start_agent
BROKER=mqtt://127.0.0.1:$PORT
mkdir -p "$T/bin" "$T/sales" "$T/data-out"
ln -s "$PARTREG_CLI" "$T/bin/partreg"
cp "$EX/cron/export.sh" "$EX/cron/load.sh" "$T/sales/"
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
dur() { printf '%.1f' "$(secs "$1" "$2")"; }

# The source both examples write, with one provider per producer.
r=$(rr source/register '{"source":"sales","owner":"finance"}')
TOKEN=$(jq -r .result.access_token <<<"$r")
[ ${#TOKEN} -eq 36 ] || fail "could not register source sales"
provider() {
  rr provider/register "{\"source\":\"sales\",\"provider\":\"$1\",\"access_token\":\"$TOKEN\"}" | jq -r .result.provider_token
}
CRON_TOKEN=$(provider nightly_export)
AIRFLOW_TOKEN=$(provider airflow_export)
[ ${#CRON_TOKEN} -eq 36 ] && [ ${#AIRFLOW_TOKEN} -eq 36 ] || fail "could not register the providers"

# start_bg NAME SHELL COMMAND ENV...: run COMMAND with SHELL -c in a clean
# environment (env -i ENV...), in the background; exit status and time to
# $T/NAME.done.
start_bg() {
  local name=$1 sh=$2 cmd=$3
  shift 3
  ( set +e
    env -i "$@" "$sh" -c "$cmd" >"$T/$name.out" 2>"$T/$name.err"
    echo "$? $(date +%s.%N)" >"$T/$name.done" ) &
  PIDS+=("$!")
}
done_within() {
  for _ in $(seq $(($2 * 10))); do [ -s "$T/$1.done" ] && break; sleep 0.1; done
  [ -s "$T/$1.done" ] || { cat "$T/$1.out" "$T/$1.err" >&2; fail "$1 did not finish within $2 s"; }
  read -r DRC DAT <"$T/$1.done"
}
still_running() {
  [ ! -e "$T/$1.done" ] || { cat "$T/$1.out" "$T/$1.err" >&2; fail "$1 ended early: $(cat "$T/$1.done")"; }
}

# ================================ cron ================================
# Cron's rules: VAR=value lines set the environment (no expansion); a job
# line is five time fields and a command, run by $SHELL -c, in which an
# unescaped % ends the command (and \% is a %).
python3 - "$CRONTAB" "$T/cron" <<'PY' || fail "the crontab does not parse"
import re, sys
env, jobs = [], []
for raw in open(sys.argv[1]):
    line = raw.rstrip('\n')
    if not line.strip() or line.lstrip().startswith('#'):
        continue
    m = re.match(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$', line)
    if m and not re.match(r'^\s*[0-9*@]', line):
        v = m.group(2)
        if len(v) >= 2 and v[0] == v[-1] and v[0] in '"\'':
            v = v[1:-1]
        env.append(f'{m.group(1)}={v}')
        continue
    f = line.split(None, 5)
    if len(f) < 6 or not all(re.match(r'^[0-9*/,-]+$', x) for x in f[:5]):
        sys.exit(f'not a job line: {line}')
    cmd = f[5]
    if re.search(r'(?<!\\)%', cmd):
        sys.exit(f'unescaped % in a job line (cron cuts the command there): {cmd}')
    jobs.append(cmd.replace('\\%', '%'))
open(sys.argv[2] + '.env', 'w').write('\n'.join(env) + '\n')
open(sys.argv[2] + '.jobs', 'w').write('\n'.join(jobs) + '\n')
PY
PRODUCER=$(grep -E '(^| )partreg .* run ' "$T/cron.jobs" || true)
CONSUMER=$(grep -E '(^| )partreg .*wait ' "$T/cron.jobs" || true)
[ "$(grep -c . <<<"$PRODUCER")" = 1 ] || fail "the crontab needs one producer line with partreg run"
[ "$(grep -c . <<<"$CONSUMER")" = 1 ] || fail "the crontab needs one consumer line with partreg wait"
grep -q '&& .*load\.sh' <<<"$CONSUMER" || fail "the consumer line does not run load.sh after the wait"
ok "crontab: a producer line (partreg run) and a consumer line (partreg wait ... && load.sh)"
grep -qE -- '--token([ =]|$)|PARTREG_TOKEN=' <<<"$PRODUCER$CONSUMER" && fail "a token on a cron command line"
mapfile -t CRON_ENV <"$T/cron.env"
grep -q '^SHELL=' "$T/cron.env" && CRON_SHELL=$(sed -n 's/^SHELL=//p' "$T/cron.env" | tail -n 1) || CRON_SHELL=/bin/sh
CRON_PATH=$(sed -n 's/^PATH=//p' "$T/cron.env" | tail -n 1)
for v in PARTREG_BROKER SALES; do grep -q "^$v=" "$T/cron.env" || fail "the crontab does not set $v"; done
ok "crontab sets SHELL, PATH, PARTREG_BROKER and SALES"
# This machine's values for the crontab's variables (last one wins, as in cron).
CRON_ENV+=("PARTREG_BROKER=$BROKER" "SALES=$T/sales" "PATH=$T/bin:${CRON_PATH:-/usr/bin:/bin}" "SALES_OUT=$T/data-out" "HOME=$T")
echo "$CRON_TOKEN" >"$T/sales/provider.token"
chmod 600 "$T/sales/provider.token"
YESTERDAY=$(date -u -d yesterday +%F)
TODAY=$(date -u +%F)

start_bg cron_consumer "$CRON_SHELL" "$CONSUMER" "${CRON_ENV[@]}"
sleep 2
still_running cron_consumer
ok "cron consumer: partreg wait is waiting for $YESTERDAY"
t0=$(now)
start_bg cron_producer "$CRON_SHELL" "$PRODUCER" "${CRON_ENV[@]}"
done_within cron_producer 20
[ "$DRC" = 0 ] || { cat "$T/cron_producer.out" "$T/cron_producer.err" >&2; fail "the cron producer line exited $DRC"; }
ok "cron producer line (partreg run ... -- export.sh) exits 0"
[ -f "$T/data-out/sales-$YESTERDAY.csv" ] || fail "export.sh did not write sales-$YESTERDAY.csv"
PT="$P/state/sales/partitions/${YESTERDAY}T00:00:00Z/${TODAY}T00:00:00Z/nightly_export"
expect "$(sub1 "$PT")" '.state == "ready" and .metadata.exit_status == 0' "the producer made [$YESTERDAY, $TODAY) ready, with metadata exit_status 0"
done_within cron_consumer 10
[ "$DRC" = 0 ] || { cat "$T/cron_consumer.out" "$T/cron_consumer.err" >&2; fail "the cron consumer line exited $DRC"; }
echo "  the consumer finished $(secs "$t0" "$DAT") s after the producer started"
grep -qx "sales of $YESTERDAY" "$T/data-out/loaded.log" || fail "load.sh did not load $YESTERDAY"
ok "cron consumer line: the wait succeeded and load.sh loaded $YESTERDAY"
# Run again, the day is ready: the consumer line returns at once.
start_bg cron_consumer2 "$CRON_SHELL" "$CONSUMER" "${CRON_ENV[@]}"
done_within cron_consumer2 5
[ "$DRC" = 0 ] || fail "the consumer line on a ready day exited $DRC"
ok "cron consumer line on a ready day: at once"

# ============================== Airflow ==============================
# `airflow dags test DAG D` is a manual run: its logical date is D and the
# data interval the timetable infers for it the last whole day before D.
# The runs of RUN_DATE stand for DAY, [DAY, RUN_DATE); {{ ds }} would be
# RUN_DATE, so a DAG that names its files by ds rather than by its interval
# fails the checks on file names below.
DAY=2023-01-01
RUN_DATE=2023-01-02
START=${DAY}T00:00:00+00:00
END=${RUN_DATE}T00:00:00+00:00
t0=$(now)
airflow_home a
HOME_A=$AIRFLOW_HOME_DIR
cp "$PRODUCER_DAG" "$HOME_A/dags/"
airflow_home b
HOME_B=$AIRFLOW_HOME_DIR
cp "$CONSUMER_DAG" "$HOME_B/dags/"
ok "two Airflow instances, A (producer DAG) and B (consumer DAG), each with its own database ($(dur "$t0" "$(now)") s)"
# Each site's workers have only their own environment; B's has no token.
SITE_A=("PARTREG_BROKER=$BROKER" "PARTREG_TOKEN=$AIRFLOW_TOKEN" "SALES=$T/sales" "SALES_OUT=$T/data-out")
SITE_B=("PARTREG_BROKER=$BROKER" "SALES=$T/sales" "SALES_OUT=$T/data-out")
# af_has NAME FIXED-STRING DESCRIPTION: airflow's output for run NAME has it.
af_has() {
  grep -qF -- "$2" "$T/$1.out" || { tail -n 40 "$T/$1.out" >&2; fail "$3 (no \"$2\" in $T/$1.out)"; }
  ok "$3"
}
# af_count NAME FIXED-STRING: how many lines of that output have it.
af_count() { grep -cF -- "$2" "$T/$1.out" || true; }

# --- B waits, A produces, B loads ---
AIRFLOW_ENV=("${SITE_B[@]}")
airflow_dags_test_start "$HOME_B" sales_consumer "$RUN_DATE" af_consumer
# The sensor must be waiting: it poked, partreg ready said "not ready"
# (exit 1) and the task is up for rescheduling, not failed.
for _ in $(seq 600); do
  grep -q 'new_state=up_for_reschedule' "$T/af_consumer.out" && break
  airflow_running af_consumer || break
  sleep 0.1
done
af_has af_consumer "Running command: partreg ready sales --start $START --end $END" \
  "Airflow B: the sensor renders partreg ready for the run's data interval [$DAY, $RUN_DATE)"
af_has af_consumer 'Command exited with return code 1' "Airflow B: the sensor's first poke: not ready (exit 1)"
af_has af_consumer 'Return code matches retry code, will retry later' "Airflow B: the sensor waits to poke again"
af_has af_consumer 'new_state=up_for_reschedule' "Airflow B: the sensor is up for reschedule (its worker slot freed)"
airflow_running af_consumer || fail "Airflow B's run ended while its sensor should wait"

AIRFLOW_ENV=("${SITE_A[@]}")
airflow_dags_test "$HOME_A" sales_producer "$RUN_DATE" af_producer 120
echo "  airflow dags test sales_producer: $AF_SECONDS s"
[ "$RC" = 0 ] && [ "$AF_STATE" = success ] || { tail -n 40 "$T/af_producer.out" >&2; fail "Airflow A's run: exit $RC, state $AF_STATE"; }
af_has af_producer "'partreg run sales --provider airflow_export --start $START --end $END --ttl 300 -- \"\$SALES/export.sh\" $DAY'" \
  "Airflow A: the task renders partreg run for [$DAY, $RUN_DATE) and export.sh for $DAY"
af_has af_producer 'Command exited with return code 0' "Airflow A: partreg run ... -- export.sh exits 0; the run succeeds"
PT="$P/state/sales/partitions/${DAY}T00:00:00Z/${RUN_DATE}T00:00:00Z/airflow_export"
ST=$(sub1 "$PT")
expect "$ST" '.state == "ready" and .version >= 1 and .metadata.exit_status == 0' \
  "the partition [$DAY, $RUN_DATE) of airflow_export is ready (version $(jq -r .version <<<"$ST")), metadata exit_status 0"
[ -f "$T/data-out/sales-$DAY.csv" ] || fail "export.sh did not write sales-$DAY.csv"
[ ! -e "$T/data-out/sales-$RUN_DATE.csv" ] || fail "export.sh wrote sales-$RUN_DATE.csv: the DAG passes {{ ds }}, not its interval"
ok "export.sh wrote sales-$DAY.csv (the interval's day, not ds $RUN_DATE)"
UNLOCKED=$(date -d "$(jq -r .updated_at <<<"$ST")" +%s.%N)

# The sensor sees it at its next poke (poke_interval 60 s).
airflow_dags_test_wait af_consumer 200
echo "  airflow dags test sales_consumer: $AF_SECONDS s"
[ "$RC" = 0 ] && [ "$AF_STATE" = success ] || { tail -n 40 "$T/af_consumer.out" >&2; fail "Airflow B's run: exit $RC, state $AF_STATE"; }
ok "Airflow B: the run succeeds"
LAG=$(dur "$UNLOCKED" "$AF_END")
echo "  B's run ended $LAG s after A's unlock (the sensor's poke_interval is 60 s)"
[ "$(echo "$LAG > 0 && $LAG < 90" | bc)" = 1 ] || fail "B's run ended $LAG s after the unlock, expected within one poke interval"
[ "$(af_count af_consumer 'Running command: partreg ready')" -ge 2 ] || fail "the sensor did not poke again"
af_has af_consumer "end=${RUN_DATE}T00:00:00Z ready=true" "Airflow B: a later poke finds the day ready"
af_has af_consumer "'-c', '\"\$SALES/load.sh\" $DAY']" "Airflow B: the load task renders load.sh $DAY"
grep -qx "sales of $DAY" "$T/data-out/loaded.log" || fail "load.sh did not load $DAY"
ok "Airflow B: load.sh loaded $DAY"

# --- A's export fails: the partition is failed with its exit status ---
mkdir -p "$T/sales-failing"
printf '#!/bin/sh\necho "export: the database is down" >&2\nexit 7\n' >"$T/sales-failing/export.sh"
chmod +x "$T/sales-failing/export.sh"
AIRFLOW_ENV=("PARTREG_BROKER=$BROKER" "PARTREG_TOKEN=$AIRFLOW_TOKEN" "SALES=$T/sales-failing" "SALES_OUT=$T/data-out")
airflow_dags_test "$HOME_A" sales_producer 2023-01-04 af_producer_fails 120
echo "  airflow dags test sales_producer (failing export): $AF_SECONDS s"
[ "$RC" != 0 ] && [ "$AF_STATE" = failed ] || fail "a failing export: Airflow A's run exited $RC, state $AF_STATE"
af_has af_producer_fails 'Command exited with return code 7' "a failing export: partreg run exits with its status, 7"
af_has af_producer_fails 'non-zero exit code 7' "a failing export: the task fails (and with it A's run)"
expect "$(sub1 "$P/state/sales/partitions/2023-01-03T00:00:00Z/2023-01-04T00:00:00Z/airflow_export")" \
  '.state == "failed" and .reason == "exit status 7"' "a failing export: the partition [2023-01-03, 2023-01-04) is failed, reason \"exit status 7\""

# --- B with an unreachable broker: fails at once, is not re-poked ---
DEAD=""
for _ in $(seq 100); do
  p=$(random_port)
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then DEAD=$p; break; fi
done
[ -n "$DEAD" ] || fail "no free port"
AIRFLOW_ENV=("PARTREG_BROKER=mqtt://127.0.0.1:$DEAD" "SALES=$T/sales" "SALES_OUT=$T/data-out")
airflow_dags_test "$HOME_B" sales_consumer 2023-01-06 af_consumer_nobroker 120
echo "  airflow dags test sales_consumer (no broker): $AF_SECONDS s"
[ "$RC" != 0 ] && [ "$AF_STATE" = failed ] || fail "no broker: Airflow B's run exited $RC, state $AF_STATE"
af_has af_consumer_nobroker 'Command exited with return code 3' "no broker: partreg ready exits 3 (broker unreachable)"
[ "$(af_count af_consumer_nobroker 'Running command: partreg ready')" = 1 ] || fail "no broker: the sensor poked more than once"
[ "$(af_count af_consumer_nobroker 'will retry later')" = 0 ] || fail "no broker: the sensor was to poke again"
af_has af_consumer_nobroker 'AirflowFailException: Command exited with return code 3' "no broker: the sensor fails at its first poke (not re-poked for 12 hours)"

# Every run: no token in anything Airflow printed, no deprecated import in
# the DAG files, no sanitizer report from partreg.
for f in "$T"/af_*.out; do
  grep -qF -- "$AIRFLOW_TOKEN" "$f" && fail "the provider token is in $f"
  grep -qE 'deprecated.*dags/sales_(producer|consumer)\.py' "$f" && fail "a deprecation warning for a DAG file in $f"
  sanitizer_clean "$f"
done
ok "no token in Airflow's output, no deprecation warning for the DAG files"
for f in "$T"/*.err; do sanitizer_clean "$f"; done
ok "no sanitizer report from partreg"
echo "  total: $(dur "$T_START" "$(now)") s"
pass
