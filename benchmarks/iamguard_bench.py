"""The iamguard side of every figure: compile, check every answer, then time.

A timed decision builds its ``AccessRequest`` and calls ``evaluate``, as an app does per HTTP
request: a request object caches its normalized context, so reusing one would understate the cost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from model import (
    EFFECTS,
    PeerModel,
    Query,
    parse_documents,
    pathological_cases,
    scaling_model,
    scaling_queries,
    user_arn,
)
from peers import compile_statement, fnmatch_decide
from timing import Job, finishes, sample

from iamguard import AccessRequest, Policy, PolicySet, evaluate

TARGET = "user00000"
# (principal ARN, action, resource, context, identity policies)
Item = tuple[str, str, str, dict[str, str], Sequence[Policy]]


def make_item(query: Query, policies: Sequence[Policy]) -> Item:
    """What one timed decision needs."""
    return user_arn(query.user), query.action, query.resource, query.context, policies


def run(item: Item) -> Any:
    """The timed call: build the request and evaluate it against identity policies."""
    principal, action, resource, context, policies = item
    request = AccessRequest(principal=principal, action=action, resource=resource, context=context)
    return evaluate(request, identity=policies)


def decide(item: Item) -> str:
    """The name of the effect ``run`` decides."""
    effect = run(item).effect
    return next(name for name in EFFECTS if effect == name)


def verify(items: Sequence[Item], queries: Sequence[Query], what: str) -> None:
    """Fail loudly unless every query gets its expected effect."""
    wrong = [
        (q, got)
        for q, item in zip(queries, items, strict=True)
        if (got := decide(item)) != q.expected
    ]
    if wrong:
        listing = "\n".join(
            f"  {q.action} {q.resource[:100]} {q.context}: expected {q.expected}, got {got}"
            for q, got in wrong[:10]
        )
        raise AssertionError(f"iamguard gave {len(wrong)} wrong answers in {what}:\n{listing}")


def compile_all(documents: Sequence[dict]) -> list[Policy]:
    """Parse and compile identity policy documents."""
    return [Policy.parse(doc, kind="identity") for doc in documents]


def scaling_figure(size: int, seed: int, variants: int, budget_s: float) -> dict:
    """Figure 1: decisions for the target principal while a model of ``size`` statements is live."""
    documents = scaling_model(size, seed)
    start = time.perf_counter()
    live = {user: PolicySet(compile_all(docs)) for user, docs in documents.items()}
    compile_s = time.perf_counter() - start
    queries = scaling_queries(TARGET, variants)
    items = [make_item(q, live[TARGET]) for q in queries]
    verify(items, queries, f"the {size:,}-statement model")
    # The naive baseline: every one of the principal's statements through fnmatch regexes,
    # action and resource only (it has no conditions or variables, so its answers differ).
    naive = [compile_statement(st) for doc in documents[TARGET] for st in doc["Statement"]]
    baseline = sample(lambda q: fnmatch_decide(naive, q.action, q.resource), queries, budget_s)
    return {
        "statements": size,
        "principals": len(live),
        "compile_s": compile_s,
        "queries": len(items),
        "stats": sample(run, items, budget_s),
        "baseline": baseline,
    }


def pathological_figure(budget_s: float, timeout_s: float) -> list[dict]:
    """Figure 2: iamguard and the fnmatch-regex baseline on star-heavy patterns.

    Each is first run once in a child process; one still running after ``timeout_s`` is reported
    as a timeout (``None``) instead of hanging the suite.
    """
    rows = []
    for case in pathological_cases():
        item = make_item(case.query, compile_all([case.document]))
        compiled = [compile_statement(case.document["Statement"][0])]
        action, resource = case.query.action, case.query.resource
        row: dict = {"case": case.name, "iamguard": None, "fnmatch": None}
        if finishes(lambda item=item: run(item), timeout_s):
            verify([item], [case.query], case.name)
            row["iamguard"] = sample(run, [item], budget_s)
        if finishes(lambda c=compiled, a=action, r=resource: fnmatch_decide(c, a, r), timeout_s):
            if fnmatch_decide(compiled, action, resource) != case.query.expected:
                raise AssertionError(f"the fnmatch baseline is wrong on {case.name}")
            row["fnmatch"] = sample(
                lambda c, a=action, r=resource: fnmatch_decide(c, a, r), [compiled], budget_s
            )
        rows.append(row)
    return rows


def parse_figure(count: int, seed: int) -> list[dict]:
    """Figure 3: ``Policy.parse`` on distinct realistic documents, from mappings and JSON text.

    Every timed document is parsed exactly once (warm-up uses other documents), so no memo helps.
    """
    documents = parse_documents(2 * count + 100, seed)
    compile_all(documents[-100:])
    statements = sum(len(d["Statement"]) for d in documents[: 2 * count]) / (2 * count)
    rows = []
    for form, inputs in (
        ("mapping", documents[:count]),
        ("JSON text", [json.dumps(d) for d in documents[count : 2 * count]]),
    ):
        stats = sample(lambda doc: Policy.parse(doc, kind="identity"), inputs, 0, warmup=False)
        per_second = 1e9 / stats.mean_ns
        rows.append(
            {
                "form": form,
                "stats": stats,
                "policies_per_s": per_second,
                "statements_per_s": per_second * statements,
            }
        )
    return rows


def peer_jobs(model: PeerModel, queries: Sequence[Query]) -> list[Job]:
    """Figure 4, iamguard side: cached policy lists, gathering per call, and cold policies."""
    documents = {g: model.group_policy(g) for g in model.groups}
    by_group = {g: compile_all([doc]) for g, doc in documents.items()}
    memberships = model.memberships
    by_user = {
        u: PolicySet(p for g in groups for p in by_group[g]) for u, groups in memberships.items()
    }
    cached = [make_item(q, by_user[q.user]) for q in queries]
    as_lists = [make_item(q, list(by_user[q.user])) for q in queries]
    verify(cached, queries, "the peer model")

    def gather_and_run(item: tuple[str, str, str, dict[str, str], str]) -> object:
        principal, action, resource, context, user = item
        request = AccessRequest(
            principal=principal, action=action, resource=resource, context=context
        )
        return evaluate(request, identity=[p for g in memberships[user] for p in by_group[g]])

    def fresh() -> list[Item]:
        return [
            make_item(q, compile_all([documents[g] for g in memberships[q.user]])) for q in queries
        ]

    verify(fresh(), queries, "the peer model (cold policies)")
    gathered = [(*item[:4], q.user) for item, q in zip(cached, queries, strict=True)]
    return [
        Job("iamguard", "a PolicySet per principal, built once", run, cached),
        Job("iamguard, list", "the same policies as a plain list", run, as_lists),
        Job(
            "iamguard + gather",
            "dict look-ups user->groups->policies per call",
            gather_and_run,
            gathered,
        ),
        Job("iamguard, cold", "first decision on freshly parsed policies", run, fresh(), once=True),
    ]
