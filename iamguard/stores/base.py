"""The ``Store`` interface: JSON records in transactions, with a model version and a change log.

Every IAM entity is a record identified by ``(kind, account, key)``; keys, ``parent`` and
``ref`` compare case-insensitively, as IAM names do. ``parent`` and ``ref`` are two indexed
references used for listing (a user's access keys; a group's members; the entities a policy is
attached to). All of IAM's rules live above this interface, in ``iamguard.iam``, so that every
store enforces exactly the same ones.

Records hold JSON (dicts, lists, strings, numbers, booleans, null); ``find`` returns them
ordered by lower-cased key; ``update`` of a record that does not exist raises ``KeyError``.

A write runs a function in one transaction: it happens completely or not at all. A store may run
the function more than once (PostgreSQL does when transactions conflict), so it must do nothing
but read and write through the transaction. Every transaction that writes bumps the model version
once and logs the keys it changed, so that readers in any process can drop exactly what changed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Data = dict[str, Any]


class Closeable(Protocol):
    """Something to stop: a notification listener."""

    def close(self) -> None: ...


class KeyExists(Exception):
    """``insert`` found a record with that key (in any letter case)."""


@dataclass(frozen=True)
class Change:
    """One record changed in the transaction that made model version ``version`` (``key`` as
    stored for comparison: lower-cased)."""

    version: int
    kind: str
    account: str
    key: str


class Reader(ABC):
    """What a transaction can read."""

    @abstractmethod
    def get(self, kind: str, account: str, key: str) -> Data | None:
        """The record, or None."""

    @abstractmethod
    def find(
        self, kind: str, account: str, *, parent: str | None = None, ref: str | None = None
    ) -> list[Data]:
        """Records of ``kind`` in ``account``, optionally only those with this parent or ref."""

    @abstractmethod
    def count(
        self, kind: str, account: str, *, parent: str | None = None, ref: str | None = None
    ) -> int:
        """How many records ``find`` would return."""

    @abstractmethod
    def locate(self, kind: str, key: str) -> tuple[str, Data] | None:
        """A record by a key unique across accounts (an access key id): ``(account, data)``."""

    @abstractmethod
    def version(self) -> int:
        """The model version of what this transaction reads (in a write: before it commits), so
        that a reader knows which state the records it read belong to."""


class Writer(Reader):
    """What a write transaction can do."""

    @abstractmethod
    def insert(
        self, kind: str, account: str, key: str, data: Data,
        *, parent: str | None = None, ref: str | None = None,
    ) -> None:  # fmt: skip
        """Add a record; raise ``KeyExists`` if the key exists in any letter case."""

    @abstractmethod
    def update(self, kind: str, account: str, key: str, data: Data) -> None:
        """Replace an existing record's data (its parent and ref stay)."""

    @abstractmethod
    def delete(self, kind: str, account: str, key: str) -> None:
        """Remove a record, if it exists."""


class Store(ABC):
    """Where the model lives. See the module docstring for the contract."""

    @abstractmethod
    def read(self, fn: Callable[[Reader], T]) -> T:
        """Run ``fn`` on a consistent snapshot: every record it reads, and ``Reader.version()``,
        belong to one committed state of the model."""

    @abstractmethod
    def write(self, fn: Callable[[Writer], T]) -> T:
        """Run ``fn`` in one transaction: all of its writes happen, or none."""

    @abstractmethod
    def version(self) -> int:
        """The model version: it grows by one with every transaction that writes."""

    @abstractmethod
    def changes_since(self, version: int) -> list[Change] | None:
        """Changes after ``version``, oldest first; None when the log no longer reaches back."""

    #: How often a reader that gets no notifications should check ``version()``, in seconds.
    poll_interval: float = 0.0
    #: The model version of the newest write committed through this object (0: none yet), so
    #: that readers in the same process see their own writes at once, whatever the poll interval.
    last_written: int = 0

    def listen(self, callback: Callable[[int], None]) -> Closeable | None:
        """Call ``callback(version)``, from another thread, for each write any process commits.

        None where the store cannot push notifications: readers then poll ``version()`` every
        ``poll_interval`` seconds. Close the returned object (or the store) to stop.
        """
        return None

    def close(self) -> None:  # noqa: B027 -- most stores hold nothing to release
        """Release connections and files."""
