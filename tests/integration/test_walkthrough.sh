#!/usr/bin/env bash
# The original service's walk-through, over MQTT with the stock clients:
# register a source and a provider, declare, lock and unlock a partition,
# and ask for readiness; the retained state is checked at every step.
. "$(dirname "$0")/lib.sh"
start_broker
start_agent

S=some_source
D1="2023-01-01 00:00:00"
D2="2023-01-02 00:00:00"
Z1=2023-01-01T00:00:00Z
Z2=2023-01-02T00:00:00Z
PT="$P/state/$S/partitions/$Z1/$Z2/some_provider"

r=$(rr source/register "{\"source\":\"$S\",\"owner\":\"some_owner\"}")
expect "$r" '.ok and .status == 200 and .result.source == "some_source" and .result.owner == "some_owner"' "source registered"
expect "$r" '.result.access_token | test("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")' "token is a UUIDv4"
TOKEN=$(jq -r .result.access_token <<<"$r")
grep -q "$TOKEN" "$T/agent.log" && fail "the token appears in the agent's log"
ok "token not logged"
expect "$(sub1 "$P/state/$S")" '.source == "some_source" and .ready == [] and .blocked == [] and .seq == 1 and (.epoch | type) == "number"' "retained summary of the new source"

r=$(rr source/register "{\"source\":\"$S\",\"owner\":\"someone_else\"}")
expect "$r" '.ok == false and .status == 409 and .error.code == "source_exists"' "second registration is a conflict"

r=$(rr provider/register "{\"source\":\"$S\",\"provider\":\"some_provider\",\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok and .result.provider == "some_provider" and (.result.provider_token | length) == 36' "provider registered"

r=$(rr partition/register "{\"source\":\"$S\",\"provider\":\"some_provider\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$TOKEN\"}")
expect "$r" ".ok and .result.state == \"pending\" and .result.start == \"$Z1\" and .result.end == \"$Z2\"" "partition registered, pending, canonical times"
expect "$(sub1 "$PT")" '.state == "pending" and .provider == "some_provider"' "retained partition: pending"
expect "$(sub1 "$P/state/$S")" ".ready == [] and (.blocked | length) == 1 and .blocked[0].state == \"pending\" and .blocked[0].start == \"$Z1\"" "summary: one pending blocker"

r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\"}")
expect "$r" '.ok and .result.ready == false and (.result.blockers | length) == 1 and .result.gaps == [["2023-01-01T00:00:00Z","2023-01-02T00:00:00Z"]]' "not ready while pending"

r=$(rr partition/lock "{\"source\":\"$S\",\"provider\":\"some_provider\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok and .result.state == "locked" and .result.fence == 1' "locked with fence 1"
FENCE=$(jq -r .result.fence <<<"$r")
expect "$(sub1 "$PT")" '.state == "locked" and .fence == 1' "retained partition: locked"
expect "$(sub1 "$P/state/$S")" '.blocked[0].state == "locked"' "summary: locked blocker"

r=$(rr partition/lock "{\"source\":\"$S\",\"provider\":\"some_provider\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok == false and .status == 409 and .error.code == "already_locked"' "second lock refused"

r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\"}")
expect "$r" '.result.ready == false and .result.blockers[0].state == "locked"' "not ready while locked"

r=$(rr partition/unlock "{\"source\":\"$S\",\"provider\":\"some_provider\",\"start\":\"$D1\",\"end\":\"$D2\",\"fence\":$FENCE,\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok and .result.state == "ready" and .result.version == 1' "unlocked: ready, version 1"
expect "$(sub1 "$PT")" '.state == "ready" and .version == 1' "retained partition: ready"
expect "$(sub1 "$P/state/$S")" ".ready == [[\"$Z1\",\"$Z2\"]] and .blocked == []" "summary: ready range, no blockers"

r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\"}")
expect "$r" ".result.ready == true and .result.gaps == [] and .result.blockers == [] and .result.ready_through == \"$Z2\"" "ready"

r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"2023-01-01T12:00:00+02:00\",\"end\":\"2023-01-03T00:00:00Z\"}")
expect "$r" ".result.ready == false and .result.gaps == [[\"$Z2\",\"2023-01-03T00:00:00Z\"]] and .result.ready_through == \"$Z2\" and .result.start == \"2023-01-01T10:00:00Z\"" "a longer interval has a gap; offsets are converted to UTC"

r=$(rr partition/unlock "{\"source\":\"$S\",\"provider\":\"some_provider\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok == false and .error.code == "not_locked"' "unlocking a ready partition is refused"

r=$(rr partition/list "{\"source\":\"$S\"}")
expect "$r" '.ok and (.result.items | length) == 1 and .result.items[0].state == "ready" and .result.next_cursor == null' "partition/list"
r=$(rr source/get "{\"source\":\"$S\"}")
expect "$r" '.ok and .result.source == "some_source" and (.result | has("access_token") | not)' "source/get shows no token"
r=$(rr source/list '{}')
expect "$r" '.ok and ([.result.items[].source] == ["some_source"])' "source/list"
pass
