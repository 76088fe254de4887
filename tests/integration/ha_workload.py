# SPDX-License-Identifier: MIT
"""The HA workload: many clients contending for a few partitions, every
operation recorded as a JSON line for ha_check.py (tests/integration/HA.md).

    ha_workload.py setup    --broker URL --source S --providers N --token-file F
    ha_workload.py run      --broker URL --source S --token-file F --clients N
                            --partitions K --out DIR [--stop-file F] [--duration S]
    ha_workload.py snapshot --broker URL --source S --out FILE [--ops DIR]

Each client is a thread with its own partreg.Client (its own MQTT
connection). A client loops: pick a partition, lock it (random ttl_s, under
its session half of the time), renew it 0-2 times, then unlock (with the
fence), fail (with the fence, reason "fail:<request_id>"), abort its session
(reason "abort:<request_id>"), or walk away and let the lease run out. An
attempt waits --attempt-s for a reply (resending with the same request_id
every --resend-s); after a timeout the same command is sent again with the
same request_id, up to --attempts times (one command in ten: once); then its
outcome is "unknown".

One record per logical command (one request_id), in DIR/c<N>.jsonl:
  {client, op, request_id, source, provider, start, end, fence?, ttl_s?,
   session?, reason?, body (the command, without the token),
   invoke_wall, invoke_mono, complete_wall, complete_mono (null when unknown),
   attempts, outcome: ok | refused | unknown, status?, code?, replayed?,
   result? (the reply's result; for a partition: state, version, fence, seq,
   expires_at), replies (every reply received, in order)}
Times are microseconds: *_wall CLOCK_REALTIME (comparable with the agent's
times, which are CLOCK_REALTIME on this host), *_mono CLOCK_MONOTONIC.

snapshot collects the agent's authoritative record and the broker's
retained state once the faults have stopped: history/query (all pages),
partition/list, source/get, readiness/query over every partition, the
retained summary, partition topics and agent status; it repeats until the
retained state agrees with the agent and nothing changed during the read
(or --settle-s passes: then ha_check.py reports what did not converge).
With --ops it also resends up to --replays acknowledged commands, as they
were, and records the replies (a replay must return the first reply).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import partreg
from partreg.errors import Timeout

DAY0 = datetime(2030, 1, 1, tzinfo=UTC)


def wall_us() -> int:
    return time.time_ns() // 1000


def mono_us() -> int:
    return time.monotonic_ns() // 1000


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def partitions(k: int) -> list[tuple[str, str]]:
    return [(iso(DAY0 + timedelta(days=i)), iso(DAY0 + timedelta(days=i + 1))) for i in range(k)]


PART_KEYS = ("state", "version", "fence", "seq", "expires_at", "reason", "provider", "start", "end")


class Recorder:
    def __init__(self, path: Path) -> None:
        self.f = path.open("a", buffering=1)
        self.mu = threading.Lock()

    def write(self, rec: dict[str, Any]) -> None:
        with self.mu:
            self.f.write(json.dumps(rec, separators=(",", ":")) + "\n")


def in_doubt(reply: dict[str, Any]) -> bool:
    """partreg's rule (lib/client.c pr__reply_in_doubt): store_unavailable
    is no outcome (a resend may still be applied by another agent)."""
    return (reply.get("error") or {}).get("code") == "store_unavailable"


def send(
    c: partreg.Client,
    command: str,
    body: dict[str, Any],
    *,
    attempt_s: float,
    resend_s: float,
    attempts: int,
    stop: threading.Event | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Send one logical command (one request_id) until a reply or
    `attempts` timeouts. A reply in doubt (the agent's etcd lost its
    answer: the client returns one only when no other came) counts as a
    timeout. Returns (outcome fields, replies)."""
    replies: list[dict[str, Any]] = []
    out: dict[str, Any] = {"attempts": 0}
    for _ in range(attempts):
        out["attempts"] += 1
        try:
            r = c.request(command, body, timeout=attempt_s, resend=resend_s)
        except Timeout:
            if stop is not None and stop.is_set():
                break
            continue
        replies.append(r.raw)
        if in_doubt(r.raw):
            continue
        out.update(complete_wall=wall_us(), complete_mono=mono_us(), status=r.status)
        if r.replayed:
            out["replayed"] = True
        if r.ok:
            out["outcome"] = "ok"
            out["result"] = r.result
        else:
            out["outcome"] = "refused"
            out["code"] = (r.error or {}).get("code")
        return out, replies
    out.update(outcome="unknown", complete_wall=None, complete_mono=None)
    return out, replies


class Worker(threading.Thread):
    def __init__(self, n: int, a: argparse.Namespace, token: str, stop: threading.Event) -> None:
        super().__init__(name=f"client-{n}", daemon=True)
        self.n, self.a, self.token, self.stop = n, a, token, stop
        self.rng = random.Random(f"{a.seed}-{n}")
        self.rec = Recorder(Path(a.out) / f"c{n}.jsonl")
        self.parts = partitions(a.partitions)
        self.provider = f"p{n % a.providers}"
        self.counts: dict[str, int] = {}
        self.error: BaseException | None = None

    def op(self, c: partreg.Client, op: str, command: str, body: dict[str, Any]) -> dict[str, Any]:
        rid = f"c{self.n}-{uuid.uuid4()}"
        body = dict(body, request_id=rid)
        rec: dict[str, Any] = {
            "client": self.n,
            "op": op,
            "command": command,
            "request_id": rid,
            "body": body,
            "invoke_wall": wall_us(),
            "invoke_mono": mono_us(),
        }
        for k in ("source", "provider", "start", "end", "fence", "ttl_s", "session", "reason"):
            if k in body:
                rec[k] = body[k]
        full = dict(body, access_token=self.token) if command.startswith("partition/") else body
        out, replies = send(
            c,
            command,
            full,
            attempt_s=self.a.attempt_s,
            resend_s=self.a.resend_s,
            # One command in ten is given up after one attempt: its outcome
            # stays unknown (it may still be applied later, from the broker).
            attempts=1 if self.rng.random() < 0.1 else self.a.attempts,
            stop=self.stop,
        )
        rec.update(out)
        rec["replies"] = replies
        self.rec.write(rec)
        key = f"{op}:{rec['outcome']}" + (f":{rec['code']}" if rec.get("code") else "")
        self.counts[key] = self.counts.get(key, 0) + 1
        return rec

    def pause(self, lo: float, hi: float) -> None:
        self.stop.wait(self.rng.uniform(lo, hi))

    def run(self) -> None:
        try:
            with partreg.Client(self.a.broker, use_env=False, timeout=30) as c:
                self.loop(c)
        except BaseException as e:  # noqa: BLE001 - reported by main
            self.error = e

    def loop(self, c: partreg.Client) -> None:
        a, rng = self.a, self.rng
        session = f"s-{self.n}-{uuid.uuid4()}"
        while not self.stop.is_set():
            start, end = rng.choice(self.parts)
            base = {"source": a.source, "provider": self.provider, "start": start, "end": end}
            ttl = rng.randint(a.ttl_min, a.ttl_max)
            lock_body = dict(base, ttl_s=ttl)
            with_session = rng.random() < 0.5
            if with_session:
                lock_body["session"] = session
            r = self.op(c, "lock", "partition/lock", lock_body)
            if r["outcome"] != "ok":
                self.pause(0.0, 0.2)
                continue
            fence = r["result"]["fence"]
            for _ in range(rng.randint(0, 2)):
                self.pause(0.0, ttl * 0.5)
                if self.stop.is_set():
                    break
                rr = self.op(c, "renew", "partition/renew", dict(base, fence=fence, ttl_s=ttl))
                if rr["outcome"] == "refused":
                    break
            x = rng.random()
            if x < 0.6:
                self.pause(0.0, 0.3)
                self.op(c, "unlock", "partition/unlock", dict(base, fence=fence))
            elif x < 0.75:
                rid_reason = f"fail:{self.n}-{uuid.uuid4().hex[:12]}"
                self.op(c, "fail", "partition/fail", dict(base, fence=fence, reason=rid_reason))
            elif x < 0.85 and with_session:
                self.op(
                    c,
                    "abort",
                    "session/abort",
                    {"session": session, "reason": f"abort:{self.n}-{uuid.uuid4().hex[:12]}"},
                )
                session = f"s-{self.n}-{uuid.uuid4()}"
            else:
                # Walk away: the lease runs out (sometimes while still renewing late).
                if rng.random() < 0.3:
                    self.pause(ttl + 0.2, ttl + 1.0)
                    self.op(c, "renew", "partition/renew", dict(base, fence=fence, ttl_s=ttl))


def cmd_setup(a: argparse.Namespace) -> None:
    with partreg.Client(a.broker, use_env=False, timeout=30) as c:
        # Fixed request_ids: a retried setup is replayed, not refused.
        out, _ = send(
            c,
            "source/register",
            {"source": a.source, "owner": "o", "request_id": f"setup-{a.source}"},
            attempt_s=5,
            resend_s=1,
            attempts=6,
        )
        if out.get("outcome") != "ok":
            sys.exit(f"source/register: {out}")
        token = out["result"]["access_token"]
        for i in range(a.providers):
            out, _ = send(
                c,
                "provider/register",
                {
                    "source": a.source,
                    "provider": f"p{i}",
                    "access_token": token,
                    "request_id": f"setup-{a.source}-p{i}",
                },
                attempt_s=5,
                resend_s=1,
                attempts=6,
            )
            if out.get("outcome") != "ok":
                sys.exit(f"provider/register p{i}: {out}")
    Path(a.token_file).write_text(token)


def cmd_run(a: argparse.Namespace) -> None:
    token = Path(a.token_file).read_text().strip()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "meta.json").write_text(
        json.dumps(
            {
                "source": a.source,
                "clients": a.clients,
                "partitions": partitions(a.partitions),
                "providers": a.providers,
                "seed": a.seed,
                "start_wall": wall_us(),
                "start_mono": mono_us(),
            }
        )
    )
    stop = threading.Event()
    workers = [Worker(i, a, token, stop) for i in range(a.clients)]
    for w in workers:
        w.start()
    t_end = time.monotonic() + a.duration
    while time.monotonic() < t_end and not (a.stop_file and os.path.exists(a.stop_file)):
        if all(not w.is_alive() for w in workers):
            break
        time.sleep(0.1)
    stop.set()
    for w in workers:
        w.join(a.attempt_s * a.attempts + 10)
    counts: dict[str, int] = {}
    for w in workers:
        if w.error is not None:
            sys.exit(f"client {w.n} died: {w.error!r}")
        if w.is_alive():
            sys.exit(f"client {w.n} did not stop")
        for k, v in w.counts.items():
            counts[k] = counts.get(k, 0) + v
    (Path(a.out) / "meta.json").write_text(
        json.dumps(
            dict(
                json.loads((Path(a.out) / "meta.json").read_text()),
                end_wall=wall_us(),
                end_mono=mono_us(),
            )
        )
    )
    print(json.dumps(counts, sort_keys=True))


def pages(c: partreg.Client, command: str, body: dict[str, Any], key: str) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        b = dict(body, limit=1000)
        if cursor:
            b["cursor"] = cursor
        r = c.request(command, b, timeout=10)
        if not r.ok:
            raise RuntimeError(f"{command}: {r.raw}")
        items += r.result[key]
        cursor = r.result.get("next_cursor")
        if not cursor:
            return items


def retained(c: partreg.Client, filters: list[str], quiet_s: float = 0.5) -> dict[str, Any]:
    """Every retained message under the filters: collected until none came
    for quiet_s."""
    got: dict[str, Any] = {}
    last = [time.monotonic()]
    mu = threading.Lock()

    def cb(topic: str, payload: bytes, is_retained: bool) -> None:
        with mu:
            last[0] = time.monotonic()
            if is_retained:
                try:
                    got[topic] = json.loads(payload) if payload else None
                except ValueError:
                    got[topic] = {"unparsable": payload.decode(errors="replace")}

    subs = [c.subscribe(f, cb) for f in filters]
    try:
        while True:
            time.sleep(0.1)
            with mu:
                if time.monotonic() - last[0] >= quiet_s:
                    break
    finally:
        for s in subs:
            s.close()
    return got


def snapshot_once(c: partreg.Client, source: str, parts: list[list[str]]) -> dict[str, Any]:
    src0 = c.request("source/get", {"source": source}, timeout=10).raw
    hist = pages(c, "history/query", {"source": source}, "events")
    plist = pages(c, "partition/list", {"source": source}, "items")
    readiness = []
    for s, e in parts:
        r = c.request("readiness/query", {"source": source, "start": s, "end": e}, timeout=10)
        readiness.append({"start": s, "end": e, "reply": r.raw})
    if parts:
        r = c.request(
            "readiness/query", {"source": source, "start": parts[0][0], "end": parts[-1][1]},
            timeout=10,
        )
        readiness.append({"start": parts[0][0], "end": parts[-1][1], "reply": r.raw})
    ret = retained(c, [f"state/{source}", f"state/{source}/partitions/#", "agent/status"])
    src1 = c.request("source/get", {"source": source}, timeout=10).raw
    return {
        "taken_wall": wall_us(),
        "source": src1,
        "source_before": src0,
        "history": {source: hist},
        "partitions": {source: plist},
        "readiness": {source: readiness},
        "retained": ret,
    }


def converged(s: dict[str, Any], source: str, prefix: str) -> bool:
    seq = (s["source"].get("result") or {}).get("seq")
    if seq is None or seq != (s["source_before"].get("result") or {}).get("seq"):
        return False
    summ = s["retained"].get(f"{prefix}/state/{source}") or {}
    if summ.get("seq") != seq:
        return False
    if any(p["state"] == "locked" for p in s["partitions"][source]):
        return False  # a lease still runs: the state will change
    for p in s["partitions"][source]:
        t = f"{prefix}/state/{source}/partitions/{p['start']}/{p['end']}/{p['provider']}"
        r = s["retained"].get(t) or {}
        if r.get("seq") != p["seq"]:
            return False
    return (s["retained"].get(f"{prefix}/agent/status") or {}).get("status") == "online"


def cmd_snapshot(a: argparse.Namespace) -> None:
    parts: list[list[str]] = []
    if a.ops and (Path(a.ops) / "meta.json").exists():
        parts = json.loads((Path(a.ops) / "meta.json").read_text())["partitions"]
    with partreg.Client(a.broker, use_env=False, timeout=30) as c:
        prefix = c.options.prefix
        deadline = time.monotonic() + a.settle_s
        tries = 0
        while True:
            tries += 1
            try:
                s = snapshot_once(c, a.source, parts)
            except (Timeout, RuntimeError) as e:
                if time.monotonic() > deadline:
                    raise
                print(f"snapshot: {e}; again", file=sys.stderr)
                time.sleep(0.5)
                continue
            if converged(s, a.source, prefix) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        s["tries"] = tries
        s["prefix"] = prefix
        if a.ops:
            s["replays"] = replays(c, a)
    Path(a.out).write_text(json.dumps(s))
    print(f"snapshot after {tries} read(s): seq {s['source'].get('result', {}).get('seq')}")


def replays(c: partreg.Client, a: argparse.Namespace) -> list[dict[str, Any]]:
    token = Path(a.token_file).read_text().strip() if a.token_file else None
    acked = []
    for f in sorted(Path(a.ops).glob("c*.jsonl")):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if r["outcome"] == "ok":
                acked.append(r)
    rng = random.Random(a.seed)
    out = []
    for r in rng.sample(acked, min(a.replays, len(acked))):
        body = dict(r["body"])
        if r["command"].startswith("partition/") and token:
            body["access_token"] = token
        rep = c.request(r["command"], body, timeout=10)
        out.append({"request_id": r["request_id"], "reply": rep.raw})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=["setup", "run", "snapshot"])
    p.add_argument("--broker", required=True)
    p.add_argument("--source", default="ha")
    p.add_argument("--providers", type=int, default=2)
    p.add_argument("--token-file")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--stop-file")
    p.add_argument("--out")
    p.add_argument("--ops", help="snapshot: the run's DIR (partitions, replays)")
    p.add_argument("--seed", default=str(random.randrange(1 << 30)))
    p.add_argument("--attempt-s", type=float, default=1.5)
    p.add_argument("--resend-s", type=float, default=0.5)
    p.add_argument("--attempts", type=int, default=3)
    p.add_argument("--ttl-min", type=int, default=1)
    p.add_argument("--ttl-max", type=int, default=4)
    p.add_argument("--settle-s", type=float, default=20)
    p.add_argument("--replays", type=int, default=30)
    a = p.parse_args()
    {"setup": cmd_setup, "run": cmd_run, "snapshot": cmd_snapshot}[a.mode](a)


if __name__ == "__main__":
    main()
