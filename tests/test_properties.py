"""Properties of the policy language, checked with hypothesis.

- ``Policy.parse`` on any input returns a Policy or raises MalformedPolicyDocument, nothing else;
- ``evaluate`` never raises and never records an error on well-formed policies, whatever the
  request and its context;
- metamorphic laws of AWS's evaluation logic (deny wins, allow-all allows, order and case do
  not matter);
- the wildcard and ARN matchers agree with simple reference implementations.
"""

from __future__ import annotations

import fnmatch
import json
import re
import string
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from iamguard import (
    AccessRequest,
    Decision,
    MalformedPolicyDocument,
    Policy,
    Reason,
    evaluate,
)
from iamguard.policy.patterns import compile_arn, compile_glob, tokenize

KINDS = ("identity", "resource", "trust")
V12 = "2012-10-17"
FAST = settings(max_examples=150, deadline=None)
SLOW = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_outcome(document: Any, kind: str) -> Policy | MalformedPolicyDocument:
    """Parse; the only exception allowed is MalformedPolicyDocument (exactly), with problems."""
    try:
        return Policy.parse(document, kind)
    except Exception as error:
        assert type(error) is MalformedPolicyDocument, f"{type(error).__name__}: {error}"
        assert error.problems
        for problem in error.problems:
            assert isinstance(problem.path, str)
            assert isinstance(problem.message, str)
            assert problem.message
        return error


# --- arbitrary JSON, and JSON biased toward the grammar ----------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

TOP_KEYS = ["Version", "Id", "Statement"]
STATEMENT_KEYS = [
    "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
    "Resource", "NotResource", "Condition",
]  # fmt: skip
PRINCIPAL_KEYS = ["AWS", "Service", "Federated", "CanonicalUser"]
OPERATORS = [
    "StringEquals", "StringNotEqualsIgnoreCase", "StringLike", "NumericLessThan",
    "DateGreaterThan", "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnLike", "Null",
    "ForAllValues:StringEquals", "ForAnyValue:StringLikeIfExists", "NumericEqualsIfExists",
    # and some that are not
    "StringEqual", "stringequals", "NullIfExists", "ForAllValues:Null", "ForEachValue:Bool",
    "IfExists", "ForAnyValue:",
]  # fmt: skip
CONDITION_KEYS = [
    "aws:username", "aws:SourceIp", "aws:CurrentTime", "aws:MultiFactorAuthPresent",
    "aws:PrincipalTag/team", "s3:prefix", "username", "aws:", "",
]  # fmt: skip
PLAUSIBLE = [
    "2012-10-17", "2008-10-17", "Allow", "Deny", "allow", "*", "s3:GetObject", "s3:*", "s3:Get*",
    "GetObject", "arn:aws:s3:::b/*", "arn:aws:s3:::b/${aws:username}", "arn:aws:s3",
    "arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:user/alice",
    "arn:aws:iam::*:root", "123456789012", "ec2.amazonaws.com", "10.0.0.0/8", "300.1.1.1/8",
    "true", "false", "maybe", "2020-01-01T00:00:00Z", "yesterday", "3600", "abc", "QUJD",
    "not base64!", "${aws:username}", "${aws:username, 'x'}", "${*}", "${", "S1", "a-b", "",
]  # fmt: skip

grammar_keys = st.sampled_from(TOP_KEYS + STATEMENT_KEYS + PRINCIPAL_KEYS + OPERATORS)
grammar_scalars = st.sampled_from(PLAUSIBLE) | json_scalars
grammar_values = st.recursive(
    grammar_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(grammar_keys | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=15,
)
strings_like = st.sampled_from(PLAUSIBLE) | st.lists(st.sampled_from(PLAUSIBLE), max_size=3)
condition_like = st.dictionaries(
    st.sampled_from(OPERATORS) | st.text(max_size=6),
    st.dictionaries(
        st.sampled_from(CONDITION_KEYS) | st.text(max_size=6),
        grammar_scalars | st.lists(grammar_scalars, max_size=3),
        max_size=2,
    )
    | grammar_scalars,
    max_size=3,
)
principal_like = (
    st.just("*")
    | st.dictionaries(st.sampled_from(PRINCIPAL_KEYS) | st.text(max_size=4), strings_like)
    | grammar_scalars
)
statement_like = st.fixed_dictionaries(
    {},
    optional={
        "Sid": st.sampled_from(["S1", "S2", "a-b"]) | grammar_scalars,
        "Effect": st.sampled_from(["Allow", "Deny", "allow"]) | grammar_scalars,
        "Principal": principal_like,
        "NotPrincipal": principal_like,
        "Action": strings_like | grammar_values,
        "NotAction": strings_like,
        "Resource": strings_like | grammar_values,
        "NotResource": strings_like,
        "Condition": condition_like | grammar_values,
        "Efect": grammar_scalars,
    },
)
document_like = st.fixed_dictionaries(
    {},
    optional={
        "Version": st.sampled_from(["2012-10-17", "2008-10-17"]) | grammar_scalars,
        "Id": grammar_scalars,
        "Statement": statement_like | st.lists(statement_like, max_size=3) | grammar_values,
        "Statment": grammar_values,
    },
)


# --- well-formed policies, and valid documents edited at random --------------------------------

SERVICES = ["s3", "orders"]
ACTION_WORDS = ["Get", "GetObject", "Put", "PutObject", "List"]
ACTION_PATTERNS = ["*", "Get*", "G?t", "*Object", "Put", "GetObject", "List*", "?et*", "*t*"]
ACCOUNT = "123456789012"
PRINCIPALS = [
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    f"arn:aws:iam::{ACCOUNT}:role/Reader",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/batch",
    f"arn:aws:iam::{ACCOUNT}:root",
    "arn:aws:iam::999999999999:user/bob",
    "anonymous",
]
CONTEXT_KEYS = [
    "aws:username", "aws:SourceIp", "aws:CurrentTime", "aws:MultiFactorAuthPresent",
    "aws:PrincipalTag/team", "s3:prefix", "orders:Amount", "aws:TagKeys", "aws:PrincipalArn",
]  # fmt: skip

action_patterns = st.just("*") | st.builds(
    "{}:{}".format,
    st.sampled_from(SERVICES),
    st.sampled_from(ACTION_PATTERNS) | st.text(alphabet="GetPuO*?", min_size=1, max_size=5),
)
request_actions = st.builds(
    "{}:{}".format,
    st.sampled_from([*SERVICES, "iam"]),
    st.sampled_from(ACTION_WORDS) | st.text(alphabet="GetPuO", min_size=1, max_size=5),
)
resource_pieces = st.sampled_from(
    ["b", "alice", "*", "?", "a*e", "k?", "${aws:username}", "${aws:PrincipalTag/team, 'none'}",
     "${*}", "${?}", "${aws:username}-*"]
)  # fmt: skip
resource_patterns = st.just("*") | st.builds(
    "arn:{}:{}:{}:{}:{}".format,
    st.sampled_from(["aws", "*", "a?s"]),
    st.sampled_from([*SERVICES, "*"]),
    st.sampled_from(["", "us-east-1", "*"]),
    st.sampled_from(["", ACCOUNT, "*"]),
    st.lists(resource_pieces, min_size=1, max_size=2).map("/".join),
)
request_resources = (
    st.builds(
        "arn:aws:{}:{}:{}:{}".format,
        st.sampled_from(SERVICES),
        st.sampled_from(["", "us-east-1"]),
        st.sampled_from(["", ACCOUNT]),
        st.lists(st.sampled_from(["b", "alice", "none", "k1", "*", "?", "${aws:username}"]),
                 min_size=1, max_size=2).map("/".join),
    )
    | st.text(max_size=12)
)  # fmt: skip

string_values = st.sampled_from(
    ["alice", "bob", "a*", "${aws:username}", "home/${aws:username}/*", "", "?", "${*}"]
)
arn_values = st.sampled_from(
    [f"arn:aws:iam::{ACCOUNT}:user/*", "arn:aws:iam::*:role/R?ader", "arn:*:*:*:*:*",
     f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}", "*"]
)  # fmt: skip
FAMILY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "String": string_values,
    "Numeric": st.integers(-5, 5) | st.sampled_from(["1.5", "-0", "10", " 3 "]),
    "Date": st.sampled_from(
        ["2020-01-01T00:00:00Z", "2030-06-01", "1700000000", "2024-02-29T12:00:00+02:00"]
    )
    | st.just(1700000000),
    "Bool": st.sampled_from(["true", "false", "TRUE", True, False]),
    "Binary": st.sampled_from(["QUJD", "YWxpY2U="]),
    "Ip": st.sampled_from(["10.0.0.0/8", "192.168.1.1", "::1/128", "2001:db8::/32"]),
    "Arn": arn_values,
    "Null": st.sampled_from(["true", "false", True]),
}
BASES = {
    "StringEquals": "String", "StringNotEquals": "String", "StringEqualsIgnoreCase": "String",
    "StringNotEqualsIgnoreCase": "String", "StringLike": "String", "StringNotLike": "String",
    "NumericEquals": "Numeric", "NumericNotEquals": "Numeric", "NumericLessThan": "Numeric",
    "NumericLessThanEquals": "Numeric", "NumericGreaterThan": "Numeric",
    "NumericGreaterThanEquals": "Numeric", "DateEquals": "Date", "DateNotEquals": "Date",
    "DateLessThan": "Date", "DateLessThanEquals": "Date", "DateGreaterThan": "Date",
    "DateGreaterThanEquals": "Date", "Bool": "Bool", "BinaryEquals": "Binary",
    "IpAddress": "Ip", "NotIpAddress": "Ip", "ArnEquals": "Arn", "ArnLike": "Arn",
    "ArnNotEquals": "Arn", "ArnNotLike": "Arn", "Null": "Null",
}  # fmt: skip


@st.composite
def condition_blocks(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """A Condition element: one or two operators, each over one or two keys."""
    block: dict[str, dict[str, Any]] = {}
    for _ in range(draw(st.integers(1, 2))):
        base = draw(st.sampled_from(sorted(BASES)))
        operator = base
        if base != "Null":
            qualifier = draw(st.sampled_from(["", "", "ForAllValues:", "ForAnyValue:"]))
            operator = qualifier + base + draw(st.sampled_from(["", "", "IfExists"]))
        values = FAMILY_VALUES[BASES[base]]
        keys = draw(st.lists(st.sampled_from(CONTEXT_KEYS), min_size=1, max_size=2, unique=True))
        block[operator] = {
            key: draw(values | st.lists(values, min_size=1, max_size=3)) for key in keys
        }
    return block


def one_or_list(items: list[str], single: bool) -> str | list[str]:
    return items[0] if single and len(items) == 1 else items


@st.composite
def statements(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """One valid statement for a policy of ``kind``."""
    effect = draw(st.sampled_from(["Allow", "Allow", "Allow", "Deny"]))
    statement: dict[str, Any] = {"Effect": effect}
    actions = draw(st.lists(action_patterns, min_size=1, max_size=3))
    key = "NotAction" if draw(st.integers(0, 4)) == 0 else "Action"
    statement[key] = one_or_list(actions, draw(st.booleans()))
    if kind != "trust":
        resources = draw(st.lists(resource_patterns, min_size=1, max_size=3))
        key = "NotResource" if draw(st.integers(0, 4)) == 0 else "Resource"
        statement[key] = one_or_list(resources, draw(st.booleans()))
    if kind != "identity":
        names = draw(
            st.lists(st.sampled_from(["*", ACCOUNT, *PRINCIPALS[:4]]), min_size=1, max_size=3)
        )
        principal: Any = "*" if draw(st.integers(0, 3)) == 0 else {"AWS": names}
        negated = kind == "resource" and effect == "Deny" and draw(st.integers(0, 3)) == 0
        statement["NotPrincipal" if negated else "Principal"] = principal
    if draw(st.booleans()):
        statement["Condition"] = draw(condition_blocks())
    return statement


@st.composite
def documents(draw: st.DrawFn, kind: str = "identity") -> dict[str, Any]:
    """A valid policy document of ``kind``."""
    found = draw(st.lists(statements(kind), min_size=1, max_size=3))
    for i, statement in enumerate(found):
        if draw(st.booleans()):
            statement["Sid"] = f"S{i}"
    document: dict[str, Any] = {"Statement": found if len(found) > 1 else found[0]}
    version = draw(st.sampled_from([V12, V12, V12, "2008-10-17", None]))
    if version is not None:
        document["Version"] = version
    return document


def policies(kind: str = "identity") -> st.SearchStrategy[Policy]:
    """A valid policy of ``kind``: parsing its document must succeed."""
    return documents(kind).map(lambda document: Policy.parse(document, kind))


@st.composite
def mutated_documents(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A valid document of ``kind`` with up to three random edits: a key dropped, renamed, or
    given a plausible or implausible value, at the top or in a statement."""
    document = draw(documents(kind))
    for _ in range(draw(st.integers(0, 3))):
        found = document.get("Statement")
        inner = found if isinstance(found, list) else [found]
        targets = [t for t in (document, *inner) if isinstance(t, dict) and t]
        if not targets:
            break
        target = draw(st.sampled_from(targets))
        key = draw(st.sampled_from(sorted(target)))
        edit = draw(st.sampled_from(["drop", "rename", "value", "value"]))
        if edit == "drop":
            del target[key]
        elif edit == "rename":
            target[draw(grammar_keys | st.text(max_size=6))] = target.pop(key)
        else:
            target[key] = draw(grammar_values)
    return document


# --- parsing never fails in any other way ----------------------------------------------------


@FAST
@given(value=json_values, kind=st.sampled_from(KINDS))
def test_parse_arbitrary_json_value(value: Any, kind: str) -> None:
    """Any JSON value (as a Python object) parses or raises MalformedPolicyDocument."""
    if isinstance(value, dict):
        parse_outcome(value, kind)
    parse_outcome(json.dumps(value), kind)


def with_kind(make: Any) -> st.SearchStrategy[tuple[str, Any]]:
    """A policy kind and a document drawn from ``make(kind)``."""
    return st.sampled_from(KINDS).flatmap(lambda kind: st.tuples(st.just(kind), make(kind)))


@SLOW
@given(case=with_kind(lambda kind: document_like | grammar_values | mutated_documents(kind)))
def test_parse_grammar_like_document(case: tuple[str, Any]) -> None:
    """A document built from the grammar's own names and values, or a valid one edited at
    random, parses or raises MalformedPolicyDocument."""
    kind, document = case
    if isinstance(document, dict):
        parse_outcome(document, kind)
    parse_outcome(json.dumps(document), kind)


@SLOW
@given(case=with_kind(lambda kind: document_like | mutated_documents(kind)))
def test_text_and_mapping_agree(case: tuple[str, Any]) -> None:
    """A mapping and its JSON text give equal policies, or the same problems."""
    kind, document = case
    try:
        text = json.dumps(document, allow_nan=False)
    except ValueError:
        assume(False)
    from_mapping = parse_outcome(document, kind)
    from_text = parse_outcome(text, kind)
    if isinstance(from_mapping, Policy):
        assert from_mapping == from_text
    else:
        assert isinstance(from_text, MalformedPolicyDocument)
        assert from_text.problems == from_mapping.problems


json_texts = (
    st.text(max_size=60)
    | json_values.map(json.dumps)
    | st.tuples(document_like.map(json.dumps), st.integers(0, 200)).map(lambda t: t[0][: t[1]])
)


@FAST
@given(text=json_texts, kind=st.sampled_from(KINDS))
def test_parse_arbitrary_text(text: str, kind: str) -> None:
    """Any text (JSON, truncated JSON or not JSON) parses or raises MalformedPolicyDocument."""
    parse_outcome(text, kind)


@FAST
@given(data=st.binary(max_size=80) | json_texts.map(lambda t: t.encode("utf-16")))
def test_parse_arbitrary_bytes(data: bytes) -> None:
    """Any bytes parse or raise MalformedPolicyDocument."""
    parse_outcome(data, "identity")


# --- random requests ---------------------------------------------------------------------------

context_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(
        ["alice", "10.1.2.3", "::1", "2025-01-01T00:00:00Z", "true", "QUJD", "home/alice/x",
         f"arn:aws:iam::{ACCOUNT}:user/alice", "1.5", "*"]
    )
)  # fmt: skip
context_values = st.recursive(
    context_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6
)
context_keys = st.sampled_from(CONTEXT_KEYS) | st.text(
    alphabet=string.ascii_letters + ":/-", min_size=1, max_size=10
)


def unique_by_case(context: dict[str, Any]) -> dict[str, Any]:
    """Drop keys that differ from an earlier one only in case (their order would matter)."""
    seen: set[str] = set()
    out = {}
    for key, value in context.items():
        if key.lower() not in seen:
            seen.add(key.lower())
            out[key] = value
    return out


contexts = st.dictionaries(context_keys, context_values, max_size=6).map(unique_by_case)


@st.composite
def requests(draw: st.DrawFn) -> AccessRequest:
    return AccessRequest(
        draw(st.sampled_from(PRINCIPALS)),
        draw(request_actions),
        draw(request_resources),
        draw(contexts),
    )


def same_request(request: AccessRequest, **changes: Any) -> AccessRequest:
    """A fresh request like ``request``, with some fields changed."""
    fields = {
        "principal": request.principal,
        "action": request.action,
        "resource": request.resource,
        "context": request.context,
        **changes,
    }
    return AccessRequest(**fields)


def sound(decision: Decision) -> None:
    """A decision is one of AWS's three effects, consistent, and made without error."""
    assert decision.effect in {"Allow", "ExplicitDeny", "ImplicitDeny"}
    assert decision.allowed == (decision.effect == "Allow")
    assert decision.errors == (), decision.errors
    assert isinstance(decision.explain(), str)


DENY_ALL = Policy.parse(
    {"Version": V12, "Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}
)
ALLOW_ALL = Policy.parse(
    {"Version": V12, "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}
)

identity_sets = st.lists(policies("identity"), max_size=3)
limit_sets = st.lists(policies("identity"), max_size=1)
resource_policies = st.none() | policies("resource")


@SLOW
@given(
    request=requests(),
    identity=identity_sets,
    boundaries=limit_sets,
    session=limit_sets,
    resource=resource_policies,
)
def test_evaluate_is_sound(
    request: AccessRequest,
    identity: list[Policy],
    boundaries: list[Policy],
    session: list[Policy],
    resource: Policy | None,
) -> None:
    """`evaluate` never raises nor errs on well-formed policies, and its answer is consistent."""
    sound(evaluate(request, identity, boundaries, session, resource))


@SLOW
@given(policy=st.sampled_from(KINDS).flatmap(policies))
def test_document_round_trips(policy: Policy) -> None:
    """A policy's `document` parses back to an equal policy."""
    assert Policy.parse(policy.document, policy.kind) == policy


@SLOW
@given(
    data=st.data(),
    request=requests(),
    identity=identity_sets,
    boundaries=limit_sets,
    session=limit_sets,
    resource=resource_policies,
)
def test_deny_all_always_denies(
    data: st.DataObject,
    request: AccessRequest,
    identity: list[Policy],
    boundaries: list[Policy],
    session: list[Policy],
    resource: Policy | None,
) -> None:
    """Adding a Deny of `*` on `*` anywhere among the identity policies yields ExplicitDeny."""
    with_deny = data.draw(st.permutations([*identity, DENY_ALL]))
    decision = evaluate(request, with_deny, boundaries, session, resource)
    sound(decision)
    assert decision.effect == "ExplicitDeny"


def crosses_accounts(request: AccessRequest) -> bool:
    """Do the principal's and the resource's ARNs name two different accounts?"""
    principal, resource = request.principal.split(":"), request.resource.split(":")
    if len(principal) < 6 or len(resource) < 6 or resource[0] != "arn" or principal[0] != "arn":
        return False
    return bool(principal[4]) and bool(resource[4]) and principal[4] != resource[4]


@SLOW
@given(request=requests(), identity=identity_sets, resource=resource_policies)
def test_allow_all_allows_unless_denied(
    request: AccessRequest, identity: list[Policy], resource: Policy | None
) -> None:
    """Without boundaries or session policies, adding an Allow of `*` on `*` allows whatever
    was not explicitly denied, within one account; across accounts the resource's account must
    consent too, so without a resource policy the answer is an implicit deny."""
    before = evaluate(request, identity, resource=resource)
    after = evaluate(same_request(request), [*identity, ALLOW_ALL], resource=resource)
    sound(after)
    if before.effect == "ExplicitDeny":
        assert after.effect == "ExplicitDeny"
    elif crosses_accounts(request) and resource is None:
        assert (after.effect, after.reason) == ("ImplicitDeny", Reason.NO_RESOURCE_ALLOW)
    elif not crosses_accounts(request):
        assert after.effect == "Allow"


@FAST
@given(request=requests())
def test_no_policies_implicitly_deny(request: AccessRequest) -> None:
    """With no policy at all, every request is implicitly denied."""
    decision = evaluate(request)
    sound(decision)
    assert decision.effect == "ImplicitDeny"


@SLOW
@given(
    data=st.data(),
    request=requests(),
    identity=identity_sets,
    boundaries=limit_sets,
    resource=resource_policies,
)
def test_identity_policy_order_does_not_matter(
    data: st.DataObject,
    request: AccessRequest,
    identity: list[Policy],
    boundaries: list[Policy],
    resource: Policy | None,
) -> None:
    """The decision does not depend on the order of the identity policies."""
    shuffled = data.draw(st.permutations(identity))
    before = evaluate(request, identity, boundaries, resource=resource)
    after = evaluate(same_request(request), shuffled, boundaries, resource=resource)
    assert (after.effect, after.reason) == (before.effect, before.reason)


@SLOW
@given(
    request=requests(),
    identity=identity_sets,
    session=limit_sets,
    resource=resource_policies,
    case=st.sampled_from([str.upper, str.lower, str.swapcase]),
)
def test_context_key_case_does_not_matter(
    request: AccessRequest,
    identity: list[Policy],
    session: list[Policy],
    resource: Policy | None,
    case: Any,
) -> None:
    """Condition keys are case-insensitive: re-casing every context key changes nothing."""
    recased = {case(key): value for key, value in request.context.items()}
    before = evaluate(request, identity, session=session, resource=resource)
    after = evaluate(same_request(request, context=recased), identity, session=session,
                     resource=resource)  # fmt: skip
    assert (after.effect, after.reason) == (before.effect, before.reason)


@SLOW
@given(
    request=requests(),
    identity=identity_sets,
    boundaries=limit_sets,
    resource=resource_policies,
    case=st.sampled_from([str.upper, str.lower, str.swapcase]),
)
def test_action_case_does_not_matter(
    request: AccessRequest,
    identity: list[Policy],
    boundaries: list[Policy],
    resource: Policy | None,
    case: Any,
) -> None:
    """Actions are case-insensitive: re-casing the requested action changes nothing."""
    before = evaluate(request, identity, boundaries, resource=resource)
    recased = same_request(request, action=case(request.action))
    after = evaluate(recased, identity, boundaries, resource=resource)
    assert (after.effect, after.reason) == (before.effect, before.reason)


# --- the matchers against references -----------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(pattern=st.text(alphabet="ab*?", max_size=8), text=st.text(alphabet="ab", max_size=10))
def test_glob_agrees_with_fnmatch(pattern: str, text: str) -> None:
    """`*` and `?` mean what fnmatch says they mean (no `[` in the alphabet, so it is exact)."""
    assert compile_glob(tokenize(pattern))(text) == fnmatch.fnmatchcase(text, pattern)


def arn_reference(pattern: str, text: str) -> bool:
    """ARN matching as `compile_arn` documents it, by regex: in the first five segments a
    wildcard stays inside its segment, in the resource part it may cross `:`."""
    if not pattern.startswith("arn:"):
        return fnmatch.fnmatchcase(text, pattern)
    *leading, last = pattern.split(":", 5)

    def regex(segment: str, anything: str) -> str:
        return "".join(
            f"{anything}*" if c == "*" else anything if c == "?" else re.escape(c) for c in segment
        )

    full = ":".join([*(regex(s, "[^:]") for s in leading), regex(last, ".")])
    return re.fullmatch(full, text, re.DOTALL) is not None


arn_like_patterns = st.just("arn:") | st.text(alphabet="ab:*?", max_size=3)
arn_like_texts = st.text(alphabet="ab:", max_size=14)


@settings(max_examples=500, deadline=None)
@given(
    pattern=st.builds("{}{}".format, arn_like_patterns, st.text(alphabet="ab:*?", max_size=12)),
    text=st.builds("{}{}".format, st.just("arn:") | arn_like_texts, arn_like_texts),
)
def test_arn_matcher_agrees_with_reference(pattern: str, text: str) -> None:
    """The ARN matcher keeps wildcards inside the first five segments and lets them cross `:`
    in the resource part; a pattern that is not an ARN is a plain glob."""
    assert compile_arn(tokenize(pattern))(text) == arn_reference(pattern, text)
