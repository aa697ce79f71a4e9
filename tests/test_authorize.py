"""``Authorizer.authorize`` over the model in a store, on every store: the example team, AWS's
global condition keys, how policies combine, the root user, unknown principals, and a read model
that drops exactly what changed.

Every test changes the model through the same store object its Authorizer reads, so a change is
seen by the very next decision whatever the store's poll interval (a process sees its own writes
at once; other processes are tests/test_propagation.py's subject)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from iamguard import Decision, Effect, Reason
from iamguard.authorizer import Authorizer
from iamguard.iam import IAM, create_account
from iamguard.passwords import hash_password
from iamguard.stores.base import Store

ACCT = "123456789012"
OTHER = "210987654321"
ROOT_PASSWORD = "Root-Passw0rd-42"


def user_arn(name: str, path: str = "/", account: str = ACCT) -> str:
    return f"arn:iamguard:iam::{account}:user{path}{name}"


def image(path: str = "42", account: str = ACCT) -> str:
    return f"arn:iamguard:images::{account}:image/{path}"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Team:
    """The example team in account ACCT: Ram and Shyam in `developers` (read images), Sita and
    Gita in `admins` (iam:* and images:*). One Authorizer decides for the whole test."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.clock = Clock(datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc))
        for account_id in (ACCT, OTHER):
            create_account(
                store, email="root@example.com", password=ROOT_PASSWORD, account_id=account_id
            )
        self.iam = IAM(store, ACCT)
        self.authorizer = Authorizer(store, clock=self.clock)
        iam = self.iam
        read = allow(["images:GetImage", "images:ListImages"], image("*"))
        self.read_images = iam.create_policy("ReadImages", doc(read)).arn
        self.admin_access = iam.create_policy("AdminAccess", doc(allow(["iam:*", "images:*"]))).arn
        iam.create_group("developers")
        iam.attach_group_policy("developers", self.read_images)
        iam.create_group("admins")
        iam.attach_group_policy("admins", self.admin_access)
        for name, group, team in [
            ("ram", "developers", "blue"),
            ("shyam", "developers", "red"),
            ("sita", "admins", "blue"),
            ("gita", "admins", "red"),
        ]:
            iam.create_user(name, tags=[{"Key": "team", "Value": team}])
            iam.add_user_to_group(group, name)

    def decide(
        self, name: str, action: str, resource: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:  # fmt: skip
        """The decision for the user ``name`` (or a principal ARN) on ``resource``."""
        principal = name if name.startswith("arn:") else user_arn(name)
        return self.authorizer.authorize(principal, action, resource or image(), context)

    def can(
        self, name: str, action: str, resource: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> bool:  # fmt: skip
        return self.decide(name, action, resource, context).allowed

    def give(self, name: str, *statements: dict[str, Any]) -> None:
        """Add an inline policy with these statements to the user ``name``."""
        self.iam.put_user_policy(name, "Extra", doc(*statements))


_hash_once = functools.cache(hash_password)  # a real argon2id hash, computed once per session


@pytest.fixture
def team(store: Store, monkeypatch: pytest.MonkeyPatch) -> Team:
    """The example team; the root password of its accounts is hashed once per session."""
    monkeypatch.setattr("iamguard.iam.accounts.hash_password", _hash_once)
    return Team(store)


# --- the example team ----------------------------------------------------------------------------


def test_developers_read_but_do_not_delete(team: Team) -> None:
    """Developers get and list images but cannot delete them (implicit deny, AWS's message)."""
    for name in ("ram", "shyam"):
        assert team.can(name, "images:GetImage")
        assert team.can(name, "images:ListImages", image("ram/7"))
        decision = team.decide(name, "images:DeleteImage")
        assert decision.effect is Effect.IMPLICIT_DENY
        assert decision.message() == (
            f"User: {user_arn(name)} is not authorized to perform: images:DeleteImage on "
            f"resource: {image()} because no identity-based policy allows the images:DeleteImage "
            "action"
        )


def test_developers_read_only_their_accounts_images(team: Team) -> None:
    """The developers' policy names this account's images: another account's are denied."""
    assert not team.can("ram", "images:GetImage", image(account=OTHER))
    assert not team.can("ram", "images:GetImage", "arn:iamguard:videos::123456789012:image/42")


def test_admins_may_do_anything(team: Team) -> None:
    """Admins delete images and manage IAM."""
    for name in ("sita", "gita"):
        assert team.can(name, "images:DeleteImage")
        assert team.can(name, "iam:CreateUser", user_arn("hari"))


def test_new_user_can_do_nothing(team: Team) -> None:
    """A user with no policies is implicitly denied everything."""
    team.iam.create_user("hari")
    for action in ("images:GetImage", "iam:GetUser", "sts:GetCallerIdentity"):
        decision = team.decide("hari", action, "*")
        assert (decision.effect, decision.reason) == (
            Effect.IMPLICIT_DENY, Reason.NO_IDENTITY_ALLOW,
        )  # fmt: skip


def test_membership_changes_apply_on_next_call(team: Team) -> None:
    """Joining or leaving a group changes the very next decision of the same Authorizer."""
    assert not team.can("ram", "images:DeleteImage")
    team.iam.add_user_to_group("admins", "ram")
    assert team.can("ram", "images:DeleteImage")
    team.iam.remove_user_from_group("admins", "ram")
    assert not team.can("ram", "images:DeleteImage")
    team.iam.remove_user_from_group("developers", "ram")
    assert not team.can("ram", "images:GetImage")


def test_policy_changes_apply_on_next_call(team: Team) -> None:
    """A new default version, or a detached policy, changes the very next decision."""
    wider = doc(allow(["images:GetImage", "images:DeleteImage"], image("*")))
    team.iam.create_policy_version(team.read_images, wider, set_as_default=True)
    assert team.can("ram", "images:DeleteImage")
    team.iam.set_default_policy_version(team.read_images, "v1")
    assert not team.can("ram", "images:DeleteImage")
    assert team.can("ram", "images:GetImage")
    team.iam.detach_group_policy("developers", team.read_images)
    assert not team.can("ram", "images:GetImage")
    team.iam.put_group_policy("developers", "Read", doc(allow("images:GetImage")))
    assert team.can("ram", "images:GetImage")


# --- global condition keys -----------------------------------------------------------------------


def test_username_policy_variable(team: Team) -> None:
    """`${aws:username}` in a Resource lets each developer write only to their own folder."""
    own = team.iam.create_policy(
        "OwnFolder", doc(allow("images:PutImage", image("${aws:username}/*")))
    )
    team.iam.attach_group_policy("developers", own.arn)
    assert team.can("ram", "images:PutImage", image("ram/1"))
    assert not team.can("ram", "images:PutImage", image("shyam/1"))
    assert team.can("shyam", "images:PutImage", image("shyam/1"))
    assert not team.can("shyam", "images:PutImage", image("ram/1"))


def test_principal_tag_condition(team: Team) -> None:
    """`aws:PrincipalTag/team` holds the user's tag, as it is now."""
    blue_only = allow(
        "images:TagImage", Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}
    )
    team.iam.put_group_policy("developers", "BlueTeam", doc(blue_only))
    assert team.can("ram", "images:TagImage")
    assert not team.can("shyam", "images:TagImage")
    team.iam.tag_user("shyam", [{"Key": "team", "Value": "blue"}])
    assert team.can("shyam", "images:TagImage")
    team.iam.untag_user("ram", ["team"])
    assert not team.can("ram", "images:TagImage")


def test_userid_and_principal_type(team: Team) -> None:
    """`aws:userid` is the user's AIDA id and `aws:PrincipalType` is `User`."""
    ram_id = team.iam.get_user("ram").user_id
    assert ram_id.startswith("AIDA")
    only_ram = allow(
        "images:TagImage",
        Condition={"StringEquals": {"aws:userid": ram_id, "aws:PrincipalType": "User"}},
    )
    team.iam.put_group_policy("developers", "OnlyRam", doc(only_ram))
    assert team.can("ram", "images:TagImage")
    assert not team.can("shyam", "images:TagImage")


@pytest.mark.parametrize("key", ["aws:username", "AWS:UserName"])
def test_given_context_overrides_a_filled_key(team: Team, key: str) -> None:
    """A key the caller gives (in any letter case) replaces the one authorize would fill in."""
    team.give("ram", allow("images:PutImage", image("${aws:username}/*")))
    assert not team.can("ram", "images:PutImage", image("shyam/1"))
    assert team.can("ram", "images:PutImage", image("shyam/1"), {key: "shyam"})


def test_current_time_comes_from_the_clock(team: Team) -> None:
    """`aws:CurrentTime` is the injected clock's time: a DateLessThan grant ends on time."""
    deadline = {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}
    team.iam.create_user("temp")
    team.give("temp", allow("images:GetImage", Condition=deadline))
    team.clock.now = datetime(2029, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
    assert team.can("temp", "images:GetImage")
    team.clock.now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert not team.can("temp", "images:GetImage")


def test_current_time_is_utc(team: Team) -> None:
    """A clock in another time zone gives the same `aws:CurrentTime` instant, in UTC."""
    deadline = {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}
    team.iam.create_user("temp")
    team.give("temp", allow("images:GetImage", Condition=deadline))
    new_york = timezone(timedelta(hours=-5))
    team.clock.now = datetime(2029, 12, 31, 23, 0, tzinfo=new_york)  # 2030-01-01T04:00:00Z
    assert not team.can("temp", "images:GetImage")


# --- how policies combine ------------------------------------------------------------------------


def test_boundary_limits_a_user(team: Team) -> None:
    """A permissions boundary caps what Sita's policies allow, until it is removed."""
    boundary = team.iam.create_policy("ReadOnly", doc(allow("images:GetImage")))
    team.iam.put_user_permissions_boundary("sita", boundary.arn)
    assert team.can("sita", "images:GetImage")
    decision = team.decide("sita", "images:DeleteImage")
    assert (decision.effect, decision.reason) == (Effect.IMPLICIT_DENY, Reason.NO_BOUNDARY_ALLOW)
    assert decision.message().endswith(
        "because no permissions boundary allows the images:DeleteImage action"
    )
    assert not team.can("sita", "iam:CreateUser", user_arn("hari"))
    team.iam.delete_user_permissions_boundary("sita")
    assert team.can("sita", "images:DeleteImage")


def test_boundary_grants_nothing(team: Team) -> None:
    """A boundary wider than a user's policies adds no permission."""
    boundary = team.iam.create_policy("Everything", doc(allow("*")))
    team.iam.put_user_permissions_boundary("ram", boundary.arn)
    assert team.can("ram", "images:GetImage")
    assert not team.can("ram", "images:DeleteImage")


def test_every_identity_policy_counts(team: Team) -> None:
    """User inline, user attached, group attached and group inline policies all allow."""
    team.give("ram", allow("images:PutImage"))
    tagger = team.iam.create_policy("Tagger", doc(allow("images:TagImage")))
    team.iam.attach_user_policy("ram", tagger.arn)
    team.iam.put_group_policy("developers", "ListTags", doc(allow("images:ListTags")))
    for action in ("images:PutImage", "images:TagImage", "images:GetImage", "images:ListTags"):
        assert team.can("ram", action), action
    assert not team.can("shyam", "images:PutImage")
    assert not team.can("shyam", "images:TagImage")
    assert team.can("shyam", "images:ListTags")


def test_deny_in_any_group_wins(team: Team) -> None:
    """A Deny in one group's policy beats the Allow of another group."""
    team.iam.create_group("interns")
    team.iam.put_group_policy(
        "interns", "NoImages", doc({"Effect": "Deny", "Action": "images:*", "Resource": "*"})
    )
    team.iam.add_user_to_group("interns", "ram")
    decision = team.decide("ram", "images:GetImage")
    assert (decision.effect, decision.reason) == (Effect.EXPLICIT_DENY, Reason.EXPLICIT_DENY)
    assert decision.message() == (
        f"User: {user_arn('ram')} is not authorized to perform: images:GetImage on resource: "
        f"{image()} with an explicit deny in an identity-based policy"
    )
    assert team.can("shyam", "images:GetImage")


def test_other_accounts_resources_need_their_consent(team: Team) -> None:
    """Without a resource policy of the other account, an allow on `*` stays in its account."""
    assert team.can("sita", "images:GetImage", image())
    assert not team.can("sita", "images:GetImage", image(account=OTHER))


# --- deleted and re-created users ----------------------------------------------------------------


def test_deleted_user_is_denied(team: Team) -> None:
    """Once a user is deleted its ARN is implicitly denied."""
    assert team.can("ram", "images:GetImage")
    team.iam.remove_user_from_group("developers", "ram")
    team.iam.delete_user("ram")
    decision = team.decide("ram", "images:GetImage")
    assert (decision.effect, decision.reason) == (Effect.IMPLICIT_DENY, Reason.NO_IDENTITY_ALLOW)


def test_recreated_user_is_a_new_principal(team: Team) -> None:
    """A user re-created under the same name has a new id, and `aws:userid` follows it."""
    own = doc(allow("images:PutImage", image("${aws:userid}/*")))
    team.iam.put_group_policy("developers", "OwnById", own)
    old_id = team.iam.get_user("ram").user_id
    assert team.can("ram", "images:PutImage", image(f"{old_id}/1"))
    team.iam.remove_user_from_group("developers", "ram")
    team.iam.delete_user("ram")
    new_id = team.iam.create_user("ram").user_id
    team.iam.add_user_to_group("developers", "ram")
    assert new_id != old_id
    assert not team.can("ram", "images:PutImage", image(f"{old_id}/1"))
    assert team.can("ram", "images:PutImage", image(f"{new_id}/1"))


# --- the root user -------------------------------------------------------------------------------


def test_root_user_within_its_account(team: Team, caplog: pytest.LogCaptureFixture) -> None:
    """Root may do anything within its account, nothing in another; each use is audited."""
    caplog.set_level(logging.INFO, logger="iamguard.audit")
    root = f"arn:iamguard:iam::{ACCT}:root"
    assert team.can(root, "images:DeleteImage")
    assert team.can(root, "iam:DeleteUser", user_arn("ram"))
    outside = team.decide(root, "images:GetImage", image(account=OTHER))
    assert outside.effect is Effect.IMPLICIT_DENY
    assert outside.message() == (
        f"User: {root} is not authorized to perform: images:GetImage on resource: "
        f"{image(account=OTHER)} because no identity-based policy allows the images:GetImage action"
    )
    used = [r for r in caplog.records if getattr(r, "audit", {}).get("event") == "root.used"]
    assert [r.audit for r in used] == [
        {"event": "root.used", "account": ACCT, "action": "images:DeleteImage",
         "resource": image(), "decision": "Allow"},
        {"event": "root.used", "account": ACCT, "action": "iam:DeleteUser",
         "resource": user_arn("ram"), "decision": "Allow"},
        {"event": "root.used", "account": ACCT, "action": "images:GetImage",
         "resource": image(account=OTHER), "decision": "ImplicitDeny"},
    ]  # fmt: skip
    assert all(r.name == "iamguard.audit" for r in used)
    assert ROOT_PASSWORD not in caplog.text
    assert all(ROOT_PASSWORD not in repr(r.__dict__) for r in caplog.records)


@pytest.mark.parametrize(
    "root",
    [f"arn:aws:iam::{ACCT}:root", f"arn:iamguard:iam:us-east-1:{ACCT}:root"],
    ids=["other-partition", "with-region"],
)
def test_malformed_root_arn_is_denied(team: Team, root: str) -> None:
    """A root ARN of another partition, or with a region, is not the account's root user."""
    assert team.decide(root, "images:GetImage").effect is Effect.IMPLICIT_DENY


# --- unknown principals --------------------------------------------------------------------------

NOT_PRINCIPALS = [
    "",
    "ram",
    "*",
    "arn:",
    "arn:iamguard",
    f"arn:iamguard:iam::{ACCT}",
    user_arn("nobody"),
    user_arn("ram", "/team/"),  # the right name on the wrong path
    user_arn("ram", account=OTHER),
    f"arn:aws:iam::{ACCT}:user/ram",
    f"arn:iamguard:iam:us-east-1:{ACCT}:user/ram",
    f"arn:iamguard:iam::{ACCT}:user/",
    f"arn:iamguard:iam::{ACCT}:user/r_m",
    f"arn:iamguard:iam::{ACCT}:user/%",
    f"arn:iamguard:iam::{ACCT}:user/ra*",
    f"arn:iamguard:iam::{ACCT}:user/ram/",
    f"arn:iamguard:iam::{ACCT}:group/admins",  # a group is never a principal
    f"arn:iamguard:iam::{ACCT}:role/admins",
    f"arn:iamguard:sts::{ACCT}:assumed-role/ghost/session",
    f"arn:iamguard:sts::{ACCT}:assumed-role/ghost",
    "arn:iamguard:iam::999999999999:root",  # no such account
    "arn:iamguard:iam::not-an-account:root",
    f"arn:iamguard:iam::{'9' * 5000}:user/ram",
    "arn:iamguard:iam::\u0661\u0662\u0663:user/ram",
]


def test_unknown_principals_are_denied(team: Team) -> None:
    """Unknown, malformed or foreign principal ARNs get an implicit deny, never an exception."""
    for principal in NOT_PRINCIPALS:
        decision = team.authorizer.authorize(principal, "images:GetImage", "*")
        assert decision.effect is Effect.IMPLICIT_DENY, principal
    assert team.can("sita", "images:GetImage", "*")  # the model itself is fine


def test_principal_with_nul_is_denied(team: Team) -> None:
    """A principal ARN holding a NUL character gets an implicit deny on every store."""
    for principal in (user_arn("ram\x00"), f"arn:iamguard:iam::{ACCT}\x00:root"):
        decision = team.authorizer.authorize(principal, "images:GetImage", "*")
        assert decision.effect is Effect.IMPLICIT_DENY, principal


# --- the read model ------------------------------------------------------------------------------


def test_read_model_drops_exactly_what_changed(team: Team) -> None:
    """A change to a policy attached only to `admins` reloads Sita's view and keeps Ram's."""
    read_model = team.authorizer.read_model
    assert team.can("ram", "images:GetImage")
    assert team.can("sita", "images:DeleteImage")
    ram, sita = read_model.user(ACCT, "ram"), read_model.user(ACCT, "sita")
    assert ram is not None
    assert sita is not None
    narrower = doc(allow("images:GetImage"))
    team.iam.create_policy_version(team.admin_access, narrower, set_as_default=True)
    assert not team.can("sita", "images:DeleteImage")
    assert team.can("ram", "images:GetImage")
    assert read_model.user(ACCT, "ram") is ram
    assert read_model.user(ACCT, "sita") is not sita


def test_unrelated_changes_keep_views(team: Team) -> None:
    """Tagging Shyam reloads only Shyam's view; Ram's access key reloads nobody's."""
    read_model = team.authorizer.read_model
    for name in ("ram", "shyam"):
        assert team.can(name, "images:GetImage")
    ram, shyam = read_model.user(ACCT, "ram"), read_model.user(ACCT, "shyam")
    team.iam.tag_user("shyam", [{"Key": "team", "Value": "blue"}])
    team.iam.create_access_key("ram")
    for name in ("ram", "shyam"):
        assert team.can(name, "images:GetImage")
    assert read_model.user(ACCT, "ram") is ram
    assert read_model.user(ACCT, "shyam") is not shyam
