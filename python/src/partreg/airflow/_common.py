# SPDX-License-Identifier: MIT
"""What the sensor, the operator and the triggers share, without Airflow:
the interval of a task (given, or its run's data interval), a one-shot
readiness check, and the text that says what a check still waits for.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from .. import Client, Readiness
from .._time import TimeLike, format_us, to_us
from ..errors import BlockerFailed, InvalidInput, NotFound
from ..summary import check_interval, readiness_from_reply

#: How long a check gives the retained summary to come (it comes at once
#: when the source has one).
SUMMARY_WAIT_S = 1.0

_EMPTY_INTERVAL_HINT = (
    "; a run whose data interval is empty comes from a timetable that gives "
    "none (in Airflow 3 a cron schedule is a CronTriggerTimetable by default): "
    "schedule with CronDataIntervalTimetable, or pass start and end"
)


def _is_time(v: Any) -> bool:
    return isinstance(v, (str, _dt.date))


def task_interval(
    start: Any, end: Any, context: Mapping[str, Any] | None, what: str = "partition"
) -> tuple[int, int]:
    """[start, end) in microseconds: the given times (rendered templates,
    datetimes, dates, or text the agent takes), each missing one from the
    run's data interval. Raises :class:`~partreg.errors.InvalidInput` for a
    bad time, start >= end, or a missing time with no data interval."""
    times: list[TimeLike] = []
    for name, v in (("start", start), ("end", end)):
        if v is None or v == "":
            v = None if context is None else context.get(f"data_interval_{name}")
            if v is None:
                raise InvalidInput(
                    "invalid_interval",
                    f"no {name} for the {what}: none given, and this run has no data "
                    f"interval (a manual or asset-triggered run): pass start and end",
                )
        if not _is_time(v):
            raise InvalidInput(
                "invalid_time", f"{name} must be a datetime, a date or a time text, not {v!r}"
            )
        times.append(v)
    try:
        return check_interval(times[0], times[1])
    except InvalidInput as e:
        if e.code == "invalid_interval" and to_us(times[0]) == to_us(times[1]):
            raise InvalidInput(e.code, e.message + _EMPTY_INTERVAL_HINT) from None
        raise


def is_template(v: Any) -> bool:
    """A Jinja template, rendered only when the task runs."""
    return isinstance(v, str) and any(m in v for m in ("{{", "{%", "{#"))


def check_given_interval(start: Any, end: Any) -> None:
    """At DAG parse time: when both times are given and neither is a
    template, they must be times and start < end (InvalidInput)."""
    if start is None or end is None or is_template(start) or is_template(end):
        return
    task_interval(start, end, None)


def not_ready(a: int, b: int, seq: int = 0) -> Readiness:
    return Readiness(
        ready=False, start_us=a, end_us=b, gaps_us=((a, b),), ready_through_us=None, seq=seq
    )


def check_now(
    client: Client, source: str, a: int, b: int, *, fail_on_failed: bool = False
) -> Readiness:
    """Is [a, b) of ``source`` ready now? From the retained summary, as
    ``wait`` decides; the agent decides only when the summary is truncated,
    and says whether the source exists when no summary comes. Raises
    :class:`~partreg.errors.NotFound` for an unknown source,
    :class:`~partreg.errors.BlockerFailed` with ``fail_on_failed`` when a
    failed partition overlaps [a, b)."""
    s = client.summary(source, timeout=SUMMARY_WAIT_S)
    if s is None:
        # No summary: the source may not exist. An agent that does not
        # answer (offline) raises Timeout: not ready, as far as anyone knows.
        try:
            client.source.get(source)
        except NotFound as e:
            raise NotFound(e.code, f"source {source!r} does not exist", e.status) from None
        r = not_ready(a, b)
    elif s.truncated:
        r = readiness_from_reply(client.readiness.query(source, format_us(a), format_us(b)), a, b)
    else:
        r = s.readiness_us(a, b)
    if fail_on_failed and not r.ready:
        for x in r.blockers:
            if x.state == "failed":
                raise BlockerFailed(
                    "failed",
                    f"{source}: {x.provider}'s partition [{format_us(x.start_us)}, "
                    f"{format_us(x.end_us)}) failed" + (f" ({x.reason})" if x.reason else ""),
                    details={
                        "source": source,
                        "provider": x.provider,
                        "start": format_us(x.start_us),
                        "end": format_us(x.end_us),
                        "reason": x.reason or None,
                    },
                )
    return r


def describe(source: str, r: Readiness) -> str:
    """What [start, end) of ``source`` still waits for, for a log line."""
    head = f"{source} [{format_us(r.start_us)}, {format_us(r.end_us)})"
    if r.ready:
        return f"{head} is ready (summary seq {r.seq})"
    parts = []
    for x in r.blockers:
        text = f"[{format_us(x.start_us)}, {format_us(x.end_us)}) {x.state} by {x.provider}"
        if x.count > 1:
            text += f" ({x.count} partitions)"
        if x.expires_at_us:
            text += f", lease until {format_us(x.expires_at_us)}"
        if x.reason:
            text += f" ({x.reason})"
        parts.append(text)
    parts += [f"[{format_us(g0)}, {format_us(g1)}) no ready partition" for g0, g1 in r.gaps_us]
    return f"{head} is not ready: " + ("; ".join(parts) or "nothing ready yet")


def ready_result(source: str, r: Readiness) -> dict[str, Any]:
    """What a sensor returns (its XCom) once the interval is ready."""
    return {
        "source": source,
        "start": format_us(r.start_us),
        "end": format_us(r.end_us),
        "seq": r.seq,
    }
