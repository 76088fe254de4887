# SPDX-License-Identifier: MIT
"""The shared readiness vectors (tests/vectors/readiness.json), which
libpartreg runs too (unit.test_vectors): both decide every case alike."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from partreg import Summary, SummaryError, UnsupportedFormat

from .conftest import REPO


def _vectors() -> list[dict[str, Any]]:
    d = os.environ.get("PARTREG_VECTORS")
    path = Path(d) if d else REPO / "tests" / "vectors"
    cases: list[dict[str, Any]] = json.loads((path / "readiness.json").read_text())
    return cases


CASES = _vectors()


def test_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({c["name"] for c in CASES}) == len(CASES), "names must be unique"
    assert any(c["expect"].get("error") for c in CASES)
    assert any("v" not in c["summary"] for c in CASES), "format 1 is covered"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case: dict[str, Any]) -> None:
    expect = case["expect"]
    text = json.dumps(case["summary"])
    if expect.get("error"):
        with pytest.raises((SummaryError, UnsupportedFormat)):
            Summary.parse(text)
        return
    s = Summary.parse(text)
    got = s.readiness(case["want"]["start"], case["want"]["end"]).as_dict()
    assert got == expect
