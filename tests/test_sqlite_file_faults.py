"""A SQLite store whose file is deleted or replaced while it is open refuses to go on (open
connections would otherwise read and write the old file unseen): ``StoreUnavailable`` for reads,
writes and version polls, a 503 through the adapter, and no decision from the lost file."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing
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
