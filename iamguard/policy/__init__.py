"""AWS IAM's policy language: parse and validate documents, compile them, evaluate requests.

This package knows nothing of users, stores, tokens or HTTP.
"""

from __future__ import annotations

from iamguard.policy.decision import Decision, Effect, Reason, StatementRef
from iamguard.policy.document import Policy
from iamguard.policy.evaluate import AccessRequest, evaluate
from iamguard.policy.policyset import PolicySet

__all__ = [
    "AccessRequest",
    "Decision",
    "Effect",
    "Policy",
    "PolicySet",
    "Reason",
    "StatementRef",
    "evaluate",
]
