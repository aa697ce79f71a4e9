"""Management calls racing in several processes on one store keep IAM's promises.

Each test starts real processes, each opening a store object of its own on the same SQLite file
or PostgreSQL schema, and releases them at one moment (a file barrier) so that their calls
overlap. Then it checks what AWS promises: quotas hold however the calls interleave, a name is
created once, a delete either waits for what hangs off an entity or wins over it and leaves no
record naming it, every failure is an IAM error with AWS's code (never a database exception,
never a hang: every wait is bounded), and a request racing a policy change is decided under the
old policy or the new one, never a mixture of the two.
"""

from __future__ import annotations

import functools
import json
import random
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from iamguard.iam import IAM, Quotas, create_account
from iamguard.passwords import hash_password
from iamguard.stores import open_store
from iamguard.stores.base import Reader, Store

ACCOUNT = "123456789012"
QUOTAS = Quotas()  # AWS's: 10 groups per user, 5 versions per policy
DEADLINE = 60.0  # seconds from the start of a race to the exit of its last process
ORDERS = f"arn:iamguard:orders::{ACCOUNT}:order"
ALLOW_ALL_ORDERS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "orders:*", "Resource": "*"}],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
}

# One process of a race. Mode `iam` runs a plan of management calls and writes one outcome per
# call: [method, args, "ok" or AWS's error code, the returned version id or the error message,
# the model version this process last wrote]. Mode `guard` decides requests over and over until
# told to stop and writes how often it saw each decision; at the first decision that is not one
# of those possible it tells every process to stop. Either mode stops when the file `stop`
# appears. A failure that is not an iamguard error is reported as `raw`, with its type.
_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from iamguard.errors import IAMGuardError
    from iamguard.stores import open_store

    url, folder, me, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    plan = json.loads((folder / f"{me}.plan").read_text())
    stop = folder / "stop"

    def outcome(call):
        try:
            return "ok", call()
        except IAMGuardError as e:
            return e.code, str(e)
        except Exception as e:
            return "raw", f"{type(e).__module__}.{type(e).__qualname__}: {e}"

    def barrier():
        (folder / f"{me}.ready").touch()
        deadline = time.monotonic() + 60
        while not (folder / "go").exists():
            if time.monotonic() > deadline:
                sys.exit("never released")
            time.sleep(0.001)

    store = open_store(url)
    if mode == "iam":
        from iamguard.iam import IAM

        iam = IAM(store, plan["account"])
        barrier()
        results = []
        for method, args, kwargs in plan["calls"]:
            if stop.exists():
                break
            if method == "sleep":
                time.sleep(args[0])
                continue
            code, value = outcome(lambda: getattr(iam, method)(*args, **kwargs))
            detail = getattr(value, "version_id", None) if code == "ok" else value
            results.append([method, args, code, detail, store.last_written])
    else:
        from iamguard import Guard
        from iamguard.sessions import Session

        guard = Guard(store)
        sessions = [Session(**s) for s in plan["sessions"]]
        barrier()
        results = {}
        deadline = time.monotonic() + 60
        while not stop.exists() and time.monotonic() < deadline:
            guard.authorizer.read_model.refresh(force=True)  # see every change at once
            for number, session in enumerate(sessions):
                for action, resource, possible in plan["requests"]:
                    code, value = outcome(lambda: guard.authorize(session, action, resource))
                    if code == "ok":
                        seen = f"{value.effect.value}: {value.reason.value}"
                    else:
                        seen = f"{code}: {value}"
                    if seen not in possible:
                        stop.touch()
                    key = f"{number} {action} {resource} -> {seen}"
                    results[key] = results.get(key, 0) + 1
        guard.authorizer.read_model.close()
    (folder / f"{me}.out").write_text(json.dumps(results))
    store.close()
    """
)


@dataclass(frozen=True)
class Outcome:
    """One management call made in a race."""

    method: str
    args: tuple[Any, ...]
    code: str  # "ok", or AWS's error code
    detail: Any  # ok: the version id the call returned (if any); otherwise the error message
    written: int  # the model version its process had last written, after the call


Call = tuple[str, list[Any], dict[str, Any]]


def call(method: str, *args: Any, **kwargs: Any) -> Call:
    """A management call for a plan: ``IAM.<method>(*args, **kwargs)``."""
    return (method, list(args), kwargs)


def policy_arn(name: str) -> str:
    return f"arn:iamguard:iam::{ACCOUNT}:policy/{name}"


def allow(action: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
    }


_hash_once = functools.cache(hash_password)  # the root's argon2id hash, computed once


@pytest.fixture
def iam(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[IAM]:
    """The account, managed from this process's own store object."""
    monkeypatch.setattr("iamguard.iam.accounts.hash_password", _hash_once)
    store = open_store(store_url)
    try:
        create_account(store, email="root@example.com", password="Sup3r-secret!",
                       account_id=ACCOUNT)  # fmt: skip
        yield IAM(store, ACCOUNT)
    finally:
        store.close()


class Race:
    """Processes started together on one store; ``finish`` collects what each of them saw."""

    def __init__(self, url: str, folder: Path, jobs: Sequence[tuple[str, Any]]) -> None:
        self.folder = folder
        self.start = time.monotonic()
        folder.mkdir()
        self.processes: list[subprocess.Popen[bytes]] = []
        with ExitStack() as logs:
            for number, (mode, plan) in enumerate(jobs):
                (folder / f"{number}.plan").write_text(json.dumps(plan))
                log = logs.enter_context((folder / f"{number}.err").open("wb"))
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-c", _WORKER, url, str(folder), str(number), mode],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                ))  # fmt: skip
        try:
            while not all((folder / f"{n}.ready").exists() for n in range(len(jobs))):
                for number, process in enumerate(self.processes):
                    if process.poll() is not None:
                        pytest.fail(f"process {number} ended before the start: "
                                    f"{self.stderr(number)}")  # fmt: skip
                if self.overdue():
                    pytest.fail(f"the processes were not ready within {DEADLINE:g} s")
                time.sleep(0.005)
        except BaseException:
            self.kill()
            raise
        (folder / "go").touch()

    def stderr(self, number: int) -> str:
        return (self.folder / f"{number}.err").read_text(errors="replace")[-3000:]

    def overdue(self) -> bool:
        return time.monotonic() - self.start > DEADLINE

    def running(self) -> bool:
        return any(p.poll() is None for p in self.processes)

    def wait(self, number: int) -> Any:
        """What process ``number`` wrote, once it has ended (a failure if it hangs)."""
        left = max(0.1, self.start + DEADLINE - time.monotonic())
        try:
            status = self.processes[number].wait(timeout=left)
        except subprocess.TimeoutExpired:
            pytest.fail(f"process {number} hangs: still running after {DEADLINE:g} s")
        assert status == 0, f"process {number} failed: {self.stderr(number)}"
        return json.loads((self.folder / f"{number}.out").read_text())

    def finish(self) -> list[Any]:
        return [self.wait(n) for n in range(len(self.processes))]

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def racing(url: str, folder: Path, jobs: Sequence[tuple[str, Any]]) -> Iterator[Race]:
    """A ``Race``; whatever happens, none of its processes outlives the test."""
    started = Race(url, folder, jobs)
    try:
        yield started
    finally:
        started.kill()


def race(
    url: str, folder: Path, plans: Sequence[Sequence[Call]],
    during: Callable[[], None] | None = None,
) -> list[list[Outcome]]:  # fmt: skip
    """Run each plan in a process of its own, all at once; ``during`` is called over and over
    while they run. The outcomes, per process, in the order of its calls."""
    jobs = [("iam", {"account": ACCOUNT, "calls": list(plan)}) for plan in plans]
    with racing(url, folder, jobs) as started:
        while during is not None and started.running() and not started.overdue():
            during()
            time.sleep(0.005)
        return [
            [Outcome(m, tuple(a), c, d, w) for m, a, c, d, w in out] for out in started.finish()
        ]


def only(outcomes: Sequence[Sequence[Outcome]], allowed: dict[str, set[str]]) -> list[Outcome]:
    """Every outcome, flattened, after checking each failure is one of the AWS codes ``allowed``
    for its method (a database exception, reported as ``raw``, never is)."""
    flat = [o for out in outcomes for o in out]
    unexpected = [o for o in flat if o.code != "ok" and o.code not in allowed.get(o.method, ())]
    assert not unexpected, unexpected[:5]
    return flat


def tally(outcomes: Sequence[Outcome], method: str) -> Counter[str]:
    """How often calls of ``method`` ended with each code."""
    return Counter(o.code for o in outcomes if o.method == method)


def membership_changes(store: Store, user: str) -> list[tuple[int, str]]:
    """``(version, group)`` for every membership of ``user`` inserted or deleted, oldest first."""
    log = store.changes_since(0)
    assert log is not None
    prefix = f"{user.lower()} "
    return [
        (c.version, c.key[len(prefix):]) for c in log
        if c.kind == "membership" and c.account == ACCOUNT and c.key.startswith(prefix)
    ]  # fmt: skip


def integrity_problems(tx: Reader) -> list[str]:
    """Records naming an entity that does not exist, and policies whose versions or counts do
    not add up (their default missing, not exactly one version flagged default, too many)."""

    def names(kind: str) -> set[str]:
        return {r["name"].lower() for r in tx.find(kind, ACCOUNT)}

    owners = {kind: names(kind) for kind in ("user", "group", "role")}
    policies = {p["name"].lower(): p for p in tx.find("policy", ACCOUNT)}
    problems = []

    def owner_exists(owner: str) -> bool:
        kind, _, name = owner.partition("/")
        return name.lower() in owners.get(kind, set())

    def policy_exists(arn: str) -> bool:
        found = policies.get(arn.rsplit("/", 1)[-1].lower())
        return found is not None and found["arn"] == arn

    for m in tx.find("membership", ACCOUNT):
        if m["user"].lower() not in owners["user"] or m["group"].lower() not in owners["group"]:
            problems.append(f"membership of a missing user or group: {m}")
    for kind in ("access_key", "login_profile", "password_history"):
        problems += [
            f"{kind} of a missing user: {r}" for r in tx.find(kind, ACCOUNT)
            if r["user"].lower() not in owners["user"]
        ]  # fmt: skip
    for kind in ("attachment", "boundary"):
        problems += [
            f"{kind} of a missing owner or policy: {r}" for r in tx.find(kind, ACCOUNT)
            if not (owner_exists(r["owner"]) and policy_exists(r["policy_arn"]))
        ]  # fmt: skip
    problems += [
        f"inline policy of a missing owner: {r['owner']}/{r['name']}"
        for r in tx.find("inline_policy", ACCOUNT) if not owner_exists(r["owner"])
    ]  # fmt: skip
    versions: dict[str, list[dict[str, Any]]] = {}
    for v in tx.find("policy_version", ACCOUNT):
        if not policy_exists(v["policy_arn"]):
            problems.append(f"version {v['version_id']} of a missing policy {v['policy_arn']}")
        versions.setdefault(v["policy_arn"].rsplit("/", 1)[-1].lower(), []).append(v)
    for key, policy in policies.items():
        mine = versions.get(key, [])
        flagged = sorted(v["version_id"] for v in mine if v["is_default"])
        if flagged != [policy["default_version_id"]]:
            problems.append(
                f"policy {policy['name']}: default {policy['default_version_id']}, "
                f"versions flagged default {flagged}"
            )
        if len(mine) > QUOTAS.versions_per_policy:
            problems.append(f"policy {policy['name']}: {len(mine)} versions")
        attached = tx.count("attachment", ACCOUNT, ref=policy["arn"])
        if policy["attachment_count"] != attached:
            problems.append(
                f"policy {policy['name']}: attachment count {policy['attachment_count']}, "
                f"attached {attached} times"
            )
    return problems


# --- memberships ---------------------------------------------------------------------------------


def test_groups_per_user_quota_holds_when_adds_race(
    store_url: str, iam: IAM, tmp_path: Path
) -> None:
    """Three processes adding ram to five distinct groups each (15 in all): exactly ten adds
    succeed, the other five fail with LimitExceeded, and ram is in exactly those ten."""
    limit = QUOTAS.groups_per_user
    iam.create_user("ram")
    groups = [f"g{i:02}" for i in range(15)]
    for group in groups:
        iam.create_group(group)
    plans = [[call("add_user_to_group", g, "ram") for g in groups[k::3]] for k in range(3)]
    outcomes = only(race(store_url, tmp_path / "race", plans), {
        "add_user_to_group": {"LimitExceeded"},
    })  # fmt: skip
    assert tally(outcomes, "add_user_to_group") == {"ok": limit, "LimitExceeded": 15 - limit}
    added = {o.args[0] for o in outcomes if o.code == "ok"}
    assert set(iam.list_groups_for_user("ram")) == added
    assert iam.read(integrity_problems) == []


def test_groups_per_user_quota_holds_while_memberships_churn(
    store_url: str, iam: IAM, tmp_path: Path
) -> None:
    """Ram in nine groups; three processes each adding him to a group of its own and removing
    him again, ten times: replayed from the change log, he is never in an eleventh group; each
    add succeeds or fails with LimitExceeded, each remove succeeds exactly when that process's
    add did (NoSuchEntity otherwise), and he ends in the nine groups."""
    base = [f"base{i}" for i in range(QUOTAS.groups_per_user - 1)]
    iam.create_user("ram")
    for group in [*base, "c0", "c1", "c2"]:
        iam.create_group(group)
        if group in base:
            iam.add_user_to_group(group, "ram")
    plans = [
        [call(m, f"c{k}", "ram") for _ in range(10)
         for m in ("add_user_to_group", "remove_user_from_group")]
        for k in range(3)
    ]  # fmt: skip
    outcomes = race(store_url, tmp_path / "race", plans)
    only(outcomes, {
        "add_user_to_group": {"LimitExceeded"}, "remove_user_from_group": {"NoSuchEntity"},
    })  # fmt: skip
    for mine in outcomes:
        for add, remove in zip(mine[::2], mine[1::2], strict=True):
            assert (add.code == "ok") == (remove.code == "ok"), (add, remove)
    members: set[str] = set()  # the log reaches back to the base memberships' insertion
    most = 0
    for _, group in membership_changes(iam.store, "ram"):
        members ^= {group}
        most = max(most, len(members))
    assert most <= QUOTAS.groups_per_user
    assert set(iam.list_groups_for_user("ram")) == set(base) == members


def test_racing_adds_and_removes_end_as_the_calls_imply(
    store_url: str, iam: IAM, tmp_path: Path
) -> None:
    """Three processes adding and removing ram and sam to and from three groups, five rounds,
    then each adding them to `keep` once more: the remove calls that succeeded are exactly the
    memberships the change log shows deleted (none lost, none invented), adds never fail, and
    the two end in `keep` only (every process's last call there is an add, elsewhere a
    remove)."""
    users, groups = ["ram", "sam"], ["keep", "drop0", "drop1"]
    for user in users:
        iam.create_user(user)
    for group in groups:
        iam.create_group(group)
    rounds = [
        call(method, group, user) for _ in range(5)
        for method in ("add_user_to_group", "remove_user_from_group")
        for user in users for group in groups
    ]  # fmt: skip
    plans = [rounds + [call("add_user_to_group", "keep", u) for u in users]] * 3
    outcomes = only(race(store_url, tmp_path / "race", plans), {
        "remove_user_from_group": {"NoSuchEntity"},
    })  # fmt: skip
    for user in users:
        changes = Counter(group for _, group in membership_changes(iam.store, user))
        removed = Counter(
            o.args[0] for o in outcomes
            if o.method == "remove_user_from_group" and o.args[1] == user and o.code == "ok"
        )  # fmt: skip
        # a membership's changes alternate: insert, delete, insert, ...
        assert {g: n // 2 for g, n in changes.items() if n // 2} == dict(removed), user
        assert {g for g, n in changes.items() if n % 2} == {"keep"}, user
        assert iam.list_groups_for_user(user) == ["keep"]
    assert iam.read(integrity_problems) == []


# --- policy versions -----------------------------------------------------------------------------


def test_policy_version_quota_holds_when_creates_race(
    store_url: str, iam: IAM, tmp_path: Path
) -> None:
    """Three processes creating three versions each of a policy that has one: exactly four
    succeed (five versions, AWS's quota), five fail with LimitExceeded, and the versions are
    v1 to v5, each created once."""
    arn = policy_arn("Orders")
    iam.create_policy("Orders", allow("orders:GetOrder"))
    plans = [
        [call("create_policy_version", arn, allow(f"orders:Action{k}{i}")) for i in range(3)]
        for k in range(3)
    ]  # fmt: skip
    outcomes = only(race(store_url, tmp_path / "race", plans), {
        "create_policy_version": {"LimitExceeded"},
    })  # fmt: skip
    created = sorted(o.detail for o in outcomes if o.code == "ok")
    assert created == ["v2", "v3", "v4", "v5"]
    assert tally(outcomes, "create_policy_version")["LimitExceeded"] == 5
    versions = iam.list_policy_versions(arn)
    assert [v.version_id for v in versions] == ["v1", *created]
    documents = {json.loads(v.document)["Statement"][0]["Action"] for v in versions[1:]}
    assert len(documents) == 4  # each from a different call
    assert iam.read(integrity_problems) == []


def test_racing_defaults_and_deleted_versions_keep_one_default(
    store_url: str, iam: IAM, tmp_path: Path
) -> None:
    """Two processes setting the default version of a policy while a third deletes versions
    and creates new ones: at every moment it was seen, and at the end, the policy has its
    default version and exactly one version flagged default, never more than five; the default
    at the end is the one the last successful set-default call chose; failures are AWS's:
    NoSuchEntity for a version gone, DeleteConflict for the default, LimitExceeded at five."""
    arn = policy_arn("Orders")
    iam.create_policy("Orders", allow("orders:GetOrder"))
    for i in range(2, 6):
        iam.create_policy_version(arn, allow(f"orders:Action{i}"))
    picks = [random.Random(seed) for seed in (1, 2)]
    setters = [
        [call("set_default_policy_version", arn, f"v{pick.randint(1, 11)}") for _ in range(15)]
        for pick in picks
    ]  # fmt: skip
    churn = [
        c for i in range(1, 7)
        for c in (call("delete_policy_version", arn, f"v{i}"),
                  call("create_policy_version", arn, allow(f"orders:Churn{i}")))
    ]  # fmt: skip
    seen: list[list[str]] = []

    def check() -> None:
        seen.append(iam.read(integrity_problems))

    outcomes = only(race(store_url, tmp_path / "race", [*setters, churn], during=check), {
        "set_default_policy_version": {"NoSuchEntity"},
        "delete_policy_version": {"NoSuchEntity", "DeleteConflict"},
        "create_policy_version": {"LimitExceeded"},
    })  # fmt: skip
    assert len(seen) > 0 and all(problems == [] for problems in seen), seen
    assert iam.read(integrity_problems) == []
    chosen = [o for o in outcomes if o.method == "set_default_policy_version" and o.code == "ok"]
    assert chosen, "no set-default call succeeded"
    assert iam.get_policy(arn).default_version_id == max(chosen, key=lambda o: o.written).args[1]
    created = [o.detail for o in outcomes if o.method == "create_policy_version" and o.code == "ok"]
    deleted = tally(outcomes, "delete_policy_version")["ok"]
    assert len(iam.list_policy_versions(arn)) == 5 - deleted + len(created)
    assert len(set(created)) == len(created)


# --- deletes racing with what hangs off the entity ----------------------------------------------


def test_deleting_users_races_with_what_hangs_off_them(
    store_url: str, iam: IAM, tmp_path: Path
) -> None:
    """One process deleting eight users (last first) while two give each of them (first first)
    a membership, an access key, an attached and an inline policy: for each user either the
    delete succeeded and every other call on him failed with NoSuchEntity, or it failed with
    DeleteConflict and he has exactly what the successful calls gave him; no record anywhere
    names a user that does not exist."""
    victims = [f"v{i}" for i in range(8)]
    arn = policy_arn("Orders")
    iam.create_group("team")
    iam.create_policy("Orders", ALLOW_ALL_ORDERS)
    for victim in victims:
        iam.create_user(victim)
    deleter = [call("delete_user", v) for v in reversed(victims)]
    giver1 = [
        c for v in victims
        for c in (call("add_user_to_group", "team", v), call("create_access_key", v))
    ]  # fmt: skip
    giver2 = [
        c for v in victims
        for c in (call("attach_user_policy", v, arn),
                  call("put_user_policy", v, "own", ALLOW_ALL_ORDERS))
    ]  # fmt: skip
    outcomes = only(race(store_url, tmp_path / "race", [deleter, giver1, giver2]), {
        "delete_user": {"DeleteConflict"}, "add_user_to_group": {"NoSuchEntity"},
        "create_access_key": {"NoSuchEntity"}, "attach_user_policy": {"NoSuchEntity"},
        "put_user_policy": {"NoSuchEntity"},
    })  # fmt: skip
    existing = {u.name for u in iam.list_users()}
    for victim in victims:
        given = {
            o.method for o in outcomes
            if o.method != "delete_user" and victim in o.args and o.code == "ok"
        }  # fmt: skip
        (deleted,) = [
            o.code == "ok" for o in outcomes if o.method == "delete_user" and o.args == (victim,)
        ]
        if deleted:
            assert victim not in existing and given == set(), (victim, given)
            continue
        assert victim in existing and given, victim  # a conflict needs something to conflict
        has = {
            "add_user_to_group": iam.list_groups_for_user(victim) == ["team"],
            "create_access_key": len(iam.list_access_keys(victim)) == 1,
            "attach_user_policy": len(iam.list_attached_user_policies(victim)) == 1,
            "put_user_policy": iam.list_user_policies(victim) == ["own"],
        }
        assert {method for method, present in has.items() if present} == given, victim
    assert iam.read(integrity_problems) == []


def test_deleting_groups_and_policies_races_with_their_use(
    store_url: str, iam: IAM, tmp_path: Path
) -> None:
    """One process deleting six groups and six policies (last first) while two others add ram
    to each group and attach a policy to it, attach each policy to ram and give it a version
    (first first): each delete either wins (the other calls then fail with NoSuchEntity) or
    fails with DeleteConflict (and what it conflicted with is there); no membership, attachment
    or version names a missing group or policy, and every policy's attachment count is right."""
    iam.create_user("ram")
    iam.create_policy("Shared", ALLOW_ALL_ORDERS)
    for i in range(6):
        iam.create_group(f"g{i}")
        iam.create_policy(f"p{i}", ALLOW_ALL_ORDERS)
    deleter = [
        c for i in reversed(range(6))
        for c in (call("delete_group", f"g{i}"), call("delete_policy", policy_arn(f"p{i}")))
    ]  # fmt: skip
    groups = [
        c for i in range(6)
        for c in (call("add_user_to_group", f"g{i}", "ram"),
                  call("attach_group_policy", f"g{i}", policy_arn("Shared")))
    ]  # fmt: skip
    policies = [
        c for i in range(6)
        for c in (call("attach_user_policy", "ram", policy_arn(f"p{i}")),
                  call("create_policy_version", policy_arn(f"p{i}"), allow("orders:Get*")))
    ]  # fmt: skip
    outcomes = only(race(store_url, tmp_path / "race", [deleter, groups, policies]), {
        "delete_group": {"DeleteConflict"}, "delete_policy": {"DeleteConflict"},
        "add_user_to_group": {"NoSuchEntity"}, "attach_group_policy": {"NoSuchEntity"},
        "attach_user_policy": {"NoSuchEntity"}, "create_policy_version": {"NoSuchEntity"},
    })  # fmt: skip
    names = {g.name for g in iam.list_groups()} | {p.name for p in iam.list_policies()}
    for i in range(6):
        for name, target in ((f"g{i}", f"g{i}"), (f"p{i}", policy_arn(f"p{i}"))):
            used = [
                o for o in outcomes
                if not o.method.startswith("delete") and target in o.args and o.code == "ok"
            ]  # fmt: skip
            (deleted,) = [
                o.code == "ok" for o in outcomes
                if o.method.startswith("delete") and o.args == (target,)
            ]  # fmt: skip
            assert deleted == (name not in names), name
            assert deleted == (not used), (name, used)
    assert iam.read(integrity_problems) == []


# --- names -----------------------------------------------------------------------------------


def test_one_of_several_creates_of_a_name_wins(store_url: str, iam: IAM, tmp_path: Path) -> None:
    """Three processes creating the same four users, groups, roles and policies, each writing
    the names in a letter case of its own: for every name exactly one create succeeds, the
    others fail with EntityAlreadyExists, and the store holds the winner's spelling once."""
    cases = (str.lower, str.upper, str.title)
    kinds = {
        "create_user": lambda name: [name],
        "create_group": lambda name: [name],
        "create_role": lambda name: [name, TRUST],
        "create_policy": lambda name: [name, ALLOW_ALL_ORDERS],
    }
    plans = [
        [call(method, *args(case(f"dup{i}"))) for i in range(4) for method, args in kinds.items()]
        for case in cases
    ]  # fmt: skip
    outcomes = only(race(store_url, tmp_path / "race", plans), {
        method: {"EntityAlreadyExists"} for method in kinds
    })  # fmt: skip
    stored = {
        "create_user": [u.name for u in iam.list_users()],
        "create_group": [g.name for g in iam.list_groups()],
        "create_role": [r.name for r in iam.list_roles()],
        "create_policy": [p.name for p in iam.list_policies()],
    }
    for method in kinds:
        for i in range(4):
            tries = [o for o in outcomes if o.method == method and o.args[0].lower() == f"dup{i}"]
            winners = [o.args[0] for o in tries if o.code == "ok"]
            assert len(tries) == 3 and len(winners) == 1, (method, tries)
            assert [n for n in stored[method] if n.lower() == f"dup{i}"] == winners


# --- decisions racing a policy change ------------------------------------------------------------

ONE, TWO = f"{ORDERS}/1", f"{ORDERS}/2"
# State A allows GetOrder on every order but order 1; state B allows ListOrders only.
STATE_A = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"},
        {"Effect": "Deny", "Action": "orders:GetOrder", "Resource": ONE},
    ],
}
STATE_B = allow("orders:ListOrders")
_NO_IDENTITY_ALLOW = "ImplicitDeny: no identity-based policy allows"
# Each request's decision (effect: reason) under state A and under state B. A mixture gives
# another: allowing order 1 (A's allow without A's deny), denying for a missing default version,
# or "no session policy allows" (the identity policies read in one state, the session's in the
# other).
POSSIBLE = {
    f"orders:GetOrder {ONE}": {"ExplicitDeny: explicit deny", _NO_IDENTITY_ALLOW},
    f"orders:GetOrder {TWO}": {"Allow: allowed", _NO_IDENTITY_ALLOW},
    f"orders:ListOrders {TWO}": {_NO_IDENTITY_ALLOW, "Allow: allowed"},
}


def decide_while_flipping(
    url: str, folder: Path, flips: Sequence[Call], sessions: Sequence[dict[str, Any]]
) -> dict[str, set[str]]:
    """Run ``flips`` in one process while a Guard in another decides the ``POSSIBLE`` requests
    for each session until the flips are done (or a decision was impossible); the decisions
    seen, by request."""
    requests = [[*r.split(), sorted(d)] for r, d in POSSIBLE.items()]
    jobs = [
        ("iam", {"account": ACCOUNT, "calls": list(flips)}),
        ("guard", {"sessions": list(sessions), "requests": requests}),
    ]
    with racing(url, folder, jobs) as started:
        flipped = started.wait(0)
        (started.folder / "stop").touch()
        seen: dict[str, int] = started.wait(1)
    assert [o for o in flipped if o[2] != "ok"] == []
    by_request: dict[str, set[str]] = {}
    for key in seen:
        _, action, resource, _, decision = key.split(" ", 4)
        by_request.setdefault(f"{action} {resource}", set()).add(decision)
    return by_request


def session_of(iam: IAM, user_name: str, token_id: str, **fields: Any) -> dict[str, Any]:
    """The fields of a ``Session`` of the user, as a signed-in token would carry them."""
    user = iam.get_user(user_name)
    now = int(time.time())
    return {
        "principal": user.arn, "principal_type": "User", "account": ACCOUNT,
        "user_id": user.user_id, "issued_at": now, "expires_at": now + 3600,
        "token_id": token_id, "name": user_name, **fields,
    }  # fmt: skip


def test_requests_racing_a_policy_change_see_old_or_new(
    store_url: str, iam: IAM, tmp_path: Path
) -> None:
    """One process flips ram's managed policy between state A and state B 30 times, each time
    creating the next version as the default and deleting the old one; another, a Guard over
    its own store, decides three requests over and over. Every decision is the one A gives or
    the one B gives, and both were seen."""
    arn = policy_arn("Orders")
    iam.create_user("ram")
    iam.create_policy("Orders", STATE_A)
    iam.attach_user_policy("ram", arn)
    flips = [
        c for i in range(30)
        for c in (call("create_policy_version", arn, STATE_B if i % 2 == 0 else STATE_A,
                       set_as_default=True),
                  call("delete_policy_version", arn, f"v{i + 1}"),
                  call("sleep", 0.005))
    ]  # fmt: skip
    seen = decide_while_flipping(
        store_url, tmp_path / "race", flips, [session_of(iam, "ram", "one")]
    )
    assert seen == POSSIBLE


def test_session_policies_racing_a_policy_change_see_old_or_new(
    store_url: str, iam: IAM, tmp_path: Path
) -> None:
    """As above, with the default version set back and forth 150 times and a second session of
    ram's whose managed session policy is the same policy: its decisions too are A's or B's,
    never identity policies in one state intersected with session policies in the other."""
    arn = policy_arn("Orders")
    iam.create_user("ram")
    iam.create_policy("Orders", STATE_A)
    iam.create_policy_version(arn, STATE_B)
    iam.attach_user_policy("ram", arn)
    flips = [call("set_default_policy_version", arn, f"v{2 - i % 2}") for i in range(150)]
    sessions = [session_of(iam, "ram", "one"), session_of(iam, "ram", "two", policy_arns=[arn])]
    seen = decide_while_flipping(store_url, tmp_path / "race", flips, sessions)
    assert seen == POSSIBLE
