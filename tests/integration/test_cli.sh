#!/usr/bin/env bash
# partreg, the CLI, against a real mosquitto + partregd: every protocol
# subcommand in human and --json output, tokens (PARTREG_TOKEN,
# --token-file, PARTREG_TOKEN_FILE; no token flag; printed only by source
# register, provider register and rotate-token), exit codes (refusal 1,
# usage 2, broker unreachable 3, no reply 4), pagination, watch, resync.
# wait and run have their own tests (test_cli_wait.sh, test_cli_run.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_cli.sh"
start_broker
start_agent
export PARTREG_BROKER=mqtt://127.0.0.1:$PORT

UUID='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
S=cli_src
A=2023-01-01T00:00:00Z
B=2023-01-02T00:00:00Z
C=2023-01-03T00:00:00Z

# ---- help, version, usage errors (exit 2, nothing sent) ----
cli --help; rc 0 "--help"
has "$OUT" '^Exit status:' "--help lists the exit statuses"
cli --version; rc 0 "--version"
has "$OUT" '^partreg [0-9]+\.[0-9]+\.[0-9]+' "--version prints the version"
cli source --help; rc 0 "source --help"
has "$OUT" 'partreg source rotate-token' "source --help lists the source commands"
cli run --help; rc 0 "run --help"
cli; rc 2 "no command is a usage error"
cli frobnicate; rc 2 "unknown command"
has "$ERR" 'unknown command' "unknown command named"
cli source bogus x; rc 2 "unknown source subcommand"
cli source get; rc 2 "missing argument"
cli source get a b; rc 2 "extra argument"
cli source register x; rc 2 "source register without --owner"
has "$ERR" 'needs --owner' "the missing option is named"
cli source get x --fence 3; rc 2 "an option the command does not take is refused"
cli source get x --frob; rc 2 "unknown option"
cli --token abc source get x; rc 2 "there is no --token flag (a token on the command line shows in ps)"
cli --token=abc source rotate-token x; rc 2 "nor --token=..."
cli partition lock x --provider p --start $A --end $B --ttl 0; rc 2 "--ttl 0"
cli partition lock x --provider p --start $A --end $B --ttl ten; rc 2 "--ttl not a number"
cli partition unlock x --provider p --start $A --end $B --metadata '[1]'; rc 2 "--metadata not an object"
cli partition unlock x --provider p --start $A --end $B --metadata '{bad'; rc 2 "--metadata not JSON"
cli --timeout -1 source get x; rc 2 "--timeout negative"
cli --mqtt-version 6 source get x; rc 2 "--mqtt-version 6"
cli run x --provider p --start $A --end $B; rc 2 "run without -- CMD"
cli --token-file "$T/no-such-file" provider register x p; rc 2 "unreadable --token-file"
: >"$T/empty.token"
cli --token-file "$T/empty.token" provider register x p; rc 2 "empty --token-file"

# ---- source register: the token alone on stdout, shown once ----
KEEP_TOKEN_OUTPUT=1 cli source register $S --owner owner1; rc 0 "source register"
TOKEN=$OUT
[ "$(wc -l <"$T/out")" -eq 1 ] || fail "source register printed more than one line: $OUT"
has "$TOKEN" "$UUID" "source register prints the access token alone (a UUIDv4)"
KEEP_TOKEN_OUTPUT=1 cli --json source register ${S}_j --owner owner1; rc 0 "source register --json"
expect "$OUT" ".source == \"${S}_j\" and .owner == \"owner1\" and (.access_token | test(\"$UUID\")) and .seq == 1" "--json: the result with the token"
JTOKEN=$(jq -r .access_token <<<"$OUT")
cli source register $S --owner someone; rc 1 "second registration refused"
has "$ERR" '^error: source_exists: ' "human refusal: error: CODE: message on stderr"
[ -z "$OUT" ] || fail "a refusal printed on stdout: $OUT"
cli --json source register $S --owner someone; rc 1 "second registration refused (--json)"
expect "$ERR" '.code == "source_exists" and (.message | length) > 0' "--json refusal: {code, message} on stderr"
[ -z "$OUT" ] || fail "a --json refusal printed on stdout: $OUT"
PARTREG_JSON=1 cli source register $S --owner someone; rc 1 "PARTREG_JSON=1 acts as --json"
expect "$ERR" '.code == "source_exists"' "PARTREG_JSON=1: JSON error"
PARTREG_JSON=0 cli source register $S --owner someone; rc 1 "PARTREG_JSON=0 is human"
has "$ERR" '^error: source_exists' "PARTREG_JSON=0: human error"

# ---- source get / list ----
cli source get $S; rc 0 "source get"
has "$OUT" "^source=$S owner=owner1 " "source get: one key=value record"
hasnt "$OUT" 'token' "source get shows no token"
cli --json source get $S; rc 0 "source get --json"
expect "$OUT" ".source == \"$S\" and .owner == \"owner1\" and (has(\"access_token\") | not)" "source get --json"
hasnt "$ERR" '.' "a successful command writes nothing on stderr"
cli source get nosuch; rc 5 "source get of an unknown source"
has "$ERR" '^error: unknown_source' "unknown_source named"
cli source list; rc 0 "source list"
[ "$(grep -c '^source=' <<<"$OUT")" -eq 2 ] || fail "source list: expected 2 lines, got: $OUT"
ok "source list: one line per source"
cli source list --limit 1; rc 0 "source list --limit 1"
[ "$(grep -c '^source=' <<<"$OUT")" -eq 1 ] || fail "source list --limit 1 printed: $OUT"
has "$ERR" '^next_cursor=' "one page: the next cursor on stderr"
CUR=$(sed -n 's/^next_cursor=//p' <<<"$ERR")
cli source list --limit 1 --cursor "$CUR"; rc 0 "source list --cursor"
has "$OUT" "^source=${S}_j " "--cursor gives the next page"
cli --json source list --limit 1 --all; rc 0 "source list --all --json"
expect "$OUT" '(.items | map(.source)) == ["cli_src", "cli_src_j"] and .next_cursor == null' "--all --json: every page merged"
cli source list --cursor garbage; rc 2 "a bad cursor is refused (invalid input)"

# ---- provider register: PARTREG_TOKEN, --token-file, PARTREG_TOKEN_FILE ----
cli provider register $S p; rc 1 "provider register without a token"
has "$ERR" '^error: unauthorized' "no token: unauthorized"
KEEP_TOKEN_OUTPUT=1 PARTREG_TOKEN=$TOKEN cli provider register $S p; rc 0 "provider register with PARTREG_TOKEN"
PTOKEN=$OUT
has "$PTOKEN" "$UUID" "provider register prints the provider token alone"
[ "$(wc -l <"$T/out")" -eq 1 ] || fail "provider register printed more than one line"
umask 077
echo "$TOKEN" >"$T/owner.token"
echo "$PTOKEN" >"$T/p.token"
echo "00000000-0000-4000-8000-000000000000" >"$T/wrong.token"
KEEP_TOKEN_OUTPUT=1 cli --token-file "$T/owner.token" provider register $S q; rc 0 "provider register with --token-file"
QTOKEN=$OUT
has "$QTOKEN" "$UUID" "provider q's token"
KEEP_TOKEN_OUTPUT=1 cli --json --token-file "$T/owner.token" provider register $S r; rc 0 "provider register --json"
expect "$OUT" ".source == \"$S\" and .provider == \"r\" and (.provider_token | test(\"$UUID\"))" "--json: the provider token"
RTOKEN=$(jq -r .provider_token <<<"$OUT")
KEEP_TOKEN_OUTPUT=1 PARTREG_TOKEN_FILE=$T/owner.token cli provider register $S r2; rc 0 "PARTREG_TOKEN_FILE"
R2TOKEN=$OUT
PARTREG_TOKEN=$TOKEN cli provider register $S p; rc 1 "provider registered twice"
has "$ERR" '^error: provider_exists' "provider_exists"
# Precedence: --token-file > PARTREG_TOKEN > PARTREG_TOKEN_FILE.
PARTREG_TOKEN=00000000-0000-4000-8000-000000000000 cli --token-file "$T/owner.token" source get $S; rc 0 "(source get takes no token)"
KEEP_TOKEN_OUTPUT=1 PARTREG_TOKEN=00000000-0000-4000-8000-000000000000 cli --token-file "$T/owner.token" provider register $S pr1; rc 0 "--token-file wins over PARTREG_TOKEN"
KEEP_TOKEN_OUTPUT=1 PARTREG_TOKEN=$TOKEN PARTREG_TOKEN_FILE=$T/wrong.token cli provider register $S pr2; rc 0 "PARTREG_TOKEN wins over PARTREG_TOKEN_FILE"
PARTREG_TOKEN=$TOKEN PARTREG_TOKEN_FILE=$T/owner.token cli --token-file "$T/wrong.token" provider register $S pr3; rc 1 "--token-file (wrong) wins over both"
has "$ERR" '^error: unauthorized' "the wrong token file was used"

# ---- partition register / lock / renew / unlock / fail / delete ----
P1=(--provider p --start $A --end $B)
P2=(--provider p --start $B --end $C)
cli --token-file "$T/p.token" partition register $S "${P1[@]}"; rc 0 "partition register (provider token)"
has "$OUT" "^source=$S provider=p start=$A end=$B state=pending version=0 " "partition register: the pending partition"
cli --json --token-file "$T/p.token" partition register $S "${P1[@]}"; rc 0 "partition register again (--json)"
expect "$OUT" '.state == "pending" and .version == 0' "registering again changes nothing"
cli --token-file "$T/p.token" partition register $S --provider q --start $A --end $B; rc 1 "p's token for q's partition"
has "$ERR" '^error: forbidden' "forbidden"
cli ready $S --start $A --end $B; rc 1 "ready: not ready is exit 1"
has "$OUT" '(^| )ready=false( |$)' "ready: ready=false"
has "$OUT" "^gap start=$A end=$B\$" "ready: the gap on its own line"
has "$OUT" "^blocker provider=p start=$A end=$B state=pending" "ready: the blocker on its own line"
cli --json ready $S --start $A --end $B; rc 1 "ready --json (not ready)"
expect "$OUT" ".ready == false and .gaps == [[\"$A\",\"$B\"]] and (.blockers | length) == 1 and .ready_through == null" "ready --json: gaps, blockers"
cli ready nosuch --start $A --end $B; rc 5 "ready of an unknown source"
has "$ERR" '^error: unknown_source' "ready: unknown_source"
cli ready $S --start $B --end $A; rc 2 "ready with start > end: invalid input"
has "$ERR" 'must be before --end' "ready: start after end named"
cli ready $S --start 01/01/2023 --end $A; rc 2 "ready with a time that is no time: invalid input"
has "$ERR" 'is not a time' "ready: bad time named"

PARTREG_TOKEN=$PTOKEN cli partition lock $S "${P1[@]}" --ttl 300 --session sess-1; rc 0 "partition lock (PARTREG_TOKEN)"
has "$OUT" 'state=locked .*fence=1( |$)' "lock: state=locked fence=1"
has "$OUT" 'expires_at=' "lock: expires_at"
PARTREG_TOKEN=$PTOKEN cli --json partition lock $S "${P1[@]}"; rc 1 "second lock refused"
expect "$ERR" '.code == "already_locked"' "already_locked (--json)"
PARTREG_TOKEN=$PTOKEN cli --json partition renew $S "${P1[@]}" --fence 1 --ttl 600; rc 0 "partition renew --json"
expect "$OUT" '.state == "locked" and .fence == 1 and (.expires_at | type) == "string"' "renew: still locked, new deadline"
PARTREG_TOKEN=$PTOKEN cli partition renew $S "${P1[@]}" --fence 7; rc 1 "renew with a stale fence"
has "$ERR" '^error: stale_fence' "stale_fence"
cli partition renew $S "${P1[@]}"; rc 2 "renew needs --fence"
PARTREG_TOKEN=$PTOKEN cli partition unlock $S "${P1[@]}" --fence 9; rc 1 "unlock with a stale fence"
has "$ERR" '^error: stale_fence' "unlock: stale_fence"
PARTREG_TOKEN=$PTOKEN cli partition unlock $S "${P1[@]}" --fence 1 --metadata '{"rows": 12, "run": "a b"}'; rc 0 "partition unlock with --metadata"
has "$OUT" 'state=ready .*version=1( |$)' "unlock: ready, version 1"
has "$OUT" 'metadata=\{"rows":12,"run":"a b"\}' "unlock: metadata as compact JSON"
expect "$(sub1 "$P/state/$S/partitions/$A/$B/p")" '.state == "ready" and .metadata.rows == 12' "retained partition: ready with the metadata"
cli ready $S --start $A --end $B; rc 0 "ready: ready is exit 0"
has "$OUT" "ready=true .*ready_through=$B|ready_through=$B.*ready=true|ready=true" "ready=true"
hasnt "$OUT" '^(gap|blocker) ' "ready: no gap or blocker lines"
cli --json ready $S --start "${A%%T*}" --end "${B%%T*}"; rc 0 "ready with dates alone (midnight UTC)"
expect "$OUT" ".ready == true and .start == \"$A\"" "a date alone is that day's midnight, UTC"
cli --json ready $S --start $A --end $C; rc 1 "a longer interval is not ready"
expect "$OUT" ".ready == false and .gaps == [[\"$B\",\"$C\"]] and .ready_through == \"$B\"" "ready --json: the gap after the ready day"

PARTREG_TOKEN=$PTOKEN cli --json partition lock $S "${P2[@]}"; rc 0 "lock day 2 (declares it)"
F2=$(jq -r .fence <<<"$OUT")
cli --token-file "$T/p.token" partition fail $S "${P2[@]}" --fence "$F2" --reason "disk full"; rc 0 "partition fail --reason"
has "$OUT" 'state=failed' "fail: state=failed"
has "$OUT" 'reason="disk full"' "a value with a space is a JSON string"
cli --token-file "$T/p.token" partition fail $S "${P2[@]}"; rc 1 "failing a failed partition"
cli --token-file "$T/p.token" partition delete $S "${P2[@]}"; rc 1 "a provider token cannot delete"
has "$ERR" '^error: forbidden' "delete with a provider token: forbidden"
cli --json --token-file "$T/owner.token" partition delete $S "${P2[@]}"; rc 0 "partition delete (owner token)"
expect "$OUT" '.state == "deleted"' "delete --json: deleted"
cli --token-file "$T/owner.token" partition delete $S "${P2[@]}"; rc 5 "deleting twice (unknown partition)"
has "$ERR" '^error: unknown_partition' "unknown_partition"

cli partition list $S; rc 0 "partition list"
[ "$(grep -c '^source=' <<<"$OUT")" -eq 1 ] || fail "partition list: expected 1 line: $OUT"
has "$OUT" "^source=$S provider=p start=$A end=$B state=ready " "partition list: the ready day (the deleted one gone)"
PARTREG_TOKEN=$QTOKEN cli partition register $S --provider q --start $B --end $C; rc 0 "q registers day 2"
cli --json partition list $S --provider q; rc 0 "partition list --provider --json"
expect "$OUT" '(.items | length) == 1 and .items[0].provider == "q" and .items[0].state == "pending" and .next_cursor == null' "partition list --provider q"
cli --json partition list $S --limit 1 --all; rc 0 "partition list --all"
expect "$OUT" '(.items | length) == 2' "partition list --all: both"

# ---- history ----
cli history $S; rc 0 "history"
has "$OUT" '^seq=1 .*type=source_registered' "history: the first event"
has "$OUT" 'type=unlocked' "history: unlocked"
has "$OUT" 'type=deleted' "history: deleted"
cli --json history $S --all; rc 0 "history --all --json"
expect "$OUT" '(.events | length) >= 10 and ([.events[].seq] | . == sort) and .next_cursor == null' "history --json: every event, in order"
N=$(jq '.events | length' <<<"$OUT")
cli --json history $S --since-seq 5 --all; rc 0 "history --since-seq"
expect "$OUT" '(.events | all(.seq > 5))' "--since-seq 5: only later events"
cli --json history $S --start $A --end $B --all; rc 0 "history --start --end"
expect "$OUT" "(.events | length) > 0 and (.events | all(.start == \"$A\"))" "history of one partition"
cli --json history $S --provider q --all; rc 0 "history --provider"
expect "$OUT" '(.events | length) > 0 and (.events | all(.provider == "q"))' "history --provider q"
cli history $S --limit 2; rc 0 "history --limit 2"
[ "$(grep -c '^seq=' <<<"$OUT")" -eq 2 ] || fail "history --limit 2 printed: $OUT"
has "$ERR" '^next_cursor=' "history page: next cursor on stderr"
cli --json history $S --from 2000-01-01T00:00:00Z --to 2000-01-02T00:00:00Z; rc 0 "history --from --to"
expect "$OUT" '.events == []' "no events in 2000"
ok "history: $N events"

# ---- rotate-token: prints the new token; the old one is refused ----
KEEP_TOKEN_OUTPUT=1 cli --token-file "$T/owner.token" source rotate-token $S; rc 0 "source rotate-token"
NEWTOKEN=$OUT
has "$NEWTOKEN" "$UUID" "rotate-token prints the new token alone"
[ "$NEWTOKEN" != "$TOKEN" ] || fail "rotate-token printed the old token"
cli --token-file "$T/owner.token" source rotate-token $S; rc 1 "the old token is refused now"
has "$ERR" '^error: unauthorized' "old token: unauthorized"
KEEP_TOKEN_OUTPUT=1 PARTREG_TOKEN=$NEWTOKEN cli --json source rotate-token $S; rc 0 "rotate-token --json"
expect "$OUT" "(.access_token | test(\"$UUID\"))" "rotate-token --json: access_token"
NEWTOKEN2=$(jq -r .access_token <<<"$OUT")
PARTREG_TOKEN=$PTOKEN cli --json partition lock $S "${P1[@]}"; rc 0 "provider tokens keep working after a rotation"

# ---- watch: events as they happen ----
"$PARTREG_CLI" watch $S --count 2 >"$T/watch.out" 2>"$T/watch.err" &
WPID=$!
PIDS+=("$WPID")
sleep 1
F=$(jq -r .fence <<<"$OUT")
r=$(rr partition/renew "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$A\",\"end\":\"$B\",\"fence\":$F,\"access_token\":\"$PTOKEN\"}")
expect "$r" '.ok' "renew via rr"
for _ in $(seq 50); do [ -s "$T/watch.out" ] && break; sleep 0.1; done
[ -s "$T/watch.out" ] || fail "watch printed nothing within 5 s of an event"
kill -0 "$WPID" 2>/dev/null || fail "watch --count 2 exited after one event"
has "$(cat "$T/watch.out")" "^seq=[0-9]+ .*type=renewed .*provider=p" "watch prints the event as it happens (before --count is reached)"
r=$(rr partition/unlock "{\"source\":\"$S\",\"provider\":\"p\",\"start\":\"$A\",\"end\":\"$B\",\"fence\":$F,\"access_token\":\"$PTOKEN\"}")
expect "$r" '.ok' "unlock via rr"
for _ in $(seq 50); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$WPID" 2>/dev/null && fail "watch --count 2 still running after 2 events"
set +e; wait "$WPID"; RC=$?; set -e
OUT=$(cat "$T/watch.out"); ERR=$(cat "$T/watch.err"); cat "$T/watch.out" "$T/watch.err" >>"$T/all.out"
rc 0 "watch --count 2 exits 0 after two events"
[ "$(wc -l <"$T/watch.out")" -eq 2 ] || fail "watch printed $(wc -l <"$T/watch.out") lines"
has "$(sed -n 2p "$T/watch.out")" 'type=unlocked' "watch: the second event"
"$PARTREG_CLI" --json watch $S --count 1 >"$T/watch.out" 2>"$T/watch.err" &
WPID=$!
PIDS+=("$WPID")
sleep 1
PARTREG_TOKEN=$QTOKEN cli partition lock $S --provider q --start $B --end $C; rc 0 "q locks day 2"
for _ in $(seq 50); do kill -0 "$WPID" 2>/dev/null || break; sleep 0.1; done
set +e; wait "$WPID"; RC=$?; set -e
OUT=$(cat "$T/watch.out"); ERR=$(cat "$T/watch.err"); cat "$T/watch.out" "$T/watch.err" >>"$T/all.out"
rc 0 "watch --json --count 1"
expect "$OUT" ".type == \"locked\" and .provider == \"q\" and .source == \"$S\" and .start == \"$B\" and (.seq | type) == \"number\"" "watch --json: the raw event"
# One group commit, one message of several events: q locks days 3 and 4
# under one session, and session/abort fails both in one batch. watch
# prints each event of the batch, a line each, in seq order, and --count
# stops inside a batch.
D=2023-01-04T00:00:00Z
E=2023-01-05T00:00:00Z
PARTREG_TOKEN=$QTOKEN cli partition lock $S --provider q --start $C --end $D --session w-batch; rc 0 "q locks day 3 under session w-batch"
PARTREG_TOKEN=$QTOKEN cli partition lock $S --provider q --start $D --end $E --session w-batch; rc 0 "q locks day 4 under session w-batch"
"$PARTREG_CLI" --json watch $S --count 2 >"$T/watch.out" 2>"$T/watch.err" &
WPID=$!
PIDS+=("$WPID")
"$PARTREG_CLI" watch $S --count 1 >"$T/watch1.out" 2>"$T/watch1.err" &
W1PID=$!
PIDS+=("$W1PID")
sleep 1
expect "$(rr session/abort '{"session":"w-batch"}')" '.ok and (.result.failed | length) == 2' "session/abort fails both in one command"
for _ in $(seq 50); do kill -0 "$WPID" 2>/dev/null || kill -0 "$W1PID" 2>/dev/null || break; sleep 0.1; done
set +e; wait "$WPID"; RC=$?; set -e
OUT=$(cat "$T/watch.out"); ERR=$(cat "$T/watch.err"); cat "$T/watch.out" "$T/watch.err" >>"$T/all.out"
rc 0 "watch --json --count 2: both events of the batch"
[ "$(wc -l <"$T/watch.out")" -eq 2 ] || fail "watch --json printed $(wc -l <"$T/watch.out") lines for a batch of two"
expect "$(jq -s -c . "$T/watch.out")" "length == 2 and all(.[]; .type == \"failed\" and .reason == \"session_aborted\" and .provider == \"q\" and .source == \"$S\" and (has(\"events\") | not)) and ([.[].start] | sort) == [\"$C\", \"$D\"]" "watch --json: each event of the batch as its own object"
expect "$(jq -s -c . "$T/watch.out")" '.[1].seq == .[0].seq + 1' "watch --json: the batch's events in seq order"
set +e; wait "$W1PID"; RC=$?; set -e
OUT=$(cat "$T/watch1.out"); ERR=$(cat "$T/watch1.err"); cat "$T/watch1.out" "$T/watch1.err" >>"$T/all.out"
rc 0 "watch --count 1: exits after the first event of the batch"
[ "$(wc -l <"$T/watch1.out")" -eq 1 ] || fail "watch --count 1 printed $(wc -l <"$T/watch1.out") lines"
has "$OUT" "^seq=$(jq -s '.[0].seq' "$T/watch.out") .*type=failed .*reason=session_aborted" "watch --count 1: the batch's first event alone"
cli watch $S --timeout 1; rc 0 "watch --timeout 1 with nothing happening: exit 0"
cli watch $S --count 3 --timeout 1; rc 4 "watch --count 3 --timeout 1 with nothing happening: exit 4"

# ---- resync ----
cli resync; rc 0 "resync"
has "$OUT" 'republishing=all' "resync: republishing=all"
cli --json resync $S; rc 0 "resync SOURCE --json"
expect "$OUT" ".republishing == \"source\"" "resync SOURCE"

# ---- connection: unreachable broker (3), no agent on the prefix (4), MQTT 3.1.1 ----
CLOSED=$((PORT + 1))
while mosquitto_sub -h 127.0.0.1 -p $CLOSED -t x -C 1 -W 1 >/dev/null 2>&1; do CLOSED=$((CLOSED + 1)); done
t0=$(date +%s.%N)
cli --broker mqtt://127.0.0.1:$CLOSED --timeout 1 source get $S; rc 3 "broker unreachable: exit 3"
el=$(echo "$(date +%s.%N) - $t0" | bc)
echo "  (gave up after $el s)"
[ "$(echo "$el < 5" | bc)" = 1 ] || fail "unreachable took $el s with --timeout 1"
has "$ERR" 'unreachable' "says the broker is unreachable"
PARTREG_TOKEN=$PTOKEN cli --broker mqtt://127.0.0.1:$CLOSED --timeout 1 partition lock $S "${P1[@]}"; rc 3 "a write: exit 3 too"
cli --json --broker mqtt://127.0.0.1:$CLOSED --timeout 1 source get $S; rc 3 "unreachable --json: exit 3"
expect "$ERR" '.code == "broker_unreachable"' "--json: stderr is one JSON error"
PARTREG_TIMEOUT=1 PARTREG_BROKER=mqtt://127.0.0.1:$CLOSED cli source list; rc 3 "PARTREG_BROKER and PARTREG_TIMEOUT from the environment"
cli --prefix elsewhere/v1 --timeout 1 source get $S; rc 4 "no agent on that prefix: no reply, exit 4"
cli --mqtt-version 3.1.1 --json source get $S; rc 0 "--mqtt-version 3.1.1"
expect "$OUT" ".source == \"$S\"" "MQTT 3.1.1: reply via reply_to"
PARTREG_MQTT_VERSION=3.1.1 cli source get $S; rc 0 "PARTREG_MQTT_VERSION=3.1.1"

# ---- tokens never printed by any other command ----
for tok in "$TOKEN" "$JTOKEN" "$PTOKEN" "$QTOKEN" "$RTOKEN" "$R2TOKEN" "$NEWTOKEN" "$NEWTOKEN2"; do
  [ ${#tok} -eq 36 ] || fail "a token was not captured"
  if grep -qF "$tok" "$T/all.out"; then fail "a token appears in the output of a command other than register/rotate-token"; fi
done
ok "no other command printed a token ($(wc -l <"$T/all.out") lines checked)"
sanitizer_clean "$T/all.out"
ok "no sanitizer report from partreg"
pass
