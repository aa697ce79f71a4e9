"""The framework-neutral HTTP layer: credentials from headers, error responses, route
permissions and their templates, the request context (forwarded-for), and the path check."""

from __future__ import annotations

import base64
import ipaddress
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iamguard import AccessRequest, Policy, evaluate
from iamguard.errors import (
    AccessDenied,
    ExpiredToken,
    IAMGuardError,
    InvalidClientTokenId,
    InvalidInput,
    MalformedPolicyDocument,
    PolicyProblem,
    StoreError,
    StoreUnavailable,
)
from iamguard.integrations._http import (
    PUBLIC,
    Permission,
    Public,
    basic_credentials,
    bearer_token,
    denied_response,
    error_response,
    http_context,
    missing_credentials_response,
    normalize_path,
)
from iamguard.sessions import ASSUMED_ROLE, USER, Session
from iamguard.throttle import Throttled

ACCT = "123456789012"
RAM = f"arn:iamguard:iam::{ACCT}:user/ram"
NOW = datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=timezone.utc)
JSON_CT = ("content-type", "application/json")
PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
IMAGE = Permission("images:GetImage", "arn:iamguard:images::{account}:image/{image_id}")


def session(principal_type: str = USER, name: str = "ram") -> Session:
    principal = RAM if principal_type == USER else f"arn:iamguard:sts::{ACCT}:assumed-role/R/s"
    return Session(
        principal=principal, principal_type=principal_type, account=ACCT, user_id="AIDAX",
        issued_at=0, expires_at=1, token_id="jti", name=name,
    )  # fmt: skip


def body(response: tuple[int, list[tuple[str, str]], bytes]) -> Any:
    return json.loads(response[2].decode("utf-8"))


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode("utf-8")).decode("ascii")


def context(peer: str | None, scheme: str = "http", **headers: str) -> dict[str, str]:
    named = {k.replace("_", "-"): v for k, v in headers.items()}
    return http_context(peer=peer, headers=named, scheme=scheme, trusted_proxies=PROXIES, now=NOW)


# --- bearer and basic credentials --------------------------------------------------------------


def test_bearer_token_is_read() -> None:
    """A well-formed Bearer header yields its token, padding and all b64token characters kept."""
    assert bearer_token("Bearer abc.DEF-_~+/9==") == "abc.DEF-_~+/9=="


def test_bearer_scheme_is_case_insensitive() -> None:
    """The scheme is matched whatever its letter case (RFC 7235), the token is not changed."""
    assert bearer_token("bearer Tok") == "Tok"
    assert bearer_token("BEARER Tok") == "Tok"


def test_bearer_absent_header_is_anonymous() -> None:
    """No Authorization header means anonymous: None, not an error."""
    assert bearer_token(None) is None


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "the `Authorization` header is empty"),
        ("   ", "the `Authorization` header is empty"),
        ("Basic dXNlcjpwdw==", "the `Authorization` header does not use the `Bearer` scheme"),
        ("Token abc", "the `Authorization` header does not use the `Bearer` scheme"),
        ("Bearerabc", "the `Authorization` header does not use the `Bearer` scheme"),
        ("Bearer\tabc", "the `Authorization` header does not use the `Bearer` scheme"),
        ("Bearer", "the `Authorization` header has no bearer credential"),
        ("Bearer    ", "the `Authorization` header has no bearer credential"),
        ("Bearer a b", "the `Authorization` header has more than one bearer credential"),
        (
            "Bearer a,b",
            "the `Authorization` header's bearer credential has characters outside the b64token set",
        ),
        (
            "Bearer a=b",
            "the `Authorization` header's bearer credential has characters outside the b64token set",
        ),
        (
            "Bearer é",
            "the `Authorization` header's bearer credential has characters outside the b64token set",
        ),
    ],
)
def test_bearer_malformed(header: str, message: str) -> None:
    """A present but malformed header is InvalidClientTokenId, with a message that says why."""
    with pytest.raises(InvalidClientTokenId) as caught:
        bearer_token(header)
    assert caught.value.message == message
    assert caught.value.status == 401


def test_bearer_message_never_repeats_the_token() -> None:
    """The error never echoes the header: a malformed token may still be a secret."""
    with pytest.raises(InvalidClientTokenId) as caught:
        bearer_token("Bearer s3cret!value")
    assert "s3cret" not in caught.value.message


B64TOKEN = st.from_regex(r"[A-Za-z0-9\-._~+/]+=*", fullmatch=True)
HEADERS = st.one_of(
    st.text(),
    st.builds(lambda scheme, space, token: f"{scheme}{space}{token}",
              st.sampled_from(["Bearer", "bearer", "BEARER", "Basic"]),
              st.sampled_from([" ", "  ", "\t"]), st.one_of(B64TOKEN, st.text())),
)  # fmt: skip


@given(HEADERS)
def test_bearer_token_raises_only_invalid_client_token_id(text: str) -> None:
    """On any text, bearer_token returns a b64token or raises InvalidClientTokenId, nothing else."""
    try:
        token = bearer_token(text)
    except InvalidClientTokenId:
        return
    assert token is not None
    assert text.strip(" \t").split(" ")[-1] == token


def test_basic_credentials_are_read() -> None:
    """Basic credentials decode to (access key id, secret); the secret may hold colons."""
    assert basic_credentials(basic("AKIAEXAMPLE:se:cr/et")) == ("AKIAEXAMPLE", "se:cr/et")
    assert basic_credentials("basic " + base64.b64encode(b"id:pw").decode()) == ("id", "pw")
    assert basic_credentials(None) is None


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer abc", "the `Authorization` header does not use the `Basic` scheme"),
        ("Basic", "the `Authorization` header has no basic credential"),
        (
            "Basic !!!",
            "the `Authorization` header's basic credential has characters outside the b64token set",
        ),
        ("Basic abc", "the basic credential is not base64 of UTF-8 text"),
        (
            "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
            "the basic credential is not base64 of UTF-8 text",
        ),
        (basic("no-colon"), "the basic credential is not `id:secret`"),
        (basic(":secret"), "the basic credential is not `id:secret`"),
        (basic("id:"), "the basic credential is not `id:secret`"),
        (basic("id:se\ncret"), "the basic credential has control characters"),
    ],
)
def test_basic_credentials_malformed(header: str, message: str) -> None:
    """A malformed Basic header is InvalidClientTokenId with a message that says why."""
    with pytest.raises(InvalidClientTokenId) as caught:
        basic_credentials(header)
    assert caught.value.message == message


# --- error responses ---------------------------------------------------------------------------


def test_invalid_token_response() -> None:
    """An invalid token answers 401, AWS's error body and an RFC 6750 invalid_token challenge."""
    response = error_response(InvalidClientTokenId("the token's signature does not verify"))
    assert response == (
        401,
        [
            JSON_CT,
            (
                "www-authenticate",
                'Bearer error="invalid_token", '
                'error_description="the token\'s signature does not verify"',
            ),
        ],
        b'{"Error":{"Code":"InvalidClientTokenId","Message":"the token\'s signature does not verify"}}',
    )


def test_expired_token_response() -> None:
    """An expired token is also invalid_token (RFC 6750 §3.1), under AWS's ExpiredToken code."""
    status, headers, _ = response = error_response(ExpiredToken("the token expired at 07:08:09"))
    assert status == 401
    assert headers[1] == (
        "www-authenticate",
        'Bearer error="invalid_token", error_description="the token expired at 07:08:09"',
    )
    assert body(response) == {
        "Error": {"Code": "ExpiredToken", "Message": "the token expired at 07:08:09"}
    }


def test_challenge_sanitizes_the_description() -> None:
    """Quotes, backslashes, control and non-ASCII characters never reach the challenge."""
    _, headers, raw = error_response(InvalidClientTokenId('key `a"b\\c` in\r\nrégion'))
    assert headers[1] == (
        "www-authenticate",
        'Bearer error="invalid_token", error_description="key `a\'b/c` in??r?gion"',
    )
    assert json.loads(raw)["Error"]["Message"] == 'key `a"b\\c` in\r\nrégion'


def test_challenge_description_is_bounded() -> None:
    """A long message is cut to 200 characters in the header, kept whole in the body."""
    _, headers, raw = error_response(InvalidClientTokenId("x" * 500))
    assert headers[1][1] == f'Bearer error="invalid_token", error_description="{"x" * 200}"'
    assert json.loads(raw)["Error"]["Message"] == "x" * 500


def test_missing_credentials_response() -> None:
    """No credential answers 401 with a bare Bearer challenge (no error code, RFC 6750 §3.1)."""
    assert missing_credentials_response() == (
        401,
        [JSON_CT, ("www-authenticate", "Bearer")],
        b'{"Error":{"Code":"MissingAuthenticationToken","Message":'
        b'"the request has no credential: send an `Authorization: Bearer` header"}}',
    )


def test_denied_response_has_aws_sentence() -> None:
    """A denial answers 403 with AWS's sentence, naming the kind of policy, not its text."""
    deny = Policy.parse(
        {"Version": "2012-10-17", "Statement": [{"Sid": "NoDelete", "Effect": "Deny",
         "Action": "orders:*", "Resource": "*"}]},
        name="Secret",
    )  # fmt: skip
    order = f"arn:iamguard:orders::{ACCT}:order/42"
    decision = evaluate(AccessRequest(RAM, "orders:DeleteOrder", order), identity=[deny])
    response = denied_response(decision)
    assert response[:2] == (403, [JSON_CT])
    message = (
        f"User: {RAM} is not authorized to perform: orders:DeleteOrder on resource: {order}"
        " with an explicit deny in an identity-based policy"
    )
    assert body(response) == {"Error": {"Code": "AccessDenied", "Message": message}}
    assert b"Secret" not in response[2] and b"NoDelete" not in response[2]


def test_denied_response_implicit_deny() -> None:
    """An implicit deny reads 'because no identity-based policy allows the ACTION action'."""
    decision = evaluate(AccessRequest(RAM, "orders:GetOrder", "*"))
    assert body(denied_response(decision))["Error"]["Message"] == (
        f"User: {RAM} is not authorized to perform: orders:GetOrder on resource: *"
        " because no identity-based policy allows the orders:GetOrder action"
    )


def test_denied_response_refuses_an_allow() -> None:
    """Building a denial from an allowing decision is a programming error: ValueError."""
    allow = Policy.parse(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    )
    with pytest.raises(ValueError, match="needs a denial"):
        denied_response(evaluate(AccessRequest(RAM, "a:b", "*"), identity=[allow]))


def test_access_denied_error_response() -> None:
    """An AccessDenied error answers 403 with its message and no challenge."""
    assert error_response(AccessDenied("no")) == (
        403,
        [JSON_CT],
        b'{"Error":{"Code":"AccessDenied","Message":"no"}}',
    )


def test_throttled_response_has_retry_after() -> None:
    """Throttled answers 429 with Retry-After in whole seconds."""
    assert error_response(Throttled("too many failed sign-ins", retry_after=8)) == (
        429,
        [JSON_CT, ("retry-after", "8")],
        b'{"Error":{"Code":"Throttling","Message":"too many failed sign-ins"}}',
    )


def test_store_unavailable_hides_its_details() -> None:
    """A 503 says the service is unavailable, never the store's address or the driver's words."""
    error = StoreUnavailable("store `postgresql://iam@db.internal/iam`: connection refused")
    assert error_response(error) == (
        503,
        [JSON_CT],
        b'{"Error":{"Code":"ServiceUnavailable",'
        b'"Message":"the service is unavailable: try again later"}}',
    )
    status, _, raw = error_response(StoreError("store `x`: read-only"))
    assert (status, json.loads(raw)) == (
        500,
        {"Error": {"Code": "ServiceFailure", "Message": "the service failed to answer"}},
    )


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (InvalidInput("`DurationSeconds` must be at least 900"), "InvalidInput",
         "`DurationSeconds` must be at least 900"),
        (MalformedPolicyDocument([PolicyProblem("Statement[0].Effect", "must be `Allow` or `Deny`")]),
         "MalformedPolicyDocument", "Statement[0].Effect: must be `Allow` or `Deny`"),
    ],
)  # fmt: skip
def test_client_errors_answer_400(error: IAMGuardError, code: str, message: str) -> None:
    """Input errors answer 400 with their code and message (UTF-8, compact JSON)."""
    assert error_response(error) == (400, [JSON_CT], _compact(code, message))


def test_error_body_is_utf8() -> None:
    """Non-ASCII messages are written as UTF-8, not \\u escapes."""
    assert error_response(InvalidInput("name `Zoë`"))[2] == _compact("InvalidInput", "name `Zoë`")
    assert "Zoë".encode() in error_response(InvalidInput("name `Zoë`"))[2]


def _compact(code: str, message: str) -> bytes:
    text = json.dumps({"Error": {"Code": code, "Message": message}}, ensure_ascii=False)
    return text.replace('": ', '":').replace('", "', '","').replace("}, ", "},").encode()


# --- route permissions -------------------------------------------------------------------------


def test_template_fills_path_params_and_account() -> None:
    """Path parameters and the principal's account fill the template."""
    assert (
        IMAGE.resource_for({"image_id": "42"}, session()) == f"arn:iamguard:images::{ACCT}:image/42"
    )


def test_template_principal_and_username() -> None:
    """``{principal}`` is the caller's ARN, ``{username}`` a user's name, both as they are."""
    permission = Permission("s3:GetObject", "arn:iamguard:s3:::home/{username}/{principal}")
    assert permission.resource_for({}, session()) == f"arn:iamguard:s3:::home/ram/{RAM}"


def test_template_path_param_wins_over_principal() -> None:
    """A path parameter named ``account`` is used: the resource names what the route touches."""
    permission = Permission("orders:ListOrders", "arn:iamguard:orders::{account}:order/*")
    resource = permission.resource_for({"account": "999999999999"}, session())
    assert resource == "arn:iamguard:orders::999999999999:order/*"


def test_template_converts_non_text_values() -> None:
    """Converted path parameters (an int from ``{id:int}``) are written with ``str``."""
    assert IMAGE.resource_for({"image_id": 7}, session()).endswith(":image/7")


def test_template_without_placeholders() -> None:
    """A plain resource, and the default ``*``, come back unchanged."""
    assert Permission("orders:ListOrders").resource_for({}, session()) == "*"
    assert Permission("a:B", "arn:iamguard:a:::x").resource_for({"x": "1"}, session()) == (
        "arn:iamguard:a:::x"
    )


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a:b", "a%3Ab"),
        ("a/b", "a%2Fb"),
        ("*", "%2A"),
        ("?", "%3F"),
        ("a\x00b", "a%00b"),
        ("100%", "100%25"),
        ("a b", "a%20b"),
        ("é", "%C3%A9"),
        ("../x", "..%2Fx"),
        ("a-b_c.d~e@f+g=h,i!j$k&l'm(n)o;p", "a-b_c.d~e@f+g=h,i!j$k&l'm(n)o;p"),
    ],
)
def test_template_encodes_values(value: str, encoded: str) -> None:
    """A path value is percent-encoded: it can add no ARN segment, path level or wildcard."""
    assert IMAGE.resource_for({"image_id": value}, session()) == (
        f"arn:iamguard:images::{ACCT}:image/{encoded}"
    )


def test_template_encoding_is_injective() -> None:
    """Different values give different resources (``%`` itself is encoded)."""
    first = IMAGE.resource_for({"image_id": "a/b"}, session())
    second = IMAGE.resource_for({"image_id": "a%2Fb"}, session())
    assert first != second


def test_template_colon_cannot_shift_arn_segments() -> None:
    """A value with ``:`` cannot move the account segment to reach a policy for another one."""
    permission = Permission("images:GetImage", "arn:iamguard:images:{region}:{owner}:image/{id}")
    allow_own = Policy.parse(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "images:*",
         "Resource": f"arn:iamguard:images:*:{ACCT}:image/*"}]}
    )  # fmt: skip
    params = {"region": f"eu:{ACCT}:image/x", "owner": "222222222222", "id": "1"}
    resource = permission.resource_for(params, session())
    assert resource == (f"arn:iamguard:images:eu%3A{ACCT}%3Aimage%2Fx:222222222222:image/1")
    decision = evaluate(AccessRequest(RAM, "images:GetImage", resource), identity=[allow_own])
    assert decision.allowed is False


def test_template_star_value_is_a_literal() -> None:
    """``image_id="*"`` names one image: a policy for ``image/a*`` does not match it."""
    allow = Policy.parse(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "images:*",
         "Resource": f"arn:iamguard:images::{ACCT}:image/a*"}]}
    )  # fmt: skip
    resource = IMAGE.resource_for({"image_id": "*"}, session())
    decision = evaluate(AccessRequest(RAM, "images:GetImage", resource), identity=[allow])
    assert decision.allowed is False


def test_template_path_placeholder_keeps_slashes() -> None:
    """``{key:path}`` keeps ``/`` for hierarchical keys and still encodes ``:`` and ``*``."""
    permission = Permission("s3:GetObject", "arn:iamguard:s3:::bucket/{key:path}")
    assert permission.resource_for({"key": "home/ram/a:b*.txt"}, session()) == (
        "arn:iamguard:s3:::bucket/home/ram/a%3Ab%2A.txt"
    )


@pytest.mark.parametrize("value", ["a/../b", "./a", "a//b", "a/", "/a", ".."])
def test_template_path_placeholder_refuses_dot_segments(value: str) -> None:
    """A ``{key:path}`` value with an empty, ``.`` or ``..`` segment is InvalidInput."""
    permission = Permission("s3:GetObject", "arn:iamguard:s3:::bucket/{key:path}")
    with pytest.raises(InvalidInput) as caught:
        permission.resource_for({"key": value}, session())
    assert caught.value.message == (
        "permission `s3:GetObject`: path parameter `key` has an empty, `.` or `..` segment"
    )


def test_template_path_placeholder_must_end() -> None:
    """``{key:path}`` followed by more text is refused when declared."""
    with pytest.raises(InvalidInput) as caught:
        Permission("s3:GetObject", "arn:iamguard:s3:::{key:path}/x")
    assert caught.value.message == (
        "permission `s3:GetObject`: resource template `arn:iamguard:s3:::{key:path}/x`:"
        " `{key:path}` must end the template"
    )


def test_template_missing_value_is_denied() -> None:
    """A value the request lacks fails closed: AccessDenied (403), naming the placeholder."""
    with pytest.raises(AccessDenied) as caught:
        IMAGE.resource_for({}, session())
    assert caught.value.message == (
        "permission `images:GetImage`: the request has no value for `{image_id}`"
    )
    with pytest.raises(AccessDenied):
        IMAGE.resource_for({"image_id": ""}, session())


def test_template_username_of_a_role_session_is_denied() -> None:
    """``{username}`` exists for users only: a role session is denied, not given a guess."""
    permission = Permission("s3:GetObject", "arn:iamguard:s3:::home/{username}/*")
    with pytest.raises(AccessDenied) as caught:
        permission.resource_for({}, session(ASSUMED_ROLE, name="R"))
    assert caught.value.message == (
        "permission `s3:GetObject`: the request has no value for `{username}`"
    )


def test_empty_path_param_does_not_fall_back_to_principal() -> None:
    """An empty ``account`` path parameter is missing, never replaced by the caller's account."""
    permission = Permission("orders:ListOrders", "arn:iamguard:orders::{account}:order/*")
    with pytest.raises(AccessDenied):
        permission.resource_for({"account": ""}, session())


def test_check_placeholders_refuses_unknown_names() -> None:
    """A placeholder that is neither a route parameter nor a principal value is refused."""
    IMAGE.check_placeholders(["image_id"])
    with pytest.raises(InvalidInput) as caught:
        IMAGE.check_placeholders(["id", "album"])
    assert caught.value.message == (
        "permission `images:GetImage`: resource template "
        "`arn:iamguard:images::{account}:image/{image_id}`: `{image_id}` is neither a path "
        "parameter of the route (`album`, `id`) nor `{account}`, `{principal}` or `{username}`"
    )


def test_check_placeholders_without_route_params() -> None:
    """With no route parameters, only principal placeholders are allowed."""
    Permission("s3:ListBucket", "arn:iamguard:s3:::home/{username}").check_placeholders([])
    with pytest.raises(InvalidInput, match=r"\(none\)"):
        IMAGE.check_placeholders([])


@pytest.mark.parametrize(
    ("action", "resource", "message"),
    [
        ("GetImage", "*", "permission `GetImage`: an action is `service:ActionName`"),
        ("images:*", "*", "permission `images:*`: an action is `service:ActionName`"),
        ("images:Get", "image/{id", "permission `images:Get`: resource template `image/{id`:"
         " a `{` or `}` is not part of a `{name}` placeholder"),
        ("images:Get", "image/{1d}", "permission `images:Get`: resource template `image/{1d}`:"
         " a `{` or `}` is not part of a `{name}` placeholder"),
    ],
)  # fmt: skip
def test_permission_declaration_errors(action: str, resource: str, message: str) -> None:
    """A malformed action or template is refused when the route is declared."""
    with pytest.raises(InvalidInput) as caught:
        Permission(action, resource)
    assert caught.value.message == message


def test_permission_is_a_value() -> None:
    """Permissions compare and hash by action and resource; placeholders are listed in order."""
    same = Permission("images:GetImage", "arn:iamguard:images::{account}:image/{image_id}")
    assert same == IMAGE
    assert hash(same) == hash(IMAGE)
    assert IMAGE.placeholders == ("account", "image_id")
    assert repr(IMAGE) == (
        "Permission(action='images:GetImage', "
        "resource='arn:iamguard:images::{account}:image/{image_id}')"
    )


def test_public_marker() -> None:
    """PUBLIC is one marker, distinct from any Permission."""
    assert PUBLIC is Public.PUBLIC
    assert repr(PUBLIC) == "PUBLIC"
    assert Permission("a:B") != PUBLIC


# --- request context ---------------------------------------------------------------------------


def test_context_direct_peer() -> None:
    """A direct client: its address, plain HTTP, the time in AWS's two forms, its headers."""
    assert context("203.0.113.9", user_agent="curl/8", referer="https://a.example/") == {
        "aws:CurrentTime": "2024-05-06T07:08:09Z",
        "aws:EpochTime": "1714979289",
        "aws:SourceIp": "203.0.113.9",
        "aws:SecureTransport": "false",
        "aws:UserAgent": "curl/8",
        "aws:Referer": "https://a.example/",
    }


def test_context_time_is_utc() -> None:
    """A time in another zone is written in UTC with ``Z``; a naive time is refused."""
    east = datetime(2024, 5, 6, 9, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    ctx = http_context(peer=None, headers={}, scheme="http", trusted_proxies=[], now=east)
    assert ctx["aws:CurrentTime"] == "2024-05-06T07:08:09Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        http_context(
            peer=None, headers={}, scheme="http", trusted_proxies=[], now=datetime(2024, 1, 1)
        )


def test_context_untrusted_peer_ignores_forwarded_headers() -> None:
    """From an untrusted peer, X-Forwarded-For and X-Forwarded-Proto are ignored."""
    ctx = context("203.0.113.9", x_forwarded_for="10.1.1.1", x_forwarded_proto="https")
    assert (ctx["aws:SourceIp"], ctx["aws:SecureTransport"]) == ("203.0.113.9", "false")


def test_context_trusted_proxy_chain() -> None:
    """Behind trusted proxies, the right-most untrusted entry is the client."""
    ctx = context("10.0.0.1", x_forwarded_for="198.51.100.7, 10.0.0.2, 10.0.0.3")
    assert ctx["aws:SourceIp"] == "198.51.100.7"


def test_context_spoofed_left_entries_are_ignored() -> None:
    """Entries a client wrote itself (left of the first untrusted one) never count."""
    ctx = context("10.0.0.1", x_forwarded_for="10.9.9.9, 1.1.1.1, 198.51.100.7, 10.0.0.2")
    assert ctx["aws:SourceIp"] == "198.51.100.7"


def test_context_trusted_proxy_without_forwarded_for() -> None:
    """A trusted proxy that forwards nothing is the source itself."""
    assert context("10.0.0.1")["aws:SourceIp"] == "10.0.0.1"


def test_context_all_hops_trusted() -> None:
    """When every entry is a trusted proxy, the left-most is the source."""
    assert context("10.0.0.1", x_forwarded_for="10.0.0.5, 10.0.0.6")["aws:SourceIp"] == "10.0.0.5"


def test_context_ipv6() -> None:
    """IPv6 peers and entries are read (brackets, ports and zones dropped), IPv4-mapped as IPv4."""
    ctx = context("fd00::1", x_forwarded_for="2001:db8::7, [fd00::2]:443")
    assert ctx["aws:SourceIp"] == "2001:db8::7"
    assert context("::ffff:10.0.0.1", x_forwarded_for="[2001:DB8::9]:80")["aws:SourceIp"] == (
        "2001:db8::9"
    )
    assert context("2001:db8::1")["aws:SourceIp"] == "2001:db8::1"
    assert context("fe80::1%eth0\n")["aws:SourceIp"] == "fe80::1"


def test_context_entries_with_ports_and_empty_elements() -> None:
    """IPv4 entries with ports are read and empty list elements skipped (RFC 9110 §5.6.1)."""
    ctx = context("10.0.0.1", x_forwarded_for="198.51.100.7:5123, , 10.0.0.2,")
    assert ctx["aws:SourceIp"] == "198.51.100.7"


@pytest.mark.parametrize("forwarded", ["unknown", "198.51.100.7, garbage", "1.2.3.4, _hidden"])
def test_context_unreadable_forwarded_entry_leaves_source_unknown(forwarded: str) -> None:
    """An unreadable entry where a trusted hop wrote stops the walk: no aws:SourceIp at all."""
    assert "aws:SourceIp" not in context("10.0.0.1", x_forwarded_for=forwarded)


def test_context_garbage_left_of_client_is_harmless() -> None:
    """Garbage a client wrote left of its own (proxy-written) address does not matter."""
    ctx = context("10.0.0.1", x_forwarded_for="garbage, 198.51.100.7")
    assert ctx["aws:SourceIp"] == "198.51.100.7"


@pytest.mark.parametrize("peer", [None, "testclient", "/run/app.sock", ""])
def test_context_peer_that_is_no_address(peer: str | None) -> None:
    """No peer address (a Unix socket, a test client) means no aws:SourceIp, never a guess."""
    ctx = context(peer, x_forwarded_for="198.51.100.7", x_forwarded_proto="https")
    assert "aws:SourceIp" not in ctx
    assert ctx["aws:SecureTransport"] == "false"


@pytest.mark.parametrize(
    ("peer", "scheme", "proto", "secure"),
    [
        ("203.0.113.9", "https", None, "true"),
        ("203.0.113.9", "HTTPS", None, "true"),
        ("203.0.113.9", "wss", None, "true"),
        ("203.0.113.9", "http", "https", "false"),
        ("10.0.0.1", "http", "https", "true"),
        ("10.0.0.1", "http", "HTTPS, https", "true"),
        ("10.0.0.1", "http", "https, http", "false"),
        ("10.0.0.1", "http", "", "false"),
        ("10.0.0.1", "http", None, "false"),
    ],
)
def test_context_secure_transport(peer: str, scheme: str, proto: str | None, secure: str) -> None:
    """https is secure; X-Forwarded-Proto counts only from a trusted proxy, and only if all https."""
    headers = {} if proto is None else {"x_forwarded_proto": proto}
    assert context(peer, scheme, **headers)["aws:SecureTransport"] == secure


@given(
    peer=st.one_of(st.none(), st.text(), st.ip_addresses().map(str)),
    headers=st.dictionaries(
        st.sampled_from(["x-forwarded-for", "x-forwarded-proto", "user-agent", "referer"]),
        st.one_of(
            st.text(),
            st.lists(st.one_of(st.ip_addresses().map(str), st.text()), max_size=5).map(", ".join),
        ),
    ),
    scheme=st.text(max_size=8),
)
def test_http_context_never_raises(peer: str | None, headers: dict[str, str], scheme: str) -> None:
    """Any header values, peer and scheme give a context with the fixed keys, never an error."""
    proxies = [*PROXIES, ipaddress.ip_network("0.0.0.0/1")]
    ctx = http_context(peer=peer, headers=headers, scheme=scheme, trusted_proxies=proxies, now=NOW)
    assert ctx["aws:SecureTransport"] in ("true", "false")
    if "aws:SourceIp" in ctx:
        assert str(ipaddress.ip_address(ctx["aws:SourceIp"])) == ctx["aws:SourceIp"]


# --- paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("/", "/"),
        ("/images/42", "/images/42"),
        ("/images/42/", "/images/42/"),
        ("/files/a%20b", "/files/a b"),
        ("/files/caf%C3%A9", "/files/café"),
        ("/files/100%25", "/files/100%"),
        ("/a/.hidden/..x", "/a/.hidden/..x"),
    ],
)
def test_normalize_path_accepts(raw: str, decoded: str) -> None:
    """Ordinary paths are accepted and returned decoded, otherwise unchanged."""
    assert normalize_path(raw) == decoded


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "images/42",
        "*",
        "/a\x00b",
        "/a%00b",
        "/a%2Fb",
        "/a%2fb",
        "/a%5Cb",
        "/a\\b",
        "/a/../b",
        "/a/./b",
        "/..",
        "/a/%2e%2e/b",
        "/a/%2E/b",
        "//a",
        "/a//b",
        "/a%zz",
        "/a%",
        "/a%C3",
        "/a%252e%252e",
        "/a%0Ab",
        "/café",
    ],
)
def test_normalize_path_refuses(raw: str) -> None:
    """Traversal, encoded separators, NUL, bad escapes and double encoding are refused."""
    assert normalize_path(raw) is None
