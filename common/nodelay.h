/* SPDX-License-Identifier: MIT */
/*
 * TCP_NODELAY for Paho's connections.
 *
 * Paho gives no handle to its socket and never disables Nagle's algorithm;
 * with Nagle a request/response round trip through a broker takes ~88 ms
 * instead of ~0.25 ms (library-facts.md). So after each (re)connect the
 * transport walks /proc/self/fd and sets TCP_NODELAY on connected TCP
 * sockets (SOCK_STREAM with an AF_INET/AF_INET6 peer):
 *
 * - the daemon owns its process and sets it on all of them;
 * - libpartreg lives in someone else's process and sets it only on sockets
 *   whose peer is its broker's address and port. Another connection of the
 *   same process to the same broker address may get it too (Paho offers no
 *   way to tell the two apart); TCP_NODELAY only lowers its latency.
 *
 * Setting it on a socket that already has it is harmless.
 */
#ifndef PR_NODELAY_H
#define PR_NODELAY_H

/* Every TCP socket of the process. Returns the number of sockets set, or
 * -errno if /proc/self/fd can't be read. */
int pr__nodelay_all(void);

/* The TCP sockets connected to the broker of paho_uri ("tcp://host:port",
 * "ssl://[::1]:port"). Returns the number set, -errno, or PR_EFIELD when
 * the URI has no host and port that resolve. */
int pr__nodelay_peer(const char *paho_uri);

#endif
