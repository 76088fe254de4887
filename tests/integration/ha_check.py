#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The HA checker: judges a recorded history of client operations against
the agent's authoritative record (tests/integration/HA.md).

    ha_check.py --ops DIR --snapshot FILE [--skew-us N] [--json OUT]
    ha_check.py --case FILE            one hand-made case ({ops, snapshot, expect})
    ha_check.py --self-test DIR        every case under DIR (ha_histories/)

Inputs: DIR/c*.jsonl (ha_workload.py run: one record per request_id) and
FILE (ha_workload.py snapshot: history/query, partition/list, source/get,
readiness/query answers, the retained messages, replays). Python stdlib only.

Properties (each violation names its property, the offending operations and
events; exit status 1 when there is any):

  H   the history is well formed: per source, seqs strictly rising and
      contiguous, epochs never going back along seq (with --writers many,
      several agents of the etcd backend write, each stamping its own
      epoch: not checked); the history ends at the source's seq.
  T   the client clocks are usable: wall - monotonic stays within 50 ms over
      the run (a stepped wall clock would make the time checks meaningless).
  A1  one holder at a time (agent record): per partition, along seq, a
      `locked` comes only when no lock is held (the previous one ended by
      `unlocked`, `failed` or `deleted`); `renewed` and `unlocked` carry the
      current holder's fence; a `failed` with a fence ends that holder only.
  A2  no lease ends early: a `failed` event with reason lease_expired comes
      at or after the latest expires_at any acknowledged lock or renew of
      that fence was given.
  A3  one holder at a time (client view): each acknowledged lock is
      certainly held from its reply until the earliest of: the latest
      acknowledged expires_at of its fence, the invocation of an unlock or
      fail of its fence or of a session/abort of its session that was not
      refused. These intervals never overlap for two fences of a partition.
  B1  fences strictly rise along seq over all `locked` events of a source
      (the documented per-source counter: also per partition in grant
      order, across restarts).
  B2  real-time order: an acknowledged lock that completed before another
      was invoked has the lower fence, per partition and per source.
  B3  two acknowledged locks (two request_ids) never share a fence.
  C1  every acknowledged command is in the history exactly where its reply
      says: the event at the reply's seq has the command's type, partition,
      fence, state and version (a session/abort: one `failed` event with its
      reason per partition it names), at a time within the command's
      [invoke, complete]; no two request_ids claim one seq.
  C2  nothing applied twice, nothing invented: every event is accounted for
      once -- by the set-up (source/provider registered), by an acknowledged
      command (C1), by the agent (lease_expired), or by one distinct
      unknown-outcome command of its type, partition and fence invoked
      before it (a maximum bipartite matching). A fail or abort carries a
      unique reason, so its events are counted exactly: a fail's reason in
      at most one event, an abort's reason at one commit time and once per
      partition.
  C3  replays: every reply to one request_id is the same, and resending an
      acknowledged command at the end returns its first reply, marked
      replayed (the snapshot's replays).
  D1  the retained summary has the agent's final seq, and the agent's
      current epoch; the retained agent status is online.
  D2  every partition's retained message equals partition/list's (state,
      version, fence, seq, expires_at, reason); a retained partition
      topic the agent does not list is at most a tombstone.
  D3  the final partitions are what the last event of each says (state,
      fence, version).
  D4  readiness/query agrees with the final partitions (ready, blockers).
  E1  no impossible refusal: a lock refused already_locked overlapped (in
      time) a lock held per the agent's record (with --writers many, a lock
      counts as held until the latest time its end may have taken effect:
      the reply to the command that ended it, else 6 s after the event's
      `at`, since another agent may read the state before that command's
      etcd transaction commits).
  E2  no impossible refusal: a renew, unlock or fail refused stale_fence was
      not sent while its own fence was the partition's only lock throughout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

INF = float("inf")
WRITE_WINDOW_US = 6_000_000  # --writers many: the latest a batch commits after its `at`
TYPE_OF = {"lock": "locked", "renew": "renewed", "unlock": "unlocked", "fail": "failed"}
TERMINAL = {"unlocked", "failed", "deleted"}


def us(t: str | None) -> float:
    """A canonical time (2030-01-01T00:00:00.123456Z) in microseconds."""
    if t is None:
        return INF
    d = datetime.strptime(t.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z" if "." in t else "%Y-%m-%dT%H:%M:%S%z")
    return int(d.astimezone(UTC).timestamp()) * 1_000_000 + d.microsecond


def pk(x: dict[str, Any], source: str | None = None) -> tuple[str, str, str, str]:
    return (x.get("source") or source or "", x["provider"], x["start"], x["end"])


def brief(o: dict[str, Any]) -> dict[str, Any]:
    """An operation, shortly, for a report."""
    keep = ("client", "op", "request_id", "provider", "start", "fence", "session", "reason",
            "invoke_wall", "complete_wall", "attempts", "outcome", "code")
    b = {k: o[k] for k in keep if k in o}
    r = o.get("result") or {}
    for k in ("fence", "seq", "state", "version", "expires_at"):
        if k in r:
            b[f"r.{k}"] = r[k]
    return b


class Checker:
    def __init__(self, ops: list[dict[str, Any]], snap: dict[str, Any], skew_us: int = 1000,
                 many_writers: bool = False) -> None:
        self.many_writers = many_writers
        self.completed_by_seq: dict[tuple[Any, int], float] | None = None
        self.ops = ops
        self.snap = snap
        self.skew = skew_us
        self.violations: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.events: dict[str, list[dict[str, Any]]] = {
            s: sorted(ev, key=lambda e: e["seq"]) for s, ev in (snap.get("history") or {}).items()
        }
        self.by_seq = {(s, e["seq"]): e for s, ev in self.events.items() for e in ev}
        for o in ops:
            if o["op"] in TYPE_OF:
                o["_pk"] = pk(o)

    def bad(self, prop: str, msg: str, ops: list[dict[str, Any]] = (), events: list[Any] = ()) -> None:  # type: ignore[assignment]
        self.violations.append({"property": prop, "message": msg,
                                "ops": [brief(o) for o in ops][:6], "events": list(events)[:6]})

    def acked(self, *kinds: str) -> list[dict[str, Any]]:
        return [o for o in self.ops if o["outcome"] == "ok" and o["op"] in kinds]

    # ---- H, T

    def check_history(self) -> None:
        for s, ev in self.events.items():
            seqs = [e["seq"] for e in ev]
            if seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                gaps = [(a, b) for a, b in zip(seqs, seqs[1:], strict=False) if b != a + 1]
                self.bad("H", f"{s}: history seqs not contiguous: {gaps[:5]}")
            if seqs and seqs[0] != 1:
                self.bad("H", f"{s}: history starts at seq {seqs[0]}")
            back = [(a["seq"], b["seq"]) for a, b in zip(ev, ev[1:], strict=False) if b["epoch"] < a["epoch"]]
            if back and not self.many_writers:
                self.bad("H", f"{s}: epoch goes back along seq at {back[:5]}")
            src = (self.snap.get("source") or {}).get("result") or {}
            if src.get("source") == s and seqs and src.get("seq") != seqs[-1]:
                self.bad("H", f"{s}: history ends at seq {seqs[-1]}, source/get says {src.get('seq')}")

    def check_clock(self) -> None:
        offs = [o["invoke_wall"] - o["invoke_mono"] for o in self.ops if "invoke_mono" in o]
        if offs and max(offs) - min(offs) > 50_000:
            self.bad("T", f"wall clock moved against the monotonic one by {(max(offs) - min(offs)) / 1000:.1f} ms during the run")

    # ---- A

    def check_agent_exclusion(self) -> None:
        for s, ev in self.events.items():
            holder: dict[tuple, dict[str, Any]] = {}
            for e in ev:
                if "provider" not in e or "start" not in e:
                    continue
                k = pk(e, s)
                h = holder.get(k)
                t, f = e["type"], e.get("fence")
                if t == "locked":
                    if h is not None:
                        self.bad("A1", f"{k}: fence {f} locked while fence {h['fence']} still held", events=[h, e])
                    holder[k] = e
                elif t in ("renewed", "unlocked"):
                    if h is None or h["fence"] != f:
                        self.bad("A1", f"{k}: {t} fence {f} while the holder is {h and h['fence']}", events=[h, e])
                    if t == "unlocked":
                        holder.pop(k, None)
                elif t == "failed":
                    if h is not None and f is not None and f != h["fence"]:
                        self.bad("A1", f"{k}: failed fence {f} while the holder is {h['fence']}", events=[h, e])
                    else:
                        holder.pop(k, None)
                elif t == "deleted":
                    holder.pop(k, None)

    def known_expiry(self) -> dict[tuple, float]:
        exp: dict[tuple, float] = defaultdict(lambda: -INF)
        for o in self.acked("lock", "renew"):
            r = o["result"]
            if r.get("expires_at"):
                key = (o["_pk"], r["fence"])
                exp[key] = max(exp[key], us(r["expires_at"]))
        return exp

    def check_lease_expiry(self) -> None:
        exp = self.known_expiry()
        for s, ev in self.events.items():
            for e in ev:
                if e["type"] == "failed" and e.get("reason") == "lease_expired":
                    want = exp.get((pk(e, s), e.get("fence")), -INF)
                    if us(e["at"]) < want:
                        self.bad("A2", f"{pk(e, s)} fence {e.get('fence')}: lease expired at {e['at']}, "
                                 f"{(want - us(e['at'])) / 1000:.1f} ms before the expires_at a client was given",
                                 events=[e])

    def check_client_exclusion(self) -> None:
        exp = self.known_expiry()
        releases: dict[tuple, float] = defaultdict(lambda: INF)
        for o in self.ops:
            if o["op"] in ("unlock", "fail") and o["outcome"] != "refused" and o.get("fence") is not None:
                key = (o["_pk"], o["fence"])
                releases[key] = min(releases[key], o["invoke_wall"])
        aborts = [o for o in self.ops if o["op"] == "abort" and o["outcome"] != "refused"]
        held: dict[tuple, list[tuple[float, float, dict[str, Any]]]] = defaultdict(list)
        for o in self.acked("lock"):
            f = o["result"]["fence"]
            end = min(exp.get((o["_pk"], f), INF), releases[(o["_pk"], f)])
            if o.get("session"):
                for a in aborts:
                    if a.get("session") == o["session"]:
                        end = min(end, a["invoke_wall"])
            held[o["_pk"]].append((o["complete_wall"], end, o))
        for k, iv in held.items():
            iv.sort(key=lambda x: x[0])
            best: tuple[float, float, dict[str, Any]] | None = None
            for cur in iv:
                if best is not None and cur[0] < best[1] - self.skew and \
                        cur[2]["result"]["fence"] != best[2]["result"]["fence"]:
                    self.bad("A3", f"{k}: fences {best[2]['result']['fence']} and {cur[2]['result']['fence']} "
                             f"both certainly held for {(best[1] - cur[0]) / 1000:.1f} ms", ops=[best[2], cur[2]])
                if cur[0] < cur[1] and (best is None or cur[1] > best[1]):
                    best = cur

    # ---- B

    def check_fences(self) -> None:
        for s, ev in self.events.items():
            last = None
            for e in ev:
                if e["type"] == "locked":
                    if last is not None and e["fence"] <= last["fence"]:
                        self.bad("B1", f"{s}: fence {e['fence']} at seq {e['seq']} after fence {last['fence']} at seq {last['seq']}",
                                 events=[last, e])
                    last = e
        locks = self.acked("lock")
        for name, keyf in (("partition", lambda o: o["_pk"]), ("source", lambda o: o["_pk"][0])):
            groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
            for o in locks:
                groups[keyf(o)].append(o)
            for g in groups.values():
                done = sorted(g, key=lambda o: o["complete_wall"])
                inv = sorted(g, key=lambda o: o["invoke_wall"])
                i, top = 0, None
                for b in inv:
                    while i < len(done) and done[i]["complete_wall"] < b["invoke_wall"] - self.skew:
                        if top is None or done[i]["result"]["fence"] > top["result"]["fence"]:
                            top = done[i]
                        i += 1
                    if top is not None and top["request_id"] != b["request_id"] and \
                            b["result"]["fence"] <= top["result"]["fence"]:
                        self.bad("B2", f"per {name}: fence {b['result']['fence']} granted after fence "
                                 f"{top['result']['fence']} had been acknowledged", ops=[top, b])
        seen: dict[tuple, dict[str, Any]] = {}
        for o in locks:
            key = (o["_pk"][0], o["result"]["fence"])
            if key in seen and seen[key]["request_id"] != o["request_id"]:
                self.bad("B3", f"fence {key[1]} of {key[0]} acknowledged to two locks", ops=[seen[key], o])
            seen.setdefault(key, o)

    # ---- C

    def check_acked(self) -> dict[tuple, str]:
        claimed: dict[tuple, str] = {}

        def claim(o: dict[str, Any], s: str, seq: int, want: dict[str, Any]) -> None:
            e = self.by_seq.get((s, seq))
            if e is None:
                self.bad("C1", f"acknowledged {o['op']} (seq {seq}) is not in the history: lost", ops=[o])
                return
            diff = {k: (v, e.get(k)) for k, v in want.items() if e.get(k) != v}
            if diff:
                self.bad("C1", f"acknowledged {o['op']}: the event at seq {seq} differs: {diff}", ops=[o], events=[e])
            at = us(e["at"])
            if not (o["invoke_wall"] - self.skew <= at <= o["complete_wall"] + self.skew):
                self.bad("C1", f"acknowledged {o['op']}: its event (seq {seq}) is at {e['at']}, outside the "
                         "command's [invoke, complete]", ops=[o], events=[e])
            prev = claimed.get((s, seq))
            if prev is not None and prev != o["request_id"]:
                self.bad("C1", f"seq {seq} claimed by two commands", ops=[o], events=[e])
            claimed[(s, seq)] = o["request_id"]

        for o in self.acked("lock", "renew", "unlock", "fail"):
            r = o["result"]
            want = {"type": TYPE_OF[o["op"]], "provider": o["provider"], "start": o["start"],
                    "end": o["end"], "state": r.get("state"), "fence": r.get("fence"), "version": r.get("version")}
            if o["op"] != "lock":
                want["fence"] = o.get("fence", r.get("fence"))
            if o["op"] == "fail" and o.get("reason"):
                want["reason"] = o["reason"]
            claim(o, o["source"], r["seq"], want)
        for o in self.acked("abort"):
            for p in o["result"].get("failed") or []:
                claim(o, p["source"], p["seq"], {"type": "failed", "provider": p["provider"],
                                                  "start": p["start"], "end": p["end"],
                                                  "fence": p.get("fence"), "reason": o.get("reason")})
        return claimed

    def check_accounted(self, claimed: dict[tuple, str]) -> None:
        by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
        free: list[tuple[str, dict[str, Any]]] = []
        for s, ev in self.events.items():
            for e in ev:
                if e["type"] in ("source_registered", "provider_registered", "token_rotated"):
                    continue
                if e["type"] == "failed" and e.get("reason"):
                    by_reason[e["reason"]].append(e)
                if (s, e["seq"]) in claimed:
                    continue
                if e["type"] == "failed" and e.get("reason") == "lease_expired":
                    continue
                free.append((s, e))
        # Unique reasons: a fail's at most once; an abort's in one commit, once per partition.
        for reason, evs in by_reason.items():
            if reason.startswith("fail:") and len(evs) > 1:
                self.bad("C2", f"fail {reason!r} applied {len(evs)} times", events=evs)
            if reason.startswith("abort:"):
                if len({e["at"] for e in evs}) > 1 or len({pk(e, e["source"]) for e in evs}) < len(evs):
                    self.bad("C2", f"session/abort {reason!r} applied more than once", events=evs)
        # The rest: matched to distinct unknown commands (Kuhn's augmenting paths).
        unknown = [o for o in self.ops if o["outcome"] == "unknown"]
        reasons = {o.get("reason"): o for o in unknown if o["op"] in ("fail", "abort")}

        def fits(o: dict[str, Any], s: str, e: dict[str, Any]) -> bool:
            if us(e["at"]) < o["invoke_wall"] - self.skew:
                return False
            if o["op"] == "abort":
                return e["type"] == "failed" and e.get("reason") == o.get("reason")
            if TYPE_OF.get(o["op"]) != e["type"] or o["_pk"] != pk(e, s):
                return False
            if o["op"] == "fail":
                return e.get("reason") == o.get("reason")
            return o["op"] == "lock" or o.get("fence") == e.get("fence")

        match: dict[int, int] = {}  # unknown op index -> free event index
        aborts_used: dict[int, set[int]] = defaultdict(set)
        cand = [[i for i, o in enumerate(unknown) if fits(o, s, e)] for s, e in free]

        def augment(j: int, seen: set[int]) -> bool:
            for i in cand[j]:
                if unknown[i]["op"] == "abort":  # an abort may fail many partitions
                    aborts_used[i].add(j)
                    return True
                if i in seen:
                    continue
                seen.add(i)
                if i not in match or augment(match[i], seen):
                    match[i] = j
                    return True
            return False

        for j, (s, e) in enumerate(free):
            if not augment(j, set()):
                why = "no command of its kind could have made it" if not cand[j] else \
                    "more events than commands that could have made them: one applied twice"
                self.bad("C2", f"{pk(e, s)}: {e['type']} fence {e.get('fence')} at seq {e['seq']} unaccounted for ({why})",
                         ops=[unknown[i] for i in cand[j]], events=[e])
        del reasons

    def check_replays(self) -> None:
        first = {}
        for o in self.ops:
            # (store_unavailable is no answer: a resend may still apply.)
            rs = [r for r in o.get("replies") or []
                  if (r.get("error") or {}).get("code") != "store_unavailable"]
            for r in rs[1:]:
                if r.get("ok") != rs[0].get("ok") or r.get("result") != rs[0].get("result") or \
                        r.get("error", {}).get("code") != rs[0].get("error", {}).get("code"):
                    self.bad("C3", "two different replies to one request_id", ops=[o])
            if rs:
                first[o["request_id"]] = (o, rs[0])
        for rp in self.snap.get("replays") or []:
            o, r0 = first.get(rp["request_id"], (None, None))
            r = rp["reply"]
            if r0 is None:
                continue
            if r.get("replayed") is not True or r.get("ok") != r0.get("ok") or r.get("result") != r0.get("result"):
                self.bad("C3", f"resent at the end, {rp['request_id']} was not replayed as first answered: {json.dumps(r)[:300]}",
                         ops=[o])

    # ---- D

    def check_converged(self) -> None:
        ret = self.snap.get("retained")
        if ret is None:
            self.notes.append("D: no retained state in the snapshot: not checked")
            return
        prefix = self.snap.get("prefix", "partreg/v1")
        src = (self.snap.get("source") or {}).get("result") or {}
        s = src.get("source")
        status = ret.get(f"{prefix}/agent/status") or {}
        if status.get("status") != "online":
            self.bad("D1", f"retained agent status is {status.get('status')!r}, not online")
        summ = ret.get(f"{prefix}/state/{s}") or {}
        if summ.get("seq") != src.get("seq"):
            self.bad("D1", f"retained summary of {s} at seq {summ.get('seq')}, the agent at seq {src.get('seq')}")
        if status.get("epoch") is not None and summ.get("epoch") != status.get("epoch"):
            self.bad("D1", f"retained summary of {s} from epoch {summ.get('epoch')}, the agent's is {status.get('epoch')}")
        parts = (self.snap.get("partitions") or {}).get(s, [])
        listed = set()
        for p in parts:
            t = f"{prefix}/state/{s}/partitions/{p['start']}/{p['end']}/{p['provider']}"
            listed.add(t)
            r = ret.get(t)
            if r is None:
                self.bad("D2", f"no retained message for {t}", events=[p])
                continue
            diff = {k: (p.get(k), r.get(k)) for k in ("state", "version", "fence", "seq", "expires_at", "reason")
                    if p.get(k) != r.get(k)}
            if diff:
                self.bad("D2", f"retained {t} differs from the agent's (agent, retained): {diff}")
        for t, r in ret.items():
            if t.startswith(f"{prefix}/state/{s}/partitions/") and t not in listed and \
                    (r or {}).get("state") != "deleted":
                self.bad("D2", f"retained {t} ({(r or {}).get('state')}) is no partition the agent lists")
        last: dict[tuple, dict[str, Any]] = {}
        for e in self.events.get(s, []):
            if "provider" in e and "start" in e:
                last[pk(e, s)] = e
        for p in parts:
            e = last.get(pk(p, s))
            if e is None:
                self.bad("D3", f"partition {pk(p, s)} has no event")
            elif (e.get("state"), e.get("fence", 0), e.get("version")) != (p["state"], p.get("fence", 0), p.get("version")):
                self.bad("D3", f"partition {pk(p, s)} is {p['state']}/{p.get('fence')}/{p.get('version')}, its last event says "
                         f"{e.get('state')}/{e.get('fence')}/{e.get('version')}", events=[e])
        for q in (self.snap.get("readiness") or {}).get(s, []):
            res = (q["reply"] or {}).get("result") or {}
            a, b = q["start"], q["end"]
            over = [p for p in parts if p["start"] < b and p["end"] > a and p["state"] != "deleted"]
            blockers = sorted(pk(p, s)[1:] for p in over if p["state"] != "ready")
            cover, ok = a, True
            for p in sorted((p for p in over if p["state"] == "ready"), key=lambda p: p["start"]):
                if p["start"] > cover:
                    break
                cover = max(cover, p["end"])
            ok = cover >= b and not blockers
            got_blockers = sorted((x["provider"], x["start"], x["end"]) for x in res.get("blockers") or [])
            if res.get("ready") != ok or got_blockers != blockers:
                self.bad("D4", f"readiness [{a}, {b}): agent says ready={res.get('ready')} blockers={got_blockers}, "
                         f"the partitions say ready={ok} blockers={blockers}")

    # ---- E

    def effect_latest(self, s: str, e: dict[str, Any]) -> float:
        """The latest time event e may have taken effect. One writer: its
        `at` (nobody sees the store between a batch's start and its
        commit). Several (--writers many): another agent may read the state
        before e's transaction commits, up to the reply to e's command (when
        a client was acknowledged for it), else up to WRITE_WINDOW_US after
        `at` (the agent's bound on one batch: retries stop after 4 s, and a
        commit takes etcd's 2 s deadline at most)."""
        at = us(e["at"])
        if not self.many_writers:
            return at
        if self.completed_by_seq is None:
            self.completed_by_seq = {}
            for o in self.ops:
                r = o.get("result") or {}
                if o["outcome"] == "ok" and "seq" in r and o.get("complete_wall") is not None:
                    self.completed_by_seq[(o.get("source"), r["seq"])] = o["complete_wall"]
        return max(at, self.completed_by_seq.get((s, e["seq"]), at + WRITE_WINDOW_US))

    def check_refusals(self) -> None:
        locks: dict[tuple, list[tuple[float, float, int]]] = defaultdict(list)
        for s, ev in self.events.items():
            cur: dict[tuple, list[Any]] = {}
            for e in ev:
                if "provider" not in e or "start" not in e:
                    continue
                k = pk(e, s)
                if e["type"] == "locked":
                    cur[k] = [us(e["at"]), INF, e["fence"]]
                    locks[k].append(cur[k])  # type: ignore[arg-type]
                elif e["type"] in TERMINAL and k in cur:
                    cur[k][1] = self.effect_latest(s, e)
                    del cur[k]
        for o in self.ops:
            if o["outcome"] != "refused" or o["op"] not in TYPE_OF:
                continue
            lo, hi = o["invoke_wall"] - self.skew, o["complete_wall"] + self.skew
            iv = locks.get(o["_pk"], [])
            if o.get("code") == "already_locked" and o["op"] == "lock":
                if not any(t0 <= hi and t1 >= lo for t0, t1, _ in iv):
                    self.bad("E1", "lock refused already_locked while no lock was held per the history", ops=[o])
            if o.get("code") == "stale_fence":
                mine = [x for x in iv if x[2] == o.get("fence")]
                if mine:
                    t0 = mine[0][0]
                    nxt = [x[0] for x in iv if x[0] > t0]
                    if t0 <= lo and (not nxt or min(nxt) > hi):
                        self.bad("E2", f"{o['op']} refused stale_fence while its fence {o['fence']} was the partition's lock",
                                 ops=[o])

    def run(self) -> list[dict[str, Any]]:
        self.check_history()
        self.check_clock()
        self.check_agent_exclusion()
        self.check_lease_expiry()
        self.check_client_exclusion()
        self.check_fences()
        self.check_accounted(self.check_acked())
        self.check_replays()
        self.check_converged()
        self.check_refusals()
        return self.violations

    def stats(self) -> dict[str, Any]:
        out: dict[str, int] = defaultdict(int)
        for o in self.ops:
            out[f"{o['op']}:{o['outcome']}" + (f":{o['code']}" if o.get("code") else "")] += 1
        n_ev = sum(len(v) for v in self.events.values())
        return {"ops": len(self.ops), "by_outcome": {k: out[k] for k in sorted(out)},
                "ok": sum(o["outcome"] == "ok" for o in self.ops),
                "refused": sum(o["outcome"] == "refused" for o in self.ops),
                "unknown": sum(o["outcome"] == "unknown" for o in self.ops),
                "retried": sum(o.get("attempts", 1) > 1 for o in self.ops),
                "replayed": sum(bool(o.get("replayed")) for o in self.ops),
                "events": n_ev, "replays_checked": len(self.snap.get("replays") or [])}


def load_ops(d: Path) -> list[dict[str, Any]]:
    ops = []
    for f in sorted(d.glob("c*.jsonl")):
        ops += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return ops


def report(vs: list[dict[str, Any]], out=sys.stdout) -> None:  # type: ignore[no-untyped-def]
    by: dict[str, int] = defaultdict(int)
    for v in vs:
        by[v["property"]] += 1
    for v in vs[:40]:
        print(f"VIOLATION {v['property']}: {v['message']}", file=out)
        for o in v["ops"]:
            print(f"    op    {json.dumps(o)}", file=out)
        for e in v["events"]:
            print(f"    event {json.dumps(e)}", file=out)
    if len(vs) > 40:
        print(f"... and {len(vs) - 40} more", file=out)
    print(f"violations: {dict(sorted(by.items())) or 'none'}", file=out)


def run_case(path: Path, quiet: bool = False) -> bool:
    case = json.loads(path.read_text())
    c = Checker(case["ops"], case["snapshot"], case.get("skew_us", 1000))
    vs = c.run()
    got = {v["property"] for v in vs}
    want = set(case["expect"])
    good = (want <= got) if want else not vs
    if not quiet or not good:
        print(f"{'ok' if good else 'NOT OK'} - {path.name}: expect {sorted(want) or 'no violation'}, "
              f"got {sorted(got) or 'none'} ({case.get('description', '')})")
        if not good or not quiet:
            for v in vs[:3]:
                print(f"      {v['property']}: {v['message']}")
    return good


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ops", type=Path)
    ap.add_argument("--snapshot", type=Path)
    ap.add_argument("--skew-us", type=int, default=1000,
                    help="tolerance between the clients' and the agent's clocks (one host: 1 ms)")
    ap.add_argument("--json", type=Path, help="write {stats, violations} here")
    ap.add_argument("--writers", choices=("one", "many"), default="one",
                    help="many: several agents write the history (the etcd backend)")
    ap.add_argument("--case", type=Path)
    ap.add_argument("--self-test", type=Path)
    a = ap.parse_args()
    if a.self_test or a.case:
        cases = sorted(a.self_test.glob("*.json")) if a.self_test else [a.case]
        results = [run_case(p) for p in cases]
        print(f"{sum(results)}/{len(results)} cases as expected")
        return 0 if all(results) and results else 1
    if not (a.ops and a.snapshot):
        ap.error("--ops and --snapshot (or --case, --self-test)")
    c = Checker(load_ops(a.ops), json.loads(a.snapshot.read_text()), a.skew_us, a.writers == "many")
    vs = c.run()
    st = c.stats()
    print(f"checked {st['ops']} operations ({st['ok']} ok, {st['refused']} refused, {st['unknown']} unknown; "
          f"{st['retried']} resent after a timeout, {st['replayed']} answered by a replay) against "
          f"{st['events']} events and {st['replays_checked']} end-of-run replays: {json.dumps(st['by_outcome'])}")
    for n in c.notes:
        print(f"note: {n}")
    report(vs)
    if a.json:
        a.json.write_text(json.dumps({"stats": st, "violations": vs}))
    return 1 if vs else 0


if __name__ == "__main__":
    sys.exit(main())
