"""The Flask extension: declared views are authorized, undeclared ones denied, no view runs early."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import waitress
from flask import Blueprint, Flask, Response, g, jsonify, request

from iamguard.errors import StoreUnavailable
from iamguard.guard import Guard
from iamguard.iam import IAM
from iamguard.integrations.flask import Denial, IAMGuard, current_principal
from iamguard.modelfile import load_model
from iamguard.stores.memory import MemoryStore
from iamguard.tokens import KeyRing

ACCOUNT = "123456789012"
TEAM = Path(__file__).resolve().parents[1] / "examples" / "team.yaml"
IMAGE = "arn:iamguard:images::{account}:image/"
CROWD = [f"user{i:02}" for i in range(20)]


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def sign_in(guard: Guard, name: str, duration: int = 3600) -> str:
    """A session token for a user, by access key (no argon2)."""
    key = IAM(guard.store, ACCOUNT).create_access_key(name)
    credentials = guard.sts.get_session_token(
        ACCOUNT, access_key_id=key.access_key.access_key_id,
        secret_access_key=key.secret_access_key, duration_seconds=duration,
    )  # fmt: skip
    return credentials.session_token


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def guard(clock: Clock) -> Guard:
    store, _ = load_model(TEAM)
    iam = IAM(store, ACCOUNT)
    for name in CROWD:
        iam.create_user(name)
        iam.add_user_to_group("developers", name)
    return Guard(store, clock=clock)


@pytest.fixture(scope="module")
def tokens(guard: Guard) -> dict[str, str]:
    return {name: sign_in(guard, name) for name in ["ram", "shyam", "sita", *CROWD]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_app(guard: Guard, **config: Any) -> tuple[Flask, IAMGuard, list[str]]:
    """An images app; each view appends its endpoint to the returned list when it runs."""
    app = Flask(__name__)
    app.config.update(config)
    ran: list[str] = []
    ext = IAMGuard(guard=guard)

    def done(payload: object = "ok") -> Response:
        ran.append(request.endpoint or "")
        return jsonify(payload)

    @app.route("/images/<image_id>", methods=["GET", "DELETE"])
    @ext.require("images:GetImage", resource=IMAGE + "{image_id}", methods=["GET"])
    @ext.require("images:DeleteImage", resource=IMAGE + "{image_id}", methods=["DELETE"])
    def image(image_id: str) -> Response:
        return done(image_id)

    @app.put("/home/<path:key>")
    @ext.require("images:PutImage", resource=IMAGE + "home/{key:path}")
    def put_home(key: str) -> Response:
        return done({"key": key, "principal": current_principal.principal})  # type: ignore[union-attr]

    @app.get("/slash/")
    @ext.require("images:ListImages", resource="arn:iamguard:images::{account}:folder/*")
    def slash() -> Response:
        return done()

    @app.get("/undeclared")
    def undeclared() -> Response:
        return done()

    @app.get("/health")
    @ext.public
    def health() -> Response:
        return done(g.get("iam_principal") is None)

    @app.route("/explicit-options", methods=["GET", "OPTIONS"], provide_automatic_options=False)
    @ext.require("images:ListImages", resource=IMAGE + "*", methods=["GET"])
    def explicit_options() -> Response:
        return done()

    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.get("/images/<image_id>")
    @ext.require("images:GetImage", resource=IMAGE + "{image_id}")
    def bp_image(image_id: str) -> Response:
        return done()

    @bp.get("/undeclared")
    def bp_undeclared() -> Response:
        return done()

    open_bp = ext.public(Blueprint("open", __name__, url_prefix="/open"))

    @open_bp.get("/page")
    def open_page() -> Response:
        return done()

    app.register_blueprint(bp)
    app.register_blueprint(open_bp)
    ext.init_app(app)
    return app, ext, ran


@pytest.fixture
def app(guard: Guard) -> tuple[Flask, IAMGuard, list[str]]:
    return make_app(guard)


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """The app behind a real waitress server on a free port; its base URL."""
    server: Any = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.trigger.pull_trigger(server.close)  # closed in the loop's own thread: no race
        thread.join(timeout=10)
        server.task_dispatcher.shutdown()
        assert not thread.is_alive(), "the server did not stop"


def raw_request(base: str, method: str, target: str, headers: dict[str, str]) -> int:
    """Send a request line byte for byte (no client normalization); the status."""
    host, port = base.removeprefix("http://").split(":")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


Call = Callable[..., tuple[int, dict[str, str], bytes]]


@pytest.fixture(params=["test_client", "waitress"])
def call(request: pytest.FixtureRequest, app: tuple[Flask, IAMGuard, list[str]]) -> Iterator[Call]:
    """``call(method, path, token=None)`` -> (status, headers, body), by the test client or HTTP."""
    flask_app = app[0]
    if request.param == "test_client":
        client = flask_app.test_client()

        def by_client(method: str, path: str, token: str | None = None) -> Any:
            r = client.open(path, method=method, headers=bearer(token) if token else {})
            return r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.data

        yield by_client
        return
    with serve(flask_app) as base, httpx.Client(base_url=base) as client:

        def by_http(method: str, path: str, token: str | None = None) -> Any:
            r = client.request(method, path, headers=bearer(token) if token else {})
            return r.status_code, dict(r.headers), r.content

        yield by_http


def error(body: bytes) -> dict[str, str]:
    return json.loads(body)["Error"]


# --- decisions -----------------------------------------------------------------------------


def test_allowed(call: Call, app: Any, tokens: dict[str, str]) -> None:
    """An allowed request runs the view and answers 200."""
    status, _, body = call("GET", "/images/1", tokens["ram"])
    assert status == 200 and json.loads(body) == "1"
    assert app[2] == ["image"]


def test_denied(call: Call, app: Any, tokens: dict[str, str]) -> None:
    """A denied request answers 403 with AWS's sentence and the view does not run."""
    status, _, body = call("DELETE", "/images/1", tokens["ram"])
    assert status == 403
    message = error(body)["Message"]
    assert message.startswith(f"User: arn:iamguard:iam::{ACCOUNT}:user/ram is not authorized")
    assert "images:DeleteImage on resource: arn:iamguard:images::" in message
    assert app[2] == []


def test_admin_allowed_where_developer_denied(call: Call, app: Any, tokens: dict[str, str]) -> None:
    """The same route allows an admin: the decision is the principal's."""
    assert call("DELETE", "/images/1", tokens["sita"])[0] == 200
    assert app[2] == ["image"]


def test_no_token(call: Call, app: Any) -> None:
    """No credential: 401 with a bare `WWW-Authenticate: Bearer`, the view does not run."""
    status, headers, body = call("GET", "/images/1")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert error(body)["Code"] == "MissingAuthenticationToken"
    assert app[2] == []


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c"])
def test_bad_token(call: Call, app: Any, token: str) -> None:
    """A forged or malformed token: 401 invalid_token, the view does not run."""
    status, headers, _ = call("GET", "/images/1", token)
    assert status == 401 and 'error="invalid_token"' in headers["www-authenticate"]
    assert app[2] == []


def test_malformed_header(app: Any) -> None:
    """An `Authorization` header that is not Bearer: 401 invalid_token."""
    r = app[0].test_client().get("/images/1", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert app[2] == []


def test_expired_token(guard: Guard) -> None:
    """A token past its expiry: 401 ExpiredToken, the view does not run."""
    clock = Clock()
    own = Guard(guard.store, clock=clock)
    token = sign_in(own, "shyam", duration=900)
    flask_app, _, ran = make_app(own)
    client = flask_app.test_client()
    assert client.get("/images/1", headers=bearer(token)).status_code == 200
    clock.now += timedelta(hours=2)
    r = client.get("/images/1", headers=bearer(token))
    assert r.status_code == 401 and error(r.data)["Code"] == "ExpiredToken"
    assert ran == ["image"]


def test_revoked_token(guard: Guard) -> None:
    """A revoked session: 401 invalid_token, the view does not run."""
    token = sign_in(guard, "gita")
    flask_app, _, ran = make_app(guard)
    guard.sts.revoke_session(guard.authenticate(token))
    r = flask_app.test_client().get("/images/1", headers=bearer(token))
    assert r.status_code == 401 and ran == []


def test_undeclared_view_denied(call: Call, app: Any, tokens: dict[str, str]) -> None:
    """A view with no declaration is denied to everyone, an admin too."""
    for token in (None, tokens["sita"]):
        status, _, body = call("GET", "/undeclared", token)
        assert status == 403 and error(body)["Code"] == "AccessDenied"
    assert app[2] == []


def test_public_view(call: Call, app: Any, tokens: dict[str, str]) -> None:
    """A public view runs without a credential and reads none (a bad one is ignored)."""
    for token in (None, "garbage"):
        status, _, body = call("GET", "/health", token)
        assert status == 200 and json.loads(body) is True  # g.iam_principal stayed None
    assert app[2] == ["health", "health"]


def test_not_found_unchanged(call: Call, app: Any, tokens: dict[str, str]) -> None:
    """An unknown path keeps Flask's 404."""
    assert call("GET", "/nowhere", tokens["ram"])[0] == 404
    assert call("GET", "/nowhere")[0] == 404
    assert app[2] == []


def test_method_not_allowed_unchanged(call: Call, app: Any, tokens: dict[str, str]) -> None:
    """A method the rule does not serve keeps Flask's 405."""
    assert call("POST", "/images/1", tokens["sita"])[0] == 405
    assert app[2] == []


def test_head_needs_get(call: Call, app: Any, tokens: dict[str, str]) -> None:
    """HEAD is authorized as GET: allowed with GET's permission, 401/403 without it."""
    assert call("HEAD", "/images/1", tokens["ram"])[0] == 200
    assert call("HEAD", "/images/1")[0] == 401
    assert call("HEAD", "/slash/", tokens["ram"])[0] == 403  # developers list images, not folders
    assert call("HEAD", "/slash/", tokens["sita"])[0] == 200
    assert app[2] == ["image", "slash"]


def test_automatic_options_exempt(call: Call, app: Any) -> None:
    """Flask's automatic OPTIONS answers without a credential and runs no view."""
    status, headers, _ = call("OPTIONS", "/images/1")
    assert status == 200 and "DELETE" in headers["allow"]
    assert app[2] == []


def test_explicit_options_needs_declaration(call: Call, app: Any, tokens: dict[str, str]) -> None:
    """A view that handles OPTIONS itself needs a declaration for it."""
    assert call("OPTIONS", "/explicit-options", tokens["sita"])[0] == 403
    assert app[2] == []


# --- path tricks ---------------------------------------------------------------------------

TRICKS = [  # ram may GET images and PUT into home/ram/: none of these may run a view
    ("DELETE", "//images/1"),
    ("DELETE", "/images/1/"),
    ("DELETE", "/IMAGES/1"),
    ("DELETE", "/./images/1"),
    ("DELETE", "/images/./1"),
    ("DELETE", "/images/1/.."),
    ("DELETE", "/images/x%2F..%2F1"),
    ("GET", "/slash"),  # strict_slashes redirect
    ("GET", "//slash/"),
    ("GET", "/undeclared/"),
    ("GET", "//undeclared"),
    ("GET", "/Undeclared"),
    ("GET", "/bp/../undeclared"),
    ("GET", "/open/../undeclared"),
    ("GET", "/open/..%2Fundeclared"),
    ("GET", "/open%2F..%2Fundeclared"),
    ("GET", "/health/../undeclared"),
    ("PUT", "/home/ram/../shyam/x"),
    ("PUT", "/home/ram%2F..%2Fshyam%2Fx"),
    ("PUT", "/home/ram/./x"),
    ("PUT", "/home/ram/x/.."),
    ("PUT", "/home/ram//x"),
    ("PUT", "/home/%72am/../shyam/x"),
    ("PUT", "//home/shyam/x"),
    ("PUT", "/Home/ram/x"),
]


@pytest.mark.parametrize(("method", "raw"), TRICKS)
def test_path_tricks_test_client(app: Any, tokens: dict[str, str], method: str, raw: str) -> None:
    """A path spelled to reach another view, or a view under another rule, runs no view."""
    path = unquote(raw)
    r = app[0].test_client().open(
        "/", method=method, headers=bearer(tokens["ram"]),
        environ_overrides={"PATH_INFO": path, "REQUEST_URI": raw, "RAW_URI": raw},
    )  # fmt: skip
    assert r.status_code in (308, 400, 403, 404), r.status_code
    assert app[2] == []


def test_path_tricks_waitress(app: Any, tokens: dict[str, str]) -> None:
    """The same tricks sent byte for byte to a real server run no view."""
    with serve(app[0]) as base:
        for method, raw in TRICKS:
            status = raw_request(base, method, raw, bearer(tokens["ram"]))
            assert status in (308, 400, 403, 404), (raw, status)
        assert raw_request(base, "PUT", "/home/ram/x", bearer(tokens["ram"])) == 200
    assert app[2] == ["put_home"]


def test_path_parameter_names_one_resource(app: Any, tokens: dict[str, str]) -> None:
    """An encoded `/` or `*` in a segment parameter cannot widen the resource."""
    client = app[0].test_client()
    assert client.put("/home/ram/a", headers=bearer(tokens["ram"])).status_code == 200
    assert client.put("/home/shyam/a", headers=bearer(tokens["ram"])).status_code == 403
    assert app[2] == ["put_home"]


# --- blueprints ----------------------------------------------------------------------------


def test_blueprint_views(call: Call, app: Any, tokens: dict[str, str]) -> None:
    """Decorators work on blueprint views; undeclared blueprint views are denied."""
    assert call("GET", "/bp/images/1", tokens["ram"])[0] == 200
    assert call("GET", "/bp/images/1")[0] == 401
    assert call("GET", "/bp/undeclared", tokens["sita"])[0] == 403
    assert app[2] == ["bp.bp_image"]


def test_public_blueprint(call: Call, app: Any) -> None:
    """`@guard.public` on a blueprint opens its views."""
    assert call("GET", "/open/page")[0] == 200
    assert app[2] == ["open.open_page"]


# --- callbacks -----------------------------------------------------------------------------


def test_principal_available(app: Any, tokens: dict[str, str]) -> None:
    """The view sees the caller as `current_principal`."""
    r = app[0].test_client().put("/home/ram/a", headers=bearer(tokens["ram"]))
    assert r.json["principal"] == f"arn:iamguard:iam::{ACCOUNT}:user/ram"


def test_context_provider(guard: Guard, tokens: dict[str, str]) -> None:
    """A context provider's keys reach the decision; `aws:` keys are refused (fail closed)."""
    flask_app, ext, ran = make_app(guard)
    seen: list[str] = []

    @ext.context_provider
    def tenant(session: Any) -> dict[str, str]:
        seen.append(session.name)
        return {"app:tenant": "t1"}

    client = flask_app.test_client()
    assert client.get("/images/1", headers=bearer(tokens["ram"])).status_code == 200
    assert seen == ["ram"]

    @ext.context_provider
    def spoof(session: Any) -> dict[str, str]:
        return {"aws:username": "sita"}

    assert client.get("/images/1", headers=bearer(tokens["ram"])).status_code == 500
    assert ran == ["image"]


def test_on_denied_cannot_allow(guard: Guard, tokens: dict[str, str]) -> None:
    """`@on_denied` sees refusals and may reword them, never turn them into an allow."""
    flask_app, ext, ran = make_app(guard)
    denials: list[Denial] = []

    @ext.on_denied
    def allow_anyway(denial: Denial) -> Response:
        denials.append(denial)
        return Response("fine", status=200)

    client = flask_app.test_client()
    assert client.delete("/images/1", headers=bearer(tokens["ram"])).status_code == 403
    assert client.get("/images/1").status_code == 401
    assert [d.status for d in denials] == [403, 401]
    assert denials[0].decision is not None and not denials[0].decision.allowed
    assert ran == []


def test_on_denied_rewords(guard: Guard, tokens: dict[str, str]) -> None:
    """`@on_denied` may answer another refusal."""
    flask_app, ext, _ = make_app(guard)
    ext.on_denied(lambda denial: Response("nope", status=404))
    assert (
        flask_app.test_client().delete("/images/1", headers=bearer(tokens["ram"])).status_code
        == 404
    )


def test_store_error_is_503(guard: Guard, tokens: dict[str, str], monkeypatch: Any) -> None:
    """A store that fails answers 503 and runs no view."""
    flask_app, _, ran = make_app(guard)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("database at db.internal:5432 refused")

    monkeypatch.setattr(guard, "authorize", broken)
    r = flask_app.test_client().get("/images/1", headers=bearer(tokens["ram"]))
    assert r.status_code == 503 and b"db.internal" not in r.data
    assert ran == []


def test_unexpected_error_fails_closed(
    guard: Guard, tokens: dict[str, str], monkeypatch: Any
) -> None:
    """Any other exception on the decision path answers 500 and runs no view."""
    flask_app, _, ran = make_app(guard)
    monkeypatch.setattr(guard, "authorize", lambda *a, **k: 1 / 0)
    r = flask_app.test_client().get("/images/1", headers=bearer(tokens["ram"]))
    assert r.status_code == 500 and ran == []


def test_view_without_extension_refuses(guard: Guard) -> None:
    """A guarded view on an app the extension is not registered on does not run."""
    flask_app = Flask(__name__)
    flask_app.config["PROPAGATE_EXCEPTIONS"] = False
    ran: list[str] = []

    @flask_app.get("/x")
    @IAMGuard(guard=guard).require("images:GetImage")
    def x() -> str:
        ran.append("x")
        return "x"

    assert flask_app.test_client().get("/x").status_code == 500
    assert ran == []


# --- registration and config ---------------------------------------------------------------


def test_second_init_app_fails(guard: Guard) -> None:
    """Registering twice on one app raises RuntimeError."""
    flask_app, ext, _ = make_app(guard)
    with pytest.raises(RuntimeError, match="registered already"):
        ext.init_app(flask_app)
    with pytest.raises(RuntimeError, match="registered already"):
        IAMGuard(flask_app, guard=guard)


def test_config_read_once(guard: Guard) -> None:
    """Config is read at init_app: a later change has no effect."""
    flask_app, _, ran = make_app(guard)
    flask_app.config["IAMGUARD_PUBLIC_ENDPOINTS"] = ["undeclared"]
    assert flask_app.test_client().get("/undeclared").status_code == 403
    flask_app, _, ran = make_app(guard, IAMGUARD_PUBLIC_ENDPOINTS=["undeclared"])
    assert flask_app.test_client().get("/undeclared").status_code == 200
    assert ran == ["undeclared"]


def test_store_url_config() -> None:
    """`IAMGUARD_STORE` builds the Guard when none is passed."""
    flask_app = Flask(__name__)
    flask_app.config.update(IAMGUARD_STORE="memory://", IAMGUARD_ISSUER="me")
    IAMGuard(flask_app)
    guard = flask_app.extensions["iamguard"].guard
    assert isinstance(guard.store, MemoryStore)
    assert (guard.tokens.issuer, guard.tokens.audience) == ("me", "iamguard")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "IAMGUARD_STORE"),
        ({"IAMGUARD_STORE": "memory://", "IAMGUARD_TRUSTED_PROXIES": "10.0.0.0/8"}, "list"),
        ({"IAMGUARD_STORE": "memory://", "IAMGUARD_TRUSTED_PROXIES": ["10.0.0.1/8"]}, "10.0"),
        ({"IAMGUARD_STORE": "memory://", "IAMGUARD_PUBLIC_ENDPOINTS": "static"}, "list"),
        ({"IAMGUARD_STORE": "memory://", "IAMGUARD_TRUSTED_PROXY": []}, "unknown"),
        ({"IAMGUARD_STORE": "memory://", "IAMGUARD_ISSUER": ""}, "IAMGUARD_ISSUER"),
    ],
)
def test_bad_config(config: dict[str, Any], message: str) -> None:
    """Bad config fails loudly at init with the key named."""
    flask_app = Flask(__name__)
    flask_app.config.update(config)
    with pytest.raises(ValueError, match=message):
        IAMGuard(flask_app)


def test_config_conflicts_with_guard(guard: Guard) -> None:
    """Token config next to a passed Guard is an error, not silently ignored."""
    flask_app = Flask(__name__)
    flask_app.config["IAMGUARD_AUDIENCE"] = "other"
    with pytest.raises(ValueError, match="IAMGUARD_AUDIENCE"):
        IAMGuard(flask_app, guard=guard)


def test_placeholder_checked_at_init(guard: Guard) -> None:
    """A template naming a value the rule cannot fill fails at init_app."""
    flask_app = Flask(__name__)
    ext = IAMGuard(guard=guard)

    @flask_app.get("/images/<image_id>")
    @ext.require("images:GetImage", resource=IMAGE + "{imageid}")
    def get(image_id: str) -> str:
        return image_id

    with pytest.raises(Exception, match="imageid"):
        ext.init_app(flask_app)


def test_placeholder_checked_at_first_request(guard: Guard, tokens: dict[str, str]) -> None:
    """A route added after init_app is checked on its first request: 500, no view."""
    flask_app, ext, ran = make_app(guard)

    @flask_app.get("/late/<image_id>")
    @ext.require("images:GetImage", resource=IMAGE + "{imageid}")
    def late(image_id: str) -> str:
        ran.append("late")
        return image_id

    assert flask_app.test_client().get("/late/1", headers=bearer(tokens["ram"])).status_code == 500
    assert ran == []


def test_url_value_preprocessor_cannot_hide_parameter(guard: Guard, tokens: dict[str, str]) -> None:
    """A preprocessor popping a URL value does not make `{account}` the caller's own."""
    flask_app = Flask(__name__)
    ext = IAMGuard(guard=guard)
    ran: list[str] = []

    @flask_app.url_value_preprocessor
    def pop_account(endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.account = (values or {}).pop("account", None)

    @flask_app.get("/accounts/<account>/images/<image_id>")
    @ext.require("images:GetImage", resource="arn:iamguard:images::{account}:image/{image_id}")
    def get(image_id: str) -> str:
        ran.append(g.account)
        return image_id

    ext.init_app(flask_app)
    client = flask_app.test_client()
    assert (
        client.get("/accounts/999999999999/images/1", headers=bearer(tokens["ram"])).status_code
        == 403
    )
    assert (
        client.get(f"/accounts/{ACCOUNT}/images/1", headers=bearer(tokens["ram"])).status_code
        == 200
    )
    assert ran == [ACCOUNT]


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_users_get_their_own_decisions(guard: Guard, tokens: dict[str, str]) -> None:
    """20 threads, 20 users, one real server: each sees only its own principal and decisions."""
    flask_app, _, _ = make_app(guard)
    failures: list[str] = []
    barrier = threading.Barrier(len(CROWD))

    def work(name: str, base: str) -> None:
        other = CROWD[(CROWD.index(name) + 1) % len(CROWD)]
        arn = f"arn:iamguard:iam::{ACCOUNT}:user/{name}"
        with httpx.Client(base_url=base, headers=bearer(tokens[name])) as client:
            barrier.wait()
            for i in range(10):
                own = client.put(f"/home/{name}/{i}")
                if own.status_code != 200 or own.json()["principal"] != arn:
                    failures.append(f"{name}: own: {own.status_code} {own.text}")
                theirs = client.put(f"/home/{other}/{i}")
                if theirs.status_code != 403 or not error(theirs.content)["Message"].startswith(
                    f"User: {arn} is not"
                ):
                    failures.append(f"{name}: other: {theirs.status_code} {theirs.text}")

    with serve(flask_app) as base:
        threads = [threading.Thread(target=work, args=(n, base)) for n in CROWD]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert failures == []


# --- remembered answers --------------------------------------------------------------------


def test_remembered_answers_stay_exact() -> None:
    """An allowed request asked again is answered from the request memo, for that token and
    those headers only, and never once the model, the token's lifetime or the peer changes."""
    store, _ = load_model(TEAM)
    clock = Clock()
    guard = Guard(store, clock=clock)
    iam = IAM(store, ACCOUNT)
    flask_app, _, ran = make_app(guard)
    client = flask_app.test_client()
    ram, shyam = sign_in(guard, "ram", 900), sign_in(guard, "shyam")

    def status(token: str, path: str = "/home/ram/a", **environ: str) -> int:
        response = client.put(path, headers=bearer(token), environ_base=environ)
        return response.status_code

    assert [status(ram), status(ram)] == [200, 200]
    assert guard.requests.hits == 1
    assert status(shyam) == 403  # another token: decided for shyam, not from ram's answer
    iam.put_user_policy("ram", "no-put", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "images:PutImage", "Resource": "*"}]})  # fmt: skip
    assert status(ram) == 403  # the model moved
    iam.delete_user_policy("ram", "no-put")
    assert [status(ram), status(ram)] == [200, 200]
    iam.put_user_policy("ram", "office", {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": "images:PutImage", "Resource": "*",
        "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]})  # fmt: skip
    assert status(ram, REMOTE_ADDR="10.1.1.1") == 200
    assert status(ram, REMOTE_ADDR="10.1.1.1") == 200
    assert status(ram, REMOTE_ADDR="192.0.2.7") == 403  # another peer
    assert guard.requests.hits == 3
    clock.now += timedelta(seconds=900 + 30)  # past expiry and the leeway
    assert status(ram, REMOTE_ADDR="10.1.1.1") == 401
    assert ran == ["put_home"] * 6


def test_remembered_answer_ends_with_its_signing_key() -> None:
    """A key ring outside the store: retiring the token's key ends its remembered answer."""
    store, _ = load_model(TEAM)
    ring = KeyRing()
    guard = Guard(store, key_ring=ring)
    flask_app, _, ran = make_app(guard)
    client = flask_app.test_client()
    token = sign_in(guard, "ram")
    assert [client.put("/home/ram/a", headers=bearer(token)).status_code for _ in "ab"] == [200] * 2
    assert guard.requests.hits == 1
    old = ring.current.kid
    ring.rotate()
    assert client.put("/home/ram/a", headers=bearer(token)).status_code == 200  # still valid
    ring.retire(old)
    assert client.put("/home/ram/a", headers=bearer(token)).status_code == 401
    assert ran == ["put_home"] * 3
