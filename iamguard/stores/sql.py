"""SQL stores through SQLAlchemy Core: SQLite (a file, the embedded default) and PostgreSQL.

Tables: ``records`` (one JSON record per row), ``meta`` (the model version and the schema
version) and ``changes`` (the change log, kept for the newest ``log_limit`` versions). The library
creates the schema on open and migrates an older one; a newer one is refused.

Writers take turns on both databases: every write bumps the one version row, so two writes could
never commit in parallel anyway, and waiting up front is cheaper than failing at the end.
SQLite runs in WAL mode and writes in ``BEGIN IMMEDIATE`` transactions; a writer waits
``busy_timeout`` seconds for the others, then raises ``StoreUnavailable``. PostgreSQL writes are
SERIALIZABLE and begin by locking ``meta`` (with the same timeout); should one still fail to
serialize (or deadlock), it runs again after a short random pause, up to ``max_attempts`` times,
then raises ``ConcurrentModification``. Reads never wait: a deferred SQLite transaction, REPEATABLE
READ READ ONLY on PostgreSQL. On PostgreSQL each write also notifies channel ``iamguard_changes``
with the new version when it commits; ``SQLStore.listen`` delivers those notifications.

No call waits on PostgreSQL for ever: connecting takes at most ``connect_timeout`` seconds, the
server cancels a statement after ``statement_timeout`` seconds (and ends a session left idle in
a transaction as long), and a server that sends no answer at all for ``statement_timeout`` + 0.5
seconds (frozen, or cut off by the network) is taken for down: the connection is closed and the
call raises ``StoreUnavailable``. A pooled connection is pinged before use, so a restarted
server costs one ping, not a failed call.

A SQLite file that does not exist is created, as SQLite itself does, unless ``create=False``:
then opening it raises ``StoreUnavailable``, so that a mistyped path is an error rather than a
new, empty store that denies everything.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, make_url

from iamguard.errors import (
    ConcurrentModification,
    InvalidInput,
    StoreCorrupted,
    StoreError,
    StoreUnavailable,
)
from iamguard.stores.base import Change, Data, KeyExists, Reader, Store, T, Writer

CHANNEL: Final = "iamguard_changes"
_log = logging.getLogger("iamguard.stores")

# Keys sort by code point on both databases (as in the memory store), whatever the PG locale.
_Name = Text().with_variant(Text(collation="C"), "postgresql")
_metadata = MetaData()
records = Table(
    "records",
    _metadata,
    Column("kind", _Name, nullable=False),
    Column("account", _Name, nullable=False),
    Column("key_folded", _Name, nullable=False),
    Column("key", Text, nullable=False),
    Column("parent_folded", _Name),
    Column("ref_folded", _Name),
    Column("data", Text, nullable=False),
    PrimaryKeyConstraint("kind", "account", "key_folded"),
    Index("records_by_key", "kind", "key_folded"),  # the indexes by parent and by ref: migrations
)
meta = Table(
    "meta",
    _metadata,
    Column("name", _Name, primary_key=True),
    Column("value", BigInteger, nullable=False),
)
changes = Table(
    "changes",
    _metadata,
    Column("version", BigInteger, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("account", Text, nullable=False),
    Column("key", Text, nullable=False),
    PrimaryKeyConstraint("version", "seq"),
)
_VERSION: Final = select(meta.c.value).where(meta.c.name == "version")


def _schema_1(conn: Connection) -> None:
    """The initial schema. When a later schema alters these tables, freeze this DDL here first."""
    _metadata.create_all(conn)
    conn.exec_driver_sql("CREATE INDEX records_by_parent ON records (kind, account, parent_folded)")
    conn.exec_driver_sql("CREATE INDEX records_by_ref ON records (kind, account, ref_folded)")
    conn.execute(
        insert(meta), [{"name": "version", "value": 0}, {"name": "schema_version", "value": 0}]
    )


def _schema_2(conn: Connection) -> None:
    """Listing by parent or ref uses an index that also orders by key, so neither database needs
    statistics to choose it (without them SQLite scanned every record of a kind)."""
    conn.exec_driver_sql("DROP INDEX records_by_parent")
    conn.exec_driver_sql("DROP INDEX records_by_ref")
    conn.exec_driver_sql(
        "CREATE INDEX records_by_parent_key ON records (kind, account, parent_folded, key_folded)"
    )
    conn.exec_driver_sql(
        "CREATE INDEX records_by_ref_key ON records (kind, account, ref_folded, key_folded)"
    )


# schema version -> the step that brings a store from the version before it to this one
_MIGRATIONS: Final[dict[int, Callable[[Connection], None]]] = {1: _schema_1, 2: _schema_2}
SCHEMA_VERSION: Final = max(_MIGRATIONS)
_MIGRATION_LOCK: Final = 0x1A_6A_2D  # pg_advisory_xact_lock key: one migrating process at a time

_RETRY_SQLSTATES: Final = frozenset({"40001", "40P01"})  # serialization failure, deadlock
_SQLITE_MESSAGES: Final = {  # Python 3.10's sqlite3 errors carry no error name
    "database is locked": "SQLITE_BUSY",
    "file is not a database": "SQLITE_NOTADB",
    "attempt to write a readonly database": "SQLITE_READONLY",
}
_BEGIN: Final = "iamguard_sqlite_begin"  # execution option: the statement that opens a transaction


class SQLStore(Store):
    """A store in SQLite (``sqlite:///path``) or PostgreSQL (``postgresql://user@host/db``).

    Thread-safe: share one per process. A PostgreSQL schema other than the default is chosen in
    the URL: ``?options=-csearch_path%3Dmyschema``. ``busy_timeout``: seconds a writer waits for
    the others. ``connect_timeout``: seconds to reach a PostgreSQL server. ``statement_timeout``:
    seconds a PostgreSQL statement may run, and (plus 0.5) the longest wait for any answer from
    the server. ``max_attempts``: runs of a PostgreSQL write that keeps failing to serialize.
    ``log_limit``: versions kept in the change log. ``pool_size``: connections kept open.
    ``create``: create a SQLite file that does not exist (else ``StoreUnavailable``).
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
        max_attempts: int = 8,
        log_limit: int = 10_000,
        pool_size: int = 5,
        create: bool = True,
    ) -> None:
        parsed = _parse(url)
        self.backend: str = parsed.get_backend_name()  # "sqlite" or "postgresql"
        # SQLite: checked often (a cheap local read), so a change is seen within a second.
        # PostgreSQL: notifications arrive at once; polling is only the fallback.
        self.poll_interval = 0.25 if self.backend == "sqlite" else 1.0
        self._where = f"store `{parsed.render_as_string(hide_password=True)}`"
        self._busy_timeout = busy_timeout
        self._connect_timeout = max(2, round(connect_timeout))  # libpq: whole seconds, 2 at least
        self._statement_timeout = statement_timeout
        self._max_attempts = max_attempts
        self._log_limit = log_limit
        self._closed = False
        self._listeners: list[Listener] = []
        # SQLite: the file this store opened, by absolute path, as SQLAlchemy opens it. Deleted or
        # replaced, open connections would go on reading and writing the old file unseen, so
        # every connection first checks that it is still the same file.
        self._file: str | None = None
        if self.backend == "sqlite" and "uri" not in parsed.query:
            self._file = os.path.abspath(parsed.database or "")
            self._check_file(self._file, create)
        if self.backend == "sqlite":
            engine = create_engine(
                parsed, pool_size=pool_size, connect_args={"timeout": busy_timeout}
            )
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            self._reader = self._poller = engine
            self._writer = self._migrator = engine.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
            self._insert: Callable[[Table], Any] = sqlite.insert
        else:
            engine = create_engine(
                parsed,
                pool_size=pool_size,
                pool_pre_ping=True,  # a restarted server costs one ping, not a failed request
                pool_timeout=self._connect_timeout,  # every connection busy: wait no longer
                connect_args={
                    "connect_timeout": self._connect_timeout,
                    "options": _server_options(parsed, statement_timeout),
                },
            )
            event.listen(engine, "do_connect", self._pg_connect)
            self._reader = engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            self._poller = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._writer = engine.execution_options(isolation_level="SERIALIZABLE")
            self._migrator = engine.execution_options()
            self._insert = postgresql.insert
        self._engine = engine
        self._file_identity: tuple[int, int] | None = None
        try:
            self._open()
            self._file_identity = self._identity_of_file()
        except BaseException:
            engine.dispose()
            raise

    # the Store interface
    def read(self, fn: Callable[[Reader], T]) -> T:
        """Run ``fn`` on a snapshot of committed data (REPEATABLE READ on PostgreSQL; on SQLite
        a deferred transaction, whose snapshot is taken at its first read)."""
        with self._translated(), self._connect(self._reader) as conn, conn.begin():
            return _Reads(self, conn).run(fn)

    def write(self, fn: Callable[[Writer], T]) -> T:
        """Run ``fn`` in one transaction; on PostgreSQL perhaps more than once (see the module)."""
        attempt = 1
        while True:
            try:
                with self._connect(self._writer) as conn, conn.begin():
                    if self.backend == "postgresql":
                        timeout = int(self._busy_timeout * 1000)
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {timeout}")
                        conn.exec_driver_sql("LOCK TABLE meta IN SHARE ROW EXCLUSIVE MODE")
                    tx = _Writes(self, conn)
                    result = tx.run(fn)
                    written = self._log_changes(conn, list(tx.changed)) if tx.changed else 0
                self.last_written = max(self.last_written, written)  # committed
                return result
            except sa_exc.DBAPIError as e:
                if attempt >= self._max_attempts or _code(e) not in _RETRY_SQLSTATES:
                    raise self._error(e, attempt) from e
            except sa_exc.SQLAlchemyError as e:
                raise self._error(e) from e
            time.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))  # noqa: S311 -- jitter
            attempt += 1

    def version(self) -> int:
        """The model version (one indexed row)."""
        with self._translated(), self._connect(self._poller) as conn:
            return int(conn.execute(_VERSION).scalar_one())

    def changes_since(self, version: int) -> list[Change] | None:
        """Changes after ``version``, oldest first; None when the log no longer reaches back."""
        with self._translated(), self._connect(self._reader) as conn, conn.begin():
            if version >= conn.execute(_VERSION).scalar_one():
                return []
            oldest = conn.execute(select(func.min(changes.c.version))).scalar()
            if oldest is None or oldest > version + 1:
                return None
            rows = conn.execute(
                select(changes.c.version, changes.c.kind, changes.c.account, changes.c.key)
                .where(changes.c.version > version)
                .order_by(changes.c.version, changes.c.seq)
            )
            return [Change(int(v), kind, account, key) for v, kind, account, key in rows]

    def close(self) -> None:
        """Stop the listeners and close every connection; the store cannot be used afterwards."""
        self._closed = True
        for listener in self._listeners:
            listener.close()
        self._engine.dispose()

    # PostgreSQL notifications
    def listen(self, callback: Callable[[int], None]) -> Listener | None:
        """Call ``callback(version)`` from a daemon thread for each write any process commits.

        PostgreSQL only: on SQLite it returns None, and readers poll ``version()``, which is
        cheap. The thread has a connection
        of its own; it also calls back with the current version after each (re)connection, so a
        dropped connection loses nothing, and it reconnects with growing pauses (0.1 s to 5 s).
        Take the version as a hint: a store in another schema of the same database notifies the
        same channel. ``close()`` the returned listener (or the store) to stop.
        """
        if self.backend != "postgresql":
            return None  # SQLite cannot push: readers poll version(), which is cheap
        import psycopg  # noqa: PLC0415 -- SQLite users need not install it

        args, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        kwargs.pop("context", None)  # SQLAlchemy's type adapters
        kwargs.setdefault("application_name", "iamguard-listen")

        def connect() -> psycopg.Connection[Any]:
            return psycopg.connect(
                *args, **kwargs, autocommit=True, connect_timeout=self._connect_timeout
            )

        listener = Listener(connect, callback, self._where)
        self._listeners.append(listener)
        # Return once notifications flow, so that a change committed after this call is never
        # missed; should the server not answer in time, the reader's polling still catches up.
        listener.listening.wait(self._connect_timeout)
        return listener

    # internals
    def _check_file(self, path: str, create: bool) -> None:
        """Refuse a missing SQLite file unless ``create``; say so when one is created."""
        if os.path.exists(path):
            return
        if not create:
            raise StoreUnavailable(
                f"{self._where}: the database file does not exist"
                " (a new store is created only when asked: create=True)"
            )
        _log.info("%s: the database file does not exist: creating a new, empty store", self._where)

    def _pg_connect(self, _dialect: Any, _record: Any, args: Any, kwargs: Any) -> Any:
        """A psycopg connection whose every wait for the server is bounded (see the module)."""
        conn = _bounded_connection().connect(*args, **kwargs)
        conn.answer_timeout = self._statement_timeout + 0.5
        return conn

    def _connect(self, engine: Engine) -> Connection:
        if self._closed:
            raise StoreError(f"{self._where}: the store is closed")
        if self._file_identity is not None and self._identity_of_file() != self._file_identity:
            raise StoreUnavailable(
                f"{self._where}: the database file was deleted or replaced after it was opened"
            )
        return engine.connect()

    def _identity_of_file(self) -> tuple[int, int] | None:
        """The SQLite file's (device, inode), None when it is missing or not a file store."""
        if self._file is None:
            return None
        try:
            status = os.stat(self._file)
        except OSError:
            return None
        return status.st_dev, status.st_ino

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sa_exc.SQLAlchemyError as e:
            raise self._error(e) from e

    def _open(self) -> None:
        """Switch SQLite to WAL; create or migrate the schema; refuse a newer one."""
        with self._translated():
            if self.backend == "sqlite":
                with self._engine.connect().execution_options(**{_BEGIN: None}) as conn:
                    if conn.exec_driver_sql("PRAGMA journal_mode").scalar() != "wal":
                        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            with self._connect(self._reader) as conn, conn.begin():
                if self._schema_version(conn) == SCHEMA_VERSION:
                    return
            with self._connect(self._migrator) as conn, conn.begin(), _unbounded(conn):
                if self.backend == "postgresql":
                    conn.exec_driver_sql("SET LOCAL statement_timeout = 0")  # an index may be big
                    conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                for step in range(self._schema_version(conn) + 1, SCHEMA_VERSION + 1):
                    _MIGRATIONS[step](conn)
                    conn.execute(
                        update(meta).where(meta.c.name == "schema_version").values(value=step)
                    )

    def _schema_version(self, conn: Connection) -> int:
        tables = set(inspect(conn).get_table_names())
        if "meta" not in tables:
            if tables & {"records", "changes"}:
                raise StoreCorrupted(f"{self._where}: not an iamguard store: no `meta` table")
            return 0
        found = conn.execute(select(meta.c.value).where(meta.c.name == "schema_version")).scalar()
        if found is None:
            raise StoreCorrupted(f"{self._where}: not an iamguard store: no schema version")
        if found > SCHEMA_VERSION:
            raise StoreCorrupted(
                f"{self._where}: schema version {found} is newer than this iamguard supports"
                f" ({SCHEMA_VERSION}): upgrade iamguard"
            )
        return int(found)

    def _log_changes(self, conn: Connection, changed: list[tuple[str, str, str]]) -> int:
        """Bump the version once, log what changed, prune the log, notify listeners at commit."""
        bump = (
            update(meta)
            .where(meta.c.name == "version")
            .values(value=meta.c.value + 1)
            .returning(meta.c.value)
        )
        version = conn.execute(bump).scalar_one()
        rows = [
            {"version": version, "seq": seq, "kind": kind, "account": account, "key": key}
            for seq, (kind, account, key) in enumerate(changed)
        ]
        conn.execute(insert(changes), rows)
        conn.execute(delete(changes).where(changes.c.version <= version - self._log_limit))
        if self.backend == "postgresql":
            conn.execute(select(func.pg_notify(CHANNEL, str(version))))
        return int(version)

    def _error(self, e: Exception, attempts: int = 1) -> StoreError | ConcurrentModification:
        """The iamguard error for a database error (no password: ``_where`` masks it)."""
        orig = e.orig if isinstance(e, sa_exc.DBAPIError) else e
        detail = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        code = _code(e)
        if code in _RETRY_SQLSTATES:
            return ConcurrentModification(
                f"{self._where}: the change conflicted with concurrent changes"
                f" {attempts} times in a row: {detail}"
            )
        if code in ("SQLITE_BUSY", "SQLITE_LOCKED", "55P03"):
            return StoreUnavailable(
                f"{self._where}: locked by another writer"
                f" (waited {self._busy_timeout:g} s): {detail}"
            )
        if code in ("SQLITE_READONLY", "25006"):
            return StoreError(f"{self._where}: the store is read-only: {detail}")
        if code == "SQLITE_READONLY_DIRECTORY":  # not even readable
            return StoreUnavailable(
                f"{self._where}: the file's folder is read-only, and SQLite needs it writable"
                f" to keep its `-wal` and `-shm` files: {detail}"
            )
        if code in ("SQLITE_NOTADB", "SQLITE_CORRUPT", "SQLITE_ERROR") or (
            code.startswith("42") and code != "42501"  # a missing table, not a missing grant
        ):
            return StoreCorrupted(f"{self._where}: not an iamguard store: {detail}")
        down = isinstance(e, (sa_exc.OperationalError, sa_exc.TimeoutError))
        if down or code[:2] in ("08", "53", "57"):  # connection, resources, server shutdown
            return StoreUnavailable(f"{self._where}: {detail}")
        return StoreError(f"{self._where}: {detail}")


class _Reads(Reader):
    """Reads through one connection; remembers a database error, even one ``fn`` swallowed."""

    def __init__(self, store: SQLStore, conn: Connection) -> None:
        self._store = store
        self._conn = conn
        self.failed: sa_exc.DBAPIError | None = None

    def run(self, fn: Callable[[Any], T]) -> T:
        """``fn(self)``; a database error met on the way wins over whatever ``fn`` did."""
        try:
            result = fn(self)
        except BaseException:
            if self.failed is not None:
                raise self.failed from None
            raise
        if self.failed is not None:
            raise self.failed
        return result

    def _run(self, statement: Any) -> CursorResult[Any]:
        try:
            return self._conn.execute(statement)
        except sa_exc.DBAPIError as e:
            self.failed = e
            raise self._store._error(e) from e

    def get(self, kind: str, account: str, key: str) -> Data | None:
        if not _storable(kind, account, key):
            return None
        data = self._run(select(records.c.data).where(*_address(kind, account, key))).scalar()
        return None if data is None else json.loads(data)

    def find(
        self, kind: str, account: str, *, parent: str | None = None, ref: str | None = None
    ) -> list[Data]:
        if not _storable(kind, account, parent, ref):
            return []
        query = select(records.c.data).where(*_matching(kind, account, parent, ref))
        return [json.loads(d) for d in self._run(query.order_by(records.c.key_folded)).scalars()]

    def count(
        self, kind: str, account: str, *, parent: str | None = None, ref: str | None = None
    ) -> int:
        if not _storable(kind, account, parent, ref):
            return 0
        query = select(func.count()).select_from(records)
        return int(self._run(query.where(*_matching(kind, account, parent, ref))).scalar_one())

    def locate(self, kind: str, key: str) -> tuple[str, Data] | None:
        if not _storable(kind, key):
            return None
        query = (
            select(records.c.account, records.c.data)
            .where(records.c.kind == kind, records.c.key_folded == key.lower())
            .order_by(records.c.account)
            .limit(1)
        )
        row = self._run(query).first()
        return None if row is None else (row.account, json.loads(row.data))

    def version(self) -> int:
        return int(self._run(_VERSION).scalar_one())


class _Writes(_Reads, Writer):
    """Reads and writes through one connection; ``changed`` lists the records written."""

    def __init__(self, store: SQLStore, conn: Connection) -> None:
        super().__init__(store, conn)
        self.changed: dict[tuple[str, str, str], None] = {}  # ordered set

    def insert(
        self, kind: str, account: str, key: str, data: Data,
        *, parent: str | None = None, ref: str | None = None,
    ) -> None:  # fmt: skip
        # DO NOTHING rather than a failed INSERT: PostgreSQL would abort the whole transaction
        statement = self._store._insert(records).values(
            kind=kind,
            account=account,
            key_folded=key.lower(),
            key=key,
            parent_folded=None if parent is None else parent.lower(),
            ref_folded=None if ref is None else ref.lower(),
            data=_dump(data),
        )
        statement = statement.on_conflict_do_nothing().execution_options(preserve_rowcount=True)
        if self._run(statement).rowcount == 0:
            raise KeyExists(key)
        self.changed[(kind, account, key.lower())] = None

    def update(self, kind: str, account: str, key: str, data: Data) -> None:
        statement = update(records).where(*_address(kind, account, key)).values(data=_dump(data))
        if self._run(statement).rowcount == 0:
            raise KeyError(key)
        self.changed[(kind, account, key.lower())] = None

    def delete(self, kind: str, account: str, key: str) -> None:
        if self._run(delete(records).where(*_address(kind, account, key))).rowcount:
            self.changed[(kind, account, key.lower())] = None


class Listener:
    """A running ``SQLStore.listen``: a daemon thread calling back; ``close()`` stops it."""

    _POLL: Final = 0.2  # seconds between checks for close()

    def __init__(
        self, connect: Callable[[], Any], callback: Callable[[int], None], where: str
    ) -> None:
        self._connect = connect
        self._callback = callback
        self._where = where
        self._backend_pid: int | None = None
        self._stop = threading.Event()
        self.listening = threading.Event()  # set once LISTEN is in place
        self._thread = threading.Thread(target=self._run, name="iamguard-listen", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening (waits for the thread, at most a few seconds)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        pause = 0.1
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    self._backend_pid = conn.info.backend_pid
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    row = conn.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()
                    self._deliver(int(row[0]))
                    pause = 0.1
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self._POLL):
                            if note.payload.isdigit():
                                self._deliver(int(note.payload))
            except Exception as e:  # whatever broke, reconnect: callers poll as well
                _log.warning(
                    "%s: listening for changes: %s (retrying in %.1f s)", self._where, e, pause
                )
                self._stop.wait(pause * random.uniform(0.5, 1.5))  # noqa: S311 -- jitter
                pause = min(pause * 2, 5.0)

    def _deliver(self, version: int) -> None:
        try:
            self._callback(version)
        except Exception:
            _log.exception("%s: a change listener failed", self._where)


class _Watchdog:
    """Cuts the connection of a PostgreSQL call that waits for the server past its deadline.

    libpq waits for an answer as long as the socket stays open, and a frozen server's kernel
    keeps it open (it even acknowledges what is sent). Shutting the socket down wakes the
    waiting call, which then fails like any lost connection.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: dict[int, tuple[float, int, Any]] = {}  # id -> (deadline, socket, conn)
        self._soonest = float("inf")
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, conn: Any, fd: int, seconds: float) -> Iterator[None]:
        """Cut ``conn`` (whose socket is ``fd``) if the block runs longer than ``seconds``."""
        deadline = time.monotonic() + seconds
        with self._cond:
            self._waiting[id(conn)] = (deadline, fd, conn)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="iamguard-watchdog", daemon=True
                )
                self._thread.start()
            if deadline < self._soonest:
                self._cond.notify()
        try:
            yield
        finally:
            with self._cond:  # the socket is not closed while it is registered: no stray cut
                self._waiting.pop(id(conn), None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for key, (deadline, fd, conn) in list(self._waiting.items()):
                    if deadline <= now:
                        del self._waiting[key]
                        conn.cut_off = True
                        _shut_down(fd)
                self._soonest = min((w[0] for w in self._waiting.values()), default=float("inf"))
                self._cond.wait(None if not self._waiting else self._soonest - now)


_WATCHDOG: Final = _Watchdog()


def _shut_down(fd: int) -> None:
    """Shut a socket down for both directions, through a duplicate of its descriptor."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: the call it belonged to has ended


@functools.cache
def _bounded_connection() -> Any:
    """psycopg's ``Connection`` with every wait for the server bounded by ``answer_timeout``."""
    import psycopg  # noqa: PLC0415 -- SQLite users need not install it

    class BoundedConnection(psycopg.Connection[Any]):
        answer_timeout: float | None = None
        cut_off = False

        def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
            if self.answer_timeout is None or self.closed:
                return super().wait(gen, *args, **kwargs)
            timeout = self.answer_timeout
            with _WATCHDOG.watching(self, self.pgconn.socket, timeout):
                try:
                    return super().wait(gen, *args, **kwargs)
                except psycopg.OperationalError as e:
                    if not self.cut_off:
                        raise
                    message = f"no answer from the server within {timeout:g} s"
                    raise psycopg.OperationalError(message) from e

    return BoundedConnection


@contextmanager
def _unbounded(conn: Connection) -> Iterator[None]:
    """No client-side bound on waits for the server in the block (a long migration)."""
    dbapi = conn.connection.dbapi_connection
    bound = getattr(dbapi, "answer_timeout", None)
    if bound is None:
        yield
        return
    dbapi.answer_timeout = None  # type: ignore[union-attr]
    try:
        yield
    finally:
        dbapi.answer_timeout = bound  # type: ignore[union-attr]


def _server_options(parsed: URL, statement_timeout: float) -> str:
    """libpq's ``options`` for the URL's own plus iamguard's session settings."""
    millis = max(1, round(statement_timeout * 1000))
    given = parsed.query.get("options", "")
    own = f"-c statement_timeout={millis} -c idle_in_transaction_session_timeout={millis}"
    return " ".join(filter(None, (given if isinstance(given, str) else " ".join(given), own)))


def _parse(url: str) -> URL:
    """A SQLAlchemy URL for SQLite or PostgreSQL with psycopg 3; InvalidInput otherwise."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as e:
        raise InvalidInput(f"store url: cannot parse `{url.partition('://')[0]}://...`") from e
    name = parsed.drivername
    if name in ("postgres", "postgresql", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if name in ("sqlite", "sqlite+pysqlite"):
        if parsed.database in (None, "", ":memory:"):
            raise InvalidInput(
                "store url `sqlite://`: an in-memory SQLite database lives in one connection:"
                " use `memory://` or a file, `sqlite:///path/to/iamguard.db`"
            )
        return parsed
    raise InvalidInput(
        f"store url `{parsed.render_as_string(hide_password=True)}`: unsupported database:"
        " use `sqlite:///path` or `postgresql://user@host/db`"
    )


def _code(e: Exception) -> str:
    """SQLSTATE (PostgreSQL) or error name (SQLite) of a database error, or ``""``."""
    orig = e.orig if isinstance(e, sa_exc.DBAPIError) else e
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    if code:
        return str(code)
    return next((c for m, c in _SQLITE_MESSAGES.items() if m in str(orig)), "")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = (
        None  # sqlite3 must not begin transactions: _sqlite_begin does
    )


def _sqlite_begin(conn: Connection) -> None:
    statement = conn.get_execution_options().get(_BEGIN, "BEGIN")
    if statement:
        conn.exec_driver_sql(statement)


def _storable(*texts: str | None) -> bool:
    """Could a record have these keys? PostgreSQL text cannot hold NUL, so none has one."""
    return not any(text is not None and "\x00" in text for text in texts)


def _address(kind: str, account: str, key: str) -> tuple[Any, ...]:
    c = records.c
    return (c.kind == kind, c.account == account, c.key_folded == key.lower())


def _matching(kind: str, account: str, parent: str | None, ref: str | None) -> list[Any]:
    c = records.c
    where = [c.kind == kind, c.account == account]
    if parent is not None:
        where.append(c.parent_folded == parent.lower())
    if ref is not None:
        where.append(c.ref_folded == ref.lower())
    return where


def _dump(data: Data) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
