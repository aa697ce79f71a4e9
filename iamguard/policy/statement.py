"""A compiled statement: does it apply to this action, resource, principal and context?"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Final

from iamguard.policy.conditions import Condition
from iamguard.policy.patterns import (
    Matcher,
    compile_arn,
    compile_glob,
    tokenize,
)
from iamguard.policy.variables import (
    Context,
    Template,
    Variable,
    has_variables,
    literal_prefix,
    resolve_tokens,
    static_tokens,
    variable_values,
)


class Grant(int, Enum):
    """How a resource-based policy's principal names the caller, strongest first.

    ``DIRECT`` (the user ARN or the role-session ARN) grants on its own; ``ROLE`` (the role ARN of
    a role session) and ``ANYONE`` (``*``) are limited by permissions boundaries and session
    policies; ``ACCOUNT`` only delegates to the account's identity-based policies.
    """

    DIRECT = 4
    ROLE = 3
    ANYONE = 2
    ACCOUNT = 1


class Principals:
    """The ``Principal`` / ``NotPrincipal`` element of a resource or trust policy."""

    __slots__ = ("anyone", "arns", "negated", "others")

    def __init__(self, anyone: bool, arns: Sequence[str], others: Sequence[str], negated: bool):
        self.anyone = anyone
        self.arns = frozenset(arns)  # values of the `AWS` key: ARNs and account ids
        self.others = frozenset(others)  # `Service`, `Federated`, `CanonicalUser` values
        self.negated = negated

    def grant(self, principal: str) -> Grant | None:
        """How strongly the element names ``principal`` (``NotPrincipal``: see ``applies_to``)."""
        if self.anyone:
            return Grant.ANYONE
        if principal in self.arns or principal in self.others:
            return Grant.DIRECT
        caller = parse_principal(principal)
        if caller is None:
            return None
        partition, account, role = caller
        if role is not None and any(_names_role(a, partition, account, role) for a in self.arns):
            return Grant.ROLE
        if account in self.arns or f"arn:{partition}:iam::{account}:root" in self.arns:
            return Grant.ACCOUNT
        return Grant.ANYONE if "*" in self.arns else None

    def applies_to(self, principal: str, has_boundary: bool = False) -> Grant | None:
        """The grant under which the statement applies to ``principal``, or None.

        Per AWS, a ``NotPrincipal`` (always with ``Deny``) applies to every principal that has a
        permissions boundary, whatever it lists.
        """
        if not self.negated:
            return self.grant(principal)
        if has_boundary:
            return Grant.ANYONE
        # NotPrincipal: everyone but the principals listed. Per AWS, a caller is exempt only when
        # every identity in its chain is listed: its account, its role (for a role session) and
        # its own ARN, since AWS may check the account first, then the role, then the session.
        if self.anyone or principal in self.others:
            return None
        caller = parse_principal(principal)
        if caller is None:
            return None if principal in self.arns else Grant.ANYONE
        partition, account, role = caller
        chain = [account in self.arns or f"arn:{partition}:iam::{account}:root" in self.arns]
        if not principal.endswith(":root"):
            chain.append(principal in self.arns)
        if role is not None:
            chain.append(any(_names_role(a, partition, account, role) for a in self.arns))
        return None if all(chain) else Grant.ANYONE


def parse_principal(arn: str) -> tuple[str, str, str | None] | None:
    """``(partition, account, role name or None)`` of an IAM or STS principal ARN, else None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] not in ("iam", "sts"):
        return None
    partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
    if service == "sts" and resource.startswith("assumed-role/"):
        pieces = resource.split("/")
        return (partition, account, pieces[1]) if len(pieces) >= 3 else None
    return partition, account, None


def _names_role(arn: str, partition: str, account: str, role: str) -> bool:
    """Is ``arn`` the ARN of ``role`` (any path) in ``account``?"""
    prefix = f"arn:{partition}:iam::{account}:role/"
    return arn.startswith(prefix) and arn.rsplit("/", 1)[-1] == role


ResourceTest = Callable[[str, Context], bool]


def compile_resource(template: Template) -> ResourceTest:
    """A ``Resource`` / ``NotResource`` value with variables, as a test resolved per request."""
    # Compiled patterns, by the values the variables took: users repeat, so this is mostly hits.
    compiled: dict[tuple[str | None, ...], Matcher | None] = {}
    prefix = literal_prefix(template)  # a resource without it cannot match: no need to resolve

    def test(resource: str, ctx: Context) -> bool:
        if not resource.startswith(prefix):
            return False
        values = variable_values(template, ctx)
        matcher = compiled.get(values, _UNSEEN)
        if matcher is _UNSEEN:
            tokens = resolve_tokens(template, ctx)
            matcher = None if tokens is None else compile_arn(tokens)
            if len(compiled) >= _COMPILED_LIMIT:
                compiled.clear()
            compiled[values] = matcher
        return matcher is not None and matcher(resource)  # type: ignore[operator]

    return test


def _always_matches(_resource: str, _ctx: Context) -> bool:
    return True


_UNSEEN: Final = object()
_COMPILED_LIMIT: Final = 1024


class Statement:
    """A compiled statement. ``label`` is its Sid, or ``Statement[i]`` when it has none."""

    __slots__ = (
        "_actions",
        "_dynamic",
        "_static",
        "conditions",
        "context_keys",
        "deny",
        "exact_actions",
        "has_resource",
        "index",
        "label",
        "needs_context",
        "not_action",
        "not_resource",
        "principals",
        "sid",
        "test",
    )

    def __init__(
        self,
        *,
        index: int,
        sid: str | None,
        deny: bool,
        actions: Sequence[str],
        not_action: bool,
        resources: Sequence[Template] | None,
        not_resource: bool,
        principals: Principals | None,
        conditions: Sequence[Condition],
    ) -> None:
        self.index = index
        self.sid = sid
        self.label = sid if sid else f"Statement[{index}]"
        self.deny = deny
        self.not_action = not_action
        lowered = [a.lower() for a in actions]
        literal = not not_action and not any(ch in a for a in lowered for ch in "*?")
        # Actions without wildcards are looked up by name (see Policy); the rest are matched.
        self.exact_actions: frozenset[str] | None = frozenset(lowered) if literal else None
        self._actions = tuple(compile_glob(tokenize(a)) for a in lowered)
        # Patterns without variables take the resource alone; those with variables need the context.
        self.has_resource = resources is not None
        self._static = tuple(
            compile_arn(static_tokens(t)) for t in resources or () if not has_variables(t)
        )
        self._dynamic = tuple(compile_resource(t) for t in resources or () if has_variables(t))
        self.not_resource = not_resource
        self.principals = principals
        self.conditions = tuple(conditions)
        self.needs_context = bool(self.conditions or self._dynamic)
        # Every request-context key the statement reads (lower-cased): its conditions' keys and
        # the variables in its values and resources. A decision depends on no other key.
        self.context_keys: frozenset[str] = frozenset().union(
            *(c.context_keys for c in self.conditions),
            (p.key for t in resources or () for p in t if isinstance(p, Variable)),
        )
        self.test = self._fastest_test()

    def _fastest_test(self) -> ResourceTest:
        """``matches``, or an equivalent with fewer steps for the commonest shapes of statement:
        at most one resource pattern and at most one condition."""
        if self.not_resource or len(self.conditions) > 1:
            return self.matches
        if len(self._static) + len(self._dynamic) > 1:
            return self.matches
        condition = self.conditions[0] if self.conditions else None
        if self._dynamic:
            resource_test = self._dynamic[0]
        elif self._static:
            matcher = self._static[0]

            def resource_test(resource: str, _ctx: Context) -> bool:
                return matcher(resource)
        elif condition is None:
            return _always_matches
        else:
            return lambda _resource, ctx: condition(ctx)
        if condition is None:
            return resource_test
        return lambda resource, ctx: resource_test(resource, ctx) and condition(ctx)

    def matches_action(self, action: str) -> bool:
        """Does the statement cover ``action`` (lower-cased)?"""
        hit = any(m(action) for m in self._actions)
        return not hit if self.not_action else hit

    def matches(self, resource: str, ctx: Context) -> bool:
        """Given a matching action: do the resource and every condition match?"""
        # Plain loops: this runs for every candidate statement of every decision.
        if self.has_resource:
            hit = False
            for matcher in self._static:
                if matcher(resource):
                    hit = True
                    break
            else:
                for test in self._dynamic:
                    if test(resource, ctx):
                        hit = True
                        break
            if hit is self.not_resource:
                return False
        for condition in self.conditions:  # noqa: SIM110 -- a loop is cheaper than all(genexpr)
            if not condition(ctx):
                return False
        return True
