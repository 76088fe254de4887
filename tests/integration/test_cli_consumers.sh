#!/usr/bin/env bash
# Issue 11: consumers that need only the broker, jobs that die with their
# runner, and a CLI without surprises.
#   - wait and ready decide from the retained summary with the agent
#     stopped; wait keeps waiting while the agent is offline (and says so),
#     without --timeout for longer than the old 10 s default, and returns
#     within a second of the agent coming back and the unlock;
#   - one exit-code table: 0, 1, 2 (local and the agent's invalid_*), 3, 4, 5;
#     watch of an unknown source is 5;
#   - run: kill -9 of the runner kills the job; a kill of the whole process
#     group reaches both; the partition is failed by the Last Will;
#   - --json: stdout is exactly one JSON document (run's job writes to
#     stderr), usage errors are JSON on stderr;
#   - run says how it ended; --quiet says nothing on success; an unreachable
#     broker is one line, not log lines.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_cli.sh"
start_broker
start_agent
export PARTREG_BROKER=mqtt://127.0.0.1:$PORT
S=cons
new_source $S
umask 077
echo "$TOKEN" >"$T/tok"
D1=2023-01-01T00:00:00Z
D2=2023-01-02T00:00:00Z
D3=2023-01-03T00:00:00Z
LOCK1="{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$TOKEN\""

# Day 1 ready, day 2 locked.
expect "$(rr partition/lock "$LOCK1}")" '.ok' "lock day 1"
expect "$(rr partition/unlock "$LOCK1,\"fence\":1}")" '.ok' "unlock day 1: ready"
LOCK2="{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$D2\",\"end\":\"$D3\",\"access_token\":\"$TOKEN\""
expect "$(rr partition/lock "$LOCK2,\"ttl_s\":3600}")" '.ok' "lock day 2"

# ---- exit codes, agent up ----
cli ready $S --start $D1 --end $D2; rc 0 "ready: yes"
cli ready $S --start $D2 --end $D3; rc 1 "ready: no"
cli ready $S --start 01/01/2023 --end $D2; rc 2 "ready: a bad time (local)"
cli --json ready $S --start $D2 --end $D1; rc 2 "ready --json: end before start (local)"
jq -e '.code == "usage"' <<<"$ERR" >/dev/null || fail "usage error under --json is not JSON: $ERR"
ok "usage error under --json: JSON on stderr"
cli --json frobnicate; rc 2 "unknown command under --json"
jq -e '.code == "usage"' <<<"$ERR" >/dev/null || fail "unknown command under --json is not JSON: $ERR"
cli source get '../bad'; rc 2 "the agent's invalid_name is 2"
has_code() { grep -q "$1" <<<"$ERR" || fail "expected $1 in: $ERR"; }
has_code invalid_name
cli source get nosuch; rc 5 "unknown source: 5"
cli --token-file "$T/tok" partition unlock $S --provider nobody --start $D1 --end $D2 --fence 1; rc 5 "unknown provider: 5"
cli wait $S --start $D2 --end $D3 --timeout 1; rc 4 "wait --timeout runs out: 4"
cli watch nosuch --timeout 3; rc 5 "watch of an unknown source: 5"
cli --broker mqtt://127.0.0.1:1 --timeout 1 source get $S; rc 3 "unreachable broker: 3"
[ "$(wc -l <<<"$ERR")" = 1 ] || fail "unreachable broker: more than one line: $ERR"
if grep -q "transport:" <<<"$ERR"; then fail "unreachable broker: log lines: $ERR"; fi
ok "unreachable broker: one line ($ERR)"

# ---- the agent stopped: the broker decides ----
stop_agent
t0=$(date +%s%N)
cli wait $S --start $D1 --end $D2 --timeout 30; rc 0 "agent stopped, summary ready: wait"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 3000 ] || fail "wait took $ms ms with the summary ready"
ok "wait answered from the summary in $ms ms"
cli ready $S --start $D1 --end $D2 --timeout 5; rc 0 "agent stopped, summary ready: ready"
cli --json ready $S --start $D2 --end $D3 --timeout 5; rc 1 "agent stopped, not ready: ready says no from the summary"
jq -e '.from == "summary" and (.blockers | length) == 1' <<<"$OUT" >/dev/null || fail "ready --json from the summary: $OUT"
# Not ready, agent away, no --timeout: keeps waiting past the old 10 s.
"$PARTREG_CLI" wait $S --start $D2 --end $D3 >"$T/w.out" 2>"$T/w.err" &
W=$!
PIDS+=("$W")
sleep 11
kill -0 $W 2>/dev/null || fail "wait without --timeout ended while the agent was away: $(cat "$T/w.err")"
grep -q "agent offline since" "$T/w.err" || fail "the live line does not say the agent is offline: $(cat "$T/w.err")"
ok "wait keeps waiting with the agent away, and says so"
grep -Eq "locked by p since [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z, lease until [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z" "$T/w.err" ||
  fail "the wait line has no canonical times with date and zone: $(cat "$T/w.err")"
ok "the wait line shows times with date and zone"
cli --quiet wait $S --start $D2 --end $D3 --timeout 2; rc 4 "wait --quiet times out"
[ "$(wc -l <<<"$ERR")" = 1 ] || fail "wait --quiet printed progress: $ERR"
ok "wait --quiet prints no progress line, only the timeout"
start_agent
expect "$(rr partition/unlock "$LOCK2,\"fence\":2}")" '.ok' "the agent is back; unlock day 2"
t0=$(date +%s%N)
for _ in $(seq 50); do kill -0 $W 2>/dev/null || break; sleep 0.05; done
wrc=0
wait $W || wrc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$wrc" = 0 ] || fail "wait exited $wrc after the unlock"
[ "$ms" -lt 1500 ] || fail "wait took $ms ms after the unlock"
ok "wait exited 0 within $ms ms of the unlock"

# ---- run: --json, the ending, --quiet ----
day() { date -u -d "2023-02-01 UTC + $1 day" +%Y-%m-%dT%H:%M:%SZ; }
cli --token-file "$T/tok" --json run $S --provider p --start "$(day 0)" --end "$(day 1)" -- echo hi; rc 0 "run --json"
jq -e '.state == "ready"' <<<"$OUT" >/dev/null || fail "run --json stdout is not one JSON document: $OUT"
grep -qx hi <<<"$ERR" || fail "run --json: the job's output is not on stderr: $ERR"
ok "run --json: stdout is one JSON document, the job's output on stderr"
cli --token-file "$T/tok" run $S --provider p --start "$(day 1)" --end "$(day 2)" -- true; rc 0 "run"
grep -q "^partreg run: $S p \[$(day 1), $(day 2)) is ready, version 1$" <<<"$ERR" || fail "run did not say how it ended: $ERR"
ok "run says how it ended"
cli --token-file "$T/tok" run $S --provider p --start "$(day 2)" --end "$(day 3)" -- false; rc 1 "run of a failing job"
grep -q "is failed (the job: exit status 1)" <<<"$ERR" || fail "run did not say it failed: $ERR"
cli --token-file "$T/tok" --quiet run $S --provider p --start "$(day 3)" --end "$(day 4)" -- true; rc 0 "run --quiet"
[ -z "$ERR$OUT" ] || fail "run --quiet printed: $OUT $ERR"
ok "run --quiet prints nothing on success"

# ---- run: the job dies with its runner ----
# alive PID: running (a zombie is dead: in a container its new parent may
# never reap it).
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null | tr -d ' '); [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }
# part N: day N's retained state.
ptopic() { echo "$P/state/$S/partitions/$(day "$1")/$(day $(($1 + 1)))/p"; }
part() { sub1 "$(ptopic "$1")"; }
# state_within N STATE SECONDS: day N's retained state becomes STATE in time.
state_within() { retained_within "$(ptopic "$1")" ".state == \"$2\"" "$3"; }
"$PARTREG_CLI" --token-file "$T/tok" run $S --provider p --start "$(day 5)" --end "$(day 6)" --will-delay 2 -- sleep 30 \
  >"$T/r1.out" 2>"$T/r1.err" &
R=$!
PIDS+=("$R")
state_within 5 locked 10 || fail "run did not lock day 5"
JOB=$(pgrep -P $R -x sleep)
[ -n "$JOB" ] || fail "no job under the runner"
kill -9 $R
for _ in $(seq 20); do alive "$JOB" || break; sleep 0.05; done
if alive "$JOB"; then fail "the job outlived its runner (kill -9)"; fi
ok "kill -9 of the runner: the job is gone"
state_within 5 failed 10 || fail "the partition was not failed by the Last Will"
ok "kill -9 of the runner: the partition is failed"
# A kill of the runner's whole process group (as Airflow does).
setsid "$PARTREG_CLI" --token-file "$T/tok" run $S --provider p --start "$(day 6)" --end "$(day 7)" --will-delay 2 -- sleep 30 \
  >"$T/r2.out" 2>"$T/r2.err" &
R=$!
PIDS+=("$R")
state_within 6 locked 10 || fail "run did not lock day 6"
JOB=$(pgrep -P $R -x sleep)
[ "$(ps -o pgid= -p "$JOB" | tr -d ' ')" = "$(ps -o pgid= -p $R | tr -d ' ')" ] || fail "the job is not in the runner's process group"
ok "the job stays in the runner's process group"
kill -9 -- "-$R"
for _ in $(seq 20); do alive "$JOB" || alive $R || break; sleep 0.05; done
if alive "$JOB"; then fail "the job survived the group kill"; fi
if alive $R; then fail "the runner survived the group kill"; fi
state_within 6 failed 10 || fail "group kill: the partition was not failed"
ok "kill -9 of the process group: runner and job gone, partition failed"
pass
