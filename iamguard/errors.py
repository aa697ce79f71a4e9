"""The errors iamguard raises, named after AWS's error codes where AWS has one.

::

    IAMGuardError
    ├── MalformedPolicyDocument     a policy document breaks the grammar (every problem listed)
    ├── LimitExceeded               a quota or size limit would be exceeded
    ├── InvalidInput                a value is out of range or badly formed
    ├── NoSuchEntity                the named user, group, role, policy, key ... does not exist
    ├── EntityAlreadyExists         an entity of that name (any letter case) exists already
    ├── DeleteConflict              the entity still has members, policies, keys ...
    ├── PasswordPolicyViolation     a password breaks the account's password policy
    ├── ConcurrentModification      a change raced with another and could not be applied
    ├── AccessDenied                the caller is not allowed (403 at the HTTP layer)
    ├── NotAuthenticated            no valid credential (401 at the HTTP layer)
    │   ├── InvalidClientTokenId    a token (or key) that is malformed, forged, unknown or revoked
    │   └── ExpiredToken            a token past its expiry
    ├── InternalFailure             an unexpected failure while deciding (500; the request refused)
    └── StoreError                  the store cannot be used
        ├── StoreUnavailable        it does not answer (a server down, a file locked)
        └── StoreCorrupted          it answers with something that is not an iamguard store
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class IAMGuardError(Exception):
    """The root of every error iamguard raises. ``code`` is AWS's error code, ``status`` the
    HTTP status AWS answers it with."""

    code: str = "InternalFailure"
    status: int = 400

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
        self.name = name
        prefix = f"policy `{name}`: " if name else ""
        super().__init__(prefix + "; ".join(str(p) for p in self.problems))


class LimitExceeded(IAMGuardError):
    """A quota or size limit would be exceeded."""

    code = "LimitExceeded"
    status = 409


class InvalidInput(IAMGuardError):
    """A value is out of range or badly formed."""

    code = "InvalidInput"


class NoSuchEntity(IAMGuardError):
    """The named entity does not exist."""

    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(IAMGuardError):
    """An entity of that name exists already (names are unique whatever their letter case)."""

    code = "EntityAlreadyExists"
    status = 409


class DeleteConflict(IAMGuardError):
    """The entity cannot be deleted while it still has dependents."""

    code = "DeleteConflict"
    status = 409


class PasswordPolicyViolation(IAMGuardError):
    """A password breaks the account's password policy."""

    code = "PasswordPolicyViolation"


class ConcurrentModification(IAMGuardError):
    """A change raced with other changes too many times to be applied; nothing was written."""

    code = "ConcurrentModification"
    status = 409


class AccessDenied(IAMGuardError):
    """The caller is not allowed to do this (403 at the HTTP layer)."""

    code = "AccessDenied"
    status = 403


class NotAuthenticated(IAMGuardError):
    """No valid credential came with the request (401 at the HTTP layer)."""

    code = "NotAuthenticated"
    status = 401


class InvalidClientTokenId(NotAuthenticated):
    """The token or access key is malformed, forged, unknown, revoked, or its principal is gone."""

    code = "InvalidClientTokenId"


class ExpiredToken(NotAuthenticated):
    """The token has expired."""

    code = "ExpiredToken"


class InternalFailure(IAMGuardError):
    """Something unexpected failed while deciding or serving a request: it is refused (500),
    the cause logged, never sent."""

    code = "InternalFailure"
    status = 500


class StoreError(IAMGuardError):
    """The store cannot be used; nothing was decided or written from it."""

    code = "ServiceFailure"
    status = 500


class StoreUnavailable(StoreError):
    """The store does not answer: a database server down, a file locked or unreadable."""

    code = "ServiceUnavailable"
    status = 503


class StoreCorrupted(StoreError):
    """The store answers with something that is not an iamguard store (or a newer one)."""
