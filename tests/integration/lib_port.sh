# SPDX-License-Identifier: MIT
# Sourced by lib.sh and tests/bench/run.sh.

# random_port: a random loopback port for a listener, below the kernel's
# ephemeral range: a port in it may be taken by any outgoing connection
# while its listener is down (a broker or an etcd member restarted on its
# port would then fail to bind). Callers check it is free and retry.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
random_port() {
  if [ "$EPHEMERAL_LOW" -gt 12000 ]; then
    echo $((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
  else
    echo $((20000 + RANDOM % 40000))
  fi
}
