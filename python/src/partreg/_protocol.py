# SPDX-License-Identifier: MIT
"""What the threaded and the asyncio clients share: request bodies, the rule
that ties a reply to its request, the state of a ``wait``, and the Last Will
and renew schedule of a ``partition_lock``. No I/O here.

The reply rule is libpartreg's (lib/client.c): a request has a random
correlation (MQTT 5 Correlation Data; over MQTT 3.1.1 the body's
``correlation_id``), and a reply is taken only when its correlation *and*
its ``request_id`` are the request's. An agent that could not read the
command at all answers ``payload_too_large`` without a request_id: only that
reply is taken without one. Anything else on the reply topic (the answer to
an earlier resend that came late, or a reply forged by a client that can
publish there) is dropped.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from ._time import format_us
from .errors import BlockerFailed, NotFound, PartregError, UnsupportedFormat
from .summary import Readiness, Summary, SummaryError

#: Longest request_id, correlation and session the agent takes.
ID_MAX = 64


@dataclasses.dataclass(frozen=True)
class Reply:
    """A reply envelope: ``{"ok", "status", "request_id", "replayed",
    "result" | "error"}``; ``raw`` is the whole decoded object."""

    ok: bool
    status: int | None
    request_id: str | None
    replayed: bool
    result: Any
    error: dict[str, Any] | None
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, o: dict[str, Any]) -> Reply:
        status = o.get("status")
        err = o.get("error")
        rid = o.get("request_id")
        return cls(
            ok=o.get("ok") is True,
            status=status if isinstance(status, int) and not isinstance(status, bool) else None,
            request_id=rid if isinstance(rid, str) else None,
            replayed=o.get("replayed") is True,
            result=o.get("result"),
            error=err if isinstance(err, dict) else None,
            raw=o,
        )


def new_id() -> str:
    return str(uuid.uuid4())


def new_correlation() -> str:
    # Random, so that no other client can guess it and answer first.
    return f"c-{uuid.uuid4()}"


def prepare_body(
    body: dict[str, Any],
    *,
    reply_to: str | None = None,
    correlation: str | None = None,
) -> tuple[bytes, str]:
    """The payload to send and its request_id: the body's own, or a new
    random one (it stays the same for every resend). For MQTT 3.1.1 also
    ``reply_to`` and ``correlation_id`` in the body."""
    b = dict(body)
    rid = b.get("request_id")
    if rid is None:
        rid = b["request_id"] = new_id()
    elif not isinstance(rid, str):
        raise TypeError("request_id must be a string")
    if reply_to is not None:
        b["reply_to"] = reply_to
    if correlation is not None:
        b["correlation_id"] = correlation
    return json.dumps(b, separators=(",", ":"), ensure_ascii=False).encode(), rid


@dataclasses.dataclass(frozen=True)
class IncomingReply:
    """A message on the reply topic, read far enough to match it."""

    correlation: str
    request_id: str
    code: str
    obj: dict[str, Any]


def read_reply(payload: bytes, correlation_data: bytes | None) -> IncomingReply | None:
    """The ids of a reply, or None when it is not a JSON object (dropped).
    The MQTT 5 Correlation Data wins over the body's correlation_id."""
    try:
        o = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(o, dict):
        return None

    def s(d: Any, key: str) -> str:
        v = d.get(key) if isinstance(d, dict) else None
        return v if isinstance(v, str) else ""

    if correlation_data is not None:
        if len(correlation_data) > ID_MAX:
            return None
        try:
            corr = correlation_data.decode()
        except UnicodeDecodeError:
            return None
    else:
        corr = s(o, "correlation_id")
    return IncomingReply(corr, s(o, "request_id"), s(o.get("error"), "code"), o)


def in_doubt(reply: dict[str, Any]) -> bool:
    """lib/client.c's pr__reply_in_doubt: ``store_unavailable`` is no
    outcome (a resend of the same request_id may still be applied, by this
    agent or another; with ``details.in_doubt`` the store lost its answer).
    The request is sent again, same request_id."""
    err = reply.get("error")
    return isinstance(err, dict) and err.get("code") == "store_unavailable"


def reply_is_for(r: IncomingReply, correlation: str, request_id: str) -> bool:
    """lib/client.c's rule: the correlation and the request_id are the
    request's; only payload_too_large may come without a request_id."""
    if r.correlation != correlation:
        return False
    if r.request_id == "":
        return r.code == "payload_too_large"
    return r.request_id == request_id


# ---- partition_lock


def will_for(prefix: str, session: str, grace: int) -> tuple[str, bytes]:
    """The Last Will of a lock's connection: session/abort of its session
    with grace_s, so the agent fails the lock only if no renew under the
    session comes within the grace (a Will sent because the broker restarted
    fails nothing)."""
    payload = json.dumps({"session": session, "grace_s": grace}, separators=(",", ":"))
    return f"{prefix}/cmd/session/abort", payload.encode()


def renew_period(ttl: int, grace: int) -> float:
    """Seconds between renews: a third of the lease, and at least twice
    within the grace of the Last Will (as partreg run)."""
    return max(0.2, min(ttl / 3, grace / 2))


def check_lock_args(ttl: int, grace: int) -> None:
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= 2_592_000:
        raise ValueError(f"ttl must be an integer 1..2592000 (seconds), not {ttl!r}")
    if isinstance(grace, bool) or not isinstance(grace, int) or not 1 <= grace <= 86_400:
        raise ValueError(f"grace must be an integer 1..86400 (seconds), not {grace!r}")


def fail_reason(exc: BaseException) -> str:
    """The reason a failed body gives partition/fail: the exception's text
    (its class name when it has none), cut to the agent's 256 bytes."""
    text = str(exc) or type(exc).__name__
    b = text.encode()
    if len(b) > 256:
        text = b[:256].decode(errors="ignore")
    return text


# ---- wait


class WaitState:
    """What ``wait`` knows so far (as cli/follow.c's struct waiting): the
    newest summary by (epoch, seq), the agent's retained status, and the
    verdict. Fed messages by the client; asks for nothing itself."""

    def __init__(
        self, prefix: str, source: str, start_us: int, end_us: int, fail_on_failed: bool
    ) -> None:
        self.state_topic = f"{prefix}/state/{source}"
        self.status_topic = f"{prefix}/agent/status"
        self.source = source
        self.start_us, self.end_us = start_us, end_us
        self.fail_on_failed = fail_on_failed
        self.summary: Summary | None = None
        self.verdict: Readiness | None = None  # the latest decision
        self.ask = False  # the newest summary is truncated: the agent decides
        self.checked = False  # source/get was asked (no summary came)
        self.agent_known = False
        self.agent_online = False
        self.agent_at = "?"

    def take(self, topic: str, payload: bytes) -> None:
        """One message on the state or status topic. Raises
        UnsupportedFormat for a summary of a newer format, BlockerFailed
        when asked to and a failed partition overlaps."""
        if topic == self.status_topic:
            try:
                o = json.loads(payload)
            except (ValueError, UnicodeDecodeError):
                return
            if isinstance(o, dict):
                self.agent_known = True
                self.agent_online = o.get("status") == "online"
                at = o.get("at")
                self.agent_at = at if isinstance(at, str) else "?"
            return
        if topic != self.state_topic or not payload:
            return
        try:
            s = Summary.parse(payload)
        except UnsupportedFormat:
            raise
        except SummaryError:
            return  # not a summary we can read: the next one may be
        if not s.newer_than(self.summary):
            return  # a stale copy says nothing new
        self.summary = s
        self.ask = s.truncated
        if not s.truncated:
            self.decide(s.readiness_us(self.start_us, self.end_us))

    def decide(self, r: Readiness) -> None:
        self.verdict = r
        if self.fail_on_failed and not r.ready:
            for b in r.blockers:
                if b.state == "failed":
                    raise BlockerFailed(
                        "failed",
                        f"{self.source}: {b.provider}'s partition "
                        f"[{format_us(b.start_us)}, {format_us(b.end_us)}) failed"
                        + (f" ({b.reason})" if b.reason else ""),
                        details={
                            "source": self.source,
                            "provider": b.provider,
                            "start": format_us(b.start_us),
                            "end": format_us(b.end_us),
                            "reason": b.reason or None,
                        },
                    )

    @property
    def ready(self) -> bool:
        return self.verdict is not None and self.verdict.ready

    def describe(self) -> str:
        """What it still waits for, for the timeout's message."""
        if self.summary is None:
            text = f"no summary of {self.source} yet"
        elif self.ask and self.verdict is None:
            text = f"the summary of {self.source} is truncated; the agent decides"
        elif self.verdict is not None:
            parts = [
                f"[{format_us(b.start_us)}, {format_us(b.end_us)}) {b.state} by {b.provider}"
                + (f" ({b.count} partitions)" if b.count > 1 else "")
                for b in self.verdict.blockers
            ]
            parts += [
                f"[{format_us(a)}, {format_us(b)}) no ready partition"
                for a, b in self.verdict.gaps_us
            ]
            text = "; ".join(parts) or "not ready"
        else:
            text = "not ready"
        if self.agent_known and not self.agent_online:
            text += f"; agent offline since {self.agent_at}"
        return text


def unknown_source(source: str, err: PartregError) -> NotFound:
    return NotFound(err.code, f"source {source!r} does not exist: {err.message}", err.status)
