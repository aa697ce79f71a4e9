"""Sign-in throttling through the store, on every store: free attempts, a doubling lock that is
capped and always ends, a sliding window, per-user and per-address keys, and instances that agree.

Time is a fixed clock that tests move.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from iamguard.errors import IAMGuardError
from iamguard.stores import open_store
from iamguard.stores.base import Store
from iamguard.throttle import (
    ACCOUNT,
    KIND,
    SignInThrottle,
    Throttled,
    address_key,
    hashed,
    user_key,
)

ACCT = "123456789012"
START = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
USER = user_key(ACCT, "Ram")
ADDRESS = address_key("203.0.113.9")


class Clock:
    """A clock that stands still until a test moves it."""

    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(store: Store, clock: Clock) -> SignInThrottle:
    return SignInThrottle(store, clock=clock)


def retry_after(throttle: SignInThrottle, *keys: str) -> int | None:
    """The seconds ``check`` asks to wait, or None when it lets the sign-in through."""
    try:
        throttle.check(list(keys))
    except Throttled as e:
        return e.retry_after
    return None


def fail(throttle: SignInThrottle, times: int, *keys: str) -> None:
    for _ in range(times):
        throttle.record_failure(list(keys))


def test_five_free_failures_then_one_second(throttle: SignInThrottle) -> None:
    """Five failures cost nothing; the sixth locks the key for one second."""
    fail(throttle, 5, USER)
    assert retry_after(throttle, USER) is None
    fail(throttle, 1, USER)
    assert retry_after(throttle, USER) == 1


def test_lock_doubles(throttle: SignInThrottle, clock: Clock) -> None:
    """Each failure after the free ones doubles the lock: 1, 2, 4, 8, 16 seconds."""
    fail(throttle, 5, USER)
    for delay in (1, 2, 4, 8, 16):
        fail(throttle, 1, USER)
        assert retry_after(throttle, USER) == delay
        clock.advance(delay)


def test_lock_ends(throttle: SignInThrottle, clock: Clock) -> None:
    """A lock ends when its delay has passed."""
    fail(throttle, 6, USER)
    clock.advance(0.5)
    assert retry_after(throttle, USER) == 1  # rounded up
    clock.advance(0.5)
    assert retry_after(throttle, USER) is None


def test_lock_capped_at_max_delay(store: Store, clock: Clock) -> None:
    """However many failures, the lock is at most max_delay, and it ends."""
    throttle = SignInThrottle(store, clock=clock, max_delay=60, window=86_400)
    fail(throttle, 5 + 6, USER)
    assert retry_after(throttle, USER) == 32
    fail(throttle, 1, USER)
    assert retry_after(throttle, USER) == 60
    fail(throttle, 100, USER)  # even recorded during the lock
    assert retry_after(throttle, USER) == 60
    clock.advance(60)
    assert retry_after(throttle, USER) is None
    [record] = store.read(lambda tx: tx.find(KIND, ACCOUNT))
    assert len(record["failures"]) < 20  # a key's record stays small


def test_default_cap_is_fifteen_minutes(throttle: SignInThrottle) -> None:
    """By default no lock is longer than 900 seconds."""
    fail(throttle, 40, USER)
    assert retry_after(throttle, USER) == 900


def test_old_failures_are_forgotten(throttle: SignInThrottle, clock: Clock) -> None:
    """Only failures within the window count: older ones are forgotten."""
    fail(throttle, 5, USER)
    clock.advance(600)
    fail(throttle, 1, USER)  # six within 900 s
    assert retry_after(throttle, USER) == 1
    clock.advance(301)  # the first five are now older than the window
    fail(throttle, 4, USER)  # 1 + 4 within the window: free
    assert retry_after(throttle, USER) is None


def test_address_lock_is_independent(throttle: SignInThrottle) -> None:
    """An address spraying many users is locked without locking them, and a user attacked
    from many addresses is locked without locking the addresses."""
    for number in range(6):
        fail(throttle, 1, user_key(ACCT, f"user{number}"), ADDRESS)
    assert retry_after(throttle, ADDRESS) == 1
    assert retry_after(throttle, user_key(ACCT, "user0"), address_key("198.51.100.1")) is None
    assert retry_after(throttle, user_key(ACCT, "user0"), ADDRESS) == 1
    for number in range(6):
        fail(throttle, 1, USER, address_key(f"198.51.100.{number}"))
    assert retry_after(throttle, USER) == 1
    assert retry_after(throttle, address_key("198.51.100.0")) is None


def test_success_clears_the_user_not_the_address(throttle: SignInThrottle) -> None:
    """A success clears the user's failures (and lock); the address keeps its count."""
    fail(throttle, 6, USER, ADDRESS)
    throttle.record_success([USER, ADDRESS])
    assert retry_after(throttle, USER) is None
    assert retry_after(throttle, ADDRESS) == 1
    fail(throttle, 1, USER, ADDRESS)
    assert retry_after(throttle, USER) is None  # one failure since the success
    assert retry_after(throttle, ADDRESS) == 2  # the seventh


def test_check_writes_nothing(throttle: SignInThrottle, store: Store) -> None:
    """check() never writes: the model version stays, locked or not."""
    version = store.version()
    throttle.check([USER, ADDRESS])
    assert store.version() == version
    fail(throttle, 6, USER)
    version = store.version()
    assert retry_after(throttle, USER, ADDRESS) == 1
    assert store.version() == version


def test_success_without_failures_writes_nothing(throttle: SignInThrottle, store: Store) -> None:
    """A success with nothing to clear leaves the model version as it was."""
    version = store.version()
    throttle.record_success([USER, ADDRESS])
    assert store.version() == version


def test_throttled_error(throttle: SignInThrottle) -> None:
    """Throttled is AWS's `Throttling` (429) with retry_after, and names no key."""
    fail(throttle, 6, USER)
    with pytest.raises(Throttled) as caught:
        throttle.check([USER])
    error = caught.value
    assert isinstance(error, IAMGuardError)
    assert (error.code, error.status, error.retry_after) == ("Throttling", 429, 1)
    assert str(error) == "too many failed sign-in attempts: try again in 1 seconds"


def test_keys_are_never_stored_or_logged_in_clear(
    throttle: SignInThrottle, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Records and audit events hold a hash of the key, never a typed name or address."""
    caplog.set_level(logging.INFO, logger="iamguard.audit")
    typed = user_key(ACCT, "Hunter2-typed-in-the-name-field")
    fail(throttle, 6, typed, ADDRESS)
    stored = json.dumps(store.read(lambda tx: tx.find(KIND, ACCOUNT)))
    logged = [event for r in caplog.records if (event := getattr(r, "audit", None))]
    for text in ("hunter2", "203.0.113.9"):
        assert text not in stored.lower()
        assert text not in caplog.text.lower()
    assert logged == [
        {"event": "throttle.locked", "key_kind": kind, "key": hashed(key)[:16],
         "until": "2024-05-06T07:08:10Z", "failures": 6}
        for kind, key in (("user", typed), ("ip", ADDRESS))
    ]  # fmt: skip


def test_keys(throttle: SignInThrottle) -> None:
    """User keys ignore letter case; an IPv6 /64 is one address; IPv4-mapped is IPv4."""
    assert user_key(ACCT, "RAM") == user_key(ACCT, "ram") == f"user:{ACCT}/ram"
    assert address_key("2001:DB8::1") == address_key("2001:db8::ffff:1") == "ip:2001:db8::/64"
    assert address_key("2001:db8:0:1::1") != address_key("2001:db8::1")
    assert address_key("::ffff:203.0.113.9") == ADDRESS == "ip:203.0.113.9"
    assert address_key(" unix-socket ") == "ip:unix-socket"
    fail(throttle, 6, user_key(ACCT, "RAM"))
    assert retry_after(throttle, USER) == 1


def test_purge(throttle: SignInThrottle, store: Store, clock: Clock) -> None:
    """purge() deletes records that no longer count and keeps the rest."""
    fail(throttle, 6, USER)
    fail(throttle, 1, ADDRESS)
    assert throttle.purge() == 0
    clock.advance(901)
    fail(throttle, 1, ADDRESS)
    assert throttle.purge() == 1
    assert [r["kind"] for r in store.read(lambda tx: tx.find(KIND, ACCOUNT))] == ["ip"]


def test_bad_settings(store: Store) -> None:
    """Negative free attempts and empty windows or delays are refused."""
    for settings in ({"free_attempts": -1}, {"window": 0}, {"max_delay": 0}):
        with pytest.raises(ValueError, match="free_attempts"):
            SignInThrottle(store, **settings)  # type: ignore[arg-type]


@pytest.fixture
def two_stores(store_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores opened on one database, as two instances of an app would."""
    first, second = open_store(store_url), open_store(store_url)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_instances_agree(two_stores: tuple[Store, Store], clock: Clock) -> None:
    """Failures recorded through two instances add up, and a lock set through one holds in the
    other, as does a success."""
    one, two = (SignInThrottle(s, clock=clock) for s in two_stores)
    fail(one, 3, USER, ADDRESS)
    fail(two, 3, USER, ADDRESS)
    assert retry_after(one, USER) == retry_after(two, USER) == 1
    two.record_success([USER])
    assert retry_after(one, USER) is None
    assert retry_after(one, ADDRESS) == 1
