"""The model at scale: ``.venv/bin/python benchmarks/model_bench.py [--quick] [--json FILE]``.

100,000 users, 1,000 groups, 1,000 roles and 20,000 managed policies in SQLite and PostgreSQL,
side by side: time to the first decision in a fresh process, its memory, warm and cold
``Authorizer.authorize`` latency, and the warm latency of the same user in a 1,000-user model.
``--stores sqlite,postgres`` picks the stores; ``--quick`` builds 10,000 users instead.
See benchmarks/README.md ("Model at scale") for what each figure measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from timing import Job, Stats, sample_interleaved, summarize, table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(1, str(ROOT))

from iamguard.authorizer import Authorizer  # noqa: E402 -- after the source tree is on the path
from iamguard.iam import IAM, Quotas, create_account  # noqa: E402
from iamguard.iam.base import compound_key, timestamp  # noqa: E402
from iamguard.model import Group, ManagedPolicy, PolicyVersion, Role, Tag, User  # noqa: E402
from iamguard.policy import Policy  # noqa: E402
from iamguard.policy.limits import (  # noqa: E402
    GROUP_INLINE_POLICY_SIZE,
    MANAGED_POLICY_SIZE,
    ROLE_INLINE_POLICY_SIZE,
    TRUST_POLICY_SIZE,
    USER_INLINE_POLICY_SIZE,
    check_policy_size,
)
from iamguard.stores import open_store  # noqa: E402
from iamguard.stores.base import Data, Store, Writer  # noqa: E402

ACCOUNT = "123456789012"
PARTITION = "iamguard"
PASSWORD = "Bench-Passw0rd!2024"  # the benchmark account's root password
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 10_000  # records per store.write transaction
QUOTAS = Quotas(users=1_000_000, groups=100_000, roles=100_000, managed_policies=1_000_000)
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # AWS's unique-id alphabet
ID_PREFIXES = {"user": "AIDA", "group": "AGPA", "role": "AROA", "policy": "ANPA"}
RATIO_TARGET = 1.5
PRIMITIVE_BUDGET_S = 2.0  # time box of each store-read figure

# service -> (resource types, actions): the app services the policies talk about
SERVICES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "images": (
        ("image", "album"),
        (
            "GetImage",
            "ListImages",
            "PutImage",
            "TagImage",
            "DeleteImage",
            "GetAlbum",
            "ListAlbums",
            "CreateAlbum",
        ),
    ),
    "orders": (
        ("order", "cart"),
        (
            "GetOrder",
            "ListOrders",
            "CreateOrder",
            "CancelOrder",
            "RefundOrder",
            "GetCart",
            "UpdateCart",
        ),
    ),
    "docs": (
        ("doc", "folder"),
        ("GetDoc", "ListDocs", "PutDoc", "ShareDoc", "DeleteDoc", "ListFolders"),
    ),
    "reports": (
        ("report",),
        ("GetReport", "ListReports", "RunReport", "ScheduleReport", "DeleteReport"),
    ),
    "billing": (
        ("invoice", "payment"),
        ("GetInvoice", "ListInvoices", "PayInvoice", "VoidInvoice", "GetPayment", "ListPayments"),
    ),
    "messages": (
        ("thread", "message"),
        ("GetMessage", "ListMessages", "SendMessage", "DeleteMessage", "GetThread", "ListThreads"),
    ),
    "inventory": (
        ("item", "warehouse"),
        ("GetItem", "ListItems", "PutItem", "AdjustStock", "DeleteItem", "GetWarehouse"),
    ),
    "shipping": (
        ("shipment",),
        ("GetShipment", "ListShipments", "CreateShipment", "CancelShipment", "TrackShipment"),
    ),
    "analytics": (
        ("dashboard", "dataset"),
        ("GetDashboard", "ListDashboards", "PutDashboard", "QueryDataset", "ExportDataset"),
    ),
    "videos": (
        ("video", "channel"),
        ("GetVideo", "ListVideos", "UploadVideo", "PublishVideo", "DeleteVideo"),
    ),
    "search": (("index",), ("Search", "GetIndex", "ListIndexes", "Reindex")),
    "profiles": (("profile",), ("GetProfile", "ListProfiles", "UpdateProfile", "DeleteProfile")),
}
SERVICE_NAMES = tuple(SERVICES)
TEAMS = ("red", "green", "blue", "ops", "data", "web")
USER_PATHS = ("/", "/engineering/", "/sales/", "/support/")
TRUSTED_NETS = ["10.0.0.0/8", "192.168.0.0/16"]
SOURCE_IPS = ("10.1.2.3", "192.168.7.8", "203.0.113.9", "198.51.100.4")


# --- the model: seeded, every entity a function of (seed, its index) -------------------------


@dataclass(frozen=True)
class Scale:
    """How many of each entity a model holds."""

    users: int
    groups: int
    roles: int
    policies: int


FULL = Scale(100_000, 1_000, 1_000, 20_000)
QUICK = Scale(10_000, 100, 100, 2_000)
SMALL = Scale(1_000, 10, 10, 200)
TINY = Scale(20, 6, 4, 40)  # the loader-fidelity model

# The target principal: the same user, groups, policies and documents in every model.
TARGET_GROUPS: dict[int, tuple[int, ...]] = {0: (0, 1, 2), 1: (3, 4, 5), 2: (6, 7, 8, 9)}


@dataclass(frozen=True)
class PolicySpec:
    """A managed policy: name, path, document and the JSON text the API stores for it."""

    name: str
    path: str
    document: dict
    text: str


@dataclass(frozen=True)
class Inline:
    """An inline policy of a user, group or role."""

    name: str
    document: dict
    text: str


@dataclass(frozen=True)
class GroupSpec:
    """A group (or role), the indexes of its attached policies, and perhaps an inline policy."""

    name: str
    path: str
    policies: tuple[int, ...]
    inline: Inline | None


@dataclass(frozen=True)
class RoleSpec(GroupSpec):
    """A role: a group's fields and its trust policy (document and text)."""

    trust: dict
    trust_text: str


@dataclass(frozen=True)
class UserSpec:
    """A user: path, team tag, group indexes, perhaps an inline policy."""

    name: str
    path: str
    team: str
    groups: tuple[int, ...]
    inline: Inline | None

    @property
    def arn(self) -> str:
        """The principal ARN the authorizer is asked about."""
        return f"arn:{PARTITION}:iam::{ACCOUNT}:user{self.path}{self.name}"


@dataclass
class Model:
    """A whole account's identities and policies."""

    scale: Scale
    policies: list[PolicySpec]
    groups: list[GroupSpec]
    roles: list[RoleSpec]
    users: list[UserSpec]

    @property
    def attachments(self) -> int:
        """How many managed-policy attachments the groups and roles hold."""
        return sum(len(owner.policies) for owner in (*self.groups, *self.roles))

    def policy_arn(self, index: int) -> str:
        """The ARN of the index-th managed policy."""
        spec = self.policies[index]
        return f"arn:{PARTITION}:iam::{ACCOUNT}:policy{spec.path}{spec.name}"

    def user_documents(self, user: UserSpec) -> list[dict]:
        """Every identity policy document that applies to ``user``."""
        docs = [self.policies[p].document for g in user.groups for p in self.groups[g].policies]
        docs += [self.groups[g].inline.document for g in user.groups if self.groups[g].inline]
        return docs + ([user.inline.document] if user.inline else [])

    def role_documents(self, role: RoleSpec) -> list[dict]:
        """Every identity policy document of ``role``."""
        docs = [self.policies[p].document for p in role.policies]
        return docs + ([role.inline.document] if role.inline else [])


def stored_text(doc: dict, kind: str, quota: tuple[str, int]) -> str:
    """The text the management API stores for a document (``json.dumps``), checked as it does."""
    text = json.dumps(doc)
    Policy.parse(text, kind)
    check_policy_size(text, quota)
    return text


def resource_arn(service: str, path: str) -> str:
    """An app resource: ``arn:iamguard:<service>::<account>:<type>/...``."""
    return f"arn:{PARTITION}:{service}::{ACCOUNT}:{path}"


def statement(rng: random.Random, sid: str) -> dict:
    """One realistic statement over an app service: wildcards, lists, variables, conditions."""
    service = rng.choice(SERVICE_NAMES)
    types, actions = SERVICES[service]
    rtype = rng.choice(types)
    pick = rng.random()
    if pick < 0.15:
        action: str | list[str] = f"{service}:*"
    elif pick < 0.45:
        verb = re.match(r"[A-Z][a-z]+", rng.choice(actions))
        action = f"{service}:{verb.group() if verb else 'Get'}*"
    elif pick < 0.75:
        action = f"{service}:{rng.choice(actions)}"
    else:
        action = [f"{service}:{a}" for a in sorted(rng.sample(actions, rng.randint(2, 3)))]
    team = rng.choice(TEAMS)
    pick = rng.random()
    if pick < 0.3:
        resource: str | list[str] = resource_arn(service, f"{rtype}/*")
    elif pick < 0.55:
        resource = resource_arn(service, f"{rtype}/{team}-*")
    elif pick < 0.7:
        resource = resource_arn(service, f"{rtype}/${{aws:username}}/*")
    elif pick < 0.85:
        resource = resource_arn(service, f"{rtype}/{rng.randrange(100_000)}")
    else:
        resource = [
            resource_arn(service, f"{rtype}/{team}-*"),
            resource_arn(service, f"{rtype}/shared/*"),
        ]
    deny = rng.random() < 0.12
    result: dict = {
        "Sid": sid,
        "Effect": "Deny" if deny else "Allow",
        "Action": action,
        "Resource": resource,
    }
    pick = rng.random()
    if pick < 0.1:
        result["Condition"] = {"StringEquals": {"aws:PrincipalTag/team": rng.sample(TEAMS, 2)}}
    elif pick < 0.18:
        operator = "NotIpAddress" if deny else "IpAddress"
        result["Condition"] = {operator: {"aws:SourceIp": TRUSTED_NETS}}
    elif pick < 0.25:
        result["Condition"] = {"Bool": {"aws:SecureTransport": "false" if deny else "true"}}
    return result


def document(rng: random.Random, low: int, high: int) -> dict:
    """A policy document of ``low``-``high`` statements."""
    count = rng.randint(low, high)
    return {"Version": "2012-10-17", "Statement": [statement(rng, f"S{i}") for i in range(count)]}


def inline(rng: random.Random, chance: float, quota: tuple[str, int]) -> Inline | None:
    """With probability ``chance``, a 1-3 statement inline policy, validated as the API does."""
    if rng.random() >= chance:
        return None
    doc = document(rng, 1, 3)
    return Inline("inline", doc, stored_text(doc, "identity", quota))


def make_policy(seed: int, index: int) -> PolicySpec:
    """The index-th managed policy: 5-15 statements, the same in every model."""
    rng = random.Random(f"{seed}/policy/{index}")
    doc = document(rng, 5, 15)
    path = "/app/" if rng.random() < 0.2 else "/"
    return PolicySpec(
        f"policy{index:05d}", path, doc, stored_text(doc, "identity", MANAGED_POLICY_SIZE)
    )


def make_group(seed: int, index: int, policies: int) -> GroupSpec:
    """The index-th group: 1-5 policies (the target's groups: fixed ones)."""
    rng = random.Random(f"{seed}/group/{index}")
    attached = TARGET_GROUPS.get(index) or tuple(rng.sample(range(policies), rng.randint(1, 5)))
    extra = None if index in TARGET_GROUPS else inline(rng, 0.05, GROUP_INLINE_POLICY_SIZE)
    return GroupSpec(f"group{index:04d}", rng.choice(("/", "/teams/")), attached, extra)


def trust_document() -> dict:
    """Roles may be assumed by the account's principals."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{PARTITION}:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def make_role(seed: int, index: int, policies: int, trust_text: str) -> RoleSpec:
    """The index-th role: 1-3 managed policies, sometimes an inline one."""
    rng = random.Random(f"{seed}/role/{index}")
    attached = tuple(rng.sample(range(policies), rng.randint(1, 3)))
    extra = inline(rng, 0.1, ROLE_INLINE_POLICY_SIZE)
    return RoleSpec(f"role{index:04d}", "/service/", attached, extra, trust_document(), trust_text)


def make_user(seed: int, index: int, groups: int) -> UserSpec:
    """The index-th user: in 1-3 groups (user 0, the target: groups 0-2 and no inline)."""
    if index == 0:
        return UserSpec("user000000", "/engineering/", "blue", (0, 1, 2), None)
    rng = random.Random(f"{seed}/user/{index}")
    member = tuple(sorted(rng.sample(range(groups), rng.randint(1, 3))))
    extra = inline(rng, 0.02, USER_INLINE_POLICY_SIZE)
    return UserSpec(f"user{index:06d}", rng.choice(USER_PATHS), rng.choice(TEAMS), member, extra)


def generate(scale: Scale, seed: int) -> Model:
    """The whole model for ``scale``; the target user is identical at every scale."""
    trust_text = stored_text(trust_document(), "trust", TRUST_POLICY_SIZE)
    return Model(
        scale,
        [make_policy(seed, i) for i in range(scale.policies)],
        [make_group(seed, i, scale.policies) for i in range(scale.groups)],
        [make_role(seed, i, scale.policies, trust_text) for i in range(scale.roles)],
        [make_user(seed, i, scale.groups) for i in range(scale.users)],
    )


# --- the loader: the records the management API writes, in big transactions ------------------

Record = tuple[str, str, Data, str | None, str | None]  # kind, key, data, parent, ref


class Ids:
    """Seeded unique ids with AWS's prefixes (the API draws them from ``secrets``)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}/ids")

    def __call__(self, kind: str) -> str:
        return ID_PREFIXES[kind] + "".join(self._rng.choices(ID_ALPHABET, k=17))


def iam_arn(kind: str, path: str, name: str) -> str:
    """An IAM entity's ARN, as ``IAM.arn`` builds it."""
    return f"arn:{PARTITION}:iam::{ACCOUNT}:{kind}{path}{name}"


def inline_record(kind: str, owner_name: str, policy: Inline) -> Record:
    """``put_<kind>_policy``'s record."""
    owner = f"{kind}/{owner_name}"
    data = {"owner": owner, "name": policy.name, "document": policy.text}
    return ("inline_policy", compound_key(owner, policy.name), data, owner, None)


def attachment_record(kind: str, owner_name: str, policy_arn: str) -> Record:
    """``attach_<kind>_policy``'s record."""
    owner = f"{kind}/{owner_name}"
    data = {"owner": owner, "policy_arn": policy_arn}
    return ("attachment", compound_key(owner, policy_arn), data, owner, policy_arn)


def policy_records(model: Model, ids: Ids, now: str) -> Iterator[Record]:
    """``create_policy`` (policy and version v1), with the attachment counts attaching leaves."""
    counts = [0] * len(model.policies)
    for owner in (*model.groups, *model.roles):
        for index in owner.policies:
            counts[index] += 1
    for index, spec in enumerate(model.policies):
        arn = model.policy_arn(index)
        policy = ManagedPolicy(
            account=ACCOUNT,
            name=spec.name,
            path=spec.path,
            policy_id=ids("policy"),
            arn=arn,
            default_version_id="v1",
            created=now,
            updated=now,
            attachment_count=counts[index],
        )
        yield ("policy", spec.name, {**policy.to_record(), "next_version": 2}, None, None)
        version = PolicyVersion(
            policy_arn=arn, version_id="v1", document=spec.text, is_default=True, created=now
        )
        yield (
            "policy_version",
            compound_key(spec.name, "v1"),
            version.to_record(),
            spec.name,
            None,
        )


def holder_records(model: Model, kind: str, spec: GroupSpec, record: Data) -> Iterator[Record]:
    """A group's or role's own record, then its attachments and its inline policy."""
    yield (kind, spec.name, record, None, None)
    for index in spec.policies:
        yield attachment_record(kind, spec.name, model.policy_arn(index))
    if spec.inline:
        yield inline_record(kind, spec.name, spec.inline)


def group_records(model: Model, ids: Ids, now: str) -> Iterator[Record]:
    """``create_group``, ``attach_group_policy``, ``put_group_policy``."""
    for spec in model.groups:
        group = Group(
            account=ACCOUNT,
            name=spec.name,
            path=spec.path,
            group_id=ids("group"),
            arn=iam_arn("group", spec.path, spec.name),
            created=now,
        )
        yield from holder_records(model, "group", spec, group.to_record())


def role_records(model: Model, ids: Ids, now: str) -> Iterator[Record]:
    """``create_role``, ``attach_role_policy``, ``put_role_policy``."""
    for spec in model.roles:
        role = Role(
            account=ACCOUNT,
            name=spec.name,
            path=spec.path,
            role_id=ids("role"),
            arn=iam_arn("role", spec.path, spec.name),
            created=now,
            assume_role_policy=spec.trust_text,
        )
        yield from holder_records(model, "role", spec, role.to_record())


def user_records(model: Model, ids: Ids, now: str) -> Iterator[Record]:
    """``create_user`` (with a team tag), ``add_user_to_group``, ``put_user_policy``."""
    for spec in model.users:
        user = User(
            account=ACCOUNT,
            name=spec.name,
            path=spec.path,
            user_id=ids("user"),
            arn=spec.arn,
            created=now,
            tags=(Tag("team", spec.team),),
        )
        yield ("user", spec.name, user.to_record(), None, None)
        for index in spec.groups:
            group = model.groups[index].name
            data = {"user": spec.name, "group": group}
            yield ("membership", compound_key(spec.name, group), data, spec.name, group)
        if spec.inline:
            yield inline_record("user", spec.name, spec.inline)


def model_records(model: Model, seed: int) -> Iterator[Record]:
    """Every record of the model except the account (which ``create_account`` writes)."""
    ids, now = Ids(seed), timestamp(NOW)
    yield from policy_records(model, ids, now)
    yield from group_records(model, ids, now)
    yield from role_records(model, ids, now)
    yield from user_records(model, ids, now)


def batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    """``records`` in lists of ``size``."""
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_all(batch: list[Record]) -> Callable[[Writer], None]:
    """A write transaction that inserts ``batch`` (pure: a store may run it twice)."""

    def write(tx: Writer) -> None:
        for kind, key, data, parent, ref in batch:
            tx.insert(kind, ACCOUNT, key, data, parent=parent, ref=ref)

    return write


def load(store: Store, model: Model, seed: int, batch_size: int = BATCH) -> dict[str, float]:
    """Write the model through ``create_account`` and batched ``store.write`` transactions."""
    start = time.perf_counter()
    create_account(
        store, email="root@example.com", password=PASSWORD, account_id=ACCOUNT, clock=lambda: NOW
    )
    records = transactions = 0
    for batch in batches(model_records(model, seed), batch_size):
        store.write(insert_all(batch))
        records += len(batch)
        transactions += 1
    seconds = time.perf_counter() - start
    return {
        "records": records,
        "transactions": transactions,
        "seconds": seconds,
        "us_per_record": seconds / records * 1e6,
    }


def build_with_api(store: Store, model: Model) -> None:
    """The same model through one management-API call per entity (slow: small models only)."""
    create_account(
        store, email="root@example.com", password=PASSWORD, account_id=ACCOUNT, clock=lambda: NOW
    )
    iam = IAM(store, ACCOUNT, quotas=QUOTAS, clock=lambda: NOW)
    for spec in model.policies:
        iam.create_policy(spec.name, spec.document, path=spec.path)
    for group in model.groups:
        iam.create_group(group.name, path=group.path)
        for index in group.policies:
            iam.attach_group_policy(group.name, model.policy_arn(index))
        if group.inline:
            iam.put_group_policy(group.name, group.inline.name, group.inline.document)
    for role in model.roles:
        iam.create_role(role.name, role.trust, path=role.path)
        for index in role.policies:
            iam.attach_role_policy(role.name, model.policy_arn(index))
        if role.inline:
            iam.put_role_policy(role.name, role.inline.name, role.inline.document)
    for user in model.users:
        iam.create_user(user.name, path=user.path, tags=[{"Key": "team", "Value": user.team}])
        for index in user.groups:
            iam.add_user_to_group(model.groups[index].name, user.name)
        if user.inline:
            iam.put_user_policy(user.name, user.inline.name, user.inline.document)


# --- requests ------------------------------------------------------------------------------

Request = tuple[str, str, str, dict[str, str]]  # principal ARN, action, resource, context


def as_list(value: str | list[str]) -> list[str]:
    """A policy element that may be one string or a list."""
    return [value] if isinstance(value, str) else value


def concrete_action(rng: random.Random, pattern: str) -> str:
    """A catalog action that ``pattern`` matches (or an unknown one of the same service)."""
    service = pattern.split(":", 1)[0]
    names = [f"{service}:{a}" for a in SERVICES.get(service, ((), ()))[1]]
    matching = [a for a in names if fnmatchcase(a.lower(), pattern.lower())]
    return rng.choice(matching) if matching else f"{service}:Unknown"


def concrete_resource(rng: random.Random, pattern: str, username: str) -> str:
    """A resource that ``pattern`` matches for ``username``: variables filled, ``*`` replaced."""
    filled = pattern.replace("${aws:username}", username)
    return filled.replace("*", f"r{rng.randrange(10_000)}")


def context(rng: random.Random) -> dict[str, str]:
    """A request context: source address inside or outside the trusted nets, TLS or not."""
    return {
        "aws:SourceIp": rng.choice(SOURCE_IPS),
        "aws:SecureTransport": rng.choice(("true", "true", "false")),
    }


def requests_for(
    rng: random.Random, principal: str, username: str, documents: Sequence[dict], count: int
) -> list[Request]:
    """``count`` requests: mostly instances of the principal's own statements, some unrelated."""
    statements = [s for doc in documents for s in doc["Statement"]]
    result: list[Request] = []
    for _ in range(count):
        if statements and rng.random() < 0.85:
            chosen = rng.choice(statements)
            action = concrete_action(rng, rng.choice(as_list(chosen["Action"])))
            resource = concrete_resource(rng, rng.choice(as_list(chosen["Resource"])), username)
        else:
            service = rng.choice(SERVICE_NAMES)
            types, actions = SERVICES[service]
            action = f"{service}:{rng.choice(actions)}"
            resource = resource_arn(service, f"{rng.choice(types)}/{rng.randrange(10_000)}")
        result.append((principal, action, resource, context(rng)))
    return result


def role_session(role: RoleSpec) -> str:
    """A session ARN of ``role``."""
    return f"arn:{PARTITION}:sts::{ACCOUNT}:assumed-role/{role.name}/bench"


def model_requests(model: Model, seed: int, count: int) -> list[Request]:
    """Requests spread over every user and role of a (small) model."""
    rng = random.Random(f"{seed}/fidelity-requests")
    result: list[Request] = []
    while len(result) < count:
        if rng.random() < 0.8:
            user = rng.choice(model.users)
            result += requests_for(rng, user.arn, user.name, model.user_documents(user), 5)
        else:
            role = rng.choice(model.roles)
            result += requests_for(rng, role_session(role), "bench", model.role_documents(role), 5)
    return result[:count]


def target_requests(model: Model, seed: int, count: int) -> list[Request]:
    """The requests timed for the target user (identical in every model)."""
    rng = random.Random(f"{seed}/target-requests")
    user = model.users[0]
    return requests_for(rng, user.arn, user.name, model.user_documents(user), count)


def signature(authorizer: Authorizer, request: Request) -> tuple[str, str, tuple[str, ...]]:
    """What a decision must agree on: effect, reason and the statements that decided."""
    decision = authorizer.authorize(*request)
    return (
        decision.effect.value,
        decision.reason.value,
        tuple(str(s) for s in decision.statements),
    )


# --- loader fidelity -------------------------------------------------------------------------

ID_FIELDS = ("user_id", "group_id", "role_id", "policy_id", "password_hash")
KINDS = (
    "account",
    "root_login",
    "user",
    "group",
    "role",
    "policy",
    "policy_version",
    "membership",
    "attachment",
    "inline_policy",
    "boundary",
)


def normalized(record: Any) -> Any:
    """A record (or listing entry) with random ids and hashes blanked out."""
    data = record if isinstance(record, dict) else vars(record)
    return {k: "*" if k in ID_FIELDS else v for k, v in data.items()}


def listings(store: Store, model: Model) -> list[Any]:
    """What the management API lists, normalized: users, members, attachments, groups, ..."""
    iam = IAM(store, ACCOUNT, quotas=QUOTAS)
    found: list[Any] = [
        [normalized(u.to_record()) for u in iam.list_users()],
        [normalized(p.to_record()) for p in iam.list_policies()],
    ]
    for group in model.groups:
        found.append([normalized(u.to_record()) for u in iam.get_group_users(group.name)])
        found.append([vars(a) for a in iam.list_attached_group_policies(group.name)])
        found.append(iam.list_group_policies(group.name))
    for role in model.roles:
        found.append([vars(a) for a in iam.list_attached_role_policies(role.name)])
    for user in model.users:
        found.append(iam.list_groups_for_user(user.name))
        found.append(iam.list_user_policies(user.name))
    return found


def raw_records(store: Store) -> dict[str, list[Any]]:
    """Every record of every kind, normalized, and how many each policy's ref index holds."""

    def read(tx: Any) -> dict[str, list[Any]]:
        result = {kind: [normalized(r) for r in tx.find(kind, ACCOUNT)] for kind in KINDS}
        refs = [tx.count("attachment", ACCOUNT, ref=p["arn"]) for p in tx.find("policy", ACCOUNT)]
        result["attachments by ref"] = refs
        return result

    return store.read(read)


def check_fidelity(seed: int, request_count: int = 400) -> dict[str, Any]:
    """Build the tiny model through the API and through the loader; everything must agree."""
    model = generate(TINY, seed)
    by_api, by_loader = open_store("memory://"), open_store("memory://")
    build_with_api(by_api, model)
    load(by_loader, model, seed, batch_size=7)  # a small batch: several transactions
    api_records, loader_records = raw_records(by_api), raw_records(by_loader)
    differing = [k for k in api_records if api_records[k] != loader_records[k]]
    assert not differing, f"loader fidelity: records differ in kinds {differing}"
    api_lists, loader_lists = listings(by_api, model), listings(by_loader, model)
    assert api_lists == loader_lists, "loader fidelity: the management API's listings differ"
    api_authz, loader_authz = Authorizer(by_api), Authorizer(by_loader)
    requests = model_requests(model, seed, request_count)
    effects: dict[str, int] = {}
    for request in requests:
        expected, got = signature(api_authz, request), signature(loader_authz, request)
        assert expected == got, f"loader fidelity: {request}: API {expected}, loader {got}"
        effects[expected[0]] = effects.get(expected[0], 0) + 1
    return {
        "records": sum(len(v) for k, v in api_records.items() if k in KINDS),
        "kinds_compared": len(KINDS),
        "listings_compared": len(api_lists),
        "requests": len(requests),
        "effects": effects,
    }


# --- stores ----------------------------------------------------------------------------------


@dataclass
class StoreSite:
    """Where one model lives: a SQLite file or a PostgreSQL schema."""

    backend: str  # "sqlite" | "postgres"
    model: str  # "big" | "small"
    url: str
    schema: str | None = None
    path: Path | None = None

    def analyze(self) -> float:
        """Run ANALYZE (the store never does; this server's autovacuum is off): seconds."""
        start = time.perf_counter()
        if self.path is not None:
            with sqlite3.connect(self.path) as conn:
                conn.execute("ANALYZE")
        else:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute("ANALYZE records")
                conn.execute("ANALYZE changes")
        return time.perf_counter() - start


def pg_url(base: str, schema: str) -> str:
    """The store URL for a dedicated schema."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}"


def pg_admin(base: str, statement: str) -> None:
    """Run one statement on the server (create or drop a schema)."""
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(statement)


def make_site(backend: str, model: str, workdir: Path, pg_base: str) -> StoreSite:
    """A fresh, empty place for a model."""
    if backend == "sqlite":
        path = workdir / f"{model}.db"
        return StoreSite(backend, model, f"sqlite:///{path}", path=path)
    schema = f"iamguard_bench_{os.getpid()}_{model}"
    pg_admin(pg_base, f"CREATE SCHEMA {schema}")
    return StoreSite(backend, model, pg_url(pg_base, schema), schema=schema)


def drop_site(site: StoreSite, pg_base: str) -> None:
    """Remove a PostgreSQL schema (SQLite files go with the temporary directory)."""
    if site.schema is not None:
        pg_admin(pg_base, f"DROP SCHEMA IF EXISTS {site.schema} CASCADE")


QUERY_PLANS = {
    "get user": (
        "SELECT data FROM records WHERE kind = 'user' AND account = '{a}' "
        "AND key_folded = 'user000000'"
    ),
    "find memberships by parent": (
        "SELECT data FROM records WHERE kind = 'membership' AND account = '{a}' "
        "AND parent_folded = 'user000000' ORDER BY key_folded"
    ),
    "find attachments by parent": (
        "SELECT data FROM records WHERE kind = 'attachment' AND account = '{a}' "
        "AND parent_folded = 'group/group0000' ORDER BY key_folded"
    ),
}


def query_plans(site: StoreSite) -> dict[str, str]:
    """How the database runs the store's hot queries (the SQL ``SQLStore`` issues)."""
    plans: dict[str, str] = {}
    for name, sql in QUERY_PLANS.items():
        text = sql.format(a=ACCOUNT)
        if site.path is not None:
            with sqlite3.connect(site.path) as conn:
                rows = conn.execute("EXPLAIN QUERY PLAN " + text).fetchall()
            plans[name] = "; ".join(str(r[-1]) for r in rows)
        else:
            import psycopg

            with psycopg.connect(site.url) as conn:
                rows = conn.execute("EXPLAIN " + text).fetchall()
            plans[name] = "; ".join(r[0].strip() for r in rows if "cost=" in r[0])
    return plans


def primitive_times(url: str, model: Model, budget_s: float) -> dict[str, Stats]:
    """Per-call time of the reads a cold authorize makes, each in its own read transaction."""
    store = open_store(url)
    rng = random.Random("primitives")
    users = rng.sample(model.users, min(30, len(model.users)))
    owners = [f"group/{model.groups[g].name}" for u in users for g in u.groups][:30]
    reads: dict[str, Callable[[Any, int], Any]] = {
        "get user": lambda tx, i: tx.get("user", ACCOUNT, users[i % len(users)].name),
        "find memberships (parent=user)": lambda tx, i: tx.find(
            "membership", ACCOUNT, parent=users[i % len(users)].name
        ),
        "find attachments (parent=group)": lambda tx, i: tx.find(
            "attachment", ACCOUNT, parent=owners[i % len(owners)]
        ),
        "get policy_version": lambda tx, i: tx.get(
            "policy_version", ACCOUNT, compound_key(model.policies[i].name, "v1")
        ),
    }
    result = {}
    try:
        for name, read in reads.items():
            times: list[int] = []
            deadline = time.perf_counter() + budget_s
            for i in range(30):
                start = time.perf_counter_ns()
                store.read(lambda tx, i=i, read=read: read(tx, i))
                times.append(time.perf_counter_ns() - start)
                if time.perf_counter() > deadline:
                    break
            result[name] = summarize(times)
    finally:
        store.close()
    return result


# --- fresh processes: first decision, memory, cold decisions ----------------------------------

CHILD = r"""
import json, resource, sys, time
clock = time.perf_counter_ns
t0 = clock()
from iamguard.authorizer import Authorizer
from iamguard.readmodel import ReadModel
from iamguard.stores import open_store
t1 = clock()


def rss_kb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def deep_size(deps):
    seen, total = set(), sys.getsizeof(deps)
    for token, keys in deps.items():
        for obj in (token, *token, keys, *keys, *(part for key in keys for part in key)):
            if id(obj) not in seen:
                seen.add(id(obj))
                total += sys.getsizeof(obj)
    return total


def sizes(model, users):
    deps = model._dependents
    return {"users": users, "rss_kb": rss_kb(), "views": len(model._views),
            "compiled": len(model._compiled), "dependent_tokens": len(deps),
            "dependent_keys": sum(len(keys) for keys in deps.values()),
            "dependents_kb": deep_size(deps) // 1024}


args = json.load(sys.stdin)
out = {"import_ns": t1 - t0, "rss_imported_kb": rss_kb()}
t2 = clock()
store = open_store(args["url"])
t3 = clock()
options = {"max_principals": args["max_principals"]} if args["max_principals"] else {}
authorizer = Authorizer(store, read_model=ReadModel(store, **options))
t4 = clock()
first = authorizer.authorize(*args["first"])
t5 = clock()
out.update(open_ns=t3 - t2, authorizer_ns=t4 - t3, first_ns=t5 - t4,
           first_effect=first.effect.value, rss_first_kb=rss_kb())
cold, checkpoints = [], []
deadline = time.monotonic() + args["deadline_s"]
for count, (arn, action, target) in enumerate(args["users"], 1):
    start = clock()
    authorizer.authorize(arn, action, target)
    cold.append(clock() - start)
    if count % args["every"] == 0:
        checkpoints.append(sizes(authorizer.read_model, count))
    if time.monotonic() > deadline:
        break
if cold and (not checkpoints or checkpoints[-1]["users"] != len(cold)):
    checkpoints.append(sizes(authorizer.read_model, len(cold)))
out.update(cold_ns=cold, checkpoints=checkpoints,
           maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
authorizer.read_model.close()
store.close()
t6 = clock()
open_store(args["url"]).close()  # modules are loaded now: what opening itself costs
out["reopen_ns"] = clock() - t6
print(json.dumps(out))
"""


@dataclass(frozen=True)
class ChildJob:
    """What one fresh process does: a first decision, then perhaps many distinct users."""

    url: str
    first: Request
    users: list[list[str]] = field(default_factory=list)
    max_principals: int | None = None
    deadline_s: float = 600.0
    every: int = 1_000

    def spawn(self) -> subprocess.Popen[str]:
        """Start the process (arguments on stdin: a long user list exceeds argv's limits)."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert child.stdin is not None
        child.stdin.write(json.dumps(vars(self)))
        child.stdin.close()
        return child


def collect(child: subprocess.Popen[str]) -> dict[str, Any]:
    """The figures a child printed; its stderr when it failed."""
    assert child.stdout is not None and child.stderr is not None
    output, errors = child.stdout.read(), child.stderr.read()
    if child.wait() != 0:
        raise RuntimeError(f"benchmark child failed:\n{errors}")
    return json.loads(output)


def run_child(job: ChildJob) -> dict[str, Any]:
    """Run one child to completion."""
    return collect(job.spawn())


def distinct_users(model: Model, count: int, seed: int) -> list[list[str]]:
    """``count`` users other than the target, each with one request."""
    rng = random.Random(f"{seed}/distinct")
    chosen = rng.sample(range(1, len(model.users)), min(count, len(model.users) - 1))
    image = resource_arn("images", "image/1")
    return [[model.users[i].arn, "images:GetImage", image] for i in chosen]


def first_decisions(url: str, first: Request, runs: int) -> dict[str, Any]:
    """Median over ``runs`` fresh processes of open_store + Authorizer + first authorize."""
    results = [run_child(ChildJob(url, first)) for _ in range(runs)]
    total = [r["open_ns"] + r["authorizer_ns"] + r["first_ns"] for r in results]

    def median_ms(key: str) -> float:
        return summarize([r[key] for r in results]).median_ns / 1e6

    return {
        "runs": runs,
        "total": summarize(total),
        "import_ms": median_ms("import_ns"),
        "open_ms": median_ms("open_ns"),
        "authorizer_ms": median_ms("authorizer_ns"),
        "first_ms": median_ms("first_ns"),
        "reopen_ms": median_ms("reopen_ns"),
        "effect": results[0]["first_effect"],
        "rss_first_kb": statistics.median(r["rss_first_kb"] for r in results),
    }


def cold_run(
    url: str,
    first: Request,
    users: list[list[str]],
    deadline_s: float,
    max_principals: int | None = None,
    every: int = 1_000,
) -> ChildJob:
    """A child that decides for each of ``users`` once (each a principal not yet loaded)."""
    return ChildJob(url, first, users, max_principals, deadline_s, every)


def cold_figures(result: dict[str, Any]) -> dict[str, Any]:
    """Cold latency and memory from a distinct-users child."""
    cold = result["cold_ns"]
    return {
        "users": len(cold),
        "cold": summarize(cold) if cold else None,
        "rss_imported_kb": result["rss_imported_kb"],
        "rss_first_kb": result["rss_first_kb"],
        "checkpoints": result["checkpoints"],
        "maxrss_kb": result["maxrss_kb"],
    }


# --- warm decisions in this process ---------------------------------------------------------


def warm_figures(
    big_url: str, small_url: str, requests: list[Request], budget_s: float
) -> dict[str, Any]:
    """The target's warm authorize in both models, interleaved; decisions must be identical."""
    stores = [open_store(big_url), open_store(small_url)]
    try:
        big, small = (Authorizer(s) for s in stores)
        decided = [signature(big, r) for r in requests]
        assert decided == [signature(small, r) for r in requests], (
            "the target user is decided differently in the big and the small model"
        )
        jobs = [
            Job(name, "authorize", lambda r, a=a: a.authorize(*r), requests)
            for name, a in (("big", big), ("small", small))
        ]
        big_stats, small_stats = sample_interleaved(jobs, budget_s)
    finally:
        for store in stores:
            store.close()
    effects: dict[str, int] = {}
    for effect, _, _ in decided:
        effects[effect] = effects.get(effect, 0) + 1
    return {
        "big": big_stats,
        "small": small_stats,
        "effects": effects,
        "ratio": big_stats.median_ns / small_stats.median_ns,
        "decisions": decided,
    }


# --- running and printing --------------------------------------------------------------------


def section(title: str) -> None:
    """A heading, flushed so progress shows."""
    print(f"\n## {title}\n", flush=True)


def ms(ns: float) -> str:
    """Nanoseconds as milliseconds."""
    value = ns / 1e6
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def us(ns: float) -> str:
    """Nanoseconds as microseconds."""
    value = ns / 1e3
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def mb(kb: float) -> str:
    """Kilobytes as megabytes."""
    return f"{kb / 1024:,.1f}"


@dataclass
class Settings:
    """Sizes and budgets of a full or a quick run."""

    scale: Scale
    first_runs: int
    distinct: int
    bounded: int
    bounded_every: int
    unanalyzed_deadline_s: float
    cold_deadline_s: float
    bounded_deadline_s: float
    warm_budget_s: float
    target_requests: int = 120


FULL_SETTINGS = Settings(FULL, 5, 1_000, 20_000, 2_000, 10.0, 120.0, 240.0, 6.0)
QUICK_SETTINGS = Settings(QUICK, 3, 1_000, 5_000, 500, 5.0, 60.0, 60.0, 1.5)


def print_loads(loads: dict[tuple[str, str], dict[str, float]], models: dict[str, Model]) -> None:
    """The setup table."""
    section("Load (setup, not a figure): batched store.write transactions via Writer.insert")
    rows = [
        [
            backend,
            name,
            f"{models[name].scale.users:,}",
            f"{int(r['records']):,}",
            f"{int(r['transactions'])}",
            f"{r['seconds']:.1f}",
            f"{r['records'] / r['seconds']:,.0f}",
            f"{r['us_per_record']:.0f}",
        ]
        for (backend, name), r in loads.items()
    ]
    print(
        table(
            [
                "store",
                "model",
                "users",
                "records",
                "transactions",
                "load s",
                "records/s",
                "µs/record",
            ],
            rows,
            left=2,
        )
    )


def print_first(first: dict[tuple[str, str, str], dict[str, Any]]) -> None:
    """Time to the first decision."""
    section("Time to first decision (fresh process: open_store + Authorizer + first authorize)")
    rows = [
        [
            backend,
            state,
            name,
            f"{r['runs']}",
            f"{r['import_ms']:.0f}",
            f"{r['open_ms']:.1f}",
            f"{r['reopen_ms']:.1f}",
            f"{r['authorizer_ms']:.1f}",
            f"{r['first_ms']:.1f}",
            ms(r["total"].median_ns),
            ms(r["total"].p90_ns),
            mb(r["rss_first_kb"]),
        ]
        for (backend, state, name), r in first.items()
    ]
    print(
        table(
            [
                "store",
                "state",
                "model",
                "runs",
                "imports ms",
                "open_store ms",
                "open again ms",
                "Authorizer ms",
                "1st authorize ms",
                "total median ms",
                "total p90 ms",
                "RSS MB",
            ],
            rows,
            left=3,
        )
    )
    print(
        "\nMedians over fresh processes. 'imports' (iamguard.authorizer, readmodel, stores) is "
        "outside the total; open_store imports SQLAlchemy and the driver on first use, which "
        "'open again' (a second open_store in the same process) leaves out. The first "
        "authorize loads the user, its 3 groups and 10 policies and compiles them."
    )


def print_cold(cold: dict[tuple[str, str, str], dict[str, Any]]) -> None:
    """Cold authorize latency and memory of the distinct-users children."""
    section("Cold authorize (principal not in the read model) and memory, one fresh process")
    rows = []
    for (backend, state, name), r in cold.items():
        last = r["checkpoints"][-1] if r["checkpoints"] else {}
        stats = r["cold"]
        rows.append(
            [
                backend,
                state,
                name,
                f"{r['users']:,}",
                ms(stats.median_ns) if stats else "-",
                ms(stats.p90_ns) if stats else "-",
                mb(r["rss_imported_kb"]),
                mb(r["rss_first_kb"]),
                mb(last.get("rss_kb", 0)),
                f"{last.get('views', 0):,}",
                f"{last.get('compiled', 0):,}",
            ]
        )
    print(
        table(
            [
                "store",
                "state",
                "model",
                "distinct users",
                "cold median ms",
                "cold p90 ms",
                "RSS imports MB",
                "RSS 1st MB",
                "RSS after MB",
                "views",
                "compiled",
            ],
            rows,
            left=3,
        )
    )
    print(
        "\nEach distinct user is decided once (one request), so every decision loads a "
        "principal from the store; compiled policies are shared between principals. "
        "'as loaded' rows stop at their time box."
    )


def print_bounded(bounded: dict[str, dict[str, Any]], max_principals: int) -> None:
    """RSS along the bounded run."""
    section(f"Memory bound: distinct users with ReadModel(max_principals={max_principals:,})")
    together = " (the stores' processes ran at once)" if len(bounded) > 1 else ""
    for backend, r in bounded.items():
        print(
            f"{backend}: {r['users']:,} users decided; cold median "
            f"{ms(r['cold'].median_ns) if r['cold'] else '-'} ms{together}"
        )
        rows = [
            [
                f"{c['users']:,}",
                mb(c["rss_kb"]),
                f"{c['views']:,}",
                f"{c['compiled']:,}",
                f"{c['dependent_tokens']:,}",
                f"{c['dependent_keys']:,}",
                mb(c["dependents_kb"]),
            ]
            for c in r["checkpoints"]
        ]
        print(
            table(
                [
                    "users decided",
                    "RSS MB",
                    "views",
                    "compiled policies",
                    "dependents tokens",
                    "dependents keys",
                    "dependents MB",
                ],
                rows,
            )
        )
        print()


def print_primitives(primitives: dict[tuple[str, str], dict[str, Stats]]) -> None:
    """Store reads a cold authorize makes."""
    section("Store reads on the big model (one read transaction each; ms)")
    names = list(next(iter(primitives.values())))
    rows = [
        [backend, state, *(f"{ms(s[n].median_ns)} / {ms(s[n].p90_ns)}" for n in names)]
        for (backend, state), s in primitives.items()
    ]
    print(table(["store", "state", *(f"{n} median / p90" for n in names)], rows, left=2))


def print_plans(plans: dict[tuple[str, str], dict[str, str]]) -> None:
    """Query plans of the hot queries."""
    section("Query plans (big model)")
    for (backend, state), found in plans.items():
        for name, plan in found.items():
            print(f"- {backend}, {state}, {name}: {plan}")


def print_warm(warm: dict[str, dict[str, Any]], scale: Scale) -> bool:
    """Warm latency, big vs small model, and the pass/fail line; True when every store passes."""
    section(
        f"Warm authorize: target user (3 groups, 10 policies) in the {scale.users:,}-user "
        f"model vs the 1,000-user model"
    )
    rows, passed = [], True
    for backend, r in warm.items():
        for name in ("big", "small"):
            stats = r[name]
            users = scale.users if name == "big" else SMALL.users
            rows.append(
                [
                    backend,
                    f"{users:,} users",
                    us(stats.median_ns),
                    us(stats.p90_ns),
                    f"{stats.samples:,}",
                    f"{r['ratio']:.2f}x" if name == "big" else "",
                ]
            )
        passed = passed and r["ratio"] <= RATIO_TARGET
    print(table(["store", "model", "median µs", "p90 µs", "samples", "big / small"], rows, left=2))
    effects = next(iter(warm.values()))["effects"]
    mix = ", ".join(f"{v} {k}" for k, v in effects.items())
    print(
        f"\nRequests: {sum(effects.values())} ({mix}), identical decisions in both models and "
        "every store."
    )
    for backend, r in warm.items():
        verdict = "PASS" if r["ratio"] <= RATIO_TARGET else "FAIL"
        print(
            f"{verdict}: {backend}: warm median {us(r['big'].median_ns)} µs vs "
            f"{us(r['small'].median_ns)} µs = {r['ratio']:.2f}x (target ≤ {RATIO_TARGET}x)"
        )
    return passed


def load_store(site: StoreSite, model: Model, seed: int) -> dict[str, float]:
    """Load one model into a fresh store."""
    store = open_store(site.url)
    try:
        return load(store, model, seed)
    finally:
        store.close()


def measure_unanalyzed(
    sites: dict[str, dict[str, StoreSite]],
    models: dict[str, Model],
    settings: Settings,
    seed: int,
    results: dict[str, Any],
) -> None:
    """Figures on the stores exactly as the library leaves them after the load."""
    first_request = target_requests(models["big"], seed, 1)[0]
    for backend, by_model in sites.items():
        for name, site in by_model.items():
            print(f"... {backend} {name}, as loaded: first decisions", flush=True)
            results["first"][(backend, "as loaded", name)] = first_decisions(
                site.url, first_request, settings.first_runs
            )
            users = distinct_users(models[name], settings.distinct, seed)
            child = cold_run(site.url, first_request, users, settings.unanalyzed_deadline_s)
            results["cold"][(backend, "as loaded", name)] = cold_figures(run_child(child))
        big = by_model["big"]
        results["plans"][(backend, "as loaded")] = query_plans(big)
        results["primitives"][(backend, "as loaded")] = primitive_times(
            big.url, models["big"], PRIMITIVE_BUDGET_S
        )


def measure_analyzed(
    sites: dict[str, dict[str, StoreSite]],
    models: dict[str, Model],
    settings: Settings,
    seed: int,
    results: dict[str, Any],
) -> None:
    """ANALYZE, then first decisions, cold decisions, the memory bound and warm latency."""
    first_request = target_requests(models["big"], seed, 1)[0]
    for backend, by_model in sites.items():
        for name, site in by_model.items():
            results["analyze_s"][(backend, name)] = site.analyze()
            print(f"... {backend} {name}, analyzed: first decisions, cold run", flush=True)
            results["first"][(backend, "analyzed", name)] = first_decisions(
                site.url, first_request, settings.first_runs
            )
            users = distinct_users(models[name], settings.distinct, seed)
            child = cold_run(site.url, first_request, users, settings.cold_deadline_s)
            results["cold"][(backend, "analyzed", name)] = cold_figures(run_child(child))
        results["plans"][(backend, "analyzed")] = query_plans(by_model["big"])
        results["primitives"][(backend, "analyzed")] = primitive_times(
            by_model["big"].url, models["big"], PRIMITIVE_BUDGET_S
        )
    print("... memory bound (all stores at once)", flush=True)
    users = distinct_users(models["big"], settings.bounded, seed)
    children = {
        backend: cold_run(
            by_model["big"].url,
            first_request,
            users,
            settings.bounded_deadline_s,
            1_000,
            settings.bounded_every,
        ).spawn()
        for backend, by_model in sites.items()
    }
    results["bounded"] = {b: cold_figures(collect(c)) for b, c in children.items()}
    requests = target_requests(models["big"], seed, settings.target_requests)
    for backend, by_model in sites.items():
        print(f"... {backend}: warm authorize", flush=True)
        results["warm"][backend] = warm_figures(
            by_model["big"].url, by_model["small"].url, requests, settings.warm_budget_s
        )
    decisions = [r.pop("decisions") for r in results["warm"].values()]
    assert all(d == decisions[0] for d in decisions), "the stores decide the target differently"
    expected = decisions[0][0][0]  # the first request's effect
    wrong = {k: r["effect"] for k, r in results["first"].items() if r["effect"] != expected}
    assert not wrong, f"fresh processes decided the first request differently: {wrong}"


def print_results(results: dict[str, Any], settings: Settings) -> bool:
    """Every table; True when the 1.5x target is met on every store."""
    print_first(results["first"])
    print_cold(results["cold"])
    print_bounded(results["bounded"], 1_000)
    print_primitives(results["primitives"])
    print_plans(results["plans"])
    analyzed = ", ".join(f"{b} {m} {s:.1f} s" for (b, m), s in results["analyze_s"].items())
    print(f"\nANALYZE took: {analyzed}.")
    return print_warm(results["warm"], settings.scale)


def jsonable(value: Any) -> Any:
    """Figures as JSON: Stats as dicts, tuple keys joined with '/'."""
    if isinstance(value, Stats):
        return {
            "median_ms": value.median_ns / 1e6,
            "p90_ms": value.p90_ns / 1e6,
            "mean_ms": value.mean_ns / 1e6,
            "samples": value.samples,
        }
    if isinstance(value, dict):
        return {"/".join(k) if isinstance(k, tuple) else k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 users: a smoke run")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write every figure as JSON")
    parser.add_argument(
        "--stores",
        default="sqlite,postgres",
        help="comma-separated: sqlite, postgres (default: both)",
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG, help=f"PostgreSQL (default {DEFAULT_PG})")
    parser.add_argument("--seed", type=int, default=20_240_601, help="model generator seed")
    args = parser.parse_args()
    stores = [s.strip().replace("postgresql", "postgres") for s in args.stores.split(",")]
    unknown = set(stores) - {"sqlite", "postgres"}
    if unknown or not stores:
        parser.error(f"--stores: unknown store(s) {sorted(unknown)}: use sqlite, postgres")
    args.stores = list(dict.fromkeys(stores))
    return args


def main() -> int:
    """Fidelity check, generate, load, measure, print; 0 when the 1.5x target is met."""
    args = parse_args()
    settings = QUICK_SETTINGS if args.quick else FULL_SETTINGS
    started = time.perf_counter()
    print(
        f"# iamguard model at scale ({'quick' if args.quick else 'full'} run, seed {args.seed},"
        f" stores: {', '.join(args.stores)})"
    )
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; gc on.")
    section("Loader fidelity (20 users: management API vs loader, memory stores)")
    fidelity = check_fidelity(args.seed)
    print(
        f"PASS: {fidelity['records']} records in {fidelity['kinds_compared']} kinds identical "
        f"(ids and password hashes aside); {fidelity['listings_compared']} management-API "
        f"listings identical; {fidelity['requests']} authorize decisions identical in effect, "
        f"reason and deciding statements ({fidelity['effects']})."
    )
    generate_start = time.perf_counter()
    models = {"big": generate(settings.scale, args.seed), "small": generate(SMALL, args.seed)}
    big = models["big"]
    print(
        f"\nGenerated in {time.perf_counter() - generate_start:.1f} s: {big.scale.users:,} users,"
        f" {big.scale.groups:,} groups, {big.scale.roles:,} roles, {big.scale.policies:,} "
        f"policies ({sum(len(p.document['Statement']) for p in big.policies):,} statements), "
        f"{sum(len(u.groups) for u in big.users):,} memberships, {big.attachments:,} "
        f"attachments; small model: {SMALL.users:,} users, {SMALL.groups:,} groups, "
        f"{SMALL.roles:,} roles, {SMALL.policies:,} policies."
    )
    results: dict[str, Any] = {
        "first": {},
        "cold": {},
        "bounded": {},
        "plans": {},
        "primitives": {},
        "analyze_s": {},
        "warm": {},
        "loads": {},
    }
    sites: dict[str, dict[str, StoreSite]] = {}
    with tempfile.TemporaryDirectory(prefix="iamguard-model-bench-") as workdir:
        try:
            for backend in args.stores:
                sites[backend] = {}
                for name, model in models.items():
                    site = make_site(backend, name, Path(workdir), args.pg_url)
                    sites[backend][name] = site
                    print(f"... loading {backend} {name}", flush=True)
                    results["loads"][(backend, name)] = load_store(site, model, args.seed)
            print_loads(results["loads"], models)
            measure_unanalyzed(sites, models, settings, args.seed, results)
            measure_analyzed(sites, models, settings, args.seed, results)
        finally:
            for by_model in sites.values():
                for site in by_model.values():
                    drop_site(site, args.pg_url)
    passed = print_results(results, settings)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    if args.json:
        payload = {
            "meta": {
                "quick": args.quick,
                "seed": args.seed,
                "stores": args.stores,
                "python": platform.python_version(),
                "scale": vars(settings.scale),
            },
            "fidelity": fidelity,
            **results,
        }
        args.json.write_text(json.dumps(jsonable(payload), indent=2) + "\n")
        print(f"Figures written to {args.json}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
