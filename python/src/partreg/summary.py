# SPDX-License-Identifier: MIT
"""Retained summaries (``<prefix>/state/<source>``) and the readiness rule.

A port of lib/summary.c (``pr_summary_parse``, ``pr_summary_readiness``) and
of ``pr_readiness_eval`` (common/interval.c), so that a Python client decides
readiness from its broker alone and always as the agent and the C library
do: the shared vectors in tests/vectors/readiness.json hold both to it.

**A source is ready for [a, b)** when every instant of [a, b) lies in some
``ready`` range, and no ``blocked`` entry overlaps [a, b). Intervals are
half-open: [d1, d2) and [d2, d3) touch without overlapping.

Format 2 (``"v": 2``) lists blocked *runs* with a ``count``; format 1 (no
``v``) lists one entry per partition, each read as a run of one. A ``v``
this reader does not know is refused (:class:`~partreg.errors.UnsupportedFormat`)
rather than read by guess.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from ._time import TimeLike, format_us, from_us, parse_us, to_us
from .errors import InvalidInput, PartregError, UnsupportedFormat

#: The summary formats this reader knows.
FORMATS = (1, 2)


class SummaryError(PartregError, ValueError):
    """A message that is not a summary this reader can use (code
    ``invalid_summary``)."""


@dataclasses.dataclass(frozen=True)
class Blocker:
    """A run of blocking partitions: ``count`` partitions of one provider in
    one state (``pending``, ``locked``, ``failed``) whose ranges join into
    [start, end). ``since``, ``expires_at`` and ``reason`` are given for a
    run of one only. Times in microseconds since the epoch; 0 = not given."""

    start_us: int
    end_us: int
    provider: str
    state: str
    count: int = 1
    since_us: int = 0
    expires_at_us: int = 0
    reason: str = ""

    @property
    def start(self) -> _dt.datetime:
        return from_us(self.start_us)

    @property
    def end(self) -> _dt.datetime:
        return from_us(self.end_us)

    @property
    def since(self) -> _dt.datetime | None:
        return from_us(self.since_us) if self.since_us else None

    @property
    def expires_at(self) -> _dt.datetime | None:
        return from_us(self.expires_at_us) if self.expires_at_us else None


@dataclasses.dataclass(frozen=True)
class Readiness:
    """The answer for want = [start, end).

    ``ready``: the interval is ready. ``gaps``: the parts no ready range
    covers, in order. ``blockers``: the runs overlapping it (from a summary)
    or the partitions (from the agent). ``ready_through``: the largest t with
    [start, t) ready, None when not even the first instant is. ``seq``: of the
    summary (or reply) it was decided from. ``truncated``: decided from a
    summary that says it is incomplete (ask the agent instead).
    """

    ready: bool
    start_us: int
    end_us: int
    gaps_us: tuple[tuple[int, int], ...]
    ready_through_us: int | None
    blockers: tuple[Blocker, ...] = ()
    seq: int = 0
    truncated: bool = False

    @property
    def gaps(self) -> list[tuple[_dt.datetime, _dt.datetime]]:
        return [(from_us(a), from_us(b)) for a, b in self.gaps_us]

    @property
    def ready_through(self) -> _dt.datetime | None:
        return None if self.ready_through_us is None else from_us(self.ready_through_us)

    @property
    def nblockers(self) -> int:
        return len(self.blockers)

    def as_dict(self) -> dict[str, Any]:
        """As the vectors and readiness/query say it: canonical times."""
        return {
            "ready": self.ready,
            "gaps": [[format_us(a), format_us(b)] for a, b in self.gaps_us],
            "ready_through": None
            if self.ready_through_us is None
            else format_us(self.ready_through_us),
            "nblockers": self.nblockers,
            "truncated": self.truncated,
        }


def _empty(a: int, b: int) -> bool:
    return a >= b


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Do [a0, a1) and [b0, b1) share an instant? (pr_range_overlaps)"""
    return not _empty(*a) and not _empty(*b) and a[0] < b[1] and b[0] < a[1]


@dataclasses.dataclass(frozen=True)
class _Eval:
    ready: bool
    gaps: tuple[tuple[int, int], ...]
    blocking: tuple[int, ...]  # indexes of the blocked ranges overlapping want
    ready_through: int  # == want start when nothing from it on is ready


def evaluate(
    want: tuple[int, int],
    ready: Iterable[tuple[int, int]],
    blocked: Sequence[tuple[int, int]],
) -> _Eval:
    """pr_readiness_eval: readiness of want from ready and blocked ranges
    (microseconds, any order, may overlap; empty ones are ignored)."""
    a, b = want
    if _empty(a, b):
        return _Eval(False, (), (), a)
    gaps: list[tuple[int, int]] = []
    cursor, through = a, b
    # The C sweep takes the ranges in order of start; among equal starts the
    # order does not change the result (a range ending at or before the
    # cursor is skipped, and the cursor only grows).
    for s, e in sorted(r for r in ready if overlaps(r, want)):
        if e <= cursor:
            continue
        if s >= b:
            break
        if s > cursor:
            if not gaps:
                through = cursor
            gaps.append((cursor, s))
        cursor = e
        if cursor >= b:
            break
    if cursor < b:
        if not gaps:
            through = cursor
        gaps.append((cursor, b))
    blocking = []
    for i, r in enumerate(blocked):
        if overlaps(r, want):
            blocking.append(i)
            through = min(through, max(r[0], a))
    return _Eval(not gaps and not blocking, tuple(gaps), tuple(blocking), through)


def _u64(v: Any) -> int:
    # get_u64_field: a JSON integer, negatives as 0; anything else 0.
    if isinstance(v, int) and not isinstance(v, bool):
        return v if v > 0 else 0
    return 0


def _time_field(o: dict[str, Any], key: str) -> int:
    # get_time_field: absent or null = 0 (not given); not a string, or not
    # a time: refused.
    v = o.get(key)
    if v is None:
        return 0
    if not isinstance(v, str):
        raise SummaryError("invalid_summary", f"{key} is not a time string")
    t = parse_us(v)
    if t is None:
        raise SummaryError("invalid_summary", f"{key} {v!r} is not a time")
    return t


def _range(pair: Any) -> tuple[int, int]:
    if not (
        isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], str)
    ):
        raise SummaryError("invalid_summary", f"a ready range must be [start, end]: {pair!r}")
    s, e = parse_us(pair[0]), parse_us(pair[1])
    if s is None or e is None:
        raise SummaryError("invalid_summary", f"a ready range holds a bad time: {pair!r}")
    return s, e


def _json_bool(v: Any) -> bool:
    # json_object_get_boolean: numbers are true when not zero, strings when
    # not empty, null/objects/arrays false.
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str):
        return v != ""
    return False


def _str_field(o: dict[str, Any], key: str) -> str:
    v = o.get(key)
    return v if isinstance(v, str) else ""


@dataclasses.dataclass(frozen=True)
class Summary:
    """A parsed retained summary (``<prefix>/state/<source>``)."""

    v: int
    source: str
    seq: int
    epoch: int
    truncated: bool
    ready_us: tuple[tuple[int, int], ...]
    blocked: tuple[Blocker, ...]
    raw: dict[str, Any] = dataclasses.field(compare=False, repr=False, default_factory=dict)

    @classmethod
    def parse(cls, message: str | bytes | dict[str, Any]) -> Summary:
        """Parse a summary message (text, bytes or the decoded object), as
        pr_summary_parse does. Raises :class:`UnsupportedFormat` for a ``v``
        newer than this reader knows, :class:`SummaryError` for anything else
        that is not a summary."""
        if isinstance(message, dict):
            o: Any = message
        else:
            try:
                o = json.loads(message)
            except (ValueError, UnicodeDecodeError) as e:
                raise SummaryError("invalid_summary", f"not JSON: {e}") from None
        if not isinstance(o, dict):
            raise SummaryError("invalid_summary", "a summary is a JSON object")
        ready, blocked = o.get("ready"), o.get("blocked")
        if not isinstance(ready, list) or not isinstance(blocked, list):
            raise SummaryError("invalid_summary", "a summary has ready and blocked arrays")
        v = _u64(o["v"]) if "v" in o else 1
        if v not in FORMATS:
            if v > max(FORMATS):
                raise UnsupportedFormat(
                    "unsupported_format",
                    f"summary format v {o['v']!r}: this partreg reads formats 1 and 2; upgrade it",
                )
            raise SummaryError("invalid_summary", f"summary format v {o['v']!r} is not 1 or 2")
        runs = []
        for b in blocked:
            if not isinstance(b, dict):
                raise SummaryError("invalid_summary", f"a blocked entry is not an object: {b!r}")
            start, end = _time_field(b, "start"), _time_field(b, "end")
            if b.get("start") is None or b.get("end") is None or start >= end:
                # Without its range, or empty, it would block nothing.
                raise SummaryError("invalid_summary", f"a blocked entry without a range: {b!r}")
            since, expires = _time_field(b, "since"), _time_field(b, "expires_at")
            count = _u64(b["count"]) if "count" in b else 1
            if count == 0:
                raise SummaryError("invalid_summary", f"a run of no partition: {b!r}")
            runs.append(
                Blocker(
                    start,
                    end,
                    _str_field(b, "provider"),
                    _str_field(b, "state"),
                    count,
                    since,
                    expires,
                    _str_field(b, "reason"),
                )
            )
        return cls(
            v=v,
            source=_str_field(o, "source"),
            seq=_u64(o.get("seq")),
            epoch=_u64(o.get("epoch")),
            truncated=_json_bool(o.get("truncated")),
            ready_us=tuple(_range(r) for r in ready),
            blocked=tuple(runs),
            raw=o,
        )

    @property
    def ready(self) -> list[tuple[_dt.datetime, _dt.datetime]]:
        return [(from_us(a), from_us(b)) for a, b in self.ready_us]

    def newer_than(self, other: Summary | None) -> bool:
        """Not older than other by (epoch, seq): a stale copy (a bridge
        replaying an old retained message) says nothing new."""
        return other is None or (self.epoch, self.seq) >= (other.epoch, other.seq)

    def readiness(self, start: TimeLike, end: TimeLike) -> Readiness:
        """Readiness of [start, end) by the agent's rule. When ``truncated``
        the answer may be wrong (the agent listed only part): ask the agent
        (``readiness/query``) instead; :meth:`Client.wait` does."""
        return self.readiness_us(to_us(start, "start"), to_us(end, "end"))

    def readiness_us(self, a: int, b: int) -> Readiness:
        """:meth:`readiness` of [a, b) in microseconds since the epoch."""
        r = evaluate((a, b), self.ready_us, [(x.start_us, x.end_us) for x in self.blocked])
        return Readiness(
            ready=r.ready,
            start_us=a,
            end_us=b,
            gaps_us=r.gaps,
            ready_through_us=r.ready_through if r.ready_through > a else None,
            blockers=tuple(self.blocked[i] for i in r.blocking),
            seq=self.seq,
            truncated=self.truncated,
        )


def readiness_from_reply(result: dict[str, Any], start_us: int, end_us: int) -> Readiness:
    """A :class:`Readiness` from a readiness/query result (the agent's answer;
    blockers are partitions, each a run of one)."""
    gaps = []
    for g in result.get("gaps") or []:
        if isinstance(g, list) and len(g) == 2:
            s = parse_us(g[0]) if isinstance(g[0], str) else None
            e = parse_us(g[1]) if isinstance(g[1], str) else None
            if s is not None and e is not None:
                gaps.append((s, e))
    blockers = []
    for b in result.get("blockers") or []:
        if not isinstance(b, dict):
            continue

        def t(key: str, b: dict[str, Any] = b) -> int:
            v = b.get(key)
            return (parse_us(v) or 0) if isinstance(v, str) else 0

        blockers.append(
            Blocker(
                t("start"),
                t("end"),
                _str_field(b, "provider"),
                _str_field(b, "state"),
                1,
                t("since"),
                t("expires_at"),
                _str_field(b, "reason"),
            )
        )
    through = result.get("ready_through")
    through_us = parse_us(through) if isinstance(through, str) else None
    return Readiness(
        ready=result.get("ready") is True,
        start_us=start_us,
        end_us=end_us,
        gaps_us=tuple(gaps),
        ready_through_us=through_us,
        blockers=tuple(blockers),
        seq=_u64(result.get("seq")),
        truncated=False,
    )


def check_interval(start: TimeLike, end: TimeLike) -> tuple[int, int]:
    """Both times parsed, and start < end; raises :class:`InvalidInput`."""
    a, b = to_us(start, "start"), to_us(end, "end")
    if a >= b:
        raise InvalidInput(
            "invalid_interval", f"start {format_us(a)} must be before end {format_us(b)}"
        )
    return a, b
