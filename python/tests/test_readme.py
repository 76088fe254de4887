# SPDX-License-Identifier: MIT
"""The README's Python example runs as written (its placeholders given
values, its broker this test's)."""

from __future__ import annotations

import re

from .conftest import REPO, Stack, needs_agent

pytestmark = needs_agent


def readme_block() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Python: the partreg package", 1)[1]
    m = re.search(r"```python\n(.*?)\n```", section, re.S)
    assert m is not None, "no python block in the README's Python section"
    return m.group(1)


def test_readme_example(stack: Stack) -> None:
    code = readme_block()
    assert '"mqtt://127.0.0.1:1883"' in code
    code = code.replace('"mqtt://127.0.0.1:1883"', repr(stack.url))
    with stack.client() as c:
        token = c.source.register("sales", "data-team")["access_token"]
        c.provider.register("sales", "nightly_export", token=token)
    exported: list[tuple[str, int]] = []

    def export(day: str, fence: int) -> int:
        exported.append((day, fence))
        return 123

    exec(code, {"TOKEN": token, "RUN_ID": "run-1", "export": export})
    assert exported == [("2023-01-01", 1)]
    with stack.client() as c:
        (p,) = c.partition.list("sales")["items"]
        assert (p["state"], p["metadata"]) == ("ready", {"run": "run-1", "rows": 123})
