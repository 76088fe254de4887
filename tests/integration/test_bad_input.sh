#!/usr/bin/env bash
# Bad input never hurts (protocol.md §7): every class of refused input,
# sent over real MQTT, gets its stable error code and status; a reply topic
# outside P/reply/ gets no reply at all and is never published on; huge and
# deeply nested payloads are refused; and after all of it the agent still
# answers and nothing changed (no event, no retained state, same seq).
. "$(dirname "$0")/lib.sh"
start_broker
start_agent

S=bad_src
S2=other_src
D1=2023-01-01T00:00:00Z
D2=2023-01-02T00:00:00Z

# bad VERB JSON CODE STATUS DESCRIPTION: refused with that code and status,
# a non-empty message, and no result.
bad() {
  local r
  r=$(rr "$1" "$2")
  expect "$r" ".ok == false and .status == $4 and .error.code == \"$3\" and (.error.message | length) > 0 and (has(\"result\") | not)" "$5: $3 $4"
}

# rr_file VERB FILE: publish FILE's bytes (any size) as an MQTT 5 request with
# a Response Topic, print the reply (empty if none within 5 s).
# (mosquitto_rr -f/-s send an empty payload, and -m is limited to 128 KiB.)
rr_file() {
  local rt="$P/reply/file-$$-$RANDOM" out="$T/rr_file.$RANDOM"
  stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -t "$rt" -C 1 -W 5 -d >"$out" 2>&1 &
  local sp=$!
  for _ in $(seq 100); do grep -q SUBACK "$out" && break; sleep 0.05; done
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/$1" -D publish response-topic "$rt" -f "$2"
  wait "$sp" || true
  grep -m1 '^{' "$out" || true
}

# watch_start NAME TOPIC...: record every non-retained message on TOPICs
# in the background; watch_none NAME DESCRIPTION: there was none.
declare -A WATCH_PID
watch_start() {
  local name=$1 out="$T/watch.$1"
  shift
  local args=()
  for t in "$@"; do args+=(-t "$t"); done
  stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$PORT" -q 1 -R -v -d "${args[@]}" >"$out" 2>&1 &
  WATCH_PID[$name]=$!
  PIDS+=("${WATCH_PID[$name]}")
  for _ in $(seq 100); do grep -q SUBACK "$out" && return 0; sleep 0.05; done
  fail "watcher $name did not subscribe"
}
watch_none() {
  sleep 0.5 # let anything in flight arrive
  kill "${WATCH_PID[$1]}" 2>/dev/null || true
  wait "${WATCH_PID[$1]}" 2>/dev/null || true
  if grep -qE 'received PUBLISH \([^)]*r0,' "$T/watch.$1"; then
    grep -A2 'received PUBLISH' "$T/watch.$1" >&2
    fail "$2"
  fi
  ok "$2"
}

# ---- setup: two sources, a provider; then the baseline ----
r=$(rr source/register "{\"source\":\"$S\",\"owner\":\"o\"}")
TOKEN=$(jq -r .result.access_token <<<"$r")
r=$(rr source/register "{\"source\":\"$S2\",\"owner\":\"o\"}")
TOKEN2=$(jq -r .result.access_token <<<"$r")
r=$(rr provider/register "{\"source\":\"$S\",\"provider\":\"prov\",\"access_token\":\"$TOKEN\"}")
expect "$r" '.ok' "setup: provider registered"
r=$(rr provider/register "{\"source\":\"$S\",\"provider\":\"prov2\",\"access_token\":\"$TOKEN\"}")
PTOKEN2=$(jq -r .result.provider_token <<<"$r")
SEQ=$(rr source/get "{\"source\":\"$S\"}" | jq -r .result.seq)
SUMMARY=$(sub1 "$P/state/$S" | jq -c 'del(.updated_at)')
[ -n "$SEQ" ] && [ "$SEQ" != null ] || fail "setup: no seq"

# Nothing below may publish any state or event.
watch_start state "$P/state/#" "$P/events/#"

# A partition command with the given fields merged over a valid lock.
lockcmd() { jq -cn --arg s "$S" --arg t "$TOKEN" --arg d1 "$D1" --arg d2 "$D2" \
  "{source:\$s,provider:\"prov\",start:\$d1,end:\$d2,access_token:\$t} | $1"; }

# ---- malformed JSON ----
L=$(lockcmd '. + {}')
bad partition/lock "${L%?}" invalid_json 400 "truncated"
bad partition/lock "{'source':'$S','provider':'prov','start':'$D1','end':'$D2'}" invalid_json 400 "single quotes"
bad partition/lock "{\"source\":\"$S\",\"provider\":\"prov\",\"start\":\"$D1\",\"end\":\"$D2\",\"ttl_s\":NaN,\"access_token\":\"$TOKEN\"}" invalid_json 400 "NaN"
bad partition/lock "{\"source\":\"$S\",\"provider\":\"prov\",\"start\":\"$D1\",\"end\":\"$D2\",\"ttl_s\":Infinity,\"access_token\":\"$TOKEN\"}" invalid_json 400 "Infinity"
bad partition/lock "$L x" invalid_json 400 "trailing garbage"
bad partition/lock "$L$L" invalid_json 400 "two objects"
bad partition/lock "[$L]" invalid_json 400 "an array, not an object"
bad partition/lock '"partition"' invalid_json 400 "a string, not an object"
bad partition/lock 'null' invalid_json 400 "null, not an object"
bad partition/lock '' invalid_json 400 "empty payload"
bad partition/lock '   ' invalid_json 400 "only whitespace"
bad partition/lock "{\"source\":\"$S\",\"source\":\"$S2\",\"provider\":\"prov\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$TOKEN\"}" invalid_json 400 "duplicate key"
bad partition/lock "$(printf '{"source":"%s\xff","provider":"prov","start":"%s","end":"%s","access_token":"%s"}' "$S" "$D1" "$D2" "$TOKEN")" invalid_json 400 "invalid UTF-8 byte 0xff"
bad partition/lock "$(printf '{"source":"%s","provider":"prov\xc3","start":"%s","end":"%s","access_token":"%s"}' "$S" "$D1" "$D2" "$TOKEN")" invalid_json 400 "truncated UTF-8 sequence"
bad partition/lock "$(printf '{"source":"%s","provider":"p\trov","start":"%s","end":"%s","access_token":"%s"}' "$S" "$D1" "$D2" "$TOKEN")" invalid_json 400 "raw tab inside a string"
bad partition/lock "{\"source\":\"$S\",\"provider\":\"prov\",\"start\":\"$D1\",\"end\":\"$D2\",\"access_token\":\"$TOKEN\",}" invalid_json 400 "trailing comma"
bad partition/lock "{source:\"$S\"}" invalid_json 400 "unquoted key"
bad partition/lock "/* c */$L" invalid_json 400 "comment"

# ---- wrong types ----
bad partition/lock "$(lockcmd '. + {start:1672531200}')" invalid_field 400 "start as a number"
bad partition/list "{\"source\":\"$S\",\"limit\":\"5\"}" invalid_field 400 "limit as a string"
bad partition/list "{\"source\":\"$S\",\"limit\":5.0}" invalid_field 400 "limit as 5.0"
bad partition/list "{\"source\":\"$S\",\"limit\":0}" invalid_field 400 "limit 0"
bad partition/list "{\"source\":\"$S\",\"limit\":1001}" invalid_field 400 "limit 1001"
bad partition/unlock "$(lockcmd '. + {fence:1.5}')" invalid_field 400 "fence 1.5"
bad partition/unlock "$(lockcmd '. + {fence:"1"}')" invalid_field 400 "fence as a string"
bad partition/lock "$(lockcmd '. + {ttl_s:true}')" invalid_field 400 "ttl_s true"
bad partition/lock "$(lockcmd '. + {ttl_s:2592001}')" invalid_field 400 "ttl_s over 30 days"
bad partition/lock "$(lockcmd '. + {source:["x"]}')" invalid_field 400 "source as an array"
bad partition/lock "$(lockcmd '. + {request_id:""}')" invalid_field 400 "empty request_id"
bad partition/lock "$(lockcmd ". + {request_id:\"$(printf 'r%.0s' $(seq 65))\"}")" invalid_field 400 "request_id of 65 chars"
bad partition/unlock "$(lockcmd '. + {metadata:"rows=5"}')" invalid_field 400 "metadata not an object"

# ---- missing and unknown fields ----
bad partition/lock "$(lockcmd '. + {} | del(.end)')" missing_field 400 "lock without end"
bad partition/lock "$(lockcmd '. + {} | del(.provider)')" missing_field 400 "lock without provider"
bad source/register '{"source":"newsrc"}' missing_field 400 "source/register without owner"
bad readiness/query "{\"source\":\"$S\",\"start\":\"$D1\"}" missing_field 400 "readiness without end"
bad partition/lock "$(lockcmd '. + {} | del(.start) | .strat = "2023-01-01T00:00:00Z"')" invalid_field 400 "typo 'strat'"
bad source/register '{"source":"newsrc","owner":"o","source_name":"newsrc"}' invalid_field 400 "unknown field source_name"
r=$(rr partition/lock "$(lockcmd '. + {colour:"blue"}')")
expect "$r" '.error.code == "invalid_field" and (.error.message | contains("colour"))' "the message names the unknown field"

# ---- bad names (source/register would create the source if accepted) ----
N201=$(printf 'n%.0s' $(seq 201))
N200=$(printf 'n%.0s' $(seq 200))
E201="$(printf 'é%.0s' $(seq 100))x"
bad source/register '{"source":"","owner":"o"}' invalid_name 400 "empty source"
bad source/register "{\"source\":\"$N201\",\"owner\":\"o\"}" invalid_name 400 "201-byte source"
bad source/register "{\"source\":\"$E201\",\"owner\":\"o\"}" invalid_name 400 "201 bytes in 101 characters"
bad source/register '{"source":"a/b","owner":"o"}' invalid_name 400 "source with /"
bad source/register '{"source":"a+b","owner":"o"}' invalid_name 400 "source with +"
bad source/register '{"source":"a#b","owner":"o"}' invalid_name 400 "source with #"
bad source/register '{"source":"a\u0007b","owner":"o"}' invalid_name 400 "source with a control character"
bad source/register '{"source":"a\u007fb","owner":"o"}' invalid_name 400 "source with DEL"
bad source/register '{"source":"a\u0000b","owner":"o"}' invalid_field 400 "source with an escaped NUL"
bad source/register '{"source":"$SYS","owner":"o"}' invalid_name 400 "source with a leading \$"
bad source/register "$(printf '{"source":"a\xef\xbf\xbf","owner":"o"}')" invalid_name 400 "source with a noncharacter"
bad source/register '{"source":"ok_name","owner":"a/b"}' invalid_name 400 "owner with /"
bad partition/register "$(lockcmd '. + {provider:"+"}')" invalid_name 400 "provider +"
bad partition/register "$(lockcmd '. + {provider:"$p"}')" invalid_name 400 "provider with a leading \$"
# 200 bytes is a valid name: refused only because there is no such source.
bad source/get "{\"source\":\"$N200\"}" unknown_source 404 "200-byte name passes the name check"

# ---- bad times and intervals ----
bad partition/lock "$(lockcmd '. + {start:"2023-13-01T00:00:00Z"}')" invalid_time 400 "month 13"
bad partition/lock "$(lockcmd '. + {start:"2023-02-30T00:00:00Z"}')" invalid_time 400 "Feb 30"
bad partition/lock "$(lockcmd '. + {start:"2023-02-29T00:00:00Z"}')" invalid_time 400 "Feb 29 in 2023"
bad partition/lock "$(lockcmd '. + {start:"2023-01-01T00:00Z"}')" invalid_time 400 "no seconds"
bad partition/lock "$(lockcmd '. + {start:"2023-01-01T00:00:00.1234567Z"}')" invalid_time 400 "7 fraction digits"
bad partition/lock "$(lockcmd '. + {start:"yesterday"}')" invalid_time 400 "garbage time"
bad partition/lock "$(lockcmd '. + {start:"1672531200"}')" invalid_time 400 "unix seconds as a string"
bad partition/lock "$(lockcmd '. + {start:""}')" invalid_time 400 "empty time"
bad partition/lock "$(lockcmd '. + {end:"2023-01-02T24:00:00Z"}')" invalid_time 400 "hour 24 in end"
bad partition/lock "$(lockcmd '. + {start:"2022-12-31T23:59:60Z"}')" invalid_time 400 "leap second"
bad readiness/query "{\"source\":\"$S\",\"start\":\"2023-02-30\",\"end\":\"$D2\"}" invalid_time 400 "a bad date alone in a read"
bad partition/lock "$(lockcmd '. + {start:"2023-1-1"}')" invalid_time 400 "a date alone without leading zeros"
bad partition/lock "$(lockcmd '. + {start:"2023-01-01T"}')" invalid_time 400 "a date with a dangling T"
bad partition/lock "$(lockcmd ". + {end:\"$D1\"}")" invalid_interval 422 "start == end"
bad partition/lock "$(lockcmd '. + {start:"2023-01-03T00:00:00Z"}')" invalid_interval 422 "start > end"
bad partition/lock "$(lockcmd '. + {end:"2023-01-01T01:00:00+01:00"}')" invalid_interval 422 "the same instant with another offset"
bad readiness/query "{\"source\":\"$S\",\"start\":\"$D2\",\"end\":\"$D1\"}" invalid_interval 422 "backwards readiness query"

# ---- unknown commands ----
bad partition/explode '{}' unknown_command 404 "partition/explode"
bad partition/explode "$L" unknown_command 404 "partition/explode with a valid body"
bad nosuch/verb 'not json at all' unknown_command 404 "unknown command with a non-JSON body"
r=$(rr partition/explode '{}')
expect "$r" '.error.message | contains("partition/explode")' "the message names the command"

# ---- tokens ----
bad partition/lock "$(lockcmd '. + {} | del(.access_token)')" unauthorized 401 "lock without a token"
bad partition/lock "$(lockcmd '. + {access_token:"00000000-0000-4000-8000-000000000000"}')" unauthorized 401 "lock with a wrong token"
bad partition/lock "$(lockcmd ". + {access_token:\"$TOKEN2\"}")" forbidden 403 "lock with another source's token"
bad partition/lock "$(lockcmd ". + {access_token:\"$PTOKEN2\"}")" forbidden 403 "lock with another provider's token"
bad partition/register "$(lockcmd '. + {} | del(.access_token)')" unauthorized 401 "register without a token"
bad provider/register "{\"source\":\"$S\",\"provider\":\"p2\"}" unauthorized 401 "provider/register without a token"
bad provider/register "{\"source\":\"$S\",\"provider\":\"p2\",\"access_token\":\"$TOKEN2\"}" forbidden 403 "provider/register with another source's token"

# ---- unknown source / provider ----
bad source/get '{"source":"nosuch"}' unknown_source 404 "source/get of an unknown source"
bad readiness/query "{\"source\":\"nosuch\",\"start\":\"$D1\",\"end\":\"$D2\"}" unknown_source 404 "readiness of an unknown source"
bad partition/list '{"source":"nosuch"}' unknown_source 404 "partition/list of an unknown source"
bad partition/lock "$(lockcmd '. + {source:"nosuch"}')" unknown_source 404 "lock on an unknown source"
bad provider/register "{\"source\":\"nosuch\",\"provider\":\"p\",\"access_token\":\"$TOKEN\"}" unknown_source 404 "provider of an unknown source"
bad partition/lock "$(lockcmd '. + {provider:"nosuch"}')" unknown_provider 404 "lock by an unknown provider"
bad partition/register "$(lockcmd '. + {provider:"nosuch"}')" unknown_provider 404 "register by an unknown provider"

# ---- reply topics outside P/reply/: no reply, nothing changed, never published on ----
OUTSIDE=("$P/state/x" "other/topic" "$P/events/$S" "$P/replyx/a" "$P/reply" "$P/cmd/source/list")
watch_start outside "${OUTSIDE[@]}" "$P/agent/status"
# The retained agent status would answer mosquitto_rr itself: publish the
# request with the Response Topic and let the watcher look.
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/source/register" \
  -D publish response-topic "$P/agent/status" -m '{"source":"evil0","owner":"o"}'
bad source/get '{"source":"evil0"}' unknown_source 404 "the command sent with reply topic $P/agent/status did nothing"
# (in parallel: each waits 2 s for the reply that must not come)
RR_PIDS=()
i=0
for rt in "${OUTSIDE[@]}"; do
  i=$((i + 1))
  mosquitto_rr -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/source/register" -e "$rt" \
    -m "{\"source\":\"evil$i\",\"owner\":\"o\"}" -W 2 >"$T/outside.$i" 2>/dev/null &
  RR_PIDS+=($!)
done
# A refused command with such a reply topic gets no error reply either.
mosquitto_rr -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/explode" -e "other/topic" \
  -m '{' -W 2 >"$T/outside.err" 2>/dev/null &
RR_PIDS+=($!)
mosquitto_rr -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/source/register" -e "$P/state/x" \
  -m '{"source":"evil-bad"' -W 2 >"$T/outside.err2" 2>/dev/null &
RR_PIDS+=($!)
for pid in "${RR_PIDS[@]}"; do wait "$pid" || true; done
i=0
for rt in "${OUTSIDE[@]}"; do
  i=$((i + 1))
  [ ! -s "$T/outside.$i" ] || fail "a reply on $rt: $(cat "$T/outside.$i")"
  ok "no reply on response topic $rt"
  bad source/get "{\"source\":\"evil$i\"}" unknown_source 404 "the command sent with reply topic $rt did nothing"
done
[ ! -s "$T/outside.err" ] && [ ! -s "$T/outside.err2" ] || fail "an error reply on an outside reply topic"
ok "no error reply on an outside reply topic"
watch_none outside "the agent never published on a reply topic outside $P/reply/"

# ---- huge and deep payloads (default --max-payload 65536) ----
head -c 1048576 /dev/urandom >"$T/garbage"
r=$(rr_file source/get "$T/garbage")
expect "$r" '.ok == false and .status == 413 and .error.code == "payload_too_large"' "1 MB of garbage: payload_too_large 413"
r=$(rr_file partition/lock "$T/garbage")
expect "$r" '.error.code == "payload_too_large" and (.error.message | contains("1048576"))' "1 MB on a write: the message gives the size"
# without a reply topic: nothing to answer, but the agent must survive it
mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/lock" -f "$T/garbage"
# one byte over and exactly at the limit
{ printf '{"source":"'; head -c $((65536 - 13)) /dev/zero | tr '\0' 'a'; printf '"}'; } >"$T/at-limit"
[ "$(stat -c %s "$T/at-limit")" -eq 65536 ] || fail "at-limit file size"
r=$(rr_file source/get "$T/at-limit")
expect "$r" '.error.code == "invalid_name"' "65536 bytes is decoded (a 65523-byte name: invalid_name, not too large)"
{ printf '{"source":"'; head -c $((65536 - 12)) /dev/zero | tr '\0' 'a'; printf '"}'; } >"$T/over-limit"
r=$(rr_file source/get "$T/over-limit")
[ "$(stat -c %s "$T/over-limit")" -eq 65537 ] || fail "over-limit file size"
expect "$r" '.status == 413 and .error.code == "payload_too_large"' "65537 bytes: payload_too_large"
DEEP=$(printf '%*s' 10000 '' | tr ' ' '[')
bad source/get "$DEEP" invalid_json 400 "10,000-deep [[[["
bad source/get "$DEEP$(printf '%*s' 10000 '' | tr ' ' ']')" invalid_json 400 "10,000-deep balanced [[..]]"
bad partition/unlock "$(lockcmd '. + {}' | sed 's/}$//'),\"metadata\":$(printf '%*s' 5000 '' | sed 's/ /{"a":/g')1$(printf '%*s' 5000 '' | tr ' ' '}')}" invalid_json 400 "5,000-deep metadata object"
bad partition/unlock "$(lockcmd ". + {metadata:{a:\"$(printf 'x%.0s' $(seq 1100))\"}}")" invalid_field 400 "metadata over 1024 bytes"

# ---- after all of it: the agent answers and nothing changed ----
watch_none state "no state or event was published for any refused command"
r=$(rr source/get "{\"source\":\"$S\"}")
expect "$r" ".ok and .result.seq == $SEQ" "source seq unchanged ($SEQ)"
r=$(rr partition/list "{\"source\":\"$S\"}")
expect "$r" '.ok and .result.items == []' "no partition was created"
r=$(rr source/list '{}')
expect "$r" "[.result.items[].source] == [\"$S2\", \"$S\"] or [.result.items[].source] == [\"$S\", \"$S2\"]" "no source was created"
r=$(rr readiness/query "{\"source\":\"$S\",\"start\":\"$D1\",\"end\":\"$D2\"}")
expect "$r" ".ok and .result.ready == false and .result.gaps == [[\"$D1\",\"$D2\"]] and .result.seq == $SEQ" "readiness still answers"
expect "$(sub1 "$P/state/$S" | jq -c 'del(.updated_at)')" ". == $SUMMARY" "retained summary unchanged"
kill -0 "$AGENT_PID" || fail "partregd died"
sanitizer_clean "$T/agent.log"
ok "agent alive, no sanitizer report"

# ---- a smaller --max-payload ----
stop_agent
start_agent --max-payload 2048
BIG=$(printf '{"source":"%s"}' "$(head -c 4096 /dev/zero | tr '\0' 'a')")
bad source/get "$BIG" payload_too_large 413 "4 KB with --max-payload 2048"
r=$(rr source/get "$BIG")
expect "$r" '.error.message | contains("2048")' "the message gives the limit"
AT=$(printf '{"source":"%s"}' "$(head -c $((2048 - 13)) /dev/zero | tr '\0' 'a')")
[ ${#AT} -eq 2048 ] || fail "AT is ${#AT} bytes"
bad source/get "$AT" invalid_name 400 "exactly 2048 bytes is decoded"
bad source/get "${AT%??}a\"}" payload_too_large 413 "2049 bytes is too large"
r=$(rr partition/lock "$(lockcmd '. + {request_id:"r-big"}' | sed "s/}\$/,\"x\":\"$(head -c 3000 /dev/zero | tr '\0' 'a')\"}/")")
expect "$r" '.error.code == "payload_too_large"' "a too-large write with a request_id"
r=$(rr source/get "{\"source\":\"$S\"}")
expect "$r" ".ok and .result.seq == $SEQ" "source seq still unchanged after restart"

# ---- known codec gap: invalid UTF-8 that json-c's validation lets through ----
# Overlong (C0 AF), a UTF-8-encoded surrogate (ED A0 80) and a code point
# above U+10FFFF (F4 90 80 80) are not UTF-8 (RFC 3629); the agent must refuse
# them as invalid_json, not store them and emit them in replies and state.
bad_utf8=""
for seq in '\xc0\xaf' '\xed\xa0\x80' '\xf4\x90\x80\x80'; do
  r=$(rr partition/fail "$(printf "{\"source\":\"%s\",\"provider\":\"prov\",\"start\":\"%s\",\"end\":\"%s\",\"reason\":\"x${seq}y\",\"access_token\":\"%s\"}" "$S" "$D1" "$D2" "$TOKEN")")
  if jq -e '.status == 400 and .error.code == "invalid_json"' >/dev/null <<<"$r"; then
    ok "reason with invalid UTF-8 $seq: invalid_json 400"
  else
    echo "got: $r" >&2
    bad_utf8="$bad_utf8 $seq"
  fi
done
[ -z "$bad_utf8" ] || fail "invalid UTF-8 accepted in a string field (not refused as invalid_json):$bad_utf8"
pass
