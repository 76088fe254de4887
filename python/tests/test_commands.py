# SPDX-License-Identifier: MIT
"""Every protocol command through Client and AsyncClient, against a real
mosquitto and partregd, and the error classes of the agent's refusals."""

from __future__ import annotations

import datetime as dt
import inspect
import uuid
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest

import partreg

from .conftest import Stack, needs_agent

pytestmark = needs_agent

T = TypeVar("T")
AnyClient = partreg.Client | partreg.AsyncClient


async def r(v: Any) -> Any:
    """The value of a call on either client: awaited when it is awaitable."""
    return await v if inspect.isawaitable(v) else v


@pytest.fixture(params=["sync", "async"])
async def c(request: pytest.FixtureRequest, stack: Stack) -> AsyncIterator[AnyClient]:
    if request.param == "sync":
        with stack.client() as sc:
            yield sc
    else:
        async with stack.async_client() as ac:
            yield ac


D1, D2, D3 = "2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z", "2023-01-03T00:00:00Z"


async def new_source(c: AnyClient) -> tuple[str, str]:
    name = f"s-{uuid.uuid4().hex[:12]}"
    res = await r(c.source.register(name, "team"))
    assert res["source"] == name and res["owner"] == "team"
    return name, res["access_token"]


async def test_sources(c: AnyClient) -> None:
    name, token = await new_source(c)
    assert len(token) == 36
    got = await r(c.source.get(name))
    assert got["source"] == name and "access_token" not in got
    page = await r(c.source.list(limit=1000))
    assert name in [i["source"] for i in page["items"]] and "next_cursor" in page
    with pytest.raises(partreg.Conflict) as e:
        await r(c.source.register(name, "team"))
    assert (e.value.code, e.value.status) == ("source_exists", 409)
    with pytest.raises(partreg.NotFound) as nf:
        await r(c.source.get(name + "-nope"))
    assert (nf.value.code, nf.value.status) == ("unknown_source", 404)
    # Rotation: a new owner token; the old one is refused, provider tokens keep working.
    ptoken = (await r(c.provider.register(name, "p", token=token)))["provider_token"]
    new = (await r(c.source.rotate_token(name, token=token)))["access_token"]
    assert new != token
    with pytest.raises(partreg.Unauthorized) as ua:
        await r(c.provider.register(name, "q", token=token))
    assert (ua.value.code, ua.value.status) == ("unauthorized", 401)
    await r(c.partition.register(name, "p", D1, D2, token=ptoken))


async def test_providers_and_tokens(c: AnyClient) -> None:
    name, token = await new_source(c)
    res = await r(c.provider.register(name, "p", token=token))
    assert res["provider"] == "p" and len(res["provider_token"]) == 36
    await r(c.provider.register(name, "q", token=token))
    with pytest.raises(partreg.Conflict) as e:
        await r(c.provider.register(name, "p", token=token))
    assert e.value.code == "provider_exists"
    with pytest.raises(partreg.Unauthorized):
        await r(c.provider.register(name, "r"))  # no token
    # A provider token may write its own provider's partitions only.
    with pytest.raises(partreg.Forbidden) as fb:
        await r(c.partition.register(name, "q", D1, D2, token=res["provider_token"]))
    assert (fb.value.code, fb.value.status) == ("forbidden", 403)
    with pytest.raises(partreg.Forbidden):
        await r(c.provider.register(name, "r", token=res["provider_token"]))
    with pytest.raises(partreg.NotFound) as nf:
        await r(c.partition.register(name, "nobody", D1, D2, token=token))
    assert nf.value.code == "unknown_provider"


async def test_partition_life(c: AnyClient) -> None:
    name, token = await new_source(c)
    await r(c.provider.register(name, "p", token=token))
    # Times in any accepted form are sent canonical.
    reg = await r(c.partition.register(name, "p", "2023-01-01", dt.date(2023, 1, 2), token=token))
    assert (reg["state"], reg["start"], reg["end"]) == ("pending", D1, D2)
    lk = await r(c.partition.lock(name, "p", D1, D2, ttl=60, session="sess-1", token=token))
    assert lk["state"] == "locked" and lk["fence"] == 1 and "expires_at" in lk
    assert len(lk["session_digest"]) == 64 and "session" not in lk
    with pytest.raises(partreg.Conflict) as e:
        await r(c.partition.lock(name, "p", D1, D2, token=token))
    assert e.value.code == "already_locked"
    rn = await r(c.partition.renew(name, "p", D1, D2, 1, ttl=120, token=token))
    assert rn["state"] == "locked"
    with pytest.raises(partreg.Conflict) as sf:
        await r(c.partition.renew(name, "p", D1, D2, 99, token=token))
    assert sf.value.code == "stale_fence"
    rq = await r(c.readiness.query(name, D1, D2))
    assert rq["ready"] is False and rq["blockers"][0]["state"] == "locked"
    un = await r(c.partition.unlock(name, "p", D1, D2, fence=1, metadata={"rows": 3}, token=token))
    assert (un["state"], un["version"], un["metadata"]) == ("ready", 1, {"rows": 3})
    rq = await r(c.readiness.query(name, dt.datetime(2023, 1, 1), D2))
    assert rq["ready"] is True and rq["ready_through"] == D2
    # Another day: fail it, list, then delete it.
    await r(c.partition.lock(name, "p", D2, D3, token=token))
    fl = await r(c.partition.fail(name, "p", D2, D3, fence=2, reason="disk full", token=token))
    assert (fl["state"], fl["reason"]) == ("failed", "disk full")
    items = (await r(c.partition.list(name, provider="p", limit=10)))["items"]
    assert [(i["start"], i["state"]) for i in items] == [(D1, "ready"), (D2, "failed")]
    dl = await r(c.partition.delete(name, "p", D2, D3, token=token))
    assert dl["state"] == "deleted"
    with pytest.raises(partreg.NotFound) as nf:
        await r(c.partition.fail(name, "p", D2, D3, token=token))
    assert nf.value.code == "unknown_partition"
    # Session abort fails what is held under the session.
    await r(c.partition.lock(name, "p", D2, D3, session="sess-2", token=token))
    ab = await r(c.session.abort("sess-2", reason="gone"))
    assert ab["session"] == "sess-2" and [p["state"] for p in ab["failed"]] == ["failed"]
    deferred = await r(c.session.abort("sess-3", grace=5))
    assert deferred["failed"] == [] and "deferred_until" in deferred
    # History: every change, oldest first, filtered to one partition.
    h = await r(c.history.query(name, start=D1, end=D2, limit=10))
    assert [e["type"] for e in h["events"]] == ["registered", "locked", "renewed", "unlocked"]
    h = await r(c.history.query(name, since_seq=h["events"][-1]["seq"], from_=D1, to="9999-01-01"))
    assert [e["type"] for e in h["events"]][:2] == ["locked", "failed"]
    assert (await r(c.agent.resync(name)))["republishing"] == "source"
    assert (await r(c.agent.resync()))["republishing"] == "all"


async def test_input_errors(c: AnyClient) -> None:
    name, token = await new_source(c)
    await r(c.provider.register(name, "p", token=token))
    with pytest.raises(partreg.InvalidInput) as e:
        await r(c.source.get("a/b"))
    assert (e.value.code, e.value.status) == ("invalid_name", 400)
    with pytest.raises(partreg.InvalidInput) as e:
        await r(c.partition.lock(name, "p", D2, D1, token=token))
    assert (e.value.code, e.value.status) == ("invalid_interval", 422)
    with pytest.raises(partreg.InvalidInput) as e:
        await r(c.partition.lock(name, "p", D1, D2, ttl=0, token=token))
    assert e.value.code == "invalid_field"
    with pytest.raises(partreg.InvalidInput) as e:
        await r(c.call("partition/frobnicate", {"source": name}))
    assert e.value.code == "unknown_command"
    with pytest.raises(partreg.InvalidInput) as e:
        await r(c.call("source/get", {"source": name, "strat": 1}))
    assert e.value.code == "invalid_field"
    # Checked here, before anything is sent.
    with pytest.raises(partreg.InvalidInput) as e:
        await r(c.partition.lock(name, "p", "2023-02-30", D2, token=token))
    assert e.value.code == "invalid_time" and e.value.status is None
    # A reply with details keeps them; the whole envelope is there too.
    with pytest.raises(partreg.PartregError) as pe:
        await r(c.partition.lock(name, "p", D1, D2, token="made-up"))
    assert pe.value.reply is not None and pe.value.reply["ok"] is False


async def test_request_returns_every_reply(c: AnyClient) -> None:
    name, _ = await new_source(c)
    reply = await r(c.request("source/get", {"source": name + "-x"}))
    assert isinstance(reply, partreg.Reply)
    assert (reply.ok, reply.status, reply.error and reply.error["code"]) == (
        False,
        404,
        "unknown_source",
    )
    assert reply.request_id is not None and not reply.replayed
