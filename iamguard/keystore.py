"""A key ring kept in the store, so that every instance signs and verifies with the same keys.

The first instance to start generates a key (if two race, one wins and the other loads it);
the others load it. A token naming a key this instance has not seen makes it reload the ring,
so a rotation on one instance is followed by the others. The private keys are stored as PKCS#8
PEM (HS256 secrets as base64): protect the store as you would the keys.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime, timezone
from typing import Any, Final

from cryptography.hazmat.primitives import serialization

from iamguard.stores.base import Data, Reader, Store, Writer
from iamguard.tokens import KeyRing, SigningKey

KIND: Final = "signing_key"
ACCOUNT: Final = ""  # keys belong to the store, not to an account
RELOAD_INTERVAL: Final = 1.0  # seconds between reloads caused by unknown key ids


def _record(key: SigningKey) -> Data:
    if key.algorithm == "HS256":
        material = {"secret": base64.b64encode(key.private).decode()}
    else:
        pem = key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        material = {"private_pem": pem.decode()}
    created = datetime.now(timezone.utc).isoformat(timespec="microseconds")  # orders rotations
    return {"kid": key.kid, "algorithm": key.algorithm, "created": created, **material}


def _key(record: Data) -> SigningKey:
    if record["algorithm"] == "HS256":
        return SigningKey.hmac(base64.b64decode(record["secret"]), record["kid"])
    private: Any = serialization.load_pem_private_key(record["private_pem"].encode(), None)
    return SigningKey(record["kid"], record["algorithm"], private, private.public_key())


class StoredKeyRing(KeyRing):
    """A ``KeyRing`` whose keys live in the store (see the module docstring)."""

    def __init__(self, store: Store, *, algorithm: str = "EdDSA") -> None:
        self.store = store
        records = self._records()
        if not records:
            self._save(SigningKey.generate(algorithm), only_if_empty=True)
            records = self._records()
        super().__init__([_key(r) for r in records])
        self._reloaded = float("-inf")  # the first unknown key id reloads at once

    def _records(self) -> list[Data]:
        def read(tx: Reader) -> list[Data]:
            return sorted(tx.find(KIND, ACCOUNT), key=lambda r: (r["created"], r["kid"]))

        return self.store.read(read)

    def _save(self, key: SigningKey, *, only_if_empty: bool = False) -> None:
        """Store a key; with ``only_if_empty``, only when no instance has stored one yet (two
        instances starting together then share the first one's key)."""

        def write(tx: Writer) -> None:
            if not (only_if_empty and tx.count(KIND, ACCOUNT)):
                tx.insert(KIND, ACCOUNT, key.kid, _record(key))

        self.store.write(write)

    def reload(self) -> None:
        """Take in keys other instances added (rotations); drop those they retired."""
        keys = [_key(r) for r in self._records()]
        with self._lock:
            self._keys = {k.kid: k for k in keys}
            self.generation += 1

    def get(self, kid: str) -> SigningKey | None:
        key = super().get(kid)
        now = time.monotonic()
        if key is None and now - self._reloaded >= RELOAD_INTERVAL:
            # A rotation elsewhere: new keys sign there before they sign here. At most once a
            # second, so that tokens naming made-up keys cannot turn into a store read each.
            self._reloaded = now
            self.reload()
            key = super().get(kid)
        return key

    def rotate(self, algorithm: str | None = None) -> SigningKey:
        key = SigningKey.generate(algorithm or self.current.algorithm)
        self._save(key)
        self.reload()
        return key

    def retire(self, kid: str) -> None:
        super().retire(kid)  # refuses the current key
        self.store.write(lambda tx: tx.delete(KIND, ACCOUNT, kid))
