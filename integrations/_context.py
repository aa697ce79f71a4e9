"""The caller of the current request, task or job: a ``Session`` and the ``Guard`` that decides
for it, held together in one context variable.

The adapters set both for a request they allowed and reset them when it ends (Starlette's
middleware around the app, Flask's hooks around the view); ``@authorize`` reads them. Service
code outside a request (a test, a background job, a CLI command) binds them itself::

    with bind(session, guard):
        cancel_order(order_id)

``current_session`` and ``current_guard`` read (and, for tests, set) one half each. Context
variables follow the code that runs: an asyncio task copies them when it is created, a thread
started by Starlette's threadpool or Flask's async bridge sees them too, and a plain
``threading.Thread`` starts without them (bind there).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Generic, TypeVar

from iamguard.guard import Guard
from iamguard.sessions import Session

__all__ = ["bind", "current_guard", "current_session"]

T = TypeVar("T")
Caller = tuple[Session | None, Guard | None]
# One variable for both: an allowed request sets and resets it once (this is the hot path).
_caller: ContextVar[Caller] = ContextVar("iamguard_caller", default=(None, None))


class _Half(Generic[T]):
    """One half of the caller, with ``ContextVar``'s ``get``/``set``/``reset``."""

    def __init__(self, index: int) -> None:
        self._index = index

    def get(self) -> T | None:
        value: T | None = _caller.get()[self._index]  # type: ignore[assignment]
        return value

    def set(self, value: T | None) -> Token[Caller]:
        pair: list[object] = list(_caller.get())
        pair[self._index] = value
        return _caller.set((pair[0], pair[1]))  # type: ignore[arg-type]

    def reset(self, token: Token[Caller]) -> None:
        _caller.reset(token)


current_session: _Half[Session] = _Half(0)
"""The caller's session; None when nobody is authenticated (a public route, no binding)."""

current_guard: _Half[Guard] = _Half(1)
"""The guard that authorizes the caller's calls."""


def set_caller(session: Session, guard: Guard) -> Token[Caller]:
    """Make ``session`` the caller and ``guard`` the decider; undo with ``reset_caller``."""
    return _caller.set((session, guard))


def reset_caller(token: Token[Caller]) -> None:
    _caller.reset(token)


@contextmanager
def bind(session: Session, guard: Guard) -> Iterator[Session]:
    """Make ``session`` the caller and ``guard`` the decider inside the ``with`` block; the
    previous values come back when it ends, even on an exception."""
    token = set_caller(session, guard)
    try:
        yield session
    finally:
        reset_caller(token)
