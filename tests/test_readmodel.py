"""The read model stays bounded, drops exactly what a change touched, and fails closed when the
store cannot be reached."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from iamguard.errors import StoreUnavailable
from iamguard.iam import IAM, create_account
from iamguard.readmodel import ReadModel
from iamguard.stores.base import Change, Reader, Store, T, Writer
from iamguard.stores.memory import MemoryStore

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
