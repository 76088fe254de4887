#!/usr/bin/env bash
# Runs the README's walk-through: every ```sh block between the
# readme-test markers, in order, in one shell (so variables carry over),
# against a test broker and agent. The mosquitto clients are wrapped to use
# the test broker's port. Each block's output (its last JSON line) must
# match the ```json block that follows: every value shown must be equal,
# except "…", which matches anything.
. "$(dirname "$0")/lib.sh"
start_broker
start_agent

mkdir -p "$T/readme"
awk -v dir="$T/readme" '
  /<!-- readme-test:begin -->/ { on = 1; next }
  /<!-- readme-test:end -->/ { on = 0 }
  !on { next }
  /^```sh$/ { n++; f = sprintf("%s/%02d.sh", dir, n); inblk = 1; next }
  /^```json$/ { f = sprintf("%s/%02d.json", dir, n); inblk = 1; next }
  /^```$/ { inblk = 0; next }
  inblk { print > f }
' "$PARTREG_SOURCE_DIR/README.md"
nblocks=$(ls "$T/readme"/*.sh | wc -l)
[ "$nblocks" -ge 8 ] || fail "found only $nblocks shell blocks in the README walk-through"

mosquitto_rr() { command mosquitto_rr -h 127.0.0.1 -p "$PORT" -W 5 "$@"; }
mosquitto_sub() { command mosquitto_sub -h 127.0.0.1 -p "$PORT" -W 5 "$@"; }
mosquitto_pub() { command mosquitto_pub -h 127.0.0.1 -p "$PORT" "$@"; }

# matches EXPECTED ACTUAL: every leaf of EXPECTED (but "…") equals ACTUAL's.
matches() {
  jq -n --argjson e "$1" --argjson a "$2" '
    [ $e | paths(type != "object" and type != "array" or length == 0) ] as $ps
    | all($ps[]; . as $p | ($e | getpath($p)) as $v
        | $v == "…" or ($a | getpath($p)) == $v
          or ($v | type) == "array" and ($a | getpath($p)) == $v)' | grep -qx true
}

for sh in "$T/readme"/*.sh; do
  name=$(basename "$sh" .sh)
  # In this shell, not a subshell: the blocks' variables ($TOKEN) carry over.
  set +u
  . "$sh" >"$T/readme/$name.out" 2>&1 || fail "README block $name failed: $(cat "$sh" "$T/readme/$name.out")"
  set -u
  out=$(cat "$T/readme/$name.out")
  want="$T/readme/$name.json"
  [ -f "$want" ] || { ok "README block $name ran"; continue; }
  got=$(printf '%s\n' "$out" | grep '^{' | tail -n 1)
  [ -n "$got" ] || fail "README block $name printed no JSON: $out"
  if ! matches "$(jq -c . "$want")" "$got"; then
    echo "README block $name:"; cat "$sh"
    echo "expected (README): $(jq -c . "$want")"
    echo "got:               $got"
    fail "README block $name does not match the README"
  fi
  ok "README block $name matches"
done
pass
