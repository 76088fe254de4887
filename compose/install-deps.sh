#!/usr/bin/env bash
# Install the Debian 12 packages partreg needs to build, test and run, but
# only those missing (apt-get runs only when something is).
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config
  libpaho-mqtt-dev liblmdb-dev libjson-c-dev uuid-dev libcmocka-dev libssl-dev
  mosquitto mosquitto-clients jq openssl python3 python3-jsonschema clang-format git
  # partreg-http, the HTTP front door (libmicrohttpd), and curl for its tests
  libmicrohttpd-dev curl
  # the agent's etcd client (libcurl) and the etcd it is tested against
  libcurl4-openssl-dev etcd-server etcd-client
  # its real clients in the tests: headless Chromium (the dashboard, /docs),
  # Prometheus and promtool (/metrics), wrk (tests/bench's http group)
  chromium prometheus wrk
  gnuplot-nox
  # the Debian package (cpack -G DEB: dpkg-shlibdeps, file) and man -l in
  # test_installed.sh
  dpkg-dev file man-db
  # libFuzzer for tests/fuzz: clang, and the runtime it only recommends
  # (through libclang-common-14-dev), so --no-install-recommends skips it
  clang libclang-rt-14-dev
  rabbitmq-server nats-server)
missing=()
# Node.js with npm drives Chromium (playwright-core, test_http_dashboard).
# A machine with its own Node.js (say NodeSource's nodejs, which brings npm)
# keeps it: Debian's npm would pull Debian's older nodejs over it.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
for p in "${pkgs[@]}"; do
  # "triggers-pending" and "triggers-awaited" are installed packages too,
  # while another dpkg run (say of partreg's own package) processes triggers:
  # taking them for missing ran apt-get into that run's lock.
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
    grep -qE '^install ok (installed|triggers-pending|triggers-awaited)$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
