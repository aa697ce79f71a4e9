"""The management API's contract, on every store: the entities it returns, AWS's errors and quotas,
failures that change nothing, secrets that are never kept, and acting as a caller.

Tests that try many inputs loop over them on one store (a fresh PostgreSQL schema per input would
cost more than the checks); ``fails(..., case=...)`` names the input when one of them fails. Every
test works in accounts made by ``create_account`` (the ``accounts`` fixture), where each distinct
password is hashed once per session to keep argon2's cost down.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import pytest

from iamguard.authorizer import Authorizer
from iamguard.errors import (
    AccessDenied,
    DeleteConflict,
    EntityAlreadyExists,
    IAMGuardError,
    InvalidInput,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    PasswordPolicyViolation,
)
from iamguard.iam import IAM, Quotas, create_account, get_account
from iamguard.model import AttachedPolicy, Tag
from iamguard.passwords import hash_password
from iamguard.stores.base import Reader, Store

ACCT = "123456789012"
OTHER = "210987654321"
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
STAMP = "2024-05-06T07:08:09Z"  # NOW as the store writes it
PASSWORD = "Correct-Horse-7"  # meets the default password policy
ROOT_PASSWORD = "Root-Passw0rd-42"
THREE_CLASSES = "three of: uppercase letters, lowercase letters, numbers, symbols"
NAME_CHARS = "letters, digits or any of `+=,.@_-`"
PATH_RULE = (
    "must begin and end with `/`, hold printable ASCII without spaces and be at most 512 characters"
)

# Every kind of record the management API writes (see iamguard/iam/), and the pseudo-account
# under which accounts are indexed.
KINDS = (
    "account", "account_index", "root_login", "user", "group", "role", "service", "policy",
    "policy_version", "membership", "attachment", "inline_policy", "boundary", "login_profile",
    "access_key", "password_history", "password_policy", "mfa_device",
)  # fmt: skip
INDEX = ""


def clock() -> datetime:
    return NOW


def arn(kind: str, name: str, path: str = "/", account: str = ACCT) -> str:
    return f"arn:iamguard:iam::{account}:{kind}{path}{name}"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str] = "images:GetImage", resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


READ = doc(allow())
READ_ARN = arn("policy", "Read")  # where tests create READ as `Read`
GHOST_POLICY = arn("policy", "Ghost")  # never created
ROOT = f"arn:iamguard:iam::{ACCT}:root"
TRUST = doc({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"})
BAD = doc({"Effect": "Alow", "Action": "images:GetImage"})  # two problems

# Create an entity of each kind by name (and path).
CREATE: dict[str, Callable[..., object]] = {
    "user": lambda iam, name, path="/": iam.create_user(name, path=path),
    "group": lambda iam, name, path="/": iam.create_group(name, path=path),
    "role": lambda iam, name, path="/": iam.create_role(name, TRUST, path=path),
    "policy": lambda iam, name, path="/": iam.create_policy(name, READ, path=path),
    "service": lambda iam, name, path="/": iam.create_service(name),
}
OWNER_KINDS = ("user", "group", "role")  # what policies attach to


def sized_policy(size: int) -> str:
    """A policy document of exactly ``size`` characters, none of them white space."""
    base = json.dumps(doc({"Sid": "", **allow()}), separators=(",", ":"))
    text = base.replace('"Sid":""', '"Sid":"' + "S" * (size - len(base)) + '"')
    assert len(text) == size
    return text


def dump(store: Store, accounts: tuple[str, ...] = (ACCT, OTHER)) -> dict[str, list[str]]:
    """Every record of every kind in ``accounts`` (and the account index), as sorted JSON texts."""

    def read(tx: Reader) -> dict[str, list[str]]:
        return {
            f"{kind} {account}": sorted(
                json.dumps(r, sort_keys=True) for r in tx.find(kind, account)
            )
            for kind in KINDS
            for account in (*accounts, INDEX)
        }

    return store.read(read)


@contextmanager
def fails(
    store: Store, error: type[IAMGuardError], message: str | None = None, *,
    accounts: tuple[str, ...] = (ACCT, OTHER), case: object = None,
) -> Iterator[pytest.ExceptionInfo[Any]]:  # fmt: skip
    """Expect ``error`` (with exactly ``message``) and a store left exactly as it was.

    ``case`` names the input in the report, for tests that try several inputs in a loop."""
    label = "" if case is None else f" for {case!r}"
    before = (store.version(), dump(store, accounts))
    try:
        with pytest.raises(error) as caught:
            yield caught
    except pytest.fail.Exception:
        pytest.fail(f"DID NOT RAISE {error.__name__}{label}")
    if message is not None:
        assert str(caught.value) == message, f"message{label}"
    assert (store.version(), dump(store, accounts)) == before, f"the store changed{label}"


_hash_once = functools.cache(hash_password)  # a real argon2id hash, computed once per session


@pytest.fixture
def accounts(store: Store, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Accounts ACCT and OTHER, made by create_account.

    argon2 costs 50-150 ms a hash, so here each distinct password is hashed once per session
    (a real argon2id hash, its salt reused); verifying stays real, and the tests of
    create_account itself hash every time."""
    monkeypatch.setattr("iamguard.iam.accounts.hash_password", _hash_once)
    monkeypatch.setattr("iamguard.iam.credentials.hash_password", _hash_once)
    for account_id in (ACCT, OTHER):
        create_account(
            store, email="root@example.com", password=ROOT_PASSWORD, account_id=account_id
        )
    return ACCT, OTHER


@pytest.fixture
def iam(store: Store, accounts: tuple[str, str]) -> IAM:
    """Full authority over account ACCT, with a fixed clock."""
    return IAM(store, ACCT, clock=clock)


# --- entities as created -------------------------------------------------------------------------


def test_create_user(iam: IAM) -> None:
    """create_user returns the user: a 21-character AIDA id, its ARN with path, the clock's time."""
    user = iam.create_user("ram", path="/team/", tags=[{"Key": "team", "Value": "blue"}])
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user.user_id)
    assert user.arn == "arn:iamguard:iam::123456789012:user/team/ram"
    assert (user.account, user.name, user.path, user.created) == (ACCT, "ram", "/team/", STAMP)
    assert user.tags == (Tag("team", "blue"),)
    assert user.permissions_boundary is None
    assert iam.get_user("ram") == user


def test_unique_ids_differ(iam: IAM) -> None:
    """Two users get two different unique ids."""
    assert iam.create_user("ram").user_id != iam.create_user("shyam").user_id


def test_create_group(iam: IAM) -> None:
    """create_group returns the group: a 21-character AGPA id, its ARN, the clock's time."""
    group = iam.create_group("developers", path="/eng/")
    assert re.fullmatch(r"AGPA[A-Z2-7]{17}", group.group_id)
    assert group.arn == "arn:iamguard:iam::123456789012:group/eng/developers"
    assert (group.name, group.path, group.created) == ("developers", "/eng/", STAMP)
    assert iam.get_group("developers") == group


def test_create_role(iam: IAM) -> None:
    """create_role returns the role: an AROA id, its ARN, its trust policy and session duration."""
    role = iam.create_role(
        "ImageReader", TRUST, path="/svc/", description="reads images", max_session_duration=7200
    )
    assert re.fullmatch(r"AROA[A-Z2-7]{17}", role.role_id)
    assert role.arn == "arn:iamguard:iam::123456789012:role/svc/ImageReader"
    assert json.loads(role.assume_role_policy) == TRUST
    assert (role.description, role.max_session_duration, role.created) == (
        "reads images", 7200, STAMP,
    )  # fmt: skip
    assert iam.get_role("ImageReader") == role


def test_create_policy(iam: IAM) -> None:
    """create_policy returns the policy: an ANPA id, its ARN, v1 as default, unattached."""
    policy = iam.create_policy("ReadImages", READ, path="/images/", description="read")
    assert re.fullmatch(r"ANPA[A-Z2-7]{17}", policy.policy_id)
    assert policy.arn == "arn:iamguard:iam::123456789012:policy/images/ReadImages"
    assert (policy.default_version_id, policy.attachment_count) == ("v1", 0)
    assert (policy.created, policy.updated, policy.description) == (STAMP, STAMP, "read")
    assert iam.get_policy(policy.arn) == policy
    version = iam.get_policy_version(policy.arn, "v1")
    assert (version.is_default, version.created, json.loads(version.document)) == (
        True, STAMP, READ,
    )  # fmt: skip


def test_create_access_key(iam: IAM) -> None:
    """create_access_key returns an active 20-character AKIA key and a 40-character secret."""
    iam.create_user("ram")
    created = iam.create_access_key("ram")
    key = created.access_key
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key.access_key_id)
    assert (key.user, key.status, key.created) == ("ram", "Active", STAMP)
    assert len(created.secret_access_key) == 40
    assert iam.list_access_keys("ram") == [key]


def test_create_service(iam: IAM) -> None:
    """create_service returns the service principal (a 21-character id) and its secret."""
    created = iam.create_service("image-processor", description="resizes")
    service = created.service
    assert re.fullmatch(r"ASPA[A-Z2-7]{17}", service.service_id)
    assert (service.name, service.description, service.created) == (
        "image-processor", "resizes", STAMP,
    )  # fmt: skip
    assert len(created.secret) == 40
    assert iam.get_service("image-processor") == service
    assert iam.list_services() == [service]
    iam.delete_service("image-processor")
    with fails(iam.store, NoSuchEntity, "service `image-processor` cannot be found"):
        iam.get_service("image-processor")


@pytest.mark.usefixtures("accounts")
def test_partition_is_configurable(store: Store) -> None:
    """ARNs carry the partition IAM was given."""
    iam = IAM(store, ACCT, partition="acme")
    assert iam.create_user("ram").arn == "arn:acme:iam::123456789012:user/ram"


# --- reading, listing, changing ------------------------------------------------------------------


def test_lists_filter_by_path_prefix(iam: IAM) -> None:
    """list_users, list_groups, list_roles and list_policies return entities under a path prefix."""
    for name, path in [("gita", "/ops/"), ("ram", "/team/"), ("shyam", "/team/a/")]:
        for kind in ("user", "group", "role", "policy"):
            CREATE[kind](iam, f"{kind}-{name}", path)
    assert [u.name for u in iam.list_users()] == ["user-gita", "user-ram", "user-shyam"]
    assert [u.name for u in iam.list_users(path_prefix="/team/")] == ["user-ram", "user-shyam"]
    assert [g.name for g in iam.list_groups(path_prefix="/team/a/")] == ["group-shyam"]
    assert [r.name for r in iam.list_roles(path_prefix="/ops/")] == ["role-gita"]
    assert [p.name for p in iam.list_policies(path_prefix="/te")] == ["policy-ram", "policy-shyam"]


def test_group_membership(iam: IAM) -> None:
    """add_user_to_group makes members (twice: no change); remove_user_from_group ends it."""
    for name in ("ram", "shyam"):
        iam.create_user(name)
    iam.create_group("developers")
    iam.add_user_to_group("developers", "ram")
    iam.add_user_to_group("developers", "ram")
    iam.add_user_to_group("developers", "shyam")
    assert [u.name for u in iam.get_group_users("developers")] == ["ram", "shyam"]
    assert iam.list_groups_for_user("ram") == ["developers"]
    iam.remove_user_from_group("developers", "ram")
    assert [u.name for u in iam.get_group_users("developers")] == ["shyam"]
    assert iam.list_groups_for_user("ram") == []


def test_lookups_ignore_letter_case(iam: IAM) -> None:
    """Names are found whatever their letter case, and keep the case they were created with."""
    iam.create_user("Ram")
    iam.create_group("Developers")
    iam.add_user_to_group("developers", "RAM")
    assert iam.get_user("rAm").name == "Ram"
    assert iam.list_groups_for_user("ram") == ["Developers"]


def test_attach_and_detach(iam: IAM) -> None:
    """A managed policy attaches once to each user, group and role, counted, and detaches."""
    policy = iam.create_policy("ReadImages", READ)
    for count, kind in enumerate(OWNER_KINDS, 1):
        CREATE[kind](iam, "owner")
        attach = getattr(iam, f"attach_{kind}_policy")
        attach("owner", policy.arn)
        attach("owner", policy.arn)  # again: no change
        attached = getattr(iam, f"list_attached_{kind}_policies")("owner")
        assert attached == [AttachedPolicy("ReadImages", policy.arn)], kind
        assert iam.get_policy(policy.arn).attachment_count == count
    for kind in OWNER_KINDS:
        getattr(iam, f"detach_{kind}_policy")("owner", policy.arn)
        assert getattr(iam, f"list_attached_{kind}_policies")("owner") == [], kind
    assert iam.get_policy(policy.arn).attachment_count == 0


def test_inline_policies(iam: IAM) -> None:
    """An inline policy of a user, group or role is put, read, listed, replaced and deleted."""
    write = doc(allow("images:PutImage"))
    for kind in OWNER_KINDS:
        CREATE[kind](iam, "owner")
        put = getattr(iam, f"put_{kind}_policy")
        get = getattr(iam, f"get_{kind}_policy")
        put("owner", "Read", READ)
        assert json.loads(get("owner", "Read")) == READ, kind
        put("owner", "read", write)  # the same name in another case: replaces
        assert json.loads(get("owner", "Read")) == write, kind
        assert getattr(iam, f"list_{kind}_policies")("owner") == ["Read"], kind
        getattr(iam, f"delete_{kind}_policy")("owner", "Read")
        assert getattr(iam, f"list_{kind}_policies")("owner") == [], kind


def test_policy_versions(iam: IAM) -> None:
    """Versions are numbered, one is the default, the default moves and others can be deleted."""
    policy = iam.create_policy("Images", READ)
    v2 = iam.create_policy_version(policy.arn, doc(allow("images:PutImage")))
    assert (v2.version_id, v2.is_default, v2.created) == ("v2", False, STAMP)
    v3 = iam.create_policy_version(policy.arn, doc(allow("images:*")), set_as_default=True)
    assert (v3.version_id, v3.is_default) == ("v3", True)
    assert iam.get_policy(policy.arn).default_version_id == "v3"
    versions = iam.list_policy_versions(policy.arn)
    assert [(v.version_id, v.is_default) for v in versions] == [
        ("v1", False), ("v2", False), ("v3", True),
    ]  # fmt: skip
    iam.set_default_policy_version(policy.arn, "v1")
    assert iam.get_policy(policy.arn).default_version_id == "v1"
    assert iam.get_policy_version(policy.arn, "v3").is_default is False
    iam.delete_policy_version(policy.arn, "v2")
    assert [v.version_id for v in iam.list_policy_versions(policy.arn)] == ["v1", "v3"]


def test_permissions_boundaries(iam: IAM) -> None:
    """A boundary is set on a user or role, replaced, and removed; removing none is NoSuchEntity."""
    first = iam.create_policy("Boundary", READ)
    second = iam.create_policy("Wider", doc(allow("images:*")))
    for kind in ("user", "role"):
        CREATE[kind](iam, "owner")
        get = getattr(iam, f"get_{kind}")
        getattr(iam, f"put_{kind}_permissions_boundary")("owner", first.arn)
        assert get("owner").permissions_boundary == first.arn
        getattr(iam, f"put_{kind}_permissions_boundary")("owner", second.arn)
        assert get("owner").permissions_boundary == second.arn
        delete = getattr(iam, f"delete_{kind}_permissions_boundary")
        delete("owner")
        assert get("owner").permissions_boundary is None
        with fails(iam.store, NoSuchEntity, f"{kind} `owner` has no permissions boundary"):
            delete("owner")
    iam.delete_policy(first.arn)  # no longer in use


def test_create_user_with_boundary(iam: IAM) -> None:
    """create_user sets a permissions boundary that exists."""
    boundary = iam.create_policy("Boundary", READ)
    user = iam.create_user("ram", permissions_boundary=boundary.arn)
    assert user.permissions_boundary == boundary.arn
    assert iam.get_user("ram").permissions_boundary == boundary.arn


def test_tags(iam: IAM) -> None:
    """Tagging adds or replaces by key (any case); untagging removes by key (any case)."""
    for kind in ("user", "role"):
        CREATE[kind](iam, "owner")
        getattr(iam, f"tag_{kind}")("owner", [{"Key": "team", "Value": "blue"}, Tag("cost", "4")])
        getattr(iam, f"tag_{kind}")("owner", [{"Key": "Team", "Value": "red"}])
        tags = getattr(iam, f"list_{kind}_tags")("owner")
        assert set(tags) == {Tag("Team", "red"), Tag("cost", "4")}, kind
        getattr(iam, f"untag_{kind}")("owner", ["COST", "absent"])
        assert getattr(iam, f"list_{kind}_tags")("owner") == [Tag("Team", "red")], kind


def test_update_role(iam: IAM) -> None:
    """update_role changes description and session duration; update_assume_role_policy the trust."""
    iam.create_role("ImageReader", TRUST)
    iam.update_role("ImageReader", description="new", max_session_duration=43200)
    service_trust = doc(
        {"Effect": "Allow", "Principal": {"Service": "resizer"}, "Action": "sts:AssumeRole"}
    )
    iam.update_assume_role_policy("ImageReader", service_trust)
    role = iam.get_role("ImageReader")
    assert (role.description, role.max_session_duration) == ("new", 43200)
    assert json.loads(role.assume_role_policy) == service_trust


def test_access_key_lifecycle(iam: IAM) -> None:
    """An access key is deactivated, reactivated and deleted."""
    iam.create_user("ram")
    key_id = iam.create_access_key("ram").access_key.access_key_id
    iam.update_access_key("ram", key_id, "Inactive")
    assert [k.status for k in iam.list_access_keys("ram")] == ["Inactive"]
    iam.update_access_key("ram", key_id, "Active")
    assert [k.status for k in iam.list_access_keys("ram")] == ["Active"]
    iam.delete_access_key("ram", key_id)
    assert iam.list_access_keys("ram") == []


def test_another_users_key_is_not_found(iam: IAM) -> None:
    """A key can be changed or deleted only under the name of the user who owns it."""
    iam.create_user("ram")
    iam.create_user("shyam")
    key_id = iam.create_access_key("ram").access_key.access_key_id
    message = f"access key `{key_id}` of user `shyam` cannot be found"
    with fails(iam.store, NoSuchEntity, message):
        iam.update_access_key("shyam", key_id, "Inactive")
    with fails(iam.store, NoSuchEntity, message):
        iam.delete_access_key("shyam", key_id)


def test_login_profile_lifecycle(iam: IAM) -> None:
    """A login profile is created (at the clock's time), changed, deleted; a second one exists."""
    iam.create_user("ram")
    profile = iam.create_login_profile("ram", PASSWORD, password_reset_required=True)
    assert (profile.user, profile.created, profile.password_reset_required) == ("ram", STAMP, True)
    with fails(iam.store, EntityAlreadyExists, "login profile `ram` already exists"):
        iam.create_login_profile("RAM", PASSWORD)
    iam.update_login_profile("ram", password_reset_required=False)
    assert iam.get_login_profile("ram").password_reset_required is False
    iam.delete_login_profile("ram")
    with fails(iam.store, NoSuchEntity, "login profile `ram` cannot be found"):
        iam.get_login_profile("ram")


def test_password_policy_lifecycle(iam: IAM) -> None:
    """Without a policy AWS's default applies; a policy is set, read and deleted (once)."""
    assert iam.get_account_password_policy().is_default is True
    policy = iam.update_account_password_policy(minimum_password_length=12, require_symbols=True)
    assert iam.get_account_password_policy() == policy
    assert (policy.minimum_password_length, policy.require_symbols, policy.is_default) == (
        12, True, False,
    )  # fmt: skip
    iam.delete_account_password_policy()
    assert iam.get_account_password_policy().is_default is True
    with fails(iam.store, NoSuchEntity, "the account has no password policy"):
        iam.delete_account_password_policy()


# --- NoSuchEntity and EntityAlreadyExists --------------------------------------------------------

ELSEWHERE = arn("policy", "Read", account=OTHER)
NO_USER = "user `ghost` cannot be found"
NO_POLICY = f"policy `{GHOST_POLICY}` cannot be found"
KEY_ID = "AKIAAAAAAAAAAAAAAAAA"

NOT_FOUND: dict[str, tuple[Callable[[IAM], object], str]] = {
    "get_user": (lambda iam: iam.get_user("ghost"), NO_USER),
    "delete_user": (lambda iam: iam.delete_user("ghost"), NO_USER),
    "tag_user": (lambda iam: iam.tag_user("ghost", [Tag("a", "b")]), NO_USER),
    "create_access_key": (lambda iam: iam.create_access_key("ghost"), NO_USER),
    "list_access_keys": (lambda iam: iam.list_access_keys("ghost"), NO_USER),
    "put_user_policy": (lambda iam: iam.put_user_policy("ghost", "p", READ), NO_USER),
    "add_missing_user": (lambda iam: iam.add_user_to_group("developers", "ghost"), NO_USER),
    "add_to_missing_group": (
        lambda iam: iam.add_user_to_group("ghost", "ram"),
        "group `ghost` cannot be found",
    ),
    "remove_non_member": (
        lambda iam: iam.remove_user_from_group("developers", "ram"),
        "user `ram` is not in group `developers`",
    ),
    "get_group": (lambda iam: iam.get_group("ghost"), "group `ghost` cannot be found"),
    "delete_group": (lambda iam: iam.delete_group("ghost"), "group `ghost` cannot be found"),
    "get_role": (lambda iam: iam.get_role("ghost"), "role `ghost` cannot be found"),
    "delete_role": (lambda iam: iam.delete_role("ghost"), "role `ghost` cannot be found"),
    "update_role": (
        lambda iam: iam.update_role("ghost", description="x"),
        "role `ghost` cannot be found",
    ),
    "get_policy": (lambda iam: iam.get_policy(GHOST_POLICY), NO_POLICY),
    "delete_policy": (lambda iam: iam.delete_policy(GHOST_POLICY), NO_POLICY),
    "create_policy_version": (lambda iam: iam.create_policy_version(GHOST_POLICY, READ), NO_POLICY),
    "attach_missing_policy": (lambda iam: iam.attach_user_policy("ram", GHOST_POLICY), NO_POLICY),
    "attach_other_accounts_policy": (
        lambda iam: iam.attach_user_policy("ram", ELSEWHERE),
        f"policy `{ELSEWHERE}` cannot be found",
    ),
    "put_missing_boundary": (
        lambda iam: iam.put_user_permissions_boundary("ram", GHOST_POLICY),
        NO_POLICY,
    ),
    "detach_unattached": (
        lambda iam: iam.detach_user_policy("ram", READ_ARN),
        f"policy `{READ_ARN}` is not attached to user `ram`",
    ),
    "get_login_profile": (
        lambda iam: iam.get_login_profile("ram"),
        "login profile `ram` cannot be found",
    ),
    "delete_login_profile": (
        lambda iam: iam.delete_login_profile("ram"),
        "login profile `ram` cannot be found",
    ),
    "update_access_key": (
        lambda iam: iam.update_access_key("ram", KEY_ID, "Active"),
        f"access key `{KEY_ID}` of user `ram` cannot be found",
    ),
    "get_service": (lambda iam: iam.get_service("ghost"), "service `ghost` cannot be found"),
}


def test_no_such_entity(iam: IAM) -> None:
    """Naming a user, group, role, policy, profile, key or membership not there: NoSuchEntity."""
    iam.create_user("ram")
    iam.create_group("developers")
    iam.create_policy("Read", READ)
    for case, (call, message) in NOT_FOUND.items():
        with fails(iam.store, NoSuchEntity, message, case=case):
            call(iam)


def test_missing_policy_version_message(iam: IAM) -> None:
    """A missing policy version's message names the version and the policy, not a store key."""
    policy = iam.create_policy("P", READ)
    with fails(iam.store, NoSuchEntity) as caught:
        iam.get_policy_version(policy.arn, "v9")
    message = str(caught.value)
    assert "`v9`" in message
    assert policy.arn in message
    assert "P v9" not in message


def test_missing_inline_policy_message(iam: IAM) -> None:
    """A missing inline policy's message names the policy and its user, not a store key."""
    iam.create_user("ram")
    with fails(iam.store, NoSuchEntity) as caught:
        iam.get_user_policy("ram", "nope")
    message = str(caught.value)
    assert "`nope`" in message
    assert "`ram`" in message
    assert "user/ram nope" not in message


def test_name_with_nul_is_not_found(iam: IAM) -> None:
    """Looking up a name that holds a NUL character is NoSuchEntity on every store."""
    iam.create_user("ram")
    with fails(iam.store, NoSuchEntity, "user `ram\x00` cannot be found"):
        iam.get_user("ram\x00")


def test_account_must_exist(store: Store) -> None:
    """IAM for an account that was never created is NoSuchEntity: nothing is written into it."""
    with fails(store, NoSuchEntity, f"account `{ACCT}` cannot be found"):
        IAM(store, ACCT)


def test_names_are_unique_in_any_letter_case(iam: IAM) -> None:
    """A second entity whose name differs only in letter case (or path) is EntityAlreadyExists."""
    for kind, create in CREATE.items():
        create(iam, "ram")
        with fails(iam.store, EntityAlreadyExists, f"{kind} `Ram` already exists", case=kind):
            create(iam, "Ram", "/other/")


@pytest.mark.usefixtures("accounts")
def test_same_name_in_another_account(store: Store) -> None:
    """Names are unique within an account, not across accounts."""
    IAM(store, ACCT).create_user("ram")
    assert IAM(store, OTHER).create_user("ram").arn == arn("user", "ram", account=OTHER)


# --- InvalidInput --------------------------------------------------------------------------------


def test_bad_user_names(iam: IAM) -> None:
    """A user name is 1-64 letters, digits and +=,.@_- (ASCII); anything else is InvalidInput."""
    for name in ["", "x" * 65, "ram smith", "team/ram", "r\u00e1m", "ram\n", "ram:x", "*"]:
        message = f"user name `{name}` must be 1-64 {NAME_CHARS}"
        with fails(iam.store, InvalidInput, message, case=name):
            iam.create_user(name)


def test_name_length_limits(iam: IAM) -> None:
    """Each kind of name may be as long as AWS allows, and not one character longer."""
    limits = {"user": 64, "group": 128, "role": 64, "policy": 128, "service": 64}
    for kind, longest in limits.items():
        CREATE[kind](iam, "a+=,.@_-" + "x" * (longest - 8))
        name = "y" * (longest + 1)
        message = f"{kind} name `{name}` must be 1-{longest} {NAME_CHARS}"
        with fails(iam.store, InvalidInput, message, case=kind):
            CREATE[kind](iam, name)
    with fails(
        iam.store, InvalidInput, f"inline policy name `{'p' * 129}` must be 1-128 {NAME_CHARS}"
    ):
        iam.put_user_policy("a+=,.@_-" + "x" * 56, "p" * 129, READ)


def test_bad_paths(iam: IAM) -> None:
    """A path is `/` or `/a/.../` of printable ASCII, at most 512 characters; else InvalidInput."""
    for path in ["", "team/", "/team", "/te am/", "/caf\u00e9/", "/tab\t/", "/" + "a" * 511 + "/"]:
        with fails(iam.store, InvalidInput, f"path `{path}` {PATH_RULE}", case=path):
            iam.create_user("ram", path=path)
    longest = "/" + "a" * 510 + "/"
    assert iam.create_user("ram", path=longest).arn == arn("user", "ram", longest)


def test_empty_path_segment(iam: IAM) -> None:
    """The path `//` is InvalidInput (AWS's pattern: `/` or `/` + 1-510 characters + `/`)."""
    with fails(iam.store, InvalidInput, f"path `//` {PATH_RULE}"):
        iam.create_user("ram", path="//")


BAD_TAGS: list[tuple[list[Any], str]] = [
    ([{"Key": "", "Value": "v"}], "tag key `` must be 1-128 characters"),
    ([{"Key": "k" * 129, "Value": "v"}], f"tag key `{'k' * 129}` must be 1-128 characters"),
    ([{"Key": "k", "Value": "v" * 257}], "tag `k`: value must be at most 256 characters"),
    ([{"Key": "aws:team", "Value": "v"}], "tag key `aws:team`: the prefix `aws:` is reserved"),
    ([{"Key": "AWS:team", "Value": "v"}], "tag key `AWS:team`: the prefix `aws:` is reserved"),
    ([Tag("Team", "a"), Tag("team", "b")], "tag key `team` is given twice"),
]


def test_bad_tags(iam: IAM) -> None:
    """Tags breaking AWS's rules (lengths, `aws:` prefix, duplicate keys) are InvalidInput."""
    iam.create_user("ram")
    for tags, message in BAD_TAGS:
        with fails(iam.store, InvalidInput, message, case=tags):
            iam.create_user("shyam", tags=tags)
        with fails(iam.store, InvalidInput, message, case=tags):
            iam.tag_user("ram", tags)
    longest = Tag("k" * 128, "v" * 256)
    assert iam.create_user("shyam", tags=[longest]).tags == (longest,)


def test_tag_characters(iam: IAM) -> None:
    """Tag keys and values hold only letters, digits, spaces and `_.:/=+-@` (AWS)."""
    for tags in ([Tag("team!", "v")], [Tag("team", "<script>")]):
        with fails(iam.store, InvalidInput, case=tags):
            iam.create_user("ram", tags=tags)


def test_max_session_duration(iam: IAM) -> None:
    """A role's maximum session duration is an int of 3,600-43,200 seconds; else InvalidInput."""
    iam.create_role("reader", TRUST)
    for seconds in [3599, 43201, 0, -3600, True, 7200.0, "3600"]:
        message = f"max session duration `{seconds}` must be 3600-43200 seconds"
        with fails(iam.store, InvalidInput, message, case=seconds):
            iam.create_role("other", TRUST, max_session_duration=seconds)
        with fails(iam.store, InvalidInput, message, case=seconds):
            iam.update_role("reader", max_session_duration=seconds)
    assert iam.create_role("short", TRUST, max_session_duration=3600).max_session_duration == 3600
    assert iam.create_role("long", TRUST, max_session_duration=43200).max_session_duration == 43200


def test_role_description(iam: IAM) -> None:
    """A role description is at most 1,000 characters of AWS's set (tab, CR, LF, U+0020-U+00FF)."""
    for description in ["x" * 1001, "nul\x00", "surrogate\ud800", "emoji\U0001f600"]:
        with fails(iam.store, InvalidInput, case=description):
            iam.create_role("reader", TRUST, description=description)


def test_bad_access_key_status(iam: IAM) -> None:
    """An access key's status is exactly `Active` or `Inactive`; else InvalidInput."""
    iam.create_user("ram")
    key_id = iam.create_access_key("ram").access_key.access_key_id
    for status in ["Enabled", "active", "INACTIVE", ""]:
        message = f"status `{status}` must be `Active` or `Inactive`"
        with fails(iam.store, InvalidInput, message, case=status):
            iam.update_access_key("ram", key_id, status)


BAD_PASSWORD_POLICIES: list[tuple[dict[str, Any], str]] = [
    ({"minimum_password_length": 5}, "minimum_password_length must be 6-128"),
    ({"minimum_password_length": 129}, "minimum_password_length must be 6-128"),
    ({"max_password_age": 0}, "max_password_age must be 1-1095 days"),
    ({"max_password_age": 1096}, "max_password_age must be 1-1095 days"),
    ({"password_reuse_prevention": 0}, "password_reuse_prevention must be 1-24"),
    ({"password_reuse_prevention": 25}, "password_reuse_prevention must be 1-24"),
    ({"is_default": True}, "unknown password policy option `is_default`"),
    ({"MinimumPasswordLength": 8}, "unknown password policy option `MinimumPasswordLength`"),
]


def test_bad_password_policy(iam: IAM) -> None:
    """A password policy option out of AWS's range, or unknown, is InvalidInput."""
    for options, message in BAD_PASSWORD_POLICIES:
        with fails(iam.store, InvalidInput, message, case=options):
            iam.update_account_password_policy(**options)


def test_password_policy_option_of_wrong_type(iam: IAM) -> None:
    """A password policy option of the wrong type is InvalidInput, not a TypeError."""
    with fails(iam.store, InvalidInput):
        iam.update_account_password_policy(minimum_password_length="8")


# --- quotas --------------------------------------------------------------------------------------


def test_access_keys_per_user(iam: IAM) -> None:
    """A user holds up to two access keys; a third is LimitExceeded; deleting one frees a place."""
    iam.create_user("ram")
    first = iam.create_access_key("ram")
    iam.create_access_key("ram")
    with fails(iam.store, LimitExceeded, "cannot exceed quota for AccessKeysPerUser: 2"):
        iam.create_access_key("ram")
    iam.delete_access_key("ram", first.access_key.access_key_id)
    iam.create_access_key("ram")


def test_groups_per_user(iam: IAM) -> None:
    """A user is in up to ten groups; an eleventh is LimitExceeded; re-adding is no change."""
    iam.create_user("ram")
    for i in range(11):
        iam.create_group(f"g{i}")
    for i in range(10):
        iam.add_user_to_group(f"g{i}", "ram")
    iam.add_user_to_group("g9", "ram")
    with fails(iam.store, LimitExceeded, "cannot exceed quota for GroupsPerUser: 10"):
        iam.add_user_to_group("g10", "ram")
    iam.remove_user_from_group("g0", "ram")
    iam.add_user_to_group("g10", "ram")
    assert len(iam.list_groups_for_user("ram")) == 10


def test_attached_policies_per_entity(iam: IAM) -> None:
    """Up to ten managed policies attach to a user, group or role; an eleventh is LimitExceeded."""
    arns = [iam.create_policy(f"P{i}", READ).arn for i in range(11)]
    for kind in OWNER_KINDS:
        CREATE[kind](iam, "owner")
        attach = getattr(iam, f"attach_{kind}_policy")
        for policy_arn in arns[:10]:
            attach("owner", policy_arn)
        attach("owner", arns[9])  # already attached: no change, no quota
        quota = f"cannot exceed quota for Policies{'Per' + kind.title()}: 10"
        with fails(iam.store, LimitExceeded, quota, case=kind):
            attach("owner", arns[10])
        getattr(iam, f"detach_{kind}_policy")("owner", arns[0])
        attach("owner", arns[10])


def test_versions_per_policy(iam: IAM) -> None:
    """A managed policy has up to five versions; a sixth is LimitExceeded until one is deleted."""
    policy = iam.create_policy("P", READ)
    for _ in range(4):
        iam.create_policy_version(policy.arn, READ)
    with fails(iam.store, LimitExceeded, "cannot exceed quota for PolicyVersionsPerPolicy: 5"):
        iam.create_policy_version(policy.arn, READ, set_as_default=True)
    iam.delete_policy_version(policy.arn, "v2")
    assert iam.create_policy_version(policy.arn, READ).version_id == "v6"


def test_tags_per_entity(iam: IAM) -> None:
    """A user or role holds up to 50 tags; a 51st is LimitExceeded, when created or added."""
    tags = [Tag(f"k{i}", "v") for i in range(50)]
    quota = "cannot exceed quota for TagsPerEntity: 50"
    for kind in ("user", "role"):
        create = getattr(iam, f"create_{kind}")
        more = (TRUST,) if kind == "role" else ()
        with fails(iam.store, LimitExceeded, quota, case=kind):
            create("owner", *more, tags=[*tags, Tag("k50", "v")])
        create("owner", *more, tags=tags)
        tag = getattr(iam, f"tag_{kind}")
        tag("owner", [Tag("K0", "replaced")])  # replaces a tag: still 50
        with fails(iam.store, LimitExceeded, quota, case=kind):
            tag("owner", [Tag("k50", "v")])
        assert len(getattr(iam, f"list_{kind}_tags")("owner")) == 50


@pytest.mark.usefixtures("accounts")
def test_users_per_account(store: Store) -> None:
    """With Quotas(users=3) an account holds three users; a fourth is LimitExceeded."""
    iam = IAM(store, ACCT, quotas=Quotas(users=3))
    for name in ("ram", "shyam", "sita"):
        iam.create_user(name)
    with fails(store, LimitExceeded, "cannot exceed quota for UsersPerAccount: 3"):
        iam.create_user("gita")
    iam.delete_user("sita")
    iam.create_user("gita")
    other = IAM(store, OTHER, quotas=Quotas(users=3))  # each account has its own quota
    for name in ("ram", "shyam", "sita"):
        other.create_user(name)


# --- DeleteConflict ------------------------------------------------------------------------------


def _login_profile(iam: IAM, user: str) -> None:
    iam.create_login_profile(user, PASSWORD)


def _access_key(iam: IAM, user: str) -> None:
    iam.create_access_key(user)


def _membership(iam: IAM, user: str) -> None:
    iam.add_user_to_group("developers", user)


def _attached(iam: IAM, user: str) -> None:
    iam.attach_user_policy(user, READ_ARN)


def _inline(iam: IAM, user: str) -> None:
    iam.put_user_policy(user, "Read", READ)


USER_DEPENDENCIES: dict[str, Callable[[IAM, str], None]] = {
    "delete the login profile": _login_profile,
    "delete access keys": _access_key,
    "leave every group": _membership,
    "detach all policies": _attached,
    "delete inline policies": _inline,
}


def test_user_delete_conflict(iam: IAM) -> None:
    """A user with a password, keys, groups, attached or inline policies cannot be deleted."""
    iam.create_group("developers")
    iam.create_policy("Read", READ)
    for number, (what, depend) in enumerate(USER_DEPENDENCIES.items()):
        user = f"user{number}"
        iam.create_user(user)
        depend(iam, user)
        message = f"cannot delete user `{user}`: must {what} first"
        with fails(iam.store, DeleteConflict, message, case=what):
            iam.delete_user(user.upper())


def test_delete_user_once_everything_is_removed(iam: IAM) -> None:
    """With its keys, groups and policies removed, a user (and its boundary) is deleted."""
    iam.create_group("developers")
    iam.create_policy("Read", READ)
    boundary = iam.create_policy("Boundary", READ)
    iam.create_user("ram", permissions_boundary=boundary.arn)
    for depend in (_access_key, _membership, _attached, _inline):
        depend(iam, "ram")
    iam.delete_access_key("ram", iam.list_access_keys("ram")[0].access_key_id)
    iam.remove_user_from_group("developers", "ram")
    iam.detach_user_policy("ram", READ_ARN)
    iam.delete_user_policy("ram", "Read")
    iam.delete_user("ram")
    with fails(iam.store, NoSuchEntity, "user `ram` cannot be found"):
        iam.get_user("ram")
    iam.delete_policy(boundary.arn)  # the boundary went with the user


def test_group_delete_conflict(iam: IAM) -> None:
    """A group with members, attached or inline policies cannot be deleted."""
    iam.create_user("ram")
    iam.create_policy("Read", READ)
    dependencies: dict[str, Callable[[str], None]] = {
        "remove users from the group": lambda g: iam.add_user_to_group(g, "ram"),
        "detach all policies": lambda g: iam.attach_group_policy(g, READ_ARN),
        "delete inline policies": lambda g: iam.put_group_policy(g, "Read", READ),
    }
    for number, (what, depend) in enumerate(dependencies.items()):
        group = f"group{number}"
        iam.create_group(group)
        depend(group)
        message = f"cannot delete group `{group}`: must {what} first"
        with fails(iam.store, DeleteConflict, message, case=what):
            iam.delete_group(group)


def test_role_delete_conflict(iam: IAM) -> None:
    """A role with attached or inline policies cannot be deleted."""
    iam.create_policy("Read", READ)
    dependencies: dict[str, Callable[[str], None]] = {
        "detach all policies": lambda r: iam.attach_role_policy(r, READ_ARN),
        "delete inline policies": lambda r: iam.put_role_policy(r, "Read", READ),
    }
    for number, (what, depend) in enumerate(dependencies.items()):
        role = f"role{number}"
        iam.create_role(role, TRUST)
        depend(role)
        message = f"cannot delete role `{role}`: must {what} first"
        with fails(iam.store, DeleteConflict, message, case=what):
            iam.delete_role(role)


def test_delete_role_and_group(iam: IAM) -> None:
    """A role (with its boundary) or a group with nothing attached is deleted."""
    boundary = iam.create_policy("Boundary", READ)
    iam.create_role("r", TRUST, permissions_boundary=boundary.arn)
    iam.create_group("g")
    iam.delete_role("r")
    iam.delete_group("g")
    assert (iam.list_roles(), iam.list_groups()) == ([], [])
    iam.delete_policy(boundary.arn)  # the boundary went with the role


def test_policy_in_use_delete_conflict(iam: IAM) -> None:
    """A managed policy attached to anything, or used as a boundary, cannot be deleted."""
    uses = [
        ("user", "attach_user_policy"),
        ("group", "attach_group_policy"),
        ("role", "attach_role_policy"),
        ("user", "put_user_permissions_boundary"),
        ("role", "put_role_permissions_boundary"),
    ]
    for number, (kind, use) in enumerate(uses):
        policy = iam.create_policy(f"P{number}", READ)
        CREATE[kind](iam, f"owner{number}")
        getattr(iam, use)(f"owner{number}", policy.arn)
        message = f"cannot delete policy `{policy.arn}`: it is attached to entities"
        with fails(iam.store, DeleteConflict, message, case=use):
            iam.delete_policy(policy.arn)


def test_default_version_delete_conflict(iam: IAM) -> None:
    """The default version of a policy cannot be deleted."""
    policy = iam.create_policy("Read", READ)
    iam.create_policy_version(policy.arn, READ)
    message = "cannot delete the default version of a policy"
    with fails(iam.store, DeleteConflict, message):
        iam.delete_policy_version(policy.arn, "v1")


def test_delete_policy(iam: IAM) -> None:
    """An unused policy with only its default version is deleted."""
    policy = iam.create_policy("Read", READ)
    iam.delete_policy(policy.arn)
    assert iam.list_policies() == []


def test_policy_with_versions_delete_conflict(iam: IAM) -> None:
    """A policy that still has non-default versions cannot be deleted (AWS's DeletePolicy)."""
    policy = iam.create_policy("Read", READ)
    iam.create_policy_version(policy.arn, READ)
    with fails(iam.store, DeleteConflict):
        iam.delete_policy(policy.arn)


# --- policy documents ----------------------------------------------------------------------------

# How each call's MalformedPolicyDocument names the policy.
DOCUMENT_NAMES = {
    "create_policy": "P", "create_policy_version": READ_ARN, "put_user_policy": "p",
    "put_group_policy": "p", "put_role_policy": "p",
}  # fmt: skip
PUT_DOCUMENT: dict[str, Callable[[IAM, Any], object]] = {
    "create_policy": lambda iam, d: iam.create_policy("P", d),
    "create_policy_version": lambda iam, d: iam.create_policy_version(READ_ARN, d),
    "put_user_policy": lambda iam, d: iam.put_user_policy("owner", "p", d),
    "put_group_policy": lambda iam, d: iam.put_group_policy("owner", "p", d),
    "put_role_policy": lambda iam, d: iam.put_role_policy("owner", "p", d),
}


def test_malformed_identity_policy(iam: IAM) -> None:
    """A document breaking the grammar is MalformedPolicyDocument listing every problem."""
    for kind in OWNER_KINDS:
        CREATE[kind](iam, "owner")
    iam.create_policy("Read", READ)
    both = (
        "Statement[0].Effect: `Alow` is not `Allow` or `Deny`; "
        "Statement[0]: missing `Resource` or `NotResource`"
    )
    for case, put in PUT_DOCUMENT.items():
        named = f"policy `{DOCUMENT_NAMES[case]}`: "
        with fails(iam.store, MalformedPolicyDocument, named + both, case=case) as caught:
            put(iam, BAD)
        assert (caught.value.code, len(caught.value.problems)) == ("MalformedPolicyDocument", 2)
        with fails(iam.store, MalformedPolicyDocument, case=case) as caught:
            put(iam, "{not json")
        assert str(caught.value).startswith(named + "not valid JSON: ")
        message = named + "Statement[0]: `Principal` is not allowed in an identity-based policy"
        with fails(iam.store, MalformedPolicyDocument, message, case=case):
            put(iam, doc({**allow(), "Principal": {"AWS": "*"}}))


BAD_TRUST: list[tuple[dict[str, Any], str]] = [
    (
        doc({**allow("sts:AssumeRole"), "Principal": {"AWS": "*"}}),
        "Statement[0]: `Resource` is not allowed in a trust policy",
    ),
    (
        doc({"Effect": "Allow", "Action": "sts:AssumeRole"}),
        "Statement[0]: missing `Principal` or `NotPrincipal`",
    ),
    (
        BAD,
        "Statement[0].Effect: `Alow` is not `Allow` or `Deny`; "
        "Statement[0]: missing `Principal` or `NotPrincipal`",
    ),
]


def test_malformed_trust_policy(iam: IAM) -> None:
    """A trust policy follows the trust-policy rules: a Principal, no Resource."""
    iam.create_role("r", TRUST)
    for document, message in BAD_TRUST:
        with fails(iam.store, MalformedPolicyDocument, f"policy `other`: {message}", case=message):
            iam.create_role("other", document)
        with fails(iam.store, MalformedPolicyDocument, f"policy `r`: {message}", case=message):
            iam.update_assume_role_policy("r", document)


def _too_large(quota: str, limit: int) -> str:
    return (
        f"cannot exceed quota for {quota}: {limit} "
        f"(the policy has {limit + 1} characters not counting white space)"
    )


def test_inline_policy_size(iam: IAM) -> None:
    """An inline policy holds up to 2,048 (user), 5,120 (group), 10,240 (role) non-blanks."""
    limits = {"user": (2048, "UserPolicySize"), "group": (5120, "GroupPolicySize")}
    limits["role"] = (10240, "RolePolicySize")
    for kind, (limit, quota) in limits.items():
        CREATE[kind](iam, "owner")
        put = getattr(iam, f"put_{kind}_policy")
        put("owner", "AtLimit", sized_policy(limit))
        put("owner", "AtLimit", json.dumps(json.loads(sized_policy(limit)), indent=4))
        with fails(iam.store, LimitExceeded, _too_large(quota, limit), case=kind):
            put("owner", "OverLimit", sized_policy(limit + 1))


def test_managed_policy_size(iam: IAM) -> None:
    """A managed policy holds up to 6,144 characters, white space not counted."""
    policy = iam.create_policy("AtLimit", sized_policy(6144))
    with fails(iam.store, LimitExceeded, _too_large("PolicySize", 6144)):
        iam.create_policy("OverLimit", sized_policy(6145))
    with fails(iam.store, LimitExceeded, _too_large("PolicySize", 6144)):
        iam.create_policy_version(policy.arn, sized_policy(6145))


def test_inline_policy_size_is_aggregate(iam: IAM) -> None:
    """An owner's inline policies together may not exceed its limit (AWS's aggregate quota)."""
    for kind, limit in {"user": 2048, "group": 5120, "role": 10240}.items():
        CREATE[kind](iam, "owner")
        put = getattr(iam, f"put_{kind}_policy")
        put("owner", "First", sized_policy(limit // 2 + 1))
        with fails(iam.store, LimitExceeded, case=kind):
            put("owner", "Second", sized_policy(limit // 2 + 1))


# --- passwords -----------------------------------------------------------------------------------

WEAK_PASSWORDS: list[tuple[str, str]] = [
    ("Sh0rt-x", "at least 8 characters"),
    ("alllowercase1", THREE_CLASSES),
    ("NOSYMBOLSATALL", THREE_CLASSES),
    ("x", f"at least 8 characters; {THREE_CLASSES}"),
    ("Ram-Passw0rd" * 11, "at most 128 characters"),
    ("Ram", f"at least 8 characters; {THREE_CLASSES}; not the user's name"),
]


def test_default_password_policy(iam: IAM) -> None:
    """With no policy set, a password needs 8-128 characters and three of four classes."""
    iam.create_user("ram")
    for password, needs in WEAK_PASSWORDS:
        message = f"password does not meet the account password policy: it needs {needs}"
        with fails(iam.store, PasswordPolicyViolation, message, case=password):
            iam.create_login_profile("ram", password)


def test_custom_password_policy(iam: IAM) -> None:
    """A custom policy requires exactly the classes it names (and no longer three of four)."""
    iam.update_account_password_policy(require_symbols=True)
    iam.create_user("ram")
    message = "password does not meet the account password policy: it needs a symbol"
    with fails(iam.store, PasswordPolicyViolation, message):
        iam.create_login_profile("ram", "NoSymbols123")
    iam.create_login_profile("ram", "only-lower")  # one class, but the one required


def test_password_reuse_prevention(iam: IAM) -> None:
    """With password_reuse_prevention=2 the last two passwords cannot be set again."""
    iam.update_account_password_policy(password_reuse_prevention=2)
    iam.create_user("ram")
    iam.create_login_profile("ram", "First-Passw0rd")
    iam.update_login_profile("ram", password="Second-Passw0rd")
    message = "password was used recently: the account policy forbids reusing the last 2"
    with fails(iam.store, PasswordPolicyViolation, message):
        iam.update_login_profile("ram", password="First-Passw0rd")
    iam.update_login_profile("ram", password="Third-Passw0rd")
    iam.update_login_profile("ram", password="First-Passw0rd")  # no longer among the last two


# --- secrets -------------------------------------------------------------------------------------


def test_secrets_are_never_stored(iam: IAM) -> None:
    """No stored record holds an access-key or service secret or a password; passwords: argon2id."""
    iam.create_user("ram")
    key = iam.create_access_key("ram")
    service = iam.create_service("svc")
    iam.create_login_profile("ram", PASSWORD)
    stored = json.dumps(dump(iam.store))
    for secret in (key.secret_access_key, service.secret, PASSWORD, ROOT_PASSWORD):
        assert secret not in stored
    profile = iam.store.read(lambda tx: tx.get("login_profile", ACCT, "ram"))
    assert profile["password_hash"].startswith("$argon2id$")
    history = iam.store.read(lambda tx: tx.find("password_history", ACCT))
    assert [record["user"] for record in history] == ["ram"]
    assert all(h.startswith("$argon2id$") for record in history for h in record["hashes"])


def test_secrets_are_not_shown(iam: IAM) -> None:
    """The returned secret is not in repr() or str(), nor in what list_access_keys returns."""
    iam.create_user("ram")
    key = iam.create_access_key("ram")
    service = iam.create_service("svc")
    for created, secret in ((key, key.secret_access_key), (service, service.secret)):
        assert secret not in repr(created)
        assert secret not in str(created)
    listed = iam.list_access_keys("ram")
    assert listed == [key.access_key]
    assert key.secret_access_key not in repr(listed)
    assert not any("secret" in field for k in listed for field in vars(k))


# --- all or nothing ------------------------------------------------------------------------------


def test_create_user_with_missing_boundary_leaves_nothing(iam: IAM) -> None:
    """create_user failing on a boundary that does not exist leaves no user behind."""
    with fails(iam.store, NoSuchEntity, f"policy `{GHOST_POLICY}` cannot be found"):
        iam.create_user("ram", permissions_boundary=GHOST_POLICY)
    assert iam.list_users() == []
    iam.create_user("ram")  # the name is free


def test_create_role_with_missing_boundary_leaves_nothing(iam: IAM) -> None:
    """create_role failing on a boundary that does not exist leaves no role behind."""
    with fails(iam.store, NoSuchEntity, f"policy `{GHOST_POLICY}` cannot be found"):
        iam.create_role("r", TRUST, permissions_boundary=GHOST_POLICY)
    assert iam.list_roles() == []


def test_successful_write_bumps_version_once(iam: IAM) -> None:
    """A management call that succeeds bumps the model version exactly once."""
    before = iam.store.version()
    boundary = iam.create_policy("B", READ)
    iam.create_user("ram", permissions_boundary=boundary.arn)
    assert iam.store.version() == before + 2


# --- acting as a caller --------------------------------------------------------------------------


@pytest.fixture
def act_as(store: Store, iam: IAM) -> Callable[..., IAM]:
    """IAM acting as the principal with this ARN (in ACCT unless told), through one Authorizer."""
    authorizer = Authorizer(store)

    def make(caller: str, account: str = ACCT) -> IAM:
        return IAM(store, account, clock=clock, caller=caller, authorizer=authorizer)

    return make


def _denied(caller: str, action: str, resource: str) -> str:
    return (
        f"User: {caller} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


def _admin(iam: IAM, name: str = "sita") -> str:
    """Make ``name`` a member of `admins`, allowed iam:* on everything; its ARN."""
    iam.create_group("admins")
    iam.put_group_policy("admins", "All", doc(allow("iam:*")))
    iam.create_user(name)
    iam.add_user_to_group("admins", name)
    return arn("user", name)


def test_caller_without_policies_is_denied(iam: IAM, act_as: Callable[..., IAM]) -> None:
    """A user with no policies gets AccessDenied, in AWS's words, and changes nothing."""
    nobody = arn("user", "nobody")
    iam.create_user("nobody")
    iam.create_user("ram", path="/team/")
    as_nobody = act_as(nobody)
    with fails(iam.store, AccessDenied, _denied(nobody, "iam:CreateUser", arn("user", "x"))):
        as_nobody.create_user("x")
    message = _denied(nobody, "iam:DeleteUser", arn("user", "ram", "/team/"))
    with fails(iam.store, AccessDenied, message):  # the entity's ARN, with its path
        as_nobody.delete_user("ram")


def test_admin_caller_may_manage(iam: IAM, act_as: Callable[..., IAM]) -> None:
    """A user in `admins` (iam:* on *) creates users and policies, attaches, adds to groups."""
    as_sita = act_as(_admin(iam))
    as_sita.create_user("ram")
    policy = as_sita.create_policy("Read", READ)
    as_sita.attach_user_policy("ram", policy.arn)
    as_sita.add_user_to_group("admins", "ram")
    as_sita.create_access_key("ram")
    assert iam.list_attached_user_policies("ram") == [AttachedPolicy("Read", policy.arn)]
    assert iam.list_groups_for_user("ram") == ["admins"]
    assert len(iam.list_access_keys("ram")) == 1


def test_revoked_admin_is_denied_at_once(iam: IAM, act_as: Callable[..., IAM]) -> None:
    """Removed from `admins`, the caller is denied on its very next call."""
    as_sita = act_as(_admin(iam))
    as_sita.create_user("ram")
    iam.remove_user_from_group("admins", "sita")
    with fails(iam.store, AccessDenied):
        as_sita.create_user("shyam")


def test_caller_limited_to_a_path(iam: IAM, act_as: Callable[..., IAM]) -> None:
    """Allowed iam:CreateUser on user/team/*, a caller creates /team/x but not /other/x."""
    iam.create_user("lead")
    iam.put_user_policy("lead", "Team", doc(allow("iam:CreateUser", arn("user", "*", "/team/"))))
    as_lead = act_as(arn("user", "lead"))
    assert as_lead.create_user("x", path="/team/").arn == arn("user", "x", "/team/")
    message = _denied(arn("user", "lead"), "iam:CreateUser", arn("user", "y", "/other/"))
    with fails(iam.store, AccessDenied, message):
        as_lead.create_user("y", path="/other/")


@pytest.mark.usefixtures("accounts")
def test_caller_needs_an_authorizer(store: Store) -> None:
    """IAM acting as a caller without an authorizer is a TypeError."""
    with pytest.raises(TypeError, match=r"^acting as a caller needs an authorizer$"):
        IAM(store, ACCT, caller=arn("user", "sita"))


def test_admin_of_one_account_cannot_manage_another(iam: IAM, act_as: Callable[..., IAM]) -> None:
    """An admin of one account is denied in another (IAM entities have no resource policies)."""
    as_sita_elsewhere = act_as(_admin(iam), OTHER)
    with fails(iam.store, AccessDenied):
        as_sita_elsewhere.create_user("intruder")


# --- accounts ------------------------------------------------------------------------------------


def test_create_account_with_random_id(store: Store) -> None:
    """create_account without an id makes a 12-digit one and the account it names."""
    account = create_account(store, email="root@example.com", password=PASSWORD, clock=clock)
    assert re.fullmatch(r"[0-9]{12}", account.account_id)
    assert (account.root_email, account.created, account.alias) == ("root@example.com", STAMP, None)
    assert get_account(store, account.account_id) == account


def test_create_account_twice(store: Store) -> None:
    """A second account with the same id is EntityAlreadyExists; the root password is hashed."""
    account = create_account(store, email="root@example.com", password=PASSWORD, account_id=ACCT)
    assert account.account_id == ACCT
    with fails(store, EntityAlreadyExists, "account `123456789012` already exists"):
        create_account(store, email="other@example.com", password="Other-Passw0rd", account_id=ACCT)
    root = store.read(lambda tx: tx.get("root_login", ACCT, "root"))
    assert root["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in json.dumps(dump(store))


def test_get_missing_account(store: Store) -> None:
    """get_account of an unknown id is NoSuchEntity."""
    with pytest.raises(NoSuchEntity, match=r"^account `123456789012` cannot be found$"):
        get_account(store, ACCT)


def test_bad_account_id(store: Store) -> None:
    """An account id of anything but twelve digits is InvalidInput."""
    for account_id in [
        "12345678901",
        "1234567890123",
        "12345678901a",
        " 23456789012",
        "1" * 11 + "\n",
    ]:
        message = f"account id `{account_id}` must be 12 digits"
        with fails(store, InvalidInput, message, accounts=(account_id,), case=account_id):
            create_account(
                store, email="root@example.com", password=PASSWORD, account_id=account_id
            )


@pytest.mark.parametrize(
    "account_id",
    [
        pytest.param("", id="empty"),
        pytest.param(
            "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662",
            id="arabic-indic-digits",
        ),
    ],
)
def test_account_id_is_ascii_digits(store: Store, account_id: str) -> None:
    """An empty id, or twelve digits that are not ASCII, is InvalidInput."""
    message = f"account id `{account_id}` must be 12 digits"
    with fails(store, InvalidInput, message, accounts=(account_id,)):
        create_account(store, email="root@example.com", password=PASSWORD, account_id=account_id)


def test_bad_root_email(store: Store) -> None:
    """The root e-mail must look like an address; else InvalidInput."""
    for email in ["root.example.com", ""]:
        with fails(store, InvalidInput, f"`{email}` is not an e-mail address", case=email):
            create_account(store, email=email, password=PASSWORD, account_id=ACCT)


def test_root_email_needs_both_parts(store: Store) -> None:
    """An e-mail address without a local part or a domain is InvalidInput."""
    for email in ["@", "root@", "@example.com"]:
        with fails(store, InvalidInput, f"`{email}` is not an e-mail address", case=email):
            create_account(store, email=email, password=PASSWORD, account_id=ACCT)


def test_root_password_policy(store: Store) -> None:
    """The root password is checked against AWS's default password policy."""
    for password, needs in [("password", THREE_CLASSES), ("Sh0rt-x", "at least 8 characters")]:
        message = f"password does not meet the account password policy: it needs {needs}"
        with fails(store, PasswordPolicyViolation, message, case=password):
            create_account(store, email="root@example.com", password=password, account_id=ACCT)
