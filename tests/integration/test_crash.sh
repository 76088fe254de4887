#!/usr/bin/env bash
# Crash consistency (issue 10): clients keep sending writes, each with its
# own request_id and resent as it was until a reply comes, while the agent
# is kill -9ed at random moments and restarted; then, against the store:
#  - every acknowledged command is there: each reply is the one the
#    command's script must get, its event is in the history at the reply's
#    seq with the reply's partition, state, fence and version, and the
#    final partitions are what the last acknowledged commands left;
#  - none was applied twice: the history holds exactly the events of the
#    acknowledged changes (seq 1..N, one per change, nothing else), the
#    fences of the acknowledged locks are exactly 1..L, and sending every
#    command once more, as it was, returns its recorded reply marked
#    replayed and changes nothing;
#  - seq is monotonic across restarts: each worker's replies rise, history
#    seqs rise one by one with epochs that never go back, and a subscriber
#    sees event seqs rise and summary seqs never fall, while every event it
#    saw live is the one the store kept.
# The clients are prog_crash (libpartreg), see its header comment.
# PARTREG_CRASH_SEED=N repeats a run's random pauses (the kill moments
# relative to the agent's start); PARTREG_CRASH_KILLS sets the number of
# kills of a running agent (at least 10; every third restart is killed once
# more during its start-up).
. "$(dirname "$0")/lib.sh"
PROG="${PARTREG_TEST_PROGS:?set by ctest}/prog_crash"
[ -x "$PROG" ] || fail "$PROG not built"

SEED=${PARTREG_CRASH_SEED:-$((($$ + $(date +%s)) % 32768))}
RANDOM=$SEED
KILLS=${PARTREG_CRASH_KILLS:-12}
[ "$KILLS" -ge 10 ] || KILLS=10
WORKERS=3
S=crash
OUT="$T/out"
mkdir -p "$OUT"
# One attempt's wait for a reply: resends while the agent is down. The
# ASan agent starts and answers more slowly.
ATTEMPT_MS=250
[ "${PARTREG_SANITIZE:-0}" = 1 ] && ATTEMPT_MS=500
echo "seed $SEED (PARTREG_CRASH_SEED=$SEED repeats the pauses), $KILLS kills + $((KILLS / 3)) in start-up"

now_us() { date +%s%6N; }
# msleep LO HI: sleep a random LO..HI milliseconds.
msleep() {
  local ms=$(($1 + RANDOM % ($2 - $1 + 1)))
  sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
}
# all_pages CMD JSON KEY: the KEY array of every page of CMD, as one array.
all_pages() {
  local cursor=null r n=0
  while :; do
    r=$(rr "$1" "$(jq -c --argjson c "$cursor" '. + {limit: 1000} + if $c == null then {} else {cursor: $c} end' <<<"$2")")
    jq -e .ok >/dev/null <<<"$r" || { echo "got: $r" >&2; fail "$1 $2 failed"; }
    jq -c ".result.$3" <<<"$r"
    cursor=$(jq -c .result.next_cursor <<<"$r")
    [ "$cursor" != null ] || break
    n=$((n + 1))
    [ $n -lt 200 ] || fail "$1: more than 200 pages"
  done | jq -s -c 'add'
}
# check NAME JQ-PROGRAM FILE...: the program (jq -s over FILEs) must print
# an empty array; otherwise its output (the offending items) is shown, and
# the test goes on to the other checks and fails at the end.
FAILED_CHECKS=0
check() {
  local name=$1 prog=$2 bad
  shift 2
  bad=$(jq -s -c "$prog" "$@") || fail "$name: jq failed"
  if [ "$bad" != "[]" ]; then
    echo "not ok - $name"
    echo "  $(jq length <<<"$bad") offending, the first: $(jq -c '.[:3]' <<<"$bad" | head -c 2000)"
    FAILED_CHECKS=$((FAILED_CHECKS + 1))
    return 0
  fi
  ok "$name"
}

start_broker
start_agent

TOKEN=$(rr source/register "{\"source\":\"$S\",\"owner\":\"o\"}" | jq -r .result.access_token)
[ ${#TOKEN} -eq 36 ] || fail "could not register source $S"
for w in $(seq 0 $((WORKERS - 1))); do
  rr provider/register "{\"source\":\"$S\",\"provider\":\"p$w\",\"access_token\":\"$TOKEN\"}" |
    jq -e .ok >/dev/null || fail "could not register provider p$w"
done
SETUP_SEQ=$((1 + WORKERS)) # source_registered, provider_registered × WORKERS

# A subscriber on its own connection, there for the whole run: every live
# event, every summary and every agent status, in the order the broker
# delivers them.
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -v -t "$P/events/$S" -t "$P/state/$S" \
  -t "$P/agent/status" -t "test/mark/$$" >"$T/monitor.txt" 2>>"$T/sub.log" &
PIDS+=($!)
for i in $(seq 50); do
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -t "test/mark/$$" -m "{\"mark\":$i}"
  grep -q mark "$T/monitor.txt" && break
  sleep 0.1
done
grep -q mark "$T/monitor.txt" || fail "the monitor did not start"

T_START=$(now_us)
PARTREG_TOKEN=$TOKEN "$PROG" run "mqtt://127.0.0.1:$PORT" "$S" "$WORKERS" "$OUT" "$ATTEMPT_MS" \
  >"$T/prog.log" 2>&1 &
PROG_PID=$!
PIDS+=("$PROG_PID")
for _ in $(seq 100); do [ -s "$OUT/w0.jsonl" ] && break; sleep 0.05; done
[ -s "$OUT/w0.jsonl" ] || fail "the clients did not start"

# The kills: at a random moment of a running agent (0.05-1.5 s after it
# came online, so some land in its start-up republishing), down for
# 0-0.6 s (retries pile up in its broker session), and every third
# restart is killed again after 0-40 ms, before or just as it comes online.
: >"$T/kills"
for i in $(seq "$KILLS"); do
  msleep 50 1500
  kill -0 "$PROG_PID" 2>/dev/null || fail "the clients exited early: $(cat "$T/prog.log")"
  now_us >>"$T/kills"
  kill_agent
  msleep 0 600
  if [ $((i % 3)) -eq 0 ]; then
    "$PARTREGD" --broker "mqtt://127.0.0.1:$PORT" --data-dir "$T/data" --log-level debug \
      >>"$T/agent.log" 2>&1 &
    AGENT_PID=$!
    PIDS+=("$AGENT_PID")
    msleep 0 40
    now_us >>"$T/kills"
    kill_agent
  fi
  start_agent
done
msleep 300 600
touch "$OUT/stop"
rc=0
wait "$PROG_PID" || rc=$?
[ $rc -eq 0 ] || fail "prog_crash run exited $rc: $(cat "$T/prog.log")"
RUN_MS=$((($(now_us) - T_START) / 1000))
NKILLS=$(wc -l <"$T/kills")
ok "$NKILLS kills -9 in $((RUN_MS / 1000)).$((RUN_MS % 1000 / 100)) s; $(cat "$T/prog.log")"

# Everything is checked against this agent, the last one started.
jq -s -c '.' "$OUT"/w*.jsonl >"$T/records.json"
N=$(rr source/get "{\"source\":\"$S\"}" | jq -r .result.seq)
all_pages history/query "{\"source\":\"$S\"}" events >"$T/history.json"
all_pages partition/list "{\"source\":\"$S\"}" items >"$T/list.json"
SUMMARY=$(sub1 "$P/state/$S")

# The numbers, before any check (they help to read a failure).
jq -r --slurpfile kills "$T/kills" '
  length as $n | map(select(.reply.ok)) as $acked | map(select(.attempts > 1)) as $retried
  | map(select(.reply.replayed == true)) as $replayed
  | map(. as $c | select(any($kills[]; . > $c.t0 and . < $c.t1))) as $spanning
  | "# commands \($n): \($acked | length) ok, \($n - ($acked | length)) refused; \(map(.attempts) | add) sends; "
    + "\($retried | length) retried (up to \(map(.attempts) | max) sends), \($replayed | length) answered "
    + "by a replay, \($spanning | length) in flight across a kill, \(map(.server_errors) | add) 5xx retried"' \
  "$T/records.json"

# ---- every reply is the one its command must get ----
check "every command got a reply" '.[0] | map(select(.reply == null))' "$T/records.json"
check "every reply carries its request_id" '.[0] | map(select(.reply.request_id != .rid))' "$T/records.json"
check "every reply is the expected one (state, version, fence, or error code)" '
  .[0] | map(select(
    if .exp.code then (.reply.ok != false or .reply.error.code != .exp.code)
    else (.reply.ok != true or .reply.result.state != .exp.state
          or .reply.result.version != .exp.version
          or (.exp.fence != null and .reply.result.fence != .exp.fence)
          or .reply.result.provider != .provider or .reply.result.start != .start
          or .reply.result.end != .end)
    end))' "$T/records.json"

# ---- fences: every acknowledged lock took the next one, once ----
check "each worker's lock fences rise" '
  .[0] | map(select(.verb == "partition/lock" and .reply.ok)) | group_by(.w)
  | map(sort_by(.k, .s) | range(1; length) as $i | select(.[$i].reply.result.fence <= .[$i - 1].reply.result.fence)
    | {rid: .[$i].rid, fence: .[$i].reply.result.fence, after: .[$i - 1].reply.result.fence})' "$T/records.json"
check "the acknowledged locks hold exactly the fences 1..L" '
  .[0] | [.[] | select(.verb == "partition/lock" and .reply.ok) | .reply.result.fence] | sort
  | if . == [range(1; length + 1)] then [] else [{locks: length, fences_missing: ([range(1; length + 1)] - .),
      fences_repeated: (group_by(.) | map(select(length > 1) | .[0])), beyond: (. - [range(1; length + 1)])}] end' \
  "$T/records.json"

# ---- seq: one per acknowledged change, in order, no gap, no repeat ----
[[ "$N" =~ ^[0-9]+$ ]] || fail "source/get gave no seq"
check "each worker's change seqs rise" '
  .[0] | map(select(.reply.ok)) | group_by(.w)
  | map(sort_by(.k, .s) | range(1; length) as $i | select(.[$i].reply.result.seq <= .[$i - 1].reply.result.seq)
    | {rid: .[$i].rid, seq: .[$i].reply.result.seq, after: .[$i - 1].reply.result.seq})' "$T/records.json"
check "the acknowledged changes and the set-up hold exactly the seqs 1..$N" "
  .[0] | ([range(1; $SETUP_SEQ + 1)] + [.[] | select(.reply.ok) | .reply.result.seq]) | sort
  | if . == [range(1; $N + 1)] then [] else [{seqs_missing: ([range(1; $N + 1)] - .),
      seqs_repeated: (group_by(.) | map(select(length > 1) | .[0])), extra: (. - [range(1; $N + 1)])}] end" \
  "$T/records.json"

# ---- the history: exactly those events ----
check "history: seqs 1..$N, each once, in order" "
  .[0] | [.[].seq] | if . == [range(1; $N + 1)] then [] else [{history_seqs_len: length, first: .[0], last: .[-1]}] end" \
  "$T/history.json"
check "history: epochs never go back along seq" '
  .[0] | [.[].epoch] | [range(1; length) as $i | select(.[$i] < .[$i - 1]) | $i]' "$T/history.json"
check "every acknowledged change is in the history at its seq, as its reply says" '
  (.[1] | map({key: (.seq | tostring), value: .}) | from_entries) as $h
  | {"partition/register": "registered", "partition/lock": "locked", "partition/renew": "renewed",
     "partition/unlock": "unlocked", "partition/fail": "failed", "partition/delete": "deleted"} as $type
  | .[0] | map(select(.reply.ok)) | map(.reply.result as $r | $h[$r.seq | tostring] as $e
    | select($e == null or $e.type != $type[.verb] or $e.provider != $r.provider
        or $e.start != $r.start or $e.end != $r.end or $e.state != $r.state
        or ($e.fence // 0) != $r.fence or $e.version != $r.version)
    | {rid, reply: $r, event: $e})' "$T/records.json" "$T/history.json"

# ---- the final partitions: what the last acknowledged commands left ----
# A worker ends after a whole partition: an even k was last unlocked
# (ready, version 2, the second run's metadata), an odd one deleted.
check "partition/list holds exactly the partitions the replies say, as they say" '
  (.[0] | map(select(.reply.ok and .verb == "partition/unlock" and .s == 10)) | map(.reply.result)
   | map({provider, start, "end": .end, state, version, fence, metadata, seq}) | sort) as $want
  | (.[1] | map({provider, start, "end": .end, state, version, fence, metadata, seq}) | sort) as $have
  | if $want == $have then [] else [{missing: ($want - $have), unexpected: ($have - $want)}] end' \
  "$T/records.json" "$T/list.json"
# Each run that came online raised the epoch; one killed early in its
# start-up may not have.
EPOCH=$(sub1 "$P/agent/status" | jq -r .epoch)
check "the agent's epoch ($EPOCH): one per run that came online" \
  "[.[0] | select(. < $((KILLS + 1)) or . > $((NKILLS + 1)))]" <<<"$EPOCH"
check "the retained summary: seq $N, nothing blocked, epoch $EPOCH" \
  "[.[0] | select(.seq != $N or .blocked != [] or .epoch != $EPOCH)]" <<<"$SUMMARY"

# ---- what a subscriber saw live ----
# One message per source per group commit: {v: 2, source, epoch, events}.
sed -n "s|^$P/events/$S ||p" "$T/monitor.txt" >"$T/live-batches.json"
jq -c '.events[]?' "$T/live-batches.json" >"$T/live-events.json"
check "live events: each message a batch of format 2 (this source, its epoch, 1+ events, seqs rising)" "
  map(select(.v != 2 or .source != \"$S\" or (keys != [\"epoch\", \"events\", \"source\", \"v\"])
    or (.events | type != \"array\" or length == 0) or (.epoch as \$e | any(.events[]; .epoch != \$e or .source != \"$S\"))
    or ([.events[].seq] as \$q | any(range(1; \$q | length); \$q[.] <= \$q[. - 1])))
    | {v, source, epoch, seqs: [.events[]?.seq]})" "$T/live-batches.json"
sed -n "s|^$P/state/$S ||p" "$T/monitor.txt" >"$T/live-summaries.json"
sed -n "s|^$P/agent/status ||p" "$T/monitor.txt" >"$T/live-status.json"
check "live events: seqs rise, no repeat" '
  [.[].seq] | [range(1; length) as $i | select(.[$i] <= .[$i - 1]) | {at: $i, seq: .[$i], after: .[$i - 1]}]' \
  "$T/live-events.json"
check "live events: each is the event the store kept" '
  (.[0] | map({key: (.seq | tostring), value: .}) | from_entries) as $h
  | .[1:] | map(select(. != $h[.seq | tostring]))' "$T/history.json" "$T/live-events.json"
check "live summaries: seq and epoch never go back" '
  [range(1; length) as $i | select(.[$i].seq < .[$i - 1].seq or .[$i].epoch < .[$i - 1].epoch)
   | {at: $i, seq: .[$i].seq, epoch: .[$i].epoch, before: {seq: .[$i - 1].seq, epoch: .[$i - 1].epoch}}]' \
  "$T/live-summaries.json"
check "agent status: each run online with a higher epoch" '
  [.[] | select(.status == "online") | .epoch] | [range(1; length) as $i | select(.[$i] <= .[$i - 1])]' \
  "$T/live-status.json"

# ---- none applied twice: every command once more, as it was ----
rc=0
"$PROG" replay "mqtt://127.0.0.1:$PORT" "$OUT" "$WORKERS" "$ATTEMPT_MS" >>"$T/prog.log" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "prog_crash replay exited $rc: $(tail -n 3 "$T/prog.log")"
check "sent again, every command gets its first reply, replayed" '
  (.[0] | map({key: .rid, value: .reply}) | from_entries) as $first
  | .[1:] | map(select(.reply.replayed != true or (.reply | del(.replayed)) != ($first[.rid] | del(.replayed)))
    | {rid, reply, first: $first[.rid]})' "$T/records.json" "$OUT"/replay*.jsonl
check "seq unchanged by the replays ($N)" "[.[0] | select(.result.seq != $N)]" \
  <<<"$(rr source/get "{\"source\":\"$S\"}")"
all_pages partition/list "{\"source\":\"$S\"}" items >"$T/list-after.json"
check "partitions unchanged by the replays" \
  'if .[0] == .[1] then [] else [{before: (.[0] - .[1]), after: (.[1] - .[0])}] end' \
  "$T/list.json" "$T/list-after.json"

# Nothing the agent itself logged as an error in any of its runs.
check "no error in the agent's log" '.' <(grep -E '^[^ ]+ error ' "$T/agent.log" | jq -R . || true)
[ "$FAILED_CHECKS" -eq 0 ] || fail "$FAILED_CHECKS checks failed"
echo "# history $N events; $((NKILLS + 1)) agent runs, $(grep -c 'agent: online (epoch' "$T/agent.log") came online, epochs 1..$EPOCH;" \
  "live: $(wc -l <"$T/live-events.json") events in $(wc -l <"$T/live-batches.json") messages, $(wc -l <"$T/live-summaries.json") summaries"
pass
