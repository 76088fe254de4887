# SPDX-License-Identifier: MIT
"""wait(): readiness from the retained summary, no polling."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from typing import Any

import pytest

import partreg

from .conftest import SANITIZED, Source, Stack, needs_agent, new_source

pytestmark = needs_agent


def day(n: int) -> str:
    return f"2023-01-{n:02d}T00:00:00Z"


def make_ready(c: partreg.Client, s: Source, a: str, b: str) -> None:
    f = c.partition.lock(s.name, "p", a, b, token=s.token)["fence"]
    c.partition.unlock(s.name, "p", a, b, fence=f, token=s.token)


def test_ready_at_once(client: partreg.Client, src: Source) -> None:
    make_ready(client, src, day(1), day(3))
    t0 = time.monotonic()
    r = client.wait(src.name, "2023-01-01", "2023-01-02", timeout=5)
    assert r.ready and r.seq > 0 and time.monotonic() - t0 < 1.0
    assert r.ready_through is not None and r.gaps == []


def test_wakes_on_unlock(
    client: partreg.Client, src: Source, stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The latency from sending the unlock to wait() returning, five times:
    one broker hop after the agent's commit."""
    lat, replies = [], []
    with stack.client() as waiter_client:
        for n in range(1, 6):
            f = client.partition.lock(src.name, "p", day(n), day(n + 1), token=src.token)["fence"]
            got: dict[str, Any] = {}

            def run(n: int = n, got: dict[str, Any] = got) -> None:
                got["r"] = waiter_client.wait(src.name, day(n), day(n + 1), timeout=20)
                got["t"] = time.monotonic()

            t = threading.Thread(target=run)
            t.start()
            time.sleep(0.3)  # subscribed, and waiting on the locked day
            assert "r" not in got
            t_unlock = time.monotonic()
            client.partition.unlock(src.name, "p", day(n), day(n + 1), fence=f, token=src.token)
            t_reply = time.monotonic()
            t.join()
            assert got["r"].ready
            lat.append(got["t"] - t_unlock)
            replies.append(t_reply - t_unlock)
    with capsys.disabled():
        print(
            f"\nwait() wake latency after unlock (5 runs): median "
            f"{statistics.median(lat) * 1e3:.1f} ms, max {max(lat) * 1e3:.1f} ms "
            f"(the unlock's own reply: median {statistics.median(replies) * 1e3:.1f} ms, "
            f"max {max(replies) * 1e3:.1f} ms)"
        )
    # One broker hop after the commit; the sanitizer build's agent is slower.
    assert max(lat) < (3.0 if SANITIZED else 1.0)


def test_timeout_says_what_it_waits_for(client: partreg.Client, src: Source) -> None:
    client.partition.lock(src.name, "p", day(1), day(2), token=src.token)
    t0 = time.monotonic()
    with pytest.raises(partreg.Timeout) as e:
        client.wait(src.name, day(1), day(3), timeout=0.8)
    assert 0.7 < time.monotonic() - t0 < 3
    assert "locked by p" in e.value.message and "no ready partition" in e.value.message


def test_unknown_source(client: partreg.Client) -> None:
    t0 = time.monotonic()
    with pytest.raises(partreg.NotFound) as e:
        client.wait("no-such-source", day(1), day(2), timeout=10)
    assert e.value.code == "unknown_source" and time.monotonic() - t0 < 5


def test_fail_on_failed(client: partreg.Client, src: Source) -> None:
    f = client.partition.lock(src.name, "p", day(1), day(2), token=src.token)["fence"]
    client.partition.fail(src.name, "p", day(1), day(2), fence=f, reason="boom", token=src.token)
    with pytest.raises(partreg.BlockerFailed) as e:
        client.wait(src.name, day(1), day(2), timeout=5, fail_on_failed=True)
    assert e.value.details is not None and e.value.details["reason"] == "boom"
    with pytest.raises(partreg.Timeout):
        client.wait(src.name, day(1), day(2), timeout=0.5)


def test_bad_interval_refused_locally(client: partreg.Client) -> None:
    with pytest.raises(partreg.InvalidInput) as e:
        client.wait("x", day(2), day(1), timeout=1)
    assert e.value.code == "invalid_interval"


async def test_async_wait(stack: Stack) -> None:
    with stack.client() as c:
        s = new_source(c)
        f = c.partition.lock(s.name, "p", day(1), day(2), token=s.token)["fence"]
    async with stack.async_client() as ac:
        task = asyncio.create_task(ac.wait(s.name, day(1), day(2), timeout=10))
        await asyncio.sleep(0.3)
        assert not task.done()
        t0 = time.monotonic()
        await ac.partition.unlock(s.name, "p", day(1), day(2), fence=f, token=s.token)
        r = await task
        assert r.ready and time.monotonic() - t0 < 1.0
        with pytest.raises(partreg.Timeout):
            await ac.wait(s.name, day(1), day(3), timeout=0.5)
        with pytest.raises(partreg.NotFound):
            await ac.wait("no-such-source", day(1), day(2), timeout=10)
        summary = await ac.summary(s.name)
        assert summary is not None and summary.readiness(day(1), day(2)).ready


async def test_async_wait_ends_at_once_when_every_task_is_cancelled(stack: Stack) -> None:
    """As Airflow's triggerer stopping (asyncio cancelling every task at
    once, the connection's too): a wait() ends without awaiting an UNSUBACK
    that nothing will read (it waited the client's whole timeout, 10 s)."""
    with stack.client() as c:
        s = new_source(c)
        c.partition.lock(s.name, "p", day(1), day(2), token=s.token)
    ac = stack.async_client(timeout=10)
    await ac.connect()
    try:
        task = asyncio.create_task(ac.wait(s.name, day(1), day(2)))
        await asyncio.sleep(0.5)
        assert not task.done()
        conn = ac._task
        assert conn is not None
        t0 = time.monotonic()
        task.cancel()
        conn.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t0 < 1.0
    finally:
        await ac.close()


@pytest.mark.agent_flags("--summary-max", "1")
async def test_truncated_summary_asks_the_agent(own_stack: Stack) -> None:
    """With more ranges than the agent lists, the summary says truncated and
    wait() asks readiness/query, again on every new summary."""
    with own_stack.client() as c:
        s = new_source(c)
        for n in (1, 3, 10, 12):
            make_ready(c, s, day(n), day(n + 1))
        summary = c.summary(s.name)
        assert summary is not None and summary.truncated
        # Ready, although the summary alone cannot tell.
        r = c.wait(s.name, day(1), day(2), timeout=5)
        assert r.ready and not r.truncated
        # Not ready until day 2 is: the summary stays truncated all along.
        f = c.partition.lock(s.name, "p", day(2), day(3), token=s.token)["fence"]
        got: dict[str, Any] = {}
        t = threading.Thread(
            target=lambda: got.setdefault("r", c.wait(s.name, day(1), day(4), timeout=15))
        )
        t.start()
        await asyncio.sleep(0.5)
        assert "r" not in got
        c.partition.unlock(s.name, "p", day(2), day(3), fence=f, token=s.token)
        t.join()
        assert got["r"].ready
        assert (s2 := c.summary(s.name)) is not None and s2.truncated
    async with own_stack.async_client() as ac:
        ar = await ac.wait(s.name, day(1), day(4), timeout=5)
        assert ar.ready
