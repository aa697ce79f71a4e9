"""The peer model translated for pycasbin and cedarpy, plus a naive ``fnmatch`` baseline."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable

import casbin
import cedarpy
from model import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, PeerModel, Query, Rule, matching_actions
from timing import Job

# pycasbin spells "deny overrides, default deny" this way (its parser rejects the operands swapped).
CASBIN_MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && keyMatch(r.act, p.act)
"""


class CasbinPeer:
    """RBAC with deny-override: one ``p`` row per rule, ``g`` rows for group membership."""

    def __init__(self, model: PeerModel) -> None:
        text_model = casbin.model.Model()
        text_model.load_model_from_text(CASBIN_MODEL)
        self.enforcer = casbin.Enforcer(text_model)
        rows = [[r.group, r.resource, r.action, r.effect.lower()] for r in model.rules]
        members = [[u, g] for u, groups in model.memberships.items() for g in groups]
        if not (self.enforcer.add_policies(rows) and self.enforcer.add_grouping_policies(members)):
            raise RuntimeError("pycasbin refused the translated model")

    def allowed(self, query: Query) -> bool:
        """``enforcer.enforce(sub, obj, act)``."""
        return bool(self.enforcer.enforce(query.user, query.resource, query.action))


def _cedar_literal(text: str) -> str:
    """A Cedar string literal (the model never needs escapes, so refuse them)."""
    if '"' in text or "\\" in text:
        raise ValueError(f"unexpected character in {text!r}")
    return f'"{text}"'


def cedar_policy(rule: Rule) -> str:
    """A rule as a Cedar permit/forbid: group via ``principal in``, resource ARN via ``like``.

    Action wildcards expand over the action catalog (Cedar has no pattern on action ids).
    """
    verb = "permit" if rule.effect == "Allow" else "forbid"
    actions = matching_actions(rule.action)
    if "*" not in rule.action:
        scope = f"action == Action::{_cedar_literal(rule.action)}"
    else:
        scope = "action in [" + ", ".join(f"Action::{_cedar_literal(a)}" for a in actions) + "]"
    return (
        f"{verb}(principal in Group::{_cedar_literal(rule.group)}, {scope}, resource)"
        f" when {{ resource.arn like {_cedar_literal(rule.resource)} }};"
    )


def _uid(kind: str, ident: str) -> dict[str, str]:
    """A Cedar entity reference in JSON form."""
    return {"type": kind, "id": ident}


class CedarPeer:
    """The rules as one Cedar policy set; users are entities whose parents are their groups."""

    def __init__(self, model: PeerModel, queries: list[Query]) -> None:
        self.text = "\n".join(cedar_policy(r) for r in model.rules)
        self.policy_set = cedarpy.PolicySet.from_str(self.text)
        self._memberships = model.memberships
        users = [
            {"uid": _uid("User", u), "attrs": {}, "parents": [_uid("Group", g) for g in groups]}
            for u, groups in model.memberships.items()
        ]
        groups = [{"uid": _uid("Group", g), "attrs": {}, "parents": []} for g in model.groups]
        resources = {q.resource: self._resource(q.resource) for q in queries}
        self.entities = cedarpy.Entities.from_json_str(
            json.dumps(users + groups + list(resources.values()))
        )

    @staticmethod
    def _resource(resource: str) -> dict:
        """A resource entity whose ``arn`` attribute the ``like`` conditions read."""
        return {"uid": _uid("Resource", resource), "attrs": {"arn": resource}, "parents": []}

    @staticmethod
    def request(query: Query) -> dict:
        """The Cedar request for a query."""
        return {
            "principal": _uid("User", query.user),
            "action": _uid("Action", query.action),
            "resource": _uid("Resource", query.resource),
        }

    def entities_json(self, query: Query) -> str:
        """Just the entities one query needs (user, its groups, the resource) as JSON text."""
        groups = self._memberships[query.user]
        return json.dumps(
            [
                {
                    "uid": _uid("User", query.user),
                    "attrs": {},
                    "parents": [_uid("Group", g) for g in groups],
                },
                *({"uid": _uid("Group", g), "attrs": {}, "parents": []} for g in groups),
                self._resource(query.resource),
            ]
        )

    def allowed(self, query: Query) -> bool:
        """Decide with the pre-parsed handles, failing loudly on evaluation errors."""
        result = cedarpy.is_authorized(self.request(query), self.policy_set, self.entities)
        if result.diagnostics.errors:
            raise RuntimeError(f"cedar errors for {query}: {result.diagnostics.errors}")
        return result.decision == cedarpy.Decision.Allow


CompiledStatement = tuple[bool, Callable[[str], object], Callable[[str], object]]


def _patterns(value: str | list[str]) -> list[str]:
    """An Action/Resource value as a list."""
    return [value] if isinstance(value, str) else value


def compile_statement(statement: dict) -> CompiledStatement:
    """(is_deny, action match, resource match) via ``fnmatch.translate``; actions ignore case."""
    action = re.compile(
        "|".join(map(fnmatch.translate, _patterns(statement["Action"]))), re.IGNORECASE
    )
    resource = re.compile("|".join(map(fnmatch.translate, _patterns(statement["Resource"]))))
    return statement["Effect"] == "Deny", action.match, resource.match


def fnmatch_decide(statements: list[CompiledStatement], action: str, resource: str) -> str:
    """Deny overrides allow; no match is an implicit deny. Conditions are not supported."""
    allowed = False
    for deny, action_match, resource_match in statements:
        if action_match(action) and resource_match(resource):
            if deny:
                return EXPLICIT_DENY
            allowed = True
    return ALLOW if allowed else IMPLICIT_DENY


class FnmatchBaseline:
    """Each group's statements compiled once; a user's list is gathered once and cached."""

    def __init__(self, model: PeerModel) -> None:
        by_group = {
            g: [compile_statement(s) for s in model.group_policy(g)["Statement"]]
            for g in model.groups
        }
        self.by_user = {
            u: [s for g in groups for s in by_group[g]] for u, groups in model.memberships.items()
        }

    def decide(self, query: Query) -> str:
        """The effect for a query."""
        return fnmatch_decide(self.by_user[query.user], query.action, query.resource)


def check(engine: str, allowed: list[bool], queries: list[Query]) -> None:
    """Fail loudly unless the engine allowed exactly the queries whose expected effect is Allow."""
    wrong = [q for q, yes in zip(queries, allowed, strict=True) if yes != (q.expected == ALLOW)]
    if wrong:
        raise AssertionError(
            f"{engine} disagrees on {len(wrong)} of {len(queries)} queries "
            f"(the translation is wrong), first: {wrong[0]}"
        )


def peer_jobs(model: PeerModel, queries: list[Query]) -> list[Job]:
    """Figure 4, peer side: check every answer of every engine, then hand out what to time."""
    baseline, casbin_peer = FnmatchBaseline(model), CasbinPeer(model)
    cedar = CedarPeer(model, queries)
    per_call = [(cedar.request(q), cedar.entities_json(q)) for q in queries]

    def cedar_text(item: tuple[dict, str]) -> bool:
        return cedarpy.is_authorized(item[0], cedar.text, item[1]).allowed

    check("fnmatch baseline", [baseline.decide(q) == ALLOW for q in queries], queries)
    check("pycasbin", [casbin_peer.allowed(q) for q in queries], queries)
    check("cedarpy", [cedar.allowed(q) for q in queries], queries)
    check("cedarpy (policy text)", [cedar_text(item) for item in per_call], queries)
    enforcer, policy_set, entities = casbin_peer.enforcer, cedar.policy_set, cedar.entities
    return [
        Job(
            "fnmatch baseline",
            "fnmatch.translate regexes, deny overrides",
            lambda i: fnmatch_decide(*i),
            [(baseline.by_user[q.user], q.action, q.resource) for q in queries],
        ),
        Job(
            "cedarpy",
            "PolicySet + Entities handles parsed once",
            lambda r: cedarpy.is_authorized(r, policy_set, entities),
            [i[0] for i in per_call],
        ),
        Job(
            "cedarpy, text",
            "policy text + the query's entities as JSON per call",
            cedar_text,
            per_call,
        ),
        Job(
            "pycasbin",
            "enforcer.enforce(sub, obj, act)",
            lambda q: enforcer.enforce(q.user, q.resource, q.action),
            queries,
        ),
    ]
