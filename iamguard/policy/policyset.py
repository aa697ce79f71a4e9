"""``PolicySet``: a principal's policies, compiled once, with one action index across them all."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from iamguard.policy.document import Policy
from iamguard.policy.statement import Statement

_MEMO_LIMIT: Final = 4096  # distinct actions remembered before the memo starts over

# (position of the policy in the set, the policy, one of its statements covering the action)
Entry = tuple[int, Policy, Statement]


class PolicySet(tuple[Policy, ...]):
    """An immutable sequence of policies that ``evaluate`` reads in one look-up per action.

    Pass it wherever ``evaluate`` takes a list of policies. A plain list gives the same decision;
    a set built once (for example per principal, per model version) makes the decision cheaper,
    because the statements covering an action are gathered across all the policies once.
    """

    _memo: dict[str, tuple[Entry, ...]]

    def __new__(cls, policies: Iterable[Policy] = ()) -> PolicySet:
        items = tuple(policies)
        for policy in items:
            if not isinstance(policy, Policy):
                raise TypeError(f"PolicySet holds Policy objects, not {type(policy).__name__}")
        policy_set = super().__new__(cls, items)
        policy_set._memo = {}
        return policy_set

    @property
    def context_keys(self) -> frozenset[str]:
        """Every request-context key (lower-cased) the set's policies read, computed once."""
        keys: frozenset[str] | None = self.__dict__.get("_context_keys")
        if keys is None:
            keys = frozenset().union(*(p.context_keys for p in self))
            self.__dict__["_context_keys"] = keys
        return keys

    def entries_for(self, action: str) -> tuple[Entry, ...]:
        """Every statement covering ``action`` (lower-cased), in policy and statement order."""
        found = self._memo.get(action)
        if found is None:
            found = tuple(
                (position, policy, statement)
                for position, policy in enumerate(self)
                for statement in policy.statements_for(action)
            )
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[action] = found
        return found

    def __repr__(self) -> str:
        return f"PolicySet({list(self)!r})"
