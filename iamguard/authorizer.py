"""``authorize``: a principal's current policies, gathered from the read model, evaluated.

It fills in AWS's global condition keys the caller did not give (``aws:username``,
``aws:userid``, ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:PrincipalType``,
``aws:PrincipalTag/*``, ``aws:CurrentTime``, ``aws:EpochTime``). The root user is allowed
everything within its own account, whatever the policies say, and every such decision is an
audit event. A principal the store does not know gets an implicit deny. A store that cannot be
read raises ``StoreError``: a decision is never made without the data it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timezone
from typing import Any

from iamguard.arn import ACCOUNT_ID, DEFAULT_PARTITION, NAME, parse_arn
from iamguard.audit import audit
from iamguard.iam.base import Clock, utc_now
from iamguard.policy import AccessRequest, Decision, Effect, Policy, PolicySet, Reason, evaluate
from iamguard.readmodel import PrincipalView, ReadModel
from iamguard.sessions import ROOT, SERVICE, Session
from iamguard.stores.base import Reader, Store

_NO_POLICIES = PolicySet()
_ATTEMPTS = 3  # reads from the read model before a request is read in one store transaction
_ALLOWS_NOTHING = Policy.parse(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "NotAction": "*", "Resource": "*"}]},
    name="missing-session-policy",
)


class Authorizer:
    """Decides requests against the model in ``store``, through a per-process read model."""

    def __init__(
        self,
        store: Store,
        *,
        partition: str = DEFAULT_PARTITION,
        clock: Clock = utc_now,
        read_model: ReadModel | None = None,
    ) -> None:
        self.store = store
        self.partition = partition
        self.clock = clock
        self.read_model = read_model or ReadModel(store)

    def principal(self, arn: str, tx: Reader | None = None) -> PrincipalView | None:
        """The user or role behind a principal ARN (a role session's role), or None; read from
        ``tx`` (uncached) when given."""
        parsed = parse_arn(arn)
        if parsed is None or parsed.partition != self.partition or parsed.region:
            return None
        if not ACCOUNT_ID.fullmatch(parsed.account):
            return None
        if parsed.service == "iam" and parsed.resource.startswith("user/"):
            name = parsed.resource.rsplit("/", 1)[-1]
            view = self.read_model.user(parsed.account, name, tx) if NAME.fullmatch(name) else None
            return view if view is not None and view.arn == arn else None
        if parsed.service == "sts" and parsed.resource.startswith("assumed-role/"):
            parts = parsed.resource.split("/")
            if len(parts) != 3 or not all(NAME.fullmatch(p) for p in parts[1:]):
                return None
            return self.read_model.role(parsed.account, parts[1], tx)
        return None

    def authorize(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        session_policies: Sequence[Policy] = (),
        resource_policy: Policy | None = None,
    ) -> Decision:
        """May ``principal`` (an ARN) do ``action`` on ``resource`` now?"""
        self.read_model.refresh()
        parsed = parse_arn(principal)
        if (
            parsed is not None and parsed.service == "iam" and parsed.resource == "root"
            and parsed.partition == self.partition and not parsed.region
            and ACCOUNT_ID.fullmatch(parsed.account)
        ):  # fmt: skip
            return self._root(principal, parsed.account, action, resource, context)
        view = self.principal(principal)
        return self._evaluate(
            principal, view, action, resource, context,
            session_policies=session_policies, resource_policy=resource_policy,
        )  # fmt: skip

    def _evaluate(
        self, principal: str, view: PrincipalView | None, action: str, resource: str,
        context: Mapping[str, Any] | None, *, session_policies: Sequence[Policy] = (),
        resource_policy: Policy | None = None,
    ) -> Decision:  # fmt: skip
        """Evaluate the request against ``view``'s policies (an implicit deny without one)."""
        request = AccessRequest(principal, action, resource, self.context(principal, view, context))
        if view is None:
            return evaluate(request)
        return evaluate(
            request, identity=view.identity, boundaries=view.boundary,
            session=session_policies, resource=resource_policy,
        )  # fmt: skip

    def authorize_session(
        self,
        session: Session,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        resource_policy: Policy | None = None,
    ) -> Decision:
        """May the bearer of ``session`` (a verified token) do ``action`` on ``resource`` now?

        A role session gets what the role's policies, its boundary and the session policies all
        allow, read now; a service session gets nothing by itself (it assumes roles).
        """
        now = int(self.clock().timestamp())
        given = {**session.context(now), **(context or {})}
        if session.principal_type == ROOT:
            return self.authorize(session.principal, action, resource, given)
        if session.principal_type == SERVICE:
            request = AccessRequest(session.principal, action, resource, given)
            return evaluate(request, resource=resource_policy)
        self.read_model.refresh()
        view, policies = self.gather(session)
        return self._evaluate(
            session.principal, view, action, resource, given,
            session_policies=policies, resource_policy=resource_policy,
        )  # fmt: skip

    def gather(self, session: Session) -> tuple[PrincipalView | None, PolicySet]:
        """The session's principal (None when unknown) and its session policies, both from one
        state of the model: read again should the read model take in a change meanwhile, and
        after ``_ATTEMPTS`` such changes read in one store transaction, uncached."""
        model = self.read_model
        for _ in range(_ATTEMPTS):
            generation = model.generation
            view = self.principal(session.principal)
            policies = self.session_policies(session) if view is not None else _NO_POLICIES
            if model.generation == generation:
                return view, policies
        return model.store.read(lambda tx: self._gather_in(tx, session))

    def _gather_in(self, tx: Reader, session: Session) -> tuple[PrincipalView | None, PolicySet]:
        """``gather``, read from ``tx``."""
        view = self.principal(session.principal, tx)
        return view, self.session_policies(session, tx) if view is not None else _NO_POLICIES

    def session_policies(self, session: Session, tx: Reader | None = None) -> PolicySet:
        """The session's policies: its inline policy and its managed ones as they are now (read
        from ``tx``, uncached, when given). A managed session policy that no longer exists
        allows nothing (a session never widens). Take them with the principal's view from
        ``gather``, so that both come from one state of the model."""
        policies: list[Policy] = []
        if session.session_policy is not None:
            policies.append(self.read_model.compile(session.session_policy, "session-policy"))
        for arn in session.policy_arns:
            policy = self.read_model.managed_policy(session.account, arn, tx)
            policies.append(policy if policy is not None else _ALLOWS_NOTHING)
        return PolicySet(policies) if policies else _NO_POLICIES

    def context(
        self, principal: str, view: PrincipalView | None, given: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The request context: AWS's global keys for this principal, then what was given."""
        now = self.clock().astimezone(timezone.utc)
        keys: dict[str, Any] = {
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(now.timestamp())),
        }
        if view is not None:
            keys["aws:PrincipalAccount"] = view.account
            for tag in view.tags:
                keys[f"aws:PrincipalTag/{tag.key}"] = tag.value
            if view.kind == "user":
                keys.update({
                    "aws:username": view.name, "aws:userid": view.unique_id,
                    "aws:PrincipalArn": view.arn, "aws:PrincipalType": "User",
                })  # fmt: skip
            else:
                session = principal.rsplit("/", 1)[-1]
                keys.update({
                    "aws:userid": f"{view.unique_id}:{session}", "aws:PrincipalArn": view.arn,
                    "aws:PrincipalType": "AssumedRole",
                })  # fmt: skip
        if given:
            given_lower = {k.lower() for k in given}
            keys = {k: v for k, v in keys.items() if k.lower() not in given_lower}
            keys.update(given)
        return keys

    def _root(
        self, principal: str, account: str, action: str, resource: str,
        context: Mapping[str, Any] | None,
    ) -> Decision:  # fmt: skip
        """The root user: everything within its account, nothing outside; always audited."""
        known = self.store.read(lambda tx: tx.get("account", account, account)) is not None
        target = parse_arn(resource)
        inside = known and (resource == "*" or (target is not None and target.account == account))
        context_keys = {"aws:PrincipalAccount": account, "aws:PrincipalType": "Account",
                        "aws:PrincipalArn": principal, **(context or {})}  # fmt: skip
        request = AccessRequest(principal, action, resource, context_keys)
        decision = (
            Decision(Effect.ALLOW, request, Reason.ROOT_USER)
            if inside
            else Decision(Effect.IMPLICIT_DENY, request, Reason.NO_IDENTITY_ALLOW)
        )
        audit("root.used", account=account, action=action, resource=resource,
              decision=decision.effect.value)  # fmt: skip
        return decision
