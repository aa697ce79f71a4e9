"""Sessions: the claims a token carries and the session read back from them, malformed claims
(refused by ``from_claims`` and, in a token the key ring signed, by ``STS.authenticate``), and
the condition keys a session sets.

"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iamguard.errors import InvalidClientTokenId
from iamguard.iam import IAM, create_account
from iamguard.sessions import ASSUMED_ROLE, PRINCIPAL_TYPES, ROOT, SERVICE, USER, Session
from iamguard.stores.memory import MemoryStore
from iamguard.sts import STS
from iamguard.tokens import TOKEN_TYPE, KeyRing, Tokens

ACCOUNT = "123456789012"
RAM = f"arn:iamguard:iam::{ACCOUNT}:user/ram"
ROLE = f"arn:iamguard:iam::{ACCOUNT}:role/ImageAdmin"
ROLE_SESSION = f"arn:iamguard:sts::{ACCOUNT}:assumed-role/ImageAdmin/batch"
ISSUED = 1_700_000_000  # 2023-11-14T22:13:20Z


def token_claims(session: Session) -> dict[str, Any]:
    """The claims a token for ``session`` holds: its own and the token's (sub, iat, exp, jti),
    through JSON as a token carries them."""
    claims = {
        **session.claims(), "sub": session.principal, "iat": session.issued_at,
        "exp": session.expires_at, "jti": session.token_id,
    }  # fmt: skip
    return json.loads(json.dumps(claims))


# --- round trip ----------------------------------------------------------------------------------

texts = st.text(max_size=40)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-",
                min_size=1, max_size=64)  # fmt: skip
epochs = st.integers(min_value=0, max_value=2**40)
sessions = st.builds(
    Session,
    principal=texts,
    principal_type=st.sampled_from(PRINCIPAL_TYPES),
    account=st.from_regex(r"[0-9]{12}", fullmatch=True),
    user_id=texts,
    issued_at=epochs,
    expires_at=epochs,
    token_id=texts,
    issued_at_ms=epochs,
    name=texts,
    role_arn=st.none() | texts,
    session_name=st.none() | names,
    source_identity=st.none() | names,
    tags=st.dictionaries(texts, texts, max_size=5),
    transitive_tag_keys=st.lists(texts, max_size=3).map(tuple),
    mfa_authenticated_at=st.none() | epochs,
    session_policy=st.none() | texts,
    policy_arns=st.lists(texts, max_size=3).map(tuple),
    chain_depth=st.integers(min_value=0, max_value=10),
)


@given(session=sessions)
@settings(max_examples=200, deadline=None)
def test_claims_round_trip(session: Session) -> None:
    """A session's claims, through JSON, give back the same session."""
    assert Session.from_claims(token_claims(session)) == session


def test_claims_round_trip_through_a_token() -> None:
    """A role session's claims, signed into a token and verified, give back the session with
    the token's own times and id."""
    now = float(int(time.time()))
    tokens = Tokens(KeyRing(), issuer="iamguard-test", audience="images", clock=lambda: now)
    session = Session(
        principal=ROLE_SESSION, principal_type=ASSUMED_ROLE, account=ACCOUNT,
        user_id="AROAEXAMPLEEXAMPLEEX:batch", issued_at=0, expires_at=0, token_id="",
        issued_at_ms=int(now * 1000), name="ImageAdmin", role_arn=ROLE, session_name="batch",
        source_identity="ram", tags={"team": "images"}, transitive_tag_keys=("team",),
        mfa_authenticated_at=int(now) - 5, session_policy='{"Version": "2012-10-17"}',
        policy_arns=(f"arn:iamguard:iam::{ACCOUNT}:policy/ImageReadAccess",), chain_depth=2,
    )  # fmt: skip
    token, full = tokens.issue(session.principal, 900, session.claims())
    again = Session.from_claims(tokens.verify(token))
    assert again.issued_at == int(now)
    assert again.expires_at == int(now) + 900
    assert again.token_id == full["jti"]
    fields = {"issued_at": 0, "expires_at": 0, "token_id": ""}
    assert Session(**{**vars(again), **fields}) == session


# --- malformed claims ----------------------------------------------------------------------------

VALID = Session(
    principal=RAM, principal_type=USER, account=ACCOUNT, user_id="AIDAEXAMPLEEXAMPLEEX",
    issued_at=ISSUED, expires_at=ISSUED + 3600, token_id="jti-1", issued_at_ms=ISSUED * 1000,
    name="ram",
)  # fmt: skip

# (id, claim, value): each makes VALID's claims malformed and is refused with ValueError now.
REFUSED = [
    ("unknown-principal-type", "principal_type", "Robot"),
    ("principal-type-list", "principal_type", [USER]),
    ("principal-type-lower", "principal_type", "user"),
    ("tag-value-number", "session_tags", {"team": 1}),
    ("tag-value-null", "session_tags", {"team": None}),
    ("tag-value-list", "session_tags", {"team": ["images"]}),
    ("tags-text", "session_tags", "team=images"),
    ("tags-list", "session_tags", [["team", "images"]]),
    ("sub-number", "sub", 42),
    ("account-null", "account", None),
    ("userid-number", "userid", 1.5),
    ("name-number", "name", 7),
    ("session-name-number", "session_name", 7),
    ("role-arn-object", "role_arn", {"arn": ROLE}),
    ("source-identity-list", "source_identity", ["ram"]),
    ("session-policy-object", "session_policy", {"Version": "2012-10-17"}),
    ("transitive-key-number", "transitive_tag_keys", [1]),
    ("policy-arn-null", "policy_arns", [None]),
    ("mfa-time-text", "mfa_time", "soon"),
    ("chain-depth-text", "chain_depth", "deep"),
    ("iat-text", "iat", "yesterday"),
    ("jti-number", "jti", 5),
]
# The same, for malformations from_claims lets through or answers with another exception.
# Claims from_claims once let through (accepted, or another exception); refused since.
FORMERLY_ACCEPTED = [
    ("chain-depth-null", "chain_depth", None, "TypeError"),
    ("mfa-time-list", "mfa_time", [1], "TypeError"),
    ("iat-object", "iat", {"t": 1}, "TypeError"),
    ("transitive-keys-text", "transitive_tag_keys", "team", "accepted, as ('t', 'e', 'a', 'm')"),
    ("policy-arns-text", "policy_arns", f"arn:iamguard:iam::{ACCOUNT}:policy/P", "accepted"),
    ("chain-depth-numeric-text", "chain_depth", "2", "accepted as 2"),
    ("chain-depth-bool", "chain_depth", True, "accepted as 1"),
]
MISSING = ["principal_type", "sub", "account", "userid", "iat", "exp", "jti"]


def malformed(claim: str, value: Any) -> dict[str, Any]:
    return {**token_claims(VALID), claim: value}


MALFORMED = [
    *(pytest.param(claim, value, id=case) for case, claim, value in REFUSED),
    *(pytest.param(claim, value, id=case) for case, claim, value, _ in FORMERLY_ACCEPTED),
]


def test_valid_claims_are_accepted() -> None:
    """The claims every malformed case starts from are themselves valid."""
    assert Session.from_claims(token_claims(VALID)) == VALID


@pytest.mark.parametrize(("claim", "value"), MALFORMED)
def test_malformed_claims_are_value_errors(claim: str, value: Any) -> None:
    """A claim of the wrong type, an unknown principal type or a non-text tag is ValueError."""
    with pytest.raises(ValueError):
        Session.from_claims(malformed(claim, value))


@pytest.mark.parametrize("claim", MISSING)
def test_missing_claims_are_value_errors(claim: str) -> None:
    """A claim the session needs that is missing is ValueError."""
    claims = token_claims(VALID)
    del claims[claim]
    with pytest.raises(ValueError):
        Session.from_claims(claims)


@pytest.fixture(scope="module")
def signed_in() -> Iterator[tuple[STS, dict[str, Any]]]:
    """An STS over a store where ram exists, and the verified claims of his real session token:
    forged tokens start from these, so only the malformation can make them fail."""
    store = MemoryStore()
    create_account(store, email="root@example.com", password="Root-passw0rd!", account_id=ACCOUNT)
    iam = IAM(store, ACCOUNT)
    iam.create_user("ram")
    key = iam.create_access_key("ram")
    tokens = Tokens(KeyRing(), issuer="iamguard-test", audience="images")
    sts = STS(store, tokens)
    credentials = sts.get_session_token(
        ACCOUNT, access_key_id=key.access_key.access_key_id,
        secret_access_key=key.secret_access_key,
    )  # fmt: skip
    yield sts, tokens.verify(credentials.session_token)
    sts.authorizer.read_model.close()
    store.close()


def forge(sts: STS, claims: dict[str, Any]) -> str:
    """A token with ``claims``, signed with the ring's current key as STS signs its own."""
    key = sts.tokens.ring.current
    headers = {"kid": key.kid, "typ": TOKEN_TYPE}
    return jwt.encode(claims, key.private, algorithm=key.algorithm, headers=headers)


def test_a_forged_copy_of_valid_claims_authenticates(signed_in: tuple[STS, dict]) -> None:
    """The forging harness is sound: the real claims, signed again, authenticate as ram."""
    sts, claims = signed_in
    assert sts.authenticate(forge(sts, claims)).principal == RAM


# Claims that authenticate reads again from the token (sub, iat, exp, jti) are left out where
# pyjwt itself checks them; the rest are the ones Session.from_claims reads.
FORGED = [
    *(
        pytest.param(claim, value, id=case)
        for case, claim, value in REFUSED
        if claim not in ("sub", "iat", "jti")
    ),
    *(
        pytest.param(claim, value, id=case)
        for case, claim, value, _ in FORMERLY_ACCEPTED
        if claim != "iat"
    ),
    pytest.param("principal_type", None, id="principal-type-missing"),
]


@pytest.mark.parametrize(("claim", "value"), FORGED)
def test_authenticate_refuses_signed_tokens_with_malformed_claims(
    signed_in: tuple[STS, dict], claim: str, value: Any
) -> None:
    """A token the ring signed whose claims do not describe a session is InvalidClientTokenId
    (never a TypeError, KeyError or ValueError, and never a session)."""
    sts, claims = signed_in
    forged = {**claims, claim: value}
    if value is None and claim == "principal_type":
        del forged[claim]
    with pytest.raises(InvalidClientTokenId, match="malformed"):
        sts.authenticate(forge(sts, forged))


# --- the condition keys a session sets -----------------------------------------------------------


def test_context_of_a_user_session() -> None:
    """A user session without MFA sets aws:TokenIssueTime (ISO 8601, UTC) and
    aws:MultiFactorAuthPresent false, and nothing it does not have."""
    context = VALID.context(ISSUED + 10)
    assert context == {
        "aws:TokenIssueTime": "2023-11-14T22:13:20Z",
        "aws:MultiFactorAuthPresent": "false",
    }
    assert (
        datetime.strptime(context["aws:TokenIssueTime"], "%Y-%m-%dT%H:%M:%SZ")
        .replace(tzinfo=timezone.utc)
        .timestamp()
        == ISSUED
    )


def test_context_of_a_role_session() -> None:
    """A role session with MFA, a source identity and session tags sets the MFA keys (age in
    seconds at ``now``), aws:SourceIdentity, aws:PrincipalArn (the role) and aws:PrincipalTag/*."""
    session = Session(
        principal=ROLE_SESSION, principal_type=ASSUMED_ROLE, account=ACCOUNT,
        user_id="AROAEXAMPLEEXAMPLEEX:batch", issued_at=ISSUED, expires_at=ISSUED + 3600,
        token_id="jti-2", name="ImageAdmin", role_arn=ROLE, session_name="batch",
        source_identity="ram-laptop", tags={"team": "images", "Project": "cats"},
        mfa_authenticated_at=ISSUED - 100,
    )  # fmt: skip
    assert session.context(ISSUED + 20) == {
        "aws:TokenIssueTime": "2023-11-14T22:13:20Z",
        "aws:MultiFactorAuthPresent": "true",
        "aws:MultiFactorAuthAge": "120",
        "aws:SourceIdentity": "ram-laptop",
        "aws:PrincipalArn": ROLE,
        "aws:PrincipalTag/team": "images",
        "aws:PrincipalTag/Project": "cats",
    }


def test_mfa_age_is_never_negative() -> None:
    """aws:MultiFactorAuthAge is 0, not negative, when ``now`` is before the MFA time."""
    session = Session(**{**vars(VALID), "mfa_authenticated_at": ISSUED + 50})
    assert session.context(ISSUED)["aws:MultiFactorAuthAge"] == "0"


@pytest.mark.parametrize("principal_type", [ROOT, SERVICE])
def test_context_of_root_and_service_sessions(principal_type: str) -> None:
    """Root and service sessions set the token time and MFA keys only."""
    session = Session(**{**vars(VALID), "principal_type": principal_type})
    assert set(session.context(ISSUED)) == {"aws:TokenIssueTime", "aws:MultiFactorAuthPresent"}
