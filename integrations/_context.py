"""The caller of the current request, task or job: a ``Session`` and the ``Guard`` that decides
for it, in two context variables.

The adapters set both for a request they allowed and reset them when it ends (Starlette's
middleware around the app, Flask's hooks around the view); ``@authorize`` reads them. Service
code outside a request (a test, a background job, a CLI command) binds them itself::

    with bind(session, guard):
        cancel_order(order_id)

Context variables follow the code that runs: an asyncio task copies them when it is created,
a thread started by Starlette's threadpool or Flask's async bridge sees them too, and a plain
``threading.Thread`` starts without them (bind there).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from iamguard.guard import Guard
from iamguard.sessions import Session

__all__ = ["bind", "current_guard", "current_session"]

current_session: ContextVar[Session | None] = ContextVar("iamguard_session", default=None)
"""The caller's session; None when nobody is authenticated (a public route, no binding)."""

current_guard: ContextVar[Guard | None] = ContextVar("iamguard_guard", default=None)
"""The guard that authorizes the caller's calls."""


@contextmanager
def bind(session: Session, guard: Guard) -> Iterator[Session]:
    """Make ``session`` the caller and ``guard`` the decider inside the ``with`` block; the
    previous values come back when it ends, even on an exception."""
    session_token = current_session.set(session)
    guard_token = current_guard.set(guard)
    try:
        yield session
    finally:
        current_guard.reset(guard_token)
        current_session.reset(session_token)
