"""iamguard: AWS IAM's identity and permission model for Python web apps."""

from __future__ import annotations

from iamguard.errors import (
    IAMGuardError,
    InvalidInput,
    LimitExceeded,
    MalformedPolicyDocument,
    PolicyProblem,
)
from iamguard.guard import Guard
from iamguard.policy import (
    AccessRequest,
    Decision,
    Effect,
    Policy,
    PolicySet,
    Reason,
    StatementRef,
    evaluate,
)

__all__ = [
    "AccessRequest",
    "Decision",
    "Effect",
    "Guard",
    "IAMGuardError",
    "InvalidInput",
    "LimitExceeded",
    "MalformedPolicyDocument",
    "Policy",
    "PolicyProblem",
    "PolicySet",
    "Reason",
    "StatementRef",
    "evaluate",
]
