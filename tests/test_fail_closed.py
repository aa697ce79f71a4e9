"""Fail closed at every step of the decision path.

A fault while verifying the token, reading the store, compiling a stored policy, evaluating a
condition or using a cache refuses the request: the endpoint never runs, nothing is allowed, and
a reason is logged that holds no token. Every fault is real: a key ring, store or cache that
raises, a corrupt record written straight into the store, a request value that cannot be read.
Each is driven through the Guard API, the Starlette middleware, the Flask extension and, where
a decision is made on a session already authenticated, ``@authorize``; the adapters' warm path
(an answer remembered for the same request) is held to the same rule.

What counts as a logged reason: a denial is an ``access.denied`` audit event; an adapter logs
every other refusal (a warning or an exception record naming the failure). The Guard API and
``@authorize`` refuse by a denying ``Decision`` or by raising to their caller.
"""

from __future__ import annotations

import base64
import json
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jwt
import pytest
from cachetools import Cache, LRUCache
from flask import Flask
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from iamguard.errors import (
    IAMGuardError,
    InvalidClientTokenId,
    NotAuthenticated,
    StoreCorrupted,
    StoreUnavailable,
)
from iamguard.guard import Guard
from iamguard.iam import IAM
from iamguard.iam.base import compound_key
from iamguard.iam.policies import owner_key
from iamguard.integrations._context import bind
from iamguard.integrations.decorators import authorize
from iamguard.integrations.flask import IAMGuard
from iamguard.integrations.starlette import IAMGuardMiddleware, requires
from iamguard.keystore import StoredKeyRing
from iamguard.modelfile import load_model
from iamguard.policy import Decision, Reason
from iamguard.sessions import Session
from iamguard.stores.base import Change, Closeable, Reader, Store, Writer
from iamguard.stores.memory import MemoryStore
from iamguard.tokens import TOKEN_TYPE, SigningKey

with warnings.catch_warnings():  # starlette 1.x prefers `httpx2`; the venv has `httpx`
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ACCOUNT = "123456789012"
TEAM = Path(__file__).resolve().parents[1] / "examples" / "team.yaml"
IMAGE = "arn:iamguard:images::{account}:image/{image_id}"
RESOURCE = f"arn:iamguard:images::{ACCOUNT}:image/1"
OTHER_RESOURCE = f"arn:iamguard:images::{ACCOUNT}:image/2"
GET, DELETE = "images:GetImage", "images:DeleteImage"
METHODS = {GET: "GET", DELETE: "DELETE"}
USERS = ("ram", "sita", "gita")  # ram: a developer (no DeleteImage); sita, gita: admins
ADAPTERS = ("starlette", "flask")
T = TypeVar("T")


# --- faults ------------------------------------------------------------------------------------


class FaultyStore(Store):
    """A real store whose reads (``read``) or version checks (``version``, ``changes_since``)
    raise a fresh ``fault()`` while armed; writes always go through."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.fault: Callable[[], BaseException] | None = None
        self.methods: frozenset[str] = frozenset()

    def arm(self, fault: Callable[[], BaseException], *methods: str) -> None:
        self.fault, self.methods = fault, frozenset(methods)

    def _check(self, method: str) -> None:
        if self.fault is not None and method in self.methods:
            raise self.fault()

    def read(self, fn: Callable[[Reader], T]) -> T:
        self._check("read")
        return self.inner.read(fn)

    def write(self, fn: Callable[[Writer], T]) -> T:
        return self.inner.write(fn)

    def version(self) -> int:
        self._check("version")
        return self.inner.version()

    def changes_since(self, version: int) -> list[Change] | None:
        self._check("version")
        return self.inner.changes_since(version)

    @property  # type: ignore[override]
    def poll_interval(self) -> float:
        return 0.0  # checked on every request, as a store other processes write would be

    @property  # type: ignore[override]
    def last_written(self) -> int:
        return self.inner.last_written

    def listen(self, callback: Callable[[int], None]) -> Closeable | None:
        return self.inner.listen(callback)


class FaultyRing(StoredKeyRing):
    """The store's key ring, whose ``get`` raises ``fault`` while it is set."""

    fault: Exception | None = None

    def get(self, kid: str) -> SigningKey | None:
        if self.fault is not None:
            raise self.fault
        return super().get(kid)


class FaultyCache(LRUCache):  # type: ignore[type-arg]
    """A cachetools cache whose reads (``op="get"``) or writes (``op="set"``) raise."""

    def __init__(self, op: str) -> None:
        super().__init__(maxsize=1024)
        self.op = op

    def _check(self, op: str) -> None:
        if self.op == op:
            raise RuntimeError(f"injected cache fault on {op}")

    def get(self, key: Any, default: Any = None) -> Any:
        self._check("get")
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self._check("get")
        return super().__getitem__(key)

    def __contains__(self, key: Any) -> bool:
        self._check("get")
        return super().__contains__(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._check("set")
        super().__setitem__(key, value)


class Uncomparable(str):
    """A request value that is text but cannot be compared (a lazily checked value whose check
    fails): every comparison, and reading it back as ``str``, raises."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("injected: the value cannot be compared")

    def __ne__(self, other: object) -> bool:
        raise RuntimeError("injected: the value cannot be compared")

    __hash__ = str.__hash__

    def __str__(self) -> str:
        raise RuntimeError("injected: the value cannot be read")


class Unreadable:
    """A request value that cannot be read as text at all (a proxy to an object that is not
    there, as an unbound ``LocalProxy`` is)."""

    def __str__(self) -> str:
        raise RuntimeError("injected: the value cannot be read")


# --- the world: the example team behind the Guard API and both adapters ------------------------


@dataclass
class World:
    store: FaultyStore
    ring: FaultyRing
    guard: Guard
    tokens: dict[str, str]
    ran: list[str] = field(default_factory=list)  # the endpoints and service calls that ran
    context: dict[str, Any] = field(default_factory=dict)  # what the context providers add

    @property
    def iam(self) -> IAM:
        return IAM(self.store, ACCOUNT)


@pytest.fixture(scope="module")
def built() -> MemoryStore:
    return load_model(TEAM)[0]


@pytest.fixture
def world(built: MemoryStore, caplog: pytest.LogCaptureFixture) -> World:
    """A Guard over a copy of the example team in a store that can fail, with a key ring that
    can fail, and a session token for each of ``USERS``."""
    inner = MemoryStore()
    built.copy_into(inner)
    store = FaultyStore(inner)
    ring = FaultyRing(store)
    guard = Guard(store, key_ring=ring)
    tokens = {}
    for name in USERS:
        key = IAM(store, ACCOUNT).create_access_key(name)
        tokens[name] = guard.sts.get_session_token(
            ACCOUNT, access_key_id=key.access_key.access_key_id,
            secret_access_key=key.secret_access_key,
        ).session_token  # fmt: skip
    caplog.set_level(logging.INFO)
    return World(store, ring, guard, tokens)


def starlette_app(world: World) -> Starlette:
    """Two endpoints that record each run, behind the middleware."""

    @requires(GET, resource=IMAGE)
    async def get_image(request: Request) -> Response:
        world.ran.append("starlette GET")
        return PlainTextResponse("image")

    @requires(DELETE, resource=IMAGE)
    async def delete_image(request: Request) -> Response:
        world.ran.append("starlette DELETE")
        return PlainTextResponse("deleted")

    routes = [
        Route("/images/{image_id}", get_image),
        Route("/images/{image_id}", delete_image, methods=["DELETE"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(
        IAMGuardMiddleware, guard=world.guard, context_provider=lambda scope: world.context
    )
    return app


def flask_app(world: World) -> Flask:
    """Two views that record each run, behind the extension."""
    app = Flask(__name__)
    ext = IAMGuard(guard=world.guard)

    @app.get("/images/<image_id>")
    @ext.require(GET, resource=IMAGE)
    def get_image(image_id: str) -> str:
        world.ran.append("flask GET")
        return "image"

    @app.delete("/images/<image_id>")
    @ext.require(DELETE, resource=IMAGE)
    def delete_image(image_id: str) -> str:
        world.ran.append("flask DELETE")
        return "deleted"

    ext.context_provider(lambda session: world.context)
    ext.init_app(app)
    return app


@authorize(GET, resource=IMAGE, context=lambda context, **_: context)
def read_image(image_id: str, context: Mapping[str, Any], ran: list[str]) -> str:
    ran.append("service GET")
    return image_id


@authorize(DELETE, resource=IMAGE, context=lambda context, **_: context)
def remove_image(image_id: str, context: Mapping[str, Any], ran: list[str]) -> str:
    ran.append("service DELETE")
    return image_id


SERVICE = {GET: read_image, DELETE: remove_image}


def over_http(world: World, adapter: str, token: str, action: str = GET) -> tuple[int, bytes]:
    """One request through an adapter: its status and body."""
    method, headers = METHODS[action], {"Authorization": f"Bearer {token}"}
    if adapter == "starlette":
        with TestClient(starlette_app(world)) as client:
            r = client.request(method, "/images/1", headers=headers)
        return r.status_code, r.content
    response = flask_app(world).test_client().open("/images/1", method=method, headers=headers)
    return response.status_code, response.data


def through_guard(world: World, token: str, action: str = GET) -> Decision | Exception:
    """Authenticate and authorize through the Guard API: the decision, or what it raised."""
    try:
        session = world.guard.authenticate(token)
        return world.guard.authorize(session, action, RESOURCE, world.context)
    except Exception as error:
        return error


def through_service(world: World, session: Session, action: str = GET) -> str | Exception:
    """Call an ``@authorize`` function as ``session``: its result, or what it raised."""
    try:
        with bind(session, world.guard):
            return SERVICE[action]("1", world.context, world.ran)
    except Exception as error:
        return error


def refused_by(outcome: Decision | Exception | str, fragment: str) -> bool:
    """Whether a Guard API or service outcome refuses because of the failure that ``fragment``
    names: raised with it, or a denying decision that records it."""
    if isinstance(outcome, Exception):
        return fragment in str(outcome)
    return (
        isinstance(outcome, Decision) and not outcome.allowed
        and any(fragment in error for error in outcome.errors)
    )  # fmt: skip


def record_text(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += f" {record.exc_info[1]!r}"
    return text


def reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What iamguard logged about refusals: audit events, and warnings or worse."""
    return [
        record_text(r) for r in caplog.records
        if r.name == "iamguard.audit" or (r.name.startswith("iamguard") and r.levelno >= logging.WARNING)
    ]  # fmt: skip


def logged(caplog: pytest.LogCaptureFixture, *fragments: str) -> bool:
    """Whether a logged reason names the failure (holds one of ``fragments``)."""
    return any(f in text for text in reasons(caplog) for f in fragments)


def no_token_logged(caplog: pytest.LogCaptureFixture, *tokens: str) -> None:
    texts = [caplog.text, *(record_text(r) for r in caplog.records)]
    for token in tokens:
        assert all(token not in text for text in texts)
        assert all(token.rsplit(".", 1)[-1] not in text for text in texts)  # nor its signature


# --- 1. token verification ---------------------------------------------------------------------


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("surface", ["guard", *ADAPTERS])
def test_key_ring_failure_refuses(
    world: World, caplog: pytest.LogCaptureFixture, surface: str, warm: bool
) -> None:
    """A key ring that raises refuses the request, also for a token verified (and cached)
    before: the Guard raises, an adapter answers 500 and logs the exception."""
    token = world.tokens["sita"]
    if warm:
        assert through_guard(world, token, DELETE).allowed  # type: ignore[union-attr]
    world.ring.fault = RuntimeError("injected key ring fault")
    caplog.clear()
    if surface == "guard":
        outcome = through_guard(world, token, DELETE)
        assert isinstance(outcome, RuntimeError) and "key ring" in str(outcome)
    else:
        status, body = over_http(world, surface, token, DELETE)
        assert status == 500 and b"injected" not in body and world.ran == []
        assert logged(caplog, "injected key ring fault")
    no_token_logged(caplog, token)


def _claims(world: World, name: str) -> dict[str, Any]:
    return world.guard.tokens.verify(world.tokens[name])


def _sign(claims: Mapping[str, Any], key: SigningKey, kid: str | None = None) -> str:
    headers = {"kid": kid or key.kid, "typ": TOKEN_TYPE}
    return jwt.encode(dict(claims), key.private, algorithm=key.algorithm, headers=headers)


def _segment(value: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def forge(world: World, kind: str) -> str:
    """A token that would act as sita (an admin) if it were accepted."""
    sita = _claims(world, "sita")
    if kind == "unknown-key":
        return _sign(sita, SigningKey.generate("EdDSA", kid="not-in-the-ring"))
    if kind == "other-key-same-kid":
        return _sign(sita, SigningKey.generate("EdDSA"), kid=world.ring.current.kid)
    if kind == "tampered-payload":  # ram's token, its payload rewritten to name sita
        header, _, signature = world.tokens["ram"].split(".")
        ram = _claims(world, "ram")
        claims = {**ram, **{k: sita[k] for k in ("sub", "name", "userid")}}
        return f"{header}.{_segment(claims)}.{signature}"
    bad = {"tags-not-strings": {"session_tags": {"team": 7}}, "userid-not-text": {"userid": 7}}
    return _sign({**sita, **bad[kind]}, world.ring.current)  # signed by the real key


FORGERIES = [
    "unknown-key", "other-key-same-kid", "tampered-payload", "tags-not-strings",
    "userid-not-text",
]  # fmt: skip


@pytest.mark.parametrize("surface", ["guard", *ADAPTERS])
@pytest.mark.parametrize("kind", FORGERIES)
def test_forged_token_is_not_authenticated(
    world: World, caplog: pytest.LogCaptureFixture, kind: str, surface: str
) -> None:
    """A token signed by a key the ring does not hold, with a tampered payload, or with claims
    of the wrong types (signed by the real key): ``InvalidClientTokenId``, 401, nothing runs."""
    token = forge(world, kind)
    assert through_guard(world, world.tokens["sita"], DELETE).allowed  # type: ignore[union-attr]
    if surface == "guard":
        assert isinstance(through_guard(world, token, DELETE), InvalidClientTokenId)
    else:
        status, body = over_http(world, surface, token, DELETE)
        assert status == 401 and json.loads(body)["Error"]["Code"] == "InvalidClientTokenId"
        assert world.ran == []
    no_token_logged(caplog, token)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("kind", FORGERIES)
def test_forged_token_refusal_is_logged(
    world: World, caplog: pytest.LogCaptureFixture, kind: str, adapter: str
) -> None:
    """A refused token leaves a logged reason (its error code or message), never the token."""
    token = forge(world, kind)
    error = through_guard(world, token, DELETE)
    assert isinstance(error, NotAuthenticated)
    caplog.clear()
    status, _ = over_http(world, adapter, token, DELETE)
    assert status == 401 and world.ran == []
    no_token_logged(caplog, token)
    assert logged(caplog, error.code, error.message)


# --- 2. store reads ----------------------------------------------------------------------------

STORE_FAULTS: dict[str, tuple[Callable[[], BaseException], int]] = {
    "unavailable": (lambda: StoreUnavailable("injected store fault at db.internal:5432"), 503),
    "corrupted": (lambda: StoreCorrupted("injected store fault: not a database"), 503),
    "runtime-error": (lambda: RuntimeError("injected store fault"), 500),
    "os-error": (lambda: OSError(5, "injected store fault: I/O error"), 500),
}


@pytest.mark.parametrize("surface", ["guard", *ADAPTERS, "service"])
@pytest.mark.parametrize("method", ["read", "version"])
@pytest.mark.parametrize("fault", STORE_FAULTS)
def test_store_fault_refuses(
    world: World, caplog: pytest.LogCaptureFixture, fault: str, method: str, surface: str
) -> None:
    """A store whose reads or version checks fail on the first read of the principal refuses
    the request: the Guard raises the failure, an adapter answers 503 for a ``StoreError`` and
    500 for anything else, logs it and discloses nothing of it; a service call raises."""
    make, status_wanted = STORE_FAULTS[fault]
    token = world.tokens["sita"]
    assert through_guard(world, world.tokens["gita"], DELETE).allowed  # type: ignore[union-attr]
    session = None
    if surface == "service":  # authenticated, then its view made stale: authorize must read
        session = world.guard.authenticate(token)
        world.iam.tag_user("sita", [{"Key": "desk", "Value": "7"}])
    world.store.arm(make, method)
    caplog.clear()
    if surface == "guard":
        outcome: Any = through_guard(world, token, DELETE)
        assert isinstance(outcome, type(make())) and "injected" in str(outcome)
    elif surface == "service":
        assert session is not None
        outcome = through_service(world, session, DELETE)
        assert isinstance(outcome, type(make())) and world.ran == []
    else:
        status, body = over_http(world, surface, token, DELETE)
        assert status == status_wanted and world.ran == []
        assert b"injected" not in body and b"db.internal" not in body
        assert logged(caplog, "injected store fault")
    no_token_logged(caplog, token)


# --- 3. policy compilation ---------------------------------------------------------------------

CORRUPT_DOCUMENTS: dict[str, Any] = {
    "not-json": '{"Version": "2012-10-17", "Statement": [',
    # read leniently (a missing Resource taken as none), it would deny nothing
    "no-resource": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": GET}]}
    ),
    "not-text": 42,
}
DENY_IMAGE_1 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Action": GET, "Resource": RESOURCE}],
}


def corrupt(world: World, where: str, document: Any) -> str:
    """Give ram a policy denying GetImage on image/1 (which his group allows), then overwrite
    its stored document, bypassing validation. Returns the policy's name."""
    if where == "inline":
        world.iam.put_user_policy("ram", "NoImage1", DENY_IMAGE_1)
        key = compound_key(owner_key("user", "ram"), "NoImage1")
        kind = "inline_policy"
    else:
        arn = world.iam.create_policy("NoImage1", DENY_IMAGE_1).arn
        world.iam.attach_user_policy("ram", arn)
        key, kind = compound_key("NoImage1", "v1"), "policy_version"
    assert not through_guard(world, world.tokens["ram"]).allowed  # type: ignore[union-attr]

    def overwrite(tx: Writer) -> None:
        record = tx.get(kind, ACCOUNT, key)
        assert record is not None
        tx.update(kind, ACCOUNT, key, {**record, "document": document})

    world.store.write(overwrite)
    return "NoImage1"


@pytest.mark.parametrize("surface", ["guard", *ADAPTERS, "service"])
@pytest.mark.parametrize("where", ["inline", "managed"])
@pytest.mark.parametrize("document", CORRUPT_DOCUMENTS)
def test_corrupt_policy_refuses_its_principal(
    world: World, caplog: pytest.LogCaptureFixture, document: str, where: str, surface: str
) -> None:
    """A stored policy that no longer parses refuses every request of the principal it applies
    to (it is never skipped: it holds a deny), and no one else's."""
    session = world.guard.authenticate(world.tokens["ram"])
    corrupt(world, where, CORRUPT_DOCUMENTS[document])
    caplog.clear()
    if surface == "guard":
        assert refused_by(through_guard(world, world.tokens["ram"]), "NoImage1")
        assert through_guard(world, world.tokens["sita"], DELETE).allowed  # type: ignore[union-attr]
    elif surface == "service":
        assert refused_by(through_service(world, session), "NoImage1") and world.ran == []
        sita = world.guard.authenticate(world.tokens["sita"])
        assert through_service(world, sita, DELETE) == "1"
        assert world.ran == ["service DELETE"]
    else:
        status, _ = over_http(world, surface, world.tokens["ram"])
        assert status != 200 and world.ran == []
        assert over_http(world, surface, world.tokens["sita"], DELETE)[0] == 200
    no_token_logged(caplog, *world.tokens.values())


@pytest.mark.parametrize("surface", ["guard", *ADAPTERS])
@pytest.mark.parametrize("where", ["inline", "managed"])
@pytest.mark.parametrize("document", CORRUPT_DOCUMENTS)
def test_corrupt_policy_is_a_logged_store_failure(
    world: World, caplog: pytest.LogCaptureFixture, document: str, where: str, surface: str
) -> None:
    """A corrupt stored policy is the store's fault, not the caller's: the Guard raises
    ``StoreCorrupted`` naming the policy; an adapter answers 5xx without the parser's message
    and logs which policy failed."""
    name = corrupt(world, where, CORRUPT_DOCUMENTS[document])
    caplog.clear()
    if surface == "guard":
        outcome = through_guard(world, world.tokens["ram"])
        assert isinstance(outcome, StoreCorrupted) and name in outcome.message
    else:
        status, body = over_http(world, surface, world.tokens["ram"])
        assert status in (500, 503) and world.ran == []
        assert name.encode() not in body and b"Statement" not in body
        assert logged(caplog, name)


# --- 4. condition evaluation -------------------------------------------------------------------

# ram's inline policy; a request value "gold" lets the request through in both placements.
CONDITIONS = {
    # an explicit deny the value must be compared to: skipped on an error, it would allow
    "deny": (GET, {"Effect": "Deny", "Action": GET, "Resource": "*",
                   "Condition": {"StringEquals": {"app:tier": "blocked"}}}),
    # the only grant of DeleteImage: read as holding on an error, it would allow
    "allow": (DELETE, {"Effect": "Allow", "Action": DELETE, "Resource": "*",
                       "Condition": {"StringEquals": {"app:tier": "gold"}}}),
}  # fmt: skip


def conditioned(world: World, placement: str) -> str:
    """Give ram the placement's policy; check that "gold" is allowed (on another image, so that
    no cached decision shares a key with the requests to come). Returns the action."""
    action, statement = CONDITIONS[placement]
    world.iam.put_user_policy("ram", "tiers", {"Version": "2012-10-17", "Statement": [statement]})
    session = world.guard.authenticate(world.tokens["ram"])
    assert world.guard.authorize(session, action, OTHER_RESOURCE, {"app:tier": "gold"}).allowed
    return action


@pytest.mark.parametrize("surface", ["guard", *ADAPTERS, "service"])
@pytest.mark.parametrize("placement", CONDITIONS)
def test_condition_that_raises_denies_and_is_not_cached(
    world: World, caplog: pytest.LogCaptureFixture, placement: str, surface: str
) -> None:
    """A condition whose operator raises on the request's value (twice in a row) denies with the
    error on the decision and an ``access.denied`` event; the second request is evaluated again,
    not answered from the cache, and denies again."""
    action = conditioned(world, placement)
    world.context = {"app:tier": Uncomparable("gold")}
    session = world.guard.authenticate(world.tokens["ram"])
    hits = world.guard.hits
    caplog.clear()
    for _ in range(2):
        if surface == "guard":
            decision = world.guard.authorize(session, action, RESOURCE, world.context)
            assert not decision.allowed and decision.reason is Reason.ERROR
            assert any("cannot be compared" in e for e in decision.errors)
        elif surface == "service":
            outcome = through_service(world, session, action)
            assert refused_by(outcome, "could not be evaluated")
        else:
            assert over_http(world, surface, world.tokens["ram"], action)[0] == 403
    assert world.ran == [] and world.guard.hits == hits
    events = [r.audit for r in caplog.records if getattr(r, "audit", {}).get("event")]
    assert [(e["event"], e["reason"]) for e in events] == [
        ("access.denied", "evaluation error")
    ] * 2
    no_token_logged(caplog, world.tokens["ram"])


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("placement", CONDITIONS)
def test_unreadable_value_refuses_over_http(
    world: World, caplog: pytest.LogCaptureFixture, placement: str, adapter: str
) -> None:
    """A context provider's value that cannot be read as text, on a key a condition reads,
    refuses the request with a logged reason (403 and ``access.denied``, or 500 and the
    exception); the endpoint never runs."""
    action = conditioned(world, placement)
    world.context = {"app:tier": Unreadable()}
    caplog.clear()
    status, body = over_http(world, adapter, world.tokens["ram"], action)
    assert status in (403, 500) and world.ran == [] and b"injected" not in body
    assert logged(caplog, "access.denied", "cannot be read")
    no_token_logged(caplog, world.tokens["ram"])


@pytest.mark.parametrize("surface", ["guard", "service"])
@pytest.mark.parametrize("placement", CONDITIONS)
def test_unreadable_value_is_a_denying_decision(
    world: World, caplog: pytest.LogCaptureFixture, placement: str, surface: str
) -> None:
    """A value that cannot be read as text, on a key a condition reads, is an error on a
    denying decision and an ``access.denied`` event, as it is when evaluation meets it; through
    ``@authorize``, ``AccessDenied``."""
    action = conditioned(world, placement)
    world.context = {"app:tier": Unreadable()}
    session = world.guard.authenticate(world.tokens["ram"])
    caplog.clear()
    if surface == "guard":
        decision = world.guard.authorize(session, action, RESOURCE, world.context)
        assert not decision.allowed and decision.reason is Reason.ERROR and decision.errors
    else:
        outcome = through_service(world, session, action)
        assert isinstance(outcome, IAMGuardError) and outcome.code == "AccessDenied"
        assert world.ran == []
    assert logged(caplog, "access.denied")


# --- 5. caches ---------------------------------------------------------------------------------

# Where each cache lives, from the Guard; the decision path's own memos included.
CACHES: dict[str, Callable[[Guard], tuple[Any, str]]] = {
    "decisions": lambda g: (g, "_decisions"),
    "read-keys": lambda g: (g, "_read_memo"),
    "context-layers": lambda g: (g, "_layers"),
    "verified-tokens": lambda g: (g.tokens, "_verified"),
    "sessions": lambda g: (g.sts, "_sessions"),
}
AUTHORIZE_CACHES = ("decisions", "read-keys", "context-layers")  # what @authorize goes through


def _cache_cases() -> list[Any]:
    return [
        pytest.param(cache, op, surface, id=f"{cache}-{op}-{surface}")
        for cache in CACHES
        for op in ("get", "set")
        for surface in ("guard", *ADAPTERS, "service")
        if surface != "service" or cache in AUTHORIZE_CACHES
    ]


@pytest.mark.parametrize(("cache", "op", "surface"), _cache_cases())
def test_cache_fault_refuses(
    world: World, caplog: pytest.LogCaptureFixture, cache: str, op: str, surface: str
) -> None:
    """A cache whose reads or writes raise refuses the request (the Guard raises, an adapter
    answers 500 and logs the fault): a request is never allowed past a cache that failed."""
    # sita's policies read a context key, so that the context memo is on her path too
    world.iam.put_user_policy("sita", "not-for-nobody", {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "images:PutImage", "Resource": "*",
                       "Condition": {"StringEquals": {"aws:PrincipalTag/team": "nobody"}}}],
    })  # fmt: skip
    session = world.guard.authenticate(world.tokens["sita"])
    owner, attribute = CACHES[cache](world.guard)
    assert isinstance(getattr(owner, attribute), Cache)
    setattr(owner, attribute, FaultyCache(op))
    caplog.clear()
    if surface == "guard":
        outcome = through_guard(world, world.tokens["sita"], DELETE)
        assert refused_by(outcome, "injected cache fault")
    elif surface == "service":
        outcome = through_service(world, session, DELETE)
        assert refused_by(outcome, "injected cache fault") and world.ran == []
    else:
        status, body = over_http(world, surface, world.tokens["sita"], DELETE)
        assert status == 500 and world.ran == [] and b"injected" not in body
        assert logged(caplog, "injected cache fault")
    no_token_logged(caplog, world.tokens["sita"])


# --- remembered answers: the adapters' warm path ---------------------------------------------


def single_app(world: World, adapter: str, action: str) -> Callable[[str], int]:
    """An app whose one endpoint, ``GET /images/{image_id}``, needs ``action``; no context
    provider, so that allowed answers may be remembered. Returns ``call(token) -> status``."""
    if adapter == "starlette":

        async def image(request: Request) -> Response:
            world.ran.append(f"starlette {action}")
            return PlainTextResponse("image")

        app = Starlette(routes=[Route("/images/{image_id}", requires(action, IMAGE)(image))])
        app.add_middleware(IAMGuardMiddleware, guard=world.guard)
        client = TestClient(app)
        return lambda token: (
            client.get("/images/1", headers={"Authorization": f"Bearer {token}"}).status_code
        )

    flask = Flask(__name__)
    ext = IAMGuard(guard=world.guard)

    @flask.get("/images/<image_id>")
    @ext.require(action, resource=IMAGE)
    def image(image_id: str) -> str:
        world.ran.append(f"flask {action}")
        return "image"

    ext.init_app(flask)
    test_client = flask.test_client()
    return lambda token: (
        test_client.get("/images/1", headers={"Authorization": f"Bearer {token}"}).status_code
    )


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("fault", ["version", "read-after-change"])
def test_warm_request_refused_after_store_fault(
    world: World, caplog: pytest.LogCaptureFixture, fault: str, adapter: str
) -> None:
    """After the same request was allowed (twice: warm), a store that stops answering its
    version, or that fails to read after the model changed, refuses it (503, logged)."""
    call = single_app(world, adapter, DELETE)
    token = world.tokens["sita"]
    assert [call(token), call(token)] == [200, 200]
    if fault == "read-after-change":
        world.iam.tag_user("sita", [{"Key": "desk", "Value": "7"}])
    world.store.arm(lambda: StoreUnavailable("injected store fault"), fault.partition("-")[0])
    caplog.clear()
    assert call(token) == 503
    assert world.ran == [f"{adapter} {DELETE}"] * 2
    assert logged(caplog, "injected store fault")
    no_token_logged(caplog, token)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_answer_of_one_app_never_answers_another(world: World, adapter: str) -> None:
    """Two apps over one Guard, the same route needing different permissions: ram's request
    allowed by the first (GetImage) is decided again by the second (DeleteImage) and denied."""
    reader, deleter = single_app(world, adapter, GET), single_app(world, adapter, DELETE)
    token = world.tokens["ram"]
    assert [reader(token), reader(token)] == [200, 200]
    assert deleter(token) == 403
    assert world.ran == [f"{adapter} {GET}"] * 2
