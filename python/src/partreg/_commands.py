# SPDX-License-Identifier: MIT
"""Every protocol command as a method, grouped by noun as the topics are
(``client.partition.lock(...)`` sends ``<prefix>/cmd/partition/lock``).

One implementation serves both clients: a namespace builds the body and hands
it to its client's ``_command``, which returns the reply's ``result`` (the
threaded :class:`~partreg.Client`) or an awaitable of it (the asyncio
:class:`~partreg.AsyncClient`); an error reply raises the
:class:`~partreg.errors.PartregError` subclass of its code.

Times may be datetimes (aware; naive = UTC), dates (midnight UTC) or text in
any form the agent accepts; they are checked here and sent in the canonical
form. Writes send the client's token (``token=`` overrides it) and a random
``request_id`` (``request_id=`` sets your own: a command sent again with the
same id, also by another process, is answered with its first reply and
applied once).
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

from ._time import TimeLike, canonical

R_co = TypeVar("R_co", covariant=True)

#: A JSON object as Python sees it.
JSON = dict[str, Any]


class _Sender(Protocol[R_co]):
    def _command(self, command: str, body: JSON, *, write: bool, token: str | None) -> R_co: ...


def _opt(body: JSON, **fields: Any) -> JSON:
    for k, v in fields.items():
        if v is not None:
            body[k] = v
    return body


def _interval(source: str, provider: str, start: TimeLike, end: TimeLike) -> JSON:
    return {
        "source": source,
        "provider": provider,
        "start": canonical(start, "start"),
        "end": canonical(end, "end"),
    }


class _Namespace(Generic[R_co]):
    def __init__(self, sender: _Sender[R_co]) -> None:
        self._s = sender

    def _send(
        self,
        command: str,
        body: JSON,
        *,
        write: bool = False,
        token: str | None = None,
        request_id: str | None = None,
    ) -> R_co:
        if request_id is not None:
            body["request_id"] = request_id
        return self._s._command(command, body, write=write, token=token)


class Sources(_Namespace[R_co]):
    """``source/*``."""

    def register(self, source: str, owner: str, *, request_id: str | None = None) -> R_co:
        """Register a source. The result holds its ``access_token``, shown
        this once: keep it. Conflict (``source_exists``) the second time."""
        return self._send(
            "source/register", {"source": source, "owner": owner}, request_id=request_id
        )

    def get(self, source: str) -> R_co:
        """The source (never its token); NotFound (``unknown_source``)."""
        return self._send("source/get", {"source": source})

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> R_co:
        """A page of sources: ``{items, next_cursor}``."""
        return self._send("source/list", _opt({}, limit=limit, cursor=cursor))

    def rotate_token(
        self, source: str, *, token: str | None = None, request_id: str | None = None
    ) -> R_co:
        """A new ``access_token`` for the source (the owner's token is
        needed); the old one is refused from then on."""
        return self._send(
            "source/rotate-token",
            {"source": source},
            write=True,
            token=token,
            request_id=request_id,
        )


class Providers(_Namespace[R_co]):
    """``provider/*``."""

    def register(
        self,
        source: str,
        provider: str,
        *,
        token: str | None = None,
        request_id: str | None = None,
    ) -> R_co:
        """Register a provider of a source (the owner's token is needed); the
        result holds its ``provider_token``, shown once."""
        return self._send(
            "provider/register",
            {"source": source, "provider": provider},
            write=True,
            token=token,
            request_id=request_id,
        )


class Partitions(_Namespace[R_co]):
    """``partition/*``: the commands one by one. To run a job under a lock
    (session, Last Will, renewals, unlock or fail), use the client's
    ``partition_lock`` context manager instead."""

    def register(
        self,
        source: str,
        provider: str,
        start: TimeLike,
        end: TimeLike,
        *,
        token: str | None = None,
        request_id: str | None = None,
    ) -> R_co:
        """Declare an expected partition (``pending``; unchanged if it exists)."""
        return self._send(
            "partition/register",
            _interval(source, provider, start, end),
            write=True,
            token=token,
            request_id=request_id,
        )

    def lock(
        self,
        source: str,
        provider: str,
        start: TimeLike,
        end: TimeLike,
        *,
        ttl: int | None = None,
        session: str | None = None,
        token: str | None = None,
        request_id: str | None = None,
    ) -> R_co:
        """Lock a partition while it is written: the result carries its
        ``fence`` and ``expires_at`` (now + ttl seconds, the agent's
        --lease-default when None). Conflict (``already_locked``) while
        another lock's lease runs."""
        return self._send(
            "partition/lock",
            _opt(_interval(source, provider, start, end), ttl_s=ttl, session=session),
            write=True,
            token=token,
            request_id=request_id,
        )

    def renew(
        self,
        source: str,
        provider: str,
        start: TimeLike,
        end: TimeLike,
        fence: int,
        *,
        ttl: int | None = None,
        token: str | None = None,
        request_id: str | None = None,
    ) -> R_co:
        """Extend the lease of the lock held with ``fence`` to now + ttl."""
        return self._send(
            "partition/renew",
            _opt(_interval(source, provider, start, end), fence=fence, ttl_s=ttl),
            write=True,
            token=token,
            request_id=request_id,
        )

    def unlock(
        self,
        source: str,
        provider: str,
        start: TimeLike,
        end: TimeLike,
        *,
        fence: int | None = None,
        metadata: JSON | None = None,
        token: str | None = None,
        request_id: str | None = None,
    ) -> R_co:
        """Mark a locked partition ready (``version`` + 1), with optional
        ``metadata`` (a JSON object of at most 1024 bytes)."""
        return self._send(
            "partition/unlock",
            _opt(_interval(source, provider, start, end), fence=fence, metadata=metadata),
            write=True,
            token=token,
            request_id=request_id,
        )

    def fail(
        self,
        source: str,
        provider: str,
        start: TimeLike,
        end: TimeLike,
        *,
        fence: int | None = None,
        reason: str | None = None,
        token: str | None = None,
        request_id: str | None = None,
    ) -> R_co:
        """Mark a pending or locked partition failed, with a ``reason``."""
        return self._send(
            "partition/fail",
            _opt(_interval(source, provider, start, end), fence=fence, reason=reason),
            write=True,
            token=token,
            request_id=request_id,
        )

    def delete(
        self,
        source: str,
        provider: str,
        start: TimeLike,
        end: TimeLike,
        *,
        token: str | None = None,
        request_id: str | None = None,
    ) -> R_co:
        """Withdraw an expected partition (the owner's token is needed)."""
        return self._send(
            "partition/delete",
            _interval(source, provider, start, end),
            write=True,
            token=token,
            request_id=request_id,
        )

    def list(
        self,
        source: str,
        *,
        provider: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> R_co:
        """A page of the source's partitions: ``{items, next_cursor}``."""
        return self._send(
            "partition/list",
            _opt({"source": source}, provider=provider, limit=limit, cursor=cursor),
        )


class ReadinessQueries(_Namespace[R_co]):
    """``readiness/query``: the agent's answer (see also ``wait``, which
    decides from the retained summary)."""

    def query(self, source: str, start: TimeLike, end: TimeLike) -> R_co:
        """``{ready, gaps, blockers, ready_through, seq}`` for [start, end)."""
        return self._send(
            "readiness/query",
            {"source": source, "start": canonical(start, "start"), "end": canonical(end, "end")},
        )


class HistoryQueries(_Namespace[R_co]):
    """``history/query``."""

    def query(
        self,
        source: str,
        *,
        provider: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        since_seq: int | None = None,
        from_: TimeLike | None = None,
        to: TimeLike | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> R_co:
        """A page of the source's events, oldest first: ``{events,
        next_cursor}``. ``start`` and ``end`` go together (one partition);
        ``from_``/``to`` bound the events' time."""
        return self._send(
            "history/query",
            _opt(
                {"source": source},
                provider=provider,
                start=None if start is None else canonical(start, "start"),
                end=None if end is None else canonical(end, "end"),
                since_seq=since_seq,
                to=None if to is None else canonical(to, "to"),
                limit=limit,
                cursor=cursor,
                **{"from": None if from_ is None else canonical(from_, "from")},
            ),
        )


class Sessions(_Namespace[R_co]):
    """``session/abort`` (no token: the session id is the capability)."""

    def abort(
        self,
        session: str,
        *,
        reason: str | None = None,
        grace: int | None = None,
        request_id: str | None = None,
    ) -> R_co:
        """Fail every lock held under ``session`` (with ``grace``: after that
        many seconds, unless a lock or renew under it comes first)."""
        return self._send(
            "session/abort",
            _opt({"session": session}, reason=reason, grace_s=grace),
            request_id=request_id,
        )


class Agents(_Namespace[R_co]):
    """``agent/resync``."""

    def resync(self, source: str | None = None) -> R_co:
        """Ask the agent to republish the retained state of one source, or all."""
        return self._send("agent/resync", _opt({}, source=source))
