"""The Starlette/FastAPI adapter decides every request before the endpoint runs, on the route
the router will actually use: through Starlette's TestClient and through a real uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from servers import serve_asgi as serve
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import StarletteDeprecationWarning
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from iamguard.errors import StoreUnavailable
from iamguard.guard import Guard
from iamguard.iam import IAM
from iamguard.integrations._http import Permission
from iamguard.integrations.starlette import (
    IAMGuardHTTPException,
    IAMGuardMiddleware,
    current_session,
    exception_handler,
    permission,
    public,
    requires,
)
from iamguard.modelfile import load_model
from iamguard.sessions import Session

with warnings.catch_warnings():  # starlette 1.x prefers `httpx2`; the venv has `httpx`
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient, WebSocketDenialResponse

ACCOUNT = "123456789012"
TEAM = Path(__file__).resolve().parents[1] / "examples" / "team.yaml"
IMAGE = "arn:iamguard:images::{account}:image/"
USERS = ["ram", "shyam", "sita", "gita"]

calls: list[tuple[str, str]] = []  # (endpoint, who): what the endpoints saw


def ran(name: str) -> list[str]:
    """Who an endpoint ran for."""
    return [who for endpoint, who in calls if endpoint == name]


def _who(request: Request | WebSocket) -> str:
    session = current_session.get()
    assert session is not None and request.user.display_name == session.name
    assert request.auth.session is session and "authenticated" in request.auth.scopes
    return session.name


@requires("images:GetImage", resource=IMAGE + "{image_id}")
async def get_image(request: Request) -> Response:
    calls.append(("get_image", _who(request)))
    return PlainTextResponse(f"image {request.path_params['image_id']}")


@requires("images:DeleteImage", resource=IMAGE + "{image_id}")
def delete_image(request: Request) -> Response:  # sync: runs in a thread, sees the context var
    calls.append(("delete_image", _who(request)))
    return PlainTextResponse(request.user.identity)


@requires("images:DeleteImage", resource=IMAGE + "{key:path}")
async def delete_file(request: Request) -> Response:
    calls.append(("delete_file", _who(request)))
    return PlainTextResponse("deleted")


async def undeclared(request: Request) -> Response:
    calls.append(("undeclared", "?"))
    return PlainTextResponse("oops")


@public
async def health(request: Request) -> Response:
    calls.append(("health", "anyone"))
    return PlainTextResponse("ok")


async def ruled(request: Request) -> Response:
    calls.append(("ruled", _who(request)))
    return PlainTextResponse("ruled")


class Items(HTTPEndpoint):
    @requires("images:GetImage", resource=IMAGE + "{image_id}")
    async def get(self, request: Request) -> Response:
        calls.append(("items", _who(request)))
        return PlainTextResponse("item")

    async def options(self, request: Request) -> Response:
        calls.append(("items_options", "?"))
        return PlainTextResponse("options")


@requires("images:GetImage", resource=IMAGE + "{image_id}")
async def watch(websocket: WebSocket) -> None:
    await websocket.accept()
    calls.append(("watch", _who(websocket)))
    await websocket.send_text("hello")
    await websocket.close()


async def raw_app(scope: Any, receive: Any, send: Any) -> None:
    """A mounted ASGI app with no routes."""
    calls.append(("raw", current_session.get().name))  # type: ignore[union-attr]
    await PlainTextResponse("raw")(scope, receive, send)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> Any:
    calls.append(("lifespan", "startup"))
    yield


SUB = Starlette(routes=[Route("/images/{image_id}", delete_image, methods=["DELETE"])])
RULES = {
    "/ruled/{image_id}": Permission("images:GetImage", IMAGE + "{image_id}"),
    "/raw/{path:path}": Permission("images:GetImage", IMAGE + "{path:path}"),
}


def make_app(**options: Any) -> Starlette:
    """The test app with the middleware."""
    routes = [
        Route("/images/{image_id}", get_image),
        Route("/images/{image_id}", delete_image, methods=["DELETE"]),
        Route("/files/{key:path}", delete_file, methods=["DELETE"]),
        Route("/undeclared", undeclared),
        Route("/health", health),
        Route("/ruled/{image_id}", ruled),
        Route("/items/{image_id}", Items),
        Mount("/v1", routes=[Route("/images/{image_id}", delete_image, methods=["DELETE"])]),
        Mount("/sub", app=SUB),
        Mount("/raw", app=raw_app),
        WebSocketRoute("/ws/{image_id}", watch),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(IAMGuardMiddleware, rules=RULES, **options)
    return app


@pytest.fixture(scope="module")
def guard() -> Guard:
    store, _ = load_model(TEAM)
    return Guard(store)


@pytest.fixture(scope="module")
def tokens(guard: Guard) -> dict[str, str]:
    out = {}
    for name in USERS:
        key = IAM(guard.store, ACCOUNT).create_access_key(name)
        out[name] = guard.sts.get_session_token(
            ACCOUNT, access_key_id=key.access_key.access_key_id,
            secret_access_key=key.secret_access_key,
        ).session_token  # fmt: skip
    return out


@pytest.fixture(autouse=True)
def _clear() -> None:
    calls.clear()


# --- transports: one call signature, two ways to reach the app -------------------------------

Call = Callable[..., tuple[int, dict[str, str], bytes]]


def raw_request(port: int, method: str, target: str, headers: dict[str, str]) -> Any:
    """One HTTP/1.1 request with the target sent byte for byte (no client normalization)."""
    lines = [f"{method} {target} HTTP/1.1", "Host: testserver", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


@pytest.fixture(scope="module", params=["testclient", "uvicorn"])
def transport(request: pytest.FixtureRequest, guard: Guard) -> Iterator[Callable[..., Call]]:
    """``make(app=None, root_path="")`` -> ``call(method, target, token=None, headers=None)``."""
    with contextlib.ExitStack() as stack:
        cache: dict[Any, Call] = {}

        def make(app: Any = None, root_path: str = "") -> Call:
            key = (id(app), root_path)
            if key in cache:
                return cache[key]
            app = app or make_app(guard=guard)
            if request.param == "testclient":
                client = stack.enter_context(TestClient(app, root_path=root_path))

                def call(method: str, target: str, token: str | None = None,
                         headers: dict[str, str] | None = None) -> Any:  # fmt: skip
                    hdrs = dict(headers or {})
                    if token:
                        hdrs["authorization"] = f"Bearer {token}"
                    r = client.request(method, target, headers=hdrs, follow_redirects=False)
                    return r.status_code, dict(r.headers), r.content
            else:
                port = stack.enter_context(serve(app, root_path=root_path))

                def call(method: str, target: str, token: str | None = None,
                         headers: dict[str, str] | None = None) -> Any:  # fmt: skip
                    hdrs = dict(headers or {})
                    if token:
                        hdrs["Authorization"] = f"Bearer {token}"
                    return raw_request(port, method, target, hdrs)  # a proxy stripped root_path

            cache[key] = call
            return call

        yield make


def error(body: bytes) -> dict[str, str]:
    return json.loads(body)["Error"]


# --- the decisions ---------------------------------------------------------------------------


def test_allowed(transport: Any, tokens: dict[str, str]) -> None:
    """An allowed request runs the endpoint once, with the principal in scope."""
    status, _, body = transport()("GET", "/images/1", tokens["ram"])
    assert (status, body) == (200, b"image 1")
    assert ran("get_image") == ["ram"]


def test_sync_endpoint_sees_session(transport: Any, tokens: dict[str, str]) -> None:
    """A sync endpoint (run in a thread) sees the session too."""
    status, _, _ = transport()("DELETE", "/images/1", tokens["sita"])
    assert status == 200 and ran("delete_image") == ["sita"]


def test_denied(transport: Any, tokens: dict[str, str]) -> None:
    """A denial is 403 with AWS's sentence and the endpoint does not run."""
    status, _, body = transport()("DELETE", "/images/1", tokens["ram"])
    assert status == 403 and error(body)["Code"] == "AccessDenied"
    assert error(body)["Message"].startswith(
        f"User: arn:iamguard:iam::{ACCOUNT}:user/ram is not authorized to perform: "
        f"images:DeleteImage on resource: arn:iamguard:images::{ACCOUNT}:image/1"
    )
    assert ran("delete_image") == []


def test_no_token(transport: Any) -> None:
    """No credential: 401 with a bare Bearer challenge, endpoint not run."""
    status, headers, body = transport()("GET", "/images/1")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert error(body)["Code"] == "MissingAuthenticationToken" and ran("get_image") == []


@pytest.mark.parametrize("header", ["Bearer not-a-jwt", "Basic abc", "Bearer a b"])
def test_bad_token(transport: Any, header: str) -> None:
    """A malformed or forged credential: 401 invalid_token, endpoint not run."""
    status, headers, _ = transport()("GET", "/images/1", headers={"Authorization": header})
    assert status == 401 and 'error="invalid_token"' in headers["www-authenticate"]
    assert ran("get_image") == []


def test_undeclared_route_denied(transport: Any, tokens: dict[str, str]) -> None:
    """A route without a declaration is denied even to an admin."""
    status, _, body = transport()("GET", "/undeclared", tokens["sita"])
    assert status == 403 and "no iamguard declaration" in error(body)["Message"]
    assert ran("undeclared") == []


def test_public_route_open(transport: Any) -> None:
    """A public route needs no credential."""
    assert transport()("GET", "/health")[0] == 200 and ran("health") == ["anyone"]


def test_rules_declare_routes(transport: Any, tokens: dict[str, str]) -> None:
    """A route declared in ``rules`` by its template is authorized by it."""
    assert transport()("GET", "/ruled/7", tokens["ram"])[0] == 200
    assert transport()("GET", "/ruled/7")[0] == 401
    assert ran("ruled") == ["ram"]


def test_unknown_path_unchanged(transport: Any, tokens: dict[str, str]) -> None:
    """A path no route matches gets the router's own 404, with or without a token."""
    for token in (None, tokens["ram"]):
        status, _, body = transport()("GET", "/nowhere", token)
        assert (status, body) == (404, b"Not Found")


def test_method_not_allowed_unchanged(transport: Any) -> None:
    """A method no route allows gets the router's own 405."""
    assert transport()("PUT", "/images/1")[0] == 405


def test_head_needs_get(transport: Any, tokens: dict[str, str]) -> None:
    """HEAD is authorized as GET: 401 without a token, 200 with one."""
    assert transport()("HEAD", "/images/1")[0] == 401
    assert transport()("HEAD", "/items/1")[0] == 401
    assert ran("get_image") == [] and ran("items") == []
    assert transport()("HEAD", "/items/1", tokens["ram"])[0] == 200
    assert ran("items") == ["ram"]


def test_options_needs_declaration(transport: Any, tokens: dict[str, str]) -> None:
    """Without ``cors_preflight`` OPTIONS on a route that accepts it needs a declaration."""
    headers = {"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}
    status, _, _ = transport()("OPTIONS", "/items/1", tokens["sita"], headers)
    assert status == 403 and ran("items_options") == []


def test_cors_preflight(transport: Any, guard: Guard) -> None:
    """With ``cors_preflight`` a preflight reaches the inner CORSMiddleware; other OPTIONS do not."""
    app = Starlette(
        routes=[Route("/items/{image_id}", Items)],
        middleware=[
            Middleware(IAMGuardMiddleware, guard=guard, cors_preflight=True),
            Middleware(CORSMiddleware, allow_origins=["https://a.example"], allow_methods=["GET"]),
        ],
    )
    call = transport(app)
    headers = {"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}
    status, got, _ = call("OPTIONS", "/items/1", headers=headers)
    assert status == 200 and got["access-control-allow-origin"] == "https://a.example"
    assert call("OPTIONS", "/items/1")[0] == 403
    assert ran("items_options") == []


def test_cors_preflight_needs_cors_middleware(guard: Guard) -> None:
    """``cors_preflight=True`` without a CORSMiddleware inside fails loudly."""
    with pytest.raises(TypeError, match="CORSMiddleware"):
        IAMGuardMiddleware(Starlette(), guard=guard, cors_preflight=True)


# --- bypass attempts: each must leave the endpoint unrun ----------------------------------------

BYPASSES = [
    ("double slash", "DELETE", "//images/1"),
    ("double slash in mount", "DELETE", "/v1//images/1"),
    ("encoded slash", "DELETE", "/images%2F1"),
    ("encoded slash in a path parameter", "DELETE", "/files/home/ram/..%2F..%2F1"),
    ("encoded dot segments", "DELETE", "/files/home/ram/%2e%2e/%2e%2e/1"),
    ("encoded dot segment", "DELETE", "/files/%2e/1"),
    ("double encoding", "DELETE", "/files/home/ram/%252e%252e/1"),
    ("trailing slash", "DELETE", "/images/1/"),
    ("letter case", "DELETE", "/IMAGES/1"),
    ("letter case in a mount", "DELETE", "/V1/images/1"),
]
RAW_BYPASSES = [  # dot segments that an HTTP client would resolve before sending
    ("dot segment", "DELETE", "/images/./1"),
    ("dot-dot segments", "DELETE", "/files/home/ram/../../1"),
    ("dot segment in a path parameter", "DELETE", "/files/./1"),
]


@pytest.mark.parametrize(("name", "method", "target"), BYPASSES, ids=[b[0] for b in BYPASSES])
def test_bypass(
    transport: Any, tokens: dict[str, str], name: str, method: str, target: str
) -> None:
    """A path trick never runs a denied endpoint for ram."""
    status, _, _ = transport()(method, target, tokens["ram"])
    assert status in (307, 400, 403, 404), status
    assert ran("delete_image") == [] and ran("delete_file") == []


@pytest.mark.parametrize(
    ("name", "method", "target"), RAW_BYPASSES, ids=[b[0] for b in RAW_BYPASSES]
)
def test_bypass_raw(
    guard: Guard, tokens: dict[str, str], name: str, method: str, target: str
) -> None:
    """Literal dot segments sent byte for byte to uvicorn never run a denied endpoint."""
    with serve(make_app(guard=guard)) as port:
        status, _, _ = raw_request(
            port, method, target, {"Authorization": f"Bearer {tokens['ram']}"}
        )
    assert status in (400, 403, 404), status
    assert ran("delete_image") == [] and ran("delete_file") == []


def test_path_parameter_allowed(transport: Any, tokens: dict[str, str]) -> None:
    """The control for the bypasses: ram may delete in his own folder."""
    assert transport()("DELETE", "/files/home/ram/x", tokens["ram"])[0] == 200
    assert ran("delete_file") == ["ram"]


def test_root_path(transport: Any, guard: Guard, tokens: dict[str, str]) -> None:
    """Behind a root path the route is decided on the path the router strips it to."""
    call = transport(make_app(guard=guard), root_path="/api")
    assert call("DELETE", "/images/1", tokens["ram"])[0] == 403
    assert call("DELETE", "/images/1", tokens["gita"])[0] == 200
    assert ran("delete_image") == ["gita"]


def test_mounted_routes(transport: Any, tokens: dict[str, str]) -> None:
    """Routes in a Mount, a mounted Starlette app and a mounted raw app are all decided."""
    call = transport()
    for target in ("/v1/images/1", "/sub/images/1"):
        assert call("DELETE", target, tokens["ram"])[0] == 403
        assert call("DELETE", target)[0] == 401
        assert call("DELETE", target, tokens["sita"])[0] == 200
    assert ran("delete_image") == ["sita", "sita"]
    assert call("GET", "/raw/anything")[0] == 401 and ran("raw") == []
    assert call("GET", "/raw/anything", tokens["shyam"])[0] == 200 and ran("raw") == ["shyam"]


# --- websockets, lifespan --------------------------------------------------------------------


def test_websocket_allowed(guard: Guard, tokens: dict[str, str]) -> None:
    """An allowed websocket connects and its endpoint sees the session."""
    with TestClient(make_app(guard=guard)) as client:
        auth = {"Authorization": f"Bearer {tokens['ram']}"}
        with client.websocket_connect("/ws/1", headers=auth) as ws:
            assert ws.receive_text() == "hello"
    assert ran("watch") == ["ram"]


@pytest.fixture(scope="module")
def nobody(guard: Guard) -> str:
    """A token for a user no policy grants anything."""
    iam = IAM(guard.store, ACCOUNT)
    iam.create_user("nobody")
    key = iam.create_access_key("nobody")
    return guard.sts.get_session_token(
        ACCOUNT, access_key_id=key.access_key.access_key_id,
        secret_access_key=key.secret_access_key,
    ).session_token  # fmt: skip


REFUSALS = [
    (None, 401, "MissingAuthenticationToken"),
    ("Bearer forged", 401, "InvalidClientTokenId"),
]


@pytest.mark.parametrize(("header", "status", "code"), REFUSALS)
def test_websocket_refused(guard: Guard, header: str | None, status: int, code: str) -> None:
    """A websocket without a valid credential gets the HTTP refusal (ASGI's denial-response
    extension, which the TestClient offers) before the endpoint runs."""
    with TestClient(make_app(guard=guard)) as client:
        headers = {"Authorization": header} if header else {}
        with (
            pytest.raises(WebSocketDenialResponse) as caught,
            client.websocket_connect("/ws/1", headers=headers),
        ):
            pass
    refusal = caught.value
    assert refusal.status_code == status and refusal.json()["Error"]["Code"] == code
    assert refusal.headers["www-authenticate"].startswith("Bearer")
    assert ran("watch") == []


def test_websocket_denied(guard: Guard, nobody: str) -> None:
    """An authenticated principal without the permission gets 403 and AWS's message."""
    auth = {"Authorization": f"Bearer {nobody}"}
    with (
        TestClient(make_app(guard=guard)) as client,
        pytest.raises(WebSocketDenialResponse) as caught,
        client.websocket_connect("/ws/1", headers=auth),
    ):
        pass
    error = caught.value.json()["Error"]
    assert caught.value.status_code == 403 and error["Code"] == "AccessDenied"
    assert "user/nobody is not authorized to perform: images:GetImage" in error["Message"]
    assert ran("watch") == []


async def _refuse_without_extension(guard: Guard) -> list[dict[str, Any]]:
    """The middleware's messages to a server that offers no denial-response extension."""
    sent: list[dict[str, Any]] = []
    scope = {"type": "websocket", "path": "/ws/1", "raw_path": b"/ws/1", "root_path": "",
             "headers": [], "query_string": b"", "scheme": "ws", "server": ("x", 80),
             "client": ("127.0.0.1", 1), "subprotocols": [], "asgi": {"version": "3.0"}}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await make_app(guard=guard)(scope, receive, send)
    return sent


def test_websocket_refused_by_close_without_extension(guard: Guard) -> None:
    """Where the server cannot send an HTTP refusal, the handshake is closed with 1008."""
    sent = asyncio.run(_refuse_without_extension(guard))
    assert [m["type"] for m in sent] == ["websocket.close"] and sent[0]["code"] == 1008
    assert sent[0]["reason"].startswith("MissingAuthenticationToken")
    assert ran("watch") == []


def test_websocket_through_uvicorn(guard: Guard, tokens: dict[str, str], nobody: str) -> None:
    """Through a real uvicorn server and websocket client: allowed connects, the rest are
    refused with 401/403 and AWS's JSON body, and the endpoint runs only for the allowed."""
    with serve(make_app(guard=guard)) as port:
        url = f"ws://127.0.0.1:{port}/ws/1"
        auth = {"Authorization": f"Bearer {tokens['ram']}"}
        with connect(url, additional_headers=auth) as ws:
            assert ws.recv(timeout=5) == "hello"
        assert ran("watch") == ["ram"]
        cases = [
            ({}, 401, "MissingAuthenticationToken"),
            ({"Authorization": "Bearer forged"}, 401, "InvalidClientTokenId"),
            ({"Authorization": f"Bearer {nobody}"}, 403, "AccessDenied"),
        ]
        for headers, status, code in cases:
            with pytest.raises(InvalidStatus) as caught:
                connect(url, additional_headers=headers, open_timeout=5)
            response = caught.value.response
            assert response.status_code == status
            assert json.loads(response.body)["Error"]["Code"] == code
    assert ran("watch") == ["ram"]


def test_lifespan_runs(guard: Guard) -> None:
    """The app's lifespan runs through the middleware."""
    with TestClient(make_app(guard=guard)):
        assert ran("lifespan") == ["startup"]
    with serve(make_app(guard=guard), lifespan="on"):
        assert ran("lifespan") == ["startup", "startup"]


@pytest.mark.parametrize(
    ("failure", "status"),
    [(StoreUnavailable("db down at 10.0.0.5"), 503), (RuntimeError("x"), 500)],
)
def test_failures_fail_closed(
    guard: Guard, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    failure: Exception, status: int,
) -> None:  # fmt: skip
    """A store failure answers 503, any other failure 500; generic bodies; endpoint not run."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(guard, "authorize", broken)
    with TestClient(make_app(guard=guard)) as client:
        r = client.get("/images/1", headers={"Authorization": f"Bearer {tokens['sita']}"})
    assert r.status_code == status and "10.0.0.5" not in r.text and ran("get_image") == []


def test_context_provider(guard: Guard, tokens: dict[str, str]) -> None:
    """A context provider runs for each decided request; an `aws:` key is refused (fail closed)."""
    seen: list[str] = []

    def provide(scope: Any) -> dict[str, str]:
        seen.append(scope["path"])
        return {"aws:username": "sita"} if scope["path"] == "/images/forged" else {"app:x": "1"}

    with TestClient(make_app(guard=guard, context_provider=provide)) as client:
        auth = {"Authorization": f"Bearer {tokens['ram']}"}
        assert client.get("/images/1", headers=auth).status_code == 200
        assert client.get("/images/forged", headers=auth).status_code == 500
    assert seen == ["/images/1", "/images/forged"] and ran("get_image") == ["ram"]


# --- concurrency -----------------------------------------------------------------------------


def test_concurrent_users_never_share_decisions(
    transport: Any, guard: Guard, tokens: dict[str, str]
) -> None:
    """20 threads of distinct users (and role sessions) each get their own decision."""
    sita = guard.authenticate(tokens["sita"])
    role = guard.sts.assume_role(sita, f"arn:iamguard:iam::{ACCOUNT}:role/ImageAdmin", "s1")
    who = {**tokens, "ImageAdmin": role.session_token}
    expected = {"ram": 403, "shyam": 403, "sita": 200, "gita": 200, "ImageAdmin": 200}
    call = transport()
    jobs = [list(who)[i % len(who)] for i in range(20)]

    principals = {name: guard.authenticate(token).principal for name, token in who.items()}

    def one(name: str) -> tuple[str, int, bytes]:
        status, _, body = call("DELETE", "/images/1", who[name])
        return name, status, body

    with ThreadPoolExecutor(20) as pool:
        for _ in range(3):
            for name, status, body in pool.map(one, jobs):
                assert status == expected[name], name
                if status == 200:  # the endpoint saw this caller, not another thread's
                    assert body.decode() == principals[name]
                else:
                    assert f"/{name} is not authorized" in error(body)["Message"]
    assert sorted(set(ran("delete_image"))) == ["ImageAdmin", "gita", "sita"]


# --- FastAPI ---------------------------------------------------------------------------------


CanDelete = Annotated[Session, Depends(permission("images:DeleteImage", IMAGE + "{image_id}"))]


def fastapi_app(guard: Guard, with_middleware: bool) -> FastAPI:
    """A FastAPI app whose route is declared by the dependency alone."""
    app = FastAPI()
    app.add_exception_handler(IAMGuardHTTPException, exception_handler)
    app.state.iamguard = guard

    @app.delete("/images/{image_id}")
    async def delete(image_id: str, session: CanDelete) -> dict[str, str]:
        calls.append(("fastapi", session.name))
        return {"deleted": image_id}

    @app.get("/open")
    @public
    async def open_() -> dict[str, str]:
        return {"ok": "yes"}

    if with_middleware:
        app.add_middleware(IAMGuardMiddleware, guard=guard)
    return app


@pytest.mark.parametrize("with_middleware", [False, True])
def test_fastapi_dependency(
    transport: Any, guard: Guard, tokens: dict[str, str], with_middleware: bool
) -> None:
    """The dependency authorizes and returns the session, with or without the middleware."""
    call = transport(fastapi_app(guard, with_middleware))
    status, _, body = call("DELETE", "/images/1", tokens["gita"])
    assert (status, json.loads(body)) == (200, {"deleted": "1"})
    status, _, body = call("DELETE", "/images/1", tokens["ram"])
    assert status == 403 and error(body)["Message"].startswith("User: arn:iamguard:iam::")
    status, headers, _ = call("DELETE", "/images/1")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert call("GET", "/open")[0] == 200
    assert ran("fastapi") == ["gita"]


def test_fastapi_dependency_behind_middleware_decides_once(
    transport: Any, guard: Guard, tokens: dict[str, str]
) -> None:
    """Behind the middleware, the dependency returns the session the middleware allowed for
    this permission without deciding it again."""
    call = transport(fastapi_app(guard, True))
    before = guard.hits + guard.misses
    status, _, body = call("DELETE", "/images/decided-once", tokens["sita"])
    assert (status, json.loads(body)) == (200, {"deleted": "decided-once"})
    assert guard.hits + guard.misses - before == 1
    assert ran("fastapi") == ["sita"]
