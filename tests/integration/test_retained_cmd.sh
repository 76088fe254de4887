#!/usr/bin/env bash
# A command left retained on the broker runs once, when it is published,
# and never again: not at a restart, not at a reconnect. Over MQTT 5 the
# agent subscribes with Retain Handling 2 (the broker sends it nothing
# retained); over MQTT 3.1.1, where the broker must send retained messages
# to every new subscription, the agent drops any command that arrives with
# the retain flag, says so in its log and counts it in agent/stats.
. "$(dirname "$0")/lib.sh"
start_broker
start_agent
new_source rc
stop_agent

# state_is TOPIC JQ: the retained TOPIC satisfies JQ within 5 s.
state_is() { retained_within "$1" "$2" 5; }

# run_case DAY PARTREGD-FLAGS...: a retained lock of DAY, then restarts.
run_case() {
  local day=$1 start end
  shift
  start="2023-01-0${day}T00:00:00Z"
  end="2023-01-0$((day + 1))T00:00:00Z"
  start_agent --stats-interval 1 "$@"
  local lock="{\"source\":\"rc\",\"provider\":\"p\",\"start\":\"$start\",\"end\":\"$end\",\"access_token\":\"$TOKEN\""
  local pt="$P/state/rc/partitions/$start/$end/p"
  # A careless client publishes a lock retained (no reply wanted).
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -r -t "$P/cmd/partition/lock" -m "$lock,\"ttl_s\":3600}"
  state_is "$pt" '.state == "locked"' || fail "day $day: the retained lock did not run when published: $(sub1 "$pt")"
  local fence
  fence=$(sub1 "$pt" | jq .fence)
  ok "day $day: the retained lock ran once when published (fence $fence)"
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -t "$P/cmd/partition/unlock" -m "$lock,\"fence\":$fence}"
  state_is "$pt" '.state == "ready"' || fail "day $day: the job's unlock did not run"
  ok "day $day: the job unlocked it"
  # Restart twice, once cleanly and once by kill -9: the lock must not run again.
  stop_agent
  start_agent --stats-interval 1 "$@"
  kill_agent
  start_agent --stats-interval 1 "$@"
  sleep 1
  expect "$(sub1 "$pt")" ".state == \"ready\" and .fence == $fence and .version == 1" "day $day: after two restarts still ready, fence $fence"
  # Clear the retained command (an empty retained message).
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -q 1 -r -t "$P/cmd/partition/lock" -n
}

: >"$T/agent.log"
run_case 1
grep -q "retained command" "$T/agent.log" && fail "MQTT 5: the broker sent the retained command (Retain Handling not in effect)"
ok "MQTT 5: the broker never sent the retained command to the agent"
stop_agent

: >"$T/agent.log"
run_case 3 --mqtt-version 3.1.1
grep -q "retained command on $P/cmd/partition/lock ignored" "$T/agent.log" || fail "MQTT 3.1.1: no warning about the retained command"
ok "MQTT 3.1.1: the retained command was ignored with a warning"
state_is "$P/agent/stats" '.commands.retained_dropped >= 1' || fail "agent/stats counts no retained_dropped"
ok "MQTT 3.1.1: agent/stats counts $(sub1 "$P/agent/stats" | jq .commands.retained_dropped) retained command(s) dropped"
pass
