# SPDX-License-Identifier: MIT
"""partreg.Client: the threaded client (paho-mqtt 2.x).

One MQTT 5 connection per client, kept up by paho's network thread (it
reconnects by itself). Every method may be called from any thread; callbacks
given to :meth:`Client.subscribe` run on the network thread and must return
quickly.

Requests work as libpartreg's: replies come to one topic per client,
``<prefix>/reply/[<user>/]<client id>``; each request has a random
correlation and a ``request_id``, and is sent again with the same
``request_id`` every ``resend`` seconds until its reply comes, so a command
whose reply was lost (the agent died after acknowledging it, the broker
restarted) is applied once and answered with ``"replayed": true``.

TCP_NODELAY is set on the connection's socket: with Nagle on, a
request/response round trip through mosquitto takes 44-88 ms instead of a
fraction of one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Unpack

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
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

#: A callback of :meth:`Client.subscribe`: (topic, payload, retained).
MessageCallback = Callable[[str, bytes, bool], None]

_GRACE_S = 1.0  # how long wait() gives the retained summary before it asks

log = logging.getLogger("partreg")


@dataclasses.dataclass
class _Waiter:
    request_id: str
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    reply: dict[str, Any] | None = None
    doubt: dict[str, Any] | None = None  # the last reply in doubt


class Subscription:
    """A live subscription (:meth:`Client.subscribe`); ``close()`` ends it,
    as does leaving its ``with`` block."""

    def __init__(self, client: Client, filter: str, full: str, cb: MessageCallback) -> None:
        self.filter, self.topic_filter, self.callback = filter, full, cb
        self._client = client

    def close(self) -> None:
        self._client._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """A connection to a partreg agent through an MQTT broker.

    Options not given come from the PARTREG_* environment as for the CLI
    (``use_env=False`` ignores it), then the defaults (broker
    ``mqtt://127.0.0.1:1883``, prefix ``partreg/v1``, timeout 10 s). ``token``
    (or ``token_file``, PARTREG_TOKEN, PARTREG_TOKEN_FILE) is sent with every
    write. Connects at once (``connect=False`` to call :meth:`connect`
    later); raises :class:`~partreg.errors.BrokerUnreachable` if the broker
    does not answer within ``timeout``. Use it as a context manager, or
    :meth:`close` it.

    Commands, by noun: :attr:`source`, :attr:`provider`, :attr:`partition`,
    :attr:`readiness`, :attr:`history`, :attr:`session`, :attr:`agent`.
    """

    def __init__(
        self,
        broker: str | None = None,
        *,
        connect: bool = True,
        options: Options | None = None,
        will: tuple[str, bytes] | None = None,
        **kw: Unpack[ConnectArgs],
    ) -> None:
        self.options = options or Options.resolve(broker, **kw)
        o = self.options
        self.client_id = o.new_client_id()
        self.reply_topic = o.reply_topic(self.client_id)
        self._v5 = o.mqtt_version == 5
        self._mu = threading.Lock()
        self._waiters: dict[str, _Waiter] = {}
        self._subs: list[Subscription] = []
        self._subacks: dict[int, tuple[threading.Event, list[ReasonCode]]] = {}
        self._early_subacks: dict[int, list[ReasonCode]] = {}
        self._ready = threading.Event()  # connected and subscribed to the reply topic
        self._reply_mid: int | None = None
        self._last_error = ""
        self._started = False
        self._closed = False

        m = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else True,
        )
        m.on_connect = self._on_connect
        m.on_connect_fail = self._on_connect_fail
        m.on_disconnect = self._on_disconnect
        m.on_message = self._on_message
        m.on_subscribe = self._on_subscribe
        m.on_socket_open = self._on_socket_open
        m.reconnect_delay_set(1, 4)
        if o.username is not None:
            m.username_pw_set(o.username, o.password)
        ctx = o.tls_context()
        if ctx is not None:
            m.tls_set_context(ctx)
        if will is not None:
            m.will_set(will[0], will[1], qos=1, retain=False)
        self._mqtt = m

        self.source = cmds.Sources[dict[str, Any]](self)
        self.provider = cmds.Providers[dict[str, Any]](self)
        self.partition = cmds.Partitions[dict[str, Any]](self)
        self.readiness = cmds.ReadinessQueries[dict[str, Any]](self)
        self.history = cmds.HistoryQueries[dict[str, Any]](self)
        self.session = cmds.Sessions[dict[str, Any]](self)
        self.agent = cmds.Agents[dict[str, Any]](self)
        if connect:
            self.connect()

    # ---- connection

    def connect(self, timeout: float | None = None) -> None:
        """Start connecting (paho keeps reconnecting until :meth:`close`) and
        wait until connected and subscribed to the reply topic."""
        if not self._started:
            self._started = True
            ep = self.options.endpoint
            self._mqtt.connect_async(
                ep.host,
                ep.port,
                self.options.keepalive,
                # MQTT 3.1.1 has clean_session (set above) instead.
                clean_start=True if self._v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            )
            self._mqtt.loop_start()
        t = self.options.timeout if timeout is None else timeout
        if not self._ready.wait(t):
            why = self._last_error
            self.close()
            raise BrokerUnreachable(
                "broker_unreachable",
                f"no connection to {self.options.broker} within {t:g} s"
                + (f"; last: {why}" if why else ""),
            )

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def close(self) -> None:
        """Disconnect cleanly (no Last Will is sent) and stop the network
        thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
        self._ready.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _subscribe_now(self, topic: str) -> tuple[int, threading.Event, list[ReasonCode]]:
        """Subscribe at QoS 1; the event is set when the SUBACK came, with
        its reason codes in the list."""
        if self._v5:
            rc, mid = self._mqtt.subscribe(topic, options=SubscribeOptions(qos=1))
        else:
            rc, mid = self._mqtt.subscribe(topic, qos=1)
        ev, codes = threading.Event(), list[ReasonCode]()
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            return -1, ev, codes
        with self._mu:
            # The network thread may have read the SUBACK already, before
            # the mid was known here.
            early = self._early_subacks.pop(mid, None)
            if early is None:
                self._subacks[mid] = (ev, codes)
        if early is not None:
            codes.extend(early)
            ev.set()
        return mid, ev, codes

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # Not a TCP socket (a proxy, websockets): nothing to do.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._last_error = f"refused by the broker: {reason_code}"
            return
        # A clean start each time: subscribe again on every connect.
        mid, _, _ = self._subscribe_now(self.reply_topic)
        self._reply_mid = mid
        with self._mu:
            filters = {s.topic_filter for s in self._subs}
        for f in filters:
            self._subscribe_now(f)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._last_error = "cannot connect"

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._ready.clear()
        if not self._closed:
            self._last_error = f"connection lost: {reason_code}"

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._mu:
            entry = self._subacks.pop(mid, None)
            if entry is None:
                self._early_subacks[mid] = list(reason_codes)
        if entry is not None:
            entry[1].extend(reason_codes)
            entry[0].set()
        if mid == self._reply_mid:
            if all(not rc.is_failure for rc in reason_codes):
                self._ready.set()
            else:
                self._last_error = f"the broker refused the subscription to {self.reply_topic}"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        if topic == self.reply_topic:
            corr = getattr(msg.properties, "CorrelationData", None) if msg.properties else None
            r = read_reply(msg.payload, corr)
            if r is None:
                return
            with self._mu:
                w = self._waiters.get(r.correlation)
                if (
                    w is not None
                    and w.reply is None
                    and reply_is_for(r, r.correlation, w.request_id)
                ):
                    if in_doubt(r.obj):
                        w.doubt = r.obj  # sent again at the next resend
                    else:
                        w.reply = r.obj
                        w.done.set()
            return
        with self._mu:
            subs = [s for s in self._subs if mqtt.topic_matches_sub(s.topic_filter, topic)]
        for s in subs:
            try:
                s.callback(topic, msg.payload, bool(msg.retain))
            except Exception:
                # Not into paho: its network thread would die of it.
                log.exception("partreg: a subscription callback for %s raised", s.topic_filter)

    # ---- subscriptions

    def subscribe(self, filter: str, callback: MessageCallback) -> Subscription:
        """Follow the messages (retained ones first) of a topic filter under
        the prefix (``state/orders``, ``events/+``); ``callback(topic,
        payload, retained)`` runs on the network thread. The subscription is
        made again after every reconnect until closed. Raises
        :class:`~partreg.errors.PartregError` (``subscribe_refused``) when the
        broker refuses it; while disconnected it is made on the next
        connect."""
        sub = Subscription(self, filter, f"{self.options.prefix}/{filter}", callback)
        with self._mu:
            self._subs.append(sub)
        if self._ready.is_set():
            _, ev, codes = self._subscribe_now(sub.topic_filter)
            if ev.wait(self.options.timeout) and any(rc.is_failure for rc in codes):
                self._unsubscribe(sub)
                raise PartregError(
                    "subscribe_refused",
                    f"the broker refused the subscription to {sub.topic_filter}",
                )
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._mu:
            if sub not in self._subs:
                return
            self._subs.remove(sub)
            still = any(s.topic_filter == sub.topic_filter for s in self._subs)
        if not still and self._ready.is_set():
            self._mqtt.unsubscribe(sub.topic_filter)

    # ---- requests

    def request(
        self,
        command: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        resend: float = 2.0,
    ) -> Reply:
        """Send ``command`` (``"partition/lock"``) with ``body`` and wait for
        its reply, resending with the same ``request_id`` every ``resend``
        seconds until it comes. A ``request_id`` is added when the body has
        none. A ``store_unavailable`` reply does not end the wait (a resend
        may still be applied by another agent; with ``details.in_doubt`` the
        store lost its answer): the command is sent again, and that reply is
        returned only when no other came in time. Returns the reply whatever
        it says (see :meth:`call`); raises
        :class:`~partreg.errors.Timeout` when none came within ``timeout``
        (the client's, 10 s by default)."""
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
        w = _Waiter(rid)
        with self._mu:
            self._waiters[corr] = w
        deadline = time.monotonic() + t
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if self._ready.is_set():
                    # Not connected: the next resend tries again.
                    self._mqtt.publish(topic, payload, qos=1, properties=props)
                if w.done.wait(min(resend, left)):
                    break
        finally:
            with self._mu:
                self._waiters.pop(corr, None)
        if w.reply is None and w.doubt is not None:
            return Reply.from_json(w.doubt)
        if w.reply is None:
            raise Timeout(
                "timeout",
                f"no reply to {command} within {t:g} s "
                f"(is partregd running for prefix {self.options.prefix}?)",
            )
        return Reply.from_json(w.reply)

    def call(
        self,
        command: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """:meth:`request`, then the reply's ``result``; an error reply raises
        the :class:`~partreg.errors.PartregError` subclass of its code."""
        r = self.request(command, body, timeout=timeout)
        if not r.ok:
            raise from_reply(r.raw)
        return r.result

    def _command(
        self, command: str, body: dict[str, Any], *, write: bool, token: str | None
    ) -> dict[str, Any]:
        tok = token if token is not None else self.options.token
        if write and tok is not None:
            body["access_token"] = tok
        result = self.call(command, body)
        return result if isinstance(result, dict) else {"result": result}

    # ---- readiness

    def summary(self, source: str, timeout: float = 1.0) -> Summary | None:
        """The retained summary of ``source`` on the broker, or None when none
        comes within ``timeout`` (an unknown source, or no agent ever)."""
        q: queue.Queue[bytes] = queue.Queue()
        with self.subscribe(f"state/{source}", lambda _t, p, _r: q.put(p)):
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    p = q.get(timeout=left)
                except queue.Empty:
                    break
                try:
                    return Summary.parse(p)
                except SummaryError:
                    continue
        return None

    def wait(
        self,
        source: str,
        start: TimeLike,
        end: TimeLike,
        timeout: float | None = None,
        *,
        fail_on_failed: bool = False,
    ) -> Readiness:
        """Wait until [start, end) of ``source`` is ready and return the
        :class:`~partreg.summary.Readiness` that says so (at once if it is).

        Follows the source's retained summary and the agent's status: no
        polling, the answer comes within one broker hop of the unlock, and a
        ready summary answers with the agent away. It asks the agent only
        when the summary is truncated (``readiness/query``), or when no
        summary comes within a second while the agent is online
        (``source/get``: an unknown source raises
        :class:`~partreg.errors.NotFound`). Raises
        :class:`~partreg.errors.Timeout` after ``timeout`` seconds (None =
        wait for ever), :class:`~partreg.errors.BlockerFailed` with
        ``fail_on_failed`` as soon as a failed partition overlaps the
        interval, :class:`~partreg.errors.UnsupportedFormat` for a summary
        newer than this package reads."""
        a, b = check_interval(start, end)
        ws = WaitState(self.options.prefix, source, a, b, fail_on_failed)
        q: queue.Queue[tuple[str, bytes]] = queue.Queue()

        def cb(topic: str, payload: bytes, retained: bool) -> None:
            q.put((topic, payload))

        t0 = time.monotonic()
        deadline = None if timeout is None else t0 + timeout
        grace = t0 + _GRACE_S
        with self.subscribe("agent/status", cb), self.subscribe(f"state/{source}", cb):
            while True:
                while True:
                    try:
                        ws.take(*q.get_nowait())
                    except queue.Empty:
                        break
                if ws.ready:
                    assert ws.verdict is not None
                    return ws.verdict
                now = time.monotonic()
                if ws.ask and ws.agent_online:
                    if self._ask_agent(ws, source, deadline):
                        assert ws.verdict is not None
                        return ws.verdict
                elif ws.summary is None and not ws.checked and ws.agent_online and now >= grace:
                    ws.checked = True
                    self._check_source(source, deadline)
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise Timeout(
                        "timeout", f"timed out after {timeout:g} s; waiting: {ws.describe()}"
                    )
                until = deadline
                if ws.summary is None and not ws.checked and now < grace:
                    until = grace if until is None else min(until, grace)
                with contextlib.suppress(queue.Empty):
                    ws.take(*q.get(timeout=None if until is None else max(0.0, until - now)))

    def _left(self, deadline: float | None) -> float:
        if deadline is None:
            return self.options.timeout
        return max(0.05, min(self.options.timeout, deadline - time.monotonic()))

    def _ask_agent(self, ws: WaitState, source: str, deadline: float | None) -> bool:
        """The summary is truncated: readiness/query decides. True when ready."""
        body = {"source": source, "start": format_us(ws.start_us), "end": format_us(ws.end_us)}
        try:
            result = self.call("readiness/query", body, timeout=self._left(deadline))
        except Timeout:
            return False  # the agent does not answer: keep following
        except NotFound as e:
            raise unknown_source(source, e) from None
        ws.ask = False
        ws.decide(readiness_from_reply(result, ws.start_us, ws.end_us))
        return ws.ready

    def _check_source(self, source: str, deadline: float | None) -> None:
        try:
            self.call("source/get", {"source": source}, timeout=self._left(deadline))
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
    ) -> PartitionLock:
        """A context manager that runs its body under the partition's lock,
        as ``partreg run`` runs a job::

            with client.partition_lock("sales", "export", day, next_day, ttl=300) as lock:
                write(day, fence=lock.fence)
                lock.metadata["rows"] = n

        On entry it opens a connection of its own whose MQTT Last Will is
        ``session/abort`` of a fresh random session with ``grace_s=grace``,
        and locks the partition under that session with a lease of ``ttl``
        seconds (a refusal raises, e.g. Conflict ``already_locked``). A
        thread renews the lease every ``min(ttl/3, grace/2)`` seconds. On a
        normal exit it unlocks with ``lock.metadata`` (``metadata`` and what
        the body added); when the body raises, it fails the partition with
        the exception's text as the reason and re-raises. If this process
        dies, the broker sends the Will and the agent fails the partition
        ``grace`` seconds later (unless the lock was renewed meanwhile: a
        broker restart fails nothing).

        A renew the agent refuses (the lease ran out, another run took or
        failed the partition) loses the lock: ``lock.lost`` is set (the body
        may check it, or call ``lock.check()``), renewing stops, and the exit
        raises :class:`~partreg.errors.LockLost` instead of unlocking."""
        check_lock_args(ttl, grace)
        check_interval(start, end)
        return PartitionLock(self, source, provider, start, end, ttl, grace, metadata, token)


class PartitionLock:
    """The lock of :meth:`Client.partition_lock`, while its body runs.

    ``session``: the lock's session id. ``fence``: the lock's fence (pass it
    to your sink). ``result``: the agent's last answer (the lock's, then the
    unlock's). ``metadata``: what the unlock will carry. ``lost``: set when
    the agent refused a renew; ``lost_error`` says why.
    """

    def __init__(
        self,
        client: Client,
        source: str,
        provider: str,
        start: TimeLike,
        end: TimeLike,
        ttl: int,
        grace: int,
        metadata: dict[str, Any] | None,
        token: str | None,
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
        self.lost = threading.Event()
        self.lost_error: PartregError | None = None
        self._conn: Client | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

    def __enter__(self) -> PartitionLock:
        o = self._parent.options
        self._conn = Client(
            options=o.replace(client_id=None), will=will_for(o.prefix, self.session, self.grace)
        )
        try:
            self.result = self._conn.call(
                "partition/lock", self._body() | {"ttl_s": self.ttl, "session": self.session}
            )
        except BaseException:
            self._conn.close()
            raise
        fence = self.result.get("fence")
        if not isinstance(fence, int):
            self._conn.close()
            raise PartregError("invalid_reply", "the lock reply has no fence")
        self.fence = fence
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"partreg-renew-{self.source}", daemon=True
        )
        self._thread.start()
        return self

    def _renew_loop(self) -> None:
        assert self._conn is not None
        period = renew_period(self.ttl, self.grace)
        while not self._stop.wait(period):
            try:
                r = self._conn.request(
                    "partition/renew",
                    self._body() | {"fence": self.fence, "ttl_s": self.ttl},
                    timeout=max(period, 1.0),
                    resend=0.5,
                )
            except Timeout:
                continue  # no answer (broker away): the lease keeps consumers safe; retry
            if r.ok:
                continue
            err = from_reply(r.raw)
            if isinstance(err, ServerError):
                continue  # the agent's store is in trouble, not our lock
            self.lost_error = LockLost(
                err.code, f"the lock was lost: {err.message}", err.status, reply=r.raw
            )
            self.lost.set()
            return

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        # Stop renewing before the unlock or fail, so that no renew races it.
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if self.lost.is_set():
                if exc is None:
                    self.check()
                return
            if exc is None:
                body = self._body() | {"fence": self.fence}
                if self.metadata:
                    body["metadata"] = self.metadata
                r = self._conn.request("partition/unlock", body)
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
                return
            reason = fail_reason(exc)
            try:
                self.result = self._conn.call(
                    "partition/fail", self._body() | {"fence": self.fence, "reason": reason}
                )
            except PartregError as e:
                exc.add_note(
                    f"partreg: marking the partition failed failed too ({e}); the lease will expire"
                )
        finally:
            self._conn.close()
