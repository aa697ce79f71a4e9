"""A private PostgreSQL server for fault tests: one this test run may stop, restart and freeze.

Built with the server's own ``initdb`` and ``pg_ctl`` in a temporary folder, listening on a free
port of 127.0.0.1 with trust authentication. PostgreSQL refuses to run as root, so as root the
programs run as the ``postgres`` OS user. Without the programs (or that user) the tests that
need the server skip, or fail when ``IAMGUARD_TEST_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

OS_USER = "postgres"


def _binaries() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, newest version first; None if absent."""
    found = shutil.which("pg_ctl")
    candidates = [str(Path(found).resolve().parent)] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if all(os.access(Path(folder, p), os.X_OK) for p in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def _problem() -> str | None:
    """Why a private server cannot be run here, or None."""
    if _binaries() is None:
        return "PostgreSQL's initdb/pg_ctl are not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root, and there is no `{OS_USER}` OS user to run PostgreSQL as"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Every process whose parent is ``pid`` (the postmaster's backends and workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


class PgServer:
    """One private PostgreSQL server; ``url()`` names a fresh database on it."""

    def __init__(self, folder: Path, binaries: Path) -> None:
        self.folder = folder
        self.binaries = binaries
        self.data = folder / "data"
        self.port = _free_port()
        self.frozen: list[int] = []

    def _run(self, *args: str) -> None:
        program = [str(self.binaries / args[0]), *args[1:]]
        if os.geteuid() == 0:
            program = ["runuser", "-u", OS_USER, "--", *program]
        result = subprocess.run(program, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            log = (self.folder / "log").read_text() if (self.folder / "log").exists() else ""
            raise RuntimeError(f"{' '.join(args[:1])} failed: {result.stderr}{log[-2000:]}")

    def init(self) -> None:
        """Create the cluster (trust authentication, no fsync: a crash of the server loses no
        commit, only a crash of the machine would)."""
        if os.geteuid() == 0:
            shutil.chown(self.folder, OS_USER)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                  "-t", "30", "-o", options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends every session; ``immediate`` is a crash."""
        self.thaw()
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    @property
    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def freeze(self, *, backends: bool = True) -> None:
        """SIGSTOP the postmaster (no new connection is answered) and, with ``backends``, every
        server process: then no open connection is answered either, as with a hung host."""
        pids = [self.postmaster, *(_children(self.postmaster) if backends else [])]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        self.frozen.extend(pids)

    def thaw(self) -> None:
        """SIGCONT whatever ``freeze`` stopped."""
        while self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.frozen.pop(), signal.SIGCONT)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: str) -> list[tuple[object, ...]]:
        """Run one statement as the superuser, on a connection of its own; its rows."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        name = f"iamguard_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def pids(self, where: str) -> list[int]:
        """The other sessions matching ``where`` (SQL over ``pg_stat_activity``)."""
        rows = self.admin(
            f"SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND {where}"
        )
        return [int(str(row[0])) for row in rows]

    def terminate(self, where: str) -> list[int]:
        """``pg_terminate_backend`` for the other sessions matching ``where``; their pids."""
        pids = self.pids(where)
        for pid in pids:
            self.admin(f"SELECT pg_terminate_backend({pid})")
        return pids

    def freeze_pid(self, pid: int) -> None:
        """SIGSTOP one server process (a backend); ``thaw`` resumes it."""
        os.kill(pid, signal.SIGSTOP)
        self.frozen.append(pid)


@contextlib.contextmanager
def private_server() -> Iterator[PgServer]:
    """A running private server, stopped and removed afterwards; skips (or fails) without one."""
    problem, binaries = _problem(), _binaries()
    if problem is not None or binaries is None:
        message = f"no private PostgreSQL server: {problem}"
        if os.environ.get("IAMGUARD_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = PgServer(Path(tempfile.mkdtemp(prefix="iamguard-pg-")), binaries)
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                server.stop("immediate")
        shutil.rmtree(server.folder, ignore_errors=True)


def wait_until(condition: Callable[[], object], timeout: float, step: float = 0.02) -> float:
    """Call ``condition()`` until it is true; the seconds it took. Fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not true within {timeout} s: {condition}")
        time.sleep(step)
    return time.monotonic() - start
