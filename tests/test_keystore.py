"""The key ring kept in the store: shared by every instance, across rotations and restarts."""

from __future__ import annotations

import pytest

from iamguard.errors import InvalidClientTokenId
from iamguard.keystore import StoredKeyRing
from iamguard.stores import open_store
from iamguard.tokens import Tokens


def tokens(ring: StoredKeyRing) -> Tokens:
    return Tokens(ring, issuer="iamguard", audience="app")


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "RS256", "HS256"])
def test_another_instance_verifies_what_one_issued(store_url: str, algorithm: str) -> None:
    """Two instances on one store: the second loads the first's key and verifies its tokens."""
    first_store, second_store = open_store(store_url), open_store(store_url)
    try:
        first = StoredKeyRing(first_store, algorithm=algorithm)
        second = StoredKeyRing(second_store, algorithm="EdDSA")  # the stored key wins
        assert second.current.kid == first.current.kid
        assert second.current.algorithm == algorithm
        token, _ = tokens(first).issue("arn:iamguard:iam::123456789012:user/ram", 900, {})
        assert tokens(second).verify(token)["sub"].endswith("user/ram")
    finally:
        first_store.close()
        second_store.close()


def test_a_rotation_on_one_instance_is_followed_by_the_others(store_url: str) -> None:
    """After A rotates, B verifies A's new tokens (it reloads on an unknown kid) and old tokens
    keep verifying until the old key is retired."""
    store_a, store_b = open_store(store_url), open_store(store_url)
    try:
        ring_a, ring_b = StoredKeyRing(store_a), StoredKeyRing(store_b)
        old_token, _ = tokens(ring_a).issue("sub", 900, {})
        old_kid = ring_a.current.kid
        new_key = ring_a.rotate()
        new_token, _ = tokens(ring_a).issue("sub", 900, {})
        assert tokens(ring_b).verify(new_token)["sub"] == "sub"
        assert ring_b.current.kid == new_key.kid
        assert tokens(ring_b).verify(old_token)["sub"] == "sub"
        ring_a.retire(old_kid)
        ring_b.reload()
        with pytest.raises(InvalidClientTokenId):
            Tokens(ring_b, issuer="iamguard", audience="app").verify(old_token)
    finally:
        store_a.close()
        store_b.close()


def test_keys_survive_a_restart(store_url: str) -> None:
    """A token issued before a restart verifies after it: the ring is in the store."""
    store = open_store(store_url)
    token, _ = tokens(StoredKeyRing(store)).issue("sub", 900, {})
    store.close()
    store = open_store(store_url)
    try:
        assert tokens(StoredKeyRing(store)).verify(token)["sub"] == "sub"
    finally:
        store.close()
