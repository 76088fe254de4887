#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# partreg-http's /metrics (issue 14, point 4): with a real mosquitto,
# partregd (--stats-interval 1) and partreg-http, after some commands
# through the front door: `promtool check metrics` is clean; the contract's
# names are there with the values the commands imply (requests by route
# and code, the latency histogram agreeing with them, broker and agent
# gauges, partitions by state, the oldest lock's age growing, the agent's
# stats from its retained agent/stats); then a real Prometheus (Debian's)
# scrapes the front door every second and one series is queried back
# through its HTTP API, also after it changed. Real Prometheus runs in the
# plain build only: under PARTREG_SANITIZE the test exits 77.
. "$(dirname "$0")/lib.sh"
case "${PARTREG_SANITIZE:-0}" in 1 | ON | on | TRUE | true)
  echo "SKIP: real Prometheus runs in the plain build only (this build has the sanitizers)"
  FAILED=0
  exit 77 ;;
esac
for tool in prometheus promtool curl; do
  command -v "$tool" >/dev/null || { echo "SKIP: no $tool (apt-get install prometheus curl)"; FAILED=0; exit 77; }
done
HTTPD=${PARTREG_HTTP:-${PARTREG_BUILD_DIR:?set by ctest}/http/partreg-http}
[ -x "$HTTPD" ] || fail "no partreg-http at $HTTPD (PARTREG_HTTP)"

# http_start [flags...]: partreg-http on a free loopback port, up once
# /readyz answers 200 (broker connected, agent online); sets H and HTTP_PID.
http_start() {
  for _ in $(seq 20); do
    local hp=$(random_port)
    "$HTTPD" --broker "mqtt://127.0.0.1:$PORT" --listen "127.0.0.1:$hp" --log-level debug "$@" \
      >>"$T/http.log" 2>&1 &
    HTTP_PID=$!
    PIDS+=("$HTTP_PID")
    H="http://127.0.0.1:$hp"
    for _ in $(seq 100); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' "$H/readyz")" = 200 ] && return 0
      kill -0 "$HTTP_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$HTTP_PID" 2>/dev/null || true
  done
  fail "partreg-http did not become ready"
}
# metric TEXT 'NAME{LABELS}': the value of that exact series in TEXT (labels as
# printed by the daemon, in any order: each label=value pair must be there).
metric() {
  local name=${2%%\{*} labels=""
  [[ "$2" == *\{* ]] && labels=${2#*\{} && labels=${labels%\}}
  awk -v name="$name" -v labels="$labels" '
    $0 ~ /^#/ { next }
    {
      series = $1; n = index(series, "{"); base = n ? substr(series, 1, n - 1) : series
      if (base != name) next
      inner = n ? substr(series, n + 1, length(series) - n - 1) : ""
      k = split(labels, want, ",")
      for (i = 1; i <= k; i++) if (index("," inner ",", "," want[i] ",") == 0) next
      if ((!n && labels != "") || (n && labels == "")) next
      print $2; exit
    }' <<<"$1"
}
scrape() { curl -sf "$H/metrics"; }
# num_is A OP B: awk comparison of two numbers.
num_is() { awk -v a="$1" -v b="$3" "BEGIN { exit !(a $2 b) }"; }
# expect_metric TEXT SERIES OP VALUE DESCRIPTION
expect_metric() {
  local v
  v=$(metric "$1" "$2")
  [ -n "$v" ] || { grep -E "^${2%%\{*}" <<<"$1" | head -n 20 >&2; fail "$5: no series $2"; }
  num_is "$v" "$3" "$4" || fail "$5: $2 = $v, expected $3 $4"
  ok "$5 ($2 = $v)"
}

start_broker
start_agent --stats-interval 1
http_start
S=metrics_src
new_source "$S"
A="Authorization: Bearer $TOKEN"
day() { echo "start=2023-01-0$1%2000:00:00&end=2023-01-0$(($1 + 1))%2000:00:00&source_name=$S&provider_name=p"; }
post() { curl -s -o "$T/body.json" -w '%{http_code}' -X POST "$@"; }

# Day 1 ready, day 2 locked, day 3 pending; a lock without a token (401),
# readiness asked three times (200) and once without an end (422).
[ "$(post -H "$A" "$H/partitions/lock?$(day 1)")" = 200 ] || fail "lock day 1: $(cat "$T/body.json")"
[ "$(post -H "$A" "$H/partitions/unlock?$(day 1)")" = 200 ] || fail "unlock day 1: $(cat "$T/body.json")"
[ "$(post -H "$A" "$H/partitions/lock?$(day 2)&ttl_s=3600")" = 200 ] || fail "lock day 2: $(cat "$T/body.json")"
[ "$(post -H "$A" "$H/partitions/register?$(day 3)")" = 200 ] || fail "register day 3: $(cat "$T/body.json")"
[ "$(post "$H/partitions/lock?$(day 4)")" = 401 ] || fail "lock without a token: not 401: $(cat "$T/body.json")"
for _ in 1 2 3; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$H/sources/$S/check_readiness?start=2023-01-01&end=2023-01-02")" = 200 ] ||
    fail "readiness not 200"
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$H/sources/$S/check_readiness?start=2023-01-01")" = 422 ] ||
  fail "readiness without end: not 422"
ok "commands through the front door"

# The retained state has caught up with the commands (the front door
# mirrors it): the summary's seq is the one of the last change.
seq=""
for _ in $(seq 50); do
  seq=$(sub1 "$P/state/$S" | jq -r .seq)
  m=$(scrape)
  [ "$(metric "$m" "partreg_source_seq{source=\"$S\"}")" = "$seq" ] &&
    [ "$(metric "$m" "partreg_source_partitions{source=\"$S\",state=\"pending\"}")" = 1 ] && break
  sleep 0.1
done

# promtool's linter: the exposition parses and follows Prometheus's rules
# (names, HELP/TYPE, counters' _total, histograms' buckets).
if ! promtool check metrics <<<"$m" >"$T/promtool.out" 2>&1; then
  cat "$T/promtool.out" >&2
  fail "promtool check metrics"
fi
[ ! -s "$T/promtool.out" ] || { cat "$T/promtool.out" >&2; fail "promtool check metrics printed problems"; }
ok "promtool check metrics: clean"
printf '%s\n' "$m" >"$T/metrics.txt"

# Types as the contract has them.
for t in "partreg_http_requests_total counter" "partreg_http_request_duration_seconds histogram" \
  "partreg_http_broker_connected gauge" "partreg_http_sse_clients gauge" "partreg_agent_online gauge" \
  "partreg_agent_info gauge" "partreg_source_partitions gauge" "partreg_source_oldest_lock_age_seconds gauge" \
  "partreg_source_seq gauge"; do
  grep -qx "# TYPE $t" <<<"$m" || fail "no '# TYPE $t'"
done
ok "TYPE lines of the contract's names"

R='/sources/{source_name}/check_readiness'
expect_metric "$m" "partreg_http_requests_total{route=\"$R\",code=\"200\"}" == 3 "readiness answered 3 times 200"
expect_metric "$m" "partreg_http_requests_total{route=\"$R\",code=\"422\"}" == 1 "readiness refused once 422"
expect_metric "$m" 'partreg_http_requests_total{route="/partitions/lock",code="200"}' == 2 "two locks 200"
expect_metric "$m" 'partreg_http_requests_total{route="/partitions/lock",code="401"}' == 1 "one lock 401"
expect_metric "$m" 'partreg_http_requests_total{route="/partitions/unlock",code="200"}' == 1 "one unlock 200"
expect_metric "$m" 'partreg_http_requests_total{route="/partitions/register",code="200"}' == 1 "one register 200"
# The histogram of the readiness route saw its 4 requests; buckets are cumulative.
expect_metric "$m" "partreg_http_request_duration_seconds_count{route=\"$R\"}" == 4 "readiness latency: 4 observations"
expect_metric "$m" "partreg_http_request_duration_seconds_bucket{route=\"$R\",le=\"+Inf\"}" == 4 "readiness latency: +Inf bucket"
expect_metric "$m" "partreg_http_request_duration_seconds_sum{route=\"$R\"}" '>' 0 "readiness latency: sum"
prev=0
for le in 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10; do
  v=$(metric "$m" "partreg_http_request_duration_seconds_bucket{route=\"$R\",le=\"$le\"}")
  [ -n "$v" ] || fail "no bucket le=$le of $R"
  num_is "$v" '>=' "$prev" || fail "bucket le=$le ($v) below the previous ($prev)"
  prev=$v
done
ok "the contract's 14 buckets, cumulative"
expect_metric "$m" 'partreg_http_broker_connected' == 1 "broker connected"
expect_metric "$m" 'partreg_http_sse_clients' == 0 "no SSE clients"
expect_metric "$m" 'partreg_agent_online' == 1 "agent online"
expect_metric "$m" 'partreg_agent_info{agent_id="partregd:partreg/v1"}' == 1 "agent info"
for st in ready locked pending; do
  expect_metric "$m" "partreg_source_partitions{source=\"$S\",state=\"$st\"}" == 1 "one $st partition"
done
for st in failed deleted; do
  v=$(metric "$m" "partreg_source_partitions{source=\"$S\",state=\"$st\"}")
  [ -z "$v" ] || [ "$v" = 0 ] || fail "partreg_source_partitions $st = $v, expected 0 or absent"
done
ok "no failed or deleted partitions counted"
expect_metric "$m" "partreg_source_seq{source=\"$S\"}" == "$seq" "seq of the retained summary"
a1=$(metric "$m" "partreg_source_oldest_lock_age_seconds{source=\"$S\"}")
[ -n "$a1" ] || fail "no oldest lock age of $S"
num_is "$a1" '>=' 0 || fail "oldest lock age $a1 < 0"
sleep 2
a2=$(metric "$(scrape)" "partreg_source_oldest_lock_age_seconds{source=\"$S\"}")
num_is "$a2" '>=' "$a1 + 1" || fail "oldest lock age did not grow: $a1 then $a2 two seconds later"
ok "oldest lock age grows ($a1 s, then $a2 s)"

# The agent's stats, from its retained agent/stats (every second): 2
# (new_source) + 4 through the front door = 6 commands, none refused (the
# 401 and 422 never reached the agent).
for _ in $(seq 50); do
  m=$(scrape)
  [ "$(metric "$m" partreg_agent_commands_total)" = 6 ] && break
  sleep 0.1
done
for name in partreg_agent_uptime_seconds partreg_agent_commands_total partreg_agent_commands_refused_total \
  partreg_agent_commands_replayed_total partreg_agent_batches_total partreg_agent_leases_expired_total \
  partreg_agent_commit_seconds_last partreg_agent_queue partreg_agent_store_used_bytes partreg_agent_store_map_bytes; do
  [ -n "$(metric "$m" "$name")" ] || fail "no $name"
done
ok "the agent's 10 stats"
expect_metric "$m" partreg_agent_commands_total == 6 "agent: 6 commands"
expect_metric "$m" partreg_agent_commands_refused_total == 0 "agent: none refused"
expect_metric "$m" partreg_agent_batches_total '>=' 1 "agent: batches"
expect_metric "$m" partreg_agent_store_used_bytes '>' 0 "agent: store used"
s=$(sub1 "$P/agent/stats")
expect_metric "$m" partreg_agent_store_map_bytes == "$(jq .store.map_bytes <<<"$s")" "agent: store map size as in agent/stats"

# ---- a real Prometheus scraping the front door ----
mkdir -p "$T/prom"
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: partreg
    static_configs:
      - targets: ['${H#http://}']
EOF
promtool check config "$T/prometheus.yml" >/dev/null || fail "promtool check config"
PQ=""
for _ in $(seq 20); do
  pp=$(random_port)
  prometheus --config.file "$T/prometheus.yml" --storage.tsdb.path "$T/prom" \
    --web.listen-address "127.0.0.1:$pp" --log.level warn >>"$T/prometheus.log" 2>&1 &
  PROM_PID=$!
  PIDS+=("$PROM_PID")
  for _ in $(seq 100); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pp/-/ready")" = 200 ]; then
      PQ="http://127.0.0.1:$pp"
      break 2
    fi
    kill -0 "$PROM_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$PROM_PID" 2>/dev/null || true
done
[ -n "$PQ" ] || fail "prometheus did not start"
ok "prometheus $(prometheus --version 2>&1 | head -n 1 | awk '{ print $3 }') up"
# query EXPR: the value of the single series of an instant query ('' if none).
query() {
  curl -s --get "$PQ/api/v1/query" --data-urlencode "query=$1" |
    jq -r 'if .status == "success" and (.data.result | length) == 1 then .data.result[0].value[1] else "" end'
}
# prom_within EXPR VALUE SECONDS: Prometheus answers VALUE for EXPR within SECONDS.
prom_within() {
  local v=""
  for _ in $(seq $(($3 * 5))); do
    v=$(query "$1")
    [ "$v" = "$2" ] && return 0
    sleep 0.2
  done
  fail "Prometheus: $1 = '${v}', expected $2 within $3 s (targets: $(curl -s "$PQ/api/v1/targets" | jq -c '[.data.activeTargets[] | {health, lastError}]'))"
}
prom_within 'up{job="partreg"}' 1 20
ok "Prometheus scrapes the front door (up = 1)"
prom_within "partreg_source_partitions{source=\"$S\",state=\"locked\"}" 1 10
ok "Prometheus: partreg_source_partitions{source=\"$S\",state=\"locked\"} = 1"
prom_within "partreg_http_requests_total{route=\"$R\",code=\"200\"}" 3 10
ok "Prometheus: readiness requests counted 3"
# A change reaches Prometheus through the front door: unlock day 2.
[ "$(post -H "$A" "$H/partitions/unlock?$(day 2)")" = 200 ] || fail "unlock day 2: $(cat "$T/body.json")"
prom_within "partreg_source_partitions{source=\"$S\",state=\"ready\"}" 2 10
v=$(query "partreg_source_partitions{source=\"$S\",state=\"locked\"}")
[ -z "$v" ] || [ "$v" = 0 ] || fail "Prometheus: locked = $v after the unlock"
ok "Prometheus: after the unlock, ready = 2 and locked = ${v:-absent}"
prom_within "partreg_agent_online" 1 5
ok "Prometheus: partreg_agent_online = 1"

grep -q "$TOKEN" "$T/http.log" && fail "the token appears in partreg-http's log"
ok "token not logged"
kill -TERM "$PROM_PID" "$HTTP_PID"
wait "$PROM_PID" "$HTTP_PID" 2>/dev/null || true
pass
