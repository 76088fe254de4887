#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Airflow provider (partreg.airflow, python/src/partreg/airflow/) in
# Apache Airflow 3.3.2 itself, against a real mosquitto and partregd.
#
# The package is installed with its [airflow] extra into lib_airflow.sh's
# venv (and its [dev] tools, to check it there with Airflow's own types):
# `airflow providers list` must show it. Its pytest tests run there against
# this build's partregd. Then two isolated Airflow instances share only the
# broker and a data directory, as two sites would: A runs the producer DAG
# (compose/airflow/partreg_producer.py, the provider's tokens in its
# connections), B the consumer and the asset-driven DAG (no token).
#
# 1. B's consumer run (`airflow dags test`) starts first: its sensor defers
#    and its trigger follows the summary in-process; A's producer run then
#    locks, exports and unlocks the run's data interval, and B's sensor
#    resumes and its load runs. Measured: unlock -> trigger -> task resumed.
# 2. A producer whose export raises fails the partition with the exception's
#    text; B's consumer, deferred on that day with fail_on_failed, fails.
# 3. B as it runs in production: `airflow dags test` runs no watchers and
#    runs a deferred task's trigger in-process, so B's running instance (a
#    database of its own, see below) runs a dag-processor, a triggerer, a
#    scheduler and an api-server (the LocalExecutor's tasks talk to it).
#    The consumer DAG, unpaused, gets its scheduled run of the last whole
#    day, whose sensor defers to the triggerer; A makes that day ready: the
#    sensor resumes and the load runs, and the day's sales_totals becomes
#    an asset event and a run of partreg_asset_watcher. Then the
#    triggerer is stopped (it must stop in time: no trigger may hang it), a
#    day is unlocked while it is away, and the restarted triggerer catches
#    up from the agent's history: one more asset event and run.
# 2b (between 2 and 3). A task sleeping under PartitionRunOperator gets
#    SIGTERM, as from a worker or pod stopping: its on_kill fails the day
#    at once, long before the lease would.
#
# Timings are printed. No network is needed but pip's package index, the
# first time; without it the test is skipped (77).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_airflow.sh"
T_START=$(date +%s.%N)
PKG=$PARTREG_SOURCE_DIR/python
EX=$PARTREG_SOURCE_DIR/compose/airflow
now() { date +%s.%N; }
# ms FROM TO: milliseconds between two times (seconds since the epoch).
ms() { printf '%.0f' "$(echo "($2 - $1) * 1000" | bc)"; }
# epoch TIME: seconds since the epoch of an ISO time (Z or none: UTC).
epoch() { date -u -d "$(sed -e 's/T/ /' -e 's/Z$//' <<<"$1") UTC" +%s.%N; }

airflow_venv
ok "Airflow $AIRFLOW_VERSION venv $([ "$AIRFLOW_VENV_REUSED" = 1 ] && echo reused || echo made) ($AIRFLOW_VENV_SECONDS s)"

# ---- the package, into the Airflow venv

# From a copy: a build writes into its source tree. Under the venv's lock:
# another test may be using or making the venv.
t0=$(now)
cp -r "$PKG" "$T/pkg"
rm -rf "$T/pkg/tests"
backend=$(sed -n 's/^requires = \["\(setuptools==[0-9.]*\)"\]$/\1/p' "$PKG/pyproject.toml")
[ -n "$backend" ] || fail "no pinned setuptools in $PKG/pyproject.toml [build-system]"
exec 9>"$PARTREG_BUILD_DIR/airflow-venv.lock"
flock 9
pip_log=$T/provider-pip.log
if ! { "$AIRFLOW_VENV/bin/pip" install -q --timeout 60 "$backend" &&
       "$AIRFLOW_VENV/bin/pip" install -q --timeout 60 --no-build-isolation "$T/pkg[airflow,dev]" &&
       "$AIRFLOW_VENV/bin/pip" install -q --no-deps --no-build-isolation --force-reinstall "$T/pkg"
     } >"$pip_log" 2>&1; then
  tail -n 20 "$pip_log"
  airflow_pip_offline "$pip_log" && airflow_skip "pip cannot reach its package index for partreg's dependencies"
  fail "pip install python[airflow,dev] into $AIRFLOW_VENV"
fi
flock -u 9
exec 9>&-
ok "partreg[airflow] installed into the Airflow venv ($(ms "$t0" "$(now)") ms)"

HOME_P=$T/airflow-providers
mkdir -p "$HOME_P"
airflow_argv "$HOME_P"
"${AF_ARGV[@]}" providers list >"$T/providers.out" 2>&1 || { cat "$T/providers.out"; fail "airflow providers list"; }
grep -E '^partreg +\| .*\| 0\.2\.0' "$T/providers.out" >/dev/null ||
  { cat "$T/providers.out"; fail "airflow providers list does not show partreg 0.2.0"; }
"${AF_ARGV[@]}" providers hooks >"$T/hooks.out" 2>&1
grep -E '^partreg +\| partreg\.airflow\.hooks\.PartregHook +\| partreg_conn_id' "$T/hooks.out" >/dev/null ||
  { cat "$T/hooks.out"; fail "airflow providers hooks does not show the partreg connection type"; }
ok "airflow providers list shows partreg 0.2.0, and the partreg connection type's hook"

# Checks with Airflow's own types, and the provider's tests (the unit ones
# and those against this build's partregd).
t0=$(now)
(
  export RUFF_CACHE_DIR=$PARTREG_BUILD_DIR/airflow-venv-ruff-cache
  export MYPY_CACHE_DIR=$PARTREG_BUILD_DIR/airflow-venv-mypy-cache
  cd "$PARTREG_SOURCE_DIR"
  # The example DAGs by the package's rules too.
  "$AIRFLOW_VENV/bin/ruff" check --config python/pyproject.toml compose/airflow/partreg_*.py &&
    "$AIRFLOW_VENV/bin/ruff" format --config python/pyproject.toml --check compose/airflow/partreg_*.py &&
    cd "$PKG" &&
    "$AIRFLOW_VENV/bin/ruff" check src/partreg/airflow tests/test_airflow_*.py &&
    "$AIRFLOW_VENV/bin/ruff" format --check src/partreg/airflow tests/test_airflow_*.py &&
    "$AIRFLOW_VENV/bin/mypy" --strict
) >"$T/checks.out" 2>&1 || { cat "$T/checks.out"; fail "ruff or mypy --strict with Airflow installed"; }
ok "ruff, ruff format (the provider, its tests, the example DAGs), mypy --strict with Airflow $AIRFLOW_VERSION installed ($(ms "$t0" "$(now)") ms)"
t0=$(now)
(
  cd "$PKG"
  AIRFLOW_HOME=$HOME_P PARTREGD=$PARTREGD PARTREG_VECTORS=$PARTREG_SOURCE_DIR/tests/vectors \
    "$AIRFLOW_VENV/bin/pytest" -p no:cacheprovider --basetemp="$T/pytest" -q -rs \
    tests/test_airflow_connection.py tests/test_airflow_provider.py tests/test_airflow_live.py
) >"$T/pytest.out" 2>&1 || { cat "$T/pytest.out"; fail "pytest of the provider"; }
grep -q skipped "$T/pytest.out" && { cat "$T/pytest.out"; fail "provider tests skipped with Airflow installed"; }
ok "pytest of the provider: $(grep -oE '[0-9]+ passed' "$T/pytest.out") ($(ms "$t0" "$(now)") ms)"

# ---- the registry and the two sites

start_broker
start_agent
BROKER=mqtt://127.0.0.1:$PORT
register() {
  local tok
  tok=$(rr source/register "{\"source\":\"$1\",\"owner\":\"finance\"}" | jq -r .result.access_token)
  [ ${#tok} -eq 36 ] || fail "could not register source $1"
  rr provider/register "{\"source\":\"$1\",\"provider\":\"airflow_export\",\"access_token\":\"$tok\"}" |
    jq -r .result.provider_token
}
SALES_TOKEN=$(register sales)
TOTALS_TOKEN=$(register sales_totals)
[ ${#SALES_TOKEN} -eq 36 ] && [ ${#TOTALS_TOKEN} -eq 36 ] || fail "could not register the providers"
conn() { jq -cn --arg h "$BROKER" --arg t "${1:-}" '{conn_type: "partreg", host: $h} + (if $t == "" then {} else {extra: {token: $t}} end)'; }
DATA=$T/data
mkdir -p "$DATA"
ENV_A=("AIRFLOW_CONN_PARTREG_DEFAULT=$(conn "$SALES_TOKEN")"
       "AIRFLOW_CONN_PARTREG_TOTALS=$(conn "$TOTALS_TOKEN")"
       "PARTREG_EXAMPLE_DATA=$DATA")
ENV_B=("AIRFLOW_CONN_PARTREG_DEFAULT=$(conn)" "PARTREG_EXAMPLE_DATA=$DATA")

t0=$(now)
airflow_home a
HOME_A=$AIRFLOW_HOME_DIR
cp "$EX/partreg_producer.py" "$HOME_A/dags/"
airflow_home b
HOME_B=$AIRFLOW_HOME_DIR
cp "$EX/partreg_consumer.py" "$HOME_B/dags/"
# B's running instance, for the AssetWatcher, has a database of its own:
# `airflow dags test` leaves the triggers of the tasks it deferred in its
# database, and a triggerer started on it runs them again. On SQLite a
# deleted trigger's id is then reused, by the watcher's trigger: the old
# sensor trigger's event became an asset event in a first version of this
# test.
airflow_home w
HOME_W=$AIRFLOW_HOME_DIR
cp "$EX/partreg_asset_watcher.py" "$EX/partreg_consumer.py" "$HOME_W/dags/"
ok "Airflow instances: A (producer, tokens), B (consumer, no token) and B's running instance ($(ms "$t0" "$(now)") ms)"

# dags_test SITE DAG DATE NAME [ARGS...]: `airflow dags test` in the background.
dags_test() {
  local site=$1 dag=$2 date=$3 name=$4 home
  shift 4
  if [ "$site" = a ]; then AIRFLOW_ENV=("${ENV_A[@]}"); home=$HOME_A; else AIRFLOW_ENV=("${ENV_B[@]}"); home=$HOME_B; fi
  airflow_argv "$home"
  AF_T0[$name]=$(now)
  "${AF_ARGV[@]}" dags test "$@" "$dag" "$date" >"$T/$name.out" 2>&1 &
  AF_PID[$name]=$!
  PIDS+=("$!")
}
# until_in FILE REGEX SECONDS WHAT: wait until FILE has a line matching REGEX.
until_in() {
  for _ in $(seq $(($3 * 10))); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  tail -n 40 "$1" >&2
  fail "$4: no '$2' in $1 within $3 s"
}
# log_time FILE REGEX: the time stamp of the first line of FILE matching
# REGEX (Airflow's own 2023-01-01T00:00:00.000000Z, or the 2023-01-01
# 00:00:00.000000+00:00 of the task log lines a triggerer passes on).
log_time() {
  local line stamp
  line=$(grep -m1 -E "$2" "$1") || fail "no line matching '$2' in $1"
  stamp=$(grep -oE '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+(Z|\+00:00)' <<<"$line") ||
    fail "no time stamp at the start of: ${line:0:200}"
  epoch "${stamp%+00:00}"
}
# partition SOURCE DAY: the retained state of that day of SOURCE.
partition() { sub1 "$P/state/$1/partitions/${2}T00:00:00Z/$(date -u -d "$2 + 1 day" +%F)T00:00:00Z/airflow_export"; }

# ---- 1. consumer first, deferred; producer unlocks; the sensor resumes

dags_test b partreg_consumer 2023-01-02 consumer1
until_in "$T/consumer1.out" 'waiting for sales \[2023-01-01T00:00:00Z, 2023-01-02T00:00:00Z\)' 120 \
  "B's sensor did not defer to its trigger"
grep -q 'deferring: the triggerer waits for sales' "$T/consumer1.out" || fail "no deferral said in B's log"
grep -qE 'new_state=deferred' "$T/consumer1.out" || fail "B's task did not become deferred"
ok "B: the sensor deferred after $(ms "${AF_T0[consumer1]}" "$(log_time "$T/consumer1.out" 'deferring:')") ms of dags test; its trigger follows the summary"
dags_test a partreg_producer 2023-01-02 producer1
airflow_dags_test_wait producer1 120
[ "$RC" = 0 ] && [ "$AF_STATE" = success ] || { tail -n 40 "$T/producer1.out"; fail "A's producer run: rc $RC, $AF_STATE"; }
ok "A: producer run succeeded (${AF_SECONDS} s)"
airflow_dags_test_wait consumer1 60
[ "$RC" = 0 ] && [ "$AF_STATE" = success ] || { tail -n 40 "$T/consumer1.out"; fail "B's consumer run: rc $RC, $AF_STATE"; }
p=$(partition sales 2023-01-01)
expect "$p" '.state == "ready" and .metadata.rows == 24 and .metadata.dag_id == "partreg_producer" and .metadata.task_id == "export_sales"' \
  "the day is ready, with the export's metadata and where it ran"
expect "$(partition sales_totals 2023-01-01)" '.state == "ready" and (.metadata.total | type) == "number" and .metadata.task_id == "total_sales"' \
  "the day's total (the @task with partition_lock) is ready too"
cmp -s "$DATA/sales/day=2023-01-01.csv" "$DATA/site-b/loaded/day=2023-01-01.csv" || fail "B did not load the day A exported"
ok "B loaded sales/day=2023-01-01.csv, the file of the interval A locked"
unlock=$(epoch "$(jq -r .since <<<"$p")")
locked=$(log_time "$T/producer1.out" 'partreg: locked sales ')
deferred=$(log_time "$T/consumer1.out" 'deferring:')
[ "$(echo "$deferred < $locked" | bc)" = 1 ] || fail "B deferred after A locked: the order is not tested"
line=$(grep -m1 'is ready (summary seq' "$T/consumer1.out")
seen=$(epoch "$(grep -oE 'the trigger saw it at [0-9T:.Z-]+' <<<"$line" | awk '{print $NF}')")
resumed=$(epoch "$(grep -oE '^[0-9-]+T[0-9:.]+Z' <<<"$line")")
LAT_SEEN=$(ms "$unlock" "$seen")
LAT_RESUMED=$(ms "$unlock" "$resumed")
LAT_RUN=$(ms "$unlock" "$AF_END")
ok "unlock -> trigger saw it: $LAT_SEEN ms; -> sensor task resumed and succeeded: $LAT_RESUMED ms; -> B's run finished (load included): $LAT_RUN ms"

# ---- 2. a producer that raises fails the day; a consumer with fail_on_failed fails

dags_test b partreg_consumer 2023-01-03 consumer2
until_in "$T/consumer2.out" 'waiting for sales \[2023-01-02T00:00:00Z' 120 "B's second sensor did not defer"
dags_test a partreg_producer 2023-01-03 producer2 -c '{"fail": true}'
airflow_dags_test_wait producer2 120
[ "$RC" != 0 ] && [ "$AF_STATE" = failed ] || { tail -n 40 "$T/producer2.out"; fail "A's failing producer run: rc $RC, $AF_STATE"; }
grep -q 'RuntimeError: export of 2023-01-02 failed: the shop database did not answer' "$T/producer2.out" ||
  fail "A's log does not show the export's exception"
p=$(partition sales 2023-01-02)
expect "$p" '.state == "failed" and .reason == "export of 2023-01-02 failed: the shop database did not answer"' \
  "the export's exception failed the day, its text the reason"
airflow_dags_test_wait consumer2 60
[ "$RC" != 0 ] && [ "$AF_STATE" = failed ] || { tail -n 40 "$T/consumer2.out"; fail "B's consumer run on a failed day: rc $RC, $AF_STATE"; }
grep -q "airflow_export's partition \[2023-01-02T00:00:00Z, 2023-01-03T00:00:00Z) failed (export of 2023-01-02 failed" "$T/consumer2.out" ||
  { tail -n 40 "$T/consumer2.out"; fail "B's sensor did not fail with the producer's reason"; }
[ ! -e "$DATA/site-b/loaded/day=2023-01-02.csv" ] || fail "B loaded a failed day"
failed_at=$(epoch "$(jq -r .since <<<"$p")")
sensor_failed=$(log_time "$T/consumer2.out" 'Task failed with exception')
LAT_FAILED=$(ms "$failed_at" "$sensor_failed")
ok "B's sensor (fail_on_failed) failed $LAT_FAILED ms after the day failed, with the reason; nothing loaded"

# ---- 2b. a task stopped by a signal fails its partition at once (on_kill)

# Airflow's task runner calls the operator's on_kill on SIGTERM (a worker
# or a pod shutting down; the supervisor passes it on). A test DAG whose
# work sleeps, so that the signal finds the lock held.
cat >"$HOME_A/dags/partreg_killed.py" <<'PY'
import time
from datetime import UTC, datetime

from airflow.sdk import DAG, CronDataIntervalTimetable
from partreg.airflow import PartitionRunOperator


def work() -> None:
    for _ in range(1200):
        time.sleep(0.5)


with DAG(
    dag_id="partreg_killed",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2023, 1, 1, tzinfo=UTC),
    catchup=False,
):
    PartitionRunOperator(
        task_id="export_sales", source="sales", provider="airflow_export", python_callable=work, ttl=300
    )
PY
dags_test a partreg_killed 2023-01-05 killed
for _ in $(seq 600); do
  [ "$(partition sales 2023-01-04 | jq -r .state)" = locked ] && break
  airflow_running killed || break
  sleep 0.2
done
[ "$(partition sales 2023-01-04 | jq -r .state)" = locked ] || { tail -n 40 "$T/killed.out"; fail "the sleeping task did not lock its day"; }
t_kill=$(now)
kill -TERM "${AF_PID[killed]}"
for _ in $(seq 100); do
  [ "$(partition sales 2023-01-04 | jq -r .state)" = failed ] && break
  sleep 0.1
done
t_failed=$(now)
p=$(partition sales 2023-01-04)
expect "$p" '.state == "failed" and .reason == "the Airflow task was stopped (on_kill)"' \
  "SIGTERM to the running task: on_kill failed its day, with the lock's fence, not its lease"
kill -9 "${AF_PID[killed]}" 2>/dev/null || true
wait "${AF_PID[killed]}" 2>/dev/null || true
ok "SIGTERM -> partition failed: $(ms "$t_kill" "$t_failed") ms (lease was 300 s)"

# ---- 3. the AssetWatcher, in a running Airflow (B)

free_port() { "$AIRFLOW_VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port)
ENV_B_SERVICES=("${ENV_B[@]}"
  "AIRFLOW__API__HOST=127.0.0.1" "AIRFLOW__API__PORT=$API_PORT" "AIRFLOW__API__WORKERS=1"
  "AIRFLOW__API_AUTH__JWT_SECRET=$("$AIRFLOW_VENV/bin/python" -c 'import secrets; print(secrets.token_hex(32))')"
  "AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$API_PORT/execution/"
  "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$(free_port)"
  "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$(free_port)"
  "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL=5"
  "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5")
declare -A SVC=()
# Each service runs in a process group of its own (setsid, which execs: the
# PID is airflow's and the group's), so that its children -- the
# LocalExecutor's workers, the log servers, the trigger runner -- go with
# it; lib.sh's cleanup kills only the PIDs it knows.
svc_kill() { for pid in "${SVC[@]}"; do kill -9 -- "-$pid" 2>/dev/null || true; done; }
trap 'rc=$?; svc_kill; (exit $rc); cleanup' EXIT
# service NAME: `airflow NAME` of B's running instance in the background.
service() {
  AIRFLOW_ENV=("${ENV_B_SERVICES[@]}")
  airflow_argv "$HOME_W"
  setsid "${AF_ARGV[@]}" "$1" >>"$T/b-$1.log" 2>&1 &
  SVC[$1]=$!
  PIDS+=("$!")
}
# stop_service NAME: SIGTERM; it must be gone within 30 s; prints how long
# it took. What is left of its group is killed.
stop_service() {
  local pid=${SVC[$1]} t0
  t0=$(now)
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "airflow $1 did not stop within 30 s of SIGTERM"
  wait "$pid" 2>/dev/null || true
  kill -9 -- "-$pid" 2>/dev/null || true
  ms "$t0" "$(now)"
}
# sql QUERY: rows of B's running instance's database, one JSON array a line.
sql() {
  "$AIRFLOW_VENV/bin/python" -c 'import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
for row in c.execute(sys.argv[2]): print(json.dumps(row))' "$HOME_W/airflow.db" "$1"
}
# until_sql QUERY SECONDS WHAT: wait until QUERY returns a row.
until_sql() {
  for _ in $(seq $(($2 * 2))); do [ -n "$(sql "$1")" ] && return 0; sleep 0.5; done
  for s in dag-processor triggerer scheduler api-server; do echo "== $s"; tail -n 15 "$T/b-$s.log"; done >&2
  fail "$3: not within $2 s"
}
# db_time TEXT: seconds since the epoch of a time stored by Airflow (UTC).
db_time() { epoch "$(tr -d '"' <<<"$1")"; }

t0=$(now)
service dag-processor
service triggerer
service scheduler
service api-server
until_sql "select 1 from dag where dag_id = 'partreg_asset_watcher'" 120 "B's dag-processor parsed the asset watcher DAG"
until_sql "select 1 from dag where dag_id = 'partreg_consumer'" 60 "B's dag-processor parsed the consumer DAG"
AIRFLOW_ENV=("${ENV_B_SERVICES[@]}")
airflow_argv "$HOME_W"
for dag in partreg_asset_watcher partreg_consumer; do
  "${AF_ARGV[@]}" dags unpause "$dag" >"$T/unpause.out" 2>&1 || { cat "$T/unpause.out"; fail "airflow dags unpause $dag"; }
done
until_in "$T/b-triggerer.log" 'following the events of sales_totals' 120 "B's triggerer did not start the watcher's trigger"
ok "B: dag-processor, triggerer, scheduler, api-server up; the watcher's trigger follows sales_totals ($(ms "$t0" "$(now)") ms)"

# The consumer, unpaused (catchup=False), gets its scheduled run of the
# last whole day; its sensor defers to the triggerer, which holds the wait
# with no worker slot.
until_sql "select 1 from task_instance where dag_id = 'partreg_consumer' and task_id = 'wait_for_sales' and state = 'deferred'" 120 \
  "the scheduled consumer run's sensor did not defer"
DAY=$(sql "select data_interval_start from dag_run where dag_id = 'partreg_consumer'" | jq -r '.[0]' | cut -c1-10)
NEXT=$(date -u -d "$DAY + 1 day" +%F)
deferred_at=$(now)
ok "B's scheduled consumer run of $DAY: its sensor is deferred, the triggerer waits"

# A makes that day ready: the sensor resumes (a new task run, by the
# scheduler) and the load runs; the day's sales_totals becomes an asset
# event and a run of partreg_asset_watcher.
dags_test a partreg_producer "$NEXT" producer3
airflow_dags_test_wait producer3 120
[ "$RC" = 0 ] && [ "$AF_STATE" = success ] || { tail -n 40 "$T/producer3.out"; fail "A's producer run ($DAY): rc $RC, $AF_STATE"; }
until_sql "select 1 from dag_run where dag_id = 'partreg_consumer' and state = 'success'" 120 \
  "the scheduled consumer run did not succeed after the unlock"
cmp -s "$DATA/sales/day=$DAY.csv" "$DATA/site-b/loaded/day=$DAY.csv" || fail "B's scheduled run did not load $DAY"
UNLOCK=$(epoch "$(partition sales "$DAY" | jq -r .since)")
[ "$(echo "$deferred_at < $UNLOCK" | bc)" = 1 ] || fail "the day was unlocked before the sensor deferred"
SENSOR=$(sql "select end_date from task_instance where dag_id = 'partreg_consumer' and task_id = 'wait_for_sales'")
RUN=$(sql "select end_date from dag_run where dag_id = 'partreg_consumer'")
# The resumed sensor logs when its trigger saw the day ready (task logs,
# under the instance's base_log_folder).
SEEN=$(grep -rhoE 'the trigger saw it at [0-9T:.Z-]+' "$HOME_W/logs/dag_id=partreg_consumer" | awk '{print $NF}' | head -n 1)
[ -n "$SEEN" ] || fail "no 'the trigger saw it at' in the scheduled consumer's task logs"
SEEN=$(epoch "$SEEN")
ok "scheduled: unlock of sales $DAY -> the sensor's trigger fired: $(ms "$UNLOCK" "$SEEN") ms; -> the sensor's resumed task ended: $(ms "$UNLOCK" "$(db_time "$(jq '.[0]' <<<"$SENSOR")")") ms; -> the consumer run ended: $(ms "$UNLOCK" "$(db_time "$(jq '.[0]' <<<"$RUN")")") ms"

until_sql "select 1 from asset_event where json_extract(extra, '$.payload.start') = '${DAY}T00:00:00Z'" 60 \
  "no asset event for the ready $DAY of sales_totals"
EV=$(sql "select timestamp, extra from asset_event where json_extract(extra, '$.payload.start') = '${DAY}T00:00:00Z'")
expect "$(jq -c '.[1] | fromjson' <<<"$EV")" \
  ".from_trigger and .payload.type == \"unlocked\" and .payload.source == \"sales_totals\" and .payload.end == \"${NEXT}T00:00:00Z\" and .payload.provider == \"airflow_export\"" \
  "asset event of sales_totals $DAY: the unlocked event as its payload"
until_sql "select 1 from dag_run where dag_id = 'partreg_asset_watcher' and state = 'success'" 120 \
  "no successful run of partreg_asset_watcher for $DAY"
grep -q "^$DAY: total " "$DATA/site-b/reports/day=$DAY.txt" || fail "the asset-driven run did not report $DAY"
UNLOCK=$(epoch "$(partition sales_totals "$DAY" | jq -r .since)")
FIRED=$(log_time "$T/b-triggerer.log" "Trigger fired event.*'type': 'unlocked'")
EVENT=$(db_time "$(jq '.[0]' <<<"$EV")")
RUN=$(sql "select start_date, end_date from dag_run where dag_id = 'partreg_asset_watcher' and state = 'success'")
ok "unlock of sales_totals $DAY -> trigger fired: $(ms "$UNLOCK" "$FIRED") ms; -> asset event: $(ms "$UNLOCK" "$EVENT") ms; -> asset-driven run started: $(ms "$UNLOCK" "$(db_time "$(jq '.[0]' <<<"$RUN")")") ms, finished: $(ms "$UNLOCK" "$(db_time "$(jq '.[1]' <<<"$RUN")")") ms"

# The triggerer away while a day becomes ready: it catches up when back.
# Airflow 3.3.2's triggerer itself sometimes waits 10 s for its trigger
# process after SIGTERM (its own FileDeleteTrigger as the only trigger: 4 of
# 6 stops); the triggers must not add to that.
stopped=$(stop_service triggerer)
sed -n '/Exiting gracefully/,$p' "$T/b-triggerer.log" | grep -E 'Error|Traceback|exception' &&
  fail "B's triggerer stopped with an error (above)"
ok "B's triggerer stopped in $stopped ms"
dags_test a partreg_producer 2023-01-05 producer4
airflow_dags_test_wait producer4 120
[ "$RC" = 0 ] || { tail -n 40 "$T/producer4.out"; fail "A's producer run (2023-01-04): rc $RC"; }
service triggerer
t_back=$(now)
until_in "$T/b-triggerer.log" 'catching up on sales_totals from seq' 120 "the restarted triggerer did not catch up"
until_sql "select 1 from asset_event where json_extract(extra, '$.payload.start') = '2023-01-04T00:00:00Z'" 60 \
  "no asset event for 2023-01-04 after the triggerer came back"
until_sql "select 1 from dag_run where dag_id = 'partreg_asset_watcher' and state = 'success' group by dag_id having count(*) >= 2" 120 \
  "no second successful run of partreg_asset_watcher"
[ -f "$DATA/site-b/reports/day=2023-01-04.txt" ] || fail "the caught-up run did not report 2023-01-04"
[ "$(sql "select count(*) from asset_event" | tr -d '[]')" = 2 ] ||
  fail "asset events: $(sql 'select extra from asset_event' | tr '\n' ' ')"
EVENT=$(db_time "$(sql "select timestamp from asset_event where json_extract(extra, '$.payload.start') = '2023-01-04T00:00:00Z'" | jq '.[0]')")
ok "2023-01-04 unlocked while B's triggerer was away: asset event $(ms "$t_back" "$EVENT") ms after it restarted, its run reported it; each day one event"

for s in scheduler api-server dag-processor triggerer; do stop_service "$s" >/dev/null; done
ok "B's services stopped"

# Nothing printed or logged a token; nothing of the provider's or of the
# DAG files warned (Airflow's own warnings about itself are not ours).
outs=("$T"/*.out "$T"/b-*.log "$HOME_A/logs" "$HOME_B/logs" "$HOME_W/logs")
if grep -rlF -e "$SALES_TOKEN" -e "$TOTALS_TOKEN" "${outs[@]}"; then fail "a token in Airflow's output (files above)"; fi
if grep -rhE '\[warning|\[error|Warning' "${outs[@]}" |
   grep -E '\[partreg\.airflow|filename=[^ ]*(partreg/airflow/|dags/partreg_)'; then
  fail "the provider or its DAGs warned (above)"
fi
ok "no token in Airflow's output, no warning from the provider or its DAG files"
ok "test_airflow.sh took $(printf '%.0f' "$(echo "$(now) - $T_START" | bc)") s"
pass
