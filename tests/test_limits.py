"""AWS's size and character limits on policy text."""

from __future__ import annotations

import pytest

from iamguard import LimitExceeded, MalformedPolicyDocument
from iamguard.policy.limits import (
    GROUP_INLINE_POLICY_SIZE,
    MANAGED_POLICY_SIZE,
    ROLE_INLINE_POLICY_SIZE,
    USER_INLINE_POLICY_SIZE,
    check_policy_characters,
    check_policy_size,
    policy_size,
)


def test_white_space_is_not_counted() -> None:
    """Spaces, tabs and line breaks do not count toward a policy's size."""
    assert policy_size('{ "a" :\t"b c",\r\n "d": 1 }') == len('{"a":"bc","d":1}')


@pytest.mark.parametrize(
    ("quota", "name", "limit"),
    [
        (MANAGED_POLICY_SIZE, "PolicySize", 6144),
        (USER_INLINE_POLICY_SIZE, "UserPolicySize", 2048),
        (GROUP_INLINE_POLICY_SIZE, "GroupPolicySize", 5120),
        (ROLE_INLINE_POLICY_SIZE, "RolePolicySize", 10240),
    ],
)
def test_size_at_and_above_the_limit(quota: tuple[str, int], name: str, limit: int) -> None:
    """A policy of exactly the limit passes; one character more (white space aside) fails."""
    check_policy_size("x" * limit + " \n" * 100, quota)
    with pytest.raises(LimitExceeded) as e:
        check_policy_size("x" * (limit + 1), quota)
    assert e.value.code == "LimitExceeded"
    assert str(e.value) == (
        f"cannot exceed quota for {name}: {limit} "
        f"(the policy has {limit + 1} characters not counting white space)"
    )


@pytest.mark.parametrize("char", ["\t", "\n", "\r", " ", "~", "\xe9", "\xff"])
def test_allowed_characters(char: str) -> None:
    """Tab, line feed, carriage return and U+0020-U+00FF are accepted."""
    check_policy_characters(f'{{"Sid": "a{char}b"}}')


@pytest.mark.parametrize("char", ["\x00", "\x1f", "\u0100", "\u2013", "\U0001f600"])
def test_forbidden_characters(char: str) -> None:
    """Any other character is a MalformedPolicyDocument naming it and its line."""
    with pytest.raises(MalformedPolicyDocument) as e:
        check_policy_characters(f'{{\n"Sid": "a{char}b"}}')
    assert str(e.value) == (
        f"character U+{ord(char):04X} at line 2 is not allowed "
        "(only tab, line feed, carriage return and U+0020-U+00FF)"
    )
