"""Where the model lives: ``open_store(url)`` opens the store a URL names."""

from __future__ import annotations

from iamguard.errors import InvalidInput
from iamguard.stores.base import Store
from iamguard.stores.memory import MemoryStore

__all__ = ["open_store"]


def open_store(url: str, *, create: bool = True) -> Store:
    """The store at ``url``: ``memory://``, ``sqlite:///path/to/iamguard.db`` (a file) or
    ``postgresql://user:password@host:5432/db`` (through psycopg 3). Unknown schemes raise
    ``InvalidInput``. ``create=False``: a SQLite file that does not exist raises
    ``StoreUnavailable`` instead of becoming a new, empty store (what an app serving requests
    wants: a mistyped path must not deny everything in silence).
    """
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme.partition("+")[0] in ("sqlite", "postgresql", "postgres"):
        try:
            from iamguard.stores.sql import SQLStore  # noqa: PLC0415 -- an optional dependency
        except ImportError as e:
            raise InvalidInput(
                f"store url `{scheme}://...`: needs SQLAlchemy and psycopg:"
                " pip install 'iamguard[postgres]'"
            ) from e
        return SQLStore(url, create=create)
    raise InvalidInput(
        f"store url `{scheme}://...`: unknown scheme `{scheme}`:"
        " use `memory://`, `sqlite:///path` or `postgresql://user@host/db`"
    )
