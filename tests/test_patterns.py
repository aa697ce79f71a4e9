"""Wildcard and ARN matching: AWS's rules, and linear time on hostile patterns."""

from __future__ import annotations

import time

import pytest

from iamguard.policy.patterns import STAR, compile_arn, compile_glob, tokenize


def glob(pattern: str, text: str) -> bool:
    return compile_glob(tokenize(pattern))(text)


def arn(pattern: str, text: str) -> bool:
    return compile_arn(tokenize(pattern))(text)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("*", "", True),
        ("a*", "a", True),
        ("a*", "ba", False),
        ("*a", "ba", True),
        ("*a", "ab", False),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "acb", False),
        ("*?", "", False),
        ("*??*", "x", False),
        ("*??*", "xy", True),
        ("a*?b", "ab", False),
        ("a*?b", "axb", True),
        ("*ab*ab*", "abab", True),
        ("*ab*ab*", "aba", False),
        ("a**b", "ab", True),
    ],
)
def test_glob(pattern: str, text: str, expected: bool) -> None:
    """`*` is any run of characters and `?` exactly one, anchored at both ends."""
    assert glob(pattern, text) is expected


def test_literal_text_token_is_not_a_wildcard() -> None:
    """A `*` inside a literal token (from `${*}`) matches only an asterisk."""
    matcher = compile_glob(["a*b"])
    assert matcher("a*b")
    assert not matcher("axb")
    assert compile_glob(["a", STAR, "*"])("axx*")
    assert not compile_glob(["a", STAR, "*"])("axx")


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", "anything at all", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::Bucket/a", False),
        ("arn:aws:s3:::bucket", "arn:aws:s3:::bucket/key", False),
        (
            "arn:aws:dynamodb:*:123456789012:table/T",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/T",
            True,
        ),
        (
            "arn:aws:dynamodb:*:123456789012:table/T",
            "arn:aws:dynamodb:eu:west:123456789012:table/T",
            False,
        ),
        (
            "arn:aws:dynamodb:eu-*:*:table/*",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/T/index/I",
            True,
        ),
        (
            "arn:aws:dynamodb:eu-*:*:table/*",
            "arn:aws:dynamodb:us-east-1:123456789012:table/T",
            False,
        ),
        ("arn:*:iam::123456789012:user/bob", "arn:aws:iam::123456789012:user/bob", True),
        ("arn:*:iam::123456789012:user/bob", "arn:aws:iam::123456789012:user/bobby", False),
        (
            "arn:aws:logs:eu-west-1:123456789012:log-group:*",
            "arn:aws:logs:eu-west-1:123456789012:log-group:app:log-stream:s1",
            True,
        ),
        ("arn:aws:iam::123456789012:role/?ppRole", "arn:aws:iam::123456789012:role/AppRole", True),
        ("arn:aws:s3:*", "arn:aws:s3:::bucket/key", True),
        ("arn:aws:ec2:?s-east-1:*:instance/*", "arn:aws:ec2:us-east-1:1:instance/i", True),
        ("arn:aws:ec2:?s-east-1:*:instance/*", "arn:aws:ec2:us-east-12:1:instance/i", False),
        ("images/*", "images/42", True),
        ("images/*", "arn:iamguard:images::1:image/42", False),
        ("images/42", "images/42", True),
        ("arn:iamguard:images::123456789012:image/42", "images/42", False),
    ],
)
def test_arn(pattern: str, resource: str, expected: bool) -> None:
    """ARN patterns match segment by segment; `*` crosses `:` and `/` only in the resource part."""
    assert arn(pattern, resource) is expected


def _median_seconds(fn, repeat: int = 15) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeat // 2]


@pytest.mark.parametrize(
    "pattern",
    [
        "a*" * 50 + "b",  # classic regex catastrophe: a*a*a*...b against aaaa...
        "*a" * 50 + "*b*",  # the failing piece is found only at the end of the scan
        "?*" * 50 + "b",
    ],
)
def test_hostile_pattern_costs_microseconds(pattern: str) -> None:
    """Fifty stars against 10 KB with no match cost well under a millisecond (no backtracking).

    A backtracking matcher needs time exponential in the number of stars here; the bound is
    generous so that a loaded machine does not fail it, yet orders of magnitude below that.
    """
    text = "a" * 10_000
    matcher = compile_glob(tokenize(pattern))
    assert matcher(text) is False
    assert _median_seconds(lambda: matcher(text)) < 0.001
