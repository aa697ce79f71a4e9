"""Deterministic (seeded) synthetic permission models, queries and documents for the benchmarks.

All resources are app resources such as ``arn:iamguard:images::123456789012:image/42``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

ACCOUNT = "123456789012"
ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"
EFFECTS = (ALLOW, EXPLICIT_DENY, IMPLICIT_DENY)

# service -> (resource type, actions)
CATALOG: dict[str, tuple[str, tuple[str, ...]]] = {
    "images": (
        "image",
        ("GetImage", "GetThumbnail", "ListImages", "PutImage", "TagImage", "DeleteImage"),
    ),
    "docs": ("doc", ("GetDoc", "ListDocs", "PutDoc", "ShareDoc", "DeleteDoc")),
    "reports": ("report", ("GetReport", "ListReports", "RunReport", "DeleteReport")),
    "billing": ("invoice", ("GetInvoice", "ListInvoices", "PayInvoice", "DeleteInvoice")),
}
ALL_ACTIONS = tuple(f"{svc}:{act}" for svc, (_, acts) in CATALOG.items() for act in acts)
TRUSTED_NETS = ["10.0.0.0/8", "192.168.0.0/16"]


def arn(service: str, path: str) -> str:
    """ARN of an app resource in the benchmark account."""
    return f"arn:iamguard:{service}::{ACCOUNT}:{path}"


def user_arn(name: str) -> str:
    """ARN of an IAM user in the benchmark account."""
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


@dataclass(frozen=True)
class Query:
    """One authorization question, with the answer it must get (``None``: not known upfront)."""

    user: str
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)
    expected: str | None = None


def policy(sid_prefix: str, statements: list[dict]) -> dict:
    """An IAM policy document holding ``statements``, each given a Sid."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": f"{sid_prefix}S{i}", **s} for i, s in enumerate(statements)],
    }


# --- Figure 1: a principal with 10 policies / 100 statements, in models of growing size. ---

STATEMENTS_PER_PRINCIPAL = 100
POLICIES_PER_PRINCIPAL = 10
FILLER_SERVICES = tuple(f"app{i:02d}" for i in range(12))


def _key_statements() -> list[dict]:
    """The statements that decide the figure-1 queries (same for every principal)."""
    return [
        {
            "Effect": "Allow",
            "Action": ["images:Get*", "images:List*"],
            "Resource": arn("images", "image/*"),
        },
        {"Effect": "Deny", "Action": "images:DeleteImage", "Resource": arn("images", "image/*")},
        {
            "Effect": "Allow",
            "Action": "images:PutImage",
            "Resource": arn("images", "image/blue-*"),
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}},
        },
        {"Effect": "Allow", "Action": "docs:*", "Resource": arn("docs", "doc/${aws:username}/*")},
        {"Effect": "Deny", "Action": "docs:DeleteDoc", "Resource": arn("docs", "doc/*/locked-*")},
        {
            "Effect": "Allow",
            "Action": ["reports:Get*", "reports:List*"],
            "Resource": arn("reports", "report/*"),
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": ["blue", "green"]}},
        },
        {
            "Effect": "Allow",
            "Action": "billing:GetInvoice",
            "Resource": arn("billing", "invoice/*"),
            "Condition": {"IpAddress": {"aws:SourceIp": TRUSTED_NETS}},
        },
        {
            "Effect": "Deny",
            "Action": "billing:*",
            "Resource": arn("billing", "*"),
            "Condition": {"NotIpAddress": {"aws:SourceIp": TRUSTED_NETS}},
        },
    ]


def _filler_statement(rng: random.Random) -> dict:
    """A realistic statement that applies to none of the figure-1 queries.

    Same-service fillers name resources whose ids start with ``f``; no query resource does.
    """
    if rng.random() < 0.5:
        service = rng.choice(list(CATALOG))
        rtype, actions = CATALOG[service]
    else:
        service, rtype, actions = rng.choice(FILLER_SERVICES), "item", ("GetItem", "PutItem")
    action_choice = rng.random()
    if action_choice < 0.4:
        action: str | list[str] = f"{service}:{rng.choice(actions)}"
    elif action_choice < 0.7:
        action = [f"{service}:{rng.choice(actions)[:3]}*", f"{service}:{rng.choice(actions)}"]
    else:
        action = f"{service}:*"
    n = rng.randrange(10_000)
    resource_choice = rng.random()
    if resource_choice < 0.3:
        resource: str | list[str] = arn(service, f"{rtype}/f{n}")
    elif resource_choice < 0.6:
        resource = [arn(service, f"{rtype}/f{n}-*"), arn(service, f"{rtype}/f{n + 1}-*")]
    else:
        resource = arn(service, f"{rtype}/f{n}/${{aws:username}}/*")
    statement: dict = {
        "Effect": "Deny" if rng.random() < 0.15 else "Allow",
        "Action": action,
        "Resource": resource,
    }
    if rng.random() < 0.3:
        team = rng.choice(["red", "green", "blue", "ops"])
        statement["Condition"] = {"StringEquals": {"aws:PrincipalTag/team": team}}
    return statement


def principal_policies(index: int, seed: int) -> tuple[str, list[dict]]:
    """User name and its 10 policy documents (100 statements), determined by ``(index, seed)``."""
    rng = random.Random(f"{seed}/principal/{index}")
    key = _key_statements()
    statements = [_filler_statement(rng) for _ in range(STATEMENTS_PER_PRINCIPAL - len(key))]
    for position, statement in zip(
        sorted(rng.sample(range(len(statements)), len(key))), key, strict=True
    ):
        statements.insert(position, statement)
    per = STATEMENTS_PER_PRINCIPAL // POLICIES_PER_PRINCIPAL
    name = f"user{index:05d}"
    docs = [
        policy(f"U{index}P{p}", statements[p * per : (p + 1) * per])
        for p in range(POLICIES_PER_PRINCIPAL)
    ]
    return name, docs


def scaling_model(total_statements: int, seed: int) -> dict[str, list[dict]]:
    """User name -> policy documents, ``total_statements`` in all; user ``user00000`` is the target.

    Every principal's documents depend only on its index, so the target is identical at every size.
    """
    count = total_statements // STATEMENTS_PER_PRINCIPAL
    return dict(principal_policies(i, seed) for i in range(count))


def scaling_queries(user: str, variants: int) -> list[Query]:
    """A fixed mix of allowed, explicitly and implicitly denied queries, in ``variants`` copies.

    Copies differ in resource ids and source addresses, so no two requests are identical.
    """
    queries: list[Query] = []
    for k in range(variants):
        inside = f"10.{k % 250}.{(7 * k) % 250}.7"
        outside = f"203.0.113.{k % 250}"

        def ctx(team: str = "blue", ip: str = inside) -> dict[str, str]:
            return {"aws:username": user, "aws:PrincipalTag/team": team, "aws:SourceIp": ip}

        image, doc = arn("images", f"image/{k}"), arn("docs", f"doc/{user}/{k}")
        report, invoice = arn("reports", f"report/{k}"), arn("billing", f"invoice/{k}")
        queries += [
            Query(user, "images:GetImage", image, ctx(), ALLOW),
            Query(user, "images:ListImages", image, ctx(), ALLOW),
            Query(user, "images:DeleteImage", image, ctx(), EXPLICIT_DENY),
            Query(user, "images:TagImage", image, ctx(), IMPLICIT_DENY),
            Query(user, "images:PutImage", arn("images", f"image/blue-{k}"), ctx(), ALLOW),
            Query(
                user, "images:PutImage", arn("images", f"image/blue-{k}"), ctx("red"), IMPLICIT_DENY
            ),
            Query(user, "docs:GetDoc", doc, ctx(), ALLOW),
            Query(user, "docs:GetDoc", arn("docs", f"doc/someone/{k}"), ctx(), IMPLICIT_DENY),
            Query(
                user, "docs:DeleteDoc", arn("docs", f"doc/{user}/locked-{k}"), ctx(), EXPLICIT_DENY
            ),
            Query(user, "reports:GetReport", report, ctx("green"), ALLOW),
            Query(user, "reports:GetReport", report, ctx("red"), IMPLICIT_DENY),
            Query(user, "billing:GetInvoice", invoice, ctx(), ALLOW),
            Query(user, "billing:GetInvoice", invoice, ctx(ip=outside), EXPLICIT_DENY),
            Query(user, "billing:PayInvoice", invoice, ctx(), IMPLICIT_DENY),
            Query(user, "videos:GetVideo", arn("videos", f"video/{k}"), ctx(), IMPLICIT_DENY),
        ]
    return queries


# --- Figure 4: the model shared with the peers (users in groups, rules attached to groups). ---


@dataclass(frozen=True)
class Rule:
    """One statement attached to a group: a single action pattern and resource pattern."""

    group: str
    effect: str  # "Allow" | "Deny"
    action: str
    resource: str


@dataclass
class PeerModel:
    """Users, groups, memberships and group rules; rules use only trailing ``*`` wildcards."""

    users: list[str]
    groups: list[str]
    memberships: dict[str, list[str]]
    rules: list[Rule]

    def group_policy(self, group: str) -> dict:
        """The group's rules as one IAM policy document."""
        return policy(
            group,
            [
                {"Effect": r.effect, "Action": r.action, "Resource": r.resource}
                for r in self.rules
                if r.group == group
            ],
        )


def matching_actions(pattern: str) -> list[str]:
    """Catalog actions that an action pattern with ``*`` wildcards matches."""
    return [a for a in ALL_ACTIONS if fnmatchcase(a, pattern)]


def _peer_rule(rng: random.Random, group: str, effect: str) -> Rule:
    """A random rule for ``group``; Deny rules cover ids with a two-digit prefix."""
    service = rng.choice(list(CATALOG))
    rtype, actions = CATALOG[service]
    act = rng.choice(actions)
    if effect == "Deny":
        action = rng.choice([f"{service}:Delete*", f"{service}:{act}", f"{service}:{act[:3]}*"])
        path = f"{rtype}/{rng.randrange(10)}{rng.randrange(10)}*"
        return Rule(group, effect, action, arn(service, path))
    choice = rng.random()
    action = (
        f"{service}:{act}"
        if choice < 0.4
        else f"{service}:{act[:3]}*"
        if choice < 0.8
        else f"{service}:*"
    )
    choice = rng.random()
    path = (
        f"{rtype}/{rng.randrange(1000)}"
        if choice < 0.3
        else f"{rtype}/{rng.randrange(10)}*"
        if choice < 0.8
        else f"{rtype}/*"
    )
    return Rule(group, effect, action, arn(service, path))


def peer_model(
    seed: int,
    users: int = 1000,
    groups: int = 50,
    allows: int = 200,
    denies: int = 20,
    groups_per_user: int = 3,
) -> PeerModel:
    """The comparable model: rules dealt round-robin to groups, each user in a few groups."""
    rng = random.Random(f"{seed}/peers")
    group_names = [f"group{g:02d}" for g in range(groups)]
    user_names = [f"user{u:04d}" for u in range(users)]
    memberships = {u: sorted(rng.sample(group_names, groups_per_user)) for u in user_names}
    rules: list[Rule] = []
    seen: set[Rule] = set()
    for i, effect in enumerate(["Allow"] * allows + ["Deny"] * denies):
        rule = _peer_rule(rng, group_names[i % groups], effect)
        while rule in seen:
            rule = _peer_rule(rng, group_names[i % groups], effect)
        seen.add(rule)
        rules.append(rule)
    return PeerModel(user_names, group_names, memberships, rules)


def _instantiate(rng: random.Random, user: str, rule: Rule) -> Query:
    """A query that the rule's action and resource patterns match."""
    action = rng.choice(matching_actions(rule.action))
    resource = rule.resource
    if resource.endswith("*"):
        resource = resource[:-1] + str(rng.randrange(1000))
    return Query(user, action, resource)


def peer_queries(
    model: PeerModel, classify: Callable[[Query], str], per_effect: int, seed: int
) -> list[Query]:
    """``per_effect`` queries of each effect, labelled with ``classify``'s answer, interleaved."""
    rng = random.Random(f"{seed}/peer-queries")
    rules_by_group: dict[str, list[Rule]] = {g: [] for g in model.groups}
    for rule in model.rules:
        rules_by_group[rule.group].append(rule)
    buckets: dict[str, list[Query]] = {e: [] for e in EFFECTS}
    while any(len(b) < per_effect for b in buckets.values()):
        user = rng.choice(model.users)
        mine = [r for g in model.memberships[user] for r in rules_by_group[g]]
        if rng.random() < 0.8 and mine:
            query = _instantiate(rng, user, rng.choice(mine))
        else:
            service = rng.choice(list(CATALOG))
            rtype, actions = CATALOG[service]
            query = Query(
                user,
                f"{service}:{rng.choice(actions)}",
                arn(service, f"{rtype}/{rng.randrange(10_000)}"),
            )
        effect = classify(query)
        if len(buckets[effect]) < per_effect:
            buckets[effect].append(Query(query.user, query.action, query.resource, {}, effect))
    return [q for trio in zip(*buckets.values(), strict=True) for q in trio]


# --- Figure 2: pathological wildcards. ---


@dataclass(frozen=True)
class Pathological:
    """A one-statement policy and a query built to make backtracking matchers blow up."""

    name: str
    document: dict
    query: Query


def pathological_cases() -> list[Pathological]:
    """Star-heavy resource and action patterns against long subjects."""
    stars = "*a" * 49 + "*b"  # 50 '*' separated by 'a', then an end the subjects may lack
    res_pattern = arn("images", f"image/{stars}")
    long_miss = arn("images", "image/" + "a" * 10_240 + "c")
    long_hit = arn("images", "image/" + "a" * 10_240 + "b")
    act_pattern = "images:" + "?*" * 32 + "Z"
    long_action = "images:" + "A" * 1_000

    def case(name: str, action_pattern: str, resource_pattern: str, query: Query) -> Pathological:
        doc = policy(
            "P", [{"Effect": "Allow", "Action": action_pattern, "Resource": resource_pattern}]
        )
        return Pathological(name, doc, query)

    return [
        case(
            "resource: 50 '*' sep. by 'a' vs 10 KB 'a'*, no match",
            "images:GetImage",
            res_pattern,
            Query("patho", "images:GetImage", long_miss, {}, IMPLICIT_DENY),
        ),
        case(
            "resource: 50 '*' sep. by 'a' vs 10 KB 'a'*, match",
            "images:GetImage",
            res_pattern,
            Query("patho", "images:GetImage", long_hit, {}, ALLOW),
        ),
        case(
            "action: 32 '?*' + 'Z' vs 1 KB action, no match",
            act_pattern,
            arn("images", "*"),
            Query("patho", long_action, arn("images", "image/1"), {}, IMPLICIT_DENY),
        ),
    ]


def parse_documents(count: int, seed: int) -> list[dict]:
    """``count`` distinct realistic 10-statement policy documents (the figure-1 principals')."""
    docs: list[dict] = []
    index = 0
    while len(docs) < count:
        docs += principal_policies(1_000_000 + index, seed)[1]
        index += 1
    return docs[:count]
