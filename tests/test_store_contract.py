"""The ``Store`` contract, run against every store; then what only the SQL stores promise."""

from __future__ import annotations

import queue
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from store_backends import fresh_url

from iamguard.errors import (
    ConcurrentModification,
    InvalidInput,
    StoreCorrupted,
    StoreError,
    StoreUnavailable,
)
from iamguard.stores import open_store
from iamguard.stores.base import Change, KeyExists, Reader, Store, Writer
from iamguard.stores.memory import MemoryStore
from iamguard.stores.sql import SCHEMA_VERSION, SQLStore


class Boom(Exception):
    """What a failing transaction raises."""


def _put(
    store: Store, key: str, data: dict[str, Any] | None = None, *,
    kind: str = "user", account: str = "a", parent: str | None = None, ref: str | None = None,
) -> None:  # fmt: skip
    store.write(
        lambda tx: tx.insert(kind, account, key, data or {"k": key}, parent=parent, ref=ref)
    )


def _get(store: Store, key: str, *, kind: str = "user", account: str = "a") -> Any:
    return store.read(lambda tx: tx.get(kind, account, key))


def _keys(records: list[dict[str, Any]]) -> list[str]:
    return [r["k"] for r in records]


# -- the contract, on every store ------------------------------------------------------------


def test_get_insert_update_delete(store: Store) -> None:
    """A record can be inserted, read, replaced and removed; a missing one reads as None."""
    assert _get(store, "alice") is None
    _put(store, "alice", {"k": "alice", "n": 1})
    assert _get(store, "alice") == {"k": "alice", "n": 1}
    store.write(lambda tx: tx.update("user", "a", "alice", {"k": "alice", "n": 2}))
    assert _get(store, "alice") == {"k": "alice", "n": 2}
    store.write(lambda tx: tx.delete("user", "a", "alice"))
    assert _get(store, "alice") is None


def test_records_are_addressed_by_kind_account_and_key(store: Store) -> None:
    """The same key in another account or of another kind is another record."""
    _put(store, "alice", {"k": "1"})
    _put(store, "alice", {"k": "2"}, account="b")
    _put(store, "alice", {"k": "3"}, kind="role")
    assert [_get(store, "alice"), _get(store, "alice", account="b")] == [{"k": "1"}, {"k": "2"}]
    assert _get(store, "alice", kind="role") == {"k": "3"}


@pytest.mark.parametrize("key", ["Alice", "alice", "ALICE"])
def test_insert_refuses_an_existing_key_in_any_letter_case(store: Store, key: str) -> None:
    """Inserting a key that exists in any letter case raises KeyExists and writes nothing."""
    _put(store, "Alice", {"k": "first"})
    with pytest.raises(KeyExists):
        _put(store, key, {"k": "second"})
    assert _get(store, "alice") == {"k": "first"}
    assert store.version() == 1


def test_a_transaction_that_catches_key_exists_can_go_on_writing(store: Store) -> None:
    """KeyExists leaves the transaction usable: what the function writes next is committed."""
    _put(store, "alice")

    def insert_or_else(tx: Writer) -> None:
        try:
            tx.insert("user", "a", "ALICE", {"k": "again"})
        except KeyExists:
            tx.insert("user", "a", "bob", {"k": "bob"})

    store.write(insert_or_else)
    assert store.read(lambda tx: _keys(tx.find("user", "a"))) == ["alice", "bob"]
    assert store.version() == 2


def test_update_of_a_missing_record_raises_key_error(store: Store) -> None:
    """Updating a record that does not exist raises KeyError and writes nothing."""
    with pytest.raises(KeyError):
        store.write(lambda tx: tx.update("user", "a", "nobody", {}))
    assert _get(store, "nobody") is None
    assert store.version() == 0


def test_keys_parents_and_refs_ignore_case_but_data_keeps_it(store: Store) -> None:
    """Look-ups fold the letter case of keys, parents and refs; stored data keeps its own."""
    _put(store, "Alice", {"Name": "Alice", "Path": "/Dev/"}, parent="Devs", ref="ReadOnly")
    stored = {"Name": "Alice", "Path": "/Dev/"}

    def look(tx: Reader) -> list[Any]:
        return [
            tx.get("user", "a", "aLiCe"),
            tx.find("user", "a", parent="DEVS"),
            tx.find("user", "a", ref="readonly"),
            tx.count("user", "a", parent="devs", ref="READONLY"),
            tx.locate("user", "ALICE"),
        ]

    assert store.read(look) == [stored, [stored], [stored], 1, ("a", stored)]
    store.write(lambda tx: tx.update("user", "a", "ALICE", {"Name": "Alice2"}))
    store.write(lambda tx: tx.delete("user", "a", "alIce"))
    assert _get(store, "Alice") is None


def test_find_and_count_by_parent_by_ref_by_both_and_all(store: Store) -> None:
    """find and count select by parent, by ref, by both, or all records of a kind in an account."""
    _put(store, "k1", parent="g1", ref="p1")
    _put(store, "k2", parent="g1", ref="p2")
    _put(store, "k3", parent="g2", ref="p1")
    _put(store, "k4")
    _put(store, "k5", parent="g1", ref="p1", account="b")
    _put(store, "k6", parent="g1", ref="p1", kind="role")
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({}, ["k1", "k2", "k3", "k4"]),
        ({"parent": "g1"}, ["k1", "k2"]),
        ({"ref": "p1"}, ["k1", "k3"]),
        ({"parent": "g1", "ref": "p1"}, ["k1"]),
        ({"parent": "g2", "ref": "p2"}, []),
        ({"parent": "nobody"}, []),
    ]
    for where, expected in cases:
        assert store.read(lambda tx, w=where: _keys(tx.find("user", "a", **w))) == expected, where
        assert store.read(lambda tx, w=where: tx.count("user", "a", **w)) == len(expected), where


def test_find_orders_records_by_folded_key(store: Store) -> None:
    """find lists records in the order of their keys' lower-case forms, whatever the insert order."""
    for key in ["delta", "Bravo", "alpha", "Charlie", "b-2", "B_1"]:
        _put(store, key)
    found = store.read(lambda tx: _keys(tx.find("user", "a")))
    assert (
        found
        == sorted(found, key=str.lower)
        == ["alpha", "b-2", "B_1", "Bravo", "Charlie", "delta"]
    )


def test_update_keeps_parent_and_ref(store: Store) -> None:
    """Replacing a record's data keeps its parent and its ref."""
    _put(store, "k1", parent="g1", ref="p1")
    store.write(lambda tx: tx.update("user", "a", "k1", {"k": "k1", "v": 2}))
    assert store.read(lambda tx: tx.find("user", "a", parent="g1", ref="p1")) == [
        {"k": "k1", "v": 2}
    ]


def test_locate_finds_a_key_across_accounts(store: Store) -> None:
    """locate finds a record by a key unique across accounts and tells its account."""
    _put(store, "AKIAONE", kind="accesskey", account="111111111111")
    _put(store, "AKIATWO", kind="accesskey", account="222222222222")
    _put(store, "AKIAUSER", kind="user", account="333333333333")
    assert store.read(lambda tx: tx.locate("accesskey", "akiatwo")) == (
        "222222222222",
        {"k": "AKIATWO"},
    )
    assert store.read(lambda tx: tx.locate("accesskey", "AKIAUSER")) is None
    assert store.read(lambda tx: tx.locate("accesskey", "AKIANONE")) is None


def test_records_are_copies(store: Store) -> None:
    """Mutating the dict given to insert, or one returned by a read, changes nothing stored."""
    original = {"k": "alice", "tags": [{"key": "team", "value": "red"}], "n": {"a": 1}}
    data = {"k": "alice", "tags": [{"key": "team", "value": "red"}], "n": {"a": 1}}

    def insert_then_mutate(tx: Writer) -> None:
        tx.insert("user", "a", "alice", data, parent="g")
        data["tags"][0]["value"] = "blue"
        data["n"]["a"] = 2
        assert tx.get("user", "a", "alice") == original
        tx.get("user", "a", "alice")["tags"].append("x")  # type: ignore[index]
        assert tx.find("user", "a")[0] == original

    store.write(insert_then_mutate)
    store.read(lambda tx: tx.get("user", "a", "alice"))["tags"].clear()  # type: ignore[index]
    store.read(lambda tx: tx.find("user", "a", parent="g"))[0]["n"]["a"] = 3
    store.read(lambda tx: tx.locate("user", "alice"))[1]["k"] = "bob"  # type: ignore[index]
    assert _get(store, "alice") == original


def test_a_failing_write_rolls_back_everything(store: Store) -> None:
    """A write whose function raises undoes its inserts, updates and deletes; the error propagates."""
    _put(store, "keep", parent="g")
    _put(store, "gone", parent="g")
    before = store.version()
    boom = Boom("no")

    def fail(tx: Writer) -> None:
        tx.insert("user", "a", "new", {"k": "new"}, parent="g")
        tx.update("user", "a", "keep", {"k": "changed"})
        tx.delete("user", "a", "gone")
        tx.insert("group", "a", "devs", {"k": "devs"})
        raise boom

    with pytest.raises(Boom) as raised:
        store.write(fail)
    assert raised.value is boom
    assert store.read(lambda tx: _keys(tx.find("user", "a", parent="g"))) == ["gone", "keep"]
    assert store.read(lambda tx: tx.count("group", "a")) == 0
    assert store.version() == before
    assert store.changes_since(before) == []
    assert len(store.changes_since(0) or []) == 2


def test_each_writing_transaction_bumps_the_version_once(store: Store) -> None:
    """A write bumps the version by exactly 1, however much it writes; one that writes nothing doesn't."""
    assert store.version() == 0

    def three(tx: Writer) -> None:
        for key in ["a1", "a2", "a3"]:
            tx.insert("user", "a", key, {})

    store.write(three)
    assert store.version() == 1
    store.write(lambda tx: tx.get("user", "a", "a1"))
    store.write(lambda tx: tx.delete("user", "a", "nobody"))
    store.read(lambda tx: tx.find("user", "a"))
    assert store.version() == 1
    store.write(lambda tx: tx.delete("user", "a", "a1"))
    assert store.version() == 2


def test_changes_since_lists_each_changed_key_once_per_version_oldest_first(store: Store) -> None:
    """changes_since names every record each write changed, once per version, oldest first."""

    def second(tx: Writer) -> None:
        tx.update("user", "a", "alice", {"n": 1})
        tx.update("user", "a", "ALICE", {"n": 2})
        tx.delete("user", "a", "Bob")

    def third(tx: Writer) -> None:
        tx.insert("group", "b", "Devs", {})
        tx.delete("group", "b", "devs")

    store.write(lambda tx: [tx.insert("user", "a", k, {}) for k in ["Alice", "Bob"]])
    store.write(second)
    store.write(third)
    changes = store.changes_since(0)
    assert changes is not None
    assert [c.version for c in changes] == [1, 1, 2, 2, 3]
    assert sorted((c.version, c.kind, c.account, c.key) for c in changes) == [
        (1, "user", "a", "alice"),
        (1, "user", "a", "bob"),
        (2, "user", "a", "alice"),
        (2, "user", "a", "bob"),
        (3, "group", "b", "devs"),
    ]
    assert store.changes_since(2) == [Change(3, "group", "b", "devs")]
    assert store.changes_since(3) == []
    assert store.changes_since(store.version() + 5) == []


def test_reads_never_see_uncommitted_data(store: Store) -> None:
    """A read that runs while a write is in progress does not see that write's data."""
    seen: list[Any] = []
    readers: list[threading.Thread] = []

    def read_then_fail(tx: Writer) -> None:
        tx.insert("user", "a", "ghost", {"k": "ghost"})
        reader = threading.Thread(target=lambda: seen.append(_get(store, "ghost")))
        reader.start()
        readers.append(reader)
        reader.join(timeout=0.3)  # the memory store makes readers wait for the writer
        raise Boom

    with pytest.raises(Boom):
        store.write(read_then_fail)
    readers[0].join()
    assert seen == [None]


def test_a_read_sees_one_snapshot(store: Store) -> None:
    """A write that commits while a read runs does not show up in that read."""
    _put(store, "k1")
    writers: list[threading.Thread] = []

    def count_twice(tx: Reader) -> tuple[int, int]:
        first = tx.count("user", "a")
        writer = threading.Thread(target=_put, args=(store, "k2"))
        writer.start()
        writers.append(writer)
        writer.join(timeout=0.5)  # the memory store makes writers wait for readers
        return first, tx.count("user", "a")

    assert store.read(count_twice) == (1, 1)
    writers[0].join()
    assert store.read(lambda tx: tx.count("user", "a")) == 2


def test_a_transaction_knows_the_version_it_reads(store: Store) -> None:
    """``Reader.version()`` is the version of the state a read sees, wherever in the read it is
    asked: a write committing meanwhile changes neither it nor the records; in a write it is
    the version before that write."""
    assert store.read(lambda tx: tx.version()) == 0
    _put(store, "k1")
    assert store.read(lambda tx: tx.version()) == store.version() == 1
    assert store.write(lambda tx: [tx.version(), tx.insert("user", "a", "k2", {})][0]) == 1
    writers: list[threading.Thread] = []

    def version_around_a_write(tx: Reader) -> tuple[Any, ...]:
        first = (tx.count("user", "a"), tx.version())
        writer = threading.Thread(target=_put, args=(store, "k3"))
        writer.start()
        writers.append(writer)
        writer.join(timeout=0.5)  # the memory store makes writers wait for readers
        return first, (tx.version(), tx.count("user", "a"))

    assert store.read(version_around_a_write) == ((2, 2), (2, 2))
    writers[0].join()
    assert store.read(lambda tx: (tx.version(), tx.count("user", "a"))) == (3, 3)
    assert store.version() == 3


def test_threads_sharing_a_store_lose_no_write(store: Store) -> None:
    """Many threads writing through one store: every write lands and bumps the version once."""
    keys = [f"t{t}-{i}" for t in range(8) for i in range(10)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: _put(store, key), keys))
    assert store.read(lambda tx: tx.count("user", "a")) == 80
    assert store.version() == 80


# -- what only the SQL stores promise --------------------------------------------------------

_WORKER = """
import sys
from iamguard.stores import open_store

url, name, count, quota = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = open_store(url)
print("ready", flush=True)
sys.stdin.readline()

def insert(tx, key):
    if quota and tx.count("user", "a", parent="x") >= quota:
        return
    tx.insert("user", "a", key, {"k": key}, parent="x")

for i in range(count):
    store.write(lambda tx: insert(tx, f"{name}-{i}"))
store.close()
"""


def _race(url: str, processes: int, count: int, quota: int = 0) -> None:
    """Start ``processes`` Python processes on the store; let them all write at once."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, f"p{n}", str(count), str(quota)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline() == "ready\n", worker.communicate()[1]
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        for worker in workers:
            _, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()


@pytest.fixture
def sql_store(store_url: str) -> Iterator[SQLStore]:
    """An open SQL store of each kind."""
    opened = SQLStore(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh PostgreSQL store."""
    with fresh_url("postgres", tmp_path) as url:
        yield url


def _execute(url: str, statement: str) -> None:
    """Run SQL on a store's database behind the store's back."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
            conn.execute(statement)
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]


def _scalar(url: str, query: str) -> Any:
    """One value read from a store's database behind the store's back."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return conn.execute(query).fetchone()[0]
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()  # type: ignore[arg-type]
        return None if row is None else row[0]


def test_store_survives_a_restart(store_url: str) -> None:
    """Closing and reopening the same URL finds the records, the version and the change log."""
    first = SQLStore(store_url)
    _put(first, "Alice", {"k": "Alice"}, parent="g")
    first.write(lambda tx: tx.update("user", "a", "alice", {"k": "Alice", "n": 2}))
    first.close()
    second = SQLStore(store_url)
    try:
        assert second.version() == 2
        assert second.read(lambda tx: tx.find("user", "a", parent="G")) == [{"k": "Alice", "n": 2}]
        assert [c.version for c in second.changes_since(0) or []] == [1, 2]
    finally:
        second.close()


def test_two_processes_writing_at_once_lose_nothing(store_url: str) -> None:
    """Two processes inserting into one store concurrently: all records land, version == 2N."""
    _race(store_url, processes=2, count=25)
    store = SQLStore(store_url)
    try:
        assert store.read(lambda tx: tx.count("user", "a")) == 50
        assert store.version() == 50
        assert len(store.changes_since(0) or []) == 50
    finally:
        store.close()


def test_check_then_insert_races_never_exceed_a_quota(store_url: str) -> None:
    """Processes that each count, then insert only below a quota of 2, never make 3."""
    _race(store_url, processes=3, count=4, quota=2)
    store = SQLStore(store_url)
    try:
        assert store.read(lambda tx: tx.count("user", "a", parent="x")) == 2
        assert store.version() == 2
    finally:
        store.close()


def test_change_log_is_pruned_to_the_newest_versions(store_url: str) -> None:
    """With log_limit=3 the log keeps 3 versions; asking from further back answers None."""
    store = SQLStore(store_url, log_limit=3)
    try:
        for n in range(5):
            _put(store, f"k{n}")
        assert store.changes_since(1) is None
        assert [c.version for c in store.changes_since(2) or []] == [3, 4, 5]
    finally:
        store.close()


def test_a_newer_schema_is_refused(store_url: str) -> None:
    """A store whose schema version is newer than the library's raises StoreCorrupted."""
    SQLStore(store_url).close()
    newer = SCHEMA_VERSION + 1
    _execute(store_url, f"UPDATE meta SET value = {newer} WHERE name = 'schema_version'")
    with pytest.raises(StoreCorrupted, match=f"schema version {newer} is newer than this"):
        SQLStore(store_url)


def test_a_schema_1_store_is_migrated_with_its_data(store_url: str) -> None:
    """A store left at schema 1 (the first indexes) opens migrated to the current schema, its
    records and version intact, and lists by parent and ref as before."""
    store = SQLStore(store_url)
    store.write(lambda tx: tx.insert("k", "a", "one", {"n": 1}, parent="p", ref="r"))
    store.close()
    for statement in (
        "DROP INDEX records_by_parent_key",
        "DROP INDEX records_by_ref_key",
        "CREATE INDEX records_by_parent ON records (kind, account, parent_folded)",
        "CREATE INDEX records_by_ref ON records (kind, account, ref_folded)",
        "UPDATE meta SET value = 1 WHERE name = 'schema_version'",
    ):
        _execute(store_url, statement)
    store = SQLStore(store_url)
    try:
        assert store.version() == 1
        assert store.read(lambda tx: tx.find("k", "a", parent="P", ref="R")) == [{"n": 1}]
        assert _scalar(store_url, "SELECT value FROM meta WHERE name = 'schema_version'") == 2
    finally:
        store.close()


def test_sqlite_lists_by_parent_through_its_index_without_statistics(tmp_path: Path) -> None:
    """Without ANALYZE, a listing by parent or ref uses its composite index (no scan of a kind)."""
    path = tmp_path / "iamguard.db"
    SQLStore(f"sqlite:///{path}").close()
    with closing(sqlite3.connect(path)) as conn:
        plans = {
            column: " ".join(
                row[-1] for row in conn.execute(
                    "EXPLAIN QUERY PLAN SELECT data FROM records WHERE kind = ? AND account = ? "
                    f"AND {column} = ? ORDER BY key_folded", ("membership", "a", "ram"),
                )
            )
            for column in ("parent_folded", "ref_folded")
        }  # fmt: skip
    assert "records_by_parent_key" in plans["parent_folded"]
    assert "records_by_ref_key" in plans["ref_folded"]
    assert not any("TEMP B-TREE" in plan for plan in plans.values())


def test_closed_store_refuses_use(sql_store: SQLStore) -> None:
    """A closed store raises StoreError rather than quietly reconnecting."""
    sql_store.close()
    with pytest.raises(StoreError, match="closed"):
        sql_store.version()


def test_a_file_that_is_not_sqlite_is_corrupted(tmp_path: Path) -> None:
    """Opening a file of garbage bytes raises StoreCorrupted."""
    path = tmp_path / "garbage.db"
    path.write_bytes(bytes(range(256)) * 16)
    with pytest.raises(StoreCorrupted, match="not an iamguard store"):
        SQLStore(f"sqlite:///{path}")


def test_a_foreign_sqlite_database_is_corrupted(tmp_path: Path) -> None:
    """A SQLite database with a `records` table but no iamguard schema raises StoreCorrupted."""
    url = f"sqlite:///{tmp_path / 'other.db'}"
    _execute(url, "CREATE TABLE records (x)")
    with pytest.raises(StoreCorrupted, match="no `meta` table"):
        SQLStore(url)


def test_a_read_only_sqlite_file_refuses_writes_clearly(tmp_path: Path) -> None:
    """A store opened read-only reads, and raises a StoreError saying so on write."""
    path = tmp_path / "iamguard.db"
    writable = SQLStore(f"sqlite:///{path}")
    _put(writable, "alice")
    writable.close()
    read_only = SQLStore(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        assert _get(read_only, "alice") == {"k": "alice"}
        with pytest.raises(StoreError, match="read-only"):
            _put(read_only, "bob")
    finally:
        read_only.close()


def test_a_locked_sqlite_database_is_unavailable_after_the_busy_timeout(tmp_path: Path) -> None:
    """While another connection holds BEGIN EXCLUSIVE, a write waits busy_timeout, then gives up."""
    path = tmp_path / "iamguard.db"
    store = SQLStore(f"sqlite:///{path}", busy_timeout=0.2)
    with closing(sqlite3.connect(path, isolation_level=None)) as locker:
        locker.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="locked by another writer"):
                _put(store, "alice")
            assert 0.15 < time.monotonic() - started < 3
            assert _get(store, "alice") is None  # WAL: readers still read
        finally:
            locker.execute("ROLLBACK")
            store.close()


def test_unreachable_postgres_is_unavailable_quickly() -> None:
    """A server that does not answer raises StoreUnavailable at once, without the password."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        SQLStore("postgresql://ram:s3cret@127.0.0.1:1/iam", connect_timeout=2)
    assert time.monotonic() - started < 5
    assert "s3cret" not in str(raised.value)
    assert "ram:***@127.0.0.1:1" in str(raised.value)


def test_a_connection_the_server_dropped_is_replaced(pg_url: str) -> None:
    """After the server drops the store's pooled connection, the next call reconnects, no error."""
    store = SQLStore(pg_url)
    try:
        _put(store, "alice")
        pooled = store._engine.raw_connection()
        try:
            pid = pooled.driver_connection.info.backend_pid  # type: ignore[union-attr]
        finally:
            pooled.close()
        _execute(pg_url, f"SELECT pg_terminate_backend({pid}, 5000)")
        assert store.version() == 1
        _put(store, "bob")
        assert store.version() == 2
    finally:
        store.close()


def test_postgres_retries_a_serialization_failure(pg_url: str) -> None:
    """A PostgreSQL write that loses a serialization race runs again, on fresh data."""
    store = SQLStore(pg_url)
    _put(store, "counter", {"n": 0})
    runs: list[int] = []

    def increment(tx: Writer) -> None:
        runs.append(1)
        n = tx.get("user", "a", "counter")["n"]  # type: ignore[index]
        if len(runs) == 1:  # another client commits a change under our feet
            _execute(
                pg_url, """UPDATE records SET data = '{"n": 10}' WHERE key_folded = 'counter'"""
            )
        tx.update("user", "a", "counter", {"n": n + 1})

    try:
        store.write(increment)
        assert len(runs) == 2
        assert _get(store, "counter") == {"n": 11}
        assert store.version() == 2
    finally:
        store.close()


def test_postgres_gives_up_after_max_attempts(pg_url: str) -> None:
    """A write that always loses its race raises ConcurrentModification and writes nothing."""
    store = SQLStore(pg_url, max_attempts=3)
    _put(store, "counter", {"n": 0})
    runs: list[int] = []

    def always_raced(tx: Writer) -> None:
        runs.append(1)
        tx.insert("user", "a", "marker", {})
        tx.get("user", "a", "counter")
        _execute(pg_url, """UPDATE records SET data = '{"n": 10}' WHERE key_folded = 'counter'""")
        tx.update("user", "a", "counter", {"n": 1})

    try:
        with pytest.raises(ConcurrentModification, match="3 times in a row"):
            store.write(always_raced)
        assert len(runs) == 3
        assert _get(store, "marker") is None
        assert store.version() == 1
    finally:
        store.close()


def _wait_for(versions: queue.Queue[int], wanted: int) -> None:
    """Take versions off the queue until ``wanted`` arrives (others may come from other tests)."""
    deadline = time.monotonic() + 5
    while versions.get(timeout=max(0.01, deadline - time.monotonic())) != wanted:
        pass


def test_listen_delivers_each_committed_version(pg_url: str) -> None:
    """A listener hears the current version, then each version a write commits."""
    store = SQLStore(pg_url)
    versions: queue.Queue[int] = queue.Queue()
    listener = store.listen(versions.put)
    try:
        _wait_for(versions, 0)
        _put(store, "alice")
        _wait_for(versions, 1)
        _put(store, "bob")
        _wait_for(versions, 2)
    finally:
        listener.close()
        store.close()


def test_listen_reconnects_after_its_connection_drops(pg_url: str) -> None:
    """When the server drops the listener's connection it reconnects and catches up."""
    store = SQLStore(pg_url)
    versions: queue.Queue[int] = queue.Queue()
    listener = store.listen(versions.put)
    try:
        _wait_for(versions, 0)
        dropped = listener._backend_pid
        _execute(pg_url, f"SELECT pg_terminate_backend({dropped})")
        _put(store, "alice")
        _wait_for(versions, 1)
        _put(store, "bob")
        _wait_for(versions, 2)
        assert listener._backend_pid != dropped
    finally:
        store.close()  # closes the listener too


def test_sqlite_cannot_push_notifications(tmp_path: Path) -> None:
    """On SQLite listen returns None: readers poll version() every poll_interval (0.25 s)."""
    store = SQLStore(f"sqlite:///{tmp_path / 'iamguard.db'}")
    try:
        assert store.listen(lambda version: None) is None
        assert store.poll_interval == 0.25
    finally:
        store.close()


def test_open_store_picks_the_store_by_url(tmp_path: Path) -> None:
    """memory:// opens a MemoryStore, sqlite:/// a SQLStore; other schemes raise InvalidInput."""
    assert isinstance(open_store("memory://"), MemoryStore)
    opened = open_store(f"sqlite:///{tmp_path / 'iamguard.db'}")
    try:
        assert isinstance(opened, SQLStore)
        assert opened.backend == "sqlite"
    finally:
        opened.close()
    for url in ["mysql://root@localhost/iam", "sqlite://", "sqlite:///:memory:", "iam.db"]:
        with pytest.raises(InvalidInput):
            open_store(url)


def test_open_store_uses_psycopg_for_postgresql(pg_url: str) -> None:
    """A plain postgresql:// URL opens a PostgreSQL store through psycopg 3."""
    opened = open_store(pg_url)
    try:
        assert isinstance(opened, SQLStore)
        assert opened.backend == "postgresql"
        assert opened._engine.url.drivername == "postgresql+psycopg"
    finally:
        opened.close()
