#!/usr/bin/env bash
# compose/run-local.sh run by an unprivileged user (nobody, through setpriv)
# when the tests run as root; test_run_local.sh covers the user running the
# tests. Its build and var directories belong to that user; it must build,
# serve the README walk-through, stop on Ctrl-C with exit 0, and leave the
# clean "offline" in the broker's saved state (mosquitto, not root, keeps
# its own user and writes var/mosquitto/).
# (The skips come before lib.sh, so that nothing is started.)
[ "$(id -u)" -eq 0 ] || { echo "SKIP: not root (test_run_local.sh runs it as this user)"; exit 77; }
for tool in setpriv setsid cmake ninja; do
  command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
uid=$(id -u nobody 2>/dev/null) && gid=$(id -g nobody) || { echo "SKIP: no user nobody"; exit 77; }
as=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
"${as[@]}" test -r "${PARTREG_SOURCE_DIR:?}/CMakeLists.txt" -a -x "$PARTREG_SOURCE_DIR/compose" ||
  { echo "SKIP: nobody cannot read $PARTREG_SOURCE_DIR"; exit 77; }
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_readme.sh"
. "$(dirname "$0")/lib_run_local.sh"

# $T is root's (0700): nobody may pass through it to its own directory.
chmod 711 "$T"
mkdir "$T/u"
chown "$uid:$gid" "$T/u"
RL_AS=("${as[@]}")
RL_ENV=(HOME="$T/u")
RL_BUILD=$T/u/build
RL_VAR=$T/u/var
PORT=$(free_port)
readme_walkthrough "$T/readme"
readme_clients

rl_start run-local
[ "$(stat -c %u "$RL_VAR/data")" = "$uid" ] || fail "the store is not nobody's"
[ "$(ps -o uid= -p "$RL_AGENT" | tr -d ' ')" = "$uid" ] || fail "partregd does not run as nobody"
[ "$(ps -o uid= -p "$RL_BROKER" | tr -d ' ')" = "$uid" ] || fail "mosquitto does not run as nobody"
ok "partregd and mosquitto run as nobody"
readme_run "$T/readme"
rl_ctrl_c
rl_check_saved
FAILED=0
echo PASS
