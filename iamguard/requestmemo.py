"""Whole-request answers for the web adapters: a warm request costs one dictionary look-up.

An adapter keys an allowed request by everything its answer was computed from: the
``Authorization`` header, the method and path (so the route and its parameters), and every
input the HTTP context is built from (peer address, scheme, ``User-Agent``, ``Referer``,
``X-Forwarded-For``/``-Proto``). ``recall`` gives a remembered answer again only while the full
path would still give it:

- the read model has taken in no change since the answer was decided (its ``generation``):
  every write to the store (policies, memberships, tags, revocations, deletions, signing keys)
  is one;
- the token is inside its validity window (``nbf``/``iat`` to ``exp``, with the leeway), and
  the key ring has not changed (its signing key is still there);
- when the principal's policies read the clock (``aws:CurrentTime``, ``aws:EpochTime``,
  ``aws:MultiFactorAuthAge``), the current second is the one the answer was decided in.

Only allowed answers are kept, for user and role sessions, and only when every decision came
from the decision cache's exact path (no evaluation errors); denials always take the full path,
so each one is audited. The memo is bounded: the oldest entries go first.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from iamguard.policy import Decision
from iamguard.sessions import Session

if TYPE_CHECKING:
    from iamguard.guard import Guard

DEFAULT_REQUEST_MEMO: Final = 4_096


@dataclass(frozen=True, slots=True)
class Stamp:
    """Taken before a request is decided: the read model's generation, and the time its
    context uses."""

    generation: int
    now: datetime


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    generation: int  # the read model's
    ring: int  # the key ring's generation, its signing key in it
    not_before: float
    expires: float
    second: int | None  # the second the decision was made in, when it read the clock


class RequestMemo:
    """Allowed answers of whole requests, given again while still exact (see the module)."""

    def __init__(self, guard: Guard, maxsize: int = DEFAULT_REQUEST_MEMO) -> None:
        self._guard = guard
        self._model = guard.authorizer.read_model
        self._tokens = guard.tokens
        self._maxsize = maxsize
        self._entries: dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def stamp(self) -> Stamp:
        """Catch the read model up with the store; take this before deciding a request, and
        build its context with ``now``."""
        self._model.refresh()
        return Stamp(self._model.generation, self._guard.clock())

    def recall(self, key: Hashable) -> Any:
        """The value remembered for ``key`` while its answer still holds, else None. May
        raise ``StoreError`` (checking for changes reads the store)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        model, tokens = self._model, self._tokens
        model.refresh()
        now = tokens.clock()
        if (
            model.generation != entry.generation
            or not entry.not_before <= now < entry.expires
            or tokens.ring.generation != entry.ring
            or (entry.second is not None and int(now) != entry.second)
        ):
            return None
        with self._lock:
            self.hits += 1
        return entry.value

    def remember(
        self, key: Hashable, value: Any, *, token: str, session: Session,
        decisions: Sequence[Decision], stamp: Stamp,
    ) -> None:  # fmt: skip
        """Keep ``value`` for ``key``: the answer to a request that ``decisions`` allowed for
        ``session`` (from ``token``), decided after ``stamp``. Kept only when exact (module)."""
        guard = self._guard
        if not decisions or any(d.errors or not d.allowed for d in decisions):
            return
        reads_clock = guard.reads_clock(session)
        validity = self._tokens.validity(token)
        if reads_clock is None or validity is None:
            return
        if self._model.generation != stamp.generation:
            return  # the model moved while deciding: the decision may mix two versions
        second = None
        if reads_clock:
            second = int(stamp.now.timestamp())
            if int(self._tokens.clock()) != second:
                return  # decided across a second boundary
        ring, not_before, expires = validity
        entry = _Entry(value, stamp.generation, ring, not_before, expires, second)
        with self._lock:
            while len(self._entries) >= self._maxsize:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = entry
