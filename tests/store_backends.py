"""Fixtures giving each test a fresh store of every kind: memory, SQLite and PostgreSQL.

SQLite is a file in the test's ``tmp_path``. PostgreSQL is the server at 127.0.0.1:5432 (user
``postgres``, database ``test``): each test gets a schema of its own, dropped afterwards. Without
that server the PostgreSQL tests skip, or fail when ``IAMGUARD_TEST_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from iamguard.stores import open_store
from iamguard.stores.base import Store

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@functools.cache
def _postgres_problem() -> str | None:
    """Why the PostgreSQL server cannot be used, or None (asked once per session)."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES, connect_timeout=3):
            return None
    except psycopg.Error as e:
        return str(e).strip() or type(e).__name__


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def fresh_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty store of ``kind`` ("memory", "sqlite", "postgres"), removed after."""
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'iamguard.db'}"
    else:
        problem = _postgres_problem()
        if problem is not None:
            message = f"PostgreSQL at 127.0.0.1:5432 does not answer: {problem}"
            if os.environ.get("IAMGUARD_TEST_REQUIRE_SERVICES") == "1":
                pytest.fail(message)
            pytest.skip(message)
        schema = f"iamguard_test_{uuid.uuid4().hex}"
        _admin(f"CREATE SCHEMA {schema}")
        try:
            yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
        finally:
            _admin(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh SQL store of each kind, for tests that open it more than once."""
    with fresh_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each kind."""
    with fresh_url(request.param, tmp_path) as url:
        opened = open_store(url)
        try:
            yield opened
        finally:
            opened.close()
