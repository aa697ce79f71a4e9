"""The token endpoint, with no web framework: JSON requests in, ``(status, headers, body)`` out.

It speaks JSON with AWS STS's field names. ``token_routes`` mounts it in Starlette/FastAPI and
Flask; every route is public there (the endpoint authenticates the caller itself).

=================================  ==========================================================
``POST /sts/session``                    sign an IAM user in: ``UserName`` + ``Password`` in the
                                         body, or ``Authorization: Basic base64(AKIA...:secret)``
``POST /sts/service-session``            sign a service principal in: ``Authorization: Basic
                                         base64(service-name:secret)``
``POST /sts/assume-role``                ``Authorization: Bearer <token>``: AssumeRole
``GET /sts/caller-identity``             ``Authorization: Bearer <token>``: GetCallerIdentity
``GET /.well-known/jwks.json``           the public keys that verify session tokens
``GET /sts/openapi.json``                ``openapi_document()``
=================================  ==========================================================

A request body is a JSON object (``Content-Type: application/json``, UTF-8, at most
``MAX_BODY`` bytes, read no further) with only the fields its operation lists, each of its
JSON type: anything else is 400 ``InvalidInput`` naming the field, before STS is called.
``null`` counts as absent. Errors are ``{"Error": {"Code", "Message"}}`` (``error_response``);
another method on a listed path is 405 with ``Allow``. The client's address for sign-in
throttling is the peer (or, from ``trusted_proxies``, the client their ``X-Forwarded-For``
names), as ``aws:SourceIp``; assume-role passes the request's context (``aws:SourceIp``,
``aws:SecureTransport``, ...) to the trust policy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from iamguard.errors import (
    IAMGuardError,
    InternalFailure,
    InvalidInput,
    NotAuthenticated,
    StoreError,
    StoreUnavailable,
)
from iamguard.guard import Guard
from iamguard.sessions import Session
from iamguard.sts import STS, Credentials, ValidationError

from ._http import (
    Network,
    Response,
    basic_credentials,
    bearer_token,
    error_response,
    http_context,
    missing_credentials_response,
)

__all__ = [
    "MAX_BODY",
    "ROUTES",
    "TokenEndpoint",
    "TokenRequest",
    "declared_too_large",
    "openapi_document",
]

log = logging.getLogger(__name__)

MAX_BODY: Final = 64 * 1024  # bytes of a request body; adapters read at most MAX_BODY + 1
_JSON: Final = ("content-type", "application/json")
_NO_STORE: Final = [("cache-control", "no-store"), ("pragma", "no-cache")]
_BASIC_CHALLENGE: Final = 'Basic realm="iamguard-sts", charset="UTF-8"'


class _MethodNotAllowed(IAMGuardError):
    code = "MethodNotAllowed"
    status = 405


# --- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    """One request as the adapter read it. ``headers`` has lowercase names (a repeated header
    joined with ``,``); ``body`` is at most ``MAX_BODY + 1`` bytes; ``oversize`` says the body
    was refused unread (its ``Content-Length`` was over ``MAX_BODY``)."""

    method: str
    headers: Mapping[str, str]
    body: bytes = b""
    peer: str | None = None
    scheme: str = "http"
    oversize: bool = False


def declared_too_large(headers: Mapping[str, str]) -> bool:
    """Does ``Content-Length`` announce more than ``MAX_BODY`` bytes? (Then read nothing.)"""
    value = headers.get("content-length", "").strip()
    return value.isdigit() and int(value) > MAX_BODY


# --- fields: one table for parsing and for the OpenAPI schemas --------------------------------

_STRING: Final = "string"
_INTEGER: Final = "integer"
_POLICY: Final = "policy"  # a JSON policy document, as a string (AWS) or an object
_TAGS: Final = "tags"  # [{"Key", "Value"}]
_POLICY_ARNS: Final = "policy_arns"  # [{"arn"}]
_STRINGS: Final = "strings"


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str
    description: str
    required: bool = False


_ACCOUNT = _Field("AccountId", _STRING, "The 12-digit account to sign in to.", required=True)
_SERIAL = _Field("SerialNumber", _STRING, "The MFA device's serial number (ARN).")
_CODE = _Field("TokenCode", _STRING, "The MFA device's current six-digit code.")
_SIGN_IN_FIELDS: Final = (
    _ACCOUNT,
    _Field("UserName", _STRING, "The IAM user (with `Password`; not with Basic credentials)."),
    _Field("Password", _STRING, "The user's password (with `UserName`)."),
    _Field("DurationSeconds", _INTEGER, "Session length, 900-129600 (default 43200)."),
    _SERIAL,
    _CODE,
)
_SERVICE_FIELDS: Final = (
    _ACCOUNT,
    _Field("DurationSeconds", _INTEGER, "Session length, 900-43200 (default 3600)."),
)
_ASSUME_ROLE_FIELDS: Final = (
    _Field("RoleArn", _STRING, "The ARN of the role to assume.", required=True),
    _Field("RoleSessionName", _STRING, "2-64 of letters, digits and +=,.@_-.", required=True),
    _Field("DurationSeconds", _INTEGER, "900 up to the role's maximum (default 3600)."),
    _Field("Policy", _POLICY, "A session policy: a JSON document (a string, or an object)."),
    _Field("PolicyArns", _POLICY_ARNS, "Managed policies as session policies (at most 10)."),
    _Field("Tags", _TAGS, "Session tags (at most 50)."),
    _Field("TransitiveTagKeys", _STRINGS, "Keys of `Tags` that pass on to chained sessions."),
    _Field("ExternalId", _STRING, "The external id the role's trust policy may require."),
    _Field("SourceIdentity", _STRING, "The source identity, fixed for the whole role chain."),
    _SERIAL,
    _CODE,
)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _wrong(name: str, expected: str, value: object) -> InvalidInput:
    return InvalidInput(f"`{name}` must be {expected}, not {_type_name(value)}")


def _string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong(name, "a string", value)
    return value


def _convert(field: _Field, value: object) -> Any:
    name = field.name
    if field.kind == _STRING:
        return _string(name, value)
    if field.kind == _INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(name, "an integer", value)
        return value
    if field.kind == _POLICY:
        if not isinstance(value, str | dict):
            raise _wrong(name, "a JSON policy document (a string or an object)", value)
        return value
    if not isinstance(value, list):
        raise _wrong(name, "an array", value)
    if field.kind == _STRINGS:
        return [_string(f"{name}[{i}]", item) for i, item in enumerate(value)]
    if field.kind == _POLICY_ARNS:
        arns = []
        for i, item in enumerate(value):
            where = f"{name}[{i}]"
            if not isinstance(item, dict):
                raise _wrong(where, 'an object `{"arn": ...}`', item)
            extra = sorted(set(item) - {"arn"})
            if extra:
                raise InvalidInput(f"`{where}`: unknown field `{extra[0]}`: only `arn`")
            if "arn" not in item:
                raise InvalidInput(f"`{where}.arn` is required")
            arns.append(_string(f"{where}.arn", item["arn"]))
        return arns
    tags: dict[str, str] = {}  # _TAGS
    for i, item in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(item, dict):
            raise _wrong(where, 'an object `{"Key": ..., "Value": ...}`', item)
        extra = sorted(set(item) - {"Key", "Value"})
        if extra:
            raise InvalidInput(f"`{where}`: unknown field `{extra[0]}`: only `Key` and `Value`")
        for part in ("Key", "Value"):
            if part not in item:
                raise InvalidInput(f"`{where}.{part}` is required")
        key = _string(f"{where}.Key", item["Key"])
        if key in tags:
            raise ValidationError(f"duplicate tag keys found: `{key}`")
        tags[key] = _string(f"{where}.Value", item["Value"])
    return tags


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidInput(f"the request body names `{key}` twice")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise InvalidInput(f"the request body is not valid JSON: `{name}` is not a JSON value")


def _media_type(headers: Mapping[str, str]) -> None:
    """``application/json``, with no ``charset`` or ``charset=utf-8``; InvalidInput otherwise."""
    value = headers.get("content-type")
    if value is None:
        raise InvalidInput("the request has no `Content-Type`: send `application/json`")
    media, *params = (p.strip() for p in value.split(";"))
    if media.lower() != "application/json":
        raise InvalidInput(
            f"`Content-Type` must be `application/json`, not `{media[:60]}`"
            if media.isprintable() else "`Content-Type` must be `application/json`"
        )  # fmt: skip
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() != "utf-8":
            raise InvalidInput("`Content-Type`: the only charset accepted is `utf-8`")


def _parse(request: TokenRequest, fields: Sequence[_Field]) -> dict[str, Any]:
    """The body's fields (converted), by name; absent or null fields are left out."""
    if request.oversize or len(request.body) > MAX_BODY:
        raise InvalidInput(f"the request body is larger than {MAX_BODY} bytes")
    _media_type(request.headers)
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the request body is not UTF-8") from None
    if not text.strip():
        raise InvalidInput("the request body is empty: send a JSON object")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"the request body is not valid JSON: {e.msg} at line {e.lineno}, "
                           f"column {e.colno}") from None  # fmt: skip
    except (ValueError, RecursionError):  # a huge integer, or nesting too deep
        raise InvalidInput("the request body is not JSON this endpoint can read") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"the request body must be a JSON object, not {_type_name(data)}")
    known = {f.name: f for f in fields}
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        listed = ", ".join(f"`{n}`" for n in known)
        raise InvalidInput(f"unknown field `{unknown[0][:80]}`: the fields are {listed}")
    values: dict[str, Any] = {}
    for field in fields:
        value = data.get(field.name)
        if value is None:
            if field.required:
                raise InvalidInput(f"`{field.name}` is required")
            continue
        values[field.name] = _convert(field, value)
    return values


# --- responses ---------------------------------------------------------------------------------


def _json(status: int, data: Mapping[str, Any], *extra: tuple[str, str]) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return status, [_JSON, *extra], body


def _credentials(credentials: Credentials) -> dict[str, str]:
    return {"SessionToken": credentials.session_token, "Expiration": credentials.expiration}


# --- the endpoint ------------------------------------------------------------------------------


Operation = Callable[["TokenEndpoint", TokenRequest], Response]


class TokenEndpoint:
    """The token endpoint over a ``Guard``: ``handle(path, request)`` for each of ``ROUTES``.

    ``sts`` defaults to ``guard.sts`` (pass another to configure sign-in throttling, say);
    ``trusted_proxies`` are networks whose ``X-Forwarded-For`` names the client."""

    def __init__(
        self, guard: Guard, *, sts: STS | None = None, trusted_proxies: Sequence[Network] = ()
    ) -> None:
        self.guard = guard
        self.sts = sts or guard.sts
        self.trusted_proxies = tuple(trusted_proxies)

    def handle(self, path: str, request: TokenRequest) -> Response:
        """The response to ``request`` on ``path`` (one of ``ROUTES``). Never raises: an error
        is its response; a store failure is 503 and anything unexpected 500 (both logged, with
        a generic body)."""
        methods = ROUTES[path]
        operation = methods.get(request.method.upper())
        try:
            if operation is None:
                allowed = ", ".join(methods)
                status, headers, body = error_response(
                    _MethodNotAllowed(f"`{path}` answers {allowed} only")
                )
                return status, [*headers, ("allow", allowed)], body
            return operation(self, request)
        except StoreError as e:
            log.error("store failure on `%s`: %s", path, e.message)
            return error_response(StoreUnavailable("the store failed"))
        except IAMGuardError as e:
            return error_response(e)
        except Exception:
            log.exception("token endpoint failed on `%s`", path)
            return error_response(InternalFailure("the token endpoint failed"))

    # --- operations --------------------------------------------------------------------------

    def sign_in(self, request: TokenRequest) -> Response:
        """``POST /sts/session``: GetSessionToken for an IAM user."""
        values = _parse(request, _SIGN_IN_FIELDS)
        basic = _basic(request)
        if basic is not None and ("UserName" in values or "Password" in values):
            raise InvalidInput(
                "sign in with Basic access key credentials or `UserName` and `Password`, not both"
            )
        if basic is None and not ("UserName" in values and "Password" in values):
            raise InvalidInput(
                "sign in with `UserName` and `Password`, or an access key as Basic credentials"
            )
        key_id, secret = basic if basic is not None else (None, None)
        try:
            credentials = self.sts.get_session_token(
                values["AccountId"], user_name=values.get("UserName"),
                password=values.get("Password"), access_key_id=key_id,
                secret_access_key=secret, serial_number=values.get("SerialNumber"),
                token_code=values.get("TokenCode"),
                source_ip=self._context(request).get("aws:SourceIp"),
                **_duration(values),
            )  # fmt: skip
        except NotAuthenticated as e:
            return _basic_challenge(error_response(e))
        return _json(200, {"Credentials": _credentials(credentials)}, *_NO_STORE)

    def service_session(self, request: TokenRequest) -> Response:
        """``POST /sts/service-session``: a session for a service principal."""
        values = _parse(request, _SERVICE_FIELDS)
        basic = _basic(request)
        if basic is None:
            return _basic_challenge(missing_credentials_response())
        name, secret = basic
        try:
            credentials = self.sts.get_service_session(
                values["AccountId"], name, secret, **_duration(values)
            )
        except NotAuthenticated as e:
            return _basic_challenge(error_response(e))
        return _json(200, {"Credentials": _credentials(credentials)}, *_NO_STORE)

    def assume_role(self, request: TokenRequest) -> Response:
        """``POST /sts/assume-role``: AssumeRole for the bearer token's session."""
        caller = self._caller(request)
        if not isinstance(caller, Session):
            return caller
        values = _parse(request, _ASSUME_ROLE_FIELDS)
        credentials = self.sts.assume_role(
            caller, values["RoleArn"], values["RoleSessionName"],
            policy=values.get("Policy"), policy_arns=values.get("PolicyArns", ()),
            tags=values.get("Tags"), transitive_tag_keys=values.get("TransitiveTagKeys", ()),
            external_id=values.get("ExternalId"), source_identity=values.get("SourceIdentity"),
            serial_number=values.get("SerialNumber"), token_code=values.get("TokenCode"),
            context=self._context(request), **_duration(values),
        )  # fmt: skip
        session = credentials.session
        answer: dict[str, Any] = {
            "Credentials": _credentials(credentials),
            "AssumedRoleUser": {"Arn": session.principal, "AssumedRoleId": session.user_id},
        }
        if session.source_identity:
            answer["SourceIdentity"] = session.source_identity
        return _json(200, answer, *_NO_STORE)

    def caller_identity(self, request: TokenRequest) -> Response:
        """``GET /sts/caller-identity``: who the bearer token's session is."""
        caller = self._caller(request)
        if not isinstance(caller, Session):
            return caller
        return _json(200, self.sts.get_caller_identity(caller), ("cache-control", "no-store"))

    def jwks(self, request: TokenRequest) -> Response:
        """``GET /.well-known/jwks.json``: the key ring's public keys."""
        return _json(200, self.guard.tokens.ring.jwks())

    def openapi(self, request: TokenRequest) -> Response:
        """``GET /sts/openapi.json``: ``openapi_document()``."""
        return _json(200, openapi_document())

    # --- helpers -----------------------------------------------------------------------------

    def _caller(self, request: TokenRequest) -> Session | Response:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return missing_credentials_response()
        return self.sts.authenticate(token)

    def _context(self, request: TokenRequest) -> dict[str, str]:
        return http_context(
            peer=request.peer, headers=request.headers, scheme=request.scheme,
            trusted_proxies=self.trusted_proxies, now=self.sts.clock(),
        )  # fmt: skip


def _basic(request: TokenRequest) -> tuple[str, str] | None:
    return basic_credentials(request.headers.get("authorization"))


def _duration(values: Mapping[str, Any]) -> dict[str, int]:
    return {"duration_seconds": values["DurationSeconds"]} if "DurationSeconds" in values else {}


def _basic_challenge(response: Response) -> Response:
    """A sign-in refusal challenges for Basic credentials, not a bearer token."""
    status, headers, body = response
    kept = [(k, v) for k, v in headers if k != "www-authenticate"]
    return status, [*kept, ("www-authenticate", _BASIC_CHALLENGE)], body


ROUTES: Final[Mapping[str, Mapping[str, Operation]]] = {
    "/sts/session": {"POST": TokenEndpoint.sign_in},
    "/sts/service-session": {"POST": TokenEndpoint.service_session},
    "/sts/assume-role": {"POST": TokenEndpoint.assume_role},
    "/sts/caller-identity": {"GET": TokenEndpoint.caller_identity},
    "/.well-known/jwks.json": {"GET": TokenEndpoint.jwks},
    "/sts/openapi.json": {"GET": TokenEndpoint.openapi},
}
"""Each path with its method and operation; any other method on the path is 405."""


# --- OpenAPI -----------------------------------------------------------------------------------


def _field_schema(field: _Field) -> dict[str, Any]:
    schema: dict[str, Any]
    if field.kind == _STRING:
        schema = {"type": "string"}
    elif field.kind == _INTEGER:
        schema = {"type": "integer"}
    elif field.kind == _POLICY:
        schema = {"type": ["string", "object"]}
    elif field.kind == _STRINGS:
        schema = {"type": "array", "items": {"type": "string"}}
    elif field.kind == _TAGS:
        schema = {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}}
    else:
        schema = {"type": "array", "items": {"$ref": "#/components/schemas/PolicyDescriptor"}}
    return {**schema, "description": field.description}


def _request_schema(fields: Sequence[_Field]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [f.name for f in fields if f.required],
        "properties": {f.name: _field_schema(f) for f in fields},
    }


def _object(properties: Mapping[str, Any], description: str = "") -> dict[str, Any]:
    schema = {"type": "object", "required": list(properties), "properties": dict(properties)}
    return {**schema, "description": description} if description else schema


def _error(description: str) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {"description": description, "content": content}


def _ok(description: str, schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _post(operation: str, summary: str, request: str, ok: str, security: Any) -> dict[str, Any]:
    body = {"$ref": f"#/components/schemas/{request}"}
    return {
        "post": {
            "operationId": operation,
            "summary": summary,
            "security": security,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": _ok("The session's credentials.", ok),
                **{
                    code: {"$ref": f"#/components/responses/{name}"}
                    for code, name in (
                        ("400", "BadRequest"),
                        ("401", "Unauthorized"),
                        ("403", "Forbidden"),
                        ("405", "MethodNotAllowed"),
                        ("429", "Throttling"),
                        ("503", "ServiceUnavailable"),
                    )
                },
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    """An OpenAPI 3.1 description of the token endpoint (``ROUTES``)."""
    string = {"type": "string"}
    credentials = _object(
        {
            "SessionToken": {**string, "description": "The session token: a JWT (RS256)."},
            "Expiration": {**string, "format": "date-time", "description": "UTC, ISO 8601."},
        },
        "Send the session token as `Authorization: Bearer <SessionToken>`.",
    )
    assumed_role_user = _object(
        {
            "Arn": {**string, "description": "The assumed-role session's ARN."},
            "AssumedRoleId": {
                **string,
                "description": "The role's id and the session name: `AROA...:session`.",
            },
        }
    )
    credentials_ref = {"$ref": "#/components/schemas/Credentials"}
    basic: list[dict[str, list[str]]] = [{"basic": []}]
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    errors = {
        "BadRequest": "A malformed request (`InvalidInput`), or a value outside AWS's "
        "constraints (`ValidationError`, `MalformedPolicyDocument`, `PackedPolicyTooLarge`).",
        "Unauthorized": "No credential, or a bad one (`MissingAuthenticationToken`, "
        "`InvalidClientTokenId`, `ExpiredToken`).",
        "Forbidden": "`AccessDenied`: the caller may not do this.",
        "MethodNotAllowed": "`MethodNotAllowed`: the path answers another method (see `Allow`).",
        "Throttling": "`Throttling`: too many failed sign-ins; retry after `Retry-After` seconds.",
        "ServiceUnavailable": "`ServiceUnavailable`: the store cannot be read; try again later.",
    }
    responses = {name: _error(text) for name, text in errors.items()}
    responses["Throttling"]["headers"] = {
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
    }
    responses["Unauthorized"]["headers"] = {
        "WWW-Authenticate": {"description": "The challenge.", "schema": {"type": "string"}}
    }
    get_errors = {
        code: {"$ref": f"#/components/responses/{name}"}
        for code, name in (
            ("401", "Unauthorized"),
            ("405", "MethodNotAllowed"),
            ("503", "ServiceUnavailable"),
        )
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "iamguard token service",
            "version": "1.0.0",
            "description": "AWS STS's operations over JSON, with AWS's field names and errors.",
        },
        "paths": {
            "/sts/session": _post(
                "GetSessionToken",
                "Sign an IAM user in: `UserName` and `Password`, or an access key as Basic "
                "credentials (`AKIA...:secret`).",
                "SignInRequest",
                "SignInResponse",
                [{}, *basic],
            ),
            "/sts/service-session": _post(
                "GetServiceSession",
                "Sign a service principal in, with Basic credentials `service-name:secret`.",
                "ServiceSessionRequest",
                "SignInResponse",
                basic,
            ),
            "/sts/assume-role": _post(
                "AssumeRole",
                "Assume a role with the caller's session token.",
                "AssumeRoleRequest",
                "AssumeRoleResponse",
                bearer,
            ),
            "/sts/caller-identity": {
                "get": {
                    "operationId": "GetCallerIdentity",
                    "summary": "Who the session token's principal is.",
                    "security": bearer,
                    "responses": {
                        "200": _ok("The caller.", "CallerIdentity"),
                        **get_errors,
                    },
                }
            },
            "/.well-known/jwks.json": {
                "get": {
                    "operationId": "GetJwks",
                    "summary": "The public keys that verify session tokens (RFC 7517).",
                    "security": [],
                    "responses": {"200": _ok("The key set.", "Jwks")},
                }
            },
            "/sts/openapi.json": {
                "get": {
                    "operationId": "GetOpenApi",
                    "summary": "This document.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "basic": {"type": "http", "scheme": "basic"},
            },
            "responses": responses,
            "schemas": {
                "SignInRequest": _request_schema(_SIGN_IN_FIELDS),
                "ServiceSessionRequest": _request_schema(_SERVICE_FIELDS),
                "AssumeRoleRequest": _request_schema(_ASSUME_ROLE_FIELDS),
                "Tag": {
                    **_object({"Key": string, "Value": string}),
                    "additionalProperties": False,
                },
                "PolicyDescriptor": {
                    **_object({"arn": {**string, "description": "A managed policy's ARN."}}),
                    "additionalProperties": False,
                },
                "Credentials": credentials,
                "SignInResponse": _object({"Credentials": credentials_ref}),
                "AssumeRoleResponse": {
                    "type": "object",
                    "required": ["Credentials", "AssumedRoleUser"],
                    "properties": {
                        "Credentials": credentials_ref,
                        "AssumedRoleUser": assumed_role_user,
                        "SourceIdentity": {**string, "description": "When one is set."},
                    },
                },
                "CallerIdentity": _object({"Account": string, "Arn": string, "UserId": string}),
                "Jwks": {
                    "type": "object",
                    "required": ["keys"],
                    "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
                },
                "Error": _object(
                    {
                        "Error": _object(
                            {
                                "Code": {**string, "description": "AWS's error code."},
                                "Message": string,
                            }
                        )
                    }
                ),
            },
        },
    }
