"""AWS's limits on policy text: its size and the characters it may hold.

The model applies these when it stores a policy (``Policy.parse`` itself accepts any size, so
that boundaries, session policies and tests can be read freely). Sizes count every character but
white space, as IAM does.
"""

from __future__ import annotations

import re
from typing import Final

from iamguard.errors import LimitExceeded, MalformedPolicyDocument, PolicyProblem

# AWS's quota names and default sizes (characters, white space not counted).
MANAGED_POLICY_SIZE: Final = ("PolicySize", 6144)
USER_INLINE_POLICY_SIZE: Final = ("UserPolicySize", 2048)
GROUP_INLINE_POLICY_SIZE: Final = ("GroupPolicySize", 5120)
ROLE_INLINE_POLICY_SIZE: Final = ("RolePolicySize", 10240)
TRUST_POLICY_SIZE: Final = ("ACLSizePerRole", 2048)
SESSION_POLICY_SIZE: Final = ("PackedPolicySize", 2048)

_WHITE_SPACE: Final = re.compile(r"[ \t\n\r]+")
_FORBIDDEN: Final = re.compile(r"[^\t\n\r\x20-\xff]")


def policy_size(text: str) -> int:
    """The size AWS counts: every character except spaces, tabs and line breaks."""
    return len(_WHITE_SPACE.sub("", text))


def check_policy_characters(text: str) -> None:
    """Raise ``MalformedPolicyDocument`` unless every character is a tab, a line break or in
    U+0020-U+00FF, the characters IAM accepts in a policy."""
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        char = bad.group()
        line = text.count("\n", 0, bad.start()) + 1
        message = (
            f"character U+{ord(char):04X} at line {line} is not allowed "
            "(only tab, line feed, carriage return and U+0020-U+00FF)"
        )
        raise MalformedPolicyDocument([PolicyProblem("", message)])


def check_policy_size(text: str, quota: tuple[str, int]) -> None:
    """Raise ``LimitExceeded`` when ``text`` is larger than ``quota`` (a name and a size)."""
    name, limit = quota
    size = policy_size(text)
    if size > limit:
        raise LimitExceeded(
            f"cannot exceed quota for {name}: {limit} (the policy has {size} characters "
            "not counting white space)"
        )
