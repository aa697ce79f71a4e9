"""The decision: AWS's policy evaluation logic for a request within one account.

1. An explicit deny in any policy (identity-based, permissions boundary, session, resource-based)
   decides: ``ExplicitDeny``.
2. Otherwise the request is allowed when the identity-based policies allow it and so do the
   permissions boundary and the session policies, where there are any.
3. Or when the resource-based policy allows it: a grant naming the caller itself (the user ARN or
   the role-session ARN) stands on its own; one naming the caller's role or ``*`` still needs the
   boundary and session policies to allow; one naming only the account delegates to the identity
   policies and grants nothing by itself.
4. Otherwise: ``ImplicitDeny``.

Across accounts (the principal's ARN names one account, the resource's ARN another) both sides
must consent, as in AWS: the principal's identity-based policies (within its boundary and
session policies) and the resource-based policy, which may name the principal or its account.

``evaluate`` is pure, reads the request context exactly as given and never raises: an unexpected
error denies and is recorded on the decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from iamguard.policy.decision import Decision, Effect, RawMatch, Reason
from iamguard.policy.document import Policy
from iamguard.policy.policyset import PolicySet
from iamguard.policy.statement import Grant
from iamguard.policy.variables import Context, ContextValue


def context_value(value: Any) -> ContextValue | None:
    """A request-context value as text (or a tuple of texts for a multi-valued key)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [context_value(v) for v in value]
        return tuple(v for v in items if isinstance(v, str))
    return str(value)


class AccessRequest:
    """Who asks to do what to which resource, in what context.

    ``context`` maps condition keys (case-insensitive) to strings, or to lists of strings for
    multi-valued keys; booleans, numbers and datetimes are read as AWS writes them.
    """

    __slots__ = ("_context", "action", "context", "principal", "resource")

    def __init__(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.principal = principal
        self.action = action
        self.resource = resource
        self.context = context or {}
        self._context: dict[str, ContextValue] | None = None

    @property
    def normalized_context(self) -> Context:
        """The context with lower-cased keys and text values, built once."""
        if self._context is None:
            normalized = {}
            for key, value in self.context.items():
                text = value if type(value) is str else context_value(value)
                if text is not None:
                    normalized[str(key).lower()] = text
            self._context = normalized
        return self._context

    def __repr__(self) -> str:
        return (
            f"AccessRequest(principal={self.principal!r}, action={self.action!r}, "
            f"resource={self.resource!r}, context={self.context!r})"
        )


def _matching(  # noqa: PLR0917 -- the hot path; keyword arguments cost time here
    policies: Sequence[Policy], kind: str, action: str, request: AccessRequest,
    allows: list[RawMatch], denies: list[RawMatch],
) -> None:  # fmt: skip
    """Sort the statements of ``policies`` that match the request into allows and denies."""
    # Plain loops and tuples: this is the hot path of every decision.
    if type(policies) is PolicySet:
        entries = policies._memo.get(action) or policies.entries_for(action)
    else:
        entries = tuple(
            (position, policy, statement)
            for position, policy in enumerate(policies)
            for statement in policy.statements_for(action)
        )
    resource = request.resource
    ctx = None
    for position, policy, statement in entries:
        if ctx is None and statement.needs_context:
            ctx = request.normalized_context
        if statement.test(resource, ctx or _EMPTY):
            match = (kind, policy, position, statement)
            if statement.deny:
                denies.append(match)  # type: ignore[arg-type]
            else:
                allows.append(match)  # type: ignore[arg-type]


_EMPTY: Context = {}


def evaluate(
    request: AccessRequest,
    identity: Sequence[Policy] = (),
    boundaries: Sequence[Policy] = (),
    session: Sequence[Policy] = (),
    resource: Policy | None = None,
) -> Decision:
    """Decide ``request`` under the caller's policies, as AWS would within one account.

    ``identity``: the caller's identity-based policies; ``boundaries``: its permissions boundary
    (empty: none); ``session``: session policies (empty: none); ``resource``: the resource-based
    policy of the resource, if any.
    """
    try:
        action = request.action.lower()
        denies: list[RawMatch] = []
        allows: list[RawMatch] = []
        _matching(identity, "identity", action, request, allows, denies)
        if boundaries or session or resource is not None:
            return _limited(request, action, denies, allows, boundaries, session, resource)
        if denies:
            return Decision(Effect.EXPLICIT_DENY, request, Reason.EXPLICIT_DENY, tuple(denies))
        if allows:
            if _cross_account(request):  # and no resource-based policy to consent
                return Decision(Effect.IMPLICIT_DENY, request, Reason.NO_RESOURCE_ALLOW)
            return Decision(Effect.ALLOW, request, Reason.ALLOWED, tuple(allows))
        return Decision(Effect.IMPLICIT_DENY, request, Reason.NO_IDENTITY_ALLOW)
    except Exception as error:  # fail closed: a decision that could not be made denies
        return Decision(Effect.IMPLICIT_DENY, request, Reason.ERROR, (), (repr(error),))


def _limited(  # noqa: PLR0917 -- internal continuation of evaluate
    request: AccessRequest,
    action: str,
    denies: list[RawMatch],
    identity_allows: list[RawMatch],
    boundaries: Sequence[Policy],
    session: Sequence[Policy],
    resource_policy: Policy | None,
) -> Decision:
    """The rest of the decision when a boundary, session policies or a resource policy apply."""
    boundary_allows: list[RawMatch] = []
    session_allows: list[RawMatch] = []
    resource_allows: list[tuple[Grant, RawMatch]] = []
    if boundaries:
        _matching(boundaries, "boundary", action, request, boundary_allows, denies)
    if session:
        _matching(session, "session", action, request, session_allows, denies)
    if resource_policy is not None:
        _resource_matches(
            resource_policy, action, request,
            has_boundary=bool(boundaries), allows=resource_allows, denies=denies,
        )  # fmt: skip
    if denies:
        return Decision(Effect.EXPLICIT_DENY, request, Reason.EXPLICIT_DENY, tuple(denies))
    boundary_ok = not boundaries or bool(boundary_allows)
    session_ok = not session or bool(session_allows)
    limits = (*boundary_allows, *session_allows)
    if _cross_account(request):
        return _across_accounts(
            request, identity_allows, resource_allows, limits, boundary_ok, session_ok
        )
    for grant, match in resource_allows:
        if grant is Grant.DIRECT:
            return Decision(Effect.ALLOW, request, Reason.ALLOWED, (match,))
        if grant is not Grant.ACCOUNT and boundary_ok and session_ok:
            return Decision(Effect.ALLOW, request, Reason.ALLOWED, (match, *limits))
    if identity_allows and boundary_ok and session_ok:
        return Decision(Effect.ALLOW, request, Reason.ALLOWED, (*identity_allows, *limits))
    nothing_grants = not identity_allows and all(g is Grant.ACCOUNT for g, _ in resource_allows)
    return _implicit_deny(
        request, identity_allows, resource_allows, limits,
        identity_missing=nothing_grants, boundary_ok=boundary_ok, session_ok=session_ok,
    )  # fmt: skip


def _account(arn: str) -> str:
    """The account segment of an ARN ("" when there is none)."""
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" else ""


def _cross_account(request: AccessRequest) -> bool:
    """Does the request cross accounts: principal and resource ARNs naming different ones?"""
    resource_account = _account(request.resource)
    if not resource_account:
        return False
    principal_account = _account(request.principal)
    return bool(principal_account) and principal_account != resource_account


def _across_accounts(  # noqa: PLR0917 -- internal continuation of evaluate
    request: AccessRequest,
    identity_allows: list[RawMatch],
    resource_allows: list[tuple[Grant, RawMatch]],
    limits: tuple[RawMatch, ...],
    boundary_ok: bool,
    session_ok: bool,
) -> Decision:
    """Both accounts must consent: the principal's policies and the resource-based policy."""
    identity_ok = bool(identity_allows) and boundary_ok and session_ok
    if identity_ok and resource_allows:
        matches = (*identity_allows, *limits, *(m for _, m in resource_allows))
        return Decision(Effect.ALLOW, request, Reason.ALLOWED, matches)
    return _implicit_deny(
        request, identity_allows, resource_allows, limits,
        identity_missing=not identity_allows, boundary_ok=boundary_ok, session_ok=session_ok,
    )  # fmt: skip


def _implicit_deny(
    request: AccessRequest,
    identity_allows: list[RawMatch],
    resource_allows: list[tuple[Grant, RawMatch]],
    limits: tuple[RawMatch, ...],
    *,
    identity_missing: bool,
    boundary_ok: bool,
    session_ok: bool,
) -> Decision:
    """The implicit deny, naming the first layer that did not allow (AWS's order), and the
    allows that were not enough."""
    if identity_missing:
        reason = Reason.NO_IDENTITY_ALLOW
    elif not boundary_ok:
        reason = Reason.NO_BOUNDARY_ALLOW
    elif not session_ok:
        reason = Reason.NO_SESSION_ALLOW
    else:
        reason = Reason.NO_RESOURCE_ALLOW
    partial = (*identity_allows, *(m for _, m in resource_allows), *limits)
    return Decision(Effect.IMPLICIT_DENY, request, reason, partial)


def resource_policy_allows(policy: Policy, request: AccessRequest) -> bool:
    """Does the resource-based (or trust) policy itself allow the request: a statement naming
    the principal (or its account) allows it, and none denies it? For AssumeRole, where the
    role's trust policy must allow whatever the caller's own policies say."""
    allows: list[tuple[Grant, RawMatch]] = []
    denies: list[RawMatch] = []
    _resource_matches(
        policy, request.action.lower(), request, has_boundary=False, allows=allows, denies=denies
    )
    return bool(allows) and not denies


def _resource_matches(
    policy: Policy, action: str, request: AccessRequest, *, has_boundary: bool,
    allows: list[tuple[Grant, RawMatch]], denies: list[RawMatch],
) -> None:  # fmt: skip
    principal = request.principal
    for statement in policy.statements_for(action):
        principals = statement.principals
        grant = principals.applies_to(principal, has_boundary) if principals else None
        if grant is None or not statement.matches(request.resource, request.normalized_context):
            continue
        match = ("resource", policy, 0, statement)
        if statement.deny:
            denies.append(match)
        else:
            allows.append((grant, match))
    allows.sort(key=lambda pair: -pair[0])
