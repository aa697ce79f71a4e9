"""The token endpoint (``token_endpoint``) in Starlette/FastAPI and Flask: reading the request,
sending the response, nothing else.

::

    app = Starlette(routes=[*sts_routes(guard), ...])      # or app.router.routes.extend(...)
    app.register_blueprint(sts_blueprint(guard))            # Flask

Every route is declared public for ``IAMGuardMiddleware`` and the Flask ``IAMGuard`` (the
endpoint authenticates its callers itself). A route takes every method, so that another one
than its own is answered by the endpoint: 405 with a JSON body and ``Allow``. A body is read
up to ``MAX_BODY + 1`` bytes and no further; a ``Content-Length`` over ``MAX_BODY`` is refused
unread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from flask import Blueprint, request
from flask import Response as FlaskResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from iamguard.guard import Guard
from iamguard.sts import STS

from ._http import Network
from .flask import IAMGuard
from .starlette import public
from .token_endpoint import MAX_BODY, ROUTES, TokenEndpoint, TokenRequest, declared_too_large

__all__ = ["sts_blueprint", "sts_routes"]

_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def sts_routes(
    guard: Guard, *, sts: STS | None = None, trusted_proxies: Sequence[Network] = ()
) -> list[Route]:
    """Starlette routes for the token endpoint (mount them at the app's root)."""
    endpoint = TokenEndpoint(guard, sts=sts, trusted_proxies=trusted_proxies)

    def route(path: str) -> Route:
        @public
        async def handle(request: Request) -> Response:
            token_request = await _starlette_request(request)
            status, headers, body = endpoint.handle(path, token_request)
            return Response(body, status_code=status, headers=dict(headers))

        return Route(path, handle, methods=_METHODS, name=f"iamguard-sts:{path}")

    return [route(path) for path in ROUTES]


async def _starlette_request(request: Request) -> TokenRequest:
    headers = {k: ",".join(request.headers.getlist(k)) for k in request.headers}
    body = b""
    oversize = declared_too_large(headers)
    if request.method == "POST" and not oversize:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY:
                break  # read no further
        body = b"".join(chunks)[: MAX_BODY + 1]
    client = request.client
    return TokenRequest(
        method=request.method, headers=headers, body=body,
        peer=client.host if client is not None else None, scheme=request.url.scheme,
        oversize=oversize,
    )  # fmt: skip


def sts_blueprint(
    guard: Guard,
    *,
    sts: STS | None = None,
    trusted_proxies: Sequence[Network] = (),
    name: str = "iamguard_sts",
) -> Blueprint:
    """A Flask blueprint for the token endpoint (register it without a URL prefix)."""
    endpoint = TokenEndpoint(guard, sts=sts, trusted_proxies=trusted_proxies)
    blueprint = Blueprint(name, __name__)

    def view(path: str) -> Any:
        def handle() -> FlaskResponse:
            headers: dict[str, str] = {}
            for header, value in request.headers.items():  # a repeated header: joined with ","
                key = header.lower()
                headers[key] = f"{headers[key]},{value}" if key in headers else value
            oversize = declared_too_large(headers)
            body = b""
            if request.method == "POST" and not oversize:
                body = _read_limited(request.stream)
            original = request.environ.get("werkzeug.proxy_fix.orig") or {}
            token_request = TokenRequest(
                method=request.method, headers=headers, body=body,
                peer=original.get("REMOTE_ADDR", request.environ.get("REMOTE_ADDR")),
                scheme=original.get("wsgi.url_scheme", request.scheme), oversize=oversize,
            )  # fmt: skip
            status, answer_headers, answer = endpoint.handle(path, token_request)
            return FlaskResponse(answer, status=status, headers=answer_headers)

        handle.__name__ = "sts_" + path.strip("/").replace("/", "_").replace(".", "_")
        return handle

    for path in ROUTES:
        blueprint.add_url_rule(
            path, view_func=view(path), methods=_METHODS, provide_automatic_options=False
        )
    return IAMGuard().public(blueprint)


def _read_limited(stream: Any) -> bytes:
    """At most ``MAX_BODY + 1`` bytes of a WSGI body (a read may return fewer than asked)."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY:
        chunk = stream.read(MAX_BODY + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
