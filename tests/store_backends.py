"""Fixtures giving each test a fresh store of every kind (filled in with the SQL stores)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from iamguard.stores.base import Store
from iamguard.stores.memory import MemoryStore


@pytest.fixture(params=["memory"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh, empty store of each kind."""
    created = MemoryStore()
    yield created
    created.close()
