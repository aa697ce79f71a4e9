"""The read model stays bounded, and drops exactly what a change touched."""

from __future__ import annotations

from iamguard.iam import IAM, create_account
from iamguard.readmodel import ReadModel
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
