"""The Guard's decision cache is invisible: it always answers what a fresh evaluation would."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamguard.authorizer import Authorizer
from iamguard.guard import Guard
from iamguard.iam import IAM
from iamguard.modelfile import load_model
from iamguard.sessions import Session
from iamguard.stores.base import Store

ACCOUNT = "123456789012"
TEAM = Path(__file__).resolve().parents[1] / "examples" / "team.yaml"
IMAGES = f"arn:iamguard:images::{ACCOUNT}:image/"
ACTIONS = ["images:GetImage", "images:ListImages", "images:DeleteImage", "images:PutImage"]
RESOURCES = [IMAGES + "1", IMAGES + "home/ram/a", IMAGES + "home/shyam/b", IMAGES + "shared/c"]
USERS = ["ram", "shyam", "sita", "gita"]
EXTRA = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "images:PutImage", "Resource": IMAGES + "*"}],
}
NO_DELETE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Action": "images:DeleteImage", "Resource": "*"}],
}


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def session_for(guard: Guard, name: str) -> Session:
    """A real session token for a user, authenticated (access key sign-in: no argon2)."""
    key = IAM(guard.store, ACCOUNT).create_access_key(name)
    credentials = guard.sts.get_session_token(
        ACCOUNT, access_key_id=key.access_key.access_key_id,
        secret_access_key=key.secret_access_key, duration_seconds=129_600,
    )  # fmt: skip
    return guard.authenticate(credentials.session_token)


def fresh(store: Store, clock: Clock, session: Session, action: str, resource: str) -> str:
    """The decision from a new authorizer: no cache, no read model shared with the guard."""
    authorizer = Authorizer(store, clock=clock)
    try:
        return authorizer.authorize_session(session, action, resource).effect.value
    finally:
        authorizer.read_model.close()


def mutate(iam: IAM, rng: random.Random) -> None:
    """One random model change of the kinds a running app sees."""
    user = rng.choice(USERS)
    group = rng.choice(["developers", "admins"])
    extra = f"arn:iamguard:iam::{ACCOUNT}:policy/Extra"
    choice = rng.randrange(8)
    try:
        if choice == 0:
            iam.add_user_to_group(group, user)
        elif choice == 1:
            iam.remove_user_from_group(group, user)
        elif choice == 2:
            iam.attach_group_policy(group, extra)
        elif choice == 3:
            iam.detach_group_policy(group, extra)
        elif choice == 4:
            iam.put_user_policy(user, "no-delete", NO_DELETE)
        elif choice == 5:
            iam.delete_user_policy(user, "no-delete")
        elif choice == 6:
            iam.create_policy_version(extra, NO_DELETE if rng.random() < 0.5 else EXTRA,
                                      set_as_default=True)  # fmt: skip
            for version in iam.list_policy_versions(extra):
                if not version.is_default:
                    iam.delete_policy_version(extra, version.version_id)
        else:
            iam.tag_user(user, [{"Key": "team", "Value": rng.choice(["images", "platform"])}])
    except Exception as error:  # a change that does not apply (not a member, ...) is fine
        assert getattr(error, "code", "") in (
            "NoSuchEntity",
            "LimitExceeded",
            "EntityAlreadyExists",
        )


@pytest.fixture
def team() -> tuple[Guard, IAM, Clock, dict[str, Session]]:
    store, _ = load_model(TEAM)
    iam = IAM(store, ACCOUNT)
    iam.create_policy("Extra", EXTRA)
    clock = Clock()
    guard = Guard(store, clock=clock)
    sessions = {name: session_for(guard, name) for name in USERS}
    return guard, iam, clock, sessions


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_cached_answers_equal_fresh_evaluation(
    team: tuple[Guard, IAM, Clock, dict[str, Session]], seed: int
) -> None:
    """Interleaving random model changes with requests, the guard (caching) always answers what
    a fresh evaluation answers, and the cache is actually used."""
    guard, iam, clock, sessions = team
    rng = random.Random(seed)
    for _ in range(12):
        mutate(iam, rng)
        for _ in range(6):
            name = rng.choice(USERS)
            action, resource = rng.choice(ACTIONS), rng.choice(RESOURCES)
            for _ in range(2):  # the second ask of a pair may come from the cache
                cached = guard.authorize(sessions[name], action, resource).effect.value
                assert cached == fresh(iam.store, clock, sessions[name], action, resource), (
                    name, action, resource,
                )  # fmt: skip
    assert guard.hits > 0


def test_time_dependent_decisions_turn_at_the_second(
    team: tuple[Guard, IAM, Clock, dict[str, Session]],
) -> None:
    """A grant that ends at a given time stops at that second, though it was cached before."""
    guard, iam, clock, sessions = team
    deadline = clock.now + timedelta(seconds=2)
    iam.put_user_policy("shyam", "until", {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow", "Action": "images:PutImage", "Resource": "*",
            "Condition": {"DateLessThan": {"aws:CurrentTime": deadline.strftime("%Y-%m-%dT%H:%M:%SZ")}},
        }],
    })  # fmt: skip
    answers = []
    for _ in range(4):
        answers.append(guard.authorize(sessions["shyam"], "images:PutImage", RESOURCES[0]).allowed)
        answers.append(guard.authorize(sessions["shyam"], "images:PutImage", RESOURCES[0]).allowed)
        clock.now += timedelta(seconds=1)
    assert answers == [True, True, True, True, False, False, False, False]


def test_decisions_that_read_no_context_are_shared(
    team: tuple[Guard, IAM, Clock, dict[str, Session]],
) -> None:
    """Requests differing only in context keys no policy reads hit the same cache entry."""
    guard, _, _, sessions = team
    first = guard.authorize(
        sessions["ram"], "images:GetImage", RESOURCES[0], {"aws:SourceIp": "1.2.3.4"}
    )
    again = guard.authorize(
        sessions["ram"], "images:GetImage", RESOURCES[0], {"aws:SourceIp": "5.6.7.8"}
    )
    third = guard.authorize(
        sessions["ram"], "images:GetImage", RESOURCES[0], {"aws:SourceIp": "9.9.9.9"}
    )
    assert again is third and first.allowed and again.allowed  # one cache entry
    # The cache keeps the decision without its context: the request's own is most of its size.
    assert again.statements == first.statements and again.request.context == {}
    assert (guard.hits, guard.misses) == (2, 1)
    assert guard.hit_ratio == 2 / 3


def test_context_a_policy_reads_is_part_of_the_key(
    team: tuple[Guard, IAM, Clock, dict[str, Session]],
) -> None:
    """When a policy reads aws:SourceIp, requests from different addresses are decided apart."""
    guard, iam, _, sessions = team
    iam.put_user_policy("ram", "office", {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny", "Action": "images:*", "Resource": "*",
            "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        }],
    })  # fmt: skip
    inside: dict[str, Any] = {"aws:SourceIp": "10.1.2.3"}
    outside: dict[str, Any] = {"aws:SourceIp": "203.0.113.9"}
    assert guard.authorize(sessions["ram"], "images:GetImage", RESOURCES[0], inside).allowed
    assert not guard.authorize(sessions["ram"], "images:GetImage", RESOURCES[0], outside).allowed
    assert guard.authorize(sessions["ram"], "images:GetImage", RESOURCES[0], inside).allowed


KEYS = [
    "aws:username", "aws:userid", "aws:principaltag/team", "aws:principaltype",
    "aws:principalarn", "aws:currenttime", "aws:epochtime", "aws:multifactorauthpresent",
    "aws:multifactorauthage", "aws:tokenissuetime", "aws:sourceip", "app:tier",
]  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    context=st.dictionaries(
        st.sampled_from(KEYS).map(lambda k: k.upper() if len(k) % 2 else k),
        st.one_of(st.text(max_size=5), st.booleans(), st.lists(st.text(max_size=3), max_size=2)),
        max_size=4,
    ),
)
def test_the_key_reads_the_values_the_full_context_gives(
    team: tuple[Guard, IAM, Clock, dict[str, Session]], context: dict[str, Any]
) -> None:
    """For any request context, the values the cache key holds are those evaluation reads."""
    guard, _, _, sessions = team
    session = sessions["ram"]
    view = guard.authorizer.principal(session.principal)
    assert view is not None
    read = tuple(sorted(KEYS))
    request = guard._request(session, view, "images:GetImage", RESOURCES[0], context)
    full = request.normalized_context
    assert guard.context_values(read, session, view, context) == tuple(
        (k, full.get(k)) for k in read
    )


def test_every_denial_is_an_audit_event(
    team: tuple[Guard, IAM, Clock, dict[str, Session]], caplog: pytest.LogCaptureFixture
) -> None:
    """A denied request, fresh or from the cache, is an access.denied event; an allowed one is
    not; no event holds a token."""
    guard, _, _, sessions = team
    caplog.set_level("INFO", logger="iamguard.audit")
    for _ in range(2):
        guard.authorize(sessions["ram"], "images:DeleteImage", RESOURCES[0])
    guard.authorize(sessions["ram"], "images:GetImage", RESOURCES[0])
    events = [r.audit for r in caplog.records if r.audit["event"] == "access.denied"]
    assert events == [
        {"event": "access.denied", "principal": sessions["ram"].principal,
         "action": "images:DeleteImage", "resource": RESOURCES[0], "effect": "ImplicitDeny",
         "reason": "no identity-based policy allows"},
    ] * 2  # fmt: skip
    assert "eyJ" not in caplog.text  # no JWT
