"""``@authorize`` decides every call of a service function before its body runs, as the session
bound in the context (by ``bind`` or by an adapter for its request)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from iamguard.errors import AccessDenied, InvalidInput, NotAuthenticated
from iamguard.guard import Guard
from iamguard.iam import IAM
from iamguard.integrations import starlette as starlette_adapter
from iamguard.integrations._context import bind, current_guard, current_session
from iamguard.integrations.decorators import authorize
from iamguard.integrations.flask import IAMGuard
from iamguard.integrations.starlette import IAMGuardMiddleware, requires
from iamguard.modelfile import load_model
from iamguard.sessions import Session

with warnings.catch_warnings():  # starlette 1.x prefers `httpx2`; the venv has `httpx`
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ACCOUNT = "123456789012"
TEAM = Path(__file__).resolve().parents[1] / "examples" / "team.yaml"
IMAGE = "arn:iamguard:images::{account}:image/"
USERS = ["ram", "shyam", "sita", "olga"]  # olga: only an inline policy with a condition
TIERED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "images:GetImage",
            "Resource": "*",
            "Condition": {"StringEquals": {"images:Tier": "free"}},
        }
    ],
}

ran: list[str] = []  # what the decorated bodies ran for: "function:who"


def record(name: str) -> str:
    """Note that a body ran, and for whom."""
    session = current_session.get()
    who = session.name if session is not None else "nobody"
    ran.append(f"{name}:{who}")
    return who


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


@pytest.fixture(scope="module")
def guard() -> Guard:
    store, _ = load_model(TEAM)
    iam = IAM(store, ACCOUNT)
    iam.create_user("olga")
    iam.put_user_policy("olga", "Tiered", TIERED)
    return Guard(store)


@pytest.fixture(scope="module")
def sessions(guard: Guard) -> dict[str, Session]:
    return {name: guard.authenticate(sign_in(guard, name)) for name in USERS}


@pytest.fixture(scope="module")
def tokens(guard: Guard) -> dict[str, str]:
    return {name: sign_in(guard, name) for name in USERS}


def sign_in(guard: Guard, name: str) -> str:
    """A session token for a user, by access key."""
    key = IAM(guard.store, ACCOUNT).create_access_key(name)
    credentials = guard.sts.get_session_token(
        ACCOUNT, access_key_id=key.access_key.access_key_id,
        secret_access_key=key.secret_access_key,
    )  # fmt: skip
    return credentials.session_token


# --- the service layer under test ------------------------------------------------------------


@authorize("images:GetImage", resource=IMAGE + "{image_id}")
def get_image(image_id: str) -> str:
    return record("get_image")


@authorize("images:DeleteImage", resource=IMAGE + "{image_id}")
def delete_image(image_id: str) -> str:
    return record("delete_image")


@authorize("images:GetImage", resource=IMAGE + "{image_id}")
async def get_image_async(image_id: str) -> str:
    await asyncio.sleep(0)
    return record("get_image_async")


@authorize("images:DeleteImage", resource=IMAGE + "{image_id}")
async def delete_image_async(image_id: str) -> str:
    return record("delete_image_async")


@authorize(
    "images:PutImage",
    resource=lambda folder, name, **_: f"arn:iamguard:images::{ACCOUNT}:image/home/{folder}/{name}",
)
def put_in_folder(folder: str, name: str) -> str:
    return record("put_in_folder")


@authorize("images:PutImage", resource=IMAGE + "home/{username}/{name}")
def put_own(name: str) -> str:
    return record("put_own")


@authorize("images:PutImage", resource=IMAGE + "home/{owner}/{name}")
def put_default_owner(name: str, owner: str = "ram") -> str:
    return record("put_default_owner")


@authorize("images:GetImage", resource=IMAGE + "{image_id}")
def get_in_account(image_id: str, account: str | None = None) -> str:
    return record("get_in_account")


# --- sync and async --------------------------------------------------------------------------


def test_sync_allowed_runs_the_body(guard: Guard, sessions: dict[str, Session]) -> None:
    """An allowed sync call runs its body and returns its value."""
    with bind(sessions["ram"], guard):
        assert get_image("cat") == "ram"
    assert ran == ["get_image:ram"]


def test_sync_denied_never_runs_the_body(guard: Guard, sessions: dict[str, Session]) -> None:
    """A denied sync call raises AccessDenied (403) with AWS's sentence; its body never runs."""
    with bind(sessions["ram"], guard), pytest.raises(AccessDenied) as caught:
        delete_image("cat")
    assert ran == []
    assert caught.value.status == 403
    assert caught.value.message.startswith(
        f"User: arn:iamguard:iam::{ACCOUNT}:user/ram is not authorized to perform: "
        f"images:DeleteImage on resource: arn:iamguard:images::{ACCOUNT}:image/cat"
    )


def test_async_allowed_runs_the_body(guard: Guard, sessions: dict[str, Session]) -> None:
    """An allowed async call runs its body when awaited."""

    async def main() -> str:
        with bind(sessions["ram"], guard):
            return await get_image_async("cat")

    assert asyncio.run(main()) == "ram"
    assert ran == ["get_image_async:ram"]


def test_async_denied_never_runs_the_body(guard: Guard, sessions: dict[str, Session]) -> None:
    """A denied async call raises AccessDenied when awaited; its body never runs."""

    async def main() -> None:
        with bind(sessions["ram"], guard):
            await delete_image_async("cat")

    with pytest.raises(AccessDenied):
        asyncio.run(main())
    assert ran == []


def test_wrappers_keep_the_function_identity() -> None:
    """The wrappers keep the name, the docstring slot and coroutine-function-ness."""
    assert get_image.__name__ == "get_image"
    assert get_image_async.__name__ == "get_image_async"
    assert get_image_async.__wrapped__ is not get_image_async  # type: ignore[attr-defined]
    assert get_image.__doc__ == get_image.__wrapped__.__doc__  # type: ignore[attr-defined]
    assert asyncio.iscoroutinefunction(get_image_async)
    assert not asyncio.iscoroutinefunction(get_image)


# --- resources -------------------------------------------------------------------------------


def test_resource_from_a_callable(guard: Guard, sessions: dict[str, Session]) -> None:
    """A callable resource gets the call's arguments by name: ram may put in his folder only."""
    with bind(sessions["ram"], guard):
        assert put_in_folder("ram", name="a.png") == "ram"
        with pytest.raises(AccessDenied, match=r"image/home/shyam/a\.png"):
            put_in_folder(folder="shyam", name="a.png")
    assert ran == ["put_in_folder:ram"]


def test_resource_template_with_principal_placeholders(
    guard: Guard, sessions: dict[str, Session]
) -> None:
    """``{username}`` and ``{account}`` come from the session: each user puts in their own."""
    for name in ("ram", "shyam"):
        with bind(sessions[name], guard):
            assert put_own("a.png") == name
    assert ran == ["put_own:ram", "put_own:shyam"]


def test_template_values_are_encoded(guard: Guard, sessions: dict[str, Session]) -> None:
    """An argument fills one segment: its ``/`` and ``:`` are percent-encoded."""
    with bind(sessions["ram"], guard), pytest.raises(AccessDenied) as caught:
        delete_image("home/ram/x:y")
    assert "image/home%2Fram%2Fx%3Ay" in caught.value.message


def test_default_arguments_fill_the_resource(guard: Guard, sessions: dict[str, Session]) -> None:
    """Defaults are applied before the resource is named: ``owner="ram"`` unless given."""
    with bind(sessions["ram"], guard):
        assert put_default_owner("a.png") == "ram"
        with pytest.raises(AccessDenied):
            put_default_owner("a.png", owner="shyam")
    with bind(sessions["shyam"], guard), pytest.raises(AccessDenied):
        put_default_owner("a.png")
    assert ran == ["put_default_owner:ram"]


def test_a_none_argument_denies_rather_than_using_the_principal(
    guard: Guard, sessions: dict[str, Session]
) -> None:
    """An argument named like a principal placeholder wins; left ``None`` it fails closed."""
    with bind(sessions["sita"], guard):
        assert get_in_account("cat", account=ACCOUNT) == "sita"
        with pytest.raises(AccessDenied, match=r"no value for `\{account\}`"):
            get_in_account("cat")
    assert ran == ["get_in_account:sita"]


def test_callable_gets_defaults_and_self(guard: Guard, sessions: dict[str, Session]) -> None:
    """The resource callable receives every bound argument, defaults and ``self`` included."""
    seen: list[dict[str, Any]] = []

    def resource(**arguments: Any) -> str:
        seen.append(arguments)
        return f"arn:iamguard:images::{ACCOUNT}:image/cat"

    class Images:
        @authorize("images:GetImage", resource=resource)
        def get(self, image_id: str, size: int = 64, **options: Any) -> str:
            return record("Images.get")

    images = Images()
    with bind(sessions["ram"], guard):
        images.get("cat", colour="red")
    assert seen == [{"self": images, "image_id": "cat", "size": 64, "colour": "red"}]


def test_bad_declarations_fail_at_decoration() -> None:
    """A bad action, an unfillable placeholder or a non-callable resource fail when decorated."""
    with pytest.raises(InvalidInput, match="an action is"):
        authorize("GetImage")
    with pytest.raises(InvalidInput, match=r"`\{image\}` is neither a parameter of `[^`]*\.f`"):

        @authorize("images:GetImage", resource=IMAGE + "{image}")
        def f(image_id: str) -> None: ...

    with pytest.raises(TypeError):
        authorize("images:GetImage", resource=42)  # type: ignore[arg-type]


def test_a_callable_returning_no_arn_fails_closed(
    guard: Guard, sessions: dict[str, Session]
) -> None:
    """A resource callable that returns no string refuses the call."""

    @authorize("images:GetImage", resource=lambda **_: None)  # type: ignore[arg-type,return-value]
    def get() -> str:
        return record("get")

    with bind(sessions["sita"], guard), pytest.raises(TypeError, match="not an ARN"):
        get()
    assert ran == []


# --- context ---------------------------------------------------------------------------------


def test_context_keys_reach_conditions(guard: Guard, sessions: dict[str, Session]) -> None:
    """``context`` adds condition keys from the arguments: olga may read free-tier images."""

    @authorize(
        "images:GetImage", resource=IMAGE + "{image_id}",
        context=lambda tier, **_: {"images:Tier": tier},
    )  # fmt: skip
    def get(image_id: str, tier: str) -> str:
        return record("get")

    with bind(sessions["olga"], guard):
        assert get("cat", "free") == "olga"
        with pytest.raises(AccessDenied):
            get("cat", "premium")
    assert ran == ["get:olga"]


def test_context_may_not_set_aws_keys(guard: Guard, sessions: dict[str, Session]) -> None:
    """A context callable cannot forge global keys such as ``aws:SourceIp``."""

    @authorize("images:GetImage", context=lambda **_: {"aws:SourceIp": "10.0.0.1"})
    def get() -> str:
        return record("get")

    with bind(sessions["sita"], guard), pytest.raises(ValueError, match="`aws:` keys"):
        get()
    assert ran == []


# --- who is calling --------------------------------------------------------------------------


def test_no_session_is_not_authenticated() -> None:
    """With no session bound, sync and async calls raise NotAuthenticated (401); no body runs."""
    assert current_session.get() is None
    with pytest.raises(NotAuthenticated, match="no authenticated session") as caught:
        get_image("cat")
    assert caught.value.status == 401
    with pytest.raises(NotAuthenticated):
        asyncio.run(get_image_async("cat"))
    assert ran == []


def test_a_session_without_a_guard_fails_closed(sessions: dict[str, Session]) -> None:
    """A session bound without a guard is a wiring mistake: RuntimeError, never an allow."""
    token = current_session.set(sessions["sita"])
    try:
        with pytest.raises(RuntimeError, match="no guard"):
            get_image("cat")
    finally:
        current_session.reset(token)
    assert ran == []


def test_bind_restores_the_previous_caller(guard: Guard, sessions: dict[str, Session]) -> None:
    """``bind`` nests, and restores the outer values on exit, even after an exception."""
    with bind(sessions["ram"], guard):
        with pytest.raises(AccessDenied), bind(sessions["shyam"], guard):
            assert current_session.get() is sessions["shyam"]
            delete_image("cat")
        assert current_session.get() is sessions["ram"]
    assert current_session.get() is None
    assert current_guard.get() is None


def test_methods(guard: Guard, sessions: dict[str, Session]) -> None:
    """On sync and async methods ``self`` is one more argument, usable in the template."""

    class Folder:
        def __init__(self, owner: str) -> None:
            self.owner = owner

        @authorize(
            "images:PutImage",
            resource=lambda self, name, **_: (
                f"arn:iamguard:images::{ACCOUNT}:image/home/{self.owner}/{name}"
            ),
        )
        def put(self, name: str) -> str:
            return record("put")

        @authorize("images:DeleteImage", resource=IMAGE + "home/{username}/{name}")
        async def delete(self, name: str) -> str:
            return record("delete")

    with bind(sessions["ram"], guard):
        assert Folder("ram").put("a.png") == "ram"
        with pytest.raises(AccessDenied):
            Folder("sita").put("a.png")
        assert asyncio.run(Folder("ram").delete("a.png")) == "ram"
    assert ran == ["put:ram", "delete:ram"]


def test_nested_calls_are_each_decided(guard: Guard, sessions: dict[str, Session]) -> None:
    """A decorated function calling another: each call is decided for the same caller."""

    @authorize("images:GetImage", resource=IMAGE + "{image_id}")
    def move(image_id: str) -> str:
        record("move")
        return delete_image(image_id)

    with bind(sessions["sita"], guard):
        assert move("cat") == "sita"
    with bind(sessions["ram"], guard), pytest.raises(AccessDenied, match="images:DeleteImage"):
        move("cat")
    assert ran == ["move:sita", "delete_image:sita", "move:ram"]


def test_concurrent_tasks_never_mix_sessions(guard: Guard, sessions: dict[str, Session]) -> None:
    """Interleaved asyncio tasks, each with its own session bound, are decided for their own."""

    @authorize("images:PutImage", resource=IMAGE + "home/ram/{name}")
    async def put_in_ram(name: str) -> str:
        for _ in range(3):
            await asyncio.sleep(0)
        return record("put_in_ram")

    async def one(i: int) -> str:
        name = ("ram", "shyam")[i % 2]
        with bind(sessions[name], guard):
            await asyncio.sleep(0)
            try:
                who = await put_in_ram(f"{i}.png")
            except AccessDenied:
                who = "denied"
            assert current_session.get() is sessions[name]
            return f"{name}:{who}"

    async def main() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(40)))

    results = asyncio.run(main())
    assert results == [("ram:ram" if i % 2 == 0 else "shyam:denied") for i in range(40)]
    assert ran == ["put_in_ram:ram"] * 20


# --- through the adapters --------------------------------------------------------------------


@authorize("images:DeleteImage", resource=IMAGE + "{image_id}")
async def purge(image_id: str) -> str:
    return record("purge")


@authorize("images:DeleteImage", resource=IMAGE + "{image_id}")
def purge_sync(image_id: str) -> str:
    return record("purge_sync")


def _answer(call: Callable[[], str]) -> tuple[str, int]:
    try:
        return call(), 200
    except AccessDenied as e:
        return e.message, 403


@requires("images:GetImage", resource=IMAGE + "{image_id}")
async def starlette_purge(request: Request) -> Response:
    try:
        return PlainTextResponse(await purge(request.path_params["image_id"]))
    except AccessDenied as e:
        return PlainTextResponse(e.message, 403)


@requires("images:GetImage", resource=IMAGE + "{image_id}")
def starlette_purge_sync(request: Request) -> Response:  # runs in a thread
    body, status = _answer(lambda: purge_sync(request.path_params["image_id"]))
    return PlainTextResponse(body, status)


def test_starlette_endpoint_calls_see_the_request_session(
    guard: Guard, tokens: dict[str, str]
) -> None:
    """Behind the middleware, service calls from async and sync endpoints run as the caller."""
    app = Starlette(
        routes=[
            Route("/purge/{image_id}", starlette_purge),
            Route("/purge-sync/{image_id}", starlette_purge_sync),
        ],
        middleware=[Middleware(IAMGuardMiddleware, guard=guard)],
    )
    client = TestClient(app)
    for path in ("/purge/cat", "/purge-sync/cat"):
        allowed = client.get(path, headers={"Authorization": f"Bearer {tokens['sita']}"})
        assert (allowed.status_code, allowed.text) == (200, "sita")
        denied = client.get(path, headers={"Authorization": f"Bearer {tokens['ram']}"})
        assert denied.status_code == 403
        assert "user/ram is not authorized to perform: images:DeleteImage" in denied.text
    assert ran == ["purge:sita", "purge_sync:sita"]
    assert current_session.get() is None and current_guard.get() is None
    assert starlette_adapter.current_session is current_session  # still importable from there


def test_flask_view_calls_see_the_request_session(guard: Guard, tokens: dict[str, str]) -> None:
    """Behind the extension, service calls from a view run as the caller; the binding ends with
    the request, after the app's own teardowns (which still see it)."""
    app = Flask(__name__)
    extension = IAMGuard(app, guard=guard)
    seen_in_teardown: list[str | None] = []

    @app.get("/purge/<image_id>")
    @extension.require("images:GetImage", resource=IMAGE + "{image_id}")
    def flask_purge(image_id: str) -> tuple[str, int]:
        return _answer(lambda: purge_sync(image_id))

    @app.teardown_request
    def note(error: BaseException | None) -> None:
        session = current_session.get()
        seen_in_teardown.append(session.name if session is not None else None)

    client = app.test_client()
    allowed = client.get("/purge/cat", headers={"Authorization": f"Bearer {tokens['sita']}"})
    assert (allowed.status_code, allowed.text) == (200, "sita")
    assert current_session.get() is None and current_guard.get() is None
    denied = client.get("/purge/cat", headers={"Authorization": f"Bearer {tokens['ram']}"})
    assert denied.status_code == 403
    assert "user/ram is not authorized to perform: images:DeleteImage" in denied.text
    refused = client.get("/purge/cat")  # no token: the hook refuses, nothing was bound
    assert refused.status_code == 401
    assert ran == ["purge_sync:sita"]
    assert seen_in_teardown == ["sita", "ram", None]
    assert current_session.get() is None and current_guard.get() is None
