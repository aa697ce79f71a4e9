"""Shared test configuration: the per-feature agreement report for data-driven cases."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

pytest_plugins = ["store_backends"]  # tests/store_backends.py: a store of every kind, as fixtures

_tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # label -> [agreed, total]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count each data-driven case under its file and under each of its feature tags."""
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "case_labels":
            for label in value:
                _tally[label][0] += report.passed
                _tally[label][1] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print agreement per case file, then per feature tag."""
    if not _tally:
        return
    terminalreporter.section("policy evaluation agreement")
    files = sorted(k for k in _tally if k.startswith("file:"))
    tags = sorted(k for k in _tally if not k.startswith("file:"))
    for label in files + tags:
        ok, total = _tally[label]
        flag = "" if ok == total else "  <- disagreements"
        terminalreporter.write_line(f"{label:40} {ok:4}/{total:<4}{flag}")
