#!/usr/bin/env bash
# Runs the README's walk-through: every ```sh block between the
# readme-test markers, in order, in one shell (so variables carry over),
# against a test broker and agent. The mosquitto clients are wrapped to use
# the test broker's port. Each block's output (its last JSON line) must
# match the ```json block that follows: every value shown must be equal,
# except "…", which matches anything. Then the first block once more: on
# the same store it must be refused and point to "Starting over" (it used
# to go on quietly with TOKEN=null into 401s).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_readme.sh"
start_broker
start_agent

readme_walkthrough "$T/readme"
readme_clients
readme_run "$T/readme"
readme_rerun_refused "$T/readme"
pass
