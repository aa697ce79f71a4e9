"""Brute-force protection for sign-in, kept in the store so that every instance agrees.

Failures are counted per key: one per user (``user_key``) and one per source address
(``address_key``). Within ``window`` seconds, ``free_attempts`` failures cost nothing; each one
after them locks the key for a delay that doubles (1 s, 2 s, 4 s, ...) up to ``max_delay``.
A lock always ends, and failures older than ``window`` are forgotten, so that an attacker can
slow a user's sign-in down but never lock them out for good. A success clears the user's count
and keeps the address's: one account that signs in must not launder an address that is trying
passwords against many others.

With a sliding window, failures drop out while the delays grow: with the defaults (900 s both)
a guesser that retries the moment each lock ends gets about 930 tries a day on one key, with
``window=3600`` about 330. Lengthen the window for fewer; the address key limits them as well.

Records (kind ``signin_failures``) live in the pseudo-account ``""``, keyed by a SHA-256 of the
key: a name typed at sign-in (sometimes a password typed in the wrong field) is never stored or
logged in the clear. The hash is a pseudonym for correlation, not a secret: names and addresses
can be guessed and hashed. Each failure is a write, which bumps the model version.

Use: ``check(keys)`` before verifying a credential (it raises ``Throttled``, and never
writes); then ``record_failure(keys)`` or ``record_success(keys)``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Final

from iamguard.audit import audit
from iamguard.errors import IAMGuardError
from iamguard.iam.base import Clock, timestamp, utc_now
from iamguard.stores.base import Data, Reader, Store, Writer

KIND: Final = "signin_failures"
ACCOUNT: Final = ""  # a pseudo-account, never a real one (accounts have 12 digits)
IPV6_PREFIX: Final = 64  # an IPv6 client usually holds a whole /64: count it as one address


class Throttled(IAMGuardError):
    """Too many failed sign-ins for a user or an address: try again after ``retry_after``
    seconds (429 at the HTTP layer, with a ``Retry-After`` header)."""

    code = "Throttling"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def user_key(account: str, user_name: str) -> str:
    """The key counting failed sign-ins to a user, whatever its letter case."""
    return f"user:{account}/{user_name}".lower()


def address_key(address: str) -> str:
    """The key counting failed sign-ins from an address: an IPv4 address, the /64 of an IPv6
    address (IPv4-mapped addresses count as IPv4), or the text as given when it is neither."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return f"ip:{address.strip().lower()}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address):
        return f"ip:{ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False).compressed}"
    return f"ip:{ip.compressed}"


def hashed(key: str) -> str:
    """The record key (and the audit pseudonym) of a throttle key."""
    return hashlib.sha256(key.lower().encode()).hexdigest()


class SignInThrottle:
    """Counts failed sign-ins in ``store`` and locks keys that fail too often (see the module
    docstring). ``window`` and ``max_delay`` are in seconds."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = utc_now,
        free_attempts: int = 5,
        window: float = 900.0,
        max_delay: float = 900.0,
    ) -> None:
        if free_attempts < 0 or window <= 0 or max_delay <= 0:
            raise ValueError("free_attempts must be >= 0; window and max_delay > 0")
        self.store = store
        self.clock = clock
        self.free_attempts = free_attempts
        self.window = window
        self.max_delay = max_delay
        # failures kept per key: enough for the delay to reach max_delay, and no more
        self._kept = free_attempts + max(1, math.ceil(math.log2(max_delay)) + 2)

    def check(self, keys: Iterable[str]) -> None:
        """Raise ``Throttled`` when any key is locked now. Reads only."""
        now = self.clock().timestamp()
        wanted = [hashed(k) for k in keys]

        def locks(tx: Reader) -> list[float]:
            found = (tx.get(KIND, ACCOUNT, key) for key in wanted)
            return [r["locked_until"] for r in found if r and (r["locked_until"] or 0) > now]

        until = self.store.read(locks)
        if until:
            retry_after = max(1, math.ceil(max(until) - now))
            raise Throttled(
                f"too many failed sign-in attempts: try again in {retry_after} seconds",
                retry_after,
            )

    def record_failure(self, keys: Iterable[str]) -> None:
        """Count a failed sign-in against every key, in one transaction; lock those past their
        free attempts."""
        now = self.clock().timestamp()
        named = {hashed(k): k.partition(":")[0] for k in keys}

        def record(tx: Writer) -> dict[str, tuple[float, int]]:
            locked = {}
            for key, kind in named.items():
                data = tx.get(KIND, ACCOUNT, key)
                updated = self._failed(key, kind, data, now)
                if data is None:
                    tx.insert(KIND, ACCOUNT, key, updated)
                else:
                    tx.update(KIND, ACCOUNT, key, updated)
                if updated["locked_until"] != (data or {}).get("locked_until"):
                    locked[key] = (updated["locked_until"], len(updated["failures"]))
            return locked

        for key, (until, failures) in self.store.write(record).items():
            moment = datetime.fromtimestamp(until, timezone.utc)
            audit("throttle.locked", key_kind=named[key], key=key[:16], until=timestamp(moment),
                  failures=failures)  # fmt: skip

    def record_success(self, keys: Iterable[str]) -> None:
        """Clear the user keys' failures (and any lock); address keys keep theirs."""
        users = [hashed(k) for k in keys if k.lower().startswith("user:")]

        def clear(tx: Writer) -> None:
            for key in users:
                tx.delete(KIND, ACCOUNT, key)

        if users:
            self.store.write(clear)

    def purge(self) -> int:
        """Delete the records that no longer count (no failure in the window, no lock); call it
        now and then. Returns how many were deleted."""
        now = self.clock().timestamp()

        def purge(tx: Writer) -> int:
            stale = [
                r["key"] for r in tx.find(KIND, ACCOUNT)
                if (r["locked_until"] or 0) <= now
                and all(t <= now - self.window for t in r["failures"])
            ]  # fmt: skip
            for key in stale:
                tx.delete(KIND, ACCOUNT, key)
            return len(stale)

        return self.store.write(purge)

    def _failed(self, key: str, kind: str, data: Data | None, now: float) -> Data:
        """A key's record after one more failure at ``now``."""
        old = data or {"failures": [], "locked_until": None}
        failures = [t for t in old["failures"] if t > now - self.window] + [now]
        failures = failures[-self._kept :]
        locked_until = old["locked_until"]
        beyond = len(failures) - self.free_attempts
        if beyond > 0:
            delay = min(self.max_delay, 2.0 ** (beyond - 1))
            locked_until = max(locked_until or 0, now + delay)
        return {"key": key, "kind": kind, "failures": failures, "locked_until": locked_until}
