"""An in-memory store: for tests, for examples and for models loaded from a file."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Final

from iamguard.stores.base import Change, Data, KeyExists, Reader, Store, T, Writer

_LOG_LIMIT: Final = 10_000  # versions whose changes are kept for readers catching up


class _Row:
    __slots__ = ("data", "key", "parent", "ref")

    def __init__(self, key: str, data: Data, parent: str | None, ref: str | None) -> None:
        self.key = key  # as given (the address holds it folded)
        self.data = data
        self.parent = parent
        self.ref = ref


def _fold(value: str | None) -> str | None:
    return None if value is None else value.lower()


class _Tables(Writer):
    """The records and their indexes; as a Writer it also keeps an undo log for rollback."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], _Row] = {}
        self.by_parent: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self.by_ref: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        self.undo: list[tuple[tuple[str, str, str], _Row | None]] = []
        self.changed: list[tuple[str, str, str]] = []
        self.committed = 0  # the model version of the committed rows

    # reads
    def version(self) -> int:
        return self.committed

    def get(self, kind: str, account: str, key: str) -> Data | None:
        row = self.rows.get((kind, account, key.lower()))
        return None if row is None else _copy(row.data)

    def _keys(self, kind: str, account: str, parent: str | None, ref: str | None) -> list[str]:
        if parent is not None:
            keys = set(self.by_parent.get((kind, account, parent.lower()), ()))
            if ref is not None:
                keys &= self.by_ref.get((kind, account, ref.lower()), set())
        elif ref is not None:
            keys = set(self.by_ref.get((kind, account, ref.lower()), ()))
        else:
            keys = {k for (kd, acct, k) in self.rows if kd == kind and acct == account}
        return sorted(keys)

    def find(
        self, kind: str, account: str, *, parent: str | None = None, ref: str | None = None
    ) -> list[Data]:
        keys = self._keys(kind, account, parent, ref)
        return [_copy(self.rows[(kind, account, k)].data) for k in keys]

    def count(
        self, kind: str, account: str, *, parent: str | None = None, ref: str | None = None
    ) -> int:
        return len(self._keys(kind, account, parent, ref))

    def locate(self, kind: str, key: str) -> tuple[str, Data] | None:
        folded = key.lower()
        for (kd, account, k), row in self.rows.items():
            if kd == kind and k == folded:
                return account, _copy(row.data)
        return None

    # writes
    def _apply(self, address: tuple[str, str, str], row: _Row | None) -> None:
        """Set (or, with None, remove) a row and keep the indexes in step."""
        kind, account, key = address
        old = self.rows.pop(address, None)
        if old is not None:
            if old.parent is not None:
                self.by_parent[(kind, account, old.parent)].discard(key)
            if old.ref is not None:
                self.by_ref[(kind, account, old.ref)].discard(key)
        if row is not None:
            self.rows[address] = row
            if row.parent is not None:
                self.by_parent[(kind, account, row.parent)].add(key)
            if row.ref is not None:
                self.by_ref[(kind, account, row.ref)].add(key)

    def _put(self, address: tuple[str, str, str], row: _Row | None) -> None:
        """A write within a transaction: remember how to undo it, and that it changed."""
        self.undo.append((address, self.rows.get(address)))
        self.changed.append(address)
        self._apply(address, row)

    def insert(
        self, kind: str, account: str, key: str, data: Data,
        *, parent: str | None = None, ref: str | None = None,
    ) -> None:  # fmt: skip
        address = (kind, account, key.lower())
        if address in self.rows:
            raise KeyExists(key)
        self._put(address, _Row(key, _copy(data), _fold(parent), _fold(ref)))

    def update(self, kind: str, account: str, key: str, data: Data) -> None:
        address = (kind, account, key.lower())
        old = self.rows[address]
        self._put(address, _Row(old.key, _copy(data), old.parent, old.ref))

    def delete(self, kind: str, account: str, key: str) -> None:
        address = (kind, account, key.lower())
        if address in self.rows:
            self._put(address, None)


def _copy(data: Data) -> Data:
    """Records hold JSON: a copy through JSON-shaped containers keeps callers from aliasing."""
    return {k: _copy_value(v) for k, v in data.items()}


def _copy_value(value: Any) -> Any:
    if isinstance(value, dict):
        return _copy(value)
    if isinstance(value, (list, tuple)):
        return [_copy_value(v) for v in value]
    return value


class MemoryStore(Store):
    """Records in dictionaries, one writer at a time; readers see only committed data."""

    # Every write goes through this object, and ``last_written`` announces it to the readers:
    # there is nothing to poll for.
    poll_interval = float("inf")

    def __init__(self) -> None:
        self._tables = _Tables()
        self._lock = threading.RLock()
        self._version = 0
        self._log: list[Change] = []

    def read(self, fn: Callable[[Reader], T]) -> T:
        with self._lock:
            return fn(self._tables)

    def write(self, fn: Callable[[Writer], T]) -> T:
        with self._lock:
            tables = self._tables
            tables.undo, tables.changed = [], []
            try:
                result = fn(tables)
            except BaseException:
                for address, row in reversed(tables.undo):
                    tables._apply(address, row)
                raise
            changed = list(dict.fromkeys(tables.changed))
            if changed:
                self._version += 1
                tables.committed = self.last_written = self._version
                self._log.extend(Change(self._version, *address) for address in changed)
                oldest_kept = self._version - _LOG_LIMIT  # whole versions, never half of one
                while self._log and self._log[0].version <= oldest_kept:
                    self._log.pop(0)
            return result

    def version(self) -> int:
        with self._lock:
            return self._version

    def copy_into(self, target: Store) -> None:
        """Write every record into ``target`` in one transaction (all of them, or none)."""
        with self._lock:
            rows = [(kind, account, row) for (kind, account, _), row in self._tables.rows.items()]

        def copy(tx: Writer) -> None:
            for kind, account, row in rows:
                tx.insert(kind, account, row.key, row.data, parent=row.parent, ref=row.ref)

        target.write(copy)

    def changes_since(self, version: int) -> list[Change] | None:
        with self._lock:
            if version >= self._version:
                return []
            if not self._log or self._log[0].version > version + 1:
                return None
            return [c for c in self._log if c.version > version]
