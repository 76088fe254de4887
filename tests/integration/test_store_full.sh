#!/usr/bin/env bash
# A full store answers store_full (507), never store_unavailable, for the
# whole batch the command was in, and applies nothing of that batch:
#   1. the LMDB map fills (--map-size 1), in the middle of bursts of
#      partition/register commands sharing batches (the map may fill in a
#      command or in its idempotency record);
#   2. the disk fills (ENOSPC at commit): the agent's data directory on a
#      2 MiB tmpfs, mounted in a private mount namespace (unshare -rm;
#      skipped where user namespaces are not allowed).
# Every command with an ok reply is in the store, every store_full one is
# not, and once there is room again a retry with the same request_id is
# applied (a 5xx reply is not recorded).
. "$(dirname "$0")/lib.sh"
start_broker
RT="$P/reply/full-$$"
bg_sub311 replies "$RT"

# burst SOURCE FROM N TAG: N partition/register commands for consecutive
# hours of SOURCE from date FROM, request_id TAG-i, replies to $RT; waits
# for N replies tagged TAG and prints them, one JSON per line.
burst() {
  partition_lines "$1" "$2" hour "$3" |
    jq -c --arg rt "$RT" --arg tag "$4" '. + {reply_to: $rt, request_id: "\($tag)-\(input_line_number)"}' \
      >"$T/$4.jsonl"
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/register" -l <"$T/$4.jsonl"
  for _ in $(seq 300); do
    [ "$(grep -c "\"request_id\":\"$4-" "$T/sub.replies")" -ge "$3" ] && break
    sleep 0.1
  done
  grep "\"request_id\":\"$4-" "$T/sub.replies" | sed "s|^$RT ||"
}

# check_burst TAG REPLIES-FILE SOURCE: ok replies applied, store_full ones not.
check_burst() {
  local okn fulln other listed
  okn=$(jq -s '[.[] | select(.ok)] | length' "$2")
  fulln=$(jq -s '[.[] | select(.error.code == "store_full" and .status == 507)] | length' "$2")
  other=$(jq -s -c '[.[] | select(.ok | not) | select(.error.code != "store_full")] | .[0:3]' "$2")
  [ "$other" = "[]" ] || fail "$1: replies other than ok or store_full: $other"
  [ "$fulln" -gt 0 ] || fail "$1: the store never filled ($okn ok)"
  ok "$1: $okn ok, $fulln store_full (507), nothing else"
  # What the store holds: exactly the ok ones.
  listed=0
  local cursor="" page
  while :; do
    page=$(rr partition/list "{\"source\":\"$3\",\"limit\":1000${cursor:+,\"cursor\":\"$cursor\"}}")
    listed=$((listed + $(jq '.result.items | length' <<<"$page")))
    cursor=$(jq -r '.result.next_cursor // empty' <<<"$page")
    [ -n "$cursor" ] || break
  done
  [ "$listed" = "$4" ] || fail "$1: the store lists $listed partitions, the ok replies say $4"
  ok "$1: the store holds exactly the $listed acknowledged partitions"
}

# fill SOURCE YEAR TAG ROUNDS: bursts of 400 (one a month of YEAR, tagged
# TAG1, TAG2...) until one gets store_full, at most ROUNDS; every reply in
# $T/TAG-all.json, the last burst's in LAST, the ok ones counted in TOTAL.
fill() {
  TOTAL=0
  for round in $(seq "$4"); do
    LAST="$T/$3$round.json"
    burst "$1" "$2-0$round-01" 400 "$3$round" >"$LAST"
    TOTAL=$((TOTAL + $(jq -s '[.[] | select(.ok)] | length' "$LAST")))
    if [ "$(jq -s '[.[] | select(.error.code == "store_full")] | length' "$LAST")" -gt 0 ]; then
      break
    fi
  done
  cat "$T/$3"[0-9]*.json >"$T/$3-all.json"
}

# ---- 1. the map fills ----
start_agent --map-size 1 --batch-max 64
new_source mapfull
fill mapfull 2023 m 6
check_burst "map full" "$T/m-all.json" mapfull "$TOTAL"
if grep -q "MDB_BAD_TXN\|store_unavailable" "$T/agent.log"; then
  fail "the agent's log shows a broken transaction after the map filled"
fi
msg=$(jq -s -r '[.[] | select(.error.code == "store_full")][0].error.message' "$T/m-all.json")
grep -q -- "--map-size" <<<"$msg" || fail "store_full says nothing of what to do: $msg"
ok "store_full says what to do: $msg"

# With room again (a larger map), the same request_ids are applied.
stop_agent
start_agent --map-size 64
retry=$(jq -c 'select(.ok | not) | .request_id' "$LAST" | head -n 5 | jq -r . | paste -sd'|')
grep -E "\"request_id\":\"($retry)\"" "$T/$(basename "$LAST" .json).jsonl" | jq -c 'del(.reply_to)' |
  while read -r body; do
    r=$(rr partition/register "$body")
    expect "$r" '.ok and (has("replayed") | not)' "retry of $(jq -r .request_id <<<"$body") after the map grew: applied"
  done
stop_agent

# ---- 2. the disk fills ----
D="$T/disk"
mkdir -p "$D"
if ! unshare -rm true 2>/dev/null; then
  echo "SKIP disk-full part: no user namespaces here (unshare -rm)"
  pass
  exit 0
fi
# The agent in its own mount namespace, its data directory on a 2 MiB tmpfs.
unshare -rm sh -c 'mount -t tmpfs -o size=2m tmpfs "$1" && shift && exec "$@"' sh "$D" \
  "$PARTREGD" --broker "mqtt://127.0.0.1:$PORT" --data-dir "$D/data" --log-level debug \
  --batch-max 64 >>"$T/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
wait_online
new_source diskfull
fill diskfull 2024 d 9
grep -q "the disk is full\|No space left on device" "$T/agent.log" || fail "the agent never saw a full disk"
check_burst "disk full" "$T/d-all.json" diskfull "$TOTAL"
pass
