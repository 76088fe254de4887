# SPDX-License-Identifier: MIT
"""partreg's time texts: the same tables as libpartreg's (tests/unit/test_ptime.c,
read from the source tree), so the Python parser accepts and refuses what the
agent does."""

from __future__ import annotations

import datetime as dt
import re

import pytest

import partreg
from partreg._time import TIME_MAX, TIME_MIN, canonical, format_us, parse_us, to_us

from .conftest import REPO

S = 1_000_000


def _c_tables() -> tuple[list[tuple[str, int]], list[str], list[tuple[int, str]]]:
    """goods, bads and fmts of test_ptime.c, their C expressions evaluated."""
    text = (REPO / "tests" / "unit" / "test_ptime.c").read_text()

    def value(expr: str) -> int:
        expr = re.sub(r"INT64_C\((-?\d+)\)", r"\1", expr)
        expr = expr.replace("PR_TIME_MIN", str(TIME_MIN)).replace("PR_TIME_MAX", str(TIME_MAX))
        assert re.fullmatch(r"[-+*() \dS]+", expr), expr
        return int(eval(expr, {"S": S}))

    def block(name: str) -> str:
        m = re.search(r"\b" + name + r"\[\] = \{(.*?)\n\};", text, re.S)
        assert m is not None, name
        return re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)

    goods = [(t, value(v)) for t, v in re.findall(r'\{ "([^"]*)", ([^}]+) \}', block("goods"))]
    fmts = [(value(v), t) for v, t in re.findall(r'\{ ([^,]+), "([^"]*)" \}', block("fmts"))]
    bads = [
        bytes(s, "ascii").decode("unicode_escape")
        for s in re.findall(r'"((?:[^"\\]|\\.)*)"', block("bads"))
    ]
    return goods, bads, fmts


GOODS, BADS, FMTS = _c_tables()


def test_tables_were_read() -> None:
    assert len(GOODS) >= 40 and len(BADS) >= 80 and len(FMTS) >= 10


@pytest.mark.parametrize(("text", "want"), GOODS)
def test_parse_good(text: str, want: int) -> None:
    assert parse_us(text) == want
    # The canonical text parses back to the same instant.
    assert parse_us(format_us(want)) == want


@pytest.mark.parametrize("text", BADS)
def test_parse_bad(text: str) -> None:
    assert parse_us(text) is None
    with pytest.raises(partreg.InvalidInput) as e:
        to_us(text)
    assert e.value.code == "invalid_time"


@pytest.mark.parametrize(("t", "want"), FMTS)
def test_format(t: int, want: str) -> None:
    assert format_us(t) == want


def test_nul_and_trailing_text_refused() -> None:
    assert parse_us("2023-01-01T00:00:00\0Z") is None
    assert parse_us("2023-01-01T00:00:00Z\0") is None
    assert parse_us("2023-01-01T00:00:00Zjunk") is None


def test_datetimes_and_dates() -> None:
    day = 1672531200 * S
    assert to_us(dt.datetime(2023, 1, 1)) == day  # naive = UTC
    assert to_us(dt.datetime(2023, 1, 1, tzinfo=dt.UTC)) == day
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert to_us(dt.datetime(2023, 1, 1, 2, tzinfo=plus2)) == day
    assert to_us(dt.date(2023, 1, 1)) == day
    assert to_us(dt.datetime(2023, 1, 1, 0, 0, 0, 5)) == day + 5
    assert to_us(dt.date(1, 1, 1)) == TIME_MIN
    assert to_us(dt.datetime(9999, 12, 31, 23, 59, 59, 999999)) == TIME_MAX
    assert canonical(dt.datetime(2023, 1, 1, 0, 0, 0, 500000)) == "2023-01-01T00:00:00.500000Z"
    assert canonical("2023-01-01 02:00:00+02:00") == "2023-01-01T00:00:00Z"
    assert canonical("2023-01-01") == "2023-01-01T00:00:00Z"
    # Before year 1 once in UTC: refused, as the agent refuses the text.
    with pytest.raises(partreg.InvalidInput):
        to_us(dt.datetime(1, 1, 1, 0, 30, tzinfo=plus2))
    with pytest.raises(partreg.InvalidInput):
        to_us(123)  # type: ignore[arg-type]


def test_public_helpers() -> None:
    t = partreg.parse_time("2023-01-01T01:00:00+01:00")
    assert t == dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    assert partreg.format_time(t) == "2023-01-01T00:00:00Z"
    assert partreg.format_time(dt.date(2023, 1, 2)) == "2023-01-02T00:00:00Z"
    with pytest.raises(ValueError, match="invalid_time"):
        partreg.parse_time("2023-02-30")


def test_sweep_round_trips() -> None:
    # Awkward steps across the whole range, as test_ptime.c's sweep.
    t = TIME_MIN
    step = 86_399_999_977 * 370
    while t <= TIME_MAX:
        assert parse_us(format_us(t)) == t
        d = from_dt(t)
        assert to_us(d) == t
        t += step


def from_dt(t: int) -> dt.datetime:
    return partreg.parse_time(format_us(t))
