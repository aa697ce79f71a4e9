"""SQLite file faults. A store whose file is deleted or replaced while it is open refuses to go
on (open connections would otherwise read and write the old file unseen): ``StoreUnavailable``
for reads, writes and version polls, a 503 through the adapter, and no decision from the lost
file. A file locked by another writer fails writes after ``busy_timeout`` while reads go on; a
read-only file serves reads and refuses writes; a missing file is refused when asked."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from iamguard import Guard
from iamguard.cli_demo import example_module
from iamguard.errors import StoreCorrupted, StoreUnavailable
from iamguard.iam import IAM
from iamguard.modelfile import install_model, load_model
from iamguard.stores import open_store
from iamguard.stores.sql import SQLStore

with warnings.catch_warnings():  # starlette 1.x prefers `httpx2`; the venv has `httpx`
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ACCOUNT = "123456789012"
TEAM = Path(__file__).resolve().parents[1] / "examples" / "team.yaml"
STORE_FILES = ("iamguard.db", "iamguard.db-wal", "iamguard.db-shm")


def delete(folder: Path) -> None:
    for name in STORE_FILES:
        (folder / name).unlink(missing_ok=True)


def replace(folder: Path) -> None:
    """Another valid store's file moved over this one (a restore from a backup, say)."""
    other = folder / "other"
    other.mkdir()
    SQLStore(f"sqlite:///{other / 'iamguard.db'}").close()
    os.replace(other / "iamguard.db", folder / "iamguard.db")


FAULTS: dict[str, Callable[[Path], None]] = {"deleted": delete, "replaced": replace}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Guard, str]]:
    """The example team in a SQLite file, a Guard over it and a token for ram."""
    store = open_store(f"sqlite:///{tmp_path / 'iamguard.db'}")
    install_model(load_model(TEAM)[0], store)
    guard = Guard(store)
    key = IAM(store, ACCOUNT).create_access_key("ram")
    token = guard.sts.get_session_token(
        ACCOUNT, access_key_id=key.access_key.access_key_id,
        secret_access_key=key.secret_access_key,
    ).session_token  # fmt: skip
    yield guard, token
    store.close()


@pytest.mark.parametrize("fault", FAULTS)
def test_store_refuses_a_file_that_is_gone(tmp_path: Path, fault: str) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'iamguard.db'}")
    store.write(lambda tx: tx.insert("user", "a", "ram", {"name": "ram"}))
    FAULTS[fault](tmp_path)
    message = "the database file was deleted or replaced after it was opened"
    for call in (
        lambda: store.read(lambda tx: tx.get("user", "a", "ram")),
        lambda: store.write(lambda tx: tx.insert("user", "a", "sita", {"name": "sita"})),
        store.version,
    ):
        with pytest.raises(StoreUnavailable, match=message):
            call()
    store.close()
    if fault == "deleted":  # nothing was written to a new file either
        assert not (tmp_path / "iamguard.db").exists()


def test_garbage_written_over_the_file_is_corrupt(tmp_path: Path) -> None:
    """The file overwritten in place (after a checkpoint, so no page survives in the WAL):
    reads, writes and the version check raise ``StoreCorrupted``, never an empty answer."""
    path = tmp_path / "iamguard.db"
    store = SQLStore(f"sqlite:///{path}")
    store.write(lambda tx: tx.insert("user", "a", "ram", {"name": "ram"}))
    with closing(sqlite3.connect(path)) as other:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as file:
        file.write(os.urandom(path.stat().st_size))
    for call in (
        lambda: store.read(lambda tx: tx.get("user", "a", "ram")),
        lambda: store.write(lambda tx: tx.insert("user", "a", "sita", {"name": "sita"})),
        store.version,
    ):
        with pytest.raises(StoreCorrupted, match="file is not a database"):
            call()
    store.close()


@pytest.mark.parametrize("fault", FAULTS)
def test_adapter_answers_503_after_the_file_is_gone(
    served: tuple[Guard, str], tmp_path: Path, fault: str
) -> None:
    """A warm, cached request turns into 503 within the store's poll interval, and management
    calls fail with the same error: nothing is decided from, or written to, the lost file."""
    guard, token = served
    app = example_module("images_starlette").create_app(guard)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        assert client.get("/images/1", headers=auth).status_code == 200
        FAULTS[fault](tmp_path)
        time.sleep(guard.store.poll_interval + 0.05)
        response = client.get("/images/1", headers=auth)
        assert response.status_code == 503
        assert response.json()["Error"]["Code"] == "ServiceUnavailable"
        assert str(tmp_path) not in response.text  # the store's location is not disclosed
    with pytest.raises(StoreUnavailable):
        IAM(guard.store, ACCOUNT).create_user("intruder")


def test_a_relative_path_stays_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sqlite:///iamguard.db`` names the file in the working directory at open; changing
    directory later neither opens another file nor makes the file look gone."""
    monkeypatch.chdir(tmp_path)
    store = SQLStore("sqlite:///iamguard.db")
    store.write(lambda tx: tx.insert("user", "a", "ram", {"name": "ram"}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store._engine.dispose()  # new connections from here on, as after the pool recycles them
    assert store.read(lambda tx: tx.get("user", "a", "ram")) == {"name": "ram"}
    store.close()
    assert not (elsewhere / "iamguard.db").exists()
    shutil.rmtree(elsewhere)


def test_a_locked_file_fails_writes_after_the_busy_timeout(tmp_path: Path) -> None:
    """Another connection holding the write lock (``BEGIN EXCLUSIVE``): a management call waits
    ``busy_timeout``, then raises ``StoreUnavailable`` and writes nothing; requests keep being
    decided from the file (WAL readers never wait), allowed and denied alike."""
    path = tmp_path / "iamguard.db"
    store = SQLStore(f"sqlite:///{path}", busy_timeout=0.3)
    install_model(load_model(TEAM)[0], store)
    guard = Guard(store)
    token = sign_in(guard, "ram")
    auth = {"Authorization": f"Bearer {token}"}
    app = example_module("images_starlette").create_app(guard)
    with TestClient(app) as client, closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"locked by another writer \(waited 0.3 s\)"):
            IAM(store, ACCOUNT).create_user("newcomer")
        assert 0.3 <= time.monotonic() - started < 2.0
        time.sleep(store.poll_interval)  # the next request checks the version: a read
        assert client.get("/images/1", headers=auth).status_code == 200
        assert client.delete("/images/1", headers=auth).status_code == 403
        shyam = {"Authorization": f"Bearer {sign_in_when_unlocked(guard, 'shyam', other)}"}
        assert client.get("/images/1", headers=shyam).status_code == 200
        assert [r[0] for r in other.execute("SELECT key FROM records WHERE key = 'newcomer'")] == []
        other.execute("ROLLBACK")
    IAM(store, ACCOUNT).create_user("newcomer")  # the lock gone, writes go through again
    store.close()


def sign_in(guard: Guard, user: str) -> str:
    key = IAM(guard.store, ACCOUNT).create_access_key(user)
    return guard.sts.get_session_token(
        ACCOUNT, access_key_id=key.access_key.access_key_id,
        secret_access_key=key.secret_access_key,
    ).session_token  # fmt: skip


def sign_in_when_unlocked(guard: Guard, user: str, other: sqlite3.Connection) -> str:
    """Sign in (which writes: a new access key) between two holds of the lock."""
    other.execute("ROLLBACK")
    try:
        return sign_in(guard, user)
    finally:
        other.execute("BEGIN EXCLUSIVE")


# Runs twice: as root on a writable copy (so that every module it needs is loaded, and as a
# control), then as `nobody` on the file under test, printing what each call gave.
_AS_NOBODY = textwrap.dedent(
    """
    import json, os, shutil, sys, tempfile
    from iamguard.authorizer import Authorizer
    from iamguard.iam import IAM
    from iamguard.stores.sql import SQLStore

    RAM = "arn:iamguard:iam::123456789012:user/ram"
    IMAGE = "arn:iamguard:images::123456789012:image/1"

    def attempt(call):
        try:
            return ["ok", call()]
        except Exception as e:
            return [type(e).__name__, str(e)]

    def run(path):
        outcome = {}
        store = outcome["open"] = attempt(lambda: SQLStore(f"sqlite:///{path}"))
        if store[0] != "ok":
            return outcome
        store = store[1]
        outcome["open"] = ["ok", None]
        authorizer = Authorizer(store)
        for action in ("images:GetImage", "images:DeleteImage"):
            outcome[action] = attempt(
                lambda: authorizer.authorize(RAM, action, IMAGE).effect.value
            )
        outcome["version"] = attempt(store.version)
        outcome["create_user"] = attempt(lambda: IAM(store, "123456789012").create_user("x") and None)
        outcome["version_after"] = attempt(store.version)
        store.close()
        return outcome

    copy = tempfile.mkdtemp()
    shutil.copy(sys.argv[1], copy)
    control = run(os.path.join(copy, os.path.basename(sys.argv[1])))
    shutil.rmtree(copy)
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    print(json.dumps({"control": control, "nobody": run(sys.argv[1])}))
    """
)


@contextmanager
def read_only_store(folder_writable: bool) -> Iterator[Path]:
    """The team in a store file no one but root may write, in a folder that others may (or may
    not) write; the file's path."""
    folder = Path(tempfile.mkdtemp(prefix="iamguard-ro-"))
    try:
        path = folder / "iamguard.db"
        store = SQLStore(f"sqlite:///{path}")
        install_model(load_model(TEAM)[0], store)
        store.close()  # a clean close leaves no -wal and -shm files
        assert sorted(p.name for p in folder.iterdir()) == ["iamguard.db"]
        path.chmod(0o444)
        folder.chmod(0o777 if folder_writable else 0o555)
        yield path
    finally:
        folder.chmod(0o700)
        shutil.rmtree(folder)


def as_nobody(path: Path) -> dict[str, dict[str, list[object]]]:
    result = subprocess.run(
        [sys.executable, "-c", _AS_NOBODY, str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_read_only_file_serves_reads_and_refuses_writes() -> None:
    """A store file the process may not write (its folder writable, as SQLite's `-wal` and
    `-shm` files need): decisions are read as usual, and a management call raises
    ``StoreError`` "the store is read-only" and writes nothing."""
    with read_only_store(folder_writable=True) as path:
        outcome = as_nobody(path)
        assert outcome["control"]["create_user"] == ["ok", None]
        nobody = outcome["nobody"]
        assert nobody["images:GetImage"] == ["ok", "Allow"]
        assert nobody["images:DeleteImage"] == ["ok", "ImplicitDeny"]
        kind, message = nobody["create_user"]
        assert kind == "StoreError"
        assert "the store is read-only: attempt to write a readonly database" in str(message)
        assert nobody["version_after"] == nobody["version"] == outcome["control"]["version"]
        assert outcome["control"]["version_after"] != outcome["control"]["version"]


def test_a_read_only_folder_is_refused_at_open() -> None:
    """File and folder read-only: SQLite cannot make its `-wal` and `-shm` files, so not even
    reading works; opening the store raises ``StoreUnavailable`` saying why."""
    with read_only_store(folder_writable=False) as path:
        outcome = as_nobody(path)
        assert outcome["control"]["open"] == ["ok", None]
        kind, message = outcome["nobody"]["open"]
        assert kind == "StoreUnavailable"
        assert "the file's folder is read-only, and SQLite needs it writable" in str(message)
        assert sorted(p.name for p in path.parent.iterdir()) == ["iamguard.db"]


def test_a_missing_file_is_refused_unless_creation_is_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``create=False``: a path with no file (mistyped, say) raises ``StoreUnavailable`` and
    creates nothing. By default the file is created, as SQLite does, and a log record says so."""
    typo = tmp_path / "iamgaurd.db"
    for open_missing in (
        lambda: open_store(f"sqlite:///{typo}", create=False),
        lambda: SQLStore(f"sqlite:///{typo}", create=False),
    ):
        with pytest.raises(StoreUnavailable, match="the database file does not exist"):
            open_missing()
        assert list(tmp_path.iterdir()) == []
    with caplog.at_level(logging.INFO, logger="iamguard.stores"):
        open_store(f"sqlite:///{typo}").close()
    assert typo.exists()
    assert any("creating a new, empty store" in r.getMessage() for r in caplog.records)
    open_store(f"sqlite:///{typo}", create=False).close()  # an existing file opens as ever
