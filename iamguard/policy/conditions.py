"""Condition operators: every AWS family, ``...IfExists`` and the ``ForAllValues:`` /
``ForAnyValue:`` qualifiers.

Policy values are parsed once, when the policy is compiled (numbers, dates, networks, ARN
patterns); only the request's values are read at evaluation time. The rules, from AWS's
condition-operator and multivalued-key pages:

- several values for one key: OR; several keys or operators: AND (see ``grammar``);
- a negated operator (``StringNotEquals``, ``NotIpAddress``, ...) holds when the request value
  matches none of the policy values;
- a missing key: false, but true for a negated operator and for ``...IfExists``;
  ``ForAllValues`` holds and ``ForAnyValue`` fails on a missing key or an empty set;
- ``Null``: ``"true"`` holds when the key is absent, ``"false"`` when it is present.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final

from iamguard.policy.patterns import (
    Matcher,
    compile_arn,
    compile_arn_cached,
    compile_glob,
    compile_glob_cached,
)
from iamguard.policy.variables import (
    Context,
    Template,
    Variable,
    has_variables,
    parse_arn_template,
    parse_template,
    resolve_text,
    resolve_tokens,
    static_tokens,
)

Test = Callable[[str, Context], bool]  # does one request value match one policy value?


class ConditionValueError(ValueError):
    """A policy value that the operator cannot read (a bad number, date, network, ...)."""


# --- value readers -----------------------------------------------------------------------------


_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def parse_number(text: str) -> Decimal | None:
    """A decimal number written in ASCII digits (``-1.5``, ``2e3``), or None."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def parse_date(text: str) -> Decimal | None:
    """An ISO 8601 date-time or epoch seconds, as epoch seconds; None if it is neither."""
    text = text.strip()
    if not text.isascii():
        return None
    if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
        return Decimal(text)
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return Decimal(moment.timestamp()).quantize(Decimal("0.000001"))


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR block or a single address, or None."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A request's address (cached: one request tests it against many networks)."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# --- families ----------------------------------------------------------------------------------
# Each family turns one policy value (text) into a test of one request value, or raises
# ConditionValueError. ``template`` is the parsed text for families that allow variables.


def _string_equals(template: Template) -> Test:
    if not has_variables(template):
        text = resolve_text(template, {})
        return lambda value, _ctx: value == text
    return lambda value, ctx: value == resolve_text(template, ctx)


def _string_equals_ignore_case(template: Template) -> Test:
    if not has_variables(template):
        folded = (resolve_text(template, {}) or "").casefold()
        return lambda value, _ctx: value.casefold() == folded

    def test(value: str, ctx: Context) -> bool:
        text = resolve_text(template, ctx)
        return text is not None and value.casefold() == text.casefold()

    return test


def _string_like(template: Template) -> Test:
    return _pattern_test(template, compile_glob, compile_glob_cached)


def _arn_like(template: Template) -> Test:
    return _pattern_test(template, compile_arn, compile_arn_cached)


def _pattern_test(
    template: Template,
    compile_static: Callable[[Any], Matcher],
    compile_resolved: Callable[[Any], Matcher],
) -> Test:
    if not has_variables(template):
        matcher = compile_static(static_tokens(template))
        return lambda value, _ctx: matcher(value)

    def test(value: str, ctx: Context) -> bool:
        tokens = resolve_tokens(template, ctx)
        return tokens is not None and compile_resolved(tokens)(value)

    return test


def _numeric(compare: Callable[[Decimal, Decimal], bool]) -> Callable[[str], Test]:
    def family(text: str) -> Test:
        bound = parse_number(text)
        if bound is None:
            raise ConditionValueError(f"`{text}` is not a number")

        def test(value: str, _ctx: Context) -> bool:
            number = parse_number(value)
            return number is not None and compare(number, bound)

        return test

    return family


def _date(compare: Callable[[Decimal, Decimal], bool]) -> Callable[[str], Test]:
    def family(text: str) -> Test:
        bound = parse_date(text)
        if bound is None:
            raise ConditionValueError(f"`{text}` is not an ISO 8601 date or epoch seconds")

        def test(value: str, _ctx: Context) -> bool:
            moment = parse_date(value)
            return moment is not None and compare(moment, bound)

        return test

    return family


def _bool(text: str) -> Test:
    wanted = text.strip().lower()
    if wanted not in ("true", "false"):
        raise ConditionValueError(f"`{text}` is not `true` or `false`")
    return lambda value, _ctx: value.strip().lower() == wanted


def _binary(text: str) -> Test:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConditionValueError(f"`{text}` is not base64") from None
    return lambda value, _ctx: value == text


def _ip(text: str) -> Test:
    network = parse_network(text)
    if network is None:
        raise ConditionValueError(f"`{text}` is not an IP address or CIDR block")

    def test(value: str, _ctx: Context) -> bool:
        address = _parse_address(value)
        return address is not None and address.version == network.version and address in network

    return test


def _eq(a: Decimal, b: Decimal) -> bool:
    return a == b


def _lt(a: Decimal, b: Decimal) -> bool:
    return a < b


def _le(a: Decimal, b: Decimal) -> bool:
    return a <= b


def _gt(a: Decimal, b: Decimal) -> bool:
    return a > b


def _ge(a: Decimal, b: Decimal) -> bool:
    return a >= b


# How a policy value is read before its family compiles it: plain text, or a template in which
# policy variables stand (only the String and ARN operators take variables).
def _text(text: str, _variables: bool) -> str:
    return text


_STRING: Final = parse_template
_ARN: Final = parse_arn_template

# operator name -> (family builder, value reader, negated)
_FAMILIES: Final[dict[str, tuple[Callable[[Any], Test], Callable[[str, bool], Any], bool]]] = {
    "StringEquals": (_string_equals, _STRING, False),
    "StringNotEquals": (_string_equals, _STRING, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, _STRING, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, _STRING, True),
    "StringLike": (_string_like, _STRING, False),
    "StringNotLike": (_string_like, _STRING, True),
    "NumericEquals": (_numeric(_eq), _text, False),
    "NumericNotEquals": (_numeric(_eq), _text, True),
    "NumericLessThan": (_numeric(_lt), _text, False),
    "NumericLessThanEquals": (_numeric(_le), _text, False),
    "NumericGreaterThan": (_numeric(_gt), _text, False),
    "NumericGreaterThanEquals": (_numeric(_ge), _text, False),
    "DateEquals": (_date(_eq), _text, False),
    "DateNotEquals": (_date(_eq), _text, True),
    "DateLessThan": (_date(_lt), _text, False),
    "DateLessThanEquals": (_date(_le), _text, False),
    "DateGreaterThan": (_date(_gt), _text, False),
    "DateGreaterThanEquals": (_date(_ge), _text, False),
    "Bool": (_bool, _text, False),
    "BinaryEquals": (_binary, _text, False),
    "IpAddress": (_ip, _text, False),
    "NotIpAddress": (_ip, _text, True),
    "ArnEquals": (_arn_like, _ARN, False),
    "ArnLike": (_arn_like, _ARN, False),
    "ArnNotEquals": (_arn_like, _ARN, True),
    "ArnNotLike": (_arn_like, _ARN, True),
}
NULL: Final = "Null"
QUALIFIERS: Final = ("ForAllValues", "ForAnyValue")
IF_EXISTS: Final = "IfExists"

OPERATOR_NAMES: Final = tuple(
    f"{q}:{name}{suffix}" if q else f"{name}{suffix}"
    for q in ("", *QUALIFIERS)
    for name in (*_FAMILIES, NULL)
    for suffix in ("", IF_EXISTS)
    if not (name == NULL and (suffix or q))
)


class UnknownOperator(ValueError):
    """A condition operator AWS does not have; ``suggestion`` is the nearest real one."""

    def __init__(self, name: str, suggestion: str | None = None) -> None:
        if suggestion is None:
            suggestion = _BY_LOWER_NAME.get(name.lower())
        if suggestion is None:
            matches = difflib.get_close_matches(name, OPERATOR_NAMES, n=1, cutoff=0.6)
            suggestion = matches[0] if matches else None
        self.suggestion = suggestion
        hint = f" (did you mean `{suggestion}`?)" if suggestion else ""
        super().__init__(f"unknown operator `{name}`{hint}")


_BY_LOWER_NAME: Final = {name.lower(): name for name in OPERATOR_NAMES}


def split_operator(name: str) -> tuple[str | None, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> (``ForAnyValue``, ``StringLike``, True).

    Raises ``UnknownOperator``. Operator names are case-sensitive, as in AWS.
    """
    qualifier: str | None = None
    base = name
    if ":" in name:
        qualifier, _, base = name.partition(":")
        if qualifier not in QUALIFIERS:
            raise UnknownOperator(name)
    if_exists = base.endswith(IF_EXISTS) and base != IF_EXISTS
    if if_exists:
        base = base[: -len(IF_EXISTS)]
    if base == NULL:
        if if_exists or qualifier:
            raise UnknownOperator(name, suggestion=NULL)  # Null takes no suffix or qualifier
    elif base not in _FAMILIES:
        raise UnknownOperator(name)
    return qualifier, base, if_exists


class Condition:
    """One operator applied to one context key with its policy values."""

    __slots__ = (
        "_if_exists", "_negated", "_null", "_qualifier", "_tests", "context_keys", "key",
        "operator",
    )  # fmt: skip

    def __init__(self, operator: str, key: str, values: Sequence[str], variables: bool) -> None:
        """Compile; raises ``UnknownOperator`` or ``ConditionValueError``."""
        qualifier, base, if_exists = split_operator(operator)
        self.operator = operator
        self.key = key.lower()
        self._qualifier = qualifier
        self._if_exists = if_exists
        # Null: the set of answers to "is the key absent?" that satisfy it (values are OR).
        self._null: frozenset[bool] | None = None
        self._tests: tuple[Test, ...] = ()
        self._negated = False
        self.context_keys: frozenset[str] = frozenset({self.key})  # what the condition reads
        if base == NULL:
            wanted = {v.strip().lower() for v in values}
            bad = wanted - {"true", "false"}
            if bad:
                raise ConditionValueError(f"`{sorted(bad)[0]}` is not `true` or `false`")
            self._null = frozenset(v == "true" for v in wanted)
            return
        build, read, self._negated = _FAMILIES[base]
        templates = [read(v, variables) for v in values]
        self._tests = tuple(build(t) for t in templates)
        self.context_keys = self.context_keys | {
            part.key for t in templates if isinstance(t, tuple) for part in t
            if isinstance(part, Variable)
        }  # fmt: skip

    def _matches(self, value: str, ctx: Context) -> bool:
        """Does one request value match (for a negated operator: match none of) the values?"""
        for test in self._tests:
            if test(value, ctx):
                return not self._negated
        return self._negated

    def __call__(self, ctx: Context) -> bool:
        """Does the condition hold in this request context?"""
        value = ctx.get(self.key)
        if type(value) is str and self._qualifier is None and self._null is None:
            return self._matches(value, ctx)  # the common case: one value, plain operator
        present = value is not None and value != ()
        if self._null is not None:
            return (not present) in self._null
        if not present:
            if self._qualifier == "ForAllValues":
                return True
            if self._qualifier == "ForAnyValue":
                return self._if_exists
            return self._if_exists or self._negated
        values: tuple[str, ...] = (value,) if isinstance(value, str) else value or ()
        if self._qualifier == "ForAllValues":
            return all(self._matches(v, ctx) for v in values)
        if self._qualifier == "ForAnyValue":
            return any(self._matches(v, ctx) for v in values)
        # A multi-valued key under a single-valued operator: judged as a whole, a positive
        # operator holds when some value matches, a negated one when no value matches.
        hit = any(test(v, ctx) for v in values for test in self._tests)
        return not hit if self._negated else hit
