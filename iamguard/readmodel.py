"""Each process's view of the store: principals with their compiled policies, kept in step.

A principal's view (its entity, tags, identity policies and boundary, compiled into
``PolicySet``s) is loaded once and kept until something it depends on changes. Every write to
the store bumps the model version and logs the keys it changed; the read model checks the
version (at most every ``poll_interval`` seconds, or at once after a change notification) and
drops exactly the views that depended on a changed key. Writes committed through the same store
object are seen at once. Compiled policies are cached by their text, so an unchanged policy is
never compiled twice.

Everything the model holds belongs to one state of the store, its version: a load (a view, a
record) also reads the version it saw, in the same transaction; should that be newer, the model
first takes in the changes up to it, and it keeps only what was loaded at exactly its version.
Taking in changes bumps ``generation``, so whatever is read from the model while the generation
stays the same belongs to one state, cached or freshly loaded.

When the store cannot be reached the read model fails closed: what it holds is used for at most
``poll_interval`` seconds after the last check that succeeded (the staleness it always allows);
from then on ``refresh`` raises the store's error (``StoreUnavailable``: a 503) until a check
succeeds again. After a failed check the store is asked again only once ``poll_interval`` has
passed (or at once on a change notification), so that a dead server is not asked on every
request; meanwhile ``refresh`` raises at once. One thread checks at a time; the others wait for
its outcome. Recovery needs nothing but the store answering again: the next check catches up
with every change committed meanwhile, through the change log.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from iamguard.errors import MalformedPolicyDocument, StoreCorrupted, StoreError
from iamguard.iam.base import SEPARATOR
from iamguard.model import Tag
from iamguard.policy import Policy, PolicySet
from iamguard.stores.base import Change, Data, Reader, Store

Token = tuple[str, str, str]  # (what, account, name), lower-cased: what a view depends on
_EMPTY_SET: Final = PolicySet()
_GENERATIONS: Final = itertools.count(1)
_log = logging.getLogger("iamguard.readmodel")


@dataclass(frozen=True)
class PrincipalView:
    """A user or role as authorization needs it."""

    kind: str  # "user" | "role"
    account: str
    name: str
    arn: str
    unique_id: str
    tags: tuple[Tag, ...]
    identity: PolicySet
    boundary: PolicySet
    trust: Policy | None = None  # a role's trust policy
    max_session_duration: int = 3600
    tokens: frozenset[Token] = field(default=frozenset(), repr=False)
    # Unique to this load: a view is replaced, never changed, when what it depends on changes,
    # so caches may key on it (unlike id(), it is never reused).
    generation: int = field(default_factory=lambda: next(_GENERATIONS), compare=False)


def change_tokens(change: Change) -> list[Token]:
    """The dependency tokens a changed record invalidates: the record itself, and what the
    principal views built from it depend on."""
    kind, account, key = change.kind, change.account, change.key.lower()
    head = key.split(SEPARATOR, 1)[0]
    return [(f"record:{kind}", account, key), *_view_tokens(kind, account, key, head)]


def _view_tokens(kind: str, account: str, key: str, head: str) -> list[Token]:
    if kind in ("user", "role", "group"):
        return [(kind, account, key), ("owner", account, f"{kind}/{key}")]
    if kind == "membership":
        return [("memberships", account, head)]
    if kind in ("attachment", "inline_policy", "boundary"):
        return [("owner", account, head)]
    if kind in ("policy", "policy_version"):
        return [("policy", account, head)]
    return []  # credentials and the like do not change what anyone may do


def _version_token(account: str, name: str, policy: Data) -> Token:
    """The cache token of a managed policy's default version record."""
    return (
        "record:policy_version",
        account,
        f"{name}{SEPARATOR}{policy['default_version_id']}".lower(),
    )


def _policy_records(tx: Reader, account: str, name: str) -> tuple[Data | None, Data | None]:
    """A managed policy's record and its default version's, read in ``tx``."""
    policy = tx.get("policy", account, name)
    if policy is None:
        return None, None
    return policy, tx.get(
        "policy_version", account, f"{name}{SEPARATOR}{policy['default_version_id']}"
    )


class ReadModel:
    """Principal views for one process, bounded in number, dropped exactly when stale."""

    def __init__(
        self,
        store: Store,
        *,
        poll_interval: float | None = None,
        max_principals: int = 10_000,
        max_policies: int = 20_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        # Checked at least this often; at once after a notification, where the store sends them.
        self.poll_interval = store.poll_interval if poll_interval is None else poll_interval
        self.max_principals = max_principals
        self.max_policies = max_policies
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._views: OrderedDict[tuple[str, str, str], PrincipalView | None] = OrderedDict()
        self._dependents: dict[Token, set[tuple[str, str, str]]] = {}
        self._compiled: OrderedDict[str, Policy] = OrderedDict()
        self._records: OrderedDict[Token, Data | None] = OrderedDict()
        self._version = store.version()
        #: Grows each time this model takes in changes; unlike the store's version (which a
        #: store restored from a backup reuses) it never repeats, so caches may key on it.
        self.generation = 0
        self._checked = monotonic()  # when the last check that succeeded began
        self._notified = False
        self._check_lock = threading.Lock()
        self._failure: tuple[float, StoreError] | None = None  # when the last check failed, why
        self._listener = store.listen(self.notify)

    def close(self) -> None:
        """Stop listening for change notifications."""
        if self._listener is not None:
            self._listener.close()

    @property
    def version(self) -> int:
        """The model version this read model is in step with."""
        return self._version

    def notify(self, version: int) -> None:
        """A change notification (PostgreSQL's LISTEN): check at the next request."""
        if version > self._version:
            self._notified = True

    def refresh(self, *, force: bool = False) -> None:
        """Catch up with the store if it is time to check (or ``force``); raise ``StoreError``
        when the store cannot tell (see the module: what is held is then no longer used)."""
        if not (force or self._due()):
            return
        with self._check_lock:
            if force or self._due():  # else another thread has just checked
                self._check(force)

    def _due(self) -> bool:
        """Is it time to check: a change notified, written here, or the poll interval over?"""
        return (
            self._notified
            or self.store.last_written > self._version
            or self._monotonic() - self._checked >= self.poll_interval
        )

    def _check(self, force: bool) -> None:
        now = self._monotonic()
        failure = self._failure
        if failure is not None and not (force or self._notified):
            failed_at, error = failure
            if now - failed_at < self.poll_interval:
                raise type(error)(error.message) from error  # do not ask again so soon
        self._notified = False
        try:
            current = self.store.version()
            if current > self._version:
                self._catch_up(current, self.store.changes_since(self._version))
            elif current < self._version:
                self._catch_up(current, None)
        except StoreError as e:
            self._failure = (self._monotonic(), e)
            raise
        self._checked = now
        self._failure = None

    def _catch_up(self, current: int, changes: list[Change] | None) -> None:
        """Drop what changed since this model's version: everything if the log is too short, or
        if the store went back in time (restored from a backup, or a replica that lost commits
        took over), when its change log no longer describes what this model holds."""
        with self._lock:
            if current < self._version:
                _log.warning(
                    "the store's model version went back from %d to %d: reloading everything",
                    self._version, current,
                )  # fmt: skip
                changes = None
                self._version = current
            if changes is None:  # start over
                self._views.clear()
                self._dependents.clear()
                self._records.clear()
            else:
                for change in changes:
                    for token in change_tokens(change):
                        self._records.pop(token, None)
                        for key in list(self._dependents.get(token, ())):
                            self._drop(key)
            self._version = max(current, self._version)
            self.generation += 1

    def _advance(self, seen: int) -> None:
        """Take in the changes up to version ``seen``, which a load has just seen: the store is
        at least there, so what the model holds must be too before that load can be kept."""
        with self._check_lock:
            if seen <= self._version:
                return  # another thread got there first
            changes = self.store.changes_since(self._version)
            if changes is not None:
                changes = [c for c in changes if c.version <= seen]
            self._catch_up(seen, changes)

    def _settle(self, seen: int, generation: int) -> None:
        """After a load begun at ``generation`` that saw store version ``seen``: catch up with
        ``seen`` if the model is behind it. The load may then be kept if the model is at
        exactly ``seen`` (checked with the lock held).

        A load that saw an older version than the model's is used once, never kept: the model
        moved on meanwhile (its generation changed, so no decision mixes the two) or, when it
        did not, the store went back in time, and is checked at once."""
        if seen > self._version:
            self._advance(seen)
        elif seen < self._version and self.generation == generation:
            self.refresh(force=True)

    def record(self, kind: str, account: str, key: str) -> Data | None:
        """One record of the store (a revocation, a service), cached until it changes."""
        token = (f"record:{kind}", account, key.lower())
        with self._lock:
            if token in self._records:
                self._records.move_to_end(token)
                return self._records[token]
        generation = self.generation
        data, seen = self.store.read(lambda tx: (tx.get(kind, account, key), tx.version()))
        self._settle(seen, generation)
        with self._lock:
            if seen == self._version:
                self._keep_record(token, data)
        return data

    def _keep_record(self, token: Token, data: Data | None) -> None:
        """Cache a record (call with the lock held)."""
        self._records[token] = data
        self._records.move_to_end(token)
        while len(self._records) > self.max_principals:
            self._records.popitem(last=False)

    def managed_policy(
        self, account: str, policy_arn: str, tx: Reader | None = None
    ) -> Policy | None:
        """A managed policy's default version, compiled (None when there is no such policy).

        The policy and its default version are read in one transaction (or from ``tx``, then
        not cached), so the version is never one the policy no longer names."""
        name = policy_arn.rsplit("/", 1)[-1]
        policy, version = (
            self._policy_records(account, name)
            if tx is None
            else _policy_records(tx, account, name)
        )
        if policy is None or policy.get("arn") != policy_arn:
            return None
        return None if version is None else self._stored(version["document"], name)

    def _policy_records(self, account: str, name: str) -> tuple[Data | None, Data | None]:
        """A managed policy's record and its default version's, cached until either changes."""
        policy_token: Token = ("record:policy", account, name.lower())
        records = self._records
        with self._lock:
            if policy_token in records:
                policy = records[policy_token]
                if policy is None:
                    records.move_to_end(policy_token)
                    return None, None
                version_token = _version_token(account, name, policy)
                if version_token in records:
                    records.move_to_end(policy_token)
                    records.move_to_end(version_token)
                    return policy, records[version_token]
        generation = self.generation
        policy, version, seen = self.store.read(
            lambda tx: (*_policy_records(tx, account, name), tx.version())
        )
        self._settle(seen, generation)
        with self._lock:
            if seen == self._version:
                self._keep_record(policy_token, policy)
                if policy is not None:
                    self._keep_record(_version_token(account, name, policy), version)
        return policy, version

    def _drop(self, key: tuple[str, str, str]) -> None:
        """Forget a view and every dependency entry pointing at it (call with the lock held)."""
        view = self._views.pop(key, None)
        kind, account, name = key
        tokens = view.tokens if view is not None else frozenset({(kind, account, name)})
        for token in tokens:
            keys = self._dependents.get(token)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._dependents[token]

    def user(self, account: str, name: str, tx: Reader | None = None) -> PrincipalView | None:
        """The user's view, or None when there is no such user (from ``tx``, uncached, if
        given)."""
        return self._view("user", account, name, tx)

    def role(self, account: str, name: str, tx: Reader | None = None) -> PrincipalView | None:
        """The role's view, or None when there is no such role (from ``tx``, uncached, if
        given)."""
        return self._view("role", account, name, tx)

    def _view(
        self, kind: str, account: str, name: str, tx: Reader | None = None
    ) -> PrincipalView | None:
        if tx is not None:
            return self._load(tx, kind, account, name)
        key = (kind, account, name.lower())
        with self._lock:
            if key in self._views:
                self._views.move_to_end(key)
                return self._views[key]
        generation = self.generation
        view, seen = self.store.read(lambda tx: (self._load(tx, kind, account, name), tx.version()))
        self._settle(seen, generation)
        with self._lock:
            if seen != self._version:
                return view  # older than the model: use it once, do not keep it
            if key in self._views:  # another thread loaded it meanwhile, at this same version
                return self._views[key]
            self._views[key] = view
            tokens = view.tokens if view else frozenset({(kind, account, name.lower())})
            for token in tokens:
                self._dependents.setdefault(token, set()).add(key)
            while len(self._views) > self.max_principals:
                self._drop(next(iter(self._views)))
        return view

    # --- loading -------------------------------------------------------------------------------

    def _load(self, tx: Reader, kind: str, account: str, name: str) -> PrincipalView | None:
        entity = tx.get(kind, account, name)
        if entity is None:
            return None
        entity_name = entity["name"]
        tokens: set[Token] = {(kind, account, entity_name.lower())}
        owners = [f"{kind}/{entity_name}"]
        if kind == "user":
            tokens.add(("memberships", account, entity_name.lower()))
            for membership in tx.find("membership", account, parent=entity_name):
                group = membership["group"]
                tokens.add(("group", account, group.lower()))
                owners.append(f"group/{group}")
        identity: list[Policy] = []
        for owner in owners:
            tokens.add(("owner", account, owner.lower()))
            for attachment in tx.find("attachment", account, parent=owner):
                identity.append(self._managed(tx, account, attachment["policy_arn"], tokens))
            for inline in tx.find("inline_policy", account, parent=owner):
                identity.append(self._stored(inline["document"], f"{owner}/{inline['name']}"))
        boundary_arn = entity.get("permissions_boundary")
        boundary = (
            PolicySet([self._managed(tx, account, boundary_arn, tokens)])
            if boundary_arn
            else _EMPTY_SET
        )
        trust = None
        if kind == "role":
            trust = self._stored(entity["assume_role_policy"], f"role/{entity_name}/trust", "trust")
        return PrincipalView(
            kind=kind, account=account, name=entity_name, arn=entity["arn"],
            unique_id=entity.get("user_id") or entity.get("role_id") or "",
            tags=tuple(Tag(**t) for t in entity.get("tags", ())), identity=PolicySet(identity),
            boundary=boundary, trust=trust,
            max_session_duration=entity.get("max_session_duration", 3600),
            tokens=frozenset(tokens),
        )  # fmt: skip

    def _managed(self, tx: Reader, account: str, policy_arn: str, tokens: set[Token]) -> Policy:
        name = policy_arn.rsplit("/", 1)[-1]
        tokens.add(("policy", account, name.lower()))
        policy: Data | None = tx.get("policy", account, name)
        if policy is None:
            raise StoreCorrupted(f"attached policy `{policy_arn}` is missing from the store")
        key = f"{name}{SEPARATOR}{policy['default_version_id']}"
        version = tx.get("policy_version", account, key)
        if version is None:
            raise StoreCorrupted(f"the default version of `{policy_arn}` is missing from the store")
        return self._stored(version["document"], name)

    def _stored(self, text: str, name: str, kind: str = "identity") -> Policy:
        """A policy read from the store, compiled: ``StoreCorrupted`` when it does not parse
        (the store was written around the management API's validation)."""
        try:
            return self.compile(text, name, kind)
        except MalformedPolicyDocument as e:
            raise StoreCorrupted(f"stored policy `{name}` does not parse: {e.message}") from e

    def compile(self, text: str, name: str, kind: str = "identity") -> Policy:
        """A compiled policy, shared by every view that holds the same text under the same name."""
        cache_key = f"{kind}\n{name}\n{text}"
        with self._lock:
            policy = self._compiled.get(cache_key)
            if policy is not None:
                self._compiled.move_to_end(cache_key)
                return policy
        policy = Policy.parse(text, kind, name=name)
        with self._lock:
            self._compiled[cache_key] = policy
            while len(self._compiled) > self.max_policies:
                self._compiled.popitem(last=False)
        return policy
