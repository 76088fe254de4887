# SPDX-License-Identifier: MIT
"""Triggers: they run in Airflow's triggerer, one asyncio task each.

:class:`PartitionReadyTrigger` is what a deferred
:class:`~partreg.airflow.sensors.PartitionReadySensor` waits on: it follows
the source's retained summary with :meth:`partreg.AsyncClient.wait` (no
polling: the summary comes within a broker hop of the unlock) and fires one
event, ready or not.

:class:`PartitionEventTrigger` is for an ``AssetWatcher``: it follows the
source's events (``<prefix>/events/<source>``, batches ``{"v": 2, "source",
"epoch", "events": [...]}``) and fires for every ``unlocked`` event, so each
partition that becomes ready is an asset event. Events are not retained: the
trigger starts from the source's current ``seq``, fills any gap in ``seq``
(a lost connection, a restart of the agent or the broker) from
``history/query``, and, when Airflow gives it the watched asset's state
store, keeps the last ``seq`` it fired for there, so a triggerer restart
also catches up (at least once: an event may fire twice across a restart,
never be skipped while the agent keeps its history).

Both are serialized to the metadata database: their arguments are plain
JSON (times as canonical text).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from .. import AsyncClient, Options
from .._time import format_us, parse_us
from ..errors import (
    BlockerFailed,
    BrokerUnreachable,
    InvalidInput,
    NotFound,
    PartregError,
    Timeout,
    UnsupportedFormat,
)
from ..summary import check_interval
from .connection import DEFAULT_CONN_ID

#: Seconds between attempts to reach a broker that is not there.
RECONNECT_S = 5.0


def _now() -> str:
    return format_us(int(time.time() * 1_000_000))


async def _options(conn_id: str) -> Options:
    from .hooks import PartregHook

    return await PartregHook(conn_id).aget_options()


class PartitionReadyTrigger(BaseTrigger):
    """Fires once: when [start, end) of ``source`` is ready, or it cannot be.

    The event's payload is a dict whose ``status`` says which:

    - ``ready``: with ``source``, ``start``, ``end``, ``seq`` (of the summary
      that said so) and ``seen_at`` (when this trigger saw it);
    - ``failed`` (only with ``fail_on_failed``): a failed partition overlaps
      the interval; ``message``, ``details``;
    - ``timeout``: ``deadline`` (an absolute time, so a triggerer restart
      does not extend it) passed; ``message`` says what it still waited for;
    - ``error``: ``code`` (``unknown_source``, ``invalid_time``, ...) and
      ``message``: nothing to wait for.

    A broker that cannot be reached is tried again every few seconds until
    the deadline: a broker restart does not fail a long wait.
    """

    def __init__(
        self,
        source: str,
        start: str,
        end: str,
        *,
        partreg_conn_id: str = DEFAULT_CONN_ID,
        fail_on_failed: bool = False,
        deadline: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call, unused-ignore]
        self.source = source
        self.start = start
        self.end = end
        self.partreg_conn_id = partreg_conn_id
        self.fail_on_failed = fail_on_failed
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "partreg.airflow.triggers.PartitionReadyTrigger",
            {
                "source": self.source,
                "start": self.start,
                "end": self.end,
                "partreg_conn_id": self.partreg_conn_id,
                "fail_on_failed": self.fail_on_failed,
                "deadline": self.deadline,
            },
        )

    def _error(self, code: str, message: str) -> dict[str, Any]:
        return {"status": "error", "source": self.source, "code": code, "message": message}

    def _left(self) -> float | None:
        """Seconds until the deadline (None: no deadline)."""
        if self.deadline is None:
            return None
        d = parse_us(self.deadline)
        if d is None:
            raise InvalidInput("invalid_time", f"deadline {self.deadline!r} is not a time")
        return (d - time.time() * 1_000_000) / 1_000_000

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent(await self.outcome())

    async def outcome(self) -> dict[str, Any]:
        """The payload of the one event (see the class)."""
        try:
            a, b = check_interval(self.start, self.end)
            self._left()
        except InvalidInput as e:
            return self._error(e.code, e.message)
        try:
            options = await _options(self.partreg_conn_id)
        except PartregError as e:
            return self._error(e.code, e.message)
        except Exception as e:  # the connection itself: missing, unreadable
            return self._error("connection", f"connection {self.partreg_conn_id}: {e}")
        self.log.info(
            "waiting for %s [%s, %s) on %s (deadline %s)",
            self.source,
            format_us(a),
            format_us(b),
            options.broker,
            self.deadline or "none",
        )
        while True:
            left = self._left()
            if left is not None and left <= 0:
                return {
                    "status": "timeout",
                    "source": self.source,
                    "message": f"{self.source} [{format_us(a)}, {format_us(b)}) was not ready "
                    f"by {self.deadline}",
                }
            client = AsyncClient(options=options)
            try:
                try:
                    await client.connect()
                except BrokerUnreachable as e:
                    self.log.warning("%s; trying again in %g s", e.message, RECONNECT_S)
                    await asyncio.sleep(RECONNECT_S if left is None else min(RECONNECT_S, left))
                    continue
                r = await client.wait(
                    self.source,
                    format_us(a),
                    format_us(b),
                    left,
                    fail_on_failed=self.fail_on_failed,
                )
                return {
                    "status": "ready",
                    "source": self.source,
                    "start": format_us(a),
                    "end": format_us(b),
                    "seq": r.seq,
                    "seen_at": _now(),
                }
            except BlockerFailed as e:
                return {
                    "status": "failed",
                    "source": self.source,
                    "message": e.message,
                    "details": e.details,
                }
            except Timeout as e:
                return {"status": "timeout", "source": self.source, "message": e.message}
            except PartregError as e:
                return self._error(e.code, e.message)
            finally:
                await client.close()


def _batch_events(payload: bytes, source: str) -> list[dict[str, Any]]:
    """The events of one message on ``events/<source>``: a batch (``v`` 2),
    or a single event (format 1, no ``v``). Raises UnsupportedFormat for a
    newer ``v``; anything unreadable is no events."""
    try:
        o = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(o, dict):
        return []
    if "v" not in o:
        return [o] if isinstance(o.get("seq"), int) else []
    v = o["v"]
    if v != 2:
        if isinstance(v, int) and not isinstance(v, bool) and v > 2:
            raise UnsupportedFormat(
                "unsupported_format",
                f"events of {source} in format v {v}: this partreg reads 1 and 2; upgrade it",
            )
        return []
    events = o.get("events")
    if not isinstance(events, list):
        return []
    return [e for e in events if isinstance(e, dict) and isinstance(e.get("seq"), int)]


def _online(status: bytes) -> bool:
    try:
        o = json.loads(status)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(o, dict) and o.get("status") == "online"


class PartitionEventTrigger(BaseEventTrigger):
    """Fires for every event of ``source`` of one of ``types`` (``unlocked``:
    a partition became ready), of ``provider`` when given, and overlapping
    [start, end) when given. For an ``AssetWatcher``::

        Asset("partreg://sales", watchers=[AssetWatcher(
            name="sales_ready", trigger=PartitionEventTrigger(source="sales"))])

    The payload (the asset event's ``extra["payload"]``) is the event as the
    agent published it: ``seq``, ``epoch``, ``at``, ``type``, ``source``,
    ``provider``, ``start``, ``end``, ``state``, ``fence``, ``version``.
    An unknown source is an error (raised: the triggerer logs it).
    """

    #: Where the last fired seq is kept in the watched asset's state store.
    STATE_KEY = "partreg_last_seq"

    def __init__(
        self,
        source: str,
        *,
        start: str | None = None,
        end: str | None = None,
        provider: str | None = None,
        types: Iterable[str] = ("unlocked",),
        partreg_conn_id: str = DEFAULT_CONN_ID,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call, unused-ignore]
        self.source = source
        self.start = start
        self.end = end
        self.provider = provider
        self.types = [types] if isinstance(types, str) else list(types)
        self.partreg_conn_id = partreg_conn_id
        self._want: tuple[int, int] | None = None
        if (start is None) != (end is None):
            raise InvalidInput("invalid_interval", "give start and end together, or neither")
        if start is not None and end is not None:
            self._want = check_interval(start, end)
            # Canonical: two watchers of the same interval are one trigger.
            self.start, self.end = format_us(self._want[0]), format_us(self._want[1])

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "partreg.airflow.triggers.PartitionEventTrigger",
            {
                "source": self.source,
                "start": self.start,
                "end": self.end,
                "provider": self.provider,
                "types": self.types,
                "partreg_conn_id": self.partreg_conn_id,
            },
        )

    def matches(self, event: dict[str, Any]) -> bool:
        """Does this event fire the trigger?"""
        if event.get("type") not in self.types:
            return False
        if self.provider is not None and event.get("provider") != self.provider:
            return False
        if self._want is None:
            return True
        s, e = event.get("start"), event.get("end")
        a = parse_us(s) if isinstance(s, str) else None
        b = parse_us(e) if isinstance(e, str) else None
        if a is None or b is None:
            return False
        return a < b and a < self._want[1] and self._want[0] < b

    # ---- the last seq fired, in the asset's state store when there is one

    async def _load_seq(self) -> int | None:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return None
        try:
            v = await store.aget(self.STATE_KEY)
        except Exception as e:  # no store for this trigger, or it cannot be read
            self.log.warning("cannot read %s from the asset state store: %s", self.STATE_KEY, e)
            return None
        if isinstance(v, dict) and v.get("source") == self.source and isinstance(v.get("seq"), int):
            return int(v["seq"])
        return None

    async def _save_seq(self, seq: int) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return
        try:
            await store.aset(self.STATE_KEY, {"source": self.source, "seq": seq})
        except Exception as e:
            self.log.warning("cannot keep %s in the asset state store: %s", self.STATE_KEY, e)

    # ----

    async def _history(self, client: AsyncClient, since: int) -> list[dict[str, Any]]:
        """The events after seq ``since``, from the agent's history; what
        could be read of them when the agent stops answering (the next
        status message or gap asks again)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            try:
                page = await client.history.query(self.source, since_seq=since, cursor=cursor)
            except (Timeout, BrokerUnreachable) as e:
                self.log.warning("history of %s after seq %d: %s", self.source, since, e)
                return out
            out += [e for e in page.get("events") or [] if isinstance(e, dict) and "seq" in e]
            cursor = page.get("next_cursor")
            if not isinstance(cursor, str):
                return out

    async def run(self) -> AsyncIterator[TriggerEvent]:
        options = await _options(self.partreg_conn_id)
        while True:
            client = AsyncClient(options=options)
            try:
                await client.connect()
            except BrokerUnreachable as e:
                self.log.warning("%s; trying again in %g s", e.message, RECONNECT_S)
                await asyncio.sleep(RECONNECT_S)
                continue
            try:
                async for event in self._follow(client):
                    yield event
            finally:
                await client.close()

    async def _follow(self, client: AsyncClient) -> AsyncIterator[TriggerEvent]:
        q: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        status_topic = f"{client.options.prefix}/agent/status"

        def cb(topic: str, payload: bytes, retained: bool) -> None:
            q.put_nowait((topic, payload))

        # Subscribe first, then read where the source stands: no event falls
        # between the two.
        subs = [await client.subscribe(f"events/{self.source}", cb)]
        try:
            subs.append(await client.subscribe("agent/status", cb))
            try:
                now_seq = int((await client.source.get(self.source)).get("seq") or 0)
            except NotFound:
                raise NotFound("unknown_source", f"source {self.source!r} does not exist") from None
            last = await self._load_seq()
            pending: list[dict[str, Any]] = []
            if last is not None and last < now_seq:
                self.log.info("catching up on %s from seq %d to %d", self.source, last, now_seq)
                pending = await self._history(client, last)
            elif last is None or last > now_seq:
                last = now_seq  # first start (or a store that began again): from now on
            self.log.info(
                "following the events of %s from seq %d (%s)",
                self.source,
                last,
                ", ".join(self.types),
            )
            while True:
                for ev in pending:
                    seq = int(ev["seq"])
                    if seq <= last:
                        continue  # seen (a resent message, or history and live overlap)
                    last = seq
                    if self.matches(ev):
                        yield TriggerEvent(ev)
                        await self._save_seq(seq)
                topic, payload = await q.get()
                if topic == status_topic:
                    # Retained: after every (re)connect, and when the agent
                    # comes back. What happened in between is in the history.
                    pending = []
                    if _online(payload):
                        pending = await self._history(client, last)
                    continue
                pending = _batch_events(payload, self.source)
                if pending and int(pending[0]["seq"]) > last + 1:
                    gap = await self._history(client, last)
                    pending = gap + pending
        finally:
            for s in subs:
                await s.close()
