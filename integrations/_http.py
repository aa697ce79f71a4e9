"""What every adapter shares, with no web framework: credentials from headers, error responses,
route permissions, the request context and a conservative path check. Small and pure.

Responses are ``(status, headers, body)`` with lowercase header names (ASGI's style); adapters
convert them to their framework's response.

Route permissions (``Permission``) fill a resource template such as
``arn:iamguard:images::{account}:image/{image_id}``:

- a placeholder takes the route's path parameter of that name first, else the principal's
  ``{account}``, ``{principal}`` (its ARN) or ``{username}`` (a user's name; users only). A
  path parameter wins because the resource must name what the route will touch: a route
  ``/accounts/{account}/...`` is authorized against the account in its URL, never the caller's;
- a path parameter's value is percent-encoded as a URL path segment spells it, and ``:``, ``/``,
  ``*``, ``?`` and ``%`` are encoded too (``image_id="a:b/*"`` -> ``image/a%3Ab%2F%2A``): a value
  can never add an ARN segment or a path level, and an encoded resource names exactly one
  value, so a policy can grant one (``image/a%2A`` matches only ``a*``). ``{name:path}`` keeps
  ``/`` (S3-style keys; it must end the template) and refuses an empty, ``.`` or ``..`` segment
  with ``InvalidInput`` (400). Principal values are inserted as they are (they come from a
  verified token);
- a value the request lacks (a missing or empty path parameter, ``{username}`` for a role
  session) fails closed: ``AccessDenied`` (403), since the resource cannot be named.
  ``check_placeholders`` finds placeholders no route parameter can fill when it is declared.

Route rules are a ``Permission`` or ``PUBLIC``; an undeclared route is denied.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Final, NamedTuple
from urllib.parse import quote, unquote

from iamguard.errors import (
    AccessDenied,
    IAMGuardError,
    InvalidClientTokenId,
    InvalidInput,
    NotAuthenticated,
)
from iamguard.policy import Decision
from iamguard.sessions import USER, Session
from iamguard.throttle import Throttled

__all__ = [
    "PRINCIPAL_PLACEHOLDERS",
    "PUBLIC",
    "Permission",
    "Public",
    "Response",
    "basic_credentials",
    "bearer_token",
    "denied_response",
    "error_response",
    "http_context",
    "missing_credentials_response",
    "normalize_path",
]

Response = tuple[int, list[tuple[str, str]], bytes]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# --- credentials -------------------------------------------------------------------------------

_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def _credential(authorization: str, scheme: str) -> str:
    """The single token68 after ``scheme`` (case-insensitive), or InvalidClientTokenId."""
    header = "the `Authorization` header"
    parts = [part for part in authorization.strip(" \t").split(" ") if part] or [""]
    given = parts[0]
    if not given:
        raise InvalidClientTokenId(f"{header} is empty")
    if not (given.isascii() and given.lower() == scheme.lower()):
        raise InvalidClientTokenId(f"{header} does not use the `{scheme}` scheme")
    if len(parts) == 1:
        raise InvalidClientTokenId(f"{header} has no {scheme.lower()} credential")
    if len(parts) > 2:
        raise InvalidClientTokenId(f"{header} has more than one {scheme.lower()} credential")
    if not _B64TOKEN.fullmatch(parts[1]):
        raise InvalidClientTokenId(
            f"{header}'s {scheme.lower()} credential has characters outside the b64token set"
        )
    return parts[1]


def bearer_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (RFC 6750 §2.1); None when the header is
    absent (anonymous); ``InvalidClientTokenId`` when it is there but malformed. The message
    never repeats the header's text: it may hold a secret."""
    if authorization is None:
        return None
    return _credential(authorization, "Bearer")


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(access key id, secret)`` from ``Authorization: Basic base64(id:secret)`` (RFC 7617,
    UTF-8); None when the header is absent; ``InvalidClientTokenId`` when it is malformed."""
    if authorization is None:
        return None
    token = _credential(authorization, "Basic")
    try:
        text = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise InvalidClientTokenId("the basic credential is not base64 of UTF-8 text") from e
    key_id, colon, secret = text.partition(":")
    if not colon or not key_id or not secret:
        raise InvalidClientTokenId("the basic credential is not `id:secret`")
    if _CONTROL.search(text):
        raise InvalidClientTokenId("the basic credential has control characters")
    return key_id, secret


# --- responses ---------------------------------------------------------------------------------

_JSON: Final = ("content-type", "application/json")
_NOT_QDTEXT: Final = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")  # RFC 6750 §3 error_description
_DESCRIPTION_LIMIT: Final = 200
# A 5xx message may name a database host or driver detail: the caller gets a generic one (the
# full error is the app's to log).
_SERVER_MESSAGES: Final = {503: "the service is unavailable: try again later"}
_SERVER_MESSAGE: Final = "the service failed to answer"


def _body(code: str, message: str) -> bytes:
    error = {"Error": {"Code": code, "Message": message}}
    return json.dumps(error, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _description(message: str) -> str:
    """The message as an RFC 6750 ``error_description``: printable ASCII, no ``"`` or ``\\``."""
    text = message.replace('"', "'").replace("\\", "/")
    return _NOT_QDTEXT.sub("?", text)[:_DESCRIPTION_LIMIT]


def error_response(error: IAMGuardError) -> Response:
    """The response for an error: its status, and ``{"Error": {"Code", "Message"}}``.

    A 401 challenges with ``WWW-Authenticate: Bearer error="invalid_token", error_description=
    "..."`` (RFC 6750 §3); ``Throttled`` adds ``Retry-After``; a 5xx says only that the service
    failed, never the error's own message."""
    status = error.status
    message = error.message if status < 500 else _SERVER_MESSAGES.get(status, _SERVER_MESSAGE)
    headers = [_JSON]
    if isinstance(error, NotAuthenticated):
        challenge = f'Bearer error="invalid_token", error_description="{_description(message)}"'
        headers.append(("www-authenticate", challenge))
    if isinstance(error, Throttled):
        headers.append(("retry-after", str(max(0, int(error.retry_after)))))
    return status, headers, _body(error.code, message)


def missing_credentials_response() -> Response:
    """401 for a request with no credential on a route that needs one: ``WWW-Authenticate:
    Bearer`` with no error code (RFC 6750 §3.1), and AWS's ``MissingAuthenticationToken``."""
    message = "the request has no credential: send an `Authorization: Bearer` header"
    headers = [_JSON, ("www-authenticate", "Bearer")]
    return 401, headers, _body("MissingAuthenticationToken", message)


def denied_response(decision: Decision) -> Response:
    """403 with AWS's sentence for a denial (which kind of policy denied, never its text)."""
    if decision.allowed:
        raise ValueError("denied_response needs a denial, and the decision allows")
    return 403, [_JSON], _body("AccessDenied", decision.message())


# --- route permissions -------------------------------------------------------------------------


class Public(Enum):
    """The marker of a route declared public: no credential needed, nothing authorized."""

    PUBLIC = "public"

    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC: Final = Public.PUBLIC

PRINCIPAL_PLACEHOLDERS: Final = ("account", "principal", "username")
_ACTION: Final = re.compile(r"[A-Za-z0-9_-]+:[A-Za-z0-9_-]+")
_PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")
_SEGMENT_SAFE: Final = "!$&'()+,;=@"  # RFC 3986 pchar sub-delims, without `*` and `:`


class _Slot(NamedTuple):
    name: str
    path: bool  # ``{name:path}``: keeps `/`


def _compile(action: str, template: str) -> tuple[str | _Slot, ...]:
    where = f"permission `{action}`: resource template `{template}`"
    parts: list[str | _Slot] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(template[position : match.start()])
        parts.append(_Slot(match[1], bool(match[2])))
        position = match.end()
    parts.append(template[position:])
    literal = "".join(p for p in parts if isinstance(p, str))
    if "{" in literal or "}" in literal:
        raise InvalidInput(f"{where}: a `{{` or `}}` is not part of a `{{name}}` placeholder")
    for i, part in enumerate(parts):
        if isinstance(part, _Slot) and part.path and any(parts[i + 1 :]):
            raise InvalidInput(f"{where}: `{{{part.name}:path}}` must end the template")
    return tuple(p for p in parts if p != "")


@dataclass(frozen=True)
class Permission:
    """A route's rule: the ``action`` it performs and the ``resource`` it touches, a template
    (compiled once) that ``resource_for`` fills for each request (see the module docstring)."""

    action: str
    resource: str = "*"
    _parts: tuple[str | _Slot, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _ACTION.fullmatch(self.action):
            raise InvalidInput(f"permission `{self.action}`: an action is `service:ActionName`")
        object.__setattr__(self, "_parts", _compile(self.action, self.resource))

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The template's placeholder names, in order."""
        return tuple(p.name for p in self._parts if isinstance(p, _Slot))

    def check_placeholders(self, path_param_names: Iterable[str]) -> None:
        """``InvalidInput`` unless every placeholder is a path parameter of the route or one of
        ``account``, ``principal``, ``username``: call it when the route is declared."""
        known = set(path_param_names)
        unknown = [
            n for n in self.placeholders if n not in known and n not in PRINCIPAL_PLACEHOLDERS
        ]
        if unknown:
            params = ", ".join(f"`{n}`" for n in sorted(known)) or "none"
            raise InvalidInput(
                f"permission `{self.action}`: resource template `{self.resource}`: "
                f"`{{{unknown[0]}}}` is neither a path parameter of the route ({params}) "
                "nor `{account}`, `{principal}` or `{username}`"
            )

    def resource_for(self, path_params: Mapping[str, object], session: Session) -> str:
        """The resource ARN for this request. ``AccessDenied`` when a value is missing,
        ``InvalidInput`` for a ``{name:path}`` value with an empty, ``.`` or ``..`` segment."""
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            raw = path_params.get(part.name)
            value = "" if raw is None else str(raw)  # a converted parameter: an int, a UUID
            if value:
                out.append(self._encode(part, value))
                continue
            principal_value = "" if raw is not None else _principal_value(part.name, session)
            if not principal_value:
                raise AccessDenied(
                    f"permission `{self.action}`: the request has no value for `{{{part.name}}}`"
                )
            out.append(principal_value)
        return "".join(out)

    def _encode(self, slot: _Slot, value: str) -> str:
        if not slot.path:
            return quote(value, safe=_SEGMENT_SAFE)
        if any(s in ("", ".", "..") for s in value.split("/")):
            raise InvalidInput(
                f"permission `{self.action}`: path parameter `{slot.name}` has an empty, "
                "`.` or `..` segment"
            )
        return quote(value, safe=_SEGMENT_SAFE + "/")


def _principal_value(name: str, session: Session) -> str:
    if name == "account":
        return session.account
    if name == "principal":
        return session.principal
    if name == "username" and session.principal_type == USER:
        return session.name
    return ""


# --- request context ---------------------------------------------------------------------------

_PORTED_V4: Final = re.compile(r"([0-9.]+):[0-9]+")
_BRACKETED_V6: Final = re.compile(r"\[([^\]]+)\](?::[0-9]+)?")
_SECURE_SCHEMES: Final = ("https", "wss")


@functools.lru_cache(maxsize=4096)  # a peer's address is parsed once, not per request
def _address(text: str) -> Address | None:
    """An address from a peer or a forwarded entry (``1.2.3.4``, ``1.2.3.4:80``, ``::1``,
    ``[::1]:80``), IPv4-mapped IPv6 as IPv4, without a zone (``%eth0``); None if not one."""
    text = text.strip(" \t")
    match = _BRACKETED_V6.fullmatch(text) or _PORTED_V4.fullmatch(text)
    try:
        address = ipaddress.ip_address(match[1] if match else text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return address
    return address.ipv4_mapped or ipaddress.IPv6Address(int(address))  # int() drops the zone


def _forwarded_source(peer: Address, forwarded: str, proxies: Sequence[Network]) -> Address | None:
    """Walk ``X-Forwarded-For`` from the right: each entry was written by the trusted hop on its
    right. The first entry that is not a trusted proxy is the client; if every one is trusted,
    the left-most. An unreadable entry stops the walk with no address: the hop it names is
    unknown, so whatever lies left of it may be forged."""
    source = peer
    for entry in reversed(forwarded.split(",")):
        if not entry.strip(" \t"):
            continue  # RFC 9110 §5.6.1: empty list elements are ignored
        address = _address(entry)
        if address is None:
            return None
        source = address
        if not any(address in network for network in proxies):
            break
    return source


_last_second: tuple[int, str, str] = (-1, "", "")


def _time_keys(now: datetime) -> tuple[str, str]:
    """``aws:CurrentTime`` and ``aws:EpochTime`` for ``now`` (UTC), formatted once a second."""
    global _last_second  # noqa: PLW0603 -- a one-entry memo; swapping a tuple is atomic
    second = int(now.timestamp())
    memo = _last_second
    if memo[0] != second:
        memo = (second, now.strftime("%Y-%m-%dT%H:%M:%SZ"), str(second))
        _last_second = memo
    return memo[1], memo[2]


def http_context(
    *,
    peer: str | None,
    headers: Mapping[str, str],
    scheme: str,
    trusted_proxies: Sequence[Network],
    now: datetime,
) -> dict[str, str]:
    """The request's AWS global condition keys.

    - ``aws:SourceIp``: the peer; when the peer is in ``trusted_proxies``, the client that
      ``X-Forwarded-For`` names (see ``_forwarded_source``). Absent when it cannot be known (no
      peer, a peer that is not an address such as a Unix socket, an unreadable forwarded
      entry): a missing key fails ``IpAddress`` and satisfies ``NotIpAddress``, so an unknown
      address is never granted anything.
    - ``aws:SecureTransport``: ``"true"`` for ``https``/``wss``, or from a trusted proxy whose
      ``X-Forwarded-Proto`` lists only ``https``; else ``"false"``.
    - ``aws:UserAgent``, ``aws:Referer``: when the request has them.
    - ``aws:CurrentTime`` (``2024-05-06T07:08:09Z``), ``aws:EpochTime`` (whole seconds).

    ``headers`` has lowercase names. A header sent on several lines must be joined with ``,``
    in order (RFC 9110 §5.3) by the adapter; ``Forwarded`` (RFC 7239) is not read.
    ``now`` must be timezone-aware (``ValueError`` otherwise).
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    current_time, epoch_time = _time_keys(now.astimezone(timezone.utc))
    context = {"aws:CurrentTime": current_time, "aws:EpochTime": epoch_time}
    address = _address(peer) if peer is not None else None
    trusted = address is not None and any(address in n for n in trusted_proxies)
    if address is not None and trusted:
        forwarded = headers.get("x-forwarded-for", "")
        address = _forwarded_source(address, forwarded, trusted_proxies)
    if address is not None:
        context["aws:SourceIp"] = str(address)
    protos = [p.strip(" \t").lower() for p in headers.get("x-forwarded-proto", "").split(",")]
    secure = scheme.lower() in _SECURE_SCHEMES or (
        trusted and all(p in _SECURE_SCHEMES for p in protos) and any(protos)
    )
    context["aws:SecureTransport"] = "true" if secure else "false"
    for header, key in (("user-agent", "aws:UserAgent"), ("referer", "aws:Referer")):
        if header in headers:
            context[key] = headers[header]
    return context


# --- paths -------------------------------------------------------------------------------------

_REFUSED_ESCAPE: Final = re.compile(r"%(?:2f|5c|00)", re.IGNORECASE)
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ANY_ESCAPE: Final = re.compile(r"%[0-9A-Fa-f]{2}")


def normalize_path(path: str) -> str | None:
    """The decoded path of a RAW request path (no query string), or None to refuse it.

    Refused: a path not starting with ``/``; non-ASCII or ``\\`` in the raw path; an encoded
    ``/``, ``\\`` or NUL (``%2F``, ``%5C``, ``%00``); a ``%`` without two hex digits; UTF-8
    that does not decode; control characters; a ``.`` or ``..`` segment or an empty one (``//``;
    a trailing ``/`` is fine), checked after decoding so ``%2e%2e`` counts; and a path still
    holding an escape once decoded (double encoding, ``%252e``).

    It never rewrites a path into another one (no dot removal, no Unicode normalization, no
    case folding): a path is accepted as the router will see it, or refused. It does not know
    the router: adapters must authorize on the path their router actually routes.
    """
    if not path.startswith("/") or not path.isascii() or "\\" in path:
        return None
    if _REFUSED_ESCAPE.search(path) or _BAD_ESCAPE.search(path):
        return None
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if _CONTROL.search(decoded) or _ANY_ESCAPE.search(decoded):
        return None
    segments = decoded.split("/")[1:]
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if segment in (".", "..") or (not segment and i != last):
            return None
    return decoded
