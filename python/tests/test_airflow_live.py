# SPDX-License-Identifier: MIT
"""The Airflow provider against a real mosquitto and partregd (conftest's
stack), without a scheduler: the triggers run in the test's event loop as
the triggerer runs them, the sensor and the operator with a task context of
the test's own. Skipped where Airflow is not installed or $PARTREGD not set.
tests/integration/test_airflow.sh runs the same pieces in Airflow itself.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault(
    "AIRFLOW_HOME", str(Path(tempfile.gettempdir()) / f"partreg-pytest-airflow-{os.getuid()}")
)
pytest.importorskip("airflow.sdk", reason="Airflow (the [airflow] extra) is not installed")

from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

import partreg
from partreg.airflow import (
    PartitionEventTrigger,
    PartitionReadySensor,
    PartitionReadyTrigger,
    PartitionRunOperator,
    operators,
    partition_lock,
    triggers,
)

from .conftest import Source, Stack

UTC = _dt.UTC
DAY = _dt.timedelta(days=1)
D1 = _dt.datetime(2023, 1, 1, tzinfo=UTC)


def iso(t: _dt.datetime) -> str:
    return partreg.format_time(t)


def now_plus(seconds: float) -> str:
    return iso(_dt.datetime.now(UTC) + _dt.timedelta(seconds=seconds))


@pytest.fixture(autouse=True)
def connection(stack: Stack, src: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    """partreg_default: the test's broker, with the provider's token."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_PARTREG_DEFAULT",
        json.dumps(
            {"conn_type": "partreg", "host": stack.url, "extra": {"token": src.provider_token}}
        ),
    )


def make_ready(c: partreg.Client, src: Source, a: _dt.datetime, b: _dt.datetime) -> None:
    fence = c.partition.lock(src.name, "p", a, b, token=src.token)["fence"]
    c.partition.unlock(src.name, "p", a, b, fence=fence, token=src.token)


# ---- PartitionReadyTrigger


async def test_ready_trigger_ready_at_once(client: partreg.Client, src: Source) -> None:
    make_ready(client, src, D1, D1 + DAY)
    out = await PartitionReadyTrigger(src.name, iso(D1), iso(D1 + DAY)).outcome()
    assert out["status"] == "ready"
    assert (out["source"], out["start"], out["end"]) == (src.name, iso(D1), iso(D1 + DAY))
    assert out["seq"] > 0 and partreg.parse_time(out["seen_at"])


async def test_ready_trigger_follows_the_summary(client: partreg.Client, src: Source) -> None:
    """No polling: the event comes within a broker hop of the unlock."""
    t = PartitionReadyTrigger(src.name, iso(D1), iso(D1 + 2 * DAY), deadline=now_plus(30))
    task = asyncio.create_task(t.outcome())
    await asyncio.sleep(1.5)  # past the second it gives the summary
    assert not task.done()
    make_ready(client, src, D1, D1 + DAY)
    await asyncio.sleep(0.3)
    assert not task.done()  # half of it
    t0 = time.monotonic()
    await asyncio.to_thread(make_ready, client, src, D1 + DAY, D1 + 2 * DAY)
    out = await asyncio.wait_for(task, 5)
    latency = time.monotonic() - t0
    assert out["status"] == "ready"
    print(f"unlock reply -> trigger event: {latency * 1000:.1f} ms")
    assert latency < 1.0


async def test_ready_trigger_unknown_source() -> None:
    out = await PartitionReadyTrigger("no-such-source-x", "2023-01-01", "2023-01-02").outcome()
    assert out["status"] == "error" and out["code"] == "unknown_source"


async def test_ready_trigger_deadline(client: partreg.Client, src: Source) -> None:
    client.partition.lock(src.name, "p", D1, D1 + DAY, token=src.token)
    t0 = time.monotonic()
    out = await PartitionReadyTrigger(
        src.name, iso(D1), iso(D1 + DAY), deadline=now_plus(1.5)
    ).outcome()
    assert 1.0 < time.monotonic() - t0 < 4
    assert out["status"] == "timeout"
    assert "locked by p" in out["message"]


async def test_ready_trigger_fail_on_failed(client: partreg.Client, src: Source) -> None:
    client.partition.register(src.name, "p", D1, D1 + DAY, token=src.token)
    task = asyncio.create_task(
        PartitionReadyTrigger(src.name, iso(D1), iso(D1 + DAY), fail_on_failed=True).outcome()
    )
    await asyncio.sleep(0.5)
    fence = client.partition.lock(src.name, "p", D1, D1 + DAY, token=src.token)["fence"]
    client.partition.fail(
        src.name, "p", D1, D1 + DAY, fence=fence, reason="disk full", token=src.token
    )
    out = await asyncio.wait_for(task, 5)
    assert out["status"] == "failed"
    assert "disk full" in out["message"] and out["details"]["reason"] == "disk full"


async def test_ready_trigger_keeps_trying_an_absent_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PARTREG_DEFAULT",
        json.dumps(
            {"conn_type": "partreg", "host": "127.0.0.1", "port": 1, "extra": {"timeout": 0.3}}
        ),
    )
    monkeypatch.setattr(triggers, "RECONNECT_S", 0.2)
    out = await PartitionReadyTrigger(
        "s", "2023-01-01", "2023-01-02", deadline=now_plus(1.5)
    ).outcome()
    assert out["status"] == "timeout"  # not an error: a broker may come back


def test_triggers_stop_at_once_when_the_loop_ends(src: Source) -> None:
    """The triggerer stopping ends its event loop with the triggers still
    running: they must let go at once (an UNSUBACK awaited then never came,
    and the triggerer killed its process after 10 s)."""

    async def main() -> None:
        async def follow() -> None:
            async for _ in PartitionEventTrigger(src.name).run():
                pass

        ready = PartitionReadyTrigger(src.name, "2023-01-01", "2023-01-02")
        # Left running: asyncio.run cancels them, and the client's tasks, at once.
        running.extend([asyncio.create_task(ready.outcome()), asyncio.create_task(follow())])
        await asyncio.sleep(1.5)

    running: list[asyncio.Task[Any]] = []

    t0 = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - t0 < 3.5


# ---- PartitionEventTrigger


class FakeStore:
    """The asset state store the triggerer gives an event trigger."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.data[key] = value


async def _collect(t: PartitionEventTrigger, q: asyncio.Queue[dict[str, Any]]) -> None:
    async for e in t.run():
        q.put_nowait(e.payload)


async def test_event_trigger_fires_on_unlocks(client: partreg.Client, src: Source) -> None:
    t = PartitionEventTrigger(src.name, start=iso(D1), end=iso(D1 + 2 * DAY))
    store: Any = FakeStore()
    t.asset_state_store = store
    q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(_collect(t, q))
    try:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(make_ready, client, src, D1 - DAY, D1)  # outside the interval
        t0 = time.monotonic()
        await asyncio.to_thread(make_ready, client, src, D1, D1 + DAY)
        ev = await asyncio.wait_for(q.get(), 5)
        print(f"unlock reply -> event trigger: {(time.monotonic() - t0) * 1000:.1f} ms")
        assert (ev["type"], ev["source"], ev["provider"]) == ("unlocked", src.name, "p")
        assert (ev["start"], ev["end"], ev["state"], ev["version"]) == (
            iso(D1),
            iso(D1 + DAY),
            "ready",
            1,
        )
        assert store.data["partreg_last_seq"] == {"source": src.name, "seq": ev["seq"]}
        await asyncio.to_thread(make_ready, client, src, D1 + DAY, D1 + 2 * DAY)
        ev2 = await asyncio.wait_for(q.get(), 5)
        assert ev2["start"] == iso(D1 + DAY) and ev2["seq"] > ev["seq"]
        await asyncio.sleep(0.3)
        assert q.empty()  # the locks, and the day outside, fired nothing
    finally:
        task.cancel()


async def test_event_trigger_catches_up_from_its_store(client: partreg.Client, src: Source) -> None:
    """A triggerer restarted: the events since the seq it kept are read
    from the agent's history, and fire once each."""
    since = int(client.source.get(src.name)["seq"])
    make_ready(client, src, D1, D1 + DAY)
    make_ready(client, src, D1 + DAY, D1 + 2 * DAY)
    t = PartitionEventTrigger(src.name)
    store: Any = FakeStore()
    store.data["partreg_last_seq"] = {"source": src.name, "seq": since}
    t.asset_state_store = store
    q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(_collect(t, q))
    try:
        got = [await asyncio.wait_for(q.get(), 5), await asyncio.wait_for(q.get(), 5)]
        assert [e["start"] for e in got] == [iso(D1), iso(D1 + DAY)]
        await asyncio.sleep(0.5)
        assert q.empty()
        assert store.data["partreg_last_seq"]["seq"] == got[1]["seq"]
    finally:
        task.cancel()


async def test_event_trigger_unknown_source() -> None:
    with pytest.raises(partreg.NotFound, match="does not exist"):
        async for _ in PartitionEventTrigger("no-such-source-y").run():
            pass


# ---- PartitionReadySensor


class FakeTI:
    dag_id = "d"
    run_id = "manual__1"
    task_id = "t"
    try_number = 1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def context(a: _dt.datetime, b: _dt.datetime, task: Any = None) -> Any:
    return {"data_interval_start": a, "data_interval_end": b, "ti": FakeTI(), "task": task}


def test_sensor_ready_at_once_does_not_defer(client: partreg.Client, src: Source) -> None:
    make_ready(client, src, D1, D1 + DAY)
    s = PartitionReadySensor(task_id="w", source=src.name)
    out = s.execute(context(D1, D1 + DAY))
    assert out["source"] == src.name and out["start"] == iso(D1)


def test_sensor_defers(src: Source) -> None:
    s = PartitionReadySensor(task_id="w", source=src.name, timeout=600, fail_on_failed=True)
    with pytest.raises(TaskDeferred) as e:
        s.execute(context(D1, D1 + DAY))
    t = e.value.trigger
    assert isinstance(t, PartitionReadyTrigger)
    assert (t.source, t.start, t.end, t.fail_on_failed) == (src.name, iso(D1), iso(D1 + DAY), True)
    deadline = partreg.parse_time(t.deadline or "")
    assert abs((deadline - _dt.datetime.now(UTC)).total_seconds() - 600) < 5
    assert e.value.method_name == "execute_complete"
    assert e.value.timeout > _dt.timedelta(seconds=600)  # the trigger's deadline comes first


def test_sensor_fails_fast(client: partreg.Client, src: Source) -> None:
    s = PartitionReadySensor(task_id="w", source="no-such-source-z")
    with pytest.raises(AirflowFailException, match="does not exist"):
        s.execute(context(D1, D1 + DAY))
    s = PartitionReadySensor(task_id="w", source=src.name)
    with pytest.raises(AirflowFailException, match="CronDataIntervalTimetable"):
        s.execute(context(D1, D1))
    fence = client.partition.lock(src.name, "p", D1, D1 + DAY, token=src.token)["fence"]
    client.partition.fail(
        src.name, "p", D1, D1 + DAY, fence=fence, reason="bad input file", token=src.token
    )
    s = PartitionReadySensor(task_id="w", source=src.name, fail_on_failed=True)
    with pytest.raises(AirflowException, match="bad input file"):
        s.execute(context(D1, D1 + DAY))


def test_sensor_pokes(client: partreg.Client, src: Source) -> None:
    s = PartitionReadySensor(task_id="w", source=src.name, deferrable=False)
    r = s.poke(context(D1, D1 + DAY))
    assert isinstance(r, PokeReturnValue) and not r.is_done
    make_ready(client, src, D1, D1 + DAY)
    r = s.poke(context(D1, D1 + DAY))
    assert r.is_done
    assert r.xcom_value is not None and r.xcom_value["start"] == iso(D1)


# ---- PartitionRunOperator and partition_lock


def partition(c: partreg.Client, src: Source, a: _dt.datetime, b: _dt.datetime) -> dict[str, Any]:
    items = c.partition.list(src.name)["items"]
    (p,) = [p for p in items if p["start"] == iso(a) and p["end"] == iso(b)]
    return dict(p)


def test_operator_unlocks_with_metadata(client: partreg.Client, src: Source) -> None:
    seen: dict[str, Any] = {}

    def export(n: int, lock: partreg.PartitionLock, ds: str | None = None) -> str:
        seen["fence"] = lock.fence
        lock.metadata["rows"] = n
        return "done"

    op = PartitionRunOperator(
        task_id="t", source=src.name, provider="p", python_callable=export, op_args=[42]
    )
    ctx = context(D1, D1 + DAY, op)
    assert op.execute(ctx) == "done"
    p = partition(client, src, D1, D1 + DAY)
    assert p["state"] == "ready" and p["fence"] == seen["fence"]
    md = p["metadata"]
    assert md["rows"] == 42
    assert (md["dag_id"], md["run_id"], md["task_id"], md["try_number"]) == (
        "d",
        "manual__1",
        "t",
        1,
    )
    assert md["duration_s"] >= 0 and md["host"]
    assert ctx["ti"].xcom["partition"] == {
        "source": src.name,
        "provider": "p",
        "start": iso(D1),
        "end": iso(D1 + DAY),
        "fence": seen["fence"],
        "version": 1,
    }


def test_operator_fails_the_partition_with_the_exception(
    client: partreg.Client, src: Source
) -> None:
    def export() -> None:
        raise RuntimeError("the shop database did not answer")

    op = PartitionRunOperator(task_id="t", source=src.name, provider="p", python_callable=export)
    with pytest.raises(RuntimeError, match="did not answer"):
        op.execute(context(D1, D1 + DAY, op))
    p = partition(client, src, D1, D1 + DAY)
    assert (p["state"], p["reason"]) == ("failed", "the shop database did not answer")


def test_operator_on_kill_fails_the_partition(client: partreg.Client, src: Source) -> None:
    op: PartitionRunOperator

    def export() -> None:
        op.on_kill()  # as the task runner does on SIGTERM, while the code runs
        p = partition(client, src, D1, D1 + DAY)
        assert (p["state"], p["reason"]) == ("failed", operators._KILLED)

    op = PartitionRunOperator(task_id="t", source=src.name, provider="p", python_callable=export)
    with pytest.raises(partreg.LockLost):
        op.execute(context(D1, D1 + DAY, op))
    assert partition(client, src, D1, D1 + DAY)["state"] == "failed"
    op.on_kill()  # after the run: nothing held, nothing done


def test_partition_lock_in_a_task(client: partreg.Client, src: Source) -> None:
    from airflow.sdk.execution_time.context import set_current_context

    class Task:
        log = None
        killed = 0

        def on_kill(self) -> None:
            self.killed += 1

    task = Task()
    with set_current_context(context(D1, D1 + DAY, task)):
        with partition_lock(src.name, "p") as lock:
            assert partition(client, src, D1, D1 + DAY)["state"] == "locked"
            lock.metadata["rows"] = 3
        p = partition(client, src, D1, D1 + DAY)
        assert (p["state"], p["metadata"]["rows"], p["metadata"]["task_id"]) == ("ready", 3, "t")
        assert "on_kill" not in task.__dict__

        with pytest.raises(partreg.LockLost), partition_lock(src.name, "p", ttl=60) as lock:
            task.on_kill()  # the lock's on_kill, then the task's own
            assert task.killed == 1
        assert partition(client, src, D1, D1 + DAY)["reason"] == operators._KILLED

    # Given times need no task.
    with partition_lock(src.name, "p", D1 + DAY, D1 + 2 * DAY):
        pass
    assert partition(client, src, D1 + DAY, D1 + 2 * DAY)["state"] == "ready"
