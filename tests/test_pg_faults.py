"""PostgreSQL faults on a private server (tests/pgserver.py): stopped, crashed and restarted,
frozen with SIGSTOP, and the LISTEN connection stalled or dropped.

What each test pins: a request that needs the store answers 503 within a bounded time, never
2xx; sign-in and management calls raise ``StoreUnavailable``; cached decisions are used for at
most ``poll_interval`` after the last check that succeeded; and once the server answers again
everything recovers by itself and sees every change committed meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pgserver import PgServer, private_server, wait_until
from starlette.exceptions import StarletteDeprecationWarning

from iamguard import Guard
from iamguard.cli_demo import example_module
from iamguard.errors import NoSuchEntity, StoreUnavailable
from iamguard.iam import IAM
from iamguard.modelfile import install_model, load_model
from iamguard.stores.sql import SQLStore

with warnings.catch_warnings():  # starlette 1.x prefers `httpx2`; the venv has `httpx`
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ACCOUNT = "123456789012"
TEAM = Path(__file__).resolve().parents[1] / "examples" / "team.yaml"
READ_ACCESS = f"arn:iamguard:iam::{ACCOUNT}:policy/ImageReadAccess"
# Short timeouts keep the suite quick: 2 s to connect (libpq's least), 1 s per statement, so
# 1.5 s without any answer from the server.
CONNECT, STATEMENT = 2, 1.0
NO_ANSWER = STATEMENT + 0.5
POLL = 1.0  # the PostgreSQL store's fallback poll interval
MARGIN = 0.5
FALLBACK = POLL + 1.0  # the bound on a change seen by polling (as in test_propagation.py)


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    with private_server() as running:
        yield running


@pytest.fixture
def url(server: PgServer) -> Iterator[str]:
    """A fresh database; the server is running and thawed again after the test."""
    yield server.new_database()
    server.thaw()
    if not server.running:
        server.start()


@dataclass
class Served:
    """The images example over the team in a private-server database."""

    server: PgServer
    url: str
    guard: Guard
    client: TestClient
    tokens: dict[str, str]

    def get(self, user: str, path: str = "/images/1", method: str = "GET") -> int:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return self.client.request(method, path, headers=headers).status_code

    def sign_in(self, user: str) -> str:
        iam = IAM(self.guard.store, ACCOUNT)
        key = iam.create_access_key(user)
        return self.guard.sts.get_session_token(
            ACCOUNT, access_key_id=key.access_key.access_key_id,
            secret_access_key=key.secret_access_key,
        ).session_token  # fmt: skip


@pytest.fixture
def served(server: PgServer, url: str) -> Iterator[Served]:
    store = SQLStore(url, connect_timeout=CONNECT, statement_timeout=STATEMENT)
    install_model(load_model(TEAM)[0], store)
    guard = Guard(store)
    app = example_module("images_starlette").create_app(guard)
    with TestClient(app) as client:
        served = Served(server, url, guard, client, {})
        served.tokens = {user: served.sign_in(user) for user in ("ram", "shyam", "sita")}
        yield served
        server.thaw()
    store.close()


def answers_from_cache(served: Served, poll: float = POLL) -> float:
    """Check the store now, so that what is held may be used for ``poll`` seconds; when."""
    model = served.guard.authorizer.read_model
    assert served.guard.store.poll_interval == POLL
    model.poll_interval = poll
    checked = time.monotonic()
    model.refresh(force=True)
    return checked


def until_window_closes(checked: float, poll: float = POLL) -> None:
    time.sleep(max(0.0, checked + poll + 0.05 - time.monotonic()))


def assert_warm(served: Served) -> None:
    """Ram reads image 1 but may not delete it; shyam reads it too."""
    assert served.get("ram") == 200
    assert served.get("ram", method="DELETE") == 403
    assert served.get("shyam") == 200


def test_stopped_server_fails_closed(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    """With the server stopped, a cached decision is still used within the poll interval of the
    last good check; after it every request answers 503, cached or not, a denied one never
    turns into an allow, and sign-in and management calls raise ``StoreUnavailable``."""
    assert_warm(served)
    checked = answers_from_cache(served, poll=2.0)  # room for pg_ctl on a busy machine
    served.server.stop()
    assert time.monotonic() - checked < 2.0
    assert served.get("ram") == 200  # within the poll interval: the staleness always allowed
    until_window_closes(checked, poll=2.0)
    for user, method in [("ram", "GET"), ("ram", "DELETE"), ("sita", "GET"), ("shyam", "PUT")]:
        assert served.get(user, method=method) == 503
    response = served.client.get("/images/1", headers={"Authorization": "Bearer x.y.z"})
    assert response.status_code in (401, 503)
    refused = rf"store `postgresql\+psycopg://postgres@127.0.0.1:{served.server.port}/\w+`"
    with pytest.raises(StoreUnavailable, match=refused):
        served.sign_in("gita")
    with pytest.raises(StoreUnavailable, match=refused):
        IAM(served.guard.store, ACCOUNT).create_user("intruder")
    body = served.client.get(
        "/images/1", headers={"Authorization": f"Bearer {served.tokens['ram']}"}
    )
    assert body.json()["Error"]["Code"] == "ServiceUnavailable"
    assert str(served.server.port) not in body.text  # the store's address is not disclosed
    failures = [r for r in caplog.records if "the store failed" in r.getMessage()]
    assert failures and all(r.levelno == logging.WARNING for r in failures)
    assert any("Connection refused" in r.getMessage() for r in failures)


def test_restarted_server_recovers_and_sees_changes_made_meanwhile(served: Served) -> None:
    """After a crash (``-m immediate``) and a restart, the same Guard and store answer again by
    themselves within the poll interval, and enforce a change another store object committed
    before this one reconnected: ram's access revoked, so never a 200 for him again."""
    assert_warm(served)
    served.server.stop("immediate")
    wait_until(lambda: served.get("ram") == 503, timeout=FALLBACK)
    served.server.start()
    other = SQLStore(served.url, connect_timeout=CONNECT)
    try:
        IAM(other, ACCOUNT).detach_group_policy("developers", READ_ACCESS)
    finally:
        other.close()
    committed = time.monotonic()
    statuses: list[int] = []

    def answered() -> bool:
        statuses.append(served.get("ram"))
        return statuses[-1] != 503

    wait_until(answered, FALLBACK)
    recovery = time.monotonic() - committed
    assert statuses[-1] == 403 and 200 not in statuses, statuses
    assert served.get("shyam") == 403 and served.get("sita") == 200
    IAM(served.guard.store, ACCOUNT).create_user("newcomer")  # management works again
    assert served.sign_in("gita")
    assert recovery < FALLBACK


def test_frozen_server_answers_503_in_bounded_time(served: Served) -> None:
    """Every server process SIGSTOPped (a hung host): a request that must check the store gets
    503 once the client gives up waiting (no answer in 1.5 s, then 2 s to connect afresh), the
    next ones at once; a management call fails as fast. After SIGCONT all is well again."""
    assert_warm(served)
    checked = answers_from_cache(served)
    served.server.freeze()
    until_window_closes(checked)
    started = time.monotonic()
    assert served.get("ram") == 503
    first_503 = time.monotonic() - started
    assert first_503 < NO_ANSWER + CONNECT + MARGIN, first_503
    started = time.monotonic()
    assert served.get("ram", method="DELETE") == 503
    assert time.monotonic() - started < MARGIN  # the failed check is not repeated at once
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"no answer from the server|timeout expired"):
        IAM(served.guard.store, ACCOUNT).create_user("intruder")
    assert time.monotonic() - started < NO_ANSWER + CONNECT + MARGIN
    served.server.thaw()
    thawed = time.monotonic()
    wait_until(lambda: served.get("ram") == 200, timeout=FALLBACK)
    assert time.monotonic() - thawed < FALLBACK
    assert served.get("ram", method="DELETE") == 403
    with pytest.raises(NoSuchEntity):  # the failed call wrote nothing
        IAM(served.guard.store, ACCOUNT).get_user("intruder")


def test_frozen_postmaster_blocks_only_new_connections(served: Served) -> None:
    """Only the postmaster SIGSTOPped: the sessions already open keep deciding correctly, while
    opening another store gives up after the connect timeout with ``StoreUnavailable``."""
    assert_warm(served)
    served.server.freeze(backends=False)
    served.guard.authorizer.read_model.refresh(force=True)
    assert served.get("ram") == 200 and served.get("ram", method="DELETE") == 403
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="timeout expired"):
        SQLStore(served.url, connect_timeout=CONNECT)
    assert time.monotonic() - started < CONNECT + MARGIN


def listener_pids(served: Served) -> list[int]:
    database = served.url.rsplit("/", 1)[1]
    return served.server.pids(f"application_name = 'iamguard-listen' AND datname = '{database}'")


def test_stalled_listen_connection_falls_back_to_polling(served: Served) -> None:
    """The LISTEN session SIGSTOPped (no notification arrives, the connection stays open): a
    revocation committed elsewhere is still enforced within the fallback poll interval."""
    assert_warm(served)
    (listener,) = listener_pids(served)
    served.server.freeze_pid(listener)
    other = SQLStore(served.url, connect_timeout=CONNECT)
    try:
        IAM(other, ACCOUNT).detach_group_policy("developers", READ_ACCESS)
        committed = time.monotonic()
        wait_until(lambda: served.get("ram") == 403, timeout=FALLBACK)
        assert time.monotonic() - committed < FALLBACK
    finally:
        other.close()


def test_dropped_listen_connection_reconnects(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """The LISTEN session terminated: the listener says so in the log and reconnects, and a
    change committed elsewhere afterwards arrives by notification again, with no polling."""
    assert_warm(served)
    (listener,) = listener_pids(served)
    served.guard.authorizer.read_model.poll_interval = 60.0  # from now on only notifications
    with caplog.at_level(logging.WARNING, logger="iamguard.stores"):
        assert served.server.terminate(f"pid = {listener}") == [listener]
        wait_until(lambda: listener_pids(served) not in ([], [listener]), timeout=3)
    assert any("listening for changes" in r.getMessage() for r in caplog.records)
    other = SQLStore(served.url, connect_timeout=CONNECT)
    try:
        IAM(other, ACCOUNT).detach_group_policy("developers", READ_ACCESS)
        assert wait_until(lambda: served.get("ram") == 403, timeout=MARGIN) < MARGIN
    finally:
        other.close()


def test_requests_during_a_restart_never_allow_what_is_denied(served: Served) -> None:
    """Requests from several threads while the server stops and starts again: each answers
    200, 403 or 503 as it may, a denied request never succeeds, and all recover."""
    assert_warm(served)
    seen: dict[tuple[str, str], set[int]] = {("ram", "GET"): set(), ("ram", "DELETE"): set()}
    stop = threading.Event()

    def hammer(user: str, method: str) -> None:
        while not stop.is_set():
            seen[(user, method)].add(served.get(user, method=method))

    threads = [threading.Thread(target=hammer, args=key) for key in seen]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.2)
        served.server.stop()
        time.sleep(POLL + 0.5)
        served.server.start()
        wait_until(lambda: served.get("ram") == 200, timeout=FALLBACK)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert seen[("ram", "GET")] == {200, 503}
    assert seen[("ram", "DELETE")] == {403, 503}
