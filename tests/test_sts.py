"""STS under AWS's rules: every parameter bound, the example team end to end on every store,
trust policies and their conditions, sign-in that tells no failure from another, tokens that
carry identity and never permissions, revocation (in this process and from another), and audit.

The example team (examples/team.yaml) is built once per session, with two passwords and an
access key per user, and copied into each test's store, so argon2 runs only where a test signs
in with a password. Time is a ``FakeClock`` standing at ``START`` (2030), injected into
``Tokens``, ``STS`` (and its ``Authorizer`` and sign-in throttle) and the test's own TOTP
devices; nothing patches time. Throttling is the real ``SignInThrottle`` STS keeps in the store.

Tests whose subject is the store (the scenario, sign-in, revocation, deleted principals) run on
every store; the others check parameters and policies, which the store only holds, on memory.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import pyotp
import pytest
from test_propagation import DEADLINES, spawn, stop

import iamguard.sts
from iamguard.errors import (
    AccessDenied,
    ExpiredToken,
    IAMGuardError,
    InvalidClientTokenId,
    InvalidInput,
    MalformedPolicyDocument,
)
from iamguard.iam import IAM
from iamguard.modelfile import LoadedSecrets, build_model, install_model
from iamguard.passwords import dummy_password_hash, hash_password
from iamguard.sessions import ASSUMED_ROLE, Session
from iamguard.stores import open_store
from iamguard.stores.base import Store
from iamguard.stores.memory import MemoryStore
from iamguard.sts import STS, Credentials, PackedPolicyTooLarge, ValidationError
from iamguard.throttle import SignInThrottle, Throttled
from iamguard.tokens import KeyRing, Tokens

ACCOUNT = "123456789012"
TEAM_FILE = Path(__file__).resolve().parent.parent / "examples" / "team.yaml"
IAM_ARN = f"arn:iamguard:iam::{ACCOUNT}"
RAM = f"{IAM_ARN}:user/ram"
SITA = f"{IAM_ARN}:user/sita"
IMAGE_ADMIN = f"{IAM_ARN}:role/ImageAdmin"
IMAGE_READER = f"{IAM_ARN}:role/ImageReader"
IMAGES = f"arn:iamguard:images::{ACCOUNT}:image/"
IMAGE = IMAGES + "cat.png"
PASSWORDS = {"ram": "Ram-passw0rd!", "sita": "Sita-passw0rd!"}
START = 1_900_000_000.0  # 2030-03-17T17:46:40Z, far from any wall clock
FAILED = "the credentials are invalid"  # every failed sign-in says this, and only this
# AssumeRole's denial names no reason, as AWS's: it must not tell which roles exist.
RAM_DENIED = f"User: {RAM} is not authorized to perform: sts:AssumeRole on resource: {IMAGE_ADMIN}"
ALL_STS = ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity")


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str = "*", **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def trust(
    *principals: str, actions: tuple[str, ...] = ("sts:AssumeRole",), **condition: Any
) -> dict[str, Any]:
    """A trust policy letting ``principals`` (ARNs or account ids) do ``actions``."""
    statement: dict[str, Any] = {
        "Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": list(actions),
    }  # fmt: skip
    if condition:
        statement["Condition"] = condition
    return document(statement)


def role_arn(name: str) -> str:
    return f"{IAM_ARN}:role/{name}"


def payload_text(token: str) -> str:
    """A token's payload as the JSON text it carries, decoded from base64url (not verified)."""
    segment = token.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()


# --- time, MFA devices and the team --------------------------------------------------------------


class FakeClock:
    """One time for everything a test builds: ``time()`` for Tokens, ``now()`` for STS."""

    def __init__(self, start: float) -> None:
        self.current = start

    def time(self) -> float:
        return self.current

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.current, timezone.utc)

    def advance(self, seconds: float) -> None:
        self.current += seconds


class Devices:
    """The test's own virtual MFA devices: TOTP seeds it generates, checked with pyotp at the
    fake clock's time. ``check`` is what STS takes as ``mfa_check``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.seeds: dict[tuple[str, str, str], str] = {}

    def add(self, owner: str) -> str:
        serial = f"{IAM_ARN}:mfa/{owner}"
        self.seeds[(ACCOUNT, owner, serial)] = pyotp.random_base32()
        return serial

    def code(self, owner: str) -> str:
        seed = self.seeds[(ACCOUNT, owner, f"{IAM_ARN}:mfa/{owner}")]
        return pyotp.TOTP(seed).at(int(self.clock.time()))

    def check(self, account: str, owner: str, serial: str, code: str) -> bool:
        seed = self.seeds.get((account, owner, serial))
        return seed is not None and pyotp.TOTP(seed).verify(code, for_time=int(self.clock.time()))


@dataclass(frozen=True)
class Built:
    """The example team, built once: a model store to copy, its secrets, and access keys."""

    store: MemoryStore
    secrets: LoadedSecrets
    keys: dict[str, tuple[str, str]]  # user -> (access key id, secret)


@cache
def built_team() -> Built:
    store, secrets = build_model(TEAM_FILE)
    iam = IAM(store, ACCOUNT)
    for user, password in PASSWORDS.items():
        iam.create_login_profile(user, password)
    keys = {}
    for user in ("ram", "shyam", "sita", "gita"):
        created = iam.create_access_key(user)
        keys[user] = (created.access_key.access_key_id, created.secret_access_key)
    return Built(store, secrets, keys)


@dataclass
class Team:
    """The example team in one store, with an STS, an IAM and a clock of its own."""

    store: Store
    iam: IAM
    sts: STS
    clock: FakeClock
    devices: Devices
    secrets: LoadedSecrets
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    def key_sign_in(self, user: str, **options: Any) -> Credentials:
        key_id, secret = self.keys[user]
        return self.sts.get_session_token(
            ACCOUNT, access_key_id=key_id, secret_access_key=secret, **options
        )

    def sign_in(self, user: str, **options: Any) -> Session:
        """``user``'s session, signed in with its access key and authenticated."""
        return self.sts.authenticate(self.key_sign_in(user, **options).session_token)

    def assume(self, caller: Session, role: str, name: str, **options: Any) -> Session:
        """A role session, assumed and authenticated."""
        credentials = self.sts.assume_role(caller, role_arn(role), name, **options)
        return self.sts.authenticate(credentials.session_token)

    def allowed(self, session: Session, action: str, resource: str = IMAGE) -> bool:
        return self.sts.authorizer.authorize_session(session, action, resource).allowed

    def role(
        self, name: str, trust_policy: dict[str, Any], *, policy: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:  # fmt: skip
        self.iam.create_role(name, trust_policy, **options)
        if policy is not None:
            self.iam.put_role_policy(name, "access", policy)

    def service_session(self) -> Session:
        secret = self.secrets.service_secrets[f"{ACCOUNT}/image-processor"]
        credentials = self.sts.get_service_session(ACCOUNT, "image-processor", secret)
        return self.sts.authenticate(credentials.session_token)

    def close(self) -> None:
        self.sts.authorizer.read_model.close()


def make_team(store: Store, start: float | None = None) -> Team:
    built = built_team()
    install_model(built.store, store)
    clock = FakeClock(START if start is None else start)
    tokens = Tokens(KeyRing(), issuer="iamguard-test", audience="images", clock=clock.time)
    devices = Devices(clock)
    sts = STS(store, tokens, clock=clock.now, mfa_check=devices.check)
    iam = IAM(store, ACCOUNT, clock=clock.now)
    return Team(store, iam, sts, clock, devices, built.secrets, built.keys)


@pytest.fixture
def team(store: Store) -> Iterator[Team]:
    """The example team on every store."""
    made = make_team(store)
    yield made
    made.close()


@pytest.fixture
def mteam() -> Iterator[Team]:
    """The example team on a memory store (for checks the store takes no part in)."""
    store = MemoryStore()
    made = make_team(store)
    yield made
    made.close()
    store.close()


@pytest.fixture
def open_role(mteam: Team) -> str:
    """A role `Open` whose trust policy names ram himself for every STS action, reading images;
    returns its name."""
    mteam.role("Open", trust(RAM, actions=ALL_STS), policy=document(allow("images:GetImage")))
    return "Open"


# --- parameter bounds ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "ok"), [(899, False), (900, True), (129_600, True), (129_601, False)]
)
def test_get_session_token_duration_bounds(mteam: Team, seconds: int, ok: bool) -> None:
    """GetSessionToken takes 900 to 129,600 seconds, exactly as asked; outside, ValidationError."""
    if ok:
        session = mteam.key_sign_in("ram", duration_seconds=seconds).session
        assert session.expires_at - session.issued_at == seconds
    else:
        with pytest.raises(ValidationError, match=f"DurationSeconds `{seconds}`"):
            mteam.key_sign_in("ram", duration_seconds=seconds)


def test_get_session_token_lasts_twelve_hours_by_default(mteam: Team) -> None:
    """A GetSessionToken session lasts 43,200 seconds when no duration is given."""
    credentials = mteam.key_sign_in("ram")
    assert credentials.session.expires_at - credentials.session.issued_at == 43_200
    expected = datetime.fromtimestamp(mteam.clock.time() + 43_200, timezone.utc)
    assert credentials.expiration == expected.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_root_session_lasts_at_most_an_hour(mteam: Team) -> None:
    """The root user's session lasts 3,600 seconds at most (and by default); 3,601 fails."""
    password = mteam.secrets.root_passwords[ACCOUNT]
    session = mteam.sts.sign_in_root(ACCOUNT, "root@example.com", password).session
    assert session.expires_at - session.issued_at == 3600
    session = mteam.sts.sign_in_root(
        ACCOUNT, "root@example.com", password, duration_seconds=3600
    ).session
    assert session.expires_at - session.issued_at == 3600
    with pytest.raises(ValidationError, match="DurationSeconds `3601`"):
        mteam.sts.sign_in_root(ACCOUNT, "root@example.com", password, duration_seconds=3601)


@pytest.mark.parametrize(
    ("seconds", "ok"), [(899, False), (900, True), (3600, True), (3601, False)]
)
def test_assume_role_duration_bounds(mteam: Team, seconds: int, ok: bool) -> None:
    """AssumeRole takes 900 seconds up to the role's maximum (ImageAdmin: 3,600), never
    clamped: one second more is a ValidationError."""
    sita = mteam.sign_in("sita")
    if ok:
        credentials = mteam.sts.assume_role(sita, IMAGE_ADMIN, "admin", duration_seconds=seconds)
        assert credentials.session.expires_at - credentials.session.issued_at == seconds
    else:
        with pytest.raises(ValidationError, match=f"DurationSeconds `{seconds}`"):
            mteam.sts.assume_role(sita, IMAGE_ADMIN, "admin", duration_seconds=seconds)


def test_assume_role_lasts_an_hour_by_default(mteam: Team) -> None:
    """A role session lasts 3,600 seconds when no duration is given."""
    credentials = mteam.sts.assume_role(mteam.sign_in("sita"), IMAGE_ADMIN, "admin")
    assert credentials.session.expires_at - credentials.session.issued_at == 3600


def test_role_maximum_session_duration_is_the_bound(mteam: Team) -> None:
    """A role with a 7,200-second maximum allows 7,200 seconds and refuses 7,201."""
    mteam.role("LongSessions", trust(RAM), max_session_duration=7200)
    ram = mteam.sign_in("ram")
    credentials = mteam.sts.assume_role(
        ram, role_arn("LongSessions"), "long", duration_seconds=7200
    )
    assert credentials.session.expires_at - credentials.session.issued_at == 7200
    with pytest.raises(ValidationError, match="DurationSeconds `7201`"):
        mteam.sts.assume_role(ram, role_arn("LongSessions"), "long", duration_seconds=7201)


def test_chained_session_lasts_at_most_an_hour(mteam: Team) -> None:
    """Role chaining caps a session at 3,600 seconds even when the role allows 43,200 (which a
    first hop may have); 3,601 is a ValidationError, not a shorter session."""
    mteam.role("Auditor", trust(IMAGE_ADMIN, RAM), max_session_duration=43_200)
    first_hop = mteam.sts.assume_role(
        mteam.sign_in("ram"), role_arn("Auditor"), "direct", duration_seconds=43_200
    )
    assert first_hop.session.expires_at - first_hop.session.issued_at == 43_200
    admin = mteam.assume(mteam.sign_in("sita"), "ImageAdmin", "admin")
    chained = mteam.sts.assume_role(admin, role_arn("Auditor"), "chained")
    assert chained.session.expires_at - chained.session.issued_at == 3600
    assert chained.session.chain_depth == 2
    with pytest.raises(ValidationError, match="DurationSeconds `3601`"):
        mteam.sts.assume_role(admin, role_arn("Auditor"), "chained", duration_seconds=3601)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a", False),
        ("ab", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("Az09+=,.@_-", True),
        ("has space", False),
        ("slash/name", False),
        ("colon:name", False),
        ("star*", False),
        ("naïve", False),
        ("tab\tname", False),
    ],
)
def test_role_session_name_bounds(mteam: Team, open_role: str, name: str, ok: bool) -> None:
    """RoleSessionName is 2 to 64 of letters, digits and ``+=,.@_-``; anything else fails."""
    ram = mteam.sign_in("ram")
    if ok:
        session = mteam.sts.assume_role(ram, role_arn(open_role), name).session
        assert session.session_name == name
        assert session.principal.endswith(f":assumed-role/{open_role}/{name}")
    else:
        with pytest.raises(ValidationError, match="RoleSessionName"):
            mteam.sts.assume_role(ram, role_arn(open_role), name)


@pytest.mark.parametrize(
    ("external_id", "ok"),
    [
        ("a", False),
        ("ab", True),
        ("a" * 1224, True),
        ("a" * 1225, False),
        ("urn:partner/Id_9+=,.@-", True),
        ("has space", False),
        ("naïve", False),
    ],
)
def test_external_id_bounds(mteam: Team, open_role: str, external_id: str, ok: bool) -> None:
    """ExternalId is 2 to 1,224 of letters, digits and ``+=,.@:/_-``; anything else fails."""
    ram = mteam.sign_in("ram")
    if ok:
        mteam.sts.assume_role(ram, role_arn(open_role), "ext", external_id=external_id)
    else:
        with pytest.raises(ValidationError, match="ExternalId"):
            mteam.sts.assume_role(ram, role_arn(open_role), "ext", external_id=external_id)


def sized_policy(size: int, *, indent: int | None = None) -> str:
    """A session policy of exactly ``size`` characters not counting white space."""
    statement = allow("images:GetImage", IMAGES)
    base = len(json.dumps(document(statement), separators=(",", ":")))
    statement["Resource"] = IMAGES + "x" * (size - base)
    text = json.dumps(document(statement), indent=indent, separators=(",", ":"))
    assert len(re.sub(r"[ \t\n\r]", "", text)) == size
    return text


def test_session_policy_of_2048_characters_is_accepted(mteam: Team, open_role: str) -> None:
    """An inline session policy of 2,048 characters (white space not counted) is accepted."""
    ram = mteam.sign_in("ram")
    for text in (sized_policy(2048), sized_policy(2048, indent=8)):
        session = mteam.assume(ram, open_role, "sized", policy=text)
        assert session.session_policy == text


def test_session_policy_of_2049_characters_is_too_large(mteam: Team, open_role: str) -> None:
    """An inline session policy of 2,049 characters is PackedPolicyTooLarge."""
    with pytest.raises(PackedPolicyTooLarge, match="2048"):
        mteam.sts.assume_role(
            mteam.sign_in("ram"), role_arn(open_role), "sized", policy=sized_policy(2049)
        )


@pytest.mark.parametrize(
    "policy",
    [
        "{not json",
        document({"Effect": "Allow", "Resource": "*"}),  # no Action
        document({"Effect": "Permit", "Action": "images:GetImage", "Resource": "*"}),
        document(
            {"Effect": "Allow", "Action": "images:GetImage", "Resource": "*", "Principal": "*"}
        ),
        {"Version": "2012-10-17"},
    ],
    ids=["not-json", "no-action", "bad-effect", "principal", "no-statement"],
)
def test_malformed_session_policy(mteam: Team, open_role: str, policy: Any) -> None:
    """A session policy that breaks the grammar is MalformedPolicyDocument."""
    with pytest.raises(MalformedPolicyDocument):
        mteam.sts.assume_role(mteam.sign_in("ram"), role_arn(open_role), "bad", policy=policy)


def test_session_policy_characters_are_checked(mteam: Team, open_role: str) -> None:
    """A session policy holding a character outside U+0020-U+00FF is MalformedPolicyDocument."""
    policy = document(allow("images:GetImage", IMAGES + "\u2603"))
    with pytest.raises(MalformedPolicyDocument):
        mteam.sts.assume_role(mteam.sign_in("ram"), role_arn(open_role), "snow", policy=policy)


def managed_policies(team: Team, count: int) -> list[str]:
    return [
        team.iam.create_policy(f"Narrow{i}", document(allow("images:GetImage"))).arn
        for i in range(count)
    ]


def test_policy_arns_bounds(mteam: Team, open_role: str) -> None:
    """PolicyArns takes up to 10 managed policies; 11 fail, and so does an unknown ARN."""
    arns = managed_policies(mteam, 11)
    ram = mteam.sign_in("ram")
    session = mteam.assume(ram, open_role, "ten", policy_arns=arns[:10])
    assert session.policy_arns == tuple(arns[:10])
    with pytest.raises(ValidationError, match="at most 10"):
        mteam.sts.assume_role(ram, role_arn(open_role), "eleven", policy_arns=arns)
    unknown = f"{IAM_ARN}:policy/NoSuchPolicy"
    with pytest.raises(ValidationError, match="NoSuchPolicy"):
        mteam.sts.assume_role(ram, role_arn(open_role), "unknown", policy_arns=[unknown])


def test_session_tags_bounds(mteam: Team, open_role: str) -> None:
    """A session takes up to 50 tags; 51 fail."""
    ram = mteam.sign_in("ram")
    fifty = {f"key{i}": f"value{i}" for i in range(50)}
    session = mteam.assume(ram, open_role, "tagged", tags=fifty)
    assert dict(session.tags) == fifty
    with pytest.raises(ValidationError, match="at most 50"):
        mteam.sts.assume_role(ram, role_arn(open_role), "tagged", tags={**fifty, "key50": "v"})


def test_transitive_tag_keys_must_be_session_tags(mteam: Team, open_role: str) -> None:
    """TransitiveTagKeys names tags of this request only: another key is a ValidationError."""
    ram = mteam.sign_in("ram")
    session = mteam.assume(
        ram, open_role, "tagged", tags={"team": "images"}, transitive_tag_keys=["team"]
    )
    assert session.transitive_tag_keys == ("team",)
    with pytest.raises(ValidationError, match="`project`"):
        mteam.sts.assume_role(
            ram, role_arn(open_role), "tagged", tags={"team": "images"},
            transitive_tag_keys=["project"],
        )  # fmt: skip


def test_session_tag_keys_are_case_insensitive(mteam: Team, open_role: str) -> None:
    """Tags `team` and `Team` in one request are refused as duplicates."""
    with pytest.raises(ValidationError):
        mteam.sts.assume_role(
            mteam.sign_in("ram"), role_arn(open_role), "dup", tags={"team": "a", "Team": "b"}
        )


@pytest.mark.parametrize("tags", [{"te\nam": "images"}, {"team": "<script>"}], ids=["key", "value"])
def test_session_tag_characters_are_checked(
    mteam: Team, open_role: str, tags: dict[str, str]
) -> None:
    """A session tag with a character AWS does not allow is a ValidationError."""
    with pytest.raises(ValidationError):
        mteam.sts.assume_role(mteam.sign_in("ram"), role_arn(open_role), "chars", tags=tags)


def test_assume_role_never_issues_a_token_too_large_to_use(mteam: Team, open_role: str) -> None:
    """AssumeRole either refuses a session too large to carry (PackedPolicyTooLarge) or issues a
    token that authenticates: from 1 to 50 tags of the largest size allowed, both happen."""
    ram = mteam.sign_in("ram")
    outcomes = set()
    for count in range(1, 51):
        tags = {f"k{i:02d}".ljust(128, "k"): "v" * 256 for i in range(count)}
        try:
            credentials = mteam.sts.assume_role(ram, role_arn(open_role), "large", tags=tags)
        except PackedPolicyTooLarge:
            outcomes.add("refused")
            continue
        outcomes.add("issued")
        assert mteam.sts.authenticate(credentials.session_token).tags == tags, count
    assert outcomes == {"issued", "refused"}


@pytest.mark.parametrize(
    ("source_identity", "ok"),
    [
        ("a", False),
        ("ab", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("ram@example.com", True),
        ("ram:laptop", False),
        ("has space", False),
    ],
)
def test_source_identity_bounds(
    mteam: Team, open_role: str, source_identity: str, ok: bool
) -> None:
    """SourceIdentity is 2 to 64 of letters, digits and ``+=,.@_-``; anything else fails."""
    ram = mteam.sign_in("ram")
    if ok:
        session = mteam.assume(ram, open_role, "src", source_identity=source_identity)
        assert session.source_identity == source_identity
    else:
        with pytest.raises(ValidationError, match="SourceIdentity"):
            mteam.sts.assume_role(ram, role_arn(open_role), "src", source_identity=source_identity)


def test_source_identity_is_fixed_across_the_chain(mteam: Team, open_role: str) -> None:
    """A source identity set at the first hop stays on every chained session: omitted it is
    inherited, repeated it is accepted, a different one is a ValidationError."""
    mteam.role("Next", trust(role_arn(open_role), actions=ALL_STS))
    first = mteam.assume(mteam.sign_in("ram"), open_role, "first", source_identity="ram-laptop")
    assert mteam.assume(first, "Next", "omitted").source_identity == "ram-laptop"
    assert mteam.assume(first, "Next", "same", source_identity="ram-laptop").source_identity == (
        "ram-laptop"
    )
    with pytest.raises(ValidationError, match="SourceIdentity"):
        mteam.sts.assume_role(first, role_arn("Next"), "changed", source_identity="someone-else")


# --- the example team, end to end, on every store ------------------------------------------------


def test_developer_cannot_assume_image_admin(team: Team) -> None:
    """Ram (a developer, no sts:AssumeRole) cannot assume ImageAdmin, whose trust policy names
    only the account: AccessDenied in AWS's words."""
    with pytest.raises(AccessDenied) as denied:
        team.sts.assume_role(team.sign_in("ram"), IMAGE_ADMIN, "ram-admin")
    assert denied.value.message == RAM_DENIED


def test_admin_assumes_image_admin(team: Team) -> None:
    """Sita (an admin, allowed sts:AssumeRole on ImageAdmin) assumes it and may do everything
    to images, as the role and not as herself."""
    admin = team.assume(team.sign_in("sita"), "ImageAdmin", "sita-admin")
    assert admin.principal == f"arn:iamguard:sts::{ACCOUNT}:assumed-role/ImageAdmin/sita-admin"
    assert admin.principal_type == ASSUMED_ROLE
    assert admin.role_arn == IMAGE_ADMIN
    assert admin.chain_depth == 1
    assert team.allowed(admin, "images:DeleteImage")
    assert not team.allowed(admin, "iam:CreateUser", f"{IAM_ARN}:user/new")  # sita's own right


def test_service_reads_images_through_image_reader(team: Team) -> None:
    """The image-processor service, with the secret load_model returned, can do nothing itself;
    as ImageReader it reads an image and cannot write one. A wrong secret is refused."""
    service = team.service_session()
    assert service.principal == "image-processor"
    assert not team.allowed(service, "images:GetImage")
    reader = team.assume(service, "ImageReader", "batch")
    assert team.allowed(reader, "images:GetImage")
    assert not team.allowed(reader, "images:PutImage")
    with pytest.raises(InvalidClientTokenId, match=FAILED):
        team.sts.get_service_session(ACCOUNT, "image-processor", "not-the-secret")


def test_session_policy_narrows_and_never_widens(team: Team) -> None:
    """A session policy narrows a role session to what both allow; one allowing more than the
    role gives nothing more."""
    sita = team.sign_in("sita")
    narrow = team.assume(sita, "ImageAdmin", "narrow", policy=document(allow("images:GetImage")))
    assert team.allowed(narrow, "images:GetImage")
    assert not team.allowed(narrow, "images:DeleteImage")
    wide = team.assume(sita, "ImageAdmin", "wide", policy=document(allow("*")))
    assert team.allowed(wide, "images:DeleteImage")
    assert not team.allowed(wide, "iam:CreateUser", f"{IAM_ARN}:user/new")
    reader = team.assume(
        team.service_session(), "ImageReader", "wide", policy=document(allow("images:*"))
    )
    assert team.allowed(reader, "images:GetImage")
    assert not team.allowed(reader, "images:PutImage")


def test_managed_session_policies_narrow(team: Team) -> None:
    """PolicyArns narrow a role session as an inline session policy does."""
    read_only = f"{IAM_ARN}:policy/ImageReadAccess"
    session = team.assume(team.sign_in("sita"), "ImageAdmin", "managed", policy_arns=[read_only])
    assert team.allowed(session, "images:GetImage")
    assert not team.allowed(session, "images:DeleteImage")


def test_chained_session_cannot_exceed_an_hour(team: Team) -> None:
    """ImageAdmin's session chains into a role allowing 12 hours, for at most one."""
    team.role("ImageAuditor", trust(IMAGE_ADMIN), max_session_duration=43_200,
              policy=document(allow("images:ListImages")))  # fmt: skip
    admin = team.assume(team.sign_in("sita"), "ImageAdmin", "admin")
    auditor = team.sts.assume_role(admin, role_arn("ImageAuditor"), "audit", duration_seconds=3600)
    assert auditor.session.expires_at - auditor.session.issued_at == 3600
    with pytest.raises(ValidationError):
        team.sts.assume_role(admin, role_arn("ImageAuditor"), "audit", duration_seconds=3601)
    session = team.sts.authenticate(auditor.session_token)
    assert team.allowed(session, "images:ListImages")
    assert not team.allowed(session, "images:DeleteImage")


def test_revoke_older_sessions_stops_live_tokens_at_once(team: Team) -> None:
    """Revoking ImageAdmin's sessions refuses a live token at once (InvalidClientTokenId);
    a session issued after the revocation works, and so do other principals' sessions."""
    sita = team.sign_in("sita")
    before = team.sts.assume_role(sita, IMAGE_ADMIN, "before").session_token
    team.sts.authenticate(before)
    team.clock.advance(0.5)
    team.sts.revoke_older_sessions(ACCOUNT, "role", "ImageAdmin")
    with pytest.raises(InvalidClientTokenId, match="revoked"):
        team.sts.authenticate(before)
    team.clock.advance(0.5)
    after = team.sts.assume_role(sita, IMAGE_ADMIN, "after").session_token
    assert team.sts.authenticate(after).session_name == "after"
    assert team.sts.authenticate(team.key_sign_in("sita").session_token).name == "sita"


def test_revoke_older_sessions_of_a_user(team: Team) -> None:
    """Revoking a user's sessions refuses its older tokens and no one else's."""
    sita = team.key_sign_in("sita").session_token
    ram = team.key_sign_in("ram").session_token
    team.clock.advance(1)
    team.sts.revoke_older_sessions(ACCOUNT, "user", "sita")
    with pytest.raises(InvalidClientTokenId, match="revoked"):
        team.sts.authenticate(sita)
    assert team.sts.authenticate(ram).name == "ram"
    team.clock.advance(1)
    assert team.sign_in("sita").name == "sita"


def test_revoke_session_ends_one_session_only(team: Team) -> None:
    """revoke_session ends the one session; the role's other sessions and the caller's own
    keep working."""
    sita = team.sign_in("sita")
    one = team.sts.assume_role(sita, IMAGE_ADMIN, "one").session_token
    two = team.sts.assume_role(sita, IMAGE_ADMIN, "two").session_token
    team.sts.revoke_session(team.sts.authenticate(one))
    with pytest.raises(InvalidClientTokenId, match="revoked"):
        team.sts.authenticate(one)
    assert team.sts.authenticate(two).session_name == "two"
    assert team.sts.authenticate(team.key_sign_in("sita").session_token).name == "sita"


def test_revoke_session_twice_is_harmless(team: Team) -> None:
    """Revoking a session that is already revoked changes nothing and raises nothing: the
    store's version stays, and the session stays revoked."""
    token = team.key_sign_in("sita").session_token
    session = team.sts.authenticate(token)
    team.sts.revoke_session(session)
    version = team.store.version()
    team.sts.revoke_session(session)
    assert team.store.version() == version
    with pytest.raises(InvalidClientTokenId, match="revoked"):
        team.sts.authenticate(token)


_REVOKER = textwrap.dedent(
    """
    import sys, time
    from iamguard.stores import open_store
    from iamguard.sts import STS
    from iamguard.tokens import KeyRing, Tokens

    url, account, kind, name = sys.argv[1:5]
    store = open_store(url)
    sts = STS(store, Tokens(KeyRing(), issuer="other", audience="other"))
    print("ready", flush=True)
    sys.stdin.readline()
    sts.revoke_older_sessions(account, kind, name)
    print("revoked", time.monotonic(), flush=True)
    sts.authorizer.read_model.close()
    store.close()
    """
)


def test_revocation_in_another_process_is_enforced_in_time(store_url: str) -> None:
    """ImageAdmin's sessions revoked by a second process are refused here within the documented
    propagation time (1 s on SQLite, 100 ms on PostgreSQL), measured on the machine-wide
    monotonic clock."""
    store = open_store(store_url)
    # The other process revokes at its wall-clock time: this one issued its tokens a minute
    # earlier, on a fixed fake clock.
    made = make_team(store, start=float(int(time.time()) - 60))
    process = spawn(_REVOKER, store_url, ACCOUNT, "role", "ImageAdmin")
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        token = made.sts.assume_role(made.sign_in("sita"), IMAGE_ADMIN, "live").session_token
        assert process.stdout.readline().split() == ["ready"]
        made.sts.authenticate(token)
        process.stdin.write("go\n")
        process.stdin.flush()
        word, when = process.stdout.readline().split()
        assert word == "revoked"
        revoked = float(when)
        while True:
            try:
                made.sts.authenticate(token)
            except InvalidClientTokenId as e:
                assert "revoked" in e.message
                refused = time.monotonic()
                break
            assert time.monotonic() - revoked < 10, "the revocation never arrived"
            time.sleep(0.002)
        kind = "sqlite" if store_url.startswith("sqlite") else "postgresql"
        assert refused - revoked < DEADLINES[kind]
    finally:
        stop(process)
        made.close()
        store.close()


# --- trust policies ------------------------------------------------------------------------------


def test_trust_naming_the_user_needs_no_identity_policy(mteam: Team) -> None:
    """A trust policy naming a user's ARN lets that user assume the role with no identity
    policy at all (AWS's same-account rule); one naming only the account does not."""
    mteam.iam.create_user("newbie")
    key = mteam.iam.create_access_key("newbie")
    mteam.keys = {**mteam.keys, "newbie": (key.access_key.access_key_id, key.secret_access_key)}
    mteam.role("Direct", trust(f"{IAM_ARN}:user/newbie"))
    mteam.role("AccountOnly", trust(ACCOUNT))
    newbie = mteam.sign_in("newbie")
    assert mteam.assume(newbie, "Direct", "direct").role_arn == role_arn("Direct")
    with pytest.raises(AccessDenied, match="is not authorized to perform: sts:AssumeRole"):
        mteam.sts.assume_role(newbie, role_arn("AccountOnly"), "account")


def test_trust_naming_the_account_needs_an_identity_allow(mteam: Team) -> None:
    """With a trust policy naming only the account, the caller's identity policy decides: ram
    may assume ImageAdmin once his own policy allows sts:AssumeRole on it."""
    with pytest.raises(AccessDenied):
        mteam.sts.assume_role(mteam.sign_in("ram"), IMAGE_ADMIN, "before")
    mteam.iam.put_user_policy("ram", "admin", document(allow("sts:AssumeRole", IMAGE_ADMIN)))
    assert mteam.assume(mteam.sign_in("ram"), "ImageAdmin", "after").role_arn == IMAGE_ADMIN


def test_trust_policy_is_required_even_when_identity_allows(mteam: Team) -> None:
    """An identity policy allowing sts:AssumeRole on every role does not let a user assume a
    role whose trust policy does not name it or its account."""
    mteam.iam.put_user_policy("sita", "everything", document(allow("sts:*")))
    with pytest.raises(AccessDenied):
        mteam.sts.assume_role(mteam.sign_in("sita"), IMAGE_READER, "sneak")


def test_trust_conditions_bind_callers_their_identity_policy_allows(mteam: Team) -> None:
    """ImageAdmin's trust policy requiring MFA refuses sita without MFA, although her own
    policy allows sts:AssumeRole on it, and admits her with a valid code."""
    mteam.iam.update_assume_role_policy(
        "ImageAdmin", trust(ACCOUNT, Bool={"aws:MultiFactorAuthPresent": "true"})
    )
    serial = mteam.devices.add("sita")
    sita = mteam.sign_in("sita")
    admin = mteam.sts.assume_role(
        sita, IMAGE_ADMIN, "mfa", serial_number=serial, token_code=mteam.devices.code("sita")
    )
    assert admin.session.mfa_present
    with pytest.raises(AccessDenied):
        mteam.sts.assume_role(sita, IMAGE_ADMIN, "no-mfa")


def test_tag_session_needs_the_trust_policy_even_when_identity_allows(mteam: Team) -> None:
    """Session tags need sts:TagSession in the trust policy, whatever the caller's own policy."""
    mteam.iam.put_user_policy("sita", "everything", document(allow("sts:*")))
    with pytest.raises(AccessDenied, match="sts:TagSession"):
        mteam.sts.assume_role(mteam.sign_in("sita"), IMAGE_ADMIN, "tags", tags={"team": "x"})


def test_root_cannot_assume_roles(mteam: Team) -> None:
    """The root user cannot assume a role, even one trusting its account."""
    password = mteam.secrets.root_passwords[ACCOUNT]
    root = mteam.sts.authenticate(
        mteam.sts.sign_in_root(ACCOUNT, "root@example.com", password).session_token
    )
    with pytest.raises(AccessDenied, match="Roles may not be assumed by root accounts"):
        mteam.sts.assume_role(root, IMAGE_ADMIN, "root")


def test_external_id_condition(mteam: Team) -> None:
    """A trust policy requiring an ExternalId admits that id only."""
    mteam.role("Partner", trust(RAM, StringEquals={"sts:ExternalId": "Partner-42"}))
    ram = mteam.sign_in("ram")
    mteam.assume(ram, "Partner", "ok", external_id="Partner-42")
    for wrong in ({}, {"external_id": "Partner-43"}):
        with pytest.raises(AccessDenied):
            mteam.sts.assume_role(ram, role_arn("Partner"), "wrong", **wrong)


def test_mfa_condition(mteam: Team) -> None:
    """A trust policy requiring MFA admits a valid code (the session then carries MFA), refuses
    no code, and a wrong code is AccessDenied before the trust policy is read."""
    mteam.role("Guarded", trust(RAM, Bool={"aws:MultiFactorAuthPresent": "true"}))
    serial = mteam.devices.add("ram")
    ram = mteam.sign_in("ram")
    with pytest.raises(AccessDenied):
        mteam.sts.assume_role(ram, role_arn("Guarded"), "no-mfa")
    guarded = mteam.assume(
        ram, "Guarded", "mfa", serial_number=serial, token_code=mteam.devices.code("ram")
    )
    assert guarded.mfa_authenticated_at == int(mteam.clock.time())
    wrong = f"{(int(mteam.devices.code('ram')) + 1) % 1_000_000:06d}"
    with pytest.raises(AccessDenied, match="MultiFactorAuthentication failed"):
        mteam.sts.assume_role(ram, role_arn("Guarded"), "bad", serial_number=serial,
                              token_code=wrong)  # fmt: skip


def test_mfa_at_sign_in_carries_into_assume_role(mteam: Team) -> None:
    """A session signed in with MFA meets an MFA condition without another code, until
    aws:MultiFactorAuthAge passes the trust policy's limit."""
    mteam.role("Fresh", trust(RAM, Bool={"aws:MultiFactorAuthPresent": "true"},
                              NumericLessThan={"aws:MultiFactorAuthAge": "3600"}))  # fmt: skip
    serial = mteam.devices.add("ram")
    ram = mteam.sign_in("ram", serial_number=serial, token_code=mteam.devices.code("ram"))
    assert ram.mfa_present
    mteam.sts.assume_role(ram, role_arn("Fresh"), "fresh")
    mteam.clock.advance(3599)
    mteam.assume(ram, "Fresh", "aging")
    mteam.clock.advance(1)
    with pytest.raises(AccessDenied):
        mteam.sts.assume_role(ram, role_arn("Fresh"), "stale")


def test_sign_in_with_a_wrong_mfa_code_is_refused(mteam: Team) -> None:
    """GetSessionToken with a wrong MFA code, or a serial that is not the user's, is
    AccessDenied."""
    serial = mteam.devices.add("ram")
    wrong = f"{(int(mteam.devices.code('ram')) + 1) % 1_000_000:06d}"
    with pytest.raises(AccessDenied, match="MultiFactorAuthentication failed"):
        mteam.key_sign_in("ram", serial_number=serial, token_code=wrong)
    with pytest.raises(AccessDenied, match="MultiFactorAuthentication failed"):
        mteam.key_sign_in("ram", serial_number=f"{IAM_ARN}:mfa/sita",
                          token_code=mteam.devices.code("ram"))  # fmt: skip


def test_wrong_mfa_codes_at_sign_in_are_audited_and_throttled(
    mteam: Team, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong MFA code after the right secret is audited and counts as a failed sign-in: after
    five free failures the user is Throttled, even with a right code, until the lock ends."""
    serial = mteam.devices.add("ram")
    wrong = f"{(int(mteam.devices.code('ram')) + 1) % 1_000_000:06d}"
    caplog.set_level(logging.INFO, logger="iamguard.audit")
    for _ in range(6):
        with pytest.raises(AccessDenied, match="MultiFactorAuthentication failed"):
            mteam.key_sign_in("ram", serial_number=serial, token_code=wrong)
    events = [r.audit["event"] for r in caplog.records]  # type: ignore[attr-defined]
    assert events.count("mfa.failed") == 6
    with pytest.raises(Throttled) as throttled:
        mteam.key_sign_in("ram", serial_number=serial, token_code=mteam.devices.code("ram"))
    assert throttled.value.status == 429
    mteam.clock.advance(throttled.value.retry_after)
    assert mteam.sign_in(
        "ram", serial_number=serial, token_code=mteam.devices.code("ram")
    ).mfa_present


def test_wrong_mfa_codes_at_assume_role_are_throttled(mteam: Team) -> None:
    """Wrong MFA codes at AssumeRole count as failures: after ten, the caller is Throttled."""
    mteam.role("Guarded", trust(RAM, Bool={"aws:MultiFactorAuthPresent": "true"}))
    serial = mteam.devices.add("ram")
    ram = mteam.sign_in("ram")
    wrong = f"{(int(mteam.devices.code('ram')) + 1) % 1_000_000:06d}"
    for _ in range(10):
        with pytest.raises((AccessDenied, Throttled)):
            mteam.sts.assume_role(ram, role_arn("Guarded"), "guess", serial_number=serial,
                                  token_code=wrong)  # fmt: skip
    with pytest.raises(Throttled):
        mteam.sts.assume_role(ram, role_arn("Guarded"), "guess", serial_number=serial,
                              token_code=mteam.devices.code("ram"))  # fmt: skip


def test_context_cannot_assert_mfa(mteam: Team) -> None:
    """A request context claiming MFA does not meet an MFA condition without a code."""
    mteam.role("Guarded", trust(RAM, Bool={"aws:MultiFactorAuthPresent": "true"}))
    with pytest.raises(AccessDenied):
        mteam.sts.assume_role(mteam.sign_in("ram"), role_arn("Guarded"), "forged",
                              context={"aws:MultiFactorAuthPresent": "true"})  # fmt: skip


def test_principal_tag_condition(mteam: Team) -> None:
    """A trust condition on aws:PrincipalTag/team reads the caller's own tags: ram (team
    images) is admitted, sita (team platform) is not."""
    mteam.role("ImagesTeam", trust(RAM, SITA,
                                   StringEquals={"aws:PrincipalTag/team": "images"}))  # fmt: skip
    mteam.assume(mteam.sign_in("ram"), "ImagesTeam", "ram")
    with pytest.raises(AccessDenied):
        mteam.sts.assume_role(mteam.sign_in("sita"), role_arn("ImagesTeam"), "sita")


def test_source_ip_condition(mteam: Team) -> None:
    """A trust condition on aws:SourceIp reads the address passed in ``context``."""
    mteam.role("Office", trust(RAM, IpAddress={"aws:SourceIp": "10.0.0.0/8"}))
    ram = mteam.sign_in("ram")
    mteam.assume(ram, "Office", "office", context={"aws:SourceIp": "10.1.2.3"})
    for outside in ({"aws:SourceIp": "192.168.1.1"}, None):
        with pytest.raises(AccessDenied):
            mteam.sts.assume_role(ram, role_arn("Office"), "away", context=outside)


def test_role_session_name_condition(mteam: Team) -> None:
    """A trust condition ``StringLike sts:RoleSessionName ${aws:username}-*`` admits session
    names starting with the caller's user name only."""
    mteam.role("Named", trust(RAM, StringLike={"sts:RoleSessionName": "${aws:username}-*"}))
    ram = mteam.sign_in("ram")
    assert mteam.assume(ram, "Named", "ram-batch").session_name == "ram-batch"
    with pytest.raises(AccessDenied):
        mteam.sts.assume_role(ram, role_arn("Named"), "sita-batch")


def test_tags_need_tag_session(mteam: Team) -> None:
    """Session tags (or transitive keys) need sts:TagSession in the trust policy."""
    mteam.role("NoTags", trust(RAM))
    mteam.role("Tags", trust(RAM, actions=("sts:AssumeRole", "sts:TagSession")))
    ram = mteam.sign_in("ram")
    mteam.assume(ram, "NoTags", "untagged")
    with pytest.raises(AccessDenied, match="sts:TagSession"):
        mteam.sts.assume_role(ram, role_arn("NoTags"), "tagged", tags={"team": "images"})
    assert mteam.assume(ram, "Tags", "tagged", tags={"team": "images"}).tags == {"team": "images"}


def test_source_identity_needs_set_source_identity(mteam: Team) -> None:
    """Setting a source identity needs sts:SetSourceIdentity in the trust policy."""
    mteam.role("NoSource", trust(RAM))
    mteam.role("Source", trust(RAM, actions=("sts:AssumeRole", "sts:SetSourceIdentity")))
    ram = mteam.sign_in("ram")
    with pytest.raises(AccessDenied, match="sts:SetSourceIdentity"):
        mteam.sts.assume_role(ram, role_arn("NoSource"), "src", source_identity="ram")
    assert mteam.assume(ram, "Source", "src", source_identity="ram").source_identity == "ram"


def test_session_tags_are_principal_tags_and_win_over_the_role_tags(mteam: Team) -> None:
    """Session tags reach the new session's requests as aws:PrincipalTag/*, and win over the
    role's own tag of the same key in any letter case."""
    mteam.role(
        "Tagged", trust(RAM, actions=("sts:AssumeRole", "sts:TagSession")),
        tags=[{"Key": "team", "Value": "role-team"}],
        policy=document(allow("images:GetImage", IMAGES + "*",
                              StringEquals={"aws:PrincipalTag/team": "session-team"})),
    )  # fmt: skip
    ram = mteam.sign_in("ram")
    plain = mteam.assume(ram, "Tagged", "plain")
    assert not mteam.allowed(plain, "images:GetImage")
    for key in ("team", "Team"):
        tagged = mteam.assume(ram, "Tagged", "tagged", tags={key: "session-team"})
        assert mteam.allowed(tagged, "images:GetImage"), key


def test_transitive_tags_carry_into_the_chain(mteam: Team) -> None:
    """Transitive session tags carry into a chained session (the others do not), reach its
    requests, and cannot be overridden there."""
    mteam.role("First", trust(RAM, actions=("sts:AssumeRole", "sts:TagSession")))
    mteam.role(
        "Second", trust(role_arn("First"), actions=("sts:AssumeRole", "sts:TagSession")),
        policy=document(allow("images:GetImage", IMAGES + "*",
                              StringEquals={"aws:PrincipalTag/team": "images"})),
    )  # fmt: skip
    first = mteam.assume(
        mteam.sign_in("ram"), "First", "first", tags={"team": "images", "project": "cats"},
        transitive_tag_keys=["team"],
    )  # fmt: skip
    second = mteam.assume(first, "Second", "second")
    assert second.tags == {"team": "images"}
    assert second.transitive_tag_keys == ("team",)
    assert second.chain_depth == 2
    assert mteam.allowed(second, "images:GetImage")
    more = mteam.assume(first, "Second", "more", tags={"stage": "test"})
    assert more.tags == {"team": "images", "stage": "test"}
    for key in ("team", "TEAM"):
        with pytest.raises((ValidationError, InvalidInput), match="transitive"):
            mteam.sts.assume_role(first, role_arn("Second"), "override", tags={key: "other"})


def test_assume_role_sees_a_trust_policy_change_at_once(mteam: Team) -> None:
    """Once a role's trust policy stops naming ram, his next AssumeRole is denied."""
    mteam.role("Changing", trust(RAM))
    ram = mteam.sign_in("ram")
    mteam.assume(ram, "Changing", "before")
    mteam.iam.update_assume_role_policy("Changing", trust(SITA))
    with pytest.raises(AccessDenied):
        mteam.sts.assume_role(ram, role_arn("Changing"), "after")


def test_denial_does_not_reveal_whether_a_role_exists(mteam: Team) -> None:
    """AccessDenied reads the same for a missing role as for one the caller may not assume."""
    ram = mteam.sign_in("ram")
    messages = []
    for arn in (IMAGE_ADMIN, role_arn("NoSuchRole")):
        with pytest.raises(AccessDenied) as denied:
            mteam.sts.assume_role(ram, arn, "probe")
        messages.append(denied.value.message.replace(arn, "ROLE"))
    assert messages[0] == messages[1]


# --- sign-in -------------------------------------------------------------------------------------


def test_sign_in_with_password_and_with_access_key(team: Team) -> None:
    """Ram signs in with his password and with his access key: the same user either way."""
    by_password = team.sts.get_session_token(ACCOUNT, user_name="ram", password=PASSWORDS["ram"])
    by_key = team.key_sign_in("ram")
    for credentials in (by_password, by_key):
        session = team.sts.authenticate(credentials.session_token)
        assert session.principal == RAM
        assert session.user_id.startswith("AIDA")
        assert session.chain_depth == 0
    assert by_password.session.user_id == by_key.session.user_id


def _inactive_key(team: Team) -> dict[str, str]:
    key_id, secret = team.keys["ram"]
    team.iam.update_access_key("ram", key_id, "Inactive")
    return {"access_key_id": key_id, "secret_access_key": secret}


def _deleted_key(team: Team) -> dict[str, str]:
    key_id, secret = team.keys["ram"]
    team.iam.delete_access_key("ram", key_id)
    return {"access_key_id": key_id, "secret_access_key": secret}


FAILED_SIGN_INS: dict[str, Callable[[Team], dict[str, str]]] = {
    "inactive-key": _inactive_key,
    "deleted-key": _deleted_key,
    "wrong-secret": lambda t: {
        "access_key_id": t.keys["ram"][0],
        "secret_access_key": t.keys["sita"][1],
    },
    "unknown-key": lambda t: {
        "access_key_id": "AKIAAAAAAAAAAAAAAAAA",
        "secret_access_key": t.keys["ram"][1],
    },
    "unknown-user": lambda t: {"user_name": "ravan", "password": PASSWORDS["ram"]},
    "wrong-password": lambda t: {"user_name": "ram", "password": PASSWORDS["sita"]},
    "no-login-profile": lambda t: {"user_name": "shyam", "password": PASSWORDS["ram"]},
}


@pytest.mark.parametrize("case", FAILED_SIGN_INS)
def test_failed_sign_ins_are_indistinguishable(team: Team, case: str) -> None:
    """Every failed sign-in (inactive, deleted, unknown key; wrong secret or password; unknown
    user; a user without a password) is InvalidClientTokenId with the same message."""
    credentials = FAILED_SIGN_INS[case](team)
    with pytest.raises(InvalidClientTokenId) as failed:
        team.sts.get_session_token(ACCOUNT, **credentials)
    assert type(failed.value) is InvalidClientTokenId
    assert failed.value.message == FAILED


@pytest.mark.parametrize("case", ["unknown-user", "wrong-password", "no-login-profile", "bad-name"])
def test_password_failures_cost_one_argon2_verification(
    mteam: Team, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """An unknown user, a wrong password, a user without a password and an impossible user
    name each cost exactly one argon2 verification, as a success does: no timing tells them
    apart."""
    calls: list[str] = []
    real = iamguard.sts.verify_password

    def counted(encoded: str, password: str) -> bool:
        calls.append(encoded)
        return real(encoded, password)

    monkeypatch.setattr(iamguard.sts, "verify_password", counted)
    credentials = {
        "unknown-user": {"user_name": "ravan", "password": PASSWORDS["ram"]},
        "wrong-password": {"user_name": "ram", "password": PASSWORDS["sita"]},
        "no-login-profile": {"user_name": "shyam", "password": PASSWORDS["ram"]},
        "bad-name": {"user_name": "no such/user", "password": PASSWORDS["ram"]},
    }[case]
    with pytest.raises(InvalidClientTokenId, match=FAILED):
        mteam.sts.get_session_token(ACCOUNT, **credentials)
    assert len(calls) == 1
    mteam.sts.get_session_token(ACCOUNT, user_name="ram", password=PASSWORDS["ram"])
    assert len(calls) == 2


def test_dummy_hash_costs_what_a_real_one_does() -> None:
    """The hash verified for a missing user has the same argon2 parameters as a real one."""

    def parameters(encoded: str) -> str:
        return encoded.rsplit("$", 2)[0]  # $argon2id$v=19$m=...,t=...,p=...

    assert parameters(dummy_password_hash()) == parameters(hash_password("Another-passw0rd"))
    assert parameters(dummy_password_hash()).startswith("$argon2id$")


def test_root_signs_in_with_email_in_any_case(team: Team) -> None:
    """The root user signs in with its e-mail in any letter case and its password; a wrong
    e-mail or password fails like any sign-in."""
    password = team.secrets.root_passwords[ACCOUNT]
    root = team.sts.authenticate(
        team.sts.sign_in_root(ACCOUNT, "ROOT@Example.COM", password).session_token
    )
    assert root.principal == f"{IAM_ARN}:root"
    for email, secret in (("other@example.com", password), ("root@example.com", "Wrong-pw-1")):
        with pytest.raises(InvalidClientTokenId) as failed:
            team.sts.sign_in_root(ACCOUNT, email, secret)
        assert failed.value.message == FAILED


def test_get_caller_identity(mteam: Team) -> None:
    """GetCallerIdentity names a user (AIDA...), a role session (AROA...:session, the
    assumed-role ARN) and the root user (the account id)."""
    sita = mteam.sign_in("sita")
    user = mteam.sts.get_caller_identity(sita)
    assert user == {"Account": ACCOUNT, "Arn": SITA, "UserId": sita.user_id}
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user["UserId"])
    role = mteam.sts.get_caller_identity(mteam.assume(sita, "ImageAdmin", "sita-admin"))
    assert role["Arn"] == f"arn:iamguard:sts::{ACCOUNT}:assumed-role/ImageAdmin/sita-admin"
    assert re.fullmatch(r"AROA[A-Z2-7]{17}:sita-admin", role["UserId"])
    assert role["Account"] == ACCOUNT
    password = mteam.secrets.root_passwords[ACCOUNT]
    root = mteam.sts.sign_in_root(ACCOUNT, "root@example.com", password).session
    assert mteam.sts.get_caller_identity(root) == {
        "Account": ACCOUNT, "Arn": f"{IAM_ARN}:root", "UserId": ACCOUNT,
    }  # fmt: skip


# --- sign-in throttling: the real SignInThrottle, in the store --------------------------------


def wrong_secret(team: Team, user: str) -> dict[str, str]:
    """``user``'s access key id with another user's secret."""
    other = "sita" if user != "sita" else "ram"
    return {"access_key_id": team.keys[user][0], "secret_access_key": team.keys[other][1]}


def test_failed_sign_ins_are_throttled(team: Team) -> None:
    """Five failed sign-ins are free; the sixth locks the credential for one second, in which
    even the right secret is Throttled (429, Retry-After); after it, the right secret works."""
    for _ in range(6):
        with pytest.raises(InvalidClientTokenId):
            team.sts.get_session_token(ACCOUNT, **wrong_secret(team, "ram"))
    with pytest.raises(Throttled) as throttled:
        team.key_sign_in("ram")
    assert (throttled.value.status, throttled.value.retry_after) == (429, 1)
    team.clock.advance(1)
    assert team.sign_in("ram").name == "ram"


def test_every_sts_on_a_store_throttles_alike(team: Team) -> None:
    """Failures counted by one STS lock the credential for another STS on the same store."""
    other = STS(team.store, team.sts.tokens, clock=team.clock.now)
    try:
        for _ in range(6):
            with pytest.raises(InvalidClientTokenId):
                other.get_session_token(ACCOUNT, **wrong_secret(team, "ram"))
        with pytest.raises(Throttled):
            team.key_sign_in("ram")
    finally:
        other.authorizer.read_model.close()


def test_a_success_clears_the_user_failures(mteam: Team) -> None:
    """A successful sign-in forgets the user's failures: four, a success, four more, no lock."""
    for _ in range(2):
        for _ in range(4):
            with pytest.raises(InvalidClientTokenId):
                mteam.sts.get_session_token(ACCOUNT, **wrong_secret(mteam, "ram"))
        assert mteam.sign_in("ram").name == "ram"


def test_an_address_is_throttled_across_users(mteam: Team) -> None:
    """Six failures from one address, spread over three users (two each, under any user's
    limit), lock the address: a right secret from it is Throttled, from another it works."""
    for user in ("ram", "shyam", "gita"):
        for _ in range(2):
            with pytest.raises(InvalidClientTokenId):
                mteam.sts.get_session_token(
                    ACCOUNT, source_ip="203.0.113.9", **wrong_secret(mteam, user)
                )
    with pytest.raises(Throttled):
        mteam.key_sign_in("sita", source_ip="203.0.113.9")
    assert mteam.sign_in("sita", source_ip="198.51.100.7").name == "sita"


def test_throttled_names_cost_nothing_and_tell_nothing(
    mteam: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a SignInThrottle allowing one free failure, an unknown user, a known user and the
    root user are locked alike after two failures, and a locked attempt does no argon2 work."""
    calls: list[str] = []
    real = iamguard.sts.verify_password
    monkeypatch.setattr(iamguard.sts, "verify_password", lambda e, p: calls.append(e) or real(e, p))
    strict = SignInThrottle(mteam.store, clock=mteam.clock.now, free_attempts=1)
    sts = STS(mteam.store, mteam.sts.tokens, clock=mteam.clock.now, throttle=strict)
    root_password = mteam.secrets.root_passwords[ACCOUNT]
    attempts: dict[str, tuple[Callable[[str], Any], str]] = {
        "ravan": (lambda pw: sts.get_session_token(ACCOUNT, user_name="ravan", password=pw), ""),
        "ram": (lambda pw: sts.get_session_token(ACCOUNT, user_name="ram", password=pw),
                PASSWORDS["ram"]),
        "root": (lambda pw: sts.sign_in_root(ACCOUNT, "root@example.com", pw), root_password),
    }  # fmt: skip
    try:
        for who, (attempt, right) in attempts.items():
            for _ in range(2):
                with pytest.raises(InvalidClientTokenId):
                    attempt("Wrong-passw0rd!")
            before = len(calls)
            with pytest.raises(Throttled) as throttled:
                attempt(right or "Any-passw0rd!")
            assert throttled.value.retry_after == 1, who
            assert len(calls) == before, who
    finally:
        sts.authorizer.read_model.close()


# --- tokens and sessions -------------------------------------------------------------------------


def test_claims_carry_identity_and_never_permissions(mteam: Team) -> None:
    """A role session's token carries who it is (ARN, account, ids, session name, source
    identity, tags, transitive keys, MFA time, session policy, chain depth) and none of the
    role's or the caller's policies."""
    secret_sid = "RolePolicyNeverInToken"
    role_policy = document({**allow("images:PutImage"), "Sid": secret_sid})
    mteam.role("Claims", trust(RAM, actions=ALL_STS), policy=role_policy)
    serial = mteam.devices.add("ram")
    session_policy = json.dumps(document(allow("images:GetImage")))
    credentials = mteam.sts.assume_role(
        mteam.sign_in("ram"), role_arn("Claims"), "claims", policy=session_policy,
        tags={"team": "images", "project": "cats"}, transitive_tag_keys=["team"],
        source_identity="ram-laptop", serial_number=serial,
        token_code=mteam.devices.code("ram"),
    )  # fmt: skip
    raw = payload_text(credentials.session_token)
    claims = json.loads(raw)
    role = mteam.iam.get_role("Claims")
    assert claims["sub"] == f"arn:iamguard:sts::{ACCOUNT}:assumed-role/Claims/claims"
    assert claims["account"] == ACCOUNT
    assert claims["userid"] == f"{role.role_id}:claims"
    assert claims["session_name"] == "claims"
    assert claims["role_arn"] == role_arn("Claims")
    assert claims["source_identity"] == "ram-laptop"
    assert claims["session_tags"] == {"team": "images", "project": "cats"}
    assert claims["transitive_tag_keys"] == ["team"]
    assert claims["mfa_time"] == int(mteam.clock.time())
    assert claims["session_policy"] == session_policy
    assert claims["chain_depth"] == 1
    stored = mteam.iam.get_role_policy("Claims", "access")
    for secret in (stored, secret_sid, "images:PutImage", "ReadImages", "OwnFolder"):
        assert secret not in raw
    without_session_policy = {k: v for k, v in claims.items() if k != "session_policy"}
    assert "Statement" not in json.dumps(without_session_policy)


def test_token_of_a_recreated_user_is_refused(team: Team) -> None:
    """A user deleted and created again under the same name is another principal: the old
    user's token is refused, before and after the re-creation."""
    team.iam.create_user("temp")
    key = team.iam.create_access_key("temp")
    token = team.sts.get_session_token(
        ACCOUNT, access_key_id=key.access_key.access_key_id,
        secret_access_key=key.secret_access_key,
    ).session_token  # fmt: skip
    assert team.sts.authenticate(token).name == "temp"
    team.iam.delete_access_key("temp", key.access_key.access_key_id)
    team.iam.delete_user("temp")
    with pytest.raises(InvalidClientTokenId, match="no longer exists"):
        team.sts.authenticate(token)
    team.iam.create_user("temp")
    with pytest.raises(InvalidClientTokenId, match="no longer exists"):
        team.sts.authenticate(token)


def test_token_of_a_deleted_role_is_refused(team: Team) -> None:
    """A role session's token is refused once the role is deleted (and after a role of the same
    name is created again)."""
    team.role("Temp", trust(RAM), policy=document(allow("images:GetImage")))
    token = team.sts.assume_role(team.sign_in("ram"), role_arn("Temp"), "temp").session_token
    assert team.sts.authenticate(token).name == "Temp"
    team.iam.delete_role_policy("Temp", "access")
    team.iam.delete_role("Temp")
    with pytest.raises(InvalidClientTokenId, match="no longer exists"):
        team.sts.authenticate(token)
    team.role("Temp", trust(RAM))
    with pytest.raises(InvalidClientTokenId, match="no longer exists"):
        team.sts.authenticate(token)


def test_credentials_repr_hides_the_token(mteam: Team) -> None:
    """Credentials' repr and str show the principal and expiry, never the token."""
    credentials = mteam.key_sign_in("ram")
    for shown in (repr(credentials), str(credentials), f"{credentials}"):
        assert credentials.session_token not in shown
        assert credentials.session_token.split(".")[2] not in shown
        assert RAM in shown


def test_audit_records_hold_no_secret(mteam: Team, caplog: pytest.LogCaptureFixture) -> None:
    """Sign-in success and failure, sessions issued, roles assumed and sessions revoked are
    audited, and no record holds a password, a secret or a token."""
    caplog.set_level(logging.INFO, logger="iamguard.audit")
    tokens = []
    user = mteam.sts.get_session_token(ACCOUNT, user_name="sita", password=PASSWORDS["sita"])
    tokens.append(user.session_token)
    with pytest.raises(InvalidClientTokenId):
        mteam.sts.get_session_token(ACCOUNT, user_name="sita", password=PASSWORDS["ram"])
    with pytest.raises(InvalidClientTokenId):
        mteam.sts.get_session_token(ACCOUNT, access_key_id=mteam.keys["ram"][0],
                                    secret_access_key=mteam.keys["sita"][1])  # fmt: skip
    tokens.append(mteam.key_sign_in("ram").session_token)
    sita = mteam.sts.authenticate(user.session_token)
    admin = mteam.sts.assume_role(sita, IMAGE_ADMIN, "audited")
    tokens.append(admin.session_token)
    service = mteam.sts.get_service_session(
        ACCOUNT, "image-processor", mteam.secrets.service_secrets[f"{ACCOUNT}/image-processor"]
    )
    tokens.append(service.session_token)
    mteam.sts.revoke_session(mteam.sts.authenticate(admin.session_token))
    mteam.sts.revoke_older_sessions(ACCOUNT, "user", "sita")
    records = [r for r in caplog.records if r.name == "iamguard.audit"]
    events = [r.audit["event"] for r in records]  # type: ignore[attr-defined]
    for event in ("signin.succeeded", "signin.failed", "session.issued", "role.assumed",
                  "service.signin", "session.revoked", "sessions.revoked"):  # fmt: skip
        assert event in events
    assert events.count("signin.failed") == 2
    secrets = [
        *PASSWORDS.values(), mteam.secrets.root_passwords[ACCOUNT],
        *(secret for _, secret in mteam.keys.values()),
        *mteam.secrets.service_secrets.values(),
        *tokens, *(t.split(".")[2] for t in tokens), *(t.split(".")[1] for t in tokens),
    ]  # fmt: skip
    for record in records:
        text = record.getMessage() + json.dumps(record.audit, default=str)  # type: ignore[attr-defined]
        for secret in secrets:
            assert secret not in text, record.audit["event"]  # type: ignore[attr-defined]


def test_expired_token_is_refused(mteam: Team) -> None:
    """A token the clock has moved past its expiry plus the 30-second leeway is ExpiredToken."""
    token = mteam.key_sign_in("ram", duration_seconds=900).session_token
    mteam.sts.authenticate(token)
    mteam.clock.advance(900 + 29)
    assert mteam.sts.authenticate(token).name == "ram"
    mteam.clock.advance(1)
    with pytest.raises(ExpiredToken):
        mteam.sts.authenticate(token)


def test_trust_refusals_are_403_and_failed_sign_ins_401(mteam: Team) -> None:
    """A trust refusal is a 403-type error (AccessDenied), a failed sign-in a 401-type one."""
    with pytest.raises(IAMGuardError) as refused:
        mteam.sts.assume_role(mteam.sign_in("ram"), IMAGE_ADMIN, "denied")
    assert refused.value.status == 403
    with pytest.raises(IAMGuardError) as failed:
        mteam.sts.get_session_token(ACCOUNT, user_name="ram", password="Wrong-passw0rd")
    assert failed.value.status == 401
