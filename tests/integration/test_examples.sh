#!/usr/bin/env bash
# The cron and Airflow examples (compose/cron/, compose/airflow/), run for
# real against mosquitto + partregd: the command lines are taken from the
# files themselves (the crontab's job lines with cron's own rules; the
# DAGs' bash_command strings through python3's ast module, Airflow's
# templates replaced by a fixed day), so an example that rots fails here.
# Each consumer line starts first and must be waiting; the producer line
# must make the partition ready; the consumer's wait must then succeed and
# its load run. Airflow itself is not needed (nor installed): the DAG files
# are only compiled (py_compile).
. "$(dirname "$0")/lib.sh"
: "${PARTREG_CLI:?set by ctest: path to partreg}"
command -v python3 >/dev/null || { echo "SKIP: no python3"; FAILED=0; exit 77; }
EX=$PARTREG_SOURCE_DIR/compose
CRONTAB=$EX/cron/crontab
PRODUCER_DAG=$EX/airflow/sales_producer.py
CONSUMER_DAG=$EX/airflow/sales_consumer.py
for f in "$CRONTAB" "$EX/cron/export.sh" "$EX/cron/load.sh" "$PRODUCER_DAG" "$CONSUMER_DAG"; do
  [ -f "$f" ] || fail "missing example file $f"
done
start_broker
start_agent
BROKER=mqtt://127.0.0.1:$PORT
mkdir -p "$T/bin" "$T/sales" "$T/data-out"
ln -s "$PARTREG_CLI" "$T/bin/partreg"
cp "$EX/cron/export.sh" "$EX/cron/load.sh" "$T/sales/"
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

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
for f in "$PRODUCER_DAG" "$CONSUMER_DAG"; do
  PYTHONPYCACHEPREFIX=$T/pycache python3 -m py_compile "$f" || fail "python3 -m py_compile $f"
done
ok "python3 -m py_compile: both DAG files"
# Every operator call with a bash_command: its class, task_id and the string.
python3 - "$PRODUCER_DAG" "$CONSUMER_DAG" >"$T/dags.json" <<'PY' || fail "cannot extract the bash_command strings"
import ast, json, sys
out = []
for path in sys.argv[1:]:
    tree = ast.parse(open(path).read(), path)
    dag_ids = [ast.literal_eval(k.value) for n in ast.walk(tree) if isinstance(n, ast.Call)
               for k in n.keywords if k.arg == 'dag_id']
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        kw = {k.arg: k.value for k in n.keywords}
        if 'bash_command' not in kw:
            continue
        cls = n.func.id if isinstance(n.func, ast.Name) else ast.unparse(n.func)
        item = {'file': path.rsplit('/', 1)[-1], 'dag_id': dag_ids[0] if dag_ids else None,
                'class': cls, 'task_id': ast.literal_eval(kw['task_id']),
                'bash_command': ast.literal_eval(kw['bash_command'])}
        for k in ('mode', 'retries', 'poke_interval'):
            if k in kw:
                item[k] = ast.literal_eval(kw[k])
        out.append(item)
json.dump(out, sys.stdout)
PY
jq -c '.[] | {file, dag_id, class, task_id}' "$T/dags.json"
DAGS=$(cat "$T/dags.json")
expect "$DAGS" '[.[] | .dag_id] | unique | length == 2' "two DAGs, with different dag_ids (one per Airflow instance)"
expect "$DAGS" '[.[] | select(.file == "sales_producer.py" and .class == "BashOperator" and (.bash_command | test("(^| )partreg run ")))] | length == 1' "producer DAG: a BashOperator running partreg run"
expect "$DAGS" '[.[] | select(.file == "sales_consumer.py" and (.class == "BashSensor" or (.class == "BashOperator" and .retries > 0)) and (.bash_command | test("(^| )partreg wait ")))] | length == 1' "consumer DAG: a sensor on partreg wait"
expect "$DAGS" '[.[] | select(.file == "sales_consumer.py" and (.bash_command | test("load")))] | length == 1' "consumer DAG: a load task"
# Airflow reads a bash_command that ends in .sh or .bash as a template file.
expect "$DAGS" 'all(.[]; (.bash_command | test("\\.(sh|bash)\\s*$")) | not)' "no bash_command ends in .sh (Airflow would look for a template file)"
expect "$DAGS" 'all(.[]; (.bash_command | test("--token[ =]")) | not)' "no token on a DAG's command line"

# Airflow's rendering for the run of 2023-01-01 of a @daily DAG.
render() {
  python3 - "$1" <<'PY'
import re, sys
values = {'ds': '2023-01-01', 'ds_nodash': '20230101',
          'data_interval_start': '2023-01-01T00:00:00+00:00',
          'data_interval_end': '2023-01-02T00:00:00+00:00'}
def sub(m):
    key = re.sub(r'\s+', '', m.group(1))
    if key not in values:
        sys.exit(f'unknown template {{{{ {m.group(1)} }}}}: add it to test_examples.sh')
    return values[key]
print(re.sub(r'\{\{\s*(.*?)\s*\}\}', sub, sys.argv[1]))
PY
}
cmd_of() { jq -r --arg f "$1" --arg t "$2" '.[] | select(.file == $f and .task_id == $t) | .bash_command' "$T/dags.json"; }
task_of() { jq -r --arg f "$1" --arg re "$2" '.[] | select(.file == $f and (.bash_command | test($re))) | .task_id' "$T/dags.json"; }
AF_PRODUCER=$(render "$(cmd_of sales_producer.py "$(task_of sales_producer.py 'partreg run ')")") || fail "cannot render the producer task's command"
AF_SENSOR=$(render "$(cmd_of sales_consumer.py "$(task_of sales_consumer.py 'partreg wait ')")") || fail "cannot render the sensor's command"
AF_LOAD=$(render "$(cmd_of sales_consumer.py "$(task_of sales_consumer.py 'load')")") || fail "cannot render the load task's command"
echo "  producer task: $AF_PRODUCER"
echo "  sensor task:   $AF_SENSOR"
echo "  load task:     $AF_LOAD"
# Two isolated instances: each worker has only its own environment; the
# consumer's has no token at all.
AF_A=("PATH=$T/bin:/usr/bin:/bin" "HOME=$T" "PARTREG_BROKER=$BROKER" "PARTREG_TOKEN=$AIRFLOW_TOKEN" "SALES=$T/sales" "SALES_OUT=$T/data-out")
AF_B=("PATH=$T/bin:/usr/bin:/bin" "HOME=$T" "PARTREG_BROKER=$BROKER" "SALES=$T/sales" "SALES_OUT=$T/data-out")
# BashOperator and BashSensor run their command with bash -c.
start_bg af_sensor bash "$AF_SENSOR" "${AF_B[@]}"
sleep 2
still_running af_sensor
ok "Airflow B: the sensor's partreg wait is waiting for 2023-01-01"
t0=$(now)
start_bg af_producer bash "$AF_PRODUCER" "${AF_A[@]}"
done_within af_producer 20
[ "$DRC" = 0 ] || { cat "$T/af_producer.out" "$T/af_producer.err" >&2; fail "the producer task exited $DRC"; }
ok "Airflow A: the producer task (partreg run ... -- export.sh) exits 0"
expect "$(sub1 "$P/state/sales/partitions/2023-01-01T00:00:00Z/2023-01-02T00:00:00Z/airflow_export")" '.state == "ready" and .metadata.exit_status == 0' "the producer DAG made 2023-01-01 ready"
done_within af_sensor 10
[ "$DRC" = 0 ] || { cat "$T/af_sensor.out" "$T/af_sensor.err" >&2; fail "the sensor's command exited $DRC"; }
echo "  the sensor's wait ended $(secs "$t0" "$DAT") s after the producer task started"
ok "Airflow B: the sensor's partreg wait exits 0 (the sensor succeeds)"
start_bg af_load bash "$AF_LOAD" "${AF_B[@]}"
done_within af_load 10
[ "$DRC" = 0 ] || { cat "$T/af_load.err" >&2; fail "the load task exited $DRC"; }
grep -qx "sales of 2023-01-01" "$T/data-out/loaded.log" || fail "the load task did not load 2023-01-01"
ok "Airflow B: the load task loaded 2023-01-01"
# A producer task whose export fails fails the day, and the task (Airflow retries it).
mv "$T/sales/export.sh" "$T/sales/export.sh.ok"
printf '#!/bin/sh\nexit 5\n' >"$T/sales/export.sh"
chmod +x "$T/sales/export.sh"
AF_PRODUCER2=${AF_PRODUCER//2023-01-01/2023-01-03}
AF_PRODUCER2=${AF_PRODUCER2//2023-01-02/2023-01-04}
start_bg af_producer2 bash "$AF_PRODUCER2" "${AF_A[@]}"
done_within af_producer2 20
[ "$DRC" = 5 ] || fail "a failing export: the producer task exited $DRC, expected 5"
expect "$(sub1 "$P/state/sales/partitions/2023-01-03T00:00:00Z/2023-01-04T00:00:00Z/airflow_export")" '.state == "failed"' "a failing export fails the day and the task (exit 5)"
for f in "$T"/*.err; do sanitizer_clean "$f"; done
ok "no sanitizer report from partreg"
pass
