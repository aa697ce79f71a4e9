"""The public surface is what ``iamguard`` exports, and nothing else by accident."""

from __future__ import annotations

import iamguard


def test_exported_names_are_pinned() -> None:
    """``iamguard.__all__`` is exactly the documented API."""
    assert sorted(iamguard.__all__) == [
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
    for name in iamguard.__all__:
        assert getattr(iamguard, name).__module__.startswith("iamguard")


def test_errors_carry_aws_codes() -> None:
    """Each error class carries AWS's error code and descends from IAMGuardError."""
    for cls, code in [
        (iamguard.MalformedPolicyDocument, "MalformedPolicyDocument"),
        (iamguard.LimitExceeded, "LimitExceeded"),
        (iamguard.InvalidInput, "InvalidInput"),
    ]:
        assert cls.code == code
        assert issubclass(cls, iamguard.IAMGuardError)
