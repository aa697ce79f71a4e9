"""Several processes share one store: changes made in one are enforced by the others in time,
and concurrent management calls lose nothing. Every test runs real processes."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from iamguard.iam import IAM, create_account
from iamguard.stores import open_store

ACCOUNT = "123456789012"
IMAGE = f"arn:iamguard:images::{ACCOUNT}:image/1"
RAM = f"arn:iamguard:iam::{ACCOUNT}:user/ram"
READ_IMAGES = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "images:GetImage", "Resource": "*"}],
}
# Image 1's own policy, naming ram: it allows him as long as he exists, with no policy of his.
RAM_MAY_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": RAM}, "Action": "images:GetImage",
         "Resource": IMAGE},
    ],
}  # fmt: skip
# How soon another process must enforce a change (the documented propagation times, as
# medians); whatever the load, no change may wait longer than the fallback poll plus a margin.
DEADLINES = {"sqlite": 1.0, "postgresql": 0.1}
FALLBACK_BOUND = 2.0

# Process B: decides ram's request over and over (under the resource policy given as JSON, if
# any), and reports when the answer changes, with the time on the machine-wide monotonic clock
# (the same clock in every process on Linux).
_WATCHER = textwrap.dedent(
    """
    import sys, time
    from iamguard import Policy
    from iamguard.authorizer import Authorizer
    from iamguard.stores import open_store

    url, principal, action, resource, given = sys.argv[1:6]
    policy = Policy.parse(given, "resource") if given else None
    store = open_store(url)
    authorizer = Authorizer(store)

    def decide():
        return authorizer.authorize(principal, action, resource, resource_policy=policy)

    last = decide().effect.value
    print("ready", last, flush=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        effect = decide().effect.value
        if effect != last:
            print("changed", effect, time.monotonic(), flush=True)
            last = effect
            if sys.stdin.readline().strip() == "stop":
                break
        time.sleep(0.002)
    authorizer.read_model.close()
    store.close()
    """
)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    """``script`` run by this Python in a process of its own, talking over stdin and stdout."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def stop(process: subprocess.Popen[str]) -> None:
    """Kill ``process`` (if it still runs), reap it and close its pipes."""
    process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def release(workers: Sequence[subprocess.Popen[str]]) -> None:
    """Wait until every worker has said `ready`, then let them all go at once."""
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.close()


@contextmanager
def watcher(
    url: str, initially: str = "ImplicitDeny", resource_policy: dict[str, Any] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Process B, watching ram's images:GetImage decision (under ``resource_policy``, if given);
    ready when this yields."""
    given = "" if resource_policy is None else json.dumps(resource_policy)
    process = spawn(_WATCHER, url, RAM, "images:GetImage", IMAGE, given)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().split() == ["ready", initially]
        yield process
    finally:
        stop(process)


def next_change(process: subprocess.Popen[str]) -> tuple[str, float]:
    """The decision process B switched to, and when."""
    assert process.stdout is not None
    word, effect, when = process.stdout.readline().split()
    assert word == "changed"
    return effect, float(when)


def team(url: str) -> IAM:
    """Ram in `developers`; a managed policy that reads images, not yet attached."""
    store = open_store(url)
    create_account(store, email="root@example.com", password="Sup3r-secret!", account_id=ACCOUNT)
    iam = IAM(store, ACCOUNT)
    iam.create_user("ram")
    iam.create_group("developers")
    iam.add_user_to_group("developers", "ram")
    iam.create_policy("ReadImages", READ_IMAGES)
    return iam


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def test_policy_and_membership_changes_propagate(store_url: str) -> None:
    """Attaching a policy in A allows in B; detaching it, or removing ram from the group, denies
    in B. Over six changes, counted from each commit, the median delay is within the documented
    time (100 ms on PostgreSQL, 1 s on SQLite) and none exceeds the fallback poll's bound."""
    iam = team(store_url)
    arn = f"arn:iamguard:iam::{ACCOUNT}:policy/ReadImages"
    changes = [
        ("Allow", lambda: iam.attach_group_policy("developers", arn)),
        ("ImplicitDeny", lambda: iam.detach_group_policy("developers", arn)),
    ] * 2 + [
        ("Allow", lambda: iam.attach_group_policy("developers", arn)),
        ("ImplicitDeny", lambda: iam.remove_user_from_group("developers", "ram")),
    ]  # fmt: skip
    delays = []
    try:
        with watcher(store_url) as process:
            assert process.stdin is not None
            for expected, change in changes:
                change()
                committed = time.monotonic()
                effect, when = next_change(process)
                assert effect == expected
                delays.append(when - committed)
                process.stdin.write("continue\n")
                process.stdin.flush()
    finally:
        iam.store.close()
    assert statistics.median(delays) < DEADLINES[_kind(store_url)], delays
    assert max(delays) < FALLBACK_BOUND, delays


def test_user_deletion_propagates(store_url: str) -> None:
    """Deleting ram in A makes his ARN implicitly denied in B, where a resource policy naming
    him (and no policy of his own) allowed him, well within the fallback poll's bound (the
    median test times it closely)."""
    iam = team(store_url)
    iam.remove_user_from_group("developers", "ram")
    try:
        with watcher(store_url, initially="Allow", resource_policy=RAM_MAY_READ) as process:
            iam.delete_user("ram")
            committed = time.monotonic()
            effect, when = next_change(process)
            assert effect == "ImplicitDeny"
            assert when - committed < FALLBACK_BOUND
    finally:
        iam.store.close()


_ADDER = textwrap.dedent(
    """
    import sys
    from iamguard.iam import IAM
    from iamguard.stores import open_store

    url, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(url)
    iam = IAM(store, "123456789012")
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        iam.create_user(f"{prefix}{i}")
        iam.add_user_to_group("developers", f"{prefix}{i}")
    store.close()
    """
)


def test_concurrent_membership_additions_lose_nothing(store_url: str) -> None:
    """Two processes adding 25 users each to one group at the same time: all 50 are members."""
    iam = team(store_url)
    try:
        workers = [spawn(_ADDER, store_url, prefix, "25") for prefix in ("a", "b")]
        release(workers)
        for worker in workers:
            assert worker.wait(timeout=120) == 0
            assert worker.stdout is not None
            worker.stdout.close()
        members = {u.name for u in iam.get_group_users("developers")}
        expected = {"ram"} | {f"{p}{i}" for p in "ab" for i in range(25)}
        assert members == expected
    finally:
        iam.store.close()


@pytest.mark.parametrize("quota", [2])
def test_concurrent_access_keys_never_exceed_the_quota(store_url: str, quota: int) -> None:
    """Three processes each creating access keys for ram at once: exactly two exist."""
    iam = team(store_url)
    script = textwrap.dedent(
        """
        import sys
        from iamguard.errors import LimitExceeded
        from iamguard.iam import IAM
        from iamguard.stores import open_store

        store = open_store(sys.argv[1])
        iam = IAM(store, "123456789012")
        print("ready", flush=True)
        sys.stdin.readline()
        made = 0
        for _ in range(3):
            try:
                iam.create_access_key("ram")
                made += 1
            except LimitExceeded:
                pass
        print(made, flush=True)
        store.close()
        """
    )
    try:
        workers = [spawn(script, store_url) for _ in range(3)]
        release(workers)
        made = []
        for worker in workers:
            assert worker.stdout is not None
            made.append(int(worker.stdout.readline()))
            assert worker.wait(timeout=60) == 0
            worker.stdout.close()
        assert sum(made) == quota
        assert len(iam.list_access_keys("ram")) == quota
    finally:
        iam.store.close()
