# SPDX-License-Identifier: MIT
"""Summaries as the agent publishes them (schemas/examples/state/summary/)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from partreg import Summary, SummaryError, UnsupportedFormat
from partreg._protocol import WaitState
from partreg._time import parse_us
from partreg.errors import BlockerFailed

from .conftest import REPO

EXAMPLES = REPO / "schemas" / "examples" / "state" / "summary"


def example(rel: str) -> str:
    return (EXAMPLES / rel).read_text()


def test_orders_example() -> None:
    s = Summary.parse(example("valid/orders.json"))
    assert (s.v, s.source, s.seq, s.epoch, s.truncated) == (2, "orders", 42, 3, False)
    assert s.ready == [
        (dt.datetime(2023, 1, 1, tzinfo=dt.UTC), dt.datetime(2023, 1, 2, tzinfo=dt.UTC))
    ]
    locked, failed, pending = s.blocked
    assert locked.state == "locked" and locked.count == 1 and locked.since is not None
    assert locked.expires_at == dt.datetime(2023, 1, 2, 4, 4, 5, 123456, tzinfo=dt.UTC)
    assert failed.reason == "lease_expired" and failed.expires_at is None
    assert pending.count == 30 and pending.since is None
    assert pending.end == dt.datetime(2023, 2, 3, tzinfo=dt.UTC)
    # A run of 30 pending days blocks any window that touches one of them.
    r = s.readiness("2023-01-20", "2023-01-21")
    assert not r.ready and r.nblockers == 1 and r.blockers[0] is pending
    assert r.ready_through is None
    assert s.readiness("2023-01-01", "2023-01-02").ready
    r = s.readiness(dt.date(2023, 1, 1), dt.date(2023, 1, 3))
    assert not r.ready and r.ready_through == dt.datetime(2023, 1, 2, tzinfo=dt.UTC)
    assert r.gaps == [
        (dt.datetime(2023, 1, 2, tzinfo=dt.UTC), dt.datetime(2023, 1, 3, tzinfo=dt.UTC))
    ]


def test_new_source_example() -> None:
    s = Summary.parse(example("valid/new-source.json").encode())
    assert not s.readiness("2023-01-01", "2023-01-02").ready


def test_without_v_is_format_1() -> None:
    # The schema wants v; a reader takes a message without it as format 1
    # (and, as libpartreg, a count where there is one, 1 where there is none).
    s = Summary.parse(example("invalid/schema--format-1-without-v.json"))
    assert s.v == 1 and [b.count for b in s.blocked] == [1, 1, 30]
    o = json.loads(example("invalid/schema--format-1-without-v.json"))
    for b in o["blocked"]:
        del b["count"]
    assert [b.count for b in Summary.parse(o).blocked] == [1, 1, 1]


@pytest.mark.parametrize("name", ["schema--run-of-zero.json", "schema--range-of-three.json"])
def test_refused_examples(name: str) -> None:
    with pytest.raises(SummaryError):
        Summary.parse(example(f"invalid/{name}"))


@pytest.mark.parametrize(
    "text", ["", "[]", "nope", '{"ready": []}', '{"ready": [], "blocked": {}}', b"\xff"]
)
def test_not_summaries(text: str | bytes) -> None:
    with pytest.raises(SummaryError):
        Summary.parse(text)


def test_newer_format_refused_loudly() -> None:
    with pytest.raises(UnsupportedFormat) as e:
        Summary.parse({"v": 3, "ready": [], "blocked": []})
    assert e.value.code == "unsupported_format"


def _s(epoch: int, seq: int) -> Summary:
    return Summary.parse({"v": 2, "seq": seq, "epoch": epoch, "ready": [], "blocked": []})


def test_stale_by_epoch_then_seq() -> None:
    assert _s(1, 5).newer_than(None)
    assert _s(1, 5).newer_than(_s(1, 5))
    assert _s(1, 6).newer_than(_s(1, 5))
    assert not _s(1, 4).newer_than(_s(1, 5))
    assert _s(2, 1).newer_than(_s(1, 5))
    assert not _s(1, 9).newer_than(_s(2, 5))


def _summary(seq: int, epoch: int, ready: bool, truncated: bool = False) -> bytes:
    day = ["2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z"]
    blocked = (
        []
        if ready
        else [
            {
                "start": day[0],
                "end": day[1],
                "provider": "p",
                "state": "failed",
                "count": 1,
                "reason": "boom",
            }
        ]
    )
    o = {
        "v": 2,
        "source": "s",
        "seq": seq,
        "epoch": epoch,
        "ready": [day] if ready else [],
        "blocked": blocked,
        "truncated": truncated,
    }
    return json.dumps(o).encode()


def test_wait_state_drops_stale_copies() -> None:
    a, b = parse_us("2030-01-01"), parse_us("2030-01-02")
    assert a is not None and b is not None
    w = WaitState("partreg/v1", "s", a, b, fail_on_failed=False)
    w.take("partreg/v1/agent/status", b'{"status": "offline", "at": "2030-01-01T00:00:00Z"}')
    assert w.agent_known and not w.agent_online
    w.take("partreg/v1/state/s", _summary(7, 2, ready=False))
    assert not w.ready and "failed by p" in w.describe() and "agent offline" in w.describe()
    # An older copy (a bridge replaying a retained message) changes nothing...
    w.take("partreg/v1/state/s", _summary(9, 1, ready=True))
    assert not w.ready
    # ...a newer one does.
    w.take("partreg/v1/state/s", _summary(8, 2, ready=True))
    assert w.ready
    # A truncated summary is for the agent to decide.
    w.take("partreg/v1/state/s", _summary(9, 2, ready=True, truncated=True))
    assert w.ask


def test_wait_state_fail_on_failed() -> None:
    a, b = parse_us("2030-01-01"), parse_us("2030-01-02")
    assert a is not None and b is not None
    w = WaitState("partreg/v1", "s", a, b, fail_on_failed=True)
    with pytest.raises(BlockerFailed) as e:
        w.take("partreg/v1/state/s", _summary(7, 2, ready=False))
    assert e.value.details is not None and e.value.details["reason"] == "boom"
