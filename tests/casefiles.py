"""Data-driven evaluation cases (tests/data/*.jsonl) and how to run one through the engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iamguard import AccessRequest, Decision, Policy, PolicySet, evaluate

DATA = Path(__file__).parent / "data"


def load_cases(name: str, expected_name: str | None = None) -> list[dict[str, Any]]:
    """Cases from ``name``; the expected decisions inline (``expected``) or from a second file."""
    with (DATA / name).open(encoding="utf-8") as f:
        cases = [json.loads(line) for line in f if line.strip()]
    if expected_name is not None:
        with (DATA / expected_name).open(encoding="utf-8") as f:
            expected = {e["id"]: e["decision"] for e in map(json.loads, f) if e}
        for case in cases:
            case["expected"] = expected[case["id"]]
    return cases


def run_case(case: dict[str, Any], grouped: bool = False) -> Decision:
    """Evaluate one case as the public API is meant to be called.

    ``grouped``: pass each list of policies as a ``PolicySet`` instead of a list.
    """
    kind: Any = PolicySet if grouped else list
    request = case["request"]
    session = case.get("sessionPolicy")
    resource = case.get("resourcePolicy")
    return evaluate(
        AccessRequest(
            principal=request["principal"],
            action=request["action"],
            resource=request["resource"],
            context=request.get("context") or {},
        ),
        identity=kind(Policy.parse(p) for p in case.get("identityPolicies") or []),
        boundaries=kind(Policy.parse(p) for p in case.get("permissionsBoundaries") or []),
        session=kind([Policy.parse(session)] if session else []),
        resource=Policy.parse(resource, kind="resource") if resource else None,
    )
