# SPDX-License-Identifier: MIT
"""request_id and resends: a lost reply, a repeated request, a broker restart.

The agent commits a command before it answers, and answers a request_id it
has seen with the first reply, marked "replayed". So a client that resends
with the same request_id until a reply comes applies every command once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import partreg

from .conftest import Source, Stack, needs_agent, new_source

pytestmark = needs_agent

D1, D2 = "2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z"


def lock_body(s: Source, **extra: Any) -> dict[str, Any]:
    return {
        "source": s.name,
        "provider": "p",
        "start": D1,
        "end": D2,
        "access_token": s.token,
    } | extra


def test_same_request_id_is_replayed(client: partreg.Client, src: Source) -> None:
    rid = str(uuid.uuid4())
    first = client.request("partition/lock", lock_body(src, request_id=rid))
    again = client.request("partition/lock", lock_body(src, request_id=rid))
    assert first.ok and not first.replayed and first.request_id == rid
    assert again.ok and again.replayed and again.result["fence"] == first.result["fence"] == 1
    # The same id with another body is no key to the first reply.
    with pytest.raises(partreg.Conflict) as e:
        client.call("partition/lock", lock_body(src, request_id=rid, ttl_s=5))
    assert e.value.code == "request_id_conflict"
    # Also by the command methods: request_id= is passed through.
    rid2 = str(uuid.uuid4())
    u1 = client.partition.unlock(src.name, "p", D1, D2, fence=1, token=src.token, request_id=rid2)
    u2 = client.partition.unlock(src.name, "p", D1, D2, fence=1, token=src.token, request_id=rid2)
    assert u1 == u2 and u1["version"] == 1


def test_lost_reply_resent_and_replayed(client: partreg.Client, src: Source) -> None:
    """The first reply goes nowhere (the client is not subscribed to its
    reply topic); the resend, same request_id, gets the replayed reply, and
    the lock was taken once."""
    unsub = client._mqtt.unsubscribe(client.reply_topic)
    assert unsub[0] == 0
    time.sleep(0.3)  # the UNSUBACK
    out: dict[str, partreg.Reply] = {}
    t = threading.Thread(
        target=lambda: out.setdefault(
            "r", client.request("partition/lock", lock_body(src), timeout=10, resend=0.5)
        )
    )
    t0 = time.monotonic()
    t.start()
    time.sleep(0.3)  # the first send is answered into the void
    client._subscribe_now(client.reply_topic)
    t.join()
    reply = out["r"]
    assert reply.ok and reply.replayed and reply.result["fence"] == 1
    assert 0.4 < time.monotonic() - t0 < 5
    events = client.history.query(src.name, start=D1, end=D2)["events"]
    assert [e["type"] for e in events] == ["locked"]


async def test_lost_reply_resent_and_replayed_async(stack: Stack) -> None:
    with stack.client() as sc:
        src = new_source(sc)
    async with stack.async_client() as c:
        assert c._mqtt is not None
        await c._mqtt.unsubscribe(c.reply_topic)
        task = asyncio.create_task(c.request("partition/lock", lock_body(src), resend=0.5))
        await asyncio.sleep(0.3)
        await c._mqtt.subscribe(c.reply_topic, qos=1)
        reply = await task
        assert reply.ok and reply.replayed and reply.result["fence"] == 1
        events = (await c.history.query(src.name, start=D1, end=D2))["events"]
        assert [e["type"] for e in events] == ["locked"]


def test_timeout_is_said(stack: Stack) -> None:
    # A prefix no agent serves: no reply, a clear error.
    with stack.client(prefix="nobody/v1") as c:
        t0 = time.monotonic()
        with pytest.raises(partreg.Timeout) as e:
            c.call("source/get", {"source": "x"}, timeout=0.6)
        assert 0.5 < time.monotonic() - t0 < 3
        assert e.value.code == "timeout" and "nobody/v1" in e.value.message
        assert isinstance(e.value, TimeoutError)


async def test_broker_restart(own_stack: Stack) -> None:
    """Both clients reconnect and resubscribe by themselves: a request sent
    while the broker is down is answered once it is back, and a wait that
    began before the restart sees the unlock made after it."""
    s = own_stack
    with s.client() as setup:
        src = new_source(setup)
    sc = s.client()
    ac = s.async_client()
    await ac.connect()
    try:
        waited: dict[str, Any] = {}
        waiter = threading.Thread(
            target=lambda: waited.setdefault("r", sc.wait(src.name, D1, D2, timeout=30))
        )
        waiter.start()
        await asyncio.sleep(0.5)
        s.broker.stop()
        await asyncio.sleep(0.5)
        assert not sc.connected and not ac.connected
        out: dict[str, partreg.Reply] = {}
        sync_req = threading.Thread(
            target=lambda: out.setdefault(
                "sync", sc.request("partition/lock", lock_body(src), timeout=25, resend=0.5)
            )
        )
        sync_req.start()
        async_req = asyncio.create_task(
            ac.request("source/get", {"source": src.name}, timeout=25, resend=0.5)
        )
        await asyncio.sleep(1.0)
        s.broker.start()  # same port; retained state is gone (persistence off)
        reply = await async_req
        assert reply.ok and reply.result["source"] == src.name
        await asyncio.to_thread(sync_req.join)
        assert out["sync"].ok and out["sync"].result["fence"] == 1
        # The agent republished the summary on reconnect; the wait follows it.
        await ac.partition.unlock(src.name, "p", D1, D2, fence=1, token=src.token)
        await asyncio.to_thread(waiter.join)
        assert waited["r"].ready
    finally:
        sc.close()
        await ac.close()


def test_subscribe_is_prompt(client: partreg.Client) -> None:
    """subscribe() returns at the SUBACK, also when the network thread reads
    it before subscribe() knows its message id (a race that once made it
    wait its whole timeout, and wait() with it)."""
    slowest = 0.0
    for i in range(40):
        t0 = time.monotonic()
        client.subscribe(f"test/prompt/{i}", lambda *_: None).close()
        slowest = max(slowest, time.monotonic() - t0)
    assert slowest < 1.0


async def test_a_raising_callback_harms_nothing(stack: Stack, src: Source) -> None:
    def boom(topic: str, payload: bytes, retained: bool) -> None:
        raise RuntimeError("callback bug")

    with stack.client() as c:
        sub = c.subscribe(f"state/{src.name}", boom)
        c.agent.resync(src.name)  # the summary comes again, the callback raises
        await asyncio.sleep(0.3)
        assert c.source.get(src.name)["source"] == src.name
        sub.close()
    async with stack.async_client() as ac:
        asub = await ac.subscribe(f"state/{src.name}", boom)
        await ac.agent.resync(src.name)
        await asyncio.sleep(0.3)
        assert (await ac.source.get(src.name))["source"] == src.name
        await asub.close()


class DoubtingAgent:
    """A stand-in agent on its own prefix: it answers the first ``doubts``
    sends of each request_id "in doubt" (``store_unavailable`` with
    ``details.in_doubt``, what partregd says when etcd lost its answer),
    and the next ones ok. Records the request_ids it was sent."""

    def __init__(self, stack: Stack, prefix: str, doubts: int) -> None:
        self.prefix, self.doubts = prefix, doubts
        self.sent: list[str] = []
        self._mqtt = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        subscribed = threading.Event()

        def on_connect(c: Any, *_: Any) -> None:
            c.subscribe(f"{prefix}/cmd/#", qos=1)

        def on_subscribe(*_: Any) -> None:
            subscribed.set()

        def on_message(c: Any, _: Any, msg: Any) -> None:
            body = json.loads(msg.payload)
            rid = body["request_id"]
            self.sent.append(rid)
            if self.sent.count(rid) <= self.doubts:
                reply: dict[str, Any] = {
                    "ok": False,
                    "status": 503,
                    "request_id": rid,
                    "error": {
                        "code": "store_unavailable",
                        "message": "etcd's answer to a commit was lost",
                        "details": {"in_doubt": True},
                    },
                }
            else:
                reply = {
                    "ok": True,
                    "status": 200,
                    "request_id": rid,
                    "result": {"sends": len(self.sent)},
                }
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = msg.properties.CorrelationData
            c.publish(msg.properties.ResponseTopic, json.dumps(reply), qos=1, properties=props)

        self._mqtt.on_connect = on_connect
        self._mqtt.on_subscribe = on_subscribe
        self._mqtt.on_message = on_message
        host, port = stack.url.removeprefix("mqtt://").split(":")
        self._mqtt.connect(host, int(port))
        self._mqtt.loop_start()
        assert subscribed.wait(5), "the stand-in agent did not subscribe"

    def close(self) -> None:
        self._mqtt.loop_stop()
        self._mqtt.disconnect()


def lock_through_doubt(
    stack: Stack, prefix: str, doubts: int, timeout: float
) -> tuple[partreg.Reply, list[str]]:
    """A request to a DoubtingAgent: its reply, and the request_ids sent."""
    fake = DoubtingAgent(stack, prefix, doubts)
    try:
        with stack.client(prefix=prefix) as c:
            r = c.request("partition/lock", {"source": "s"}, timeout=timeout, resend=0.3)
    finally:
        fake.close()
    return r, fake.sent


def test_in_doubt_reply_is_sent_again(stack: Stack) -> None:
    """A reply in doubt does not end the request: the command goes again
    under the same request_id, and the next answer is returned."""
    r, sent = lock_through_doubt(stack, "doubt/a", 1, timeout=10)
    assert r.ok and r.result == {"sends": 2}, r.raw
    assert len(sent) == 2 and sent[0] == sent[1] == r.request_id


def test_only_in_doubt_replies_return_the_last(stack: Stack) -> None:
    """Nothing but doubt until the timeout: that reply, not a Timeout."""
    r, sent = lock_through_doubt(stack, "doubt/b", 1000, timeout=1.2)
    assert not r.ok and r.status == 503 and r.error is not None, r.raw
    assert r.error["details"] == {"in_doubt": True}
    assert len(sent) >= 2 and len(set(sent)) == 1


def test_in_doubt_reply_is_sent_again_async(stack: Stack) -> None:
    fake = DoubtingAgent(stack, "doubt/c", doubts=2)

    async def go() -> partreg.Reply:
        async with stack.async_client(prefix="doubt/c") as c:
            return await c.request("partition/lock", {"source": "s"}, timeout=10, resend=0.3)

    try:
        r = asyncio.run(go())
    finally:
        fake.close()
    assert r.ok and r.result == {"sends": 3}, r.raw
    assert len(set(fake.sent)) == 1
