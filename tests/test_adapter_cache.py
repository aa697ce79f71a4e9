"""The adapter's cached decision path is invisible: through the Starlette example app, every
answer equals what a fresh guard (new key ring, token verifier, read model; nothing cached)
answers, while random model changes, revocations, deletions and the passing of time interleave
with the requests."""

from __future__ import annotations

import random
import warnings
from collections import Counter
from contextlib import suppress
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.exceptions import StarletteDeprecationWarning
from test_guard import ACCOUNT, NO_DELETE, USERS, Clock, mutate

from iamguard.cli_demo import example_module
from iamguard.errors import IAMGuardError, NotAuthenticated
from iamguard.guard import Guard
from iamguard.iam import IAM
from iamguard.modelfile import load_model
from iamguard.stores.base import Store

with warnings.catch_warnings():  # starlette 1.x prefers `httpx2`; the venv has `httpx`
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

TEAM = Path(__file__).resolve().parents[1] / "examples" / "team.yaml"
IMAGE = f"arn:iamguard:images::{ACCOUNT}:image/"
# (method, path, action, resource): the app's routes, over images that exist and that do not
REQUESTS = [
    ("GET", "/images", "images:ListImages", IMAGE + "*"),
    *[
        (method, f"/images/{image}", action, IMAGE + image)
        for image in ("1", "home/ram/cat.png", "home/shyam/new.png", "shared/c")
        for method, action in (
            ("GET", "images:GetImage"),
            ("PUT", "images:PutImage"),
            ("DELETE", "images:DeleteImage"),
        )
    ],
]
HOUR = 3600
AGENTS = ["curl/8.5", "blocked-bot/1.0"]  # a policy may deny the second by aws:UserAgent
BLOCK_AGENT = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Deny", "Action": "images:*", "Resource": "*",
        "Condition": {"StringLike": {"aws:UserAgent": "blocked-*"}},
    }],
}  # fmt: skip


def deny_after(moment: datetime) -> dict[str, object]:
    """A policy denying everything once ``aws:CurrentTime`` passes ``moment``."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": "images:*", "Resource": "*",
        "Condition": {"DateGreaterThan": {"aws:CurrentTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}},
    }]}  # fmt: skip


def new_token(guard: Guard, name: str) -> str:
    """A session token for ``name`` from a fresh access key (its old keys deleted: at most two)."""
    iam = IAM(guard.store, ACCOUNT)
    for old in iam.list_access_keys(name):
        iam.delete_access_key(name, old.access_key_id)
    key = iam.create_access_key(name)
    return guard.sts.get_session_token(
        ACCOUNT, access_key_id=key.access_key.access_key_id,
        secret_access_key=key.secret_access_key, duration_seconds=HOUR,
    ).session_token  # fmt: skip


def delete_user(iam: IAM, name: str) -> None:
    """Delete a user the way an admin must: credentials, memberships and policies first."""
    for key in iam.list_access_keys(name):
        iam.delete_access_key(name, key.access_key_id)
    for group in iam.list_groups_for_user(name):
        iam.remove_user_from_group(group, name)
    for policy in iam.list_user_policies(name):
        iam.delete_user_policy(name, policy)
    for attached in iam.list_attached_user_policies(name):
        iam.detach_user_policy(name, attached.policy_arn)
    iam.delete_user(name)


def fresh_status(
    store: Store, clock: Clock, token: str, action: str, resource: str, agent: str
) -> str:
    """What a guard with nothing cached decides: unauthenticated, allowed or denied."""
    guard = Guard(store, clock=clock)
    try:
        session = guard.authenticate(token)
    except NotAuthenticated:
        return "unauthenticated"
    else:
        context = {"aws:UserAgent": agent}
        decision = guard.authorizer.authorize_session(session, action, resource, context)
        return "allowed" if decision.allowed else "denied"
    finally:
        guard.authorizer.read_model.close()


def answer(status: int) -> str:
    """The HTTP status as a decision: an allowed request may still find no image (404)."""
    return {401: "unauthenticated", 403: "denied", 200: "allowed", 404: "allowed"}[status]


def change(
    guard: Guard, iam: IAM, clock: Clock, tokens: dict[str, str], rng: random.Random
) -> None:
    """One random change: a model edit, a revocation, a deletion or re-creation, time passing
    (within the second, or beyond), or a policy reading the clock or the user agent."""
    name = rng.choice(USERS)
    exists = name in {user.name for user in iam.list_users()}
    kind = rng.randrange(12)
    if not exists:
        if kind < 5:  # re-create: the old token stays dead, a new one works
            iam.create_user(name)
            iam.add_user_to_group(rng.choice(["developers", "admins"]), name)
            tokens[name] = new_token(guard, name)
        return
    if kind == 0:
        with suppress(NotAuthenticated):  # unless already expired or revoked
            guard.sts.revoke_session(guard.sts.authenticate(tokens[name]))
    elif kind == 1:
        guard.sts.revoke_older_sessions(ACCOUNT, "user", name)
        if rng.random() < 0.5:
            clock.now += timedelta(seconds=rng.choice([0, 1, 2]))
            tokens[name] = new_token(guard, name)
    elif kind == 2:
        delete_user(iam, name)
    elif kind in (3, 4):
        tokens[name] = new_token(guard, name)
    elif kind == 5:
        clock.now += rng.choice([0.3, 1, 59, HOUR // 2, HOUR + 31]) * timedelta(seconds=1)
    elif kind == 6:
        iam.put_user_policy(name, "no-delete", NO_DELETE)
    elif kind in (7, 9):
        iam.put_user_policy(name, "until", deny_after(clock.now + timedelta(seconds=1)))
    elif kind == 8:
        iam.put_user_policy(name, "agent", BLOCK_AGENT)
    else:
        mutate(iam, rng)


HITS: Counter[str] = Counter()  # over every example: one may hit no cache (all tokens expired)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def compare_adapter_with_fresh_evaluation(seed: int) -> None:
    rng = random.Random(seed)
    store, _ = load_model(TEAM)
    iam = IAM(store, ACCOUNT)
    iam.create_policy("Extra", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "images:PutImage", "Resource": IMAGE + "*"}]})  # fmt: skip
    clock = Clock()
    guard = Guard(store, clock=clock)
    tokens = {name: new_token(guard, name) for name in USERS}
    compared = 0
    asked: list[tuple[str, tuple[str, str, str, str]]] = []
    with TestClient(example_module("images_starlette").create_app(guard)) as client:
        for _ in range(10):
            try:
                change(guard, iam, clock, tokens, rng)
            except IAMGuardError as error:  # a change that does not apply here
                assert error.code in ("NoSuchEntity", "EntityAlreadyExists", "LimitExceeded")
            for _ in range(5):
                # Half the time a request asked before (the caches then hold its answer).
                if asked and rng.random() < 0.5:
                    name, request = rng.choice(asked)
                else:
                    name, request = rng.choice(USERS), rng.choice(REQUESTS)
                    asked.append((name, request))
                method, path, action, resource = request
                first, second = rng.sample(AGENTS, 2)
                for agent in (first, first, second):  # again, then from another user agent
                    if rng.random() < 0.3:
                        clock.now += timedelta(milliseconds=rng.choice([200, 700]))
                    headers = {"Authorization": f"Bearer {tokens[name]}", "User-Agent": agent}
                    response = client.request(
                        method, path, headers=headers,
                        json={"Title": "t"} if method == "PUT" else None,
                    )  # fmt: skip
                    expected = fresh_status(store, clock, tokens[name], action, resource, agent)
                    assert answer(response.status_code) == expected, (
                        seed, name, method, path, agent, response.status_code, response.text,
                    )  # fmt: skip
                    compared += 1
    assert compared == 150
    HITS.update(decisions=guard.hits, requests=guard.requests.hits)


def test_adapter_answers_equal_fresh_evaluation() -> None:
    HITS.clear()
    compare_adapter_with_fresh_evaluation()
    # Else this test would not see a stale answer from either cache.
    assert HITS["decisions"] > 0 and HITS["requests"] > 0, HITS
