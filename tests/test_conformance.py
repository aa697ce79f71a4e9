"""Evaluation agrees with an independent IAM simulator and with AWS's documented examples.

Agreement per feature tag is printed at the end of the run (see conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from casefiles import load_cases, run_case

PUBLIC = load_cases("conformance_public.jsonl", "conformance_public.expected.jsonl")
DOCS = load_cases("aws_docs_cases.jsonl")


def _check(case: dict[str, Any], record_property: Any, source: str) -> None:
    record_property("case_labels", [f"file:{source}", *case.get("tags", [])])
    decision = run_case(case)
    assert decision.errors == ()
    assert decision.effect == case["expected"], case.get("note")
    grouped = run_case(case, grouped=True)
    assert (grouped.effect, grouped.statements) == (decision.effect, decision.statements)


@pytest.mark.parametrize("case", PUBLIC, ids=[c["id"] for c in PUBLIC])
def test_public_conformance_case(case: dict[str, Any], record_property: Any) -> None:
    """The engine's decision equals the independent simulator's."""
    _check(case, record_property, "conformance_public")


@pytest.mark.parametrize("case", DOCS, ids=[c["id"] for c in DOCS])
def test_documented_case(case: dict[str, Any], record_property: Any) -> None:
    """The engine's decision equals the one AWS's documentation determines."""
    _check(case, record_property, "aws_docs_cases")


def test_case_files_are_complete() -> None:
    """All 400 public cases are present with an expected decision each, ids unique."""
    assert len(PUBLIC) == 400
    assert len({c["id"] for c in PUBLIC + DOCS}) == len(PUBLIC) + len(DOCS)
    assert {c["expected"] for c in PUBLIC} == {"Allow", "ExplicitDeny", "ImplicitDeny"}
