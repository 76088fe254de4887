#!/usr/bin/env bash
# Runs the README's HTTP walk-through (the original service's steps with
# curl against partreg-http, between the readme-test:http-begin and
# http-end markers) against a test broker, agent and partreg-http: each
# ```sh block in order in one shell, each reply checked against the ```json
# block under it ("…" matches anything). curl is pointed from the README's
# 127.0.0.1:5498 to the test's port.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_http.sh"
. "$(dirname "$0")/lib_readme.sh"
start_broker
start_agent
start_http

curl() { command curl "${@//127.0.0.1:5498/127.0.0.1:$HPORT}"; }
readme_walkthrough "$T/readme" http
readme_run "$T/readme"
grep -q "$TOKEN" "$T/http.log" && fail "the token is in partreg-http's log"
stop_http
pass
