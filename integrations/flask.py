"""The Flask extension: every view declares a permission or is public; the rest are denied.

::

    guard = IAMGuard(app, guard=Guard(store))      # or IAMGuard() + guard.init_app(app)

    @app.put("/images/<image_id>")
    @guard.require("images:PutImage", resource="arn:iamguard:images::{account}:image/{image_id}")
    def put_image(image_id): ...                   # current_principal is the caller's Session

    @app.get("/health")
    @guard.public
    def health(): ...

Enforcement is a ``before_request`` hook that runs before every other one, after Flask has
routed the request. It authorizes the routed endpoint with the values its URL rule matched
(snapshotted before any ``url_value_preprocessor`` can change them), which are the values the
view receives: how the raw path was spelled (``//``, ``%2F``, ``..``, letter case) cannot
reach a view under another view's permission. A request Flask does not route (404, 405, a
``strict_slashes``/``merge_slashes`` redirect) keeps Flask's own answer and runs no view.

- ``HEAD`` needs ``GET``'s permission (Flask serves ``HEAD`` with the ``GET`` view).
- ``OPTIONS`` answered by Flask's automatic handler (``provide_automatic_options``) is exempt,
  like flask-login's ``EXEMPT_METHODS``: that handler runs no view code and only lists the
  rule's methods. A view that handles ``OPTIONS`` itself needs a declaration like any method.
- A public view reads no credential: ``current_principal`` is ``None`` there.
- An allowed request binds ``current_session`` and ``current_guard`` (``_context``) for the
  view and the service functions it calls (``@authorize``), until its last teardown.
- Denials answer 403 with AWS's sentence, a missing credential 401 with ``WWW-Authenticate:
  Bearer``, a bad one 401 ``invalid_token``, an unreadable store 503; any other failure on the
  decision path answers 500 (logged on ``iamguard.flask``) and the view does not run.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar, cast, overload

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.local import LocalProxy
from werkzeug.routing import Rule

from iamguard.errors import (
    AccessDenied,
    IAMGuardError,
    InternalFailure,
    NotAuthenticated,
    StoreError,
    StoreUnavailable,
)
from iamguard.guard import Guard
from iamguard.policy import Decision
from iamguard.sessions import Session
from iamguard.stores import open_store

from ._context import reset_caller, set_caller
from ._http import (
    PUBLIC,
    Permission,
    Public,
    bearer_token,
    denied_response,
    error_response,
    http_context,
    missing_credentials_response,
)
from ._http import Response as RawResponse

__all__ = ["Denial", "IAMGuard", "current_principal"]

EXTENSION: Final = "iamguard"
CONFIG_KEYS: Final = (
    "IAMGUARD_STORE",
    "IAMGUARD_ISSUER",
    "IAMGUARD_AUDIENCE",
    "IAMGUARD_TRUSTED_PROXIES",
    "IAMGUARD_PUBLIC_ENDPOINTS",
)
_RULES: Final = "__iamguard_rules__"  # on a view function: {method or "*": Permission | PUBLIC}
_PUBLIC_BLUEPRINT: Final = "__iamguard_public__"
_ANY: Final = "*"
_ALL_METHODS: Final = (_ANY,)
logger = logging.getLogger("iamguard.flask")

F = TypeVar("F", bound=Callable[..., Any])
Rules = Mapping[str, "Permission | Public"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

current_principal: Session | None = cast(
    "Session | None", LocalProxy(lambda: g.get("iam_principal"))
)
"""The caller's Session on a guarded view (also ``g.iam_principal``); None on a public one."""


@dataclass(frozen=True)
class Denial:
    """What ``@on_denied`` callbacks receive: why the request was refused and the response
    that refuses it. ``decision`` is set for a policy denial, ``error`` otherwise."""

    status: int
    response: Response
    session: Session | None = None
    decision: Decision | None = None
    error: Exception | None = None


@dataclass
class _State:
    """Per-app state, in ``app.extensions["iamguard"]``: the config as read at init."""

    extension: IAMGuard
    guard: Guard
    trusted_proxies: tuple[Network, ...]
    public_endpoints: frozenset[str]
    checked_rules: set[tuple[str, str]] = field(default_factory=set)  # endpoint, rule
    # Names this app in request-memo keys: apps may share a Guard, not their views' rules.
    memo_id: object = field(default_factory=object)


class IAMGuard:
    """Guards a Flask app's views with iamguard's permissions.

    Config keys, read once by ``init_app`` (a later change has no effect; an unknown
    ``IAMGUARD_*`` key is an error, to catch typos):

    - ``IAMGUARD_STORE``: a store URL (``memory://``, ``sqlite:///path``, ``postgresql://...``)
      to build the Guard from when ``guard=`` is not passed. One of the two is required. A
      SQLite file must exist (``iamguard import`` creates one): a mistyped path is an error,
      not a new, empty store that denies everything.
    - ``IAMGUARD_ISSUER``, ``IAMGUARD_AUDIENCE``: the tokens' ``iss`` and ``aud`` for that
      Guard (default ``iamguard``). With ``guard=`` they are an error: configure the Guard.
    - ``IAMGUARD_TRUSTED_PROXIES``: a list of CIDRs (default none) whose ``X-Forwarded-For``
      and ``X-Forwarded-Proto`` are believed for ``aws:SourceIp`` and ``aws:SecureTransport``.
      Use it instead of werkzeug's ``ProxyFix``: the peer is read before ``ProxyFix`` rewrites it.
    - ``IAMGUARD_PUBLIC_ENDPOINTS``: a list of endpoint names that are public (default none;
      Flask's static files need ``["static"]``).

    Registering twice on one app raises ``RuntimeError``; bad config raises ``ValueError``.
    """

    def __init__(self, app: Flask | None = None, *, guard: Guard | None = None) -> None:
        self._guard = guard
        self._context_providers: list[Callable[[Session], Mapping[str, Any]]] = []
        self._denied_callbacks: list[Callable[[Denial], Response | None]] = []
        if app is not None:
            self.init_app(app, guard=guard)

    # --- registration ----------------------------------------------------------------------

    def init_app(self, app: Flask, *, guard: Guard | None = None) -> None:
        """Register on ``app``: read the config, install the hooks."""
        if EXTENSION in app.extensions:
            raise RuntimeError(
                f"app `{app.name}`: iamguard is registered already: call init_app once per app"
            )
        config = app.config
        unknown = sorted(k for k in config if k.startswith("IAMGUARD_") and k not in CONFIG_KEYS)
        if unknown:
            raise ValueError(f"config `{unknown[0]}`: unknown key: use one of {CONFIG_KEYS}")
        app.extensions[EXTENSION] = _State(
            extension=self,
            guard=self._build_guard(config, guard or self._guard),
            trusted_proxies=_networks(config.get("IAMGUARD_TRUSTED_PROXIES", ())),
            public_endpoints=frozenset(
                _names("IAMGUARD_PUBLIC_ENDPOINTS", config.get("IAMGUARD_PUBLIC_ENDPOINTS", ()))
            ),
        )
        # First of their kind: nothing the app adds can see the request before it is decided.
        app.url_value_preprocessors.setdefault(None, []).insert(0, _snapshot_view_args)
        app.before_request_funcs.setdefault(None, []).insert(0, _enforce)
        # Teardowns run in reverse: first in the list, so the app's own teardowns see the caller.
        app.teardown_request_funcs.setdefault(None, []).insert(0, _unbind)
        self.check_routes(app)

    @staticmethod
    def _build_guard(config: Mapping[str, Any], guard: Guard | None) -> Guard:
        tokens = {k: config[k] for k in ("IAMGUARD_ISSUER", "IAMGUARD_AUDIENCE") if k in config}
        if guard is not None:
            if "IAMGUARD_STORE" in config or tokens:
                key = "IAMGUARD_STORE" if "IAMGUARD_STORE" in config else next(iter(tokens))
                raise ValueError(f"config `{key}`: set, but a Guard was passed: configure it")
            return guard
        url = config.get("IAMGUARD_STORE")
        if not isinstance(url, str) or not url:
            raise ValueError("config `IAMGUARD_STORE`: set a store URL, or pass guard=")
        for key, value in tokens.items():
            if not isinstance(value, str) or not value:
                raise ValueError(f"config `{key}`: must be a non-empty string")
        return Guard(
            open_store(url, create=False),
            issuer=tokens.get("IAMGUARD_ISSUER", "iamguard"),
            audience=tokens.get("IAMGUARD_AUDIENCE", "iamguard"),
        )

    # --- declarations ----------------------------------------------------------------------

    def require(
        self, action: str, resource: str = "*", *, methods: Iterable[str] | None = None
    ) -> Callable[[F], F]:
        """Declare the view's permission: ``action`` on ``resource`` (a template over the URL
        rule's arguments and ``{account}``, ``{principal}``, ``{username}``), for ``methods``
        (default: every method the view serves). Place it below ``@app.route``."""
        permission = Permission(action, resource)
        names = _ALL_METHODS if methods is None else tuple(m.upper() for m in methods)
        if not names:
            raise ValueError(f"permission `{action}`: `methods` is empty")
        return lambda view: _declare(view, names, permission)

    @overload
    def public(self, target: Blueprint) -> Blueprint: ...
    @overload
    def public(self, target: F) -> F: ...
    def public(self, target: Any) -> Any:
        """Declare a view (or every view of a Blueprint) public: no credential, no check. A
        view of a public blueprint that declares a permission keeps it."""
        if isinstance(target, Blueprint):
            setattr(target, _PUBLIC_BLUEPRINT, True)
            return target
        return _declare(target, _ALL_METHODS, PUBLIC)

    def check_routes(self, app: Flask) -> None:
        """``InvalidInput`` for the first declared view whose resource template names a value
        its URL rule cannot fill. ``init_app`` checks the routes registered by then; routes
        added later are checked on their first request (a 500 there, logged)."""
        for url_rule in app.url_map.iter_rules():
            rules: Rules = getattr(app.view_functions.get(url_rule.endpoint), _RULES, {})
            _check_placeholders(url_rule, rules)

    # --- callbacks -------------------------------------------------------------------------

    def context_provider(
        self, provider: Callable[[Session], Mapping[str, Any]]
    ) -> Callable[[Session], Mapping[str, Any]]:
        """Register a function of the session returning extra request-context keys (called in
        the request). It cannot set ``aws:`` keys: those come from the request and the token."""
        self._context_providers.append(provider)
        return provider

    def on_denied(
        self, callback: Callable[[Denial], Response | None]
    ) -> Callable[[Denial], Response | None]:
        """Register a callback for every refused request (401, 403, 5xx): it may log, or return
        another response. A response under 400 is not sent (the default one is): a callback can
        reword a refusal but never turn it into an allow. The view never runs."""
        self._denied_callbacks.append(callback)
        return callback

    def _context(self, session: Session) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        for provider in self._context_providers:
            for key, value in provider(session).items():
                if not isinstance(key, str) or key.lower().startswith("aws:"):
                    raise ValueError(f"context provider: key `{key}` is not the app's to set")
                extra[key] = value
        return extra

    def _refuse(self, denial: Denial) -> Response:
        for callback in self._denied_callbacks:
            answer = callback(denial)
            if answer is None:
                continue
            if answer.status_code < 400:
                logger.error("on_denied returned status %s: refusal kept", answer.status_code)
                continue
            return answer
        return denial.response


def _declare(view: F, methods: tuple[str, ...], rule: Permission | Public) -> F:
    rules: dict[str, Permission | Public] = dict(getattr(view, _RULES, {}))
    for method in methods:
        if method in rules or (rules and (method == _ANY or _ANY in rules)):
            raise ValueError(f"view `{view.__name__}`: declared twice for `{method}`")
        rules[method] = rule
    setattr(view, _RULES, rules)
    if rule is PUBLIC:
        return view
    wrapper = _async_wrapper(view) if inspect.iscoroutinefunction(view) else _sync_wrapper(view)
    setattr(wrapper, _RULES, rules)
    return cast("F", wrapper)


def _check_enforced() -> None:
    """A guarded view runs only after the hook allowed this request (e.g. not on an app the
    extension was never registered on)."""
    if not g.get("_iamguard_allowed"):
        raise RuntimeError("a guarded view ran without iamguard's check: call init_app(app)")


def _sync_wrapper(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_enforced()
        return view(*args, **kwargs)

    return guarded


def _async_wrapper(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_enforced()
        return await view(*args, **kwargs)

    return guarded


# --- the hooks -----------------------------------------------------------------------------


def _snapshot_view_args(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g._iamguard_view_args = dict(values or {})


def _enforce() -> Response | None:
    """The before_request hook: None lets the view run; a response refuses the request."""
    ctx: Any = g._get_current_object()  # type: ignore[attr-defined]  # the proxies cost
    req: Any = request._get_current_object()  # type: ignore[attr-defined]
    ctx._iamguard_allowed = False
    if req.routing_exception is not None or req.url_rule is None:
        return None  # 404, 405, a redirect: Flask answers, no view runs
    state: _State = current_app.extensions[EXTENSION]
    key = _memo_key(state, req, ctx) if not state.extension._context_providers else None
    if key is not None:
        try:
            remembered: tuple[Session, Decision] | None = state.guard.requests.recall(key)
        except Exception as e:  # decided in full below, which fails closed
            logger.debug("recalling a decision failed: %s", type(e).__name__)
            remembered = None
        if remembered is not None:
            _allow(state, *remembered)
            return None
    session: Session | None = None
    try:
        rule = _rule_for(state)
        if rule is None:
            return None  # Flask's automatic OPTIONS: no view code runs
        if rule is PUBLIC:
            g._iamguard_allowed = True
            return None
        stamp = state.guard.requests.stamp()
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return _refuse(state, missing_credentials_response(), NotAuthenticated("no token"))
        session = state.guard.authenticate(token)
        view_args = g.get("_iamguard_view_args", {})
        resource = rule.resource_for(view_args, session)
        context = {**_request_context(state, stamp.now), **state.extension._context(session)}
        decision = state.guard.authorize(session, rule.action, resource, context)
        if not decision.allowed:
            return _refuse(state, denied_response(decision), session=session, decision=decision)
        if key is not None:
            state.guard.requests.remember(
                key, (session, decision), token=token, session=session, decisions=(decision,),
                stamp=stamp,
            )  # fmt: skip
    except StoreError as e:
        logger.error("store failure on `%s`: %s", request.endpoint, e.message)
        unavailable = StoreUnavailable("the store failed")
        return _refuse(state, error_response(unavailable), e, session=session)
    except IAMGuardError as e:  # a bad credential, a value the resource cannot be named from
        return _refuse(state, error_response(e), e, session=session)
    except Exception as e:  # fail closed: log it, answer 500, never run the view
        logger.exception("iamguard check failed on `%s`", request.endpoint)
        return _refuse(state, error_response(InternalFailure("check failed")), e, session)
    _allow(state, session, decision)
    return None


def _allow(state: _State, session: Session, decision: Decision) -> None:
    g.iam_principal = session
    g.iam_decision = decision
    g._iamguard_bound = set_caller(session, state.guard)
    g._iamguard_allowed = True


# The headers an answer can depend on: the token, and those the HTTP context is read from.
_KEY_HEADERS: Final = (
    "HTTP_AUTHORIZATION", "HTTP_USER_AGENT", "HTTP_REFERER", "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
)  # fmt: skip


def _memo_key(state: _State, req: Any, ctx: Any) -> tuple[Any, ...] | None:
    """Everything the answer to this request can depend on: the app, the routed view and its values
    (as matched, before any preprocessor), the method, the peer and scheme (before ``ProxyFix``)
    and the headers the token and the HTTP context come from. None when a value is not
    hashable (a custom URL converter's): such a request is decided in full."""
    environ = req.environ
    original = environ.get("werkzeug.proxy_fix.orig") or {}
    key = (
        state.memo_id, req.method, req.url_rule.endpoint,
        tuple(ctx.get("_iamguard_view_args", {}).items()),
        original.get("REMOTE_ADDR", environ.get("REMOTE_ADDR")),
        original.get("wsgi.url_scheme", environ.get("wsgi.url_scheme")),
        *[environ.get(name) for name in _KEY_HEADERS],
    )  # fmt: skip
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _unbind(error: BaseException | None) -> None:
    """The teardown hook: reset what ``_enforce`` bound. Flask pushes and pops its own
    context variables in this same context, so the tokens are valid here."""
    bound = g.pop("_iamguard_bound", None)
    if bound is not None:
        reset_caller(bound)


def _rule_for(state: _State) -> Permission | Public | None:
    """The routed view's rule for this method, or AccessDenied for an undeclared one; None for
    Flask's automatic OPTIONS."""
    url_rule = cast(Rule, request.url_rule)
    if request.method == "OPTIONS" and getattr(url_rule, "provide_automatic_options", False):
        return None
    endpoint = cast(str, request.endpoint)
    view = current_app.view_functions.get(endpoint)
    rules: Rules = getattr(view, _RULES, {})
    method = "GET" if request.method == "HEAD" and "HEAD" not in rules else request.method
    rule = rules.get(method) or rules.get(_ANY)
    if rule is None and (endpoint in state.public_endpoints or _in_public_blueprint()):
        return PUBLIC
    if rule is None:
        logger.warning("undeclared view `%s` (%s) denied", endpoint, request.method)
        raise AccessDenied("this route declares no permission: it is denied to everyone")
    key = (endpoint, url_rule.rule)
    if key not in state.checked_rules:
        try:
            _check_placeholders(url_rule, rules)
        except IAMGuardError as e:  # the app's mistake, not the caller's: a 500, logged
            raise RuntimeError(f"view `{endpoint}`: {e.message}") from e
        state.checked_rules.add(key)
    return rule


def _check_placeholders(url_rule: Rule, rules: Rules) -> None:
    for rule in rules.values():
        if isinstance(rule, Permission):
            rule.check_placeholders(url_rule.arguments)


def _in_public_blueprint() -> bool:
    blueprints = current_app.blueprints
    return any(getattr(blueprints.get(n), _PUBLIC_BLUEPRINT, False) for n in request.blueprints)


def _request_context(state: _State, now: datetime) -> dict[str, str]:
    environ = request.environ
    original = environ.get("werkzeug.proxy_fix.orig") or {}  # the peer before ProxyFix
    peer = original.get("REMOTE_ADDR", environ.get("REMOTE_ADDR"))
    headers = {k.lower(): v for k, v in request.headers.items()}
    return http_context(
        peer=peer, headers=headers, scheme=original.get("wsgi.url_scheme", request.scheme),
        trusted_proxies=state.trusted_proxies, now=now,
    )  # fmt: skip


def _refuse(
    state: _State, raw: RawResponse, error: Exception | None = None,
    session: Session | None = None, decision: Decision | None = None,
) -> Response:  # fmt: skip
    status, headers, body = raw
    response = Response(body, status=status, headers=headers)
    denial = Denial(status, response, session=session, decision=decision, error=error)
    return state.extension._refuse(denial)


# --- config --------------------------------------------------------------------------------


def _names(key: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"config `{key}`: must be a list of strings, not `{value!r}`")
    names = list(value)
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"config `{key}`: must be a list of non-empty strings")
    return names


def _networks(value: Any) -> tuple[Network, ...]:
    networks = []
    for cidr in _names("IAMGUARD_TRUSTED_PROXIES", value):
        try:
            networks.append(ipaddress.ip_network(cidr))
        except ValueError as e:
            raise ValueError(f"config `IAMGUARD_TRUSTED_PROXIES`: `{cidr}`: {e}") from e
    return tuple(networks)
