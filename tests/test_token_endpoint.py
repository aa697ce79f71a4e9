"""The token endpoint over HTTP: Starlette's TestClient, Flask's test client and a real uvicorn."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openapi_spec_validator
import pytest
from flask import Flask
from servers import serve_asgi as serve
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from iamguard.errors import StoreUnavailable
from iamguard.guard import Guard
from iamguard.iam import IAM
from iamguard.integrations.flask import IAMGuard
from iamguard.integrations.starlette import IAMGuardMiddleware
from iamguard.integrations.token_endpoint import MAX_BODY, ROUTES, openapi_document
from iamguard.integrations.token_routes import sts_blueprint, sts_routes
from iamguard.modelfile import LoadedSecrets, load_model
from iamguard.sts import STS
from iamguard.throttle import SignInThrottle

with warnings.catch_warnings():  # starlette 1.x prefers `httpx2`; the venv has `httpx`
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ACCOUNT = "123456789012"
TEAM = Path(__file__).resolve().parents[1] / "examples" / "team.yaml"
PASSWORD = "Correct-Horse-7"
ROLE = f"arn:iamguard:iam::{ACCOUNT}:role/"
FAILED = "the credentials are invalid"


class Team:
    """The example team, its Guard, and the credentials the tests sign in with."""

    def __init__(self) -> None:
        store, secrets = load_model(TEAM)
        self.store = store
        self.secrets: LoadedSecrets = secrets
        self.guard = Guard(store)
        iam = IAM(store, ACCOUNT)
        iam.create_login_profile("ram", PASSWORD)  # the only password: argon2 is slow
        self.keys = {}
        for name in ("ram", "sita"):
            created = iam.create_access_key(name)
            self.keys[name] = (created.access_key.access_key_id, created.secret_access_key)

    def token(self, name: str) -> str:
        key_id, secret = self.keys[name]
        return self.guard.sts.get_session_token(
            ACCOUNT, access_key_id=key_id, secret_access_key=secret
        ).session_token

    def service_secret(self) -> str:
        return self.secrets.service_secrets[f"{ACCOUNT}/image-processor"]


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture(scope="module")
def tokens(team: Team) -> dict[str, str]:
    return {name: team.token(name) for name in ("ram", "sita")}


@pytest.fixture(scope="module")
def starlette_client(team: Team) -> Iterator[TestClient]:
    app = Starlette(
        routes=[Mount("/", routes=sts_routes(team.guard))],
        middleware=[Middleware(IAMGuardMiddleware, guard=team.guard)],
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


class FlaskAnswer:
    """A Flask test response with httpx's surface: ``status_code``, ``headers``, ``json()``."""

    def __init__(self, response: Any) -> None:
        self.status_code = response.status_code
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        self.data = response.get_data()

    def json(self) -> Any:
        return json.loads(self.data)


class FlaskClient:
    """Flask's test client, called like httpx (``content=``, ``json=``, ``headers=``)."""

    def __init__(self, app: Flask) -> None:
        self.client = app.test_client()

    def request(self, method: str, url: str, **kwargs: Any) -> FlaskAnswer:
        if "content" in kwargs:
            kwargs["data"] = kwargs.pop("content")
        return FlaskAnswer(self.client.open(url, method=method, **kwargs))

    def post(self, url: str, **kwargs: Any) -> FlaskAnswer:
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> FlaskAnswer:
        return self.request("GET", url, **kwargs)


@pytest.fixture(scope="module")
def flask_client(team: Team) -> FlaskClient:
    app = Flask(__name__)
    IAMGuard(app, guard=team.guard)  # enforced: the blueprint must be public
    app.register_blueprint(sts_blueprint(team.guard))
    return FlaskClient(app)


@pytest.fixture(params=["starlette", "flask"])
def client(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_client")


def error(response: Any) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["Error"]["Code"], body["Error"]["Message"]


# --- sign-in -----------------------------------------------------------------------------------


def test_sign_in_with_password(starlette_client: TestClient) -> None:
    """A user signs in with a password; the token authenticates as that user."""
    body = {"AccountId": ACCOUNT, "UserName": "ram", "Password": PASSWORD, "DurationSeconds": 900}
    response = starlette_client.post("/sts/session", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    credentials = response.json()["Credentials"]
    assert set(response.json()) == {"Credentials"}
    assert credentials["Expiration"].endswith("Z")
    who = starlette_client.get("/sts/caller-identity", headers=bearer(credentials["SessionToken"]))
    assert who.json()["Arn"] == f"arn:iamguard:iam::{ACCOUNT}:user/ram"


def test_sign_in_with_access_key(client: Any, team: Team) -> None:
    """An access key as HTTP Basic credentials signs the user in."""
    response = client.post(
        "/sts/session", json={"AccountId": ACCOUNT}, headers=basic(*team.keys["sita"])
    )
    assert response.status_code == 200
    token = response.json()["Credentials"]["SessionToken"]
    assert team.guard.authenticate(token).name == "sita"


def test_wrong_credentials_answer_alike(starlette_client: TestClient, team: Team) -> None:
    """A wrong password, a wrong secret and an unknown key: 401 with the same message."""
    key_id, _ = team.keys["ram"]
    answers = [
        starlette_client.post("/sts/session", json={
            "AccountId": ACCOUNT, "UserName": "ram", "Password": "Wrong-Horse-7"}),
        starlette_client.post("/sts/session", json={"AccountId": ACCOUNT},
                              headers=basic(key_id, "x" * 40)),
        starlette_client.post("/sts/session", json={"AccountId": ACCOUNT},
                              headers=basic("AKIAUNKNOWNUNKNOWN00", "x" * 40)),
    ]  # fmt: skip
    for response in answers:
        assert error(response) == (401, "InvalidClientTokenId", FAILED)
        assert response.headers["www-authenticate"].startswith("Basic ")


def test_sign_in_needs_one_way(client: Any, team: Team) -> None:
    """Basic credentials and a user name together, or neither: 400 InvalidInput."""
    both = client.post("/sts/session", headers=basic(*team.keys["ram"]),
                       json={"AccountId": ACCOUNT, "UserName": "ram", "Password": "x"})  # fmt: skip
    neither = client.post("/sts/session", json={"AccountId": ACCOUNT, "UserName": "ram"})
    assert error(both)[:2] == (400, "InvalidInput")
    assert error(neither)[:2] == (400, "InvalidInput")


def test_sign_in_duration_out_of_range(client: Any, team: Team) -> None:
    """A duration outside AWS's range is 400 ValidationError."""
    body = {"AccountId": ACCOUNT, "DurationSeconds": 60}
    response = client.post("/sts/session", json=body, headers=basic(*team.keys["ram"]))
    assert error(response)[:2] == (400, "ValidationError")


def test_malformed_basic_header(client: Any) -> None:
    """A Basic header that is not base64 of `id:secret` is 401 InvalidClientTokenId."""
    response = client.post("/sts/session", json={"AccountId": ACCOUNT},
                           headers={"Authorization": "Basic !!!"})  # fmt: skip
    assert error(response)[:2] == (401, "InvalidClientTokenId")


def test_service_session_and_image_reader(client: Any, team: Team) -> None:
    """The image-processor service signs in with its secret and assumes ImageReader."""
    signed_in = client.post("/sts/service-session", json={"AccountId": ACCOUNT},
                            headers=basic("image-processor", team.service_secret()))  # fmt: skip
    assert signed_in.status_code == 200, signed_in.json()
    token = signed_in.json()["Credentials"]["SessionToken"]
    body = {"RoleArn": ROLE + "ImageReader", "RoleSessionName": "resize-42"}
    assumed = client.post("/sts/assume-role", json=body, headers=bearer(token))
    assert assumed.status_code == 200, assumed.json()
    user = assumed.json()["AssumedRoleUser"]
    assert user["Arn"] == f"arn:iamguard:sts::{ACCOUNT}:assumed-role/ImageReader/resize-42"
    assert user["AssumedRoleId"].startswith("AROA") and user["AssumedRoleId"].endswith(":resize-42")


def test_service_session_wrong_secret(client: Any) -> None:
    """A wrong service secret is 401 with the sign-in message; no credential is 401 too."""
    wrong = client.post("/sts/service-session", json={"AccountId": ACCOUNT},
                        headers=basic("image-processor", "nope"))  # fmt: skip
    assert error(wrong) == (401, "InvalidClientTokenId", FAILED)
    missing = client.post("/sts/service-session", json={"AccountId": ACCOUNT})
    assert error(missing)[:2] == (401, "MissingAuthenticationToken")


# --- AssumeRole, caller identity, JWKS ---------------------------------------------------------


def test_ram_denied_image_admin(client: Any, tokens: dict[str, str]) -> None:
    """Ram may not assume ImageAdmin: 403 with AWS's sentence."""
    body = {"RoleArn": ROLE + "ImageAdmin", "RoleSessionName": "ram"}
    response = client.post("/sts/assume-role", json=body, headers=bearer(tokens["ram"]))
    status, code, message = error(response)
    assert (status, code) == (403, "AccessDenied")
    assert message.startswith(f"User: arn:iamguard:iam::{ACCOUNT}:user/ram is not authorized")
    assert "sts:AssumeRole" in message


def test_sita_assumes_image_admin(client: Any, tokens: dict[str, str], team: Team) -> None:
    """Sita assumes ImageAdmin with a session policy and AWS's `{"arn"}` policy ARNs."""
    body = {
        "RoleArn": ROLE + "ImageAdmin", "RoleSessionName": "sita-admin", "DurationSeconds": 900,
        "PolicyArns": [{"arn": f"arn:iamguard:iam::{ACCOUNT}:policy/ImageReadAccess"}],
        "Policy": json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "images:GetImage", "Resource": "*"}]}),
    }  # fmt: skip
    response = client.post("/sts/assume-role", json=body, headers=bearer(tokens["sita"]))
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert set(answer) == {"Credentials", "AssumedRoleUser"}
    assert answer["AssumedRoleUser"]["Arn"].endswith("assumed-role/ImageAdmin/sita-admin")
    session = team.guard.authenticate(answer["Credentials"]["SessionToken"])
    assert session.session_policy is not None and len(session.policy_arns) == 1


def test_tags_reach_the_trust_policy(client: Any, tokens: dict[str, str]) -> None:
    """AWS's list of tags reaches STS: ImageAdmin's trust policy does not allow sts:TagSession."""
    body = {
        "RoleArn": ROLE + "ImageAdmin",
        "RoleSessionName": "sita-tags",
        "Tags": [{"Key": "ticket", "Value": "T-1"}],
        "TransitiveTagKeys": ["ticket"],
    }
    response = client.post("/sts/assume-role", json=body, headers=bearer(tokens["sita"]))
    status, code, message = error(response)
    assert (status, code) == (403, "AccessDenied") and "sts:TagSession" in message


def test_assume_role_needs_a_token(client: Any) -> None:
    """No bearer token: 401 MissingAuthenticationToken; a bad one: 401 invalid_token."""
    body = {"RoleArn": ROLE + "ImageAdmin", "RoleSessionName": "x1"}
    missing = client.post("/sts/assume-role", json=body)
    assert error(missing)[:2] == (401, "MissingAuthenticationToken")
    assert missing.headers["www-authenticate"] == "Bearer"
    bad = client.post("/sts/assume-role", json=body, headers=bearer("not.a.jwt"))
    assert error(bad)[0] == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"RoleSessionName": "a"}, "ValidationError"),
        ({"Policy": "{not json"}, "MalformedPolicyDocument"),
        ({"Tags": [{"Key": "k", "Value": "v"}, {"Key": "k", "Value": "w"}]}, "ValidationError"),
        ({"Policy": json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "images:GetImage", "Resource": "x" * 2100}]})},
         "PackedPolicyTooLarge"),
    ],
)  # fmt: skip
def test_assume_role_aws_errors(
    starlette_client: TestClient, tokens: dict[str, str], extra: dict[str, Any], code: str
) -> None:
    """Values outside AWS's constraints answer 400 with AWS's code."""
    body = {"RoleArn": ROLE + "ImageAdmin", "RoleSessionName": "sita", **extra}
    response = starlette_client.post("/sts/assume-role", json=body, headers=bearer(tokens["sita"]))
    assert error(response)[:2] == (400, code)


def test_caller_identity(client: Any, tokens: dict[str, str]) -> None:
    """GET /sts/caller-identity answers Account, Arn and UserId."""
    response = client.get("/sts/caller-identity", headers=bearer(tokens["sita"]))
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"Account", "Arn", "UserId"}
    assert answer["Account"] == ACCOUNT and answer["Arn"].endswith(":user/sita")
    assert error(client.get("/sts/caller-identity"))[:2] == (401, "MissingAuthenticationToken")


def test_jwks(client: Any, team: Team, tokens: dict[str, str]) -> None:
    """The JWKS is the key ring's public set, and names the key that signed a token."""
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    jwks = response.json()
    assert jwks == team.guard.tokens.ring.jwks()
    header = json.loads(base64.urlsafe_b64decode(tokens["ram"].split(".")[0] + "=="))
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    assert all("d" not in key for key in jwks["keys"])


# --- malformed requests ------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
MALFORMED: list[tuple[str, bytes | str, dict[str, str], str]] = [
    ("bad json", b'{"RoleArn": ', JSON, "not valid JSON"),
    ("array body", b"[]", JSON, "must be a JSON object, not an array"),
    ("string body", b'"hello"', JSON, "must be a JSON object, not a string"),
    ("empty body", b"", JSON, "body is empty"),
    ("not utf-8", b'{"RoleArn": "\xff"}', JSON, "not UTF-8"),
    ("duration string", {"DurationSeconds": "900"}, JSON, "`DurationSeconds` must be an integer"),
    ("duration float", {"DurationSeconds": 900.0}, JSON, "`DurationSeconds` must be an integer"),
    ("duration bool", {"DurationSeconds": True}, JSON, "`DurationSeconds` must be an integer"),
    ("role arn number", {"RoleArn": 5}, JSON, "`RoleArn` must be a string, not an integer"),
    ("unknown field", {"RoleName": "x"}, JSON, "unknown field `RoleName`"),
    ("missing field", {"RoleArn": None}, JSON, "`RoleArn` is required"),
    ("tags as map", {"Tags": {"k": "v"}}, JSON, "`Tags` must be an array"),
    ("tag no value", {"Tags": [{"Key": "k"}]}, JSON, "`Tags[0].Value` is required"),
    ("tag extra", {"Tags": [{"Key": "k", "Value": "v", "X": 1}]}, JSON, "unknown field `X`"),
    ("tag value int", {"Tags": [{"Key": "k", "Value": 1}]}, JSON, "`Tags[0].Value` must be"),
    ("policy arn str", {"PolicyArns": ["arn:x"]}, JSON, "`PolicyArns[0]` must be an object"),
    ("policy arn key", {"PolicyArns": [{"Arn": "a"}]}, JSON, "unknown field `Arn`"),
    ("policy number", {"Policy": 3}, JSON, "`Policy` must be a JSON policy document"),
    ("transitive", {"TransitiveTagKeys": "k"}, JSON, "`TransitiveTagKeys` must be an array"),
    ("duplicate key", b'{"RoleArn": "a", "RoleArn": "b"}', JSON, "names `RoleArn` twice"),
    ("nan", b'{"DurationSeconds": NaN}', JSON, "not a JSON value"),
    ("deep", b"[" * 50_000 + b"]" * 10_000, JSON, "body"),
    ("no content type", {"RoleArn": "x"}, {}, "no `Content-Type`"),
    ("form content", b"RoleArn=x", {"Content-Type": "application/x-www-form-urlencoded"},
     "must be `application/json`"),
    ("latin-1", {"RoleArn": "x"}, {"Content-Type": "application/json; charset=latin-1"},
     "charset"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "headers", "message"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_body(
    client: Any, tokens: dict[str, str], team: Team, monkeypatch: pytest.MonkeyPatch,
    case: str, body: Any, headers: dict[str, str], message: str,
) -> None:  # fmt: skip
    """Each malformed body is 400 InvalidInput naming what is wrong; STS is never called."""
    calls: list[object] = []
    real = team.guard.sts.assume_role
    monkeypatch.setattr(
        team.guard.sts, "assume_role", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    base = {"RoleArn": ROLE + "ImageAdmin", "RoleSessionName": "sita"}
    content = body if isinstance(body, bytes) else json.dumps({**base, **body}).encode()
    response = client.post(
        "/sts/assume-role", content=content, headers={**bearer(tokens["sita"]), **headers}
    )
    status, code, text = error(response)
    assert (status, code) == (400, "InvalidInput"), text
    assert message in text
    assert calls == []


def test_body_limit(client: Any, team: Team) -> None:
    """A body over 64 KB is refused before parsing; one just under it is read."""
    padding = {"AccountId": ACCOUNT, "SerialNumber": ""}
    fill = MAX_BODY - len(json.dumps(padding).encode())
    under = json.dumps({**padding, "SerialNumber": "x" * fill}).encode()
    assert len(under) == MAX_BODY
    over = under[:-1] + b" }"
    headers = {**JSON, **basic(*team.keys["ram"])}
    refused = client.post("/sts/session", content=over, headers=headers)
    assert error(refused)[:2] == (400, "InvalidInput")
    assert "larger than 65536 bytes" in error(refused)[2]
    read = client.post("/sts/session", content=under, headers=headers)
    assert error(read)[:2] == (403, "AccessDenied")  # parsed: the (bogus) MFA code was checked


def test_body_limit_streamed(starlette_client: TestClient, team: Team) -> None:
    """A chunked body with no Content-Length is cut off after 64 KB, and refused."""

    def chunks() -> Iterator[bytes]:
        yield b'{"AccountId": "' + ACCOUNT.encode() + b'", "SerialNumber": "'
        for _ in range(100):
            yield b"x" * 4096
        yield b'"}'

    headers = {**JSON, **basic(*team.keys["ram"])}
    response = starlette_client.post("/sts/session", content=chunks(), headers=headers)
    assert "larger than 65536 bytes" in error(response)[2]


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/sts/session", "POST"), ("PUT", "/sts/assume-role", "POST"),
    ("POST", "/sts/caller-identity", "GET"), ("DELETE", "/.well-known/jwks.json", "GET"),
])  # fmt: skip
def test_method_not_allowed(client: Any, method: str, path: str, allow: str) -> None:
    """Another method than the path's is 405 with Allow and a JSON error."""
    response = client.request(method, path)
    assert error(response)[:2] == (405, "MethodNotAllowed")
    assert response.headers["allow"] == allow


# --- throttling, failures ----------------------------------------------------------------------


def test_throttling(team: Team) -> None:
    """Repeated failed sign-ins from one address are 429 Throttling with Retry-After."""
    sts = STS(team.store, team.guard.tokens, authorizer=team.guard.authorizer,
              throttle=SignInThrottle(team.store, free_attempts=1))  # fmt: skip
    app = Starlette(routes=sts_routes(team.guard, sts=sts))
    with TestClient(app, client=("203.0.113.9", 5000)) as client:
        statuses = []
        for i in range(4):  # another key id each time: the address is what is throttled
            response = client.post("/sts/session", json={"AccountId": ACCOUNT},
                                   headers=basic(f"AKIATHROTTLE{i:08}", "x" * 40))  # fmt: skip
            statuses.append(response.status_code)
        assert statuses[0] == 401 and statuses[-1] == 429, statuses
        assert error(response)[1] == "Throttling"
        assert int(response.headers["retry-after"]) >= 1
        other = TestClient(app, client=("198.51.100.7", 5000))
        response = other.post("/sts/session", json={"AccountId": ACCOUNT},
                              headers=basic(*team.keys["ram"]))  # fmt: skip
        assert response.status_code == 200  # another address is not throttled


def test_store_unavailable(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that cannot be read is 503 with a generic message."""
    guard = Guard(team.store)

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("db.internal:5432 refused")

    monkeypatch.setattr(guard.sts, "get_session_token", fail)
    with TestClient(Starlette(routes=sts_routes(guard))) as client:
        response = client.post("/sts/session", json={"AccountId": ACCOUNT},
                               headers=basic(*team.keys["ram"]))  # fmt: skip
    status, code, message = error(response)
    assert (status, code) == (503, "ServiceUnavailable") and "5432" not in message


# --- OpenAPI -----------------------------------------------------------------------------------


def test_openapi_document_is_valid() -> None:
    """The OpenAPI document validates as 3.1 and describes every route and field."""
    document = openapi_document()
    openapi_spec_validator.validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == set(ROUTES)
    for path, methods in ROUTES.items():
        assert {m.lower() for m in methods} == set(document["paths"][path])
    schemas = document["components"]["schemas"]
    assert set(schemas["AssumeRoleRequest"]["properties"]) == {
        "RoleArn", "RoleSessionName", "DurationSeconds", "Policy", "PolicyArns", "Tags",
        "TransitiveTagKeys", "ExternalId", "SourceIdentity", "SerialNumber", "TokenCode",
    }  # fmt: skip
    assert schemas["AssumeRoleRequest"]["required"] == ["RoleArn", "RoleSessionName"]
    assert set(schemas["Error"]["properties"]["Error"]["properties"]) == {"Code", "Message"}


def test_openapi_served(client: Any) -> None:
    """GET /sts/openapi.json serves openapi_document()."""
    response = client.get("/sts/openapi.json")
    assert response.status_code == 200
    assert response.json() == openapi_document()


# --- end to end --------------------------------------------------------------------------------


def test_end_to_end_uvicorn(team: Team) -> None:
    """Through uvicorn and httpx: sign in, assume a role, ask who, read the JWKS."""
    app = Starlette(
        routes=sts_routes(team.guard),
        middleware=[Middleware(IAMGuardMiddleware, guard=team.guard)],
    )
    with serve(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        signed = http.post("/sts/session", json={"AccountId": ACCOUNT},
                           headers=basic(*team.keys["sita"]))  # fmt: skip
        assert signed.status_code == 200, signed.text
        token = signed.json()["Credentials"]["SessionToken"]
        body = {"RoleArn": ROLE + "ImageAdmin", "RoleSessionName": "e2e"}
        assumed = http.post("/sts/assume-role", json=body, headers=bearer(token))
        assert assumed.status_code == 200, assumed.text
        role_token = assumed.json()["Credentials"]["SessionToken"]
        who = http.get("/sts/caller-identity", headers=bearer(role_token)).json()
        assert who["Arn"] == f"arn:iamguard:sts::{ACCOUNT}:assumed-role/ImageAdmin/e2e"
        assert http.get("/.well-known/jwks.json").json()["keys"]
        big = http.post("/sts/session", content=b"{" + b" " * (2 * MAX_BODY) + b"}",
                        headers={**JSON, **basic(*team.keys["sita"])})  # fmt: skip
        assert error(big)[:2] == (400, "InvalidInput")
