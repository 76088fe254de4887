# SPDX-License-Identifier: MIT
"""partreg.AsyncClient: the asyncio client (aiomqtt).

The same API as :class:`partreg.Client`, with ``await``: commands by noun
(``await client.partition.lock(...)``), :meth:`AsyncClient.wait`,
``async with client.partition_lock(...)``. aiomqtt does not reconnect by
itself: a task of the client keeps one connection up, reconnecting with a
short backoff and subscribing again each time, and dispatches what arrives
(replies to their requests, other messages to the subscriptions' callbacks,
which run in the event loop and must not block).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Unpack

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from . import _commands as cmds
from ._options import ConnectArgs, Options
from ._protocol import (
    Reply,
    WaitState,
    check_lock_args,
    fail_reason,
    in_doubt,
    new_correlation,
    new_id,
    prepare_body,
    read_reply,
    renew_period,
    reply_is_for,
    unknown_source,
    will_for,
)
from ._time import TimeLike, canonical, format_us
from .errors import (
    LOST_CODES,
    BrokerUnreachable,
    LockLost,
    NotFound,
    PartregError,
    ServerError,
    Timeout,
    from_reply,
)
from .summary import Readiness, Summary, SummaryError, check_interval, readiness_from_reply

#: A callback of :meth:`AsyncClient.subscribe`: (topic, payload, retained),
#: run in the event loop.
AsyncMessageCallback = Callable[[str, bytes, bool], None]

_GRACE_S = 1.0

log = logging.getLogger("partreg")


@dataclasses.dataclass
class _Waiter:
    request_id: str
    fut: asyncio.Future[dict[str, Any]]
    doubt: dict[str, Any] | None = None  # the last reply in doubt (client.py's rule)


class AsyncSubscription:
    """A live subscription (:meth:`AsyncClient.subscribe`): ``await
    close()``, or leave its ``async with`` block."""

    def __init__(
        self, client: AsyncClient, filter: str, full: str, cb: AsyncMessageCallback
    ) -> None:
        self.filter, self.topic_filter, self.callback = filter, full, cb
        self._client = client

    async def close(self) -> None:
        await self._client._unsubscribe(self)

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _payload_bytes(p: Any) -> bytes:
    if isinstance(p, bytes):
        return p
    if isinstance(p, bytearray):
        return bytes(p)
    if isinstance(p, str):
        return p.encode()
    if p is None:
        return b""
    return str(p).encode()


class AsyncClient:
    """An asyncio connection to a partreg agent through an MQTT broker.

    Takes the options of :class:`partreg.Client`. Connect with ``async with
    AsyncClient(...) as client`` or ``await client.connect()`` (then ``await
    client.close()``); connecting raises
    :class:`~partreg.errors.BrokerUnreachable` if the broker does not answer
    within ``timeout``.
    """

    def __init__(
        self,
        broker: str | None = None,
        *,
        options: Options | None = None,
        will: tuple[str, bytes] | None = None,
        **kw: Unpack[ConnectArgs],
    ) -> None:
        self.options = options or Options.resolve(broker, **kw)
        o = self.options
        self.client_id = o.new_client_id()
        self.reply_topic = o.reply_topic(self.client_id)
        self._v5 = o.mqtt_version == 5
        self._tls = o.tls_context()  # bad TLS files raise InvalidInput here
        self._will = will
        self._waiters: dict[str, _Waiter] = {}
        self._subs: list[AsyncSubscription] = []
        self._mqtt: aiomqtt.Client | None = None
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_error = ""
        self._closed = False

        self.source = cmds.Sources[Awaitable[dict[str, Any]]](self)
        self.provider = cmds.Providers[Awaitable[dict[str, Any]]](self)
        self.partition = cmds.Partitions[Awaitable[dict[str, Any]]](self)
        self.readiness = cmds.ReadinessQueries[Awaitable[dict[str, Any]]](self)
        self.history = cmds.HistoryQueries[Awaitable[dict[str, Any]]](self)
        self.session = cmds.Sessions[Awaitable[dict[str, Any]]](self)
        self.agent = cmds.Agents[Awaitable[dict[str, Any]]](self)

    # ---- connection

    async def connect(self, timeout: float | None = None) -> None:
        """Start the connection task and wait until connected and subscribed
        to the reply topic."""
        if self._task is None:
            self._ready = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"partreg-{self.client_id}"
            )
        assert self._ready is not None
        t = self.options.timeout if timeout is None else timeout
        ready = asyncio.ensure_future(self._ready.wait())
        try:
            # The connection task ends only on close() or a fault of its own.
            await asyncio.wait({ready, self._task}, timeout=t, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._ready.is_set():
            return
        task = self._task
        fault = task.exception() if task.done() and not task.cancelled() else None
        why = self._last_error
        await self.close()
        if fault is not None:
            raise PartregError("internal", f"the connection failed: {fault!r}") from fault
        raise BrokerUnreachable(
            "broker_unreachable",
            f"no connection to {self.options.broker} within {t:g} s"
            + (f"; last: {why}" if why else ""),
        )

    @property
    def connected(self) -> bool:
        return self._ready is not None and self._ready.is_set()

    async def close(self) -> None:
        """Disconnect cleanly (no Last Will is sent). Idempotent."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # A fault of the task itself was said by connect(), or shows as
            # requests timing out: closing says nothing more.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _new_mqtt(self) -> aiomqtt.Client:
        o = self.options
        ep = o.endpoint
        will = None
        if self._will is not None:
            will = aiomqtt.Will(self._will[0], self._will[1], qos=1, retain=False)
        return aiomqtt.Client(
            ep.host,
            ep.port,
            username=o.username,
            password=o.password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if self._v5 else aiomqtt.ProtocolVersion.V311,
            will=will,
            clean_session=None if self._v5 else True,
            # MQTT 3.1.1 has clean_session instead (paho refuses clean_start).
            clean_start=True if self._v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            keepalive=o.keepalive,
            timeout=o.timeout,
            tls_context=self._tls,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )

    async def _subscribe_now(self, m: aiomqtt.Client, topic: str) -> bool:
        """Subscribe at QoS 1; False when the broker refused it."""
        if self._v5:
            codes = await m.subscribe(topic, options=SubscribeOptions(qos=1))
        else:
            codes = await m.subscribe(topic, qos=1)
        return all(not getattr(c, "is_failure", isinstance(c, int) and c >= 0x80) for c in codes)

    async def _run(self) -> None:
        """Keep a connection up until close(): connect, subscribe, dispatch."""
        assert self._ready is not None
        backoff = 0.1
        while not self._closed:
            try:
                m = self._new_mqtt()
                async with m:
                    if not await self._subscribe_now(m, self.reply_topic):
                        self._last_error = (
                            f"the broker refused the subscription to {self.reply_topic}"
                        )
                        raise aiomqtt.MqttError(self._last_error)
                    for f in {s.topic_filter for s in self._subs}:
                        await self._subscribe_now(m, f)
                    self._mqtt = m
                    self._ready.set()
                    backoff = 0.1
                    async for msg in m.messages:
                        self._dispatch(msg)
            except aiomqtt.MqttError as e:
                self._last_error = str(e) or type(e).__name__
            finally:
                self._ready.clear()
                self._mqtt = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _dispatch(self, msg: aiomqtt.Message) -> None:
        topic = msg.topic.value
        payload = _payload_bytes(msg.payload)
        if topic == self.reply_topic:
            corr = getattr(msg.properties, "CorrelationData", None) if msg.properties else None
            r = read_reply(payload, corr)
            if r is None:
                return
            w = self._waiters.get(r.correlation)
            if w is not None and not w.fut.done() and reply_is_for(r, r.correlation, w.request_id):
                if in_doubt(r.obj):
                    w.doubt = r.obj  # sent again at the next resend
                else:
                    w.fut.set_result(r.obj)
            return
        for s in [s for s in self._subs if mqtt.topic_matches_sub(s.topic_filter, topic)]:
            try:
                s.callback(topic, payload, bool(msg.retain))
            except Exception:
                # Not into the connection task: it would end with it.
                log.exception("partreg: a subscription callback for %s raised", s.topic_filter)

    # ---- subscriptions

    async def subscribe(self, filter: str, callback: AsyncMessageCallback) -> AsyncSubscription:
        """Follow the messages of a topic filter under the prefix (retained
        ones first); ``callback(topic, payload, retained)`` runs in the
        event loop. Made again after every reconnect until closed; raises
        :class:`~partreg.errors.PartregError` (``subscribe_refused``) when the
        broker refuses it."""
        sub = AsyncSubscription(self, filter, f"{self.options.prefix}/{filter}", callback)
        self._subs.append(sub)
        m = self._mqtt
        if m is not None:
            try:
                ok = await self._subscribe_now(m, sub.topic_filter)
            except aiomqtt.MqttError:
                ok = True  # connection lost: made again on reconnect
            if not ok:
                await self._unsubscribe(sub)
                raise PartregError(
                    "subscribe_refused",
                    f"the broker refused the subscription to {sub.topic_filter}",
                )
        return sub

    async def _unsubscribe(self, sub: AsyncSubscription) -> None:
        if sub not in self._subs:
            return
        self._subs.remove(sub)
        m, task = self._mqtt, self._task
        if (
            m is None
            or task is None
            or task.done()
            or any(s.topic_filter == sub.topic_filter for s in self._subs)
        ):
            return
        # The UNSUBACK is read by the connection task: when that task ends
        # meanwhile (close(), or the event loop shutting down and cancelling
        # every task at once, as Airflow's triggerer does when it stops),
        # none comes, and there is nothing left to unsubscribe from.
        unsub = asyncio.ensure_future(m.unsubscribe(sub.topic_filter))
        try:
            await asyncio.wait({unsub, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not unsub.done():
                unsub.cancel()
            with contextlib.suppress(aiomqtt.MqttError, asyncio.CancelledError):
                await unsub

    # ---- requests

    async def request(
        self,
        command: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        resend: float = 2.0,
    ) -> Reply:
        """As :meth:`partreg.Client.request`."""
        t = self.options.timeout if timeout is None else timeout
        corr = new_correlation()
        payload, rid = prepare_body(
            body or {},
            reply_to=None if self._v5 else self.reply_topic,
            correlation=None if self._v5 else corr,
        )
        props: Properties | None = None
        if self._v5:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = self.reply_topic
            props.CorrelationData = corr.encode()
        topic = f"{self.options.prefix}/cmd/{command}"
        w = _Waiter(rid, asyncio.get_running_loop().create_future())
        self._waiters[corr] = w
        deadline = time.monotonic() + t
        try:
            while not w.fut.done():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                m = self._mqtt
                if m is not None:
                    # Not connected, or the publish fails: the next resend tries again.
                    with contextlib.suppress(aiomqtt.MqttError):
                        await m.publish(
                            topic, payload, qos=1, properties=props, timeout=min(resend, left)
                        )
                left = deadline - time.monotonic()
                if left > 0 and not w.fut.done():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(asyncio.shield(w.fut), min(resend, left))
        finally:
            self._waiters.pop(corr, None)
        if not w.fut.done() and w.doubt is not None:
            w.fut.cancel()
            return Reply.from_json(w.doubt)
        if not w.fut.done():
            w.fut.cancel()
            raise Timeout(
                "timeout",
                f"no reply to {command} within {t:g} s "
                f"(is partregd running for prefix {self.options.prefix}?)",
            )
        return Reply.from_json(w.fut.result())

    async def call(
        self, command: str, body: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """As :meth:`partreg.Client.call`."""
        r = await self.request(command, body, timeout=timeout)
        if not r.ok:
            raise from_reply(r.raw)
        return r.result

    async def _command(
        self, command: str, body: dict[str, Any], *, write: bool, token: str | None
    ) -> dict[str, Any]:
        tok = token if token is not None else self.options.token
        if write and tok is not None:
            body["access_token"] = tok
        result = await self.call(command, body)
        return result if isinstance(result, dict) else {"result": result}

    # ---- readiness

    async def summary(self, source: str, timeout: float = 1.0) -> Summary | None:
        """As :meth:`partreg.Client.summary`."""
        q: asyncio.Queue[bytes] = asyncio.Queue()
        sub = await self.subscribe(f"state/{source}", lambda _t, p, _r: q.put_nowait(p))
        try:
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    p = await asyncio.wait_for(q.get(), left)
                except TimeoutError:
                    break
                try:
                    return Summary.parse(p)
                except SummaryError:
                    continue
            return None
        finally:
            await sub.close()

    async def wait(
        self,
        source: str,
        start: TimeLike,
        end: TimeLike,
        timeout: float | None = None,
        *,
        fail_on_failed: bool = False,
    ) -> Readiness:
        """As :meth:`partreg.Client.wait`."""
        a, b = check_interval(start, end)
        ws = WaitState(self.options.prefix, source, a, b, fail_on_failed)
        q: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

        def cb(topic: str, payload: bytes, retained: bool) -> None:
            q.put_nowait((topic, payload))

        t0 = time.monotonic()
        deadline = None if timeout is None else t0 + timeout
        grace = t0 + _GRACE_S
        subs = [await self.subscribe("agent/status", cb)]
        try:
            subs.append(await self.subscribe(f"state/{source}", cb))
            while True:
                while not q.empty():
                    ws.take(*q.get_nowait())
                if ws.ready:
                    assert ws.verdict is not None
                    return ws.verdict
                now = time.monotonic()
                if ws.ask and ws.agent_online:
                    if await self._ask_agent(ws, source, deadline):
                        assert ws.verdict is not None
                        return ws.verdict
                elif ws.summary is None and not ws.checked and ws.agent_online and now >= grace:
                    ws.checked = True
                    await self._check_source(source, deadline)
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise Timeout(
                        "timeout", f"timed out after {timeout:g} s; waiting: {ws.describe()}"
                    )
                until = deadline
                if ws.summary is None and not ws.checked and now < grace:
                    until = grace if until is None else min(until, grace)
                try:
                    item = await asyncio.wait_for(
                        q.get(), None if until is None else max(0.0, until - now)
                    )
                except TimeoutError:
                    continue
                ws.take(*item)
        finally:
            for s in subs:
                await s.close()

    def _left(self, deadline: float | None) -> float:
        if deadline is None:
            return self.options.timeout
        return max(0.05, min(self.options.timeout, deadline - time.monotonic()))

    async def _ask_agent(self, ws: WaitState, source: str, deadline: float | None) -> bool:
        body = {"source": source, "start": format_us(ws.start_us), "end": format_us(ws.end_us)}
        try:
            result = await self.call("readiness/query", body, timeout=self._left(deadline))
        except Timeout:
            return False
        except NotFound as e:
            raise unknown_source(source, e) from None
        ws.ask = False
        ws.decide(readiness_from_reply(result, ws.start_us, ws.end_us))
        return ws.ready

    async def _check_source(self, source: str, deadline: float | None) -> None:
        try:
            await self.call("source/get", {"source": source}, timeout=self._left(deadline))
        except Timeout:
            pass
        except NotFound as e:
            raise unknown_source(source, e) from None

    # ---- partition_lock

    def partition_lock(
        self,
        source: str,
        provider: str,
        start: TimeLike,
        end: TimeLike,
        *,
        ttl: int = 60,
        grace: int = 10,
        metadata: dict[str, Any] | None = None,
        token: str | None = None,
        cancel_on_loss: bool = True,
    ) -> AsyncPartitionLock:
        """``async with client.partition_lock(...) as lock:`` as
        :meth:`partreg.Client.partition_lock`. With ``cancel_on_loss`` (the
        default), a lost lock also cancels the task running the body, as
        ``partreg run`` stops its job: the exit then raises
        :class:`~partreg.errors.LockLost` in place of the cancellation."""
        check_lock_args(ttl, grace)
        check_interval(start, end)
        return AsyncPartitionLock(
            self, source, provider, start, end, ttl, grace, metadata, token, cancel_on_loss
        )


class AsyncPartitionLock:
    """The lock of :meth:`AsyncClient.partition_lock`, while its body runs
    (the attributes of :class:`partreg.PartitionLock`; ``lost`` is an
    :class:`asyncio.Event`)."""

    def __init__(
        self,
        client: AsyncClient,
        source: str,
        provider: str,
        start: TimeLike,
        end: TimeLike,
        ttl: int,
        grace: int,
        metadata: dict[str, Any] | None,
        token: str | None,
        cancel_on_loss: bool,
    ) -> None:
        self._parent = client
        self.source, self.provider = source, provider
        self.start, self.end = canonical(start, "start"), canonical(end, "end")
        self.ttl, self.grace = ttl, grace
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.token = token if token is not None else client.options.token
        self.session = new_id()
        self.fence: int | None = None
        self.result: dict[str, Any] = {}
        self.lost = asyncio.Event()
        self.lost_error: PartregError | None = None
        self._cancel_on_loss = cancel_on_loss
        self._conn: AsyncClient | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._body_task: asyncio.Task[Any] | None = None
        self._cancelled = False  # we cancelled the body's task
        self._exiting = False

    def check(self) -> None:
        """Raise :class:`~partreg.errors.LockLost` if the lock was lost."""
        if self.lost.is_set():
            assert self.lost_error is not None
            raise self.lost_error

    def _body(self) -> dict[str, Any]:
        b: dict[str, Any] = {
            "source": self.source,
            "provider": self.provider,
            "start": self.start,
            "end": self.end,
        }
        if self.token is not None:
            b["access_token"] = self.token
        return b

    async def __aenter__(self) -> AsyncPartitionLock:
        o = self._parent.options
        self._conn = AsyncClient(
            options=o.replace(client_id=None), will=will_for(o.prefix, self.session, self.grace)
        )
        await self._conn.connect()
        try:
            self.result = await self._conn.call(
                "partition/lock", self._body() | {"ttl_s": self.ttl, "session": self.session}
            )
            fence = self.result.get("fence")
            if not isinstance(fence, int):
                raise PartregError("invalid_reply", "the lock reply has no fence")
        except BaseException:
            await self._conn.close()
            raise
        self.fence = fence
        self._body_task = asyncio.current_task()
        self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())
        return self

    async def _renew_loop(self) -> None:
        assert self._conn is not None
        period = renew_period(self.ttl, self.grace)
        while True:
            await asyncio.sleep(period)
            try:
                r = await self._conn.request(
                    "partition/renew",
                    self._body() | {"fence": self.fence, "ttl_s": self.ttl},
                    timeout=max(period, 1.0),
                    resend=0.5,
                )
            except Timeout:
                continue
            if r.ok:
                continue
            err = from_reply(r.raw)
            if isinstance(err, ServerError):
                continue
            self.lost_error = LockLost(
                err.code, f"the lock was lost: {err.message}", err.status, reply=r.raw
            )
            self.lost.set()
            if self._cancel_on_loss and not self._exiting and self._body_task is not None:
                self._cancelled = True
                self._body_task.cancel("partreg: the lock was lost")
            return

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._conn is not None
        # Before any await: from here on the renewer cancels nothing.
        self._exiting = True
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        try:
            if self.lost.is_set():
                assert self.lost_error is not None
                if self._cancelled and self._body_task is not None:
                    self._body_task.uncancel()
                    if exc is None or isinstance(exc, asyncio.CancelledError):
                        raise self.lost_error from exc
                if exc is None:
                    raise self.lost_error
                return False
            if exc is None:
                body = self._body() | {"fence": self.fence}
                if self.metadata:
                    body["metadata"] = self.metadata
                r = await self._conn.request("partition/unlock", body)
                if not r.ok:
                    err = from_reply(r.raw)
                    if err.code in LOST_CODES:
                        raise LockLost(
                            err.code,
                            "the body succeeded but the lock was lost before the unlock: "
                            + err.message,
                            err.status,
                            reply=r.raw,
                        )
                    raise err
                self.result = r.result if isinstance(r.result, dict) else {}
                return False
            reason = fail_reason(exc)
            try:
                self.result = await self._conn.call(
                    "partition/fail", self._body() | {"fence": self.fence, "reason": reason}
                )
            except PartregError as e:
                exc.add_note(
                    f"partreg: marking the partition failed failed too ({e}); the lease will expire"
                )
            return False
        finally:
            await self._conn.close()
