"""The errors iamguard raises, named after AWS's error codes where AWS has one.

::

    IAMGuardError
    ├── MalformedPolicyDocument     a policy document breaks the grammar (every problem listed)
    ├── LimitExceeded               a quota or size limit would be exceeded
    └── InvalidInput                a value is out of range or badly formed
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class IAMGuardError(Exception):
    """The root of every error iamguard raises. ``code`` is AWS's error code."""

    code: str = "InternalFailure"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PolicyProblem:
    """One problem in a policy document: where (a JSON path, ``Statement[2].Effect``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MalformedPolicyDocument(IAMGuardError):
    """A policy document that breaks the grammar. ``problems`` lists every problem found."""

    code = "MalformedPolicyDocument"

    def __init__(self, problems: Iterable[PolicyProblem], name: str | None = None) -> None:
        self.problems: tuple[PolicyProblem, ...] = tuple(problems)
        prefix = f"policy `{name}`: " if name else ""
        super().__init__("; ".join(prefix + str(p) for p in self.problems))


class LimitExceeded(IAMGuardError):
    """A quota or size limit would be exceeded."""

    code = "LimitExceeded"


class InvalidInput(IAMGuardError):
    """A value is out of range or badly formed."""

    code = "InvalidInput"
