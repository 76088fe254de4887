#!/usr/bin/env bash
# Summaries bounded by the shape of the data (issue 12, point 1), over real
# MQTT: 2,000 contiguous pending days of one provider are one run in the
# retained summary (format 2, under 4 KB), a lock in the middle splits it in
# three, and the CLI, deciding from the summary alone, agrees with the
# agent's readiness/query on windows inside, across and outside the runs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_cli.sh"
start_broker
start_agent
export PARTREG_BROKER=mqtt://127.0.0.1:$PORT

S=runs
N=2000
FROM=2030-01-01
day() { date -u -d "$FROM + $1 day" +%Y-%m-%dT%H:%M:%SZ; }
new_source $S
partition_lines $S "$FROM" day $N |
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/register" -l
[ "$(wait_seq $S $((N + 2)) 120)" = $((N + 2)) ] || fail "the $N registers did not all apply"
ok "$N pending days registered"

SUM=$(sub1 "$P/state/$S")
BYTES=$(printf '%s' "$SUM" | wc -c)
[ "$BYTES" -le 4096 ] || fail "the summary of $N pending days is $BYTES bytes (goal <= 4096)"
ok "the summary of $N pending days is $BYTES bytes"
expect "$SUM" ".v == 2 and .truncated == false and .blocked == [{start: \"$(day 0)\", end: \"$(day $N)\", provider: \"p\", state: \"pending\", count: $N}]" \
  "one run of $N pending partitions, without since (a run of many)"

# Lock day 10: pending 0..10 (10), locked 10 (1, with since and lease), pending 11..N.
F=$(rr partition/lock "$(pbody "{start:\"$(day 10)\",end:\"$(day 11)\",ttl_s:600}")" | jq -r .result.fence)
[ "$F" -ge 1 ] || fail "lock of day 10"
retained_within "$P/state/$S" '(.blocked | length) == 3' 10 || fail "the summary did not show three runs: $(sub1 "$P/state/$S")"
expect "$(sub1 "$P/state/$S")" "[.blocked[] | [.start, .end, .state, .count, has(\"since\"), has(\"expires_at\")]] == [
  [\"$(day 0)\", \"$(day 10)\", \"pending\", 10, false, false],
  [\"$(day 10)\", \"$(day 11)\", \"locked\", 1, true, true],
  [\"$(day 11)\", \"$(day $N)\", \"pending\", $((N - 11)), false, false]]" \
  "a lock in the middle: pending 10, locked 1 (since, expires_at), pending $((N - 11)), in time order"
rr partition/unlock "$(pbody "{start:\"$(day 10)\",end:\"$(day 11)\",fence:$F}")" | jq -e '.result.state == "ready"' >/dev/null ||
  fail "unlock of day 10"
retained_within "$P/state/$S" "(.blocked | length) == 2 and .ready == [[\"$(day 10)\",\"$(day 11)\"]]" 10 ||
  fail "after the unlock: $(sub1 "$P/state/$S")"
ok "unlocked: two pending runs around the ready day"

# The CLI (summary alone) and the agent (readiness/query) agree.
check() { # START END
  local agent cli_ready
  agent=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$1\",\"end\":\"$2\"}" | jq -c '.result | {ready, gaps}')
  cli --json ready $S --start "$1" --end "$2"
  cli_ready=$(jq -c '{ready, gaps}' <<<"$OUT")
  [ "$agent" = "$cli_ready" ] || fail "[$1, $2): agent $agent, CLI $cli_ready"
  ok "[$1, $2): the CLI and the agent agree: $agent"
}
check "$(day 10)" "$(day 11)"
check "$(day 9)" "$(day 11)"
check "$(day 500)" "$(day 501)"
check "$(day -5)" "$(day 1)"
check "$(day $N)" "$(day $((N + 1)))"
cli --json ready $S --start "$(day 500)" --end "$(day 501)"
expect "$OUT" ".ready == false and .blockers == [{provider: \"p\", start: \"$(day 11)\", end: \"$(day $N)\", state: \"pending\", count: $((N - 11))}]" \
  "ready --json names the run with its count"
cli wait $S --start "$(day 500)" --end "$(day 501)" --timeout 1
rc 4 "wait times out (4) on a pending day inside a run"
has "$ERR" "pending from p \\($((N - 11)) partitions\\)" "wait's status names the run's partition count"
pass
