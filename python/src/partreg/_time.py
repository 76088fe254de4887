# SPDX-License-Identifier: MIT
"""Times as partreg speaks them: integer microseconds since the Unix epoch, UTC.

A line-by-line port of common/ptime.c (``pr_time_parse``/``pr_time_format``),
so that this package accepts and refuses exactly the texts the agent, the
C library and the CLI accept and refuse:

- RFC 3339 date-times with ``T``, ``t`` or one space between date and time,
  seconds required, an optional fraction of 1..6 digits (more are refused,
  not truncated), an optional offset (``Z``, ``z``, ``+hh:mm``, ``-hh:mm``);
  no offset means UTC.
- A date alone, ``YYYY-MM-DD``, is that day's midnight UTC; it takes no
  offset.
- Years 0001..9999, checked months and days (leap years), no leap second; the
  instant after applying the offset must lie in [TIME_MIN, TIME_MAX].

The canonical form is ``YYYY-MM-DDTHH:MM:SSZ`` with ``.ffffff`` only when the
microseconds are not zero. :func:`datetime.datetime` is not used for parsing:
``fromisoformat`` accepts forms the agent refuses (``20230101``, week dates).
"""

from __future__ import annotations

import datetime as _dt
from typing import Final, TypeAlias

from .errors import InvalidInput

US_PER_SEC: Final = 1_000_000
SEC_PER_DAY: Final = 86_400

#: Earliest and latest instants that parse: 0001-01-01 and 9999-12-31T23:59:59.999999.
TIME_MIN: Final = -62_135_596_800_000_000
TIME_MAX: Final = 253_402_300_799_999_999

_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)

#: What the API takes for a time: an aware datetime (a naive one is UTC), a
#: date (its midnight UTC), or text in any form the agent accepts.
TimeLike: TypeAlias = _dt.datetime | _dt.date | str


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's algorithm, as in ptime.c. The C code corrects its
    # truncating division of a negative era to a floor; Python's // floors.
    y -= 1 if m <= 2 else 0
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


def _is_leap(y: int) -> bool:
    return (y % 4 == 0 and y % 100 != 0) or y % 400 == 0


_MDAYS: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(y: int, m: int) -> int:
    return 29 if m == 2 and _is_leap(y) else _MDAYS[m - 1]


def _digits(s: str, p: int, n: int) -> int | None:
    """Exactly n ASCII digits at s[p:p+n], or None."""
    if len(s) - p < n:
        return None
    v = 0
    for c in s[p : p + n]:
        if not "0" <= c <= "9":
            return None
        v = v * 10 + ord(c) - 48
    return v


def parse_us(text: str) -> int | None:
    """The instant ``text`` names, in microseconds since the epoch, or None
    when the agent would refuse it (``invalid_time``)."""
    if not isinstance(text, str) or not text:
        return None
    end = len(text)
    year = _digits(text, 0, 4)
    if year is None or end < 5 or text[4] != "-":
        return None
    mon = _digits(text, 5, 2)
    if mon is None or end < 8 or text[7] != "-":
        return None
    day = _digits(text, 8, 2)
    if day is None:
        return None
    p = 10
    hour = minute = sec = frac = offset = 0
    if p != end:
        # 'T', 't' or one space, hh:mm:ss, fraction, offset, nothing after.
        if text[p] not in "Tt ":
            return None
        p += 1
        h = _digits(text, p, 2)
        if h is None or p + 2 >= end or text[p + 2] != ":":
            return None
        mi = _digits(text, p + 3, 2)
        if mi is None or p + 5 >= end or text[p + 5] != ":":
            return None
        se = _digits(text, p + 6, 2)
        if se is None:
            return None
        hour, minute, sec = h, mi, se
        p += 8
        if p < end and text[p] == ".":
            p += 1
            n = 0
            while p < end and "0" <= text[p] <= "9":
                n += 1
                if n > 6:
                    return None  # refuse rather than truncate
                frac = frac * 10 + ord(text[p]) - 48
                p += 1
            if n == 0:
                return None
            frac *= 10 ** (6 - n)
        if p < end and text[p] in "Zz":
            p += 1
        elif p < end and text[p] in "+-":
            sign = -1 if text[p] == "-" else 1
            p += 1
            oh = _digits(text, p, 2)
            if oh is None or p + 2 >= end or text[p + 2] != ":":
                return None
            om = _digits(text, p + 3, 2)
            if om is None or oh > 23 or om > 59:
                return None
            offset = sign * (oh * 3600 + om * 60)
            p += 5
        if p != end:
            return None
    if (
        year < 1
        or mon < 1
        or mon > 12
        or day < 1
        or day > _days_in_month(year, mon)
        or hour > 23
        or minute > 59
        or sec > 59
    ):
        return None
    t = _days_from_civil(year, mon, day) * SEC_PER_DAY + hour * 3600 + minute * 60 + sec - offset
    t = t * US_PER_SEC + frac
    if t < TIME_MIN or t > TIME_MAX:
        return None
    return t


def format_us(t: int) -> str:
    """The canonical text of ``t`` (microseconds since the epoch, within
    [TIME_MIN, TIME_MAX]): ``2023-01-01T00:00:00Z``, ``.ffffff`` only when
    the microseconds are not zero."""
    if not TIME_MIN <= t <= TIME_MAX:
        raise InvalidInput("invalid_time", f"{t} µs lies outside 0001-01-01..9999-12-31")
    secs, us = divmod(t, US_PER_SEC)
    days, sod = divmod(secs, SEC_PER_DAY)
    y, m, d = _civil_from_days(days)
    text = f"{y:04d}-{m:02d}-{d:02d}T{sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}"
    if us:
        text += f".{us:06d}"
    return text + "Z"


def to_us(t: TimeLike, what: str = "time") -> int:
    """Microseconds since the epoch of a datetime (aware; naive = UTC), a date
    (midnight UTC) or a time text; raises :class:`InvalidInput`
    (``invalid_time``) for anything the agent would refuse."""
    if isinstance(t, str):
        v = parse_us(t)
        if v is None:
            raise InvalidInput(
                "invalid_time",
                f"{what} {t!r} is not a time: use RFC 3339 (2023-01-01T00:00:00Z, "
                "an offset, or none for UTC) or a date alone (2023-01-01, its midnight UTC)",
            )
        return v
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None or t.utcoffset() is None:
            t = t.replace(tzinfo=_dt.UTC)
        try:
            delta = t - _EPOCH
        except OverflowError:
            raise InvalidInput("invalid_time", f"{what} {t!r} is out of range") from None
        v = (delta.days * SEC_PER_DAY + delta.seconds) * US_PER_SEC + delta.microseconds
        if not TIME_MIN <= v <= TIME_MAX:
            raise InvalidInput("invalid_time", f"{what} {t!r} is out of range")
        return v
    if isinstance(t, _dt.date):
        return _days_from_civil(t.year, t.month, t.day) * SEC_PER_DAY * US_PER_SEC
    raise InvalidInput("invalid_time", f"{what} must be a datetime, a date or a string, not {t!r}")


def canonical(t: TimeLike, what: str = "time") -> str:
    """The canonical text of any accepted time: what is sent to the agent."""
    return format_us(to_us(t, what))


def from_us(t: int) -> _dt.datetime:
    """An aware UTC datetime of ``t`` microseconds since the epoch."""
    return _EPOCH + _dt.timedelta(microseconds=t)


def parse_time(text: str) -> _dt.datetime:
    """Parse a time text as the agent does, into an aware UTC datetime;
    raises :class:`InvalidInput` (``invalid_time``)."""
    return from_us(to_us(text))


def format_time(t: TimeLike) -> str:
    """The canonical text of a datetime (naive = UTC), date or time text."""
    return canonical(t)
