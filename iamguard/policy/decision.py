"""What ``evaluate`` returns: the effect, the statements that decided it, and AWS's wording."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from iamguard.policy.document import Policy
    from iamguard.policy.evaluate import AccessRequest
    from iamguard.policy.statement import Statement


class Effect(str, Enum):
    """The outcome of an evaluation, under AWS's names."""

    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"

    def __str__(self) -> str:
        return self.value


class Reason(str, Enum):
    """Why the decision is what it is."""

    ALLOWED = "allowed"
    ROOT_USER = "the account's root user"
    EXPLICIT_DENY = "explicit deny"
    NO_IDENTITY_ALLOW = "no identity-based policy allows"
    NO_BOUNDARY_ALLOW = "no permissions boundary allows"
    NO_SESSION_ALLOW = "no session policy allows"
    NO_RESOURCE_ALLOW = "no resource-based policy allows"
    ERROR = "evaluation error"

    def __str__(self) -> str:
        return self.value


_KIND_NAMES = {
    "identity": "an identity-based policy",
    "boundary": "a permissions boundary",
    "session": "a session policy",
    "resource": "a resource-based policy",
}


@dataclass(frozen=True)
class StatementRef:
    """A statement that took part in a decision: which kind of policy, which policy, which
    statement (its Sid, or ``Statement[i]``), and its effect."""

    kind: str
    policy: str
    statement: str
    effect: str

    def __str__(self) -> str:
        return f"{self.kind} policy `{self.policy}` statement `{self.statement}` ({self.effect})"


# What evaluate records for each matching statement, as a plain tuple (cheaper than a Match):
# (kind of policy, the policy, its position among its kind, the statement).
RawMatch = tuple[str, "Policy", int, "Statement"]


class Match(NamedTuple):
    """A statement that matched the request, in the policy (the ``position``-th of its kind).

    ``evaluate`` builds these as plain tuples of the same shape, which cost less to make."""

    kind: str
    policy: Policy
    position: int
    statement: Statement

    def ref(self) -> StatementRef:
        label = self.policy.label or f"{self.kind}[{self.position}]"
        effect = "Deny" if self.statement.deny else "Allow"
        return StatementRef(self.kind, label, self.statement.label, effect)


class Decision:
    """An evaluation's answer. Read ``allowed`` or ``effect``; a Decision has no truth value,
    so that a forgotten ``await`` or a misplaced ``if decision:`` cannot read as allowed."""

    __slots__ = ("_matches", "effect", "errors", "reason", "request")

    def __init__(
        self,
        effect: Effect,
        request: AccessRequest,
        reason: Reason,
        matches: tuple[RawMatch, ...] = (),
        errors: tuple[str, ...] = (),
    ) -> None:
        self.effect = effect
        self.request = request
        self.reason = reason
        self._matches = matches
        self.errors = errors

    @property
    def allowed(self) -> bool:
        """True only for ``Allow``."""
        return self.effect is Effect.ALLOW

    @property
    def statements(self) -> tuple[StatementRef, ...]:
        """The statements that decided: the denying ones for an explicit deny, the allowing ones
        (identity, boundary, session or resource) for an allow, and for an implicit deny the
        allows that were not enough."""
        return tuple(Match(*m).ref() for m in self._matches)

    def __bool__(self) -> bool:
        raise TypeError("a Decision has no truth value: read decision.allowed")

    def detached(self) -> Decision:
        """The same decision, its request without the context: what a cache keeps. The context
        is most of a decision's size, and a request the cached decision answers later has its
        own (with the same values for every key the policies read)."""
        r = self.request
        request = type(r)(r.principal, r.action, r.resource)
        return Decision(self.effect, request, self.reason, self._matches, self.errors)

    def message(self) -> str:
        """AWS's wording: ``User: ARN is not authorized to perform: ACTION on resource: R
        because no identity-based policy allows the ACTION action``."""
        r = self.request
        target = f"perform: {r.action} on resource: {r.resource}"
        if self.allowed:
            return f"User: {r.principal} is authorized to {target}"
        head = f"User: {r.principal} is not authorized to {target}"
        if self.reason is Reason.EXPLICIT_DENY:
            kind = self._matches[0][0]  # the hot path stores plain tuples: (kind, policy, ...)
            return f"{head} with an explicit deny in {_KIND_NAMES[kind]}"
        if self.reason is Reason.ERROR:
            return f"{head} because the request could not be evaluated"
        return f"{head} because {self.reason} the {r.action} action"

    def explain(self) -> str:
        """The decision, AWS's message and the statements behind it, one per line."""
        lines = [f"{self.effect}: {self.message()}"]
        label = "decided by" if self.effect is not Effect.IMPLICIT_DENY else "matched, not enough"
        lines.extend(f"  {label}: {ref}" for ref in self.statements)
        if self.reason is Reason.ROOT_USER:
            lines.append(f"  decided by: {self.reason}, allowed everything in its account")
        lines.extend(f"  error: {error}" for error in self.errors)
        return "\n".join(lines)

    def __repr__(self) -> str:
        count = len(self._matches)
        return f"<Decision {self.effect.value} {self.reason.value!r} statements={count}>"
