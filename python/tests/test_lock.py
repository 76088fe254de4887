# SPDX-License-Identifier: MIT
"""partition_lock: a block of code under a partition's lock, as partreg run
runs a job: session, Last Will, renewals, unlock with metadata or fail."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

import partreg

from .conftest import Source, Stack, needs_agent, new_source

pytestmark = needs_agent

D1, D2, D3 = "2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z", "2023-01-03T00:00:00Z"


def partition(c: partreg.Client, s: Source, start: str = D1) -> dict[str, Any]:
    items = c.partition.list(s.name)["items"]
    (p,) = [i for i in items if i["start"] == start]
    return dict(p)


def test_unlock_with_metadata(client: partreg.Client, src: Source) -> None:
    with client.partition_lock(
        src.name, "p", D1, D2, ttl=30, metadata={"run": "r1"}, token=src.provider_token
    ) as lock:
        assert lock.fence == 1 and len(lock.session) == 36
        assert lock.result["state"] == "locked" and "session_digest" in lock.result
        # Consumers see it blocking while the body runs.
        assert not client.readiness.query(src.name, D1, D2)["ready"]
        lock.metadata["rows"] = 42
    assert (lock.result["state"], lock.result["version"]) == ("ready", 1)
    assert lock.result["metadata"] == {"run": "r1", "rows": 42}
    assert partition(client, src)["metadata"] == {"run": "r1", "rows": 42}
    assert client.wait(src.name, D1, D2, timeout=2).ready


def test_exception_fails_the_partition(client: partreg.Client, src: Source) -> None:
    with (
        pytest.raises(ValueError, match="bad rows: 3"),
        client.partition_lock(src.name, "p", D1, D2, token=src.token) as lock,
    ):
        raise ValueError("bad rows: 3")
    p = partition(client, src)
    assert (p["state"], p["reason"], p["fence"]) == ("failed", "bad rows: 3", lock.fence)


def test_refused_lock_runs_nothing(client: partreg.Client, src: Source) -> None:
    client.partition.lock(src.name, "p", D1, D2, token=src.token)
    ran = False
    with (
        pytest.raises(partreg.Conflict, match="already_locked"),
        client.partition_lock(src.name, "p", D1, D2, token=src.token),
    ):
        ran = True
    assert not ran


def test_renew_keeps_a_short_lease(client: partreg.Client, src: Source) -> None:
    """A 2 s lease held for 4 s: renewed every 2/3 s, it never runs out."""
    with client.partition_lock(src.name, "p", D1, D2, ttl=2, grace=5, token=src.token) as lock:
        time.sleep(4)
        assert not lock.lost.is_set()
        lock.check()
    assert lock.result["state"] == "ready"
    types = [e["type"] for e in client.history.query(src.name, start=D1, end=D2)["events"]]
    assert types[:2] == ["registered", "locked"] or types[0] == "locked"
    assert types.count("renewed") >= 4 and types[-1] == "unlocked"


def test_lost_lock_is_said(client: partreg.Client, src: Source) -> None:
    """The owner fails the partition under the body: the next renew is
    refused, lock.lost is set, and the exit raises LockLost (no unlock)."""
    with (
        pytest.raises(partreg.LockLost) as e,
        client.partition_lock(src.name, "p", D1, D2, ttl=3, token=src.token) as lock,
    ):
        client.partition.fail(src.name, "p", D1, D2, reason="owner says no", token=src.token)
        assert lock.lost.wait(5)
        with pytest.raises(partreg.LockLost):
            lock.check()
    assert e.value.code == "not_locked"
    assert partition(client, src)["reason"] == "owner says no"


async def test_async_lock(stack: Stack) -> None:
    with stack.client() as c:
        s = new_source(c)
    async with stack.async_client(token=s.token) as ac:
        async with ac.partition_lock(s.name, "p", D1, D2, metadata={"a": 1}) as lock:
            lock.metadata["b"] = 2
            await asyncio.sleep(0.1)
        assert (lock.result["state"], lock.result["metadata"]) == ("ready", {"a": 1, "b": 2})
        with pytest.raises(RuntimeError, match="no space"):
            async with ac.partition_lock(s.name, "p", D2, D3):
                raise RuntimeError("no space")
        items = (await ac.partition.list(s.name))["items"]
        assert [(i["state"], i.get("reason")) for i in items] == [
            ("ready", None),
            ("failed", "no space"),
        ]


async def test_async_lost_lock_cancels_the_body(stack: Stack) -> None:
    with stack.client() as c:
        s = new_source(c)
    async with stack.async_client(token=s.token) as ac:
        t0 = time.monotonic()
        with pytest.raises(partreg.LockLost):
            async with ac.partition_lock(s.name, "p", D1, D2, ttl=3):
                await ac.partition.fail(s.name, "p", D1, D2, reason="taken away")
                await asyncio.sleep(30)  # cancelled when the next renew is refused
        assert time.monotonic() - t0 < 5
        # The task goes on normally afterwards (its cancellation was taken back).
        await asyncio.sleep(0.01)
        assert asyncio.current_task() is not None
        assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


HOLDER = textwrap.dedent(
    """
    import sys, time, partreg
    url, source, token, asyncio_ = sys.argv[1:5]
    if asyncio_ == "1":
        import asyncio
        async def main():
            async with partreg.AsyncClient(url, use_env=False, token=token) as c:
                async with c.partition_lock(source, "p", "2023-01-01", "2023-01-02", grace=2) as lk:
                    print("locked", lk.fence, flush=True)
                    await asyncio.sleep(600)
        asyncio.run(main())
    else:
        with partreg.Client(url, use_env=False, token=token) as c:
            with c.partition_lock(source, "p", "2023-01-01", "2023-01-02", grace=2) as lk:
                print("locked", lk.fence, flush=True)
                time.sleep(600)
    """
)


@pytest.mark.parametrize("use_asyncio", [False, True], ids=["Client", "AsyncClient"])
def test_last_will_fails_a_killed_holder(
    client: partreg.Client,
    src: Source,
    stack: Stack,
    use_asyncio: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """kill -9 of a process inside partition_lock: the broker sends its Last
    Will (session/abort, grace 2 s) and the agent fails the partition with
    session_aborted, long before the 60 s lease would run out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTREG_")}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, stack.url, src.name, src.token, "1" if use_asyncio else "0"],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline().decode()
        assert line.startswith("locked"), line
        assert partition(client, src)["state"] == "locked"
        t_kill = time.monotonic()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        deadline = t_kill + 2 + 5
        while (p := partition(client, src))["state"] == "locked" and time.monotonic() < deadline:
            time.sleep(0.1)
        took = time.monotonic() - t_kill
    finally:
        holder.kill()
        holder.wait()
    assert (p["state"], p["reason"]) == ("failed", "session_aborted")
    assert took >= 1.5  # the grace: a Will alone fails nothing at once
    with capsys.disabled():
        print(f"\nkill -9 -> failed (session_aborted) in {took:.2f} s (grace 2 s)")


def test_bad_arguments(client: partreg.Client) -> None:
    with pytest.raises(ValueError, match="ttl"):
        client.partition_lock("s", "p", D1, D2, ttl=0)
    with pytest.raises(ValueError, match="grace"):
        client.partition_lock("s", "p", D1, D2, grace=100_000)
    with pytest.raises(partreg.InvalidInput):
        client.partition_lock("s", "p", D2, D1)
