/* SPDX-License-Identifier: MIT */
/*
 * TCP_NODELAY on every connected TCP socket of the process.
 *
 * Paho gives no handle to its socket and never disables Nagle's algorithm;
 * with Nagle a request/response round trip through a broker takes ~88 ms
 * instead of ~0.25 ms (library-facts.md). After each (re)connect the
 * transport calls this, which walks /proc/self/fd and sets TCP_NODELAY on
 * descriptors that are SOCK_STREAM sockets with an AF_INET/AF_INET6 peer.
 * Setting it on a socket that already has it, or on a listening or foreign
 * socket of the process, is harmless.
 */
#ifndef PR_NODELAY_H
#define PR_NODELAY_H

/* Returns the number of sockets set, or -errno if /proc/self/fd can't be read. */
int pr_nodelay_all(void);

#endif
