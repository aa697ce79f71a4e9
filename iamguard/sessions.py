"""A session: who the bearer of a session token is. It never carries permissions.

The token's claims are the session's identity (principal ARN, account, unique id, session name,
source identity, session and transitive tags, MFA, the session policy, how deep in a role
chain); permissions are read from the model at request time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

# Principal types, as aws:PrincipalType names them.
USER: Final = "User"
ASSUMED_ROLE: Final = "AssumedRole"
ROOT: Final = "Account"
SERVICE: Final = "Service"
PRINCIPAL_TYPES: Final = (USER, ASSUMED_ROLE, ROOT, SERVICE)


@dataclass(frozen=True)
class Session:
    """The identity a verified session token proves."""

    principal: str  # the ARN: user, root, assumed-role session, or service
    principal_type: str  # one of PRINCIPAL_TYPES
    account: str
    user_id: str  # aws:userid: AIDA... for users, AROA...:SESSION for role sessions
    issued_at: int  # epoch seconds (aws:TokenIssueTime)
    expires_at: int
    token_id: str  # the jti
    issued_at_ms: int = 0  # epoch milliseconds: orders the session against revocations
    name: str = ""  # the user's, role's or service's name
    role_arn: str | None = None  # for role sessions: the role (aws:PrincipalArn)
    session_name: str | None = None
    source_identity: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    mfa_authenticated_at: int | None = None  # epoch seconds, when MFA was presented
    session_policy: str | None = None  # the inline session policy's JSON text
    policy_arns: tuple[str, ...] = ()  # managed session policies
    chain_depth: int = 0  # 0: signed in; 1: assumed a role; 2+: role chaining

    @property
    def mfa_present(self) -> bool:
        return self.mfa_authenticated_at is not None

    def claims(self) -> dict[str, Any]:
        """The token's private claims (``sub``, ``jti`` and the times are the token's own)."""
        claims: dict[str, Any] = {
            "principal_type": self.principal_type, "account": self.account,
            "userid": self.user_id, "name": self.name, "chain_depth": self.chain_depth,
            "iat_ms": self.issued_at_ms,
        }  # fmt: skip
        optional = {
            "role_arn": self.role_arn, "session_name": self.session_name,
            "source_identity": self.source_identity, "session_policy": self.session_policy,
            "mfa_time": self.mfa_authenticated_at,
            "session_tags": dict(self.tags) or None,
            "transitive_tag_keys": list(self.transitive_tag_keys) or None,
            "policy_arns": list(self.policy_arns) or None,
        }  # fmt: skip
        claims.update({k: v for k, v in optional.items() if v is not None})
        return claims

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Session:
        """The session a verified token's claims describe; ``ValueError`` if they do not fit."""
        principal_type = _text(_claim(claims, "principal_type"))
        if principal_type not in PRINCIPAL_TYPES:
            raise ValueError(f"unknown principal type `{principal_type}`")
        tags = claims.get("session_tags") or {}
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise ValueError("session tags must map strings to strings")
        mfa_time = claims.get("mfa_time")
        return cls(
            principal=_text(_claim(claims, "sub")), principal_type=principal_type,
            account=_text(_claim(claims, "account")), user_id=_text(_claim(claims, "userid")),
            issued_at=_integer(_claim(claims, "iat")), expires_at=_integer(_claim(claims, "exp")),
            token_id=_text(_claim(claims, "jti")), name=_text(claims.get("name", "")),
            issued_at_ms=_integer(claims.get("iat_ms", _integer(_claim(claims, "iat")) * 1000)),
            role_arn=_optional(claims.get("role_arn")),
            session_name=_optional(claims.get("session_name")),
            source_identity=_optional(claims.get("source_identity")), tags=tags,
            transitive_tag_keys=_texts(claims.get("transitive_tag_keys")),
            mfa_authenticated_at=None if mfa_time is None else _integer(mfa_time),
            session_policy=_optional(claims.get("session_policy")),
            policy_arns=_texts(claims.get("policy_arns")),
            chain_depth=_integer(claims.get("chain_depth", 0)),
        )  # fmt: skip

    def context(self, now: int) -> dict[str, Any]:
        """The global condition keys this session sets (``aws:TokenIssueTime``, MFA, tags,
        source identity); the authorizer adds the principal's own."""
        keys: dict[str, Any] = {
            "aws:TokenIssueTime": _iso(self.issued_at),
            "aws:MultiFactorAuthPresent": "true" if self.mfa_present else "false",
        }
        if self.mfa_authenticated_at is not None:
            keys["aws:MultiFactorAuthAge"] = str(max(0, now - self.mfa_authenticated_at))
        if self.source_identity is not None:
            keys["aws:SourceIdentity"] = self.source_identity
        if self.role_arn is not None:
            keys["aws:PrincipalArn"] = self.role_arn
        for key, value in self.tags.items():
            keys[f"aws:PrincipalTag/{key}"] = value  # session tags win over the role's tags
        return keys


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    if name not in claims:
        raise ValueError(f"claim `{name}` is missing")
    return claims[name]


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("a claim that must be a whole number is not")
    return value


def _texts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("a claim that must be a list of texts is not")
    return tuple(map(_text, value))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a claim that must be text is not")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else _text(value)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
