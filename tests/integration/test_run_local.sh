#!/usr/bin/env bash
# compose/run-local.sh as a new user runs it (README "The two commands",
# "Walk-through", "Starting over"), as the user running the tests (root
# here; test_run_local_user.sh runs it as another user), on a free port
# (PARTREG_PORT) with its build and var directories in a scratch directory:
#  1. it builds partregd and partreg (it built only partregd, at a path it
#     then did not run), and the agent comes online on its own mosquitto;
#  2. the README walk-through passes against it;
#  3. Ctrl-C (SIGINT to its process group) stops everything, exit 0; the
#     broker saved its state without an error (as root, mosquitto used to
#     switch to the user mosquitto and fail to write var/mosquitto/), and a
#     fresh mosquitto on that state has the agent's clean "offline", not
#     the Last Will (the Ctrl-C used to stop the broker too, which then sent
#     the Will over the clean status);
#  4. started again on the same store, the walk-through's first step is
#     refused and points to "Starting over"; the README's start-over block,
#     run where var/ is, and a new start make the walk-through pass again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_readme.sh"
. "$(dirname "$0")/lib_run_local.sh"
for tool in setsid cmake ninja; do
  command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done

PORT=$(free_port)
RL_BUILD=$T/build
RL_VAR=$T/var
readme_walkthrough "$T/readme"
readme_clients

rl_start run-local-1
for f in src/partregd cli/partreg; do
  [ -x "$RL_BUILD/$f" ] || fail "run-local.sh did not build $f"
done
PARTREG_BROKER=mqtt://127.0.0.1:$PORT "$RL_BUILD/cli/partreg" --help >/dev/null ||
  fail "the partreg run-local.sh built does not run"
ok "run-local.sh built partregd and partreg"
readme_run "$T/readme"
rl_ctrl_c
rl_check_saved

rl_start run-local-2
readme_rerun_refused "$T/readme"
rl_ctrl_c

(cd "$T" && bash -e) <<<"$(readme_block start-over)" || fail "the README's start-over block failed"
[ ! -e "$RL_VAR" ] || fail "the README's start-over block left $RL_VAR"
rl_start run-local-3
readme_run "$T/readme"
rl_ctrl_c
FAILED=0
echo PASS
