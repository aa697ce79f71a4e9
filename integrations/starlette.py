"""Starlette and FastAPI: a pure ASGI middleware, route declarations and a FastAPI dependency.

``IAMGuardMiddleware`` decides every http and websocket request BEFORE the app runs it:

1. it resolves the route the app's router will use, the way ``Router`` does (``route.matches``
   on every route in order, descending into ``Mount`` and ``Host``); a request no route matches
   passes through, so the router answers 404 (or its trailing-slash redirect) exactly as before,
   and a method no route allows passes through to the router's 405. Neither runs an endpoint.
   A path the router would route but that is not canonical (``//``, ``/./``, ``..``, ``%2F``,
   double encoding: ``normalize_path`` on the raw path) is refused with 400;
2. it finds the route's declaration: ``@requires``/``@public`` on the endpoint (on an
   ``HTTPEndpoint``'s method or class), a FastAPI ``permission()`` dependency, or an entry in
   ``rules`` keyed by ``"METHOD /template"`` or ``"/template"`` (the full template, mounts
   included, as declared: ``"/v1/images/{image_id}"``). HEAD uses GET's declaration. A route
   with none is denied (403). OPTIONS needs one too, unless ``cors_preflight=True`` and the
   request is a CORS preflight, which then passes to the ``CORSMiddleware`` that must sit inside;
3. it authenticates the bearer token (none: 401 ``MissingAuthenticationToken``; bad: 401
   ``invalid_token``) and authorizes each permission with the request's context; a denial is
   403 with AWS's sentence, an unreadable store 503, any other failure 500 with a generic body
   (logged): the endpoint never runs unless every step allowed it;
4. allowed, the principal is ``request.user`` (``IAMUser``) and ``request.auth``
   (``IAMCredentials``, scopes ``["authenticated"]``, with ``.session``), and
   ``current_session`` holds the ``Session`` (``current_guard`` the Guard) while the app runs,
   for ``@authorize`` on the service functions it calls.

A public route is not authenticated (a token on it is ignored); its scope is left as it was.
Websockets are decided at connect: a refusal is the HTTP answer (401/403, AWS's JSON body)
where the server offers ASGI's denial-response extension (uvicorn does), else a close with 1008.
Guard calls are synchronous: warm paths do no I/O, a cold one reads the store on the event loop.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

from starlette.authentication import AuthCredentials, BaseUser
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Host, Match, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from iamguard.errors import (
    IAMGuardError,
    InternalFailure,
    InvalidInput,
    StoreError,
    StoreUnavailable,
)
from iamguard.guard import Guard
from iamguard.policy import Decision
from iamguard.requestmemo import Stamp
from iamguard.sessions import Session

from ._context import current_session, reset_caller, set_caller
from ._http import (
    PUBLIC,
    Network,
    Permission,
    Public,
    bearer_token,
    denied_response,
    error_response,
    http_context,
    missing_credentials_response,
    normalize_path,
)
from ._http import Response as Answer

__all__ = [
    "IAMCredentials",
    "IAMGuardHTTPException",
    "IAMGuardMiddleware",
    "IAMUser",
    "current_session",
    "exception_handler",
    "permission",
    "public",
    "requires",
]

log = logging.getLogger(__name__)
ContextProvider = Callable[[Scope], Mapping[str, Any] | Awaitable[Mapping[str, Any]]]
Rule = Permission | Public
F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE: Final = "__iamguard_rule__"
_CONFIG: Final = "iamguard"  # the scope key of the middleware's configuration


# --- declarations ------------------------------------------------------------------------------


def requires(action: str, resource: str = "*") -> Callable[[F], F]:
    """Declare the permission an endpoint needs: ``@requires("images:GetImage",
    resource="arn:iamguard:images::{account}:image/{image_id}")``."""
    rule = Permission(action, resource)

    def declare(endpoint: F) -> F:
        setattr(endpoint, _ATTRIBUTE, rule)
        return endpoint

    return declare


def public(endpoint: F) -> F:
    """Declare an endpoint public: no credential needed, nothing authorized."""
    setattr(endpoint, _ATTRIBUTE, PUBLIC)
    return endpoint


# --- the principal -----------------------------------------------------------------------------


class IAMUser(BaseUser):
    """``request.user`` for an authorized request."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.session.name or self.session.principal

    @property
    def identity(self) -> str:
        return self.session.principal


class IAMCredentials(AuthCredentials):
    """``request.auth`` for an authorized request: Starlette's ``authenticated`` scope and the
    session (permissions are not scopes: they are decided per request)."""

    def __init__(self, session: Session) -> None:
        super().__init__(["authenticated"])
        self.session = session


# --- the one check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    guard: Guard
    trusted_proxies: tuple[Network, ...]
    context_provider: ContextProvider | None


async def _context(config: _Config, scope: Scope, now: datetime) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    client = scope.get("client")
    default_scheme = "ws" if scope["type"] == "websocket" else "http"
    context: dict[str, Any] = http_context(
        peer=client[0] if client else None, headers=headers,
        scheme=scope.get("scheme", default_scheme), trusted_proxies=config.trusted_proxies,
        now=now,
    )  # fmt: skip
    if config.context_provider is not None:
        provided = config.context_provider(scope)
        if inspect.isawaitable(provided):
            provided = await provided
        if any(key.lower().startswith("aws:") for key in provided):
            raise ValueError("a context provider may not set `aws:` keys")
        context.update(provided)
    return context


@dataclass(frozen=True, slots=True)
class _Allowed:
    """What ``check`` found: the session, the token it came from (None when it was given) and
    the decisions that allowed the request, taken after ``stamp``."""

    session: Session
    token: str | None
    decisions: tuple[Decision, ...]
    stamp: Stamp


async def check(
    config: _Config, rules: Sequence[Permission], scope: Scope, session: Session | None = None
) -> _Allowed | Answer:
    """``_Allowed`` when every permission allows the request, else the response to send.
    ``session`` is one authenticated already; else the bearer token is authenticated."""
    token = None
    try:
        guard = config.guard
        stamp = guard.requests.stamp()
        if session is None:
            authorization = next(
                (v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"authorization"),
                None,
            )
            token = bearer_token(authorization)
            if token is None:
                return missing_credentials_response()
            session = guard.authenticate(token)
        context = await _context(config, scope, stamp.now)
        params = scope.get("path_params", {})
        decisions = []
        for rule in rules:
            resource = rule.resource_for(params, session)
            decision = guard.authorize(session, rule.action, resource, context)
            if not decision.allowed:
                return denied_response(decision)
            decisions.append(decision)
    except StoreError as e:
        return _store_failed(e)
    except IAMGuardError as e:
        return error_response(e)
    except Exception:  # fail closed: the endpoint never runs on an unexpected failure
        log.exception("iamguard: deciding a request failed")
        return error_response(InternalFailure("deciding the request failed"))
    return _Allowed(session, token, tuple(decisions), stamp)


def _store_failed(e: StoreError) -> Answer:
    log.warning("iamguard: the store failed: %s", e.message)
    return error_response(e if isinstance(e, StoreUnavailable) else StoreUnavailable(e.message))


# --- route resolution --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """The route the router will call, its full template and the scope it will see."""

    route: Any
    template: str
    scope: Scope


def _router_of(app: Any) -> Any:
    """The nearest object with ``routes`` along ``app.app.app...``, or None."""
    seen = 0
    while app is not None and seen < 64:
        if isinstance(getattr(app, "routes", None), list):
            return getattr(app, "router", app)
        app, seen = getattr(app, "app", None), seen + 1
    return None


def _resolve(router: Any, scope: Scope, prefix: str = "") -> _Target | None:
    """Mirror ``Router.app``: the first FULL match, else the first PARTIAL one. None when the
    router itself answers (404, redirect, 405) without running any endpoint."""
    chosen: tuple[Any, Scope] | None = None
    for route in router.routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            chosen = (route, child)
            break
        if match is Match.PARTIAL and chosen is None:
            chosen = (route, child)
    if chosen is None:
        if isinstance(router, Router) and router.default == router.not_found:
            return None  # 404, or the trailing-slash redirect: no endpoint runs
        return _Target(router, prefix + "{default}", scope)  # a custom default: needs a rule
    route, child = chosen
    inner_scope = {**scope, **child}
    if isinstance(route, Route) and route.methods and scope["method"] not in route.methods:
        return None  # 405 from Route.handle
    if isinstance(route, Mount | Host):
        here = prefix + route.path if isinstance(route, Mount) else prefix
        inner = _router_of(getattr(route, "_base_app", route.app))
        if inner is not None:
            return _resolve(inner, inner_scope, here)
        if isinstance(route, Mount):  # an app without routes (static files, a WSGI app)
            remaining = inner_scope["path"][len(inner_scope["root_path"]) :]
            params = {**inner_scope.get("path_params", {}), "path": remaining.lstrip("/")}
            return _Target(route, here + "/{path:path}", {**inner_scope, "path_params": params})
    path = getattr(route, "path", "")
    return _Target(route, prefix + path, inner_scope)


def _declared(endpoint: Any, method: str) -> Any:
    if inspect.isclass(endpoint):  # HTTPEndpoint: the handler's declaration, else the class's
        handler = getattr(endpoint, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(endpoint, "get", None)
        found = getattr(handler, _ATTRIBUTE, None)
        if found is not None:
            return found
    return getattr(endpoint, _ATTRIBUTE, None)


def _dependency_rules(route: Any) -> tuple[Permission, ...]:
    """The permissions of FastAPI ``permission()`` dependencies of a route, at any depth."""

    def walk(dependant: Any) -> Iterator[Permission]:
        for sub in getattr(dependant, "dependencies", ()):
            found = getattr(sub.call, _ATTRIBUTE, None)
            if isinstance(found, Permission):
                yield found
            yield from walk(sub)

    return tuple(walk(getattr(route, "dependant", None)))


def _rules_for(
    target: _Target, method: str, rules: Mapping[str, Rule]
) -> tuple[Permission, ...] | Public | None:
    route = target.route
    endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
    methods = (method, "GET") if method == "HEAD" else (method,)
    for name in methods:
        found = _declared(endpoint, name) if endpoint is not None else None
        if found is None:
            found = rules.get(f"{name} {target.template}")
        if found is not None:
            return found if found is PUBLIC else (found,)
    found = rules.get(target.template)
    if found is not None:
        return found if found is PUBLIC else (found,)
    return _dependency_rules(route) or None


# --- the middleware ----------------------------------------------------------------------------


def _is_preflight(scope: Scope) -> bool:
    names = {name.lower() for name, _ in scope.get("headers", [])}
    return (
        scope["type"] == "http" and scope["method"] == "OPTIONS"
        and b"origin" in names and b"access-control-request-method" in names
    )  # fmt: skip


def _has_cors(app: Any) -> bool:
    """Whether a ``CORSMiddleware`` sits between here and the router."""
    while app is not None:
        if isinstance(app, CORSMiddleware):
            return True
        middleware = getattr(app, "user_middleware", None)  # a Starlette app not yet built
        if middleware is not None:
            return any(m.cls is CORSMiddleware for m in middleware)
        app = getattr(app, "app", None)
    return False


class IAMGuardMiddleware:
    """Authenticate and authorize every http and websocket request before the app runs it
    (see the module docstring). ``rules`` maps ``"/template"`` or ``"METHOD /template"`` to a
    ``Permission`` or ``PUBLIC``; ``trusted_proxies`` are networks whose ``X-Forwarded-For``
    is believed; ``context_provider(scope)`` adds app condition keys (never ``aws:`` ones)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        guard: Guard,
        rules: Mapping[str, Rule] | None = None,
        trusted_proxies: Sequence[str | Network] = (),
        context_provider: ContextProvider | None = None,
        cors_preflight: bool = False,
    ) -> None:
        self.app = app
        self.rules: dict[str, Rule] = dict(rules or {})
        for key, rule in self.rules.items():
            if not isinstance(rule, Permission | Public):
                raise InvalidInput(f"rule `{key}`: a rule is a `Permission` or `PUBLIC`")
        proxies = tuple(ipaddress.ip_network(p) for p in trusted_proxies)
        self.config = _Config(guard, proxies, context_provider)
        self.router = _router_of(app)  # fixed: routes are added to its list in place
        if self.router is None:
            raise TypeError("IAMGuardMiddleware needs a Starlette app or router inside it")
        if cors_preflight and not _has_cors(app):
            raise TypeError("cors_preflight=True needs a CORSMiddleware inside IAMGuardMiddleware")
        self.cors_preflight = cors_preflight
        # Without a context provider every input of a decision is in the request memo's key.
        self._memoized = context_provider is None
        self._recall = guard.requests.recall

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope[_CONFIG] = self.config
        answer: _Granted | Answer | None = None
        key = None
        if self._memoized:
            key = _memo_key(self, scope)
            try:  # a remembered answer to this very request, still exact
                answer = self._recall(key)
            except Exception as e:  # decided in full below, which fails closed
                log.debug("iamguard: recalling a decision failed: %s", type(e).__name__)
        if answer is None:
            answer = await self._decide(scope, key)
        if isinstance(answer, _Granted):
            scope["user"], scope["auth"], scope[_ALLOWED] = answer.user, answer.auth, answer.rules
            token = set_caller(answer.user.session, self.config.guard)
            try:
                await self.app(scope, receive, send)
            finally:
                reset_caller(token)
        elif answer is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await _refuse_websocket(scope, send, answer)
        else:
            status, headers, body = answer
            response = Response(body, status, {k: v for k, v in headers})
            await response(scope, receive, send)

    async def _decide(
        self, scope: Scope, key: tuple[Any, ...] | None
    ) -> _Granted | Answer | None:
        """Decide a request (and remember an allowed answer under ``key``); None to pass it
        through untouched."""
        target = _resolve(self.router, {**scope, "path_params": dict(scope.get("path_params", {}))})
        if target is None:
            return None
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        if normalize_path(raw.decode("latin-1")) is None:
            return error_response(InvalidInput("the request path is not in canonical form"))
        if self.cors_preflight and _is_preflight(scope):
            return None  # the CORSMiddleware inside answers it
        method = scope.get("method", "WEBSOCKET")
        rules = _rules_for(target, method, self.rules)
        if isinstance(rules, Public):
            return None
        if not rules:
            where = f"{method} {target.template}" if scope["type"] == "http" else target.template
            message = f"route `{where}` has no iamguard declaration and is denied"
            return 403, [("content-type", "application/json")], _denied_body(message)
        allowed = await check(self.config, rules, target.scope)
        if not isinstance(allowed, _Allowed):
            return allowed
        session = allowed.session
        granted = _Granted(IAMUser(session), IAMCredentials(session), frozenset(rules))
        if key is not None and allowed.token is not None:
            self.config.guard.requests.remember(
                key, granted, token=allowed.token, session=session,
                decisions=allowed.decisions, stamp=allowed.stamp,
            )  # fmt: skip
        return granted


# The request inputs an answer can depend on, besides method, path and peer (see _memo_key).
_KEY_HEADERS: Final = frozenset(
    {b"authorization", b"host", b"user-agent", b"referer", b"x-forwarded-for",
     b"x-forwarded-proto"}
)  # fmt: skip
_ALLOWED: Final = "iamguard.allowed"  # the scope key of the permissions the middleware granted


@dataclass(frozen=True, slots=True)
class _Granted:
    """An allowed request's answer, as the app sees it."""

    user: IAMUser
    auth: IAMCredentials
    rules: frozenset[Permission]


def _memo_key(middleware: IAMGuardMiddleware, scope: Scope) -> tuple[Any, ...]:
    """Everything the answer to a request can depend on: the middleware (its app's routes and
    rules; apps may share a Guard), the request's type, method, scheme, paths and peer, and the
    headers the token, the routing (``Host``) and the HTTP context are read from (all their
    lines, in order; other headers change nothing)."""
    client = scope.get("client")
    key: list[Any] = [
        middleware, scope["type"], scope.get("method"), scope.get("scheme"),
        scope.get("root_path", ""), scope["path"], scope.get("raw_path"),
        client[0] if client else None,
    ]  # fmt: skip
    for name, value in scope["headers"]:
        if name in _KEY_HEADERS or (not name.islower() and name.lower() in _KEY_HEADERS):
            key += (name.lower(), value)
    return tuple(key)


async def _refuse_websocket(scope: Scope, send: Send, answer: Answer) -> None:
    """Refuse a handshake: the HTTP answer itself (401/403 and AWS's JSON body) where the server
    offers the ASGI denial-response extension, else a close with 1008 (policy violation)."""
    status, headers, body = answer
    if "websocket.http.response" in scope.get("extensions", {}):
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        raw.append((b"content-length", str(len(body)).encode("ascii")))
        await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    error = json.loads(body)["Error"]
    text = f"{error['Code']}: {error['Message']}"
    reason = text.encode("utf-8")[:123].decode("utf-8", "ignore")  # RFC 6455 limit
    await send({"type": "websocket.close", "code": 1008, "reason": reason})


def _denied_body(message: str) -> bytes:
    return json.dumps({"Error": {"Code": "AccessDenied", "Message": message}}).encode("utf-8")


# --- FastAPI -----------------------------------------------------------------------------------


class IAMGuardHTTPException(HTTPException):
    """A refusal from ``permission()``: status and headers as iamguard answers them, ``detail``
    the ``{"Code", "Message"}`` error. ``exception_handler`` renders AWS's exact body."""

    def __init__(self, answer: Answer) -> None:
        status, headers, body = answer
        self.body = body
        super().__init__(status, json.loads(body)["Error"], dict(headers))


async def exception_handler(request: Request, exc: Exception) -> Response:
    """Register with ``app.add_exception_handler(IAMGuardHTTPException, exception_handler)``
    for bodies identical to the middleware's (FastAPI's default says ``{"detail": ...}``)."""
    assert isinstance(exc, IAMGuardHTTPException)
    return Response(exc.body, exc.status_code, exc.headers, media_type="application/json")


def permission(
    action: str, resource: str = "*", *, guard: Guard | None = None
) -> Callable[[HTTPConnection], Awaitable[Session]]:
    """A FastAPI dependency that authorizes ``action`` on ``resource`` (a template filled from
    the path parameters) and returns the ``Session``: ``Depends(permission("images:GetImage",
    resource="arn:iamguard:images::{account}:image/{image_id}"))``.

    Behind ``IAMGuardMiddleware`` it reuses the middleware's session and configuration; without
    it, it authenticates the request's bearer token with ``guard`` (or ``app.state.iamguard``)."""
    rule = Permission(action, resource)

    async def dependency(connection: HTTPConnection) -> Session:
        config = connection.scope.get(_CONFIG)
        if not isinstance(config, _Config):
            chosen = guard or getattr(connection.app.state, "iamguard", None)
            if not isinstance(chosen, Guard):
                raise RuntimeError("permission() needs `guard=` or `app.state.iamguard`")
            config = _Config(chosen, (), None)
        auth = connection.scope.get("auth")
        session = auth.session if isinstance(auth, IAMCredentials) else None
        if session is not None and rule in connection.scope.get(_ALLOWED, ()):
            return session  # the middleware allowed this very permission for this request
        answer = await check(config, (rule,), connection.scope, session)
        if isinstance(answer, _Allowed):
            return answer.session
        raise IAMGuardHTTPException(answer)

    setattr(dependency, _ATTRIBUTE, rule)
    return dependency
