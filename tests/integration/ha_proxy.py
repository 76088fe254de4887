#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A TCP proxy that a test can cut (tests/integration/HA.md).

    ha_proxy.py --listen 127.0.0.1:PORT --target HOST:PORT[,HOST:PORT...] --port-file F

One proxy per client process (an agent's way to etcd): the client is given
the proxy's address instead of the target's, and the test cuts that one
process off without touching any other. PORT 0 picks a free port, written
to --port-file once listening (the test waits for that file). With several
targets, each connection goes to the next one that answers (round robin).

Controlled by signals, by PID, as lib.sh controls everything:
  SIGUSR1  cut, refusing: reset every open connection (RST) and refuse new
           ones (the listening socket is closed: connection refused) --
           a process whose peer is down.
  SIGUSR2  cut, silent: keep every connection open but forward nothing, and
           accept new connections without forwarding anything either --
           a network that drops packets (the client must time out).
  SIGHUP   heal: listen again (same port) and forward; connections stalled
           by SIGUSR2 are reset, as a real partition's would time out.
  SIGTERM  exit.
Each change is logged on stderr with a timestamp; the state is also written
to --state-file (up, refused, silent) after it took effect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import struct
import sys
import time
from pathlib import Path


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} ha_proxy: {msg}", file=sys.stderr, flush=True)


class Proxy:
    def __init__(self, host: str, port: int, targets: list[tuple[str, int]], state_file: str | None) -> None:
        self.host, self.port, self.targets = host, port, targets
        self.state = "up"
        self.state_file = state_file
        self.server: asyncio.base_events.Server | None = None
        self.conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self.next = 0

    def write_state(self) -> None:
        if self.state_file:
            Path(self.state_file).write_text(self.state + "\n")

    async def listen(self) -> None:
        # SO_REUSEADDR (asyncio's default on POSIX): the port is ours again at once.
        self.server = await asyncio.start_server(self.handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    @staticmethod
    def reset(w: asyncio.StreamWriter | None) -> None:
        if w is None:
            return
        sock = w.get_extra_info("socket")
        with contextlib.suppress(OSError):
            if sock is not None:
                # Linger 0: close sends RST, as a crashed peer's kernel would.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()

    async def handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        if self.state == "refused":
            self.reset(cw)
            return
        if self.state == "silent":
            entry = (cw, None)
            self.conns.add(entry)
            with contextlib.suppress(Exception):
                while await cr.read(65536):
                    pass  # swallowed
            self.conns.discard(entry)
            return
        tw = None
        for _ in range(len(self.targets)):
            h, p = self.targets[self.next % len(self.targets)]
            self.next += 1
            try:
                tr, tw = await asyncio.wait_for(asyncio.open_connection(h, p), 3)
                break
            except (OSError, TimeoutError):
                continue
        if tw is None:
            self.reset(cw)
            return
        entry = (cw, tw)
        self.conns.add(entry)
        try:
            await asyncio.gather(self.pipe(cr, tw), self.pipe(tr, cw))
        finally:
            self.conns.discard(entry)
            for w in (cw, tw):
                with contextlib.suppress(Exception):
                    w.close()

    async def pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                data = await r.read(65536)
                if not data:
                    break
                while self.state == "silent":
                    await asyncio.sleep(0.05)  # held, not forwarded
                if self.state == "refused":
                    break
                w.write(data)
                await w.drain()
        with contextlib.suppress(Exception):
            w.write_eof()

    async def set_state(self, new: str) -> None:
        old, self.state = self.state, new
        if new == "refused":
            if self.server is not None:
                self.server.close()
                self.server = None
            for cw, tw in list(self.conns):
                self.reset(cw)
                self.reset(tw)
        elif new == "up":
            if old == "silent":
                for cw, tw in list(self.conns):
                    self.reset(cw)
                    self.reset(tw)
            if self.server is None:
                for _ in range(50):
                    try:
                        await self.listen()
                        break
                    except OSError:
                        await asyncio.sleep(0.1)
                else:
                    log(f"cannot listen on {self.port} again")
        log(f"{old} -> {new} ({len(self.conns)} connections)")
        self.write_state()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--target", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--state-file")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    targets = [(h, int(p)) for h, p in (t.rsplit(":", 1) for t in a.target.split(","))]
    px = Proxy(host, int(port), targets, a.state_file)
    await px.listen()
    px.write_state()
    Path(a.port_file + ".tmp").write_text(f"{px.port}\n")
    Path(a.port_file + ".tmp").rename(a.port_file)
    log(f"listening on {host}:{px.port} -> {a.target}")
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig, st in ((signal.SIGUSR1, "refused"), (signal.SIGUSR2, "silent"), (signal.SIGHUP, "up")):
        loop.add_signal_handler(sig, lambda st=st: asyncio.ensure_future(px.set_state(st)))
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    await done.wait()


if __name__ == "__main__":
    asyncio.run(main())
