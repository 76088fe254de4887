#!/usr/bin/env bash
# A date alone is that day's midnight, UTC, for the agent as for the CLI and
# the library (issue 11, point 7): over real MQTT, a partition locked and
# unlocked with "2023-01-01" / "2023-01-02" is the partition of
# 2023-01-01T00:00:00Z, stored, published and answered with canonical full
# times; readiness/query, partition/list and history/query take dates
# alone; the CLI and the agent give the same answer; and a date alone is
# validated like any time (month, day of month, leap years, year 0001-9999):
# a bad one is refused with invalid_time and changes nothing.
. "$(dirname "$0")/lib.sh"
: "${PARTREG_CLI:?set by ctest: path to partreg}"
start_broker
start_agent

S=dates
D1=2023-01-01T00:00:00Z
D2=2023-01-02T00:00:00Z
D3=2023-01-03T00:00:00Z
new_source $S


# ---- a write with dates alone: canonical midnight UTC everywhere ----
r=$(rr partition/lock "$(pbody '{start:"2023-01-01",end:"2023-01-02"}')")
expect "$r" ".ok and .status == 200 and .result.state == \"locked\" and .result.start == \"$D1\" and .result.end == \"$D2\"" \
  "partition/lock with start 2023-01-01, end 2023-01-02: locked, canonical times in the reply"
FENCE=$(jq -r .result.fence <<<"$r")
expect "$(sub1 "$P/state/$S/partitions/$D1/$D2/p")" ".state == \"locked\" and .start == \"$D1\" and .end == \"$D2\" and .fence == $FENCE" \
  "retained under the canonical topic .../$D1/$D2/p"
# The same partition, named with full times: the fence of the date-only lock holds.
r=$(rr partition/renew "$(pbody "{start:\"$D1\",end:\"2023-01-02 00:00:00\",fence:$FENCE}")")
expect "$r" ".ok and .result.state == \"locked\" and .result.fence == $FENCE" "renew with full times: the same lock"
r=$(rr partition/unlock "$(pbody "{start:\"2023-01-01\",end:\"2023-01-02T00:00:00+00:00\",fence:$FENCE}")")
expect "$r" ".ok and .result.state == \"ready\" and .result.version == 1 and .result.start == \"$D1\"" \
  "unlock with a date alone and an offset form: ready, version 1"
r=$(rr partition/list "{\"source\":\"$S\"}")
expect "$r" ".ok and (.result.items | length) == 1 and .result.items[0].start == \"$D1\" and .result.items[0].end == \"$D2\" and .result.items[0].state == \"ready\"" \
  "one partition, stored with canonical times"
# A date alone on the last day of February of a leap year.
r=$(rr partition/register "$(pbody '{start:"2024-02-28",end:"2024-02-29"}')")
expect "$r" '.ok and .result.start == "2024-02-28T00:00:00Z" and .result.end == "2024-02-29T00:00:00Z" and .result.state == "pending"' \
  "partition/register 2024-02-28 .. 2024-02-29 (leap year)"

# ---- reads with dates alone ----
r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"2023-01-01\",\"end\":\"2023-01-02\"}")
expect "$r" ".ok and .result.ready == true and .result.ready_through == \"$D2\" and .result.gaps == []" \
  "readiness/query 2023-01-01 .. 2023-01-02: ready"
r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"2023-01-01\",\"end\":\"2023-01-03\"}")
expect "$r" ".ok and .result.ready == false and .result.gaps == [[\"$D2\",\"$D3\"]] and .result.ready_through == \"$D2\"" \
  "readiness/query 2023-01-01 .. 2023-01-03: the gap [$D2, $D3)"
r=$(rr history/query "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"2023-01-01\",\"end\":\"2023-01-02\"}")
expect "$r" ".ok and ([.result.events[].type] | length) >= 2 and all(.result.events[]; .start == \"$D1\" and .end == \"$D2\")" \
  "history/query of the partition named by dates alone"
# The event window [from, to) by dates alone: the day of the first event
# (taken from it, so a test running across midnight UTC still agrees).
FIRST=$(rr history/query "{\"source\":\"$S\",\"limit\":1}" | jq -c '.result.events[0]')
DAY=$(jq -r '.at[0:10]' <<<"$FIRST")
NEXT=$(date -u -d "$DAY + 1 day" +%F)
r=$(rr history/query "{\"source\":\"$S\",\"from\":\"$DAY\",\"to\":\"$NEXT\",\"limit\":1}")
expect "$r" ".ok and .result.events[0] == $FIRST" "history/query from $DAY to $NEXT (dates alone): the day's first event"
r=$(rr history/query "{\"source\":\"$S\",\"to\":\"$DAY\"}")
expect "$r" '.ok and .result.events == []' "history/query to $DAY (its midnight): no event before that day"

# ---- the CLI (which turns a date into midnight UTC itself) agrees ----
set +e
PARTREG_BROKER=mqtt://127.0.0.1:$PORT PARTREG_TOKEN='' "$PARTREG_CLI" --json ready $S --start 2023-01-01 --end 2023-01-03 >"$T/cli.out" 2>"$T/cli.err"
CRC=$?
set -e
[ "$CRC" = 1 ] || { cat "$T/cli.out" "$T/cli.err" >&2; fail "partreg ready 2023-01-01 .. 2023-01-03: exit $CRC, expected 1 (not ready)"; }
expect "$(cat "$T/cli.out")" ".ready == false and .gaps == [[\"$D2\",\"$D3\"]] and .ready_through == \"$D2\"" \
  "partreg ready with dates alone: the agent's answer"

# ---- a date alone is validated like a full time ----
SEQ=$(rr source/get "{\"source\":\"$S\"}" | jq -r .result.seq)
bad_date() {
  local r
  r=$(rr "$1" "$2")
  expect "$r" ".ok == false and .status == 400 and .error.code == \"invalid_time\" and (.error.message | length) > 0" "$3: invalid_time 400"
}
for d in 2023-02-30 2023-02-29 2100-02-29 2023-04-31 2023-13-01 2023-00-10 2023-01-00 2023-01-32 \
  0000-01-01 2023-1-1 2023-01-1 23-01-01 20230101 2023/01/01 "2023-01-01T" "2023-01-01 " " 2023-01-01" \
  2023-01-01Z 2023-01-01T00 2023-01-01T00:00; do
  bad_date partition/lock "$(jq -cn --argjson b "$(pbody '{end:"2023-03-02"}')" --arg d "$d" '$b + {start:$d}')" "lock with start \"$d\""
done
bad_date readiness/query "{\"source\":\"$S\",\"start\":\"2023-01-01\",\"end\":\"2023-02-30\"}" "readiness/query with end 2023-02-30"
bad_date history/query "{\"source\":\"$S\",\"from\":\"2023-13-01\"}" "history/query with from 2023-13-01"
r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"2023-01-02\",\"end\":\"2023-01-02\"}")
expect "$r" '.status == 422 and .error.code == "invalid_interval"' "dates alone: start == end is invalid_interval"
r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"2023-01-01\",\"end\":\"2023-01-01T00:00:00Z\"}")
expect "$r" '.status == 422 and .error.code == "invalid_interval"' "2023-01-01 is the same instant as $D1"
r=$(rr source/get "{\"source\":\"$S\"}")
expect "$r" ".ok and .result.seq == $SEQ" "the refused commands changed nothing (seq $SEQ)"
pass
