#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the hand-made histories of ha_check.py's self-test (this
directory's *.json): one good history, and copies of it each broken in one
way, with the property the checker must report ("expect"; it may report
more). Run it after changing a case; the JSON files are committed.

The good history, on source h, provider p, days D1 and D2 (times in ms from
T0; the agent's `at` inside each command's [invoke, complete]):
  client A: lock D1 -> fence 1 (ttl 2 s) at 10, renew at 500 (until 2500),
            unlock at 1000 (ready, version 1)
  client B: lock D1 -> fence 2 (ttl 1 s) at 1100; walks away: the agent
            records lease_expired at 2300
  client C: lock D1 refused already_locked at 1200 (B holds it); lock D1
            under session s1 -> fence 3 at 3000; session/abort s1 at 3500
  client D: lock D1 at 3990, no reply (unknown): applied at 4000, fence 4,
            expires 9000, recorded at 9100
  client E: lock D2 -> fence 5 at 9500; fail it at 9600, no reply
            (unknown): applied at 9601
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2030, 6, 1, tzinfo=UTC)
T0_US = int(T0.timestamp()) * 1_000_000
D1 = ("2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z")
D2 = ("2030-01-02T00:00:00Z", "2030-01-03T00:00:00Z")
HERE = Path(__file__).parent


def at(ms: float) -> str:
    t = T0 + timedelta(milliseconds=ms)
    s = t.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (s[:-7] if s.endswith(".000000") else s) + "Z"


def w(ms: float) -> int:
    return T0_US + int(ms * 1000)


def ev(seq: int, ms: float, typ: str, day: tuple[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"seq": seq, "epoch": 1, "at": at(ms), "type": typ, "source": "h"}
    if day:
        e.update(provider="p", start=day[0], end=day[1])
    e.update(kw)
    return e


def part(day: tuple[str, str], state: str, fence: int, version: int, seq: int, ms: float, **kw: Any) -> dict[str, Any]:
    p = {"source": "h", "provider": "p", "start": day[0], "end": day[1], "state": state,
         "version": version, "fence": fence, "since": at(ms), "updated_at": at(ms), "seq": seq}
    p.update(kw)
    return p


def op(client: str, kind: str, rid: str, inv: float, cmp: float | None, outcome: str,
       day: tuple[str, str] | None = D1, result: dict[str, Any] | None = None, code: str | None = None,
       **kw: Any) -> dict[str, Any]:
    o: dict[str, Any] = {"client": client, "op": kind, "request_id": rid, "source": "h",
                         "invoke_wall": w(inv), "invoke_mono": w(inv) - T0_US + 5_000_000,
                         "complete_wall": None if cmp is None else w(cmp),
                         "complete_mono": None if cmp is None else w(cmp) - T0_US + 5_000_000,
                         "attempts": 1 if outcome != "unknown" else 3, "outcome": outcome}
    if day:
        o.update(provider="p", start=day[0], end=day[1])
    o.update(kw)
    o["command"] = {"lock": "partition/lock", "renew": "partition/renew", "unlock": "partition/unlock",
                    "fail": "partition/fail", "abort": "session/abort"}[kind]
    replies = []
    if outcome == "ok":
        o["result"] = result
        replies = [{"ok": True, "status": 200, "request_id": rid, "result": result}]
    elif outcome == "refused":
        o["code"] = code
        o["status"] = 409
        replies = [{"ok": False, "status": 409, "request_id": rid, "error": {"code": code, "message": "…"}}]
    o["replies"] = replies
    return o


def good() -> dict[str, Any]:
    events = [
        ev(1, 0, "source_registered"),
        ev(2, 1, "provider_registered", provider="p"),
        ev(3, 10, "locked", D1, state="locked", fence=1, version=0),
        ev(4, 500, "renewed", D1, state="locked", fence=1, version=0),
        ev(5, 1000, "unlocked", D1, state="ready", fence=1, version=1),
        ev(6, 1100, "locked", D1, state="locked", fence=2, version=1),
        ev(7, 2300, "failed", D1, state="failed", fence=2, version=1, reason="lease_expired"),
        ev(8, 3000, "locked", D1, state="locked", fence=3, version=1),
        ev(9, 3500, "failed", D1, state="failed", fence=3, version=1, reason="abort:c1"),
        ev(10, 4000, "locked", D1, state="locked", fence=4, version=1),
        ev(11, 9100, "failed", D1, state="failed", fence=4, version=1, reason="lease_expired"),
        ev(12, 9500, "locked", D2, state="locked", fence=5, version=0),
        ev(13, 9601, "failed", D2, state="failed", fence=5, version=0, reason="fail:e1"),
    ]
    ops = [
        op("A", "lock", "a1", 9, 11, "ok", ttl_s=2,
           result=part(D1, "locked", 1, 0, 3, 10, expires_at=at(2010))),
        op("A", "renew", "a2", 499, 501, "ok", fence=1, ttl_s=2,
           result=part(D1, "locked", 1, 0, 4, 10, expires_at=at(2500))),
        op("A", "unlock", "a3", 999, 1001, "ok", fence=1, result=part(D1, "ready", 1, 1, 5, 1000)),
        op("B", "lock", "b1", 1099, 1101, "ok", ttl_s=1,
           result=part(D1, "locked", 2, 1, 6, 1100, expires_at=at(2100))),
        op("C", "lock", "c0", 1200, 1202, "refused", code="already_locked", ttl_s=5),
        op("C", "lock", "c1", 2999, 3001, "ok", ttl_s=5, session="s1",
           result=part(D1, "locked", 3, 1, 8, 3000, expires_at=at(8000))),
        op("C", "abort", "c2", 3499, 3501, "ok", day=None, session="s1", reason="abort:c1",
           result={"session": "s1", "failed": [part(D1, "failed", 3, 1, 9, 3500, reason="abort:c1")]}),
        op("D", "lock", "d1", 3990, None, "unknown", ttl_s=5),
        op("E", "lock", "e0", 9499, 9501, "ok", day=D2, ttl_s=5,
           result=part(D2, "locked", 5, 0, 12, 9500, expires_at=at(14500))),
        op("E", "fail", "e1", 9600, None, "unknown", day=D2, fence=5, reason="fail:e1"),
    ]
    final = [part(D1, "failed", 4, 1, 11, 9100, reason="lease_expired"),
             part(D2, "failed", 5, 0, 13, 9601, reason="fail:e1")]
    P = "partreg/v1"
    retained = {
        f"{P}/agent/status": {"status": "online", "epoch": 1},
        f"{P}/state/h": {"v": 2, "source": "h", "seq": 13, "epoch": 1},
    }
    for p in final:
        retained[f"{P}/state/h/partitions/{p['start']}/{p['end']}/p"] = dict(p, epoch=1)
    blockers = [{"provider": "p", "start": D1[0], "end": D1[1], "state": "failed"}]
    snapshot = {
        "prefix": P,
        "source": {"ok": True, "result": {"source": "h", "seq": 13}},
        "history": {"h": events},
        "partitions": {"h": final},
        "readiness": {"h": [{"start": D1[0], "end": D1[1],
                             "reply": {"ok": True, "result": {"ready": False, "blockers": blockers}}}]},
        "retained": retained,
        "replays": [{"request_id": "a3", "reply": {"ok": True, "status": 200, "request_id": "a3",
                                                   "replayed": True, "result": ops[2]["result"]}}],
    }
    return {"description": "the good history: every property holds", "expect": [], "ops": ops,
            "snapshot": snapshot}


def retime(o: dict[str, Any], inv: float, cmp: float) -> None:
    """Move an operation in time, both clocks alike."""
    o.update(invoke_wall=w(inv), invoke_mono=w(inv) - T0_US + 5_000_000,
             complete_wall=w(cmp), complete_mono=w(cmp) - T0_US + 5_000_000)


def shift_seqs(c: dict[str, Any], from_seq: int, by: int) -> None:
    """Renumber the replies' seqs from from_seq on (also an abort's partitions)."""
    for o in c["ops"]:
        r = o.get("result") or {}
        for x in [r, *(r.get("failed") or [])]:
            if "seq" in x and x["seq"] >= from_seq:
                x["seq"] += by
        for rep in o.get("replies") or []:
            rep["result"] = o.get("result")


def events_of(c: dict[str, Any]) -> list[dict[str, Any]]:
    return c["snapshot"]["history"]["h"]


def find(c: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(o for o in c["ops"] if o["request_id"] == rid)


def case(name: str, description: str, expect: list[str], change) -> None:  # type: ignore[no-untyped-def]
    c = copy.deepcopy(good())
    change(c)
    c["description"], c["expect"] = description, expect
    (HERE / f"{name}.json").write_text(json.dumps(c, indent=1) + "\n")


def swap_unlock_and_lock(c: dict[str, Any]) -> None:
    e = events_of(c)
    e[4], e[5] = dict(e[5], seq=5, at=at(1000)), dict(e[4], seq=6, at=at(1100))
    find(c, "b1")["result"]["seq"] = 5
    find(c, "a3")["result"]["seq"] = 6
    retime(find(c, "a3"), 1099, 1101)


def main() -> None:
    c = good()
    (HERE / "good.json").write_text(json.dumps(c, indent=1) + "\n")
    case("a1_two_holders", "the agent granted fence 2 before fence 1 was unlocked", ["A1"],
         swap_unlock_and_lock)
    case("a2_lease_ends_early", "fence 2's lease recorded expired at 1500, before the 2100 it was given",
         ["A2"], lambda c: events_of(c)[6].update(at=at(1500)))

    def client_overlap(c: dict[str, Any]) -> None:
        # A's unlock invoked only at 1200, but B's lock completed at 1101.
        retime(find(c, "a3"), 1200, 1202)
    case("a3_clients_overlap", "B's lock acknowledged while A still certainly held fence 1", ["A3"],
         client_overlap)

    def fence_twice(c: dict[str, Any]) -> None:
        events_of(c)[7]["fence"] = 2
        find(c, "c1")["result"]["fence"] = 2
        find(c, "c1")["replies"][0]["result"]["fence"] = 2
    case("b_fence_twice", "fence 2 granted again to C's lock after B's", ["B1", "B2", "B3"], fence_twice)

    def fence_back(c: dict[str, Any]) -> None:
        # E's lock of another day gets fence 0 < the earlier fences: per-source counter went back.
        events_of(c)[11]["fence"] = 0
        events_of(c)[12]["fence"] = 0
        find(c, "e0")["result"]["fence"] = 0
        find(c, "e1")["fence"] = 0
        c["snapshot"]["partitions"]["h"][1]["fence"] = 0
        for t, r in c["snapshot"]["retained"].items():
            if t.endswith(D2[1] + "/p"):
                r["fence"] = 0
    case("b_fence_goes_back", "a lock acknowledged after fence 4 gets a lower fence (after a restart, say)",
         ["B1", "B2"], fence_back)

    def lost(c: dict[str, Any]) -> None:
        del events_of(c)[4]
        for e in events_of(c)[4:]:
            e["seq"] -= 1
        shift_seqs(c, 6, -1)
        c["snapshot"]["source"]["result"]["seq"] = 12
        c["snapshot"]["retained"]["partreg/v1/state/h"]["seq"] = 12
        for p in c["snapshot"]["partitions"]["h"]:
            p["seq"] -= 1
        for t, r in c["snapshot"]["retained"].items():
            if "/partitions/" in t:
                r["seq"] -= 1
    case("c1_ack_lost", "A's acknowledged unlock is not in the history (lost after a kill -9)", ["C1"], lost)

    def renew_twice(c: dict[str, Any]) -> None:
        e = events_of(c)
        e.insert(4, ev(5, 600, "renewed", D1, state="locked", fence=1, version=0))
        for x in e[5:]:
            x["seq"] += 1
        shift_seqs(c, 5, 1)
        c["snapshot"]["source"]["result"]["seq"] = 14
        c["snapshot"]["retained"]["partreg/v1/state/h"]["seq"] = 14
        for p in c["snapshot"]["partitions"]["h"]:
            p["seq"] += 1
        for t, r in c["snapshot"]["retained"].items():
            if "/partitions/" in t:
                r["seq"] += 1
    case("c2_applied_twice", "A's renew (acknowledged once) applied twice: an extra renewed event",
         ["C2"], renew_twice)

    def fail_twice(c: dict[str, Any]) -> None:
        events_of(c).append(ev(14, 9700, "failed", D2, state="failed", fence=5, version=0, reason="fail:e1"))
        c["snapshot"]["source"]["result"]["seq"] = 14
        c["snapshot"]["retained"]["partreg/v1/state/h"]["seq"] = 14
    case("c2_fail_twice", "E's fail (no reply) applied twice: its unique reason in two events",
         ["C2"], fail_twice)

    def replay_differs(c: dict[str, Any]) -> None:
        c["snapshot"]["replays"][0]["reply"]["result"] = dict(find(c, "a3")["result"], version=2)
    case("c3_replay_differs", "A's unlock, resent at the end, answered with another reply", ["C3"],
         replay_differs)
    case("d1_summary_behind", "the retained summary stays at seq 12 (a republish was lost)", ["D1"],
         lambda c: c["snapshot"]["retained"]["partreg/v1/state/h"].update(seq=12))

    def stale_partition(c: dict[str, Any]) -> None:
        for t, r in c["snapshot"]["retained"].items():
            if t.endswith(D1[1] + "/p"):
                r.update(state="locked", seq=10)
    case("d2_retained_stale", "D1's retained message still says locked (seq 10)", ["D2"], stale_partition)
    case("d4_readiness_wrong", "readiness/query says D1 is ready while it is failed", ["D4"],
         lambda c: c["snapshot"]["readiness"]["h"][0]["reply"]["result"].update(ready=True, blockers=[]))
    case("e1_phantom_holder", "C's lock refused already_locked at 2500, when nobody held D1", ["E1"],
         lambda c: retime(find(c, "c0"), 2500, 2502))

    def stale(c: dict[str, Any]) -> None:
        c["ops"].append(op("A", "renew", "a9", 700, 702, "refused", code="stale_fence", fence=1, ttl_s=2))
    case("e2_stale_fence_refused", "A's renew refused stale_fence while fence 1 was D1's lock", ["E2"], stale)


if __name__ == "__main__":
    main()
