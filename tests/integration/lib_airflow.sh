# SPDX-License-Identifier: MIT
# Real Apache Airflow for integration tests; source after lib.sh.
#
# airflow_venv installs apache-airflow (AIRFLOW_VERSION) with pip into a
# venv under the build directory, once: a stamp file written after a
# complete install lets the next run (and every other test) reuse it in
# well under a second; a half-made venv (no stamp) is made again from
# scratch. A lock file serialises two tests that both want it (ctest -j).
# pip unable to reach its package index is a skip (exit 77, said); anything
# else that goes wrong is a failure.
#
# airflow_home NAME makes one isolated Airflow instance under $T (its own
# SQLite database, dags folder and logs; no example DAGs, low parallelism),
# and airflow_dags_test runs `airflow dags test` in it with a clean
# environment (env -i) plus AIRFLOW_ENV: only what the caller passes
# reaches the tasks' commands, the way each site's workers have only their
# own environment. PATH holds the venv's bin and $T/af-bin, in which the
# built partreg is linked as `partreg`.
#
# Overrides (environment): PARTREG_AIRFLOW_PYTHON, the python that makes the
# venv (python3 on PATH by default); PARTREG_AIRFLOW_CONSTRAINTS, a pip
# --constraint file or URL (Airflow's constraints-3.3.2/constraints-3.11.txt
# where GitHub is reachable: not by default, the tests reach only the
# package index). Both are part of the stamp.

# Real Airflow runs once, in the plain build (the brief's rule for heavy
# real-client tests): under the sanitizers the test is skipped, said.
case "${PARTREG_SANITIZE:-0}" in 1 | ON | on | TRUE | true)
  echo "SKIP: real Airflow runs in the plain build only (this build has the sanitizers)"
  FAILED=0
  exit 77 ;;
esac

AIRFLOW_VERSION=3.3.2
AIRFLOW_VENV=${PARTREG_BUILD_DIR:?set by ctest: the build directory}/airflow-venv
AIRFLOW_PYTHON=${PARTREG_AIRFLOW_PYTHON:-python3}
AIRFLOW_CONSTRAINTS=${PARTREG_AIRFLOW_CONSTRAINTS:-}
AIRFLOW_BIN=$T/af-bin

# airflow_skip MESSAGE: the test cannot run here, through no fault of the code.
airflow_skip() {
  echo "SKIP: $*"
  FAILED=0
  exit 77
}

# What the stamp records: a venv made for other values is made again.
airflow_want() {
  echo "apache-airflow==$AIRFLOW_VERSION python=$("$AIRFLOW_PYTHON" -c 'import sys; print(sys.version.split()[0])')${AIRFLOW_CONSTRAINTS:+ constraints=$AIRFLOW_CONSTRAINTS}"
}

# airflow_pip_offline LOG: pip's failure came from the network (no route,
# no name resolution, refused, TLS, proxy, a timeout), not from the packages.
airflow_pip_offline() {
  grep -qE 'NewConnectionError|Max retries exceeded|ConnectTimeout|ReadTimeout|Temporary failure in name resolution|Name or service not known|Network is unreachable|Connection refused|SSLError|ProxyError' "$1"
}

# airflow_venv: make (or reuse) the venv and $AIRFLOW_BIN/partreg; sets
# AIRFLOW_VENV_SECONDS (how long it took) and AIRFLOW_VENV_REUSED (1 or 0).
airflow_venv() {
  command -v "$AIRFLOW_PYTHON" >/dev/null || fail "no $AIRFLOW_PYTHON to make the Airflow venv with"
  local t0 want stamp="$AIRFLOW_VENV/.partreg-stamp" log="$T/airflow-pip.log"
  t0=$(date +%s.%N)
  want=$(airflow_want)
  exec 8>"$PARTREG_BUILD_DIR/airflow-venv.lock"
  flock 8
  AIRFLOW_VENV_REUSED=1
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$AIRFLOW_VENV/bin/airflow" ]; then
    AIRFLOW_VENV_REUSED=0
    echo "  making $AIRFLOW_VENV ($want): about a minute, plus the download"
    rm -rf "$AIRFLOW_VENV"
    "$AIRFLOW_PYTHON" -m venv "$AIRFLOW_VENV" || fail "$AIRFLOW_PYTHON -m venv $AIRFLOW_VENV"
    # Is the index there at all? Short timeouts: a network that drops
    # packets must not cost pip's default retries, minutes each.
    if ! "$AIRFLOW_VENV/bin/pip" download --no-deps --timeout 20 --retries 1 -d "$T/pip-probe" \
      "apache-airflow==$AIRFLOW_VERSION" >"$log" 2>&1; then
      tail -n 5 "$log"
      rm -rf "$AIRFLOW_VENV"
      airflow_pip_offline "$log" &&
        airflow_skip "pip cannot reach its package index to install apache-airflow==$AIRFLOW_VERSION"
      fail "pip download apache-airflow==$AIRFLOW_VERSION failed (log above)"
    fi
    if ! "$AIRFLOW_VENV/bin/pip" install --timeout 60 ${AIRFLOW_CONSTRAINTS:+--constraint "$AIRFLOW_CONSTRAINTS"} \
      "apache-airflow==$AIRFLOW_VERSION" >>"$log" 2>&1; then
      tail -n 20 "$log"
      rm -rf "$AIRFLOW_VENV"
      airflow_pip_offline "$log" &&
        airflow_skip "pip lost its package index while installing apache-airflow==$AIRFLOW_VERSION"
      fail "pip install apache-airflow==$AIRFLOW_VERSION failed (log above)"
    fi
    echo "$want" >"$stamp"
  fi
  flock -u 8
  exec 8>&-
  AIRFLOW_VENV_SECONDS=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")
  mkdir -p "$AIRFLOW_BIN"
  ln -sf "${PARTREG_CLI:?set by ctest: path to partreg}" "$AIRFLOW_BIN/partreg"
}

# AIRFLOW_ENV: NAME=value words the caller sets for the next runs (the
# site's PARTREG_BROKER, its token, ...), on top of a clean environment.
AIRFLOW_ENV=()

# airflow_argv HOME: AF_ARGV, the command that runs `airflow` for the
# instance at HOME with only that environment (env -i). Airflow 3.3.2 has no
# telemetry; DO_NOT_TRACK and SCARF_ANALYTICS turn off that of Airflow 2,
# should a version under test bring it back.
airflow_argv() {
  AF_ARGV=(env -i "PATH=$AIRFLOW_VENV/bin:$AIRFLOW_BIN:/usr/bin:/bin" "HOME=$1" "LANG=C.UTF-8"
    "AIRFLOW_HOME=$1" "TMPDIR=$T" "DO_NOT_TRACK=true" "SCARF_ANALYTICS=false"
    "${AIRFLOW_ENV[@]}" "$AIRFLOW_VENV/bin/airflow")
}

# airflow_home NAME: a fresh AIRFLOW_HOME in $T/airflow-NAME with an empty
# dags folder (the caller copies DAG files into $AIRFLOW_HOME_DIR/dags) and
# a migrated SQLite database; sets AIRFLOW_HOME_DIR.
airflow_home() {
  local home="$T/airflow-$1"
  mkdir -p "$home/dags" "$home/logs"
  # Spelled out, so that nothing comes from a default: no example DAGs,
  # few parallel tasks (tests share a few cores), the host's name without
  # a DNS lookup (Airflow's default, getfqdn, asks the resolver).
  cat >"$home/airflow.cfg" <<EOF
[core]
dags_folder = $home/dags
load_examples = False
parallelism = 2
max_active_tasks_per_dag = 2
default_timezone = utc
hostname_callable = socket.gethostname
[database]
sql_alchemy_conn = sqlite:///$home/airflow.db
[logging]
base_log_folder = $home/logs
[dag_processor]
parsing_processes = 1
EOF
  AIRFLOW_HOME_DIR=$home
  airflow_argv "$home"
  "${AF_ARGV[@]}" db migrate >"$home/migrate.log" 2>&1 || {
    tail -n 30 "$home/migrate.log"
    fail "airflow db migrate in $home"
  }
}

# airflow_dags_test_start HOME DAG_ID DATE NAME: `airflow dags test DAG_ID
# DATE` in the background in the instance at HOME (with AIRFLOW_ENV), all
# it prints into $T/NAME.out. The process started is airflow itself (env
# execs it), so lib.sh's cleanup stops it by its PID.
declare -A AF_PID=() AF_T0=()
airflow_dags_test_start() {
  local home=$1 dag=$2 date=$3 name=$4
  airflow_argv "$home"
  AF_T0[$name]=$(date +%s.%N)
  "${AF_ARGV[@]}" dags test "$dag" "$date" >"$T/$name.out" 2>&1 &
  AF_PID[$name]=$!
  PIDS+=("$!")
}

# airflow_running NAME: that run has not ended yet.
airflow_running() { kill -0 "${AF_PID[$1]}" 2>/dev/null; }

# airflow_dags_test_wait NAME SECONDS: wait for that run to end; fails,
# printing the end of its output, if it takes longer. Sets RC (airflow's
# exit status: 0 when the DAG run succeeded, 1 when it failed), AF_SECONDS
# (from its start until seen ended), AF_STATE (the run's final state, from
# airflow's "DagRun Finished" line) and AF_END (that line's run_end_date,
# in seconds since the epoch).
airflow_dags_test_wait() {
  local name=$1 line end
  for _ in $(seq $(($2 * 10))); do airflow_running "$name" || break; sleep 0.1; done
  if airflow_running "$name"; then
    tail -n 30 "$T/$name.out" >&2
    fail "airflow dags test ($name) did not end within $2 s"
  fi
  RC=0
  wait "${AF_PID[$name]}" || RC=$?
  AF_SECONDS=$(printf '%.1f' "$(echo "$(date +%s.%N) - ${AF_T0[$name]}" | bc)")
  line=$(grep -oE 'DagRun Finished: .*' "$T/$name.out" | tail -n 1 || true)
  AF_STATE=$(grep -oE ' state=[a-z_]+' <<<"$line" | cut -d= -f2 || true)
  end=$(grep -oE 'run_end_date=[^,]+' <<<"$line" | cut -d= -f2 || true)
  AF_END=""
  [ -z "$end" ] || AF_END=$(date -d "$end" +%s.%N)
}

# airflow_dags_test HOME DAG_ID DATE NAME SECONDS: both, in the foreground.
airflow_dags_test() {
  airflow_dags_test_start "$1" "$2" "$3" "$4"
  airflow_dags_test_wait "$4" "$5"
}
