#!/usr/bin/env bash
# History (issue 3): history/query pages through a source's event log.
# Pages of 3 followed through next_cursor are complete and ordered (every
# change of the source exactly once, seq 1..N, the same events that were
# published live); filters by provider, by partition, by since_seq and by
# event time select exactly the matching events; bad filters are refused.
. "$(dirname "$0")/lib.sh"
start_broker
start_agent

H=hist
X=hist_other
D1=2023-01-01T00:00:00Z; D2=2023-01-02T00:00:00Z; D3=2023-01-03T00:00:00Z

follow_events "$H"

part() { echo "{\"source\":\"$H\",\"provider\":\"$1\",\"start\":\"$2\",\"end\":\"$3\",\"access_token\":\"$TOKEN\"${4:+,$4}}"; }
# hq JSON: history/query, every page of JSON (+ limit/cursor) concatenated
# into one array of events; checks each page's size against the limit and
# writes the number of pages to $T/pages.
hq() {
  local q=$1 cursor=null all='[]' r n=0 lim
  lim=$(jq '.limit // 1000' <<<"$q")
  while :; do
    r=$(rr history/query "$(jq -c --argjson c "$cursor" 'if $c == null then . else . + {cursor: $c} end' <<<"$q")")
    jq -e '.ok' >/dev/null <<<"$r" || { echo "got: $r" >&2; fail "history/query $q failed"; }
    [ "$(jq '.result.events | length' <<<"$r")" -le "$lim" ] || fail "a page of more than $lim events"
    all=$(jq -c --argjson a "$all" '$a + .result.events' <<<"$r")
    cursor=$(jq -c '.result.next_cursor' <<<"$r")
    n=$((n + 1))
    [ "$cursor" = null ] && break
    [ $n -lt 50 ] || fail "history/query $q: more than 50 pages"
  done
  echo "$n" >"$T/pages"
  echo "$all"
}
# jq: a canonical time to microseconds since the epoch.
US='def us: capture("^(?<b>[^.Z]+)(\\.(?<f>[0-9]+))?Z$") | ((.b + "Z") | fromdateiso8601) * 1000000 + (((.f // "") + "000000")[0:6] | tonumber);'

# --- a source's whole life -----------------------------------------------------
TOKEN=$(rr source/register "{\"source\":\"$H\",\"owner\":\"o\"}" | jq -r .result.access_token)   # 1
rr provider/register "{\"source\":\"$H\",\"provider\":\"p\",\"access_token\":\"$TOKEN\"}" >/dev/null # 2
rr provider/register "{\"source\":\"$H\",\"provider\":\"q\",\"access_token\":\"$TOKEN\"}" >/dev/null # 3
# Another source's changes are not in H's history.
TX=$(rr source/register "{\"source\":\"$X\",\"owner\":\"o\"}" | jq -r .result.access_token)
rr provider/register "{\"source\":\"$X\",\"provider\":\"p\",\"access_token\":\"$TX\"}" >/dev/null
rr partition/lock "{\"source\":\"$X\",\"provider\":\"p\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$TX\"}" >/dev/null
expect "$(rr partition/register "$(part p $D1 $D2)")" '.result.seq == 4' "registered (4)"
expect "$(rr partition/lock "$(part p $D1 $D2)")" '.result.seq == 5 and .result.fence == 1' "locked (5)"
expect "$(rr partition/renew "$(part p $D1 $D2 '"fence":1')")" '.result.seq == 6' "renewed (6)"
expect "$(rr partition/unlock "$(part p $D1 $D2 '"fence":1')")" '.result.seq == 7 and .result.version == 1' "unlocked (7)"
expect "$(rr partition/unlock "$(part p $D1 $D2 '"fence":1')")" '.ok == false' "a refused command (no event)"
sleep 1.1
expect "$(rr partition/lock "$(part q $D1 $D2 '"ttl_s":1')")" '.result.seq == 8 and .result.fence == 2' "q locked with ttl_s 1 (8)"
[ "$(wait_seq $H 9 5)" = 9 ] || fail "the lease did not expire"
ok "lease expired (9)"
sleep 1.1
expect "$(rr partition/lock "$(part p $D2 $D3)")" '.result.seq == 10 and .result.fence == 3' "locked (10)"
expect "$(rr partition/fail "$(part p $D2 $D3 '"fence":3,"reason":"bad input"')")" '.result.seq == 11' "failed (11)"
expect "$(rr partition/delete "$(part p $D2 $D3)")" '.result.seq == 12' "deleted (12)"
r=$(rr source/rotate-token "{\"source\":\"$H\",\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok' "token rotated (13)"
TOKEN=$(jq -r .result.access_token <<<"$r")
N=$(rr source/get "{\"source\":\"$H\"}" | jq .result.seq)
[ "$N" = 13 ] || fail "source seq is $N, expected 13"

# --- complete, ordered pages ------------------------------------------------------
ALL=$(hq "{\"source\":\"$H\",\"limit\":3}")
PAGES=$(cat "$T/pages")
[ "$PAGES" -ge 5 ] || fail "13 events in $PAGES pages of 3"
ok "13 events in $PAGES pages of at most 3"
expect "$ALL" '[.[].seq] == [range(1; 14)]' "pages cover seq 1..13, each once, in order"
expect "$ALL" '[.[].type] == ["source_registered","provider_registered","provider_registered","registered","locked","renewed","unlocked","locked","failed","locked","failed","deleted","token_rotated"]' "every change of the source, by type"
expect "$ALL" "[.[].source] | unique == [\"$H\"]" "only this source's events"
expect "$ALL" '[.[].at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{6})?Z$")] | all' "every at is canonical"
expect "$ALL" "$US"' [.[].at | us] as $t | [range(1; $t | length) | $t[.] >= $t[. - 1]] | all' "times never go back"
expect "$ALL" '.[0] | (has("provider") or has("start")) | not' "source_registered: no provider, no partition"
expect "$ALL" '.[1].provider == "p" and .[2].provider == "q" and (.[1] | has("start") | not)' "provider_registered: the provider"
expect "$ALL" ".[3] | .provider == \"p\" and .start == \"$D1\" and .end == \"$D2\" and .state == \"pending\" and .version == 0" "registered: the partition, pending"
expect "$ALL" '.[4] | .state == "locked" and .fence == 1 and .version == 0' "locked: fence 1"
expect "$ALL" '.[5] | .type == "renewed" and .state == "locked" and .fence == 1' "renewed: fence 1"
expect "$ALL" '.[6] | .state == "ready" and .version == 1 and .fence == 1' "unlocked: ready, version 1"
expect "$ALL" '.[7] | .provider == "q" and .fence == 2' "q's lock: fence 2"
expect "$ALL" '.[8] | .provider == "q" and .state == "failed" and .reason == "lease_expired" and .fence == 2' "the expiry: failed, lease_expired, fence 2"
expect "$ALL" ".[10] | .state == \"failed\" and .reason == \"bad input\" and .fence == 3 and .start == \"$D2\"" "fail: the given reason"
expect "$ALL" ".[11] | .state == \"deleted\" and .start == \"$D2\" and .provider == \"p\"" "delete"
expect "$ALL" '.[12] | (has("start") | not)' "token_rotated: no partition"
grep -q "$TOKEN" <<<"$ALL" && fail "the new token is in the history"
ok "no token in the history"

# The same as the events published live, and as one unpaged query.
sleep 0.3
LIVE=$(events)
# One command at a time: every group commit held one change of H, so
# every message on P/events/hist is a batch of one.
expect "$(batches)" "length == 13 and all(.[]; .v == 2 and .source == \"$H\" and (.events | length) == 1)" "13 messages, one event each, in batches of format 2"
K='[.[] | [.seq, .type, .provider, .start, .end, .state, .fence, .version, .reason, .at]]'
[ "$(jq -c "$K" <<<"$LIVE")" = "$(jq -c "$K" <<<"$ALL")" ] || { echo "live: $LIVE" >&2; fail "history differs from the events published live"; }
ok "history is what was published live"
expect "$(rr history/query "{\"source\":\"$H\"}")" ".result.events == $ALL and .result.next_cursor == null" "one unpaged query: the same events"
expect "$(hq "{\"source\":\"$H\",\"limit\":1}")" ". == $ALL" "pages of 1: the same events"
expect "$(hq "{\"source\":\"$X\",\"limit\":2}")" "[.[].seq] == [1,2,3] and ([.[].source] | unique) == [\"$X\"]" "the other source's history is its own"

# --- filters -----------------------------------------------------------------------
expect "$(hq "{\"source\":\"$H\",\"provider\":\"q\",\"limit\":1}")" ". == [$ALL[] | select(.provider == \"q\")] and length == 3" "by provider (pages of 1)"
expect "$(hq "{\"source\":\"$H\",\"start\":\"2023-01-01 00:00:00\",\"end\":\"2023-01-02T01:00:00+01:00\",\"limit\":2}")" "[.[].seq] == [4,5,6,7,8,9]" "by partition (any provider, times converted)"
expect "$(hq "{\"source\":\"$H\",\"provider\":\"p\",\"start\":\"$D1\",\"end\":\"$D2\"}")" "[.[].seq] == [4,5,6,7]" "by provider and partition"
expect "$(hq "{\"source\":\"$H\",\"start\":\"$D1\",\"end\":\"$D3\"}")" '. == []' "a partition filter is exact, not an overlap"
expect "$(hq "{\"source\":\"$H\",\"since_seq\":7,\"limit\":4}")" ". == [$ALL[] | select(.seq > 7)]" "since_seq 7: seq 8..13"
expect "$(hq "{\"source\":\"$H\",\"since_seq\":0}")" ". == $ALL" "since_seq 0: everything"
expect "$(rr history/query "{\"source\":\"$H\",\"since_seq\":13}")" '.result.events == [] and .result.next_cursor == null' "since_seq at the end: nothing"
A8=$(jq -r '.[7].at' <<<"$ALL"); A10=$(jq -r '.[9].at' <<<"$ALL")
expect "$(hq "{\"source\":\"$H\",\"from\":\"$A8\",\"to\":\"$A10\",\"limit\":1}")" "[.[].seq] == [8,9]" "from (inclusive) .. to (exclusive)"
expect "$(hq "{\"source\":\"$H\",\"from\":\"$A10\"}")" "[.[].seq] == [10,11,12,13]" "from only"
expect "$(hq "{\"source\":\"$H\",\"to\":\"$A8\"}")" "[.[].seq] == [1,2,3,4,5,6,7]" "to only"
expect "$(hq "{\"source\":\"$H\",\"provider\":\"p\",\"since_seq\":4,\"to\":\"$A10\"}")" "[.[].seq] == [5,6,7]" "filters combine"

# --- refusals --------------------------------------------------------------------
expect "$(rr history/query "{\"source\":\"$H\",\"start\":\"$D1\"}")" '.status == 400 and .error.code == "invalid_field"' "start without end: invalid_field"
expect "$(rr history/query "{\"source\":\"$H\",\"end\":\"$D1\"}")" '.status == 400 and .error.code == "invalid_field"' "end without start: invalid_field"
expect "$(rr history/query '{"source":"no_such_source"}')" '.status == 404 and .error.code == "unknown_source"' "unknown source: 404"
expect "$(rr history/query "{\"source\":\"$H\",\"cursor\":\"bm90LWEtY3Vyc29y\"}")" '.status == 400 and .error.code == "invalid_cursor"' "a made-up cursor: invalid_cursor"
expect "$(rr history/query "{\"source\":\"$H\",\"limit\":1001}")" '.status == 400 and .error.code == "invalid_field"' "limit 1001: invalid_field"
expect "$(rr history/query "{\"source\":\"$H\",\"from\":\"$A10\",\"to\":\"$A8\"}")" '.ok == false and .error.code == "invalid_interval"' "from after to: invalid_interval"

# --- durable -------------------------------------------------------------------------
stop_agent
start_agent
AFTER=$(hq "{\"source\":\"$H\",\"limit\":5}")
expect "$AFTER" "[.[] | del(.epoch)] == [$ALL[] | del(.epoch)]" "the history survives a restart"
expect "$(rr partition/lock "$(part p $D2 $D3)")" '.result.seq == 14' "and goes on"
expect "$(hq "{\"source\":\"$H\",\"since_seq\":13}")" '[.[] | [.seq, .type, .fence, .epoch]] == [[14, "locked", 4, 2]]' "the new event is appended, with the new epoch"
# Last, so that a failure here hides no other check: an event keeps the
# epoch it was published with (the live event said epoch 1), not the epoch
# of the agent answering the query.
expect "$AFTER" "[.[].epoch] == [$ALL[].epoch] and ([.[].epoch] | unique) == [1]" "events from before the restart keep epoch 1"
pass
