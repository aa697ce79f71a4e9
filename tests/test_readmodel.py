"""The read model stays bounded, drops exactly what a change touched, and fails closed when the
store cannot be reached."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from iamguard.errors import StoreUnavailable
from iamguard.guard import Guard
from iamguard.iam import IAM, create_account
from iamguard.policy import Decision
from iamguard.readmodel import ReadModel
from iamguard.sessions import Session
from iamguard.stores.base import Change, Reader, Store, T, Writer
from iamguard.stores.memory import MemoryStore
from iamguard.stores.sql import SQLStore

ACCOUNT = "123456789012"
READ = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "images:GetImage", "Resource": "*"}],
}


def team(users: int) -> IAM:
    store = MemoryStore()
    create_account(store, email="root@example.com", password="Sup3r-secret!", account_id=ACCOUNT)
    iam = IAM(store, ACCOUNT)
    policy = iam.create_policy("Read", READ)
    iam.create_group("developers")
    iam.attach_group_policy("developers", policy.arn)
    for i in range(users):
        iam.create_user(f"u{i}")
        iam.add_user_to_group("developers", f"u{i}")
    return iam


def test_evicted_views_leave_no_dependency_entries() -> None:
    """With room for 3 views, deciding for 50 users keeps the dependency index that small."""
    iam = team(50)
    model = ReadModel(iam.store, max_principals=3)
    for i in range(50):
        assert model.user(ACCOUNT, f"u{i}") is not None
    assert len(model._views) == 3
    entries = sum(len(keys) for keys in model._dependents.values())
    tokens_per_view = len(next(iter(model._views.values())).tokens)
    assert entries == 3 * tokens_per_view


def test_a_change_drops_only_the_views_that_depend_on_it() -> None:
    """Changing one user's policies reloads that user only; a group change reloads its members."""
    iam = team(3)
    model = ReadModel(iam.store)
    before = [model.user(ACCOUNT, f"u{i}") for i in range(3)]
    iam.put_user_policy("u0", "extra", READ)
    model.refresh(force=True)
    after = [model.user(ACCOUNT, f"u{i}") for i in range(3)]
    assert after[0] is not before[0]
    assert after[1:] == before[1:] and all(
        a is b for a, b in zip(after[1:], before[1:], strict=True)
    )
    iam.detach_group_policy("developers", f"arn:iamguard:iam::{ACCOUNT}:policy/Read")
    model.refresh(force=True)
    assert all(model.user(ACCOUNT, f"u{i}") is not after[i] for i in range(3))
    assert sum(len(keys) for keys in model._dependents.values()) == sum(
        len(v.tokens) for v in model._views.values() if v is not None
    )


class Reachable(Store):
    """Another process's view of a store: its own ``last_written``, and a link to the store
    that can be cut (``up = False``), as a network fault would; counts the version checks."""

    poll_interval = 1.0

    def __init__(self, store: Store) -> None:
        self._store = store
        self.up = True
        self.checks = 0

    def _reach(self) -> Store:
        if not self.up:
            raise StoreUnavailable("store `test`: connection refused")
        return self._store

    def read(self, fn: Callable[[Reader], T]) -> T:
        return self._reach().read(fn)

    def write(self, fn: Callable[[Writer], T]) -> T:
        return self._reach().write(fn)

    def version(self) -> int:
        self.checks += 1
        return self._reach().version()

    def changes_since(self, version: int) -> list[Change] | None:
        return self._reach().changes_since(version)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def cut_off_model() -> tuple[IAM, Reachable, Clock, ReadModel]:
    iam = team(2)
    link, clock = Reachable(iam.store), Clock()
    model = ReadModel(link, monotonic=clock)
    assert model.user(ACCOUNT, "u0") is not None
    link.checks = 0
    return iam, link, clock, model


def test_an_unreachable_store_fails_closed_after_the_poll_interval() -> None:
    """Cut off, the model answers from what it holds until ``poll_interval`` after its last
    good check, then raises ``StoreUnavailable`` on every refresh, for cached principals too."""
    _, link, clock, model = cut_off_model()
    link.up = False
    clock.now += 0.9
    model.refresh()  # within the interval: no check, what is held stands
    assert link.checks == 0
    clock.now += 0.1
    for _ in range(3):
        with pytest.raises(StoreUnavailable, match="connection refused"):
            model.refresh()
        clock.now += 0.3


def test_a_failed_check_is_not_repeated_before_the_poll_interval() -> None:
    """After a failed check, refreshes raise at once without asking the store, until the poll
    interval has passed; a change notification or ``force`` asks again at once."""
    _, link, clock, model = cut_off_model()
    link.up = False
    clock.now += 1.0
    with pytest.raises(StoreUnavailable):
        model.refresh()
    assert link.checks == 1
    clock.now += 0.5
    with pytest.raises(StoreUnavailable):
        model.refresh()
    assert link.checks == 1
    model.notify(model.version + 1)
    with pytest.raises(StoreUnavailable):
        model.refresh()
    assert link.checks == 2
    with pytest.raises(StoreUnavailable):
        model.refresh(force=True)
    assert link.checks == 3


def test_recovery_sees_the_changes_made_while_cut_off() -> None:
    """Changes committed elsewhere during the outage are applied at the first good check:
    the user who lost his group's policy is reloaded without it."""
    iam, link, clock, model = cut_off_model()
    before = model.user(ACCOUNT, "u0")
    link.up = False
    clock.now += 1.0
    with pytest.raises(StoreUnavailable):
        model.refresh()
    iam.detach_group_policy("developers", f"arn:iamguard:iam::{ACCOUNT}:policy/Read")
    link.up = True
    clock.now += 1.0
    model.refresh()
    after = model.user(ACCOUNT, "u0")
    assert before is not None and after is not None and after is not before
    assert len(before.identity) == 1 and len(after.identity) == 0
    assert model.version == iam.store.version()


def test_a_store_that_went_back_in_time_is_reloaded(caplog: pytest.LogCaptureFixture) -> None:
    """A store whose version is lower than the model's (restored from a backup) makes the
    model drop everything and follow it, with a warning, rather than wait to catch up."""
    iam, _, clock, model = cut_off_model()
    old = iam.store
    restored = team(1).store  # a backup from before u1 joined: an older version
    model.store = Reachable(restored)
    assert restored.version() < old.version()
    clock.now += 1.0
    with caplog.at_level(logging.WARNING, logger="iamguard.readmodel"):
        model.refresh()
    assert model.version == restored.version()
    assert not model._views
    assert any("went back" in r.getMessage() for r in caplog.records)


# --- one decision, one model state ----------------------------------------------------------------

ONE, TWO = "arn:iamguard:orders::123456789012:order/1", "arn:iamguard:orders::123456789012:order/2"
STATE_A = {  # allows GetOrder on every order but order 1
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"},
        {"Effect": "Deny", "Action": "orders:GetOrder", "Resource": ONE},
    ],
}
STATE_B = {  # allows ListOrders only
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "orders:ListOrders", "Resource": "*"}],
}
# Each request's decision under A and under B. Identity policies of one state with the session
# policy of the other would give another: "no session policy allows".
NO_IDENTITY_ALLOW = ("ImplicitDeny", "no identity-based policy allows")
DECISIONS = {
    ("orders:GetOrder", ONE): (("ExplicitDeny", "explicit deny"), NO_IDENTITY_ALLOW),
    ("orders:GetOrder", TWO): (("Allow", "allowed"), NO_IDENTITY_ALLOW),
    ("orders:ListOrders", TWO): (NO_IDENTITY_ALLOW, ("Allow", "allowed")),
}


class Moving(Store):
    """Another process's view of a store whose state moves at chosen moments: the functions
    queued by ``before_read`` run just before the next read begins, those queued by
    ``after_read`` just after it ends (each commits a write through another store object)."""

    poll_interval = 3600.0  # the model takes in a change only when a read shows it

    def __init__(self, store: Store) -> None:
        self._store = store
        self.before: list[Callable[[], object]] = []
        self.after: list[Callable[[], object]] = []
        self.reads = 0

    def before_read(self, *fns: Callable[[], object]) -> None:
        self.before.extend(fns)

    def after_read(self, *fns: Callable[[], object]) -> None:
        self.after.extend(fns)

    def read(self, fn: Callable[[Reader], T]) -> T:
        if self.before:
            self.before.pop(0)()
        self.reads += 1
        result = self._store.read(fn)
        if self.after:
            self.after.pop(0)()
        return result

    def write(self, fn: Callable[[Writer], T]) -> T:
        return self._store.write(fn)

    def version(self) -> int:
        return self._store.version()

    def changes_since(self, version: int) -> list[Change] | None:
        return self._store.changes_since(version)


@pytest.fixture(params=["memory", "sqlite"])
def moving(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[IAM, Moving]]:
    """ram, with policy Orders (v1: state A, the default; v2: state B) attached and managed
    through one store object; and ``Moving`` over another object on the same store."""
    if request.param == "memory":
        store: Store = MemoryStore()
        other: Store = store
    else:
        store = SQLStore(f"sqlite:///{tmp_path / 'iamguard.db'}")
        other = SQLStore(f"sqlite:///{tmp_path / 'iamguard.db'}")
    create_account(store, email="root@example.com", password="Sup3r-secret!", account_id=ACCOUNT)
    iam = IAM(store, ACCOUNT)
    iam.create_user("ram")
    policy = iam.create_policy("Orders", STATE_A)
    iam.create_policy_version(policy.arn, STATE_B)
    iam.attach_user_policy("ram", policy.arn)
    try:
        yield iam, Moving(other)
    finally:
        store.close()
        other.close()


def ram_session(iam: IAM) -> Session:
    user = iam.get_user("ram")
    now = int(time.time())
    return Session(
        principal=user.arn, principal_type="User", account=ACCOUNT, user_id=user.user_id,
        issued_at=now, expires_at=now + 3600, token_id="t", name="ram",
        policy_arns=(f"arn:iamguard:iam::{ACCOUNT}:policy/Orders",),
    )  # fmt: skip


def decisions(decide: Callable[[str, str], Decision]) -> set[int]:
    """Which states (0: A, 1: B) the decisions of the requests in ``DECISIONS`` agree with:
    each must agree with one, or it mixes the two."""
    states = set()
    for (action, resource), possible in DECISIONS.items():
        decision = decide(action, resource)
        seen = (decision.effect.value, decision.reason.value)
        assert seen in possible, f"{action} {resource}: {seen} is neither A's nor B's"
        states |= {i for i, p in enumerate(possible) if p == seen}
    return states


def flip(iam: IAM, version: str) -> Callable[[], None]:
    arn = f"arn:iamguard:iam::{ACCOUNT}:policy/Orders"
    return lambda: iam.set_default_policy_version(arn, version)


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("through", ["guard", "authorizer"])
def test_a_change_committed_between_the_reads_of_a_decision_is_never_half_seen(
    moving: tuple[IAM, Moving], warm: bool, through: str
) -> None:
    """A change to the policy that is both ram's identity policy and his session's managed
    policy commits after his view was read (from the store, or from the read model's cache) and
    before the session policy is: the decision is state B's, not A's identity policies with B's
    session policy, and the read model has caught up with the change."""
    iam, store = moving
    guard = Guard(store)
    model = guard.authorizer.read_model
    session = ram_session(iam)

    def decide(action: str, resource: str) -> Decision:
        if through == "guard":
            return guard.authorize(session, action, resource)
        return guard.authorizer.authorize_session(session, action, resource)

    if warm:
        assert model.user(ACCOUNT, "ram") is not None  # the view is cached; the policy is not
        store.before_read(flip(iam, "v2"))  # the next read: the session policy's
    else:
        store.after_read(flip(iam, "v2"))  # the next read: the view's
    generation = model.generation
    assert decisions(decide) == {1}
    assert model.version == store.version() and model.generation > generation
    assert not store.before and not store.after


def test_a_model_that_moves_on_every_read_still_decides_from_one_state(
    moving: tuple[IAM, Moving],
) -> None:
    """When every read shows a newer state, the principal and its session policies are read in
    one store transaction: each decision is still A's or B's, never a mixture."""
    iam, store = moving
    guard = Guard(store)
    session = ram_session(iam)
    seen: set[int] = set()
    for i in range(6):
        guard.authorizer.read_model.refresh(force=True)
        store.after_read(*[flip(iam, f"v{1 + (i + j) % 2}") for j in range(20)])
        reads = store.reads
        seen |= decisions(lambda a, r: guard.authorize(session, a, r))
        assert store.reads - reads > 6  # three attempts through the read model, then one read
        store.after.clear()
    assert seen == {0, 1}


def test_a_managed_policy_and_its_default_version_are_read_in_one_transaction(
    moving: tuple[IAM, Moving],
) -> None:
    """One read gets the policy and its default version; cached, neither is read again until
    the policy changes, and then both are read at once again."""
    iam, store = moving
    model = ReadModel(store)
    arn = f"arn:iamguard:iam::{ACCOUNT}:policy/Orders"
    first = model.managed_policy(ACCOUNT, arn)
    assert first is not None and "orders:GetOrder" in first.text
    assert store.reads == 1
    assert model.managed_policy(ACCOUNT, arn) is first
    assert store.reads == 1
    flip(iam, "v2")()
    model.refresh(force=True)
    second = model.managed_policy(ACCOUNT, arn)
    assert second is not None and "orders:ListOrders" in second.text
    assert store.reads == 2
