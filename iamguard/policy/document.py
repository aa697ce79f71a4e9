"""``Policy``: a parsed, validated, compiled and immutable policy document."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from iamguard.errors import InvalidInput, MalformedPolicyDocument, PolicyProblem
from iamguard.policy.grammar import KINDS, load_json, read_document
from iamguard.policy.statement import Statement

_MEMO_LIMIT: Final = 4096  # distinct actions remembered per policy before the memo starts over


class Policy:
    """A compiled policy. Build one with ``Policy.parse``; it never changes afterwards.

    Statements are indexed by action: those naming exact actions are found by a dictionary look-up,
    the rest (wildcards, ``NotAction``) are matched once per distinct action and remembered, so the
    cost of a decision does not grow with statements about other actions.
    """

    __slots__ = (
        "_by_action", "_memo", "_wild", "id", "kind", "name", "statements", "text", "version",
    )  # fmt: skip

    _by_action: dict[str, list[Statement]]
    _memo: dict[str, tuple[Statement, ...]]
    _wild: tuple[Statement, ...]
    id: str | None
    kind: str
    name: str | None
    statements: tuple[Statement, ...]
    text: str
    version: str | None

    def __init__(self) -> None:
        raise TypeError("use Policy.parse(document)")

    @classmethod
    def parse(
        cls, document: str | bytes | Mapping[str, Any], kind: str = "identity", *,
        name: str | None = None,
    ) -> Policy:  # fmt: skip
        """Parse JSON text or a mapping; raise ``MalformedPolicyDocument`` listing every problem.

        ``kind`` is ``"identity"`` (also for permissions boundaries and session policies),
        ``"resource"`` or ``"trust"``. ``name`` labels the policy in decisions and messages.
        """
        if kind not in KINDS:
            raise InvalidInput(f"policy kind `{kind}` is not one of {', '.join(KINDS)}")
        try:
            if isinstance(document, (str, bytes)):
                parsed = load_json(document)
            elif isinstance(document, Mapping):
                parsed = document
            else:
                raise MalformedPolicyDocument([PolicyProblem("", "must be JSON text or a mapping")])
            version, policy_id, statements = read_document(parsed, kind)
            text = _canonical_text(parsed)
        except MalformedPolicyDocument as e:
            raise MalformedPolicyDocument(e.problems, name) from None
        policy = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(policy, "kind", kind)
        setattr_(policy, "name", name)
        setattr_(policy, "id", policy_id)
        setattr_(policy, "version", version)
        setattr_(policy, "statements", tuple(statements))
        setattr_(policy, "text", text)
        by_action: dict[str, list[Statement]] = {}
        for statement in statements:
            for action in statement.exact_actions or ():
                by_action.setdefault(action, []).append(statement)
        setattr_(policy, "_by_action", by_action)
        setattr_(policy, "_wild", tuple(s for s in statements if s.exact_actions is None))
        setattr_(policy, "_memo", {})
        return policy

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Policy is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Policy is immutable")

    @property
    def document(self) -> dict[str, Any]:
        """A fresh copy of the document as given."""
        return json.loads(self.text)  # type: ignore[no-any-return]

    @property
    def context_keys(self) -> frozenset[str]:
        """Every request-context key (lower-cased) any statement of the policy reads."""
        return frozenset().union(*(s.context_keys for s in self.statements))

    @property
    def label(self) -> str | None:
        """How decisions name the policy: its name, else its ``Id``."""
        return self.name or self.id

    def statements_for(self, action: str) -> tuple[Statement, ...]:
        """The statements whose Action/NotAction covers ``action`` (lower-cased), in order."""
        found = self._memo.get(action)
        if found is not None:
            return found
        hits = list(self._by_action.get(action, ()))
        hits.extend(s for s in self._wild if s.matches_action(action))
        found = tuple(sorted(hits, key=_index)) if len(hits) > 1 else tuple(hits)
        memo = self._memo
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[action] = found
        return found

    def __repr__(self) -> str:
        label = f" {self.label!r}" if self.label else ""
        return f"<Policy{label} kind={self.kind} statements={len(self.statements)}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return self.kind == other.kind and self.text == other.text and self.name == other.name

    def __hash__(self) -> int:
        return hash((self.kind, self.text, self.name))


def _plain(value: Any) -> Any:
    """For ``json.dumps``: any mapping as a dict, any other sequence as a list."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _canonical_text(document: Any) -> str:
    """The document as compact JSON text (valid: it has passed the grammar)."""
    try:
        return json.dumps(
            document, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_plain
        )
    except (TypeError, ValueError) as e:  # a value the grammar does not inspect, such as Id's
        raise MalformedPolicyDocument([PolicyProblem("", f"not JSON: {e}")]) from None


def _index(statement: Statement) -> int:
    return statement.index
