# SPDX-License-Identifier: MIT
# Helpers for tests that run the README's shell blocks as written (sourced
# after lib.sh): the walk-through between the readme-test:begin/end markers,
# each ```sh block checked against the ```json block under it, and single
# blocks marked <!-- readme-test:NAME -->. The caller points the mosquitto
# clients at its broker with shell functions (readme_clients does it for
# $PORT).

README=$PARTREG_SOURCE_DIR/README.md

# readme_clients: mosquitto_rr, _sub and _pub talk to the broker on $PORT.
readme_clients() {
  mosquitto_rr() { command mosquitto_rr -h 127.0.0.1 -p "$PORT" -W 5 "$@"; }
  mosquitto_sub() { command mosquitto_sub -h 127.0.0.1 -p "$PORT" -W 5 "$@"; }
  mosquitto_pub() { command mosquitto_pub -h 127.0.0.1 -p "$PORT" "$@"; }
}

# readme_walkthrough DIR [NAME]: the blocks of a walk-through into DIR:
# NN.sh, and NN.json for a block that shows its reply. The walk-through is
# between <!-- readme-test:begin --> and <!-- readme-test:end -->, or with
# NAME between readme-test:NAME-begin and readme-test:NAME-end.
readme_walkthrough() {
  local tag=${2:+$2-}
  mkdir -p "$1"
  awk -v dir="$1" -v b="<!-- readme-test:${tag}begin -->" -v e="<!-- readme-test:${tag}end -->" '
    $0 == b { on = 1; next }
    $0 == e { on = 0 }
    !on { next }
    /^```sh$/ { n++; f = sprintf("%s/%02d.sh", dir, n); inblk = 1; next }
    /^```json$/ { f = sprintf("%s/%02d.json", dir, n); inblk = 1; next }
    /^```$/ { inblk = 0; next }
    inblk { print > f }
  ' "$README"
  local n
  n=$(ls "$1"/*.sh 2>/dev/null | wc -l)
  [ "$n" -ge 8 ] || fail "found only $n shell blocks in the README walk-through ${2:-}"
}

# readme_block NAME: the ```sh block right after <!-- readme-test:NAME -->.
readme_block() {
  local b
  b=$(awk -v m="<!-- readme-test:$1 -->" '
    $0 == m { want = 1; next }
    want && /^```sh$/ { inblk = 1; next }
    inblk && /^```$/ { exit }
    inblk { print }
    want && !inblk && NF { exit }
  ' "$README")
  [ -n "$b" ] || fail "the README has no shell block marked readme-test:$1"
  printf '%s\n' "$b"
}

# readme_matches EXPECTED ACTUAL: every leaf of EXPECTED (but "…") equals ACTUAL's.
readme_matches() {
  jq -n --argjson e "$1" --argjson a "$2" '
    [ $e | paths(type != "object" and type != "array" or length == 0) ] as $ps
    | all($ps[]; . as $p | ($e | getpath($p)) as $v
        | $v == "…" or ($a | getpath($p)) == $v
          or ($v | type) == "array" and ($a | getpath($p)) == $v)' | grep -qx true
}

# readme_run DIR [LAST]: run DIR's blocks (up to number LAST) in this shell,
# not a subshell, so that their variables ($TOKEN) carry over; each block's
# output goes to NN.out, and its last JSON line must match NN.json.
readme_run() {
  local sh name out got want
  for sh in "$1"/*.sh; do
    name=$(basename "$sh" .sh)
    [ -z "${2:-}" ] || [ "$((10#$name))" -le "$2" ] || break
    set +u
    . "$sh" >"$1/$name.out" 2>&1 || fail "README block $name failed: $(cat "$sh" "$1/$name.out")"
    set -u
    out=$(cat "$1/$name.out")
    want="$1/$name.json"
    [ -f "$want" ] || { ok "README block $name ran"; continue; }
    got=$(printf '%s\n' "$out" | grep '^{' | tail -n 1)
    [ -n "$got" ] || fail "README block $name printed no JSON: $out"
    if ! readme_matches "$(jq -c . "$want")" "$got"; then
      echo "README block $name:"; cat "$sh"
      echo "expected (README): $(jq -c . "$want")"
      echo "got:               $got"
      fail "README block $name does not match the README"
    fi
    ok "README block $name matches"
  done
}

# readme_rerun_refused DIR: the walk-through's first block, run again on the
# same store, prints the 409 and a word on starting over.
readme_rerun_refused() {
  set +u
  . "$1/01.sh" >"$1/01.again" 2>&1 || fail "README block 01 failed the second time: $(cat "$1/01.again")"
  set -u
  expect "$(grep '^{' "$1/01.again" | tail -n 1)" '.status == 409 and .error.code == "source_exists"' \
    "the walk-through run again: 409 source_exists"
  grep -q 'Starting over' "$1/01.again" ||
    fail "the walk-through run again says nothing on starting over: $(cat "$1/01.again")"
  grep -q '^### Starting over' "$README" || fail "the README has no 'Starting over' section"
  ok "the walk-through run again points to 'Starting over'"
}
