"""What the web adapters cost per request: ``.venv/bin/python benchmarks/http_bench.py [--quick]``.

The same ``GET /images/{image_id}`` app, bare and guarded, called in-process (ASGI/WSGI, no
network) and through one server process (uvicorn for Starlette, waitress for Flask), with a
reference app that verifies a pyjwt HS256 token on every request. See benchmarks/README.md.
Targets: in-process guarded ≤ 1.4x bare (median µs); through a server ≥ 90% of bare's req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import io
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from timing import Job, Stats, fmt_us, sample_interleaved, stop, summarize, table

from iamguard.guard import Guard
from iamguard.iam import IAM
from iamguard.integrations.flask import IAMGuard
from iamguard.integrations.starlette import IAMGuardMiddleware, requires
from iamguard.modelfile import load_model

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
USER = "ram"
IMAGE_ID = "red-1"
PATH = f"/images/{IMAGE_ID}"
RESOURCE = "arn:iamguard:images::{account}:image/{image_id}"
JWT_KEY = b"http-bench-hs256-key-0123456789abcdef"  # a reference secret, not a credential
RATIO_TARGET = 1.4  # in-process: guarded median / bare median at most this
THROUGHPUT_TARGET = 0.9  # through a server: guarded req/s / bare req/s at least this
CONNECTIONS = 4
SERVER_THREADS = 4  # waitress


# --- the apps ----------------------------------------------------------------------------------


def make_guard() -> tuple[Guard, str]:
    """The example team in a memory store, and a session token for ram (via an access key)."""
    store, _ = load_model(ROOT / "examples" / "team.yaml")
    guard = Guard(store)
    key = IAM(store, ACCOUNT).create_access_key(USER)
    token = guard.sts.get_session_token(
        ACCOUNT, access_key_id=key.access_key.access_key_id,
        secret_access_key=key.secret_access_key,
    ).session_token  # fmt: skip
    return guard, token


def jwt_token() -> str:
    """An HS256 token for the pyjwt reference app."""
    now = int(time.time())
    claims = {"sub": USER, "iat": now, "exp": now + 86_400, "account": ACCOUNT}
    return jwt.encode(claims, JWT_KEY, algorithm="HS256")


def starlette_app(kind: str, guard: Guard | None) -> Any:
    """``bare``, ``guarded`` (IAMGuardMiddleware + @requires) or ``pyjwt`` (decode per request)."""
    if kind == "pyjwt":

        async def get_image(request: Request) -> JSONResponse:
            token = request.headers["authorization"].removeprefix("Bearer ")
            claims = jwt.decode(token, JWT_KEY, algorithms=["HS256"])
            image_id = request.path_params["image_id"]
            return JSONResponse({"id": image_id, "name": "Red", "owner": claims["sub"]})

    else:

        async def get_image(request: Request) -> JSONResponse:
            image_id = request.path_params["image_id"]
            return JSONResponse({"id": image_id, "name": "Red", "owner": USER})

    if kind == "guarded":
        get_image = requires("images:GetImage", resource=RESOURCE)(get_image)
    app = Starlette(routes=[Route("/images/{image_id}", get_image, methods=["GET"])])
    if kind == "guarded":
        app.add_middleware(IAMGuardMiddleware, guard=guard)
    return app


def flask_app(kind: str, guard: Guard | None) -> Flask:
    """``bare`` or ``guarded`` (IAMGuard + require)."""
    app = Flask(f"http_bench_{kind}")
    extension = IAMGuard(app, guard=guard) if kind == "guarded" else None

    def get_image(image_id: str) -> dict[str, str]:
        return {"id": image_id, "name": "Red", "owner": USER}

    if extension is not None:
        get_image = extension.require("images:GetImage", resource=RESOURCE)(get_image)
    app.get("/images/<image_id>")(get_image)
    return app


# --- in-process calls --------------------------------------------------------------------------


@dataclass
class Caller:
    """One direct call of an app; counts responses whose status is not 200."""

    name: str
    app: Any
    token: str | None
    bad: int = 0
    last: tuple[int, bytes] = (0, b"")


def asgi_scope(token: str | None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"http-bench"),
               (b"accept", b"*/*")]  # fmt: skip
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": PATH,
        "raw_path": PATH.encode(), "root_path": "", "query_string": b"", "headers": headers,
        "client": ("127.0.0.1", 50_000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip


def asgi_call(caller: Caller) -> Callable[[], Any]:
    """An async function making one request; a fresh scope each time (apps write into it)."""
    base = asgi_scope(caller.token)
    app = caller.app
    message = {"type": "http.request", "body": b"", "more_body": False}
    status = [0]
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(event: dict[str, Any]) -> None:
        if event["type"] == "http.response.start":
            status[0] = event["status"]
            if event["status"] != 200:
                caller.bad += 1
        elif event["type"] == "http.response.body":
            body.append(event.get("body", b""))

    async def call() -> None:
        body.clear()
        await app(dict(base), receive, send)
        caller.last = (status[0], b"".join(body))

    return call


def wsgi_call(caller: Caller) -> Callable[[Any], None]:
    """A function making one WSGI request; a fresh environ each time."""
    base = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": PATH, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "http-bench", "HTTP_ACCEPT": "*/*", "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": False,
        "wsgi.multiprocess": False, "wsgi.run_once": False,
    }  # fmt: skip
    if caller.token is not None:
        base["HTTP_AUTHORIZATION"] = f"Bearer {caller.token}"
    app = caller.app
    status = [""]

    def start_response(line: str, headers: list[Any], exc_info: Any = None) -> None:
        status[0] = line
        if not line.startswith("200"):
            caller.bad += 1

    def call(_: Any) -> None:
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(b"")
        result = app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        caller.last = (int(status[0].split()[0]), payload)

    return call


async def asgi_interleaved(calls: list[Callable[[], Any]], budget_s: float,
                           turns: int = 10) -> list[Stats]:  # fmt: skip
    """``sample_interleaved`` for async calls, all in one event loop: µs per awaited call."""
    clock = time.perf_counter_ns
    for call in calls:  # warm-up
        for _ in range(200):
            await call()
    times: list[list[int]] = [[] for _ in calls]
    turn_ns = int(budget_s * 1e9 / turns)
    for _ in range(turns):
        for call, samples in zip(calls, times, strict=True):
            append = samples.append
            deadline = clock() + turn_ns
            while True:
                start = clock()
                await call()
                end = clock()
                append(end - start)
                if end >= deadline:
                    break
    return [summarize(samples) for samples in times]


def check_answer(label: str, status: int, body: bytes, expected: int = 200) -> None:
    if status != expected:
        raise SystemExit(f"FAIL: {label}: status {status}, expected {expected}: {body[:200]!r}")
    if expected == 200 and json.loads(body).get("id") != IMAGE_ID:
        raise SystemExit(f"FAIL: {label}: unexpected body {body[:200]!r}")


# --- servers and load --------------------------------------------------------------------------


def serve(kind: str, port: int) -> None:
    """Child process: build one app, print its token, serve it on 127.0.0.1:port until killed."""
    framework, variant = kind.split("-")
    guard, token = make_guard() if variant == "guarded" else (None, "")
    if variant == "pyjwt":
        token = jwt_token()
    print(f"TOKEN {token or '-'}", flush=True)
    if framework == "starlette":
        import uvicorn

        uvicorn.run(starlette_app(variant, guard), host="127.0.0.1", port=port, workers=1,
                    log_level="warning", access_log=False)  # fmt: skip
    else:
        import logging

        import waitress

        logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is 1"

        waitress.serve(flask_app(variant, guard), host="127.0.0.1", port=port,
                       threads=SERVER_THREADS, _quiet=True)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, token: str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", PATH, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def server(kind: str) -> Iterator[tuple[int, str | None]]:
    """A server child process; yields (port, token), checked to answer 200 with the token."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = child.stdout.readline() if child.stdout else ""
        if not line.startswith("TOKEN "):
            raise SystemExit(f"FAIL: server {kind} did not start: {line!r}")
        token = line.split()[1]
        token = None if token == "-" else token
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = get(port, token)
                break
            except OSError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise SystemExit(f"FAIL: server {kind} does not answer") from None
                time.sleep(0.05)
        check_answer(f"{kind} through the server", status, body)
        if kind.endswith("guarded"):
            status, body = get(port, None)
            check_answer(f"{kind} without a token", status, body, expected=401)
        yield port, token
    finally:
        stop(child, 10)


@dataclass(frozen=True)
class Load:
    """One load run: requests/s, latency percentiles in ms, requests that were not 2xx/3xx."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk_load(port: int, token: str | None, seconds: int) -> Load:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    bad = int(errors.group(1)) if errors else 0
    if socket_errors:
        bad += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Load(rps, p50, p99, bad)


def python_load(port: int, token: str | None, seconds: float) -> Load:
    """The fallback without wrk: a child process of CONNECTIONS keep-alive http.client threads."""
    out = subprocess.run(
        [sys.executable, __file__, "--load", str(port), "--seconds", str(seconds),
         "--token", token or "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return Load(**json.loads(out))


def load_child(port: int, token: str | None, seconds: float) -> None:
    """Child process: keep-alive GETs from CONNECTIONS threads for ``seconds``; prints a Load."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[list[float]] = []
    errors = [0]
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        mine: list[float] = []
        latencies.append(mine)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while (start := time.perf_counter()) < deadline:
            conn.request("GET", PATH, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                errors[0] += 1
        conn.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    done = sorted(t for mine in latencies for t in mine)
    print(json.dumps({
        "rps": len(done) / elapsed, "p50_ms": done[len(done) // 2] * 1000,
        "p99_ms": done[min(len(done) - 1, len(done) * 99 // 100)] * 1000, "errors": errors[0],
    }))  # fmt: skip


# --- figures -----------------------------------------------------------------------------------


def in_process(budget_s: float) -> dict[str, Stats]:
    """Figure 1: direct ASGI and WSGI calls, bare vs guarded (warm), plus the pyjwt reference."""
    guard, token = make_guard()
    bearer = jwt_token()
    asgi = [Caller("starlette bare", starlette_app("bare", None), token),
            Caller("starlette guarded", starlette_app("guarded", guard), token),
            Caller("starlette + pyjwt HS256", starlette_app("pyjwt", None), bearer)]  # fmt: skip
    wsgi = [Caller("flask bare", flask_app("bare", None), token),
            Caller("flask guarded", flask_app("guarded", guard), token)]  # fmt: skip
    asgi_calls = [asgi_call(c) for c in asgi]
    wsgi_calls = [wsgi_call(c) for c in wsgi]
    loop = asyncio.new_event_loop()
    try:
        for caller, call in zip(asgi, asgi_calls, strict=True):  # check before timing
            loop.run_until_complete(call())
            check_answer(caller.name, *caller.last)
        for caller, wcall in zip(wsgi, wsgi_calls, strict=True):
            wcall(None)
            check_answer(caller.name, *caller.last)
        anonymous = Caller("starlette guarded, no token", asgi[1].app, None)
        loop.run_until_complete(asgi_call(anonymous)())
        check_answer(anonymous.name, *anonymous.last, expected=401)
        anonymous = Caller("flask guarded, no token", wsgi[1].app, None)
        wsgi_call(anonymous)(None)
        check_answer(anonymous.name, *anonymous.last, expected=401)
        misses = guard.misses
        asgi_stats = loop.run_until_complete(asgi_interleaved(asgi_calls, budget_s))
    finally:
        loop.close()
    jobs = [Job(c.name, "", call, range(100)) for c, call in zip(wsgi, wsgi_calls, strict=True)]
    wsgi_stats = sample_interleaved(jobs, budget_s)
    callers = asgi + wsgi
    for caller in callers:
        if caller.bad:
            raise SystemExit(f"FAIL: {caller.name}: {caller.bad} timed responses were not 200")
    if guard.misses != misses:
        raise SystemExit(f"FAIL: {guard.misses - misses} decisions missed the cache while timed")
    stats = dict(zip([c.name for c in callers], asgi_stats + wsgi_stats, strict=True))
    rows = []
    for name, st in stats.items():
        base = stats["flask bare" if name.startswith("flask") else "starlette bare"]
        rows.append([name, fmt_us(st.median_us), fmt_us(st.p90_us),
                     f"{st.median_us / base.median_us:.2f}x", f"{st.samples:,}"])  # fmt: skip
    print(table(["app (in-process)", "median µs", "p90 µs", "vs bare", "samples"], rows))
    print(f"\nWarm path: every timed request answered 200; request memo hits "
          f"{guard.requests.hits:,}, decision cache hits {guard.hits:,}, misses {guard.misses} "
          "(all before timing).")  # fmt: skip
    return stats


def through_servers(seconds: int, rounds: int, loader: str) -> dict[str, Load]:
    """Figure 2: req/s and latency through one server process, bare and guarded taking turns."""
    groups = [("starlette-bare", "starlette-guarded", "starlette-pyjwt"),
              ("flask-bare", "flask-guarded")]  # fmt: skip
    results: dict[str, Load] = {}
    for kinds in groups:
        with contextlib.ExitStack() as stack:
            servers = {kind: stack.enter_context(server(kind)) for kind in kinds}
            runs: dict[str, list[Load]] = {kind: [] for kind in kinds}
            for port, token in servers.values():  # warm-up, untimed
                run_load(loader, port, token, 1)
            for turn in range(rounds):
                order = kinds if turn % 2 == 0 else tuple(reversed(kinds))
                for kind in order:
                    port, token = servers[kind]
                    runs[kind].append(run_load(loader, port, token, seconds))
        for kind, loads in runs.items():
            if any(load.errors for load in loads):
                raise SystemExit(f"FAIL: {kind}: {sum(x.errors for x in loads)} non-200 answers")
            middle = sorted(loads, key=lambda x: x.rps)[len(loads) // 2]
            results[kind] = Load(statistics.median(x.rps for x in loads), middle.p50_ms,
                                 middle.p99_ms, 0)  # fmt: skip
    rows = []
    for kind, load in results.items():
        base = results[kind.split("-")[0] + "-bare"]
        server_name = "uvicorn" if kind.startswith("starlette") else f"waitress {SERVER_THREADS}t"
        rows.append(
            [
                kind.replace("-", " "),
                server_name,
                f"{load.rps:,.0f}",
                f"{load.rps / base.rps:.0%}",
                f"{load.p50_ms:.2f}",
                f"{load.p99_ms:.2f}",
            ]
        )
    print(table(["app", "server (1 process)", "req/s", "vs bare", "p50 ms", "p99 ms"], rows,
                left=2))  # fmt: skip
    return results


def run_load(loader: str, port: int, token: str | None, seconds: int) -> Load:
    if loader == "wrk":
        return wrk_load(port, token, seconds)
    return python_load(port, token, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.load:
        load_child(args.load, None if args.token == "-" else args.token, args.seconds)
        return 0
    budget = 0.5 if args.quick else 5.0
    seconds, rounds = (2, 1) if args.quick else (3, 3)
    loader = "wrk" if shutil.which("wrk") else "python"
    print(f"# iamguard HTTP adapters ({'quick' if args.quick else 'full'} run)")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"example team, user `{USER}`, GET {PATH}.")  # fmt: skip

    print("\n## 1. In-process (direct ASGI / WSGI calls, no network; warm path)\n", flush=True)
    stats = in_process(budget)

    load_text = (f"wrk -t1 -c{CONNECTIONS}" if loader == "wrk"
                 else f"python http.client, {CONNECTIONS} keep-alive threads")  # fmt: skip
    print(
        f"\n## 2. Through a server ({load_text}; {rounds} x {seconds} s per app, "
        "apps taking turns; median round)\n",
        flush=True,
    )
    loads = through_servers(seconds, rounds, loader)

    print("\n## Targets\n")
    ok = True
    for framework in ("starlette", "flask"):
        ratio = stats[f"{framework} guarded"].median_us / stats[f"{framework} bare"].median_us
        passed = ratio <= RATIO_TARGET
        ok &= passed
        print(
            f"{'PASS' if passed else 'FAIL'}: {framework} in-process guarded/bare "
            f"{ratio:.2f}x (target ≤ {RATIO_TARGET}x)"
        )
    for framework in ("starlette", "flask"):
        share = loads[f"{framework}-guarded"].rps / loads[f"{framework}-bare"].rps
        passed = share >= THROUGHPUT_TARGET
        ok &= passed
        print(
            f"{'PASS' if passed else 'FAIL'}: {framework} through its server guarded req/s "
            f"{share:.0%} of bare (target ≥ {THROUGHPUT_TARGET:.0%})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
