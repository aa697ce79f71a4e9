"""Condition operators, one family at a time, on the compiled ``Condition`` directly."""

from __future__ import annotations

from typing import Any

import pytest

from iamguard.policy.conditions import Condition, ConditionValueError, UnknownOperator


def holds(operator: str, values: list[str], context: dict[str, Any], key: str = "k:key") -> bool:
    normalized = {k.lower(): (tuple(v) if isinstance(v, list) else v) for k, v in context.items()}
    return Condition(operator, key, values, variables=True)(normalized)


@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("StringEquals", ["abc"], "abc", True),
        ("StringEquals", ["abc"], "ABC", False),
        ("StringEquals", ["x", "abc"], "abc", True),
        ("StringNotEquals", ["x", "abc"], "abc", False),
        ("StringNotEquals", ["x", "y"], "abc", True),
        ("StringEqualsIgnoreCase", ["ABC"], "abc", True),
        ("StringNotEqualsIgnoreCase", ["ABC"], "abc", False),
        ("StringLike", ["a*c"], "abbbc", True),
        ("StringLike", ["a?c"], "abbc", False),
        ("StringLike", ["A*"], "abc", False),
        ("StringNotLike", ["a*", "b*"], "cat", True),
        ("StringNotLike", ["a*", "c*"], "cat", False),
        ("NumericEquals", ["10"], "10.0", True),
        ("NumericNotEquals", ["10"], "11", True),
        ("NumericLessThan", ["10"], "9.5", True),
        ("NumericLessThan", ["10"], "10", False),
        ("NumericLessThanEquals", ["10"], "10", True),
        ("NumericGreaterThan", ["10"], "10", False),
        ("NumericGreaterThanEquals", ["-1.5"], "-1.5", True),
        ("NumericEquals", ["10"], "ten", False),
        ("DateEquals", ["2024-01-01T00:00:00Z"], "1704067200", True),
        ("DateEquals", ["2024-01-01"], "2024-01-01T00:00:00Z", True),
        ("DateEquals", ["2024-01-01T01:00:00+01:00"], "2024-01-01T00:00:00Z", True),
        ("DateNotEquals", ["2024-01-01T00:00:00Z"], "2024-01-01T00:00:01Z", True),
        ("DateLessThan", ["2024-01-01T00:00:00Z"], "2023-12-31T23:59:59.999Z", True),
        ("DateLessThanEquals", ["1704067200"], "2024-01-01T00:00:00Z", True),
        ("DateGreaterThan", ["2024-01-01T00:00:00Z"], "2024-01-01T00:00:00Z", False),
        ("DateGreaterThanEquals", ["2024-01-01T00:00:00Z"], "1704067200", True),
        ("DateEquals", ["2024-01-01"], "not a date", False),
        ("Bool", ["true"], "true", True),
        ("Bool", ["true"], "TRUE", True),
        ("Bool", ["false"], "true", False),
        ("Bool", ["true"], "yes", False),
        ("BinaryEquals", ["QmluYXJ5VmFsdWU="], "QmluYXJ5VmFsdWU=", True),
        ("BinaryEquals", ["QmluYXJ5VmFsdWU="], "T3RoZXJWYWx1ZQ==", False),
        ("IpAddress", ["203.0.113.0/24"], "203.0.113.77", True),
        ("IpAddress", ["203.0.113.0/24"], "203.0.114.1", False),
        ("IpAddress", ["203.0.113.9"], "203.0.113.9", True),
        ("IpAddress", ["2001:db8::/32"], "2001:db8:1::5", True),
        ("IpAddress", ["2001:db8::/32"], "203.0.113.1", False),
        ("IpAddress", ["203.0.113.0/24"], "::ffff:203.0.113.5", True),
        ("IpAddress", ["203.0.113.0/24"], "not an address", False),
        ("NotIpAddress", ["10.0.0.0/8", "192.168.0.0/16"], "203.0.113.1", True),
        ("NotIpAddress", ["10.0.0.0/8", "192.168.0.0/16"], "10.1.2.3", False),
        (
            "ArnEquals",
            ["arn:aws:iam::123456789012:role/*"],
            "arn:aws:iam::123456789012:role/R",
            True,
        ),
        ("ArnLike", ["arn:aws:iam::*:role/R"], "arn:aws:iam::123456789012:role/R", True),
        ("ArnLike", ["arn:aws:iam::*:role/R"], "arn:aws:iam::1:2:role/R", False),
        ("ArnLike", ["arn:aws:iam::*:role/R"], "not-an-arn", False),
        (
            "ArnNotEquals",
            ["arn:aws:iam::123456789012:role/R"],
            "arn:aws:iam::123456789012:role/S",
            True,
        ),
        ("ArnNotLike", ["arn:aws:iam::*:role/*"], "arn:aws:iam::123456789012:role/S", False),
    ],
)
def test_operator_on_a_present_single_value(
    operator: str, values: list[str], value: str, expected: bool
) -> None:
    """Each operator compares a single request value with the policy's values (OR)."""
    assert holds(operator, values, {"k:key": value}) is expected


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),
        ("StringNotEquals", True),
        ("StringLike", False),
        ("StringNotLike", True),
        ("NumericLessThan", False),
        ("NumericNotEquals", True),
        ("DateNotEquals", True),
        ("NotIpAddress", True),
        ("ArnNotLike", True),
        ("StringEqualsIfExists", True),
        ("NumericLessThanIfExists", True),
        ("ForAllValues:StringEquals", True),
        ("ForAllValues:StringNotEquals", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAnyValue:StringNotEquals", False),
        ("ForAnyValue:StringEqualsIfExists", True),
    ],
)
def test_missing_key(operator: str, expected: bool) -> None:
    """A missing key: false, but true for negated operators, IfExists and ForAllValues."""
    value = "1" if "Numeric" in operator else "2024-01-01" if "Date" in operator else "x"
    if "Ip" in operator:
        value = "10.0.0.0/8"
    if "Arn" in operator:
        value = "arn:aws:iam::1:role/x"
    assert holds(operator, [value], {"other:key": "x"}) is expected


@pytest.mark.parametrize(
    ("values", "context", "expected"),
    [
        (["true"], {}, True),
        (["true"], {"k:key": "v"}, False),
        (["false"], {"k:key": "v"}, True),
        (["false"], {}, False),
        (["true"], {"k:key": []}, True),
        (["true", "false"], {}, True),
    ],
)
def test_null(values: list[str], context: dict[str, Any], expected: bool) -> None:
    """`Null: true` holds when the key is absent (or an empty set), `false` when present."""
    assert holds("Null", values, context) is expected


@pytest.mark.parametrize(
    ("operator", "values", "request_values", "expected"),
    [
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "c"], False),
        ("ForAllValues:StringEquals", ["a", "b"], [], True),
        ("ForAnyValue:StringEquals", ["a", "b"], ["c", "b"], True),
        ("ForAnyValue:StringEquals", ["a", "b"], ["c", "d"], False),
        ("ForAnyValue:StringEquals", ["a", "b"], [], False),
        ("ForAllValues:StringNotEquals", ["a", "b"], ["c", "d"], True),
        ("ForAllValues:StringNotEquals", ["a", "b"], ["c", "a"], False),
        ("ForAnyValue:StringNotEquals", ["a", "b"], ["a", "c"], True),
        ("ForAnyValue:StringNotEquals", ["a", "b"], ["a", "b"], False),
        ("ForAllValues:StringLike", ["env*", "team"], ["env-a", "team"], True),
        ("ForAnyValue:StringLike", ["env*"], ["team", "owner"], False),
        ("StringEquals", ["a"], ["b", "a"], True),
        ("StringNotEquals", ["a"], ["b", "a"], False),
    ],
)
def test_multivalued_keys(
    operator: str, values: list[str], request_values: list[str], expected: bool
) -> None:
    """Set qualifiers apply the operator to each request value: every one, or at least one."""
    assert holds(operator, values, {"k:key": request_values}) is expected


def test_key_names_are_case_insensitive() -> None:
    """`aws:SourceIp` in a policy reads `AWS:sourceip` from the request."""
    assert holds("IpAddress", ["10.0.0.0/8"], {"AWS:sourceip": "10.1.1.1"}, key="aws:SourceIp")


def test_policy_variable_in_a_string_condition() -> None:
    """A variable in a String value is replaced by the request's value for that key."""
    context = {"aws:username": "ram", "s3:prefix": "home/ram/docs"}
    assert holds("StringLike", ["home/${aws:username}/*"], context, key="s3:prefix")
    context["aws:username"] = "sita"
    assert not holds("StringLike", ["home/${aws:username}/*"], context, key="s3:prefix")


def test_unresolvable_variable_matches_nothing() -> None:
    """A variable with no value and no default matches no request value (per AWS)."""
    context = {"s3:prefix": "home//docs"}
    assert not holds("StringLike", ["home/${aws:username}/*"], context, key="s3:prefix")
    assert holds("StringNotLike", ["home/${aws:username}/*"], context, key="s3:prefix")


def test_variable_default_value() -> None:
    """`${key, 'default'}` stands for the default when the key is missing."""
    context = {"aws:resourcetag/team": "none"}
    assert holds(
        "StringEquals", ["${aws:PrincipalTag/team, 'none'}"], context, key="aws:ResourceTag/team"
    )


def test_variables_only_in_string_and_arn_operators() -> None:
    """`${...}` in a Numeric value is not a variable, so the value is not a number."""
    with pytest.raises(ConditionValueError, match="is not a number"):
        Condition("NumericEquals", "k:key", ["${aws:username}"], variables=True)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("StringEqual", "StringEquals"),
        ("stringequals", "StringEquals"),
        ("ForAnyValues:StringLike", "ForAnyValue:StringLike"),
        ("NullIfExists", "Null"),
        ("IpAddres", "IpAddress"),
    ],
)
def test_unknown_operator_suggests_the_nearest(name: str, suggestion: str) -> None:
    """An unknown operator is rejected with the nearest real one as a suggestion."""
    with pytest.raises(UnknownOperator) as e:
        Condition(name, "k:key", ["x"], variables=True)
    assert e.value.suggestion == suggestion
    assert str(e.value) == f"unknown operator `{name}` (did you mean `{suggestion}`?)"
