"""STS: sign-in (GetSessionToken), AssumeRole and GetCallerIdentity, with AWS's rules.

Users sign in with a password or an access key; the root user with its e-mail and password;
service principals with their credential. Each gets a short-lived session token. A role is
assumed by a session whose own policies allow ``sts:AssumeRole`` on it (unless the role's trust
policy names that principal itself) and whose request the trust policy allows, conditions and
all. ``authenticate`` turns a token back into its session, refusing it when it was revoked or
its principal is gone (a re-created user of the same name is another principal).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, NoReturn

from cachetools import LRUCache

from iamguard.arn import NAME, assumed_role_arn, parse_arn, root_arn
from iamguard.audit import audit
from iamguard.authorizer import Authorizer
from iamguard.errors import (
    AccessDenied,
    IAMGuardError,
    InvalidClientTokenId,
    InvalidInput,
    MalformedPolicyDocument,
)
from iamguard.iam import IAM
from iamguard.iam.base import Clock, tag_character, utc_now
from iamguard.iam.mfa import ROOT_OWNER
from iamguard.passwords import dummy_password_hash, verify_password, verify_secret
from iamguard.policy import AccessRequest, Decision, Effect, Policy, PolicySet, Reason, evaluate
from iamguard.policy.evaluate import resource_policy_allows
from iamguard.policy.limits import (
    SESSION_POLICY_SIZE,
    check_policy_characters,
    check_policy_size,
)
from iamguard.sessions import ASSUMED_ROLE, ROOT, SERVICE, USER, Session
from iamguard.stores.base import Store
from iamguard.throttle import SignInThrottle, address_key, user_key
from iamguard.tokens import Tokens

SESSION_TOKEN_DURATION: Final = (900, 129_600, 43_200)  # min, max, default (GetSessionToken)
ROOT_SESSION_MAX: Final = 3600
ROLE_SESSION_MIN: Final = 900
CHAINED_SESSION_MAX: Final = 3600
MAX_POLICY_ARNS: Final = 10
MAX_SESSION_TAGS: Final = 50
SESSION_MEMO: Final = 10_000  # authenticated sessions remembered (per model generation)
PACKED_SIZE: Final = 4096  # session policy, policy ARNs and tags together, in a token of 8 KB
_EXTERNAL_ID: Final = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
_SESSION_NAME: Final = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_SOURCE_IDENTITY: Final = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_FAILED: Final = "the credentials are invalid"
MFACheck = Callable[[str, str, str, str], bool]  # (account, owner, serial, code) -> valid?


class ValidationError(IAMGuardError):
    """A parameter outside AWS's constraints (a duration, a name, a tag)."""

    code = "ValidationError"


class PackedPolicyTooLarge(IAMGuardError):
    """The session policy (with the session tags) is too large."""

    code = "PackedPolicyTooLarge"


@dataclass(frozen=True)
class Credentials:
    """What sign-in and AssumeRole return: the session token (a JWT) and when it expires."""

    session_token: str
    expiration: str  # ISO 8601, UTC
    session: Session

    def __repr__(self) -> str:
        return f"Credentials(principal={self.session.principal!r}, expiration={self.expiration!r})"


class STS:
    """The token service for every account of one store."""

    def __init__(
        self,
        store: Store,
        tokens: Tokens,
        *,
        authorizer: Authorizer | None = None,
        clock: Clock = utc_now,
        mfa_check: MFACheck | None = None,
        throttle: SignInThrottle | None = None,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.authorizer = authorizer or Authorizer(store, clock=clock)
        self.partition = self.authorizer.partition
        self.clock = clock
        self._mfa_check = mfa_check or self._store_mfa_check
        self._sessions: LRUCache[tuple[str, int], Session] = LRUCache(SESSION_MEMO)
        self._sessions_lock = threading.Lock()
        # Failed sign-ins are counted in the store, so every instance throttles alike.
        self._throttle = throttle if throttle is not None else SignInThrottle(store, clock=clock)

    # --- sign-in -----------------------------------------------------------------------------

    def get_session_token(
        self, account_id: str, *, user_name: str | None = None, password: str | None = None,
        access_key_id: str | None = None, secret_access_key: str | None = None,
        duration_seconds: int = SESSION_TOKEN_DURATION[2], serial_number: str | None = None,
        token_code: str | None = None, source_ip: str | None = None,
    ) -> Credentials:  # fmt: skip
        """Sign an IAM user in with a password (``user_name`` + ``password``) or an access key.

        An unknown user, a wrong password or secret, an inactive or deleted key: the same
        ``InvalidClientTokenId``, after the same work."""
        _check_duration(duration_seconds, SESSION_TOKEN_DURATION[0], SESSION_TOKEN_DURATION[1])
        by_password = user_name is not None or password is not None
        by_key = access_key_id is not None or secret_access_key is not None
        if by_password == by_key:
            raise InvalidInput("sign in with a user name and password, or an access key pair")
        keys = self._throttle_keys(account_id, user_name or access_key_id or "", source_ip)
        self._throttled(keys)
        user = self._password_user(account_id, user_name, password) if by_password else (
            self._key_user(account_id, access_key_id, secret_access_key)
        )  # fmt: skip
        if user is None:
            self._failed(keys, account_id, "user", source_ip)
        mfa_time = self._mfa(account_id, user["name"], serial_number, token_code, keys)
        self._succeeded(keys)
        session = Session(
            principal=user["arn"], principal_type=USER, account=account_id,
            user_id=user["user_id"], name=user["name"], mfa_authenticated_at=mfa_time,
            issued_at=0, expires_at=0, token_id="",
        )  # fmt: skip
        return self._issue(session, duration_seconds, "signin.succeeded")

    def sign_in_root(
        self, account_id: str, email: str, password: str, *, duration_seconds: int = 3600,
        serial_number: str | None = None, token_code: str | None = None,
        source_ip: str | None = None,
    ) -> Credentials:  # fmt: skip
        """Sign the root user in (at most one hour). Every root sign-in is audited."""
        _check_duration(duration_seconds, SESSION_TOKEN_DURATION[0], ROOT_SESSION_MAX)
        keys = self._throttle_keys(account_id, "root", source_ip)
        self._throttled(keys)
        login = self.store.read(lambda tx: tx.get("root_login", account_id, "root"))
        encoded = login["password_hash"] if login else dummy_password_hash()
        valid = verify_password(encoded, password)  # the same work for an unknown account
        if not (login and valid and login["email"].lower() == email.lower()):
            self._failed(keys, account_id, "root", source_ip)
        mfa_time = self._mfa(account_id, ROOT_OWNER, serial_number, token_code, keys)
        self._succeeded(keys)
        session = Session(
            principal=root_arn(self.partition, account_id), principal_type=ROOT,
            account=account_id, user_id=account_id, name="root", mfa_authenticated_at=mfa_time,
            issued_at=0, expires_at=0, token_id="",
        )  # fmt: skip
        return self._issue(session, duration_seconds, "root.signin")

    def get_service_session(
        self, account_id: str, service_name: str, secret: str, *, duration_seconds: int = 3600
    ) -> Credentials:
        """A session for a service principal: it can do nothing but assume roles that trust it."""
        _check_duration(duration_seconds, ROLE_SESSION_MIN, 43_200)
        if not isinstance(secret, str) or not isinstance(service_name, str):
            self._failed([], account_id, "service", None)
        record = self.store.read(lambda tx: tx.get("service", account_id, service_name))
        encoded = record["secret_hash"] if record else "x$" + "0" * 64
        if not (verify_secret(encoded, secret) and record):
            self._failed([], account_id, "service", None)
        session = Session(
            principal=record["name"], principal_type=SERVICE, account=account_id,
            user_id=record["service_id"], name=record["name"], issued_at=0, expires_at=0,
            token_id="",
        )  # fmt: skip
        return self._issue(session, duration_seconds, "service.signin")

    # --- AssumeRole --------------------------------------------------------------------------

    def assume_role(
        self, caller: Session, role_arn: str, role_session_name: str, *,
        duration_seconds: int = 3600, policy: str | Mapping[str, Any] | None = None,
        policy_arns: Iterable[str] = (), tags: Mapping[str, str] | None = None,
        transitive_tag_keys: Iterable[str] = (), external_id: str | None = None,
        source_identity: str | None = None, serial_number: str | None = None,
        token_code: str | None = None, context: Mapping[str, Any] | None = None,
    ) -> Credentials:  # fmt: skip
        """Assume ``role_arn`` for a session named ``role_session_name`` (see the module)."""
        if caller.principal_type == ROOT:
            raise AccessDenied("Roles may not be assumed by root accounts")
        self.authorizer.read_model.refresh()
        if not isinstance(role_session_name, str) or not _SESSION_NAME.fullmatch(role_session_name):
            raise ValidationError("RoleSessionName must be 2-64 of letters, digits and +=,.@_-")
        if external_id is not None and not _EXTERNAL_ID.fullmatch(external_id):
            raise ValidationError("ExternalId must be 2-1224 of letters, digits and +=,.@:/_-")
        if source_identity is not None and not _SOURCE_IDENTITY.fullmatch(source_identity):
            raise ValidationError("SourceIdentity must be 2-64 of letters, digits and +=,.@_-")
        if source_identity and caller.source_identity and source_identity != caller.source_identity:
            raise ValidationError(
                "SourceIdentity is set for the whole role chain: it cannot change"
            )
        arns = tuple(policy_arns)
        if len(arns) > MAX_POLICY_ARNS:
            raise ValidationError(f"PolicyArns may name at most {MAX_POLICY_ARNS} policies")
        session_tags = _session_tags(caller, tags, transitive_tag_keys)
        policy_text = self._session_policy(policy)
        target = parse_arn(role_arn)
        name = target.resource.rsplit("/", 1)[-1] if target else ""
        role = self.authorizer.read_model.role(target.account, name) if (
            target and target.service == "iam" and target.resource.startswith("role/")
            and NAME.fullmatch(name)
        ) else None  # fmt: skip
        chained = caller.principal_type == ASSUMED_ROLE
        if (serial_number is not None or token_code is not None) and caller.principal_type != USER:
            raise ValidationError("SerialNumber and TokenCode: only an IAM user presents MFA")
        keys = self._throttle_keys(caller.account, caller.name, None)
        if serial_number is not None or token_code is not None:
            self._throttled(keys)  # six digits are not to be guessed here either
        mfa_time = self._mfa(caller.account, caller.name, serial_number, token_code, keys)
        mfa_time = mfa_time or caller.mfa_authenticated_at
        if role is None or role.arn != role_arn or role.trust is None:
            raise AccessDenied(self._denied(caller, "sts:AssumeRole", role_arn))
        for arn in arns:
            if self.authorizer.read_model.managed_policy(role.account, arn) is None:
                raise ValidationError(f"PolicyArns: policy `{arn}` cannot be found")
        request_context = {  # what the session says wins over what the request says
            **(context or {}), **self._caller_context(caller, mfa_time),
            "sts:RoleSessionName": role_session_name,
            **({"sts:ExternalId": external_id} if external_id is not None else {}),
            **({"sts:SourceIdentity": source_identity} if source_identity else {}),
            **({f"aws:RequestTag/{k}": v for k, v in (tags or {}).items()}),
            **({"aws:TagKeys": list(tags)} if tags else {}),
            **({"sts:TransitiveTagKeys": list(transitive_tag_keys)} if transitive_tag_keys
               else {}),
        }  # fmt: skip
        actions = ["sts:AssumeRole"]
        if tags or transitive_tag_keys:
            actions.append("sts:TagSession")
        if source_identity and not caller.source_identity:
            actions.append("sts:SetSourceIdentity")
        for action in actions:
            decision = self._trust_decision(caller, action, role.arn, role.trust, request_context)
            if not decision.allowed:
                audit("role.denied", principal=caller.principal, role=role_arn, action=action)
                raise AccessDenied(self._denied(caller, action, role_arn))
        limit = CHAINED_SESSION_MAX if chained else role.max_session_duration
        _check_duration(duration_seconds, ROLE_SESSION_MIN, limit)
        packed = len(json.dumps({"p": policy_text, "t": session_tags, "a": arns}))
        if packed > PACKED_SIZE:
            raise PackedPolicyTooLarge(
                f"the session policy, policy ARNs and tags take {packed} characters: at most "
                f"{PACKED_SIZE} fit in a session token"
            )
        principal = assumed_role_arn(self.partition, role.account, role.name, role_session_name)
        session = Session(
            principal=principal, principal_type=ASSUMED_ROLE, account=role.account,
            user_id=f"{role.unique_id}:{role_session_name}", name=role.name, role_arn=role.arn,
            session_name=role_session_name,
            source_identity=source_identity or caller.source_identity,
            tags=session_tags, transitive_tag_keys=_transitive(caller, transitive_tag_keys),
            mfa_authenticated_at=mfa_time, session_policy=policy_text, policy_arns=arns,
            chain_depth=caller.chain_depth + 1 if chained else 1,
            issued_at=0, expires_at=0, token_id="",
        )  # fmt: skip
        return self._issue(session, duration_seconds, "role.assumed", caller=caller.principal)

    def _trust_decision(
        self, caller: Session, action: str, role_arn: str, trust: Policy,
        context: Mapping[str, Any],
    ) -> Decision:  # fmt: skip
        """The caller's own policies and the role's trust policy, evaluated as AWS does within
        an account: a trust policy naming the caller itself needs nothing from its policies."""
        identity: PolicySet | list[Policy] = []
        boundary: PolicySet | list[Policy] = []
        session_policies: PolicySet | list[Policy] = []
        view = None
        if caller.principal_type in (USER, ASSUMED_ROLE):  # root never assumes a role
            view, policies = self.authorizer.gather(caller)  # both from one model state
            if view is not None:
                identity, boundary, session_policies = view.identity, view.boundary, policies
        full_context = self.authorizer.context(caller.principal, view, context)
        request = AccessRequest(caller.principal, action, role_arn, full_context)
        decision = evaluate(
            request, identity=identity, boundaries=boundary, session=session_policies,
            resource=trust,
        )  # fmt: skip
        # The trust policy must allow, always; evaluate() alone would also let the caller's own
        # policies suffice, as they do for a resource within one account.
        if decision.allowed and not resource_policy_allows(trust, request):
            return Decision(Effect.IMPLICIT_DENY, request, Reason.NO_RESOURCE_ALLOW)
        return decision

    # --- identity, authentication, revocation ----------------------------------------------------

    def get_caller_identity(self, session: Session) -> dict[str, str]:
        """Who the caller is (needs no permission): account, ARN, unique id."""
        return {"Account": session.account, "Arn": session.principal, "UserId": session.user_id}

    def authenticate(self, token: str) -> Session:
        """The session a token proves, or ``InvalidClientTokenId``/``ExpiredToken``: a revoked
        session, or one whose principal was deleted (or re-created under the same name), is
        refused."""
        claims = self.tokens.verify(token)  # signature (or cache) and times, every call
        model = self.authorizer.read_model
        model.refresh()
        # Whether the principal exists and the session is revoked changes only with the model,
        # so a session checked in this model generation stays good until the model changes.
        memo_key = (token, model.generation)  # the token itself: never another with its jti
        with self._sessions_lock:
            known = self._sessions.get(memo_key)
        if known is not None:
            return known
        try:
            session = Session.from_claims(claims)
        except (KeyError, TypeError, ValueError):
            raise InvalidClientTokenId("the security token's claims are malformed") from None
        if not self._principal_current(session):
            raise InvalidClientTokenId("the security token's principal no longer exists")
        if self._revoked(session):
            raise InvalidClientTokenId("the security token has been revoked")
        with self._sessions_lock:
            self._sessions[memo_key] = session
        return session

    def revoke_session(self, session: Session) -> None:
        """End one session (by its token id), in every process within the propagation time."""
        record = {"token_id": session.token_id, "expires_at": session.expires_at}

        def revoke(tx: Any) -> None:
            if tx.get("revoked_token", session.account, session.token_id) is None:
                tx.insert("revoked_token", session.account, session.token_id, record)

        self.store.write(revoke)
        audit("session.revoked", principal=session.principal, token_id=session.token_id)

    def revoke_older_sessions(self, account_id: str, kind: str, name: str) -> None:
        """AWS's "revoke active sessions": every session of the user or role issued before now
        stops working; sessions issued afterwards work."""
        if kind not in ("user", "role"):
            raise InvalidInput(f"`{kind}` is not user or role")
        key = f"{kind}/{name}".lower()
        now_ms = int(self.clock().timestamp() * 1000)
        record = {"principal": key, "not_before_ms": now_ms}

        def revoke(tx: Any) -> None:
            tx.delete("session_revocation", account_id, key)
            tx.insert("session_revocation", account_id, key, record)

        self.store.write(revoke)
        audit("sessions.revoked", account=account_id, principal=key)

    # --- internals ---------------------------------------------------------------------------

    def _issue(self, session: Session, duration: int, event: str, **extra: str) -> Credentials:
        now = self.clock()
        claims = {**session.claims(), "iat_ms": int(now.timestamp() * 1000)}
        token, full = self.tokens.issue(session.principal, duration, claims)
        issued = Session.from_claims(full)
        expiration = datetime.fromtimestamp(issued.expires_at, timezone.utc)
        audit(event, principal=issued.principal, token_id=issued.token_id, **extra)
        audit("session.issued", principal=issued.principal, token_id=issued.token_id,
              expires=issued.expires_at)  # fmt: skip
        return Credentials(token, expiration.strftime("%Y-%m-%dT%H:%M:%SZ"), issued)

    def _password_user(
        self, account_id: str, user_name: str | None, password: str | None
    ) -> dict[str, Any] | None:
        def read(tx: Any) -> tuple[Any, Any]:
            if not isinstance(user_name, str) or not NAME.fullmatch(user_name):
                return None, None
            return tx.get("user", account_id, user_name), tx.get(
                "login_profile", account_id, user_name
            )

        user, profile = self.store.read(read)
        encoded = profile["password_hash"] if profile else dummy_password_hash()
        valid = verify_password(encoded, password or "")  # the same work whatever is missing
        return user if (user and profile and valid) else None

    def _key_user(
        self, account_id: str, key_id: str | None, secret: str | None
    ) -> dict[str, Any] | None:
        def read(tx: Any) -> tuple[Any, Any]:
            key = tx.get("access_key", account_id, key_id) if isinstance(key_id, str) else None
            user = tx.get("user", account_id, key["user"]) if key else None
            return key, user

        key, user = self.store.read(read)
        encoded = key["secret_hash"] if key else "x$" + "0" * 64
        valid = verify_secret(encoded, secret or "")
        if key and valid and key["status"] == "Active" and user:
            return user  # type: ignore[no-any-return]
        return None

    def _mfa(
        self, account: str, owner: str, serial: str | None, code: str | None, keys: list[str]
    ) -> int | None:
        """When MFA was presented (now), or None when no code came. A bad code is AccessDenied
        and counts as a failed sign-in: six digits must not be guessed at leisure."""
        if serial is None and code is None:
            return None
        if not (serial and code and self._mfa_check(account, owner, serial, code)):
            if keys:
                self._throttle.record_failure(keys)
            audit("mfa.failed", account=account)
            raise AccessDenied(
                "MultiFactorAuthentication failed with invalid MFA one time pass code"
            )
        return int(self.clock().timestamp())

    def _store_mfa_check(self, account: str, owner: str, serial: str, code: str) -> bool:
        """A TOTP code checked against the owner's device in the store (never twice)."""
        return IAM(self.store, account, clock=self.clock).verify_mfa_code(owner, serial, code)

    def _throttle_keys(self, account: str, who: str, source_ip: str | None) -> list[str]:
        return [user_key(account, who), *([address_key(source_ip)] if source_ip else [])]

    def _throttled(self, keys: list[str]) -> None:
        if keys:
            self._throttle.check(keys)

    def _failed(self, keys: list[str], account: str, kind: str, source_ip: str | None) -> NoReturn:
        if keys:
            self._throttle.record_failure(keys)
        audit("signin.failed", account=account, kind=kind, source_ip=source_ip or "-")
        raise InvalidClientTokenId(_FAILED)

    def _succeeded(self, keys: list[str]) -> None:
        if keys:
            self._throttle.record_success(keys)

    def _caller_context(self, caller: Session, mfa_time: int | None) -> dict[str, Any]:
        now = int(self.clock().timestamp())
        context = caller.context(now)
        context["aws:MultiFactorAuthPresent"] = "true" if mfa_time is not None else "false"
        if mfa_time is not None:
            context["aws:MultiFactorAuthAge"] = str(max(0, now - mfa_time))
        return context

    def _session_policy(self, policy: str | Mapping[str, Any] | None) -> str | None:
        if policy is None:
            return None
        text = policy if isinstance(policy, str) else json.dumps(policy)
        parsed = Policy.parse(text, "identity", name="session-policy")  # MalformedPolicyDocument
        try:
            check_policy_characters(parsed.text)  # the document's own characters, unescaped
        except MalformedPolicyDocument as e:
            raise MalformedPolicyDocument(e.problems, "session-policy") from None
        try:
            check_policy_size(text, SESSION_POLICY_SIZE)
        except IAMGuardError as e:
            raise PackedPolicyTooLarge(e.message) from None
        return text

    def _principal_current(self, session: Session) -> bool:
        """Does the principal still exist, as the same entity (same unique id)?"""
        model = self.authorizer.read_model
        if session.principal_type == USER:
            view = (
                model.user(session.account, session.name) if NAME.fullmatch(session.name) else None
            )
            return view is not None and view.unique_id == session.user_id
        if session.principal_type == ASSUMED_ROLE:
            view = (
                model.role(session.account, session.name) if NAME.fullmatch(session.name) else None
            )
            return view is not None and view.unique_id == session.user_id.split(":", 1)[0]
        if session.principal_type == SERVICE:
            record = model.record("service", session.account, session.name)
            return record is not None and record.get("service_id") == session.user_id
        return model.record("account", session.account, session.account) is not None

    def _revoked(self, session: Session) -> bool:
        model = self.authorizer.read_model
        if model.record("revoked_token", session.account, session.token_id) is not None:
            return True
        if session.principal_type not in (USER, ASSUMED_ROLE):
            return False
        kind = "user" if session.principal_type == USER else "role"
        revocation = model.record("session_revocation", session.account, f"{kind}/{session.name}")
        return revocation is not None and session.issued_at_ms < revocation["not_before_ms"]

    def _denied(self, caller: Session, action: str, resource: str) -> str:
        return (
            f"User: {caller.principal} is not authorized to perform: {action} on resource: "
            f"{resource}"
        )


def _check_duration(seconds: object, low: int, high: int) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not low <= seconds <= high:
        raise ValidationError(f"DurationSeconds `{seconds}` must be {low}-{high} seconds")


def _session_tags(
    caller: Session, tags: Mapping[str, str] | None, transitive: Iterable[str]
) -> dict[str, str]:
    """The new session's tags: the caller's transitive tags, then the ones given (which may not
    override a transitive tag), at most 50."""
    inherited = {k: v for k, v in caller.tags.items() if k in caller.transitive_tag_keys}
    given = dict(tags or {})
    seen: set[str] = set()
    for key, value in given.items():
        if not (isinstance(key, str) and 1 <= len(key) <= 128 and isinstance(value, str)
                and len(value) <= 256):  # fmt: skip
            raise ValidationError(f"session tag `{key}`: keys 1-128, values 0-256 characters")
        if not all(map(tag_character, key)) or not all(map(tag_character, value)):
            raise ValidationError(f"session tag `{key}`: a character AWS does not allow in tags")
        if key.lower() in seen:
            raise ValidationError(f"duplicate tag keys found: `{key}` (any letter case)")
        seen.add(key.lower())
        if key.lower() in {k.lower() for k in inherited}:
            raise ValidationError(f"session tag `{key}` is transitive from the calling session")
    missing = [k for k in transitive if k.lower() not in seen]
    if missing:
        raise ValidationError(f"TransitiveTagKeys: `{missing[0]}` is not a session tag")
    merged = {**inherited, **given}
    if len(merged) > MAX_SESSION_TAGS:
        raise ValidationError(f"a session may carry at most {MAX_SESSION_TAGS} tags")
    return merged


def _transitive(caller: Session, keys: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*caller.transitive_tag_keys, *keys]))
