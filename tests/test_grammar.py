"""The policy grammar: every validation rule, its exact message and its JSON path.

Expected messages are written out by hand from what each rule should say (STYLE.md: lowercase,
user input in backticks, no final period). A test marked ``xfail(strict=True)`` states the correct
behaviour where the engine is wrong today; it turns into a failure as soon as the engine is fixed,
so that the mark gets removed.
"""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

from iamguard import (
    AccessRequest,
    InvalidInput,
    MalformedPolicyDocument,
    Policy,
    evaluate,
)

V12 = "2012-10-17"
V08 = "2008-10-17"
ALICE = "arn:aws:iam::123456789012:user/alice"
DROP = object()  # a field value meaning "leave the field out"

ARN_HINT = "is not an ARN (arn:partition:service:region:account:resource)"
PRINCIPAL_SHAPE = 'must be `*` or an object such as {"AWS": ...}'


def statement(**fields: Any) -> dict[str, Any]:
    """A valid identity-policy statement with ``fields`` changed (``DROP`` removes one)."""
    base: dict[str, Any] = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not DROP}


def shared(**fields: Any) -> dict[str, Any]:
    """A valid resource-policy statement (it names a principal) with ``fields`` changed."""
    return statement(**{"Principal": {"AWS": "123456789012"}, **fields})


def trusting(**fields: Any) -> dict[str, Any]:
    """A valid trust-policy statement (a principal, no resource) with ``fields`` changed."""
    return shared(**{"Action": "sts:AssumeRole", "Resource": DROP, **fields})


def doc(*statements: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A document with ``Version`` 2012-10-17 and ``statements`` as a list."""
    base: dict[str, Any] = {"Version": V12, "Statement": list(statements)}
    base.update(top)
    return {k: v for k, v in base.items() if v is not DROP}


def problems(document: Any, kind: str = "identity") -> list[tuple[str, str]]:
    """Parse ``document``, which must fail, and return its problems as (path, message) pairs."""
    with pytest.raises(MalformedPolicyDocument) as e:
        Policy.parse(document, kind)
    return [(p.path, p.message) for p in e.value.problems]


def condition(block: Any) -> dict[str, Any]:
    """A one-statement identity policy (statement as an object) with ``block`` as its Condition."""
    return {"Version": V12, "Statement": statement(Condition=block)}


# --- JSON text ---------------------------------------------------------------------------------


def test_text_that_is_not_json_names_line_and_column() -> None:
    """JSON text that does not parse is one problem at the root, with its line and column."""
    text = '{"Version": "2012-10-17",\n "Statement": [}'
    assert problems(text) == [("", "not valid JSON: Expecting value (line 2 column 16)")]


def test_empty_text_is_not_json() -> None:
    """An empty string is not JSON text."""
    assert problems("") == [("", "not valid JSON: Expecting value (line 1 column 1)")]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_constants_are_not_json(constant: str) -> None:
    """Python's NaN/Infinity extensions to JSON are refused, wherever they stand."""
    text = json.dumps(condition({"NumericLessThan": {"s3:max-keys": "__"}})).replace(
        '"__"', constant
    )
    assert problems(text) == [("", f"not valid JSON: `{constant}` is not JSON")]


def test_duplicate_top_level_key_in_text() -> None:
    """A key given twice at the top of JSON text is reported (the JSON parser keeps the last)."""
    body = json.dumps(statement())
    text = f'{{"Version": "2008-10-17", "Version": "2012-10-17", "Statement": {body}}}'
    assert problems(text) == [("", "duplicate key `Version`")]


def test_duplicate_key_in_statement_text() -> None:
    """`Effect` twice in a statement is reported: a later `Allow` must not silently win."""
    text = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Effect": "Allow",'
        ' "Action": "s3:GetObject", "Resource": "*"}]}'
    )
    assert problems(text) == [("Statement[0]", "duplicate key `Effect`")]


def test_duplicate_keys_in_condition_text() -> None:
    """Duplicate operators and duplicate condition keys are reported where they stand."""
    text = (
        '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject",'
        ' "Resource": "*", "Condition": {"StringEquals": {"aws:username": "a",'
        ' "aws:username": "b"}, "StringEquals": {"aws:username": "c"}}}}'
    )
    assert problems(text) == [
        ("Statement.Condition", "duplicate key `StringEquals`"),
    ]
    text = (
        '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject",'
        ' "Resource": "*", "Condition": {"StringEquals": {"aws:username": "a",'
        ' "aws:username": "b"}}}}'
    )
    assert problems(text) == [
        ("Statement.Condition.StringEquals", "duplicate key `aws:username`"),
    ]


def test_text_nested_too_deeply() -> None:
    """Pathologically nested JSON text is a problem, not a RecursionError."""
    assert problems("[" * 100_000) == [("", "not valid JSON: nested too deeply")]


def test_bytes_that_are_not_utf8() -> None:
    """Bytes that do not decode are reported as not JSON."""
    assert problems(b"\x80abc") == [
        (
            "",
            "not valid JSON: 'utf-8' codec can't decode byte 0x80 in position 0: "
            "invalid start byte",
        )
    ]


# --- the document ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "what"),
    [("[1]", "a list"), ("null", "null"), ('"text"', "a string"), ("5", "a number"),
     ("true", "a boolean")],
)  # fmt: skip
def test_document_must_be_an_object(text: str, what: str) -> None:
    """JSON text whose top level is not an object names the type it found."""
    assert problems(text) == [("", f"must be a JSON object, not {what}")]


@pytest.mark.parametrize("value", [42, 4.5, None, [statement()], ("a",)])
def test_parse_refuses_what_is_neither_text_nor_mapping(value: Any) -> None:
    """`Policy.parse(42)` (or None, a list, ...) raises MalformedPolicyDocument."""
    assert problems(value) == [("", "must be JSON text or a mapping")]


def test_unknown_top_level_key_with_suggestion() -> None:
    """`Statment` is unknown, the nearest key is suggested, and `Statement` is then missing."""
    assert problems({"Version": V12, "Statment": statement()}) == [
        ("", "unknown key `Statment` (did you mean `Statement`?)"),
        ("", "missing `Statement`"),
    ]


def test_unknown_top_level_key_without_suggestion() -> None:
    """An unknown key with no near match gets no suggestion."""
    assert problems(doc(statement(), Foo=1)) == [("", "unknown key `Foo`")]


@pytest.mark.parametrize(
    ("version", "shown"),
    [("2012-10-18", "2012-10-18"), ("2012-10-17 ", "2012-10-17 "), (2012, "2012"),
     (["2012-10-17"], '["2012-10-17"]'), (True, "true")],
)  # fmt: skip
def test_bad_version(version: Any, shown: str) -> None:
    """`Version` is exactly `2012-10-17` or `2008-10-17`; anything else is shown as JSON."""
    assert problems(doc(statement(), Version=version)) == [
        ("Version", f"`{shown}` is not `2012-10-17` or `2008-10-17`")
    ]


@pytest.mark.parametrize(
    ("value", "what"), [(7, "a number"), ({"a": 1}, "an object"), (True, "a boolean")]
)
def test_id_must_be_a_string(value: Any, what: str) -> None:
    """`Id` must be a string."""
    assert problems(doc(statement(), Id=value)) == [("Id", f"must be a string, not {what}")]


def test_missing_statement() -> None:
    """A document without `Statement` is reported at the root."""
    assert problems({"Version": V12}) == [("", "missing `Statement`")]


@pytest.mark.parametrize(
    ("value", "what"),
    [([], "an empty list"), ("x", "a string"), (5, "a number"), (None, "null"),
     (True, "a boolean")],
)  # fmt: skip
def test_statement_must_be_an_object_or_non_empty_list(value: Any, what: str) -> None:
    """`Statement` is an object or a non-empty list of objects."""
    assert problems({"Version": V12, "Statement": value}) == [
        ("Statement", f"must be an object or a non-empty list, not {what}")
    ]


def test_statement_entries_must_be_objects() -> None:
    """Each entry of the `Statement` list must be an object; every bad entry is reported."""
    assert problems(doc(statement(), "x", 3)) == [
        ("Statement[1]", "must be an object, not a string"),
        ("Statement[2]", "must be an object, not a number"),
    ]


# --- statement keys, Effect and Sid ------------------------------------------------------------


def test_misspelt_effect_is_unknown_and_effect_missing() -> None:
    """`Efect` fails, with the suggestion `Effect`, and the statement then lacks `Effect`."""
    assert problems(doc(statement(Effect=DROP, Efect="Allow"))) == [
        ("Statement[0]", "unknown key `Efect` (did you mean `Effect`?)"),
        ("Statement[0]", "missing `Effect`"),
    ]


def test_unknown_statement_key_with_suggestion() -> None:
    """`Resources` suggests `Resource`."""
    assert problems(doc(statement(Resource=DROP, Resources="*"))) == [
        ("Statement[0]", "unknown key `Resources` (did you mean `Resource`?)"),
        ("Statement[0]", "missing `Resource` or `NotResource`"),
    ]


def test_missing_effect() -> None:
    """A statement without `Effect` is reported at the statement."""
    assert problems(doc(statement(Effect=DROP))) == [("Statement[0]", "missing `Effect`")]


@pytest.mark.parametrize(
    ("effect", "shown"),
    [("allow", "allow"), ("DENY", "DENY"), ("Permit", "Permit"), (1, "1"),
     (["Allow"], '["Allow"]'), (True, "true")],
)  # fmt: skip
def test_invalid_effect(effect: Any, shown: str) -> None:
    """`Effect` is exactly `Allow` or `Deny`: AWS is case-sensitive, so `allow` is invalid."""
    assert problems(doc(statement(Effect=effect))) == [
        ("Statement[0].Effect", f"`{shown}` is not `Allow` or `Deny`")
    ]


def test_sid_must_be_a_string() -> None:
    """A non-string `Sid` is reported at `Sid`."""
    assert problems(doc(statement(Sid=5))) == [
        ("Statement[0].Sid", "must be a string, not a number")
    ]


@pytest.mark.parametrize("sid", ["read-orders", "with space", "ümlaut", "under_score"])
@pytest.mark.parametrize(("kind", "make"), [("identity", statement), ("trust", trusting)])
def test_sid_alphanumeric_in_identity_and_trust_policies(sid: str, kind: str, make: Any) -> None:
    """In identity and trust policies a `Sid` holds only ASCII letters and digits."""
    assert problems(doc(make(Sid=sid)), kind) == [
        ("Statement[0].Sid", f"`{sid}` may hold only the letters A-Z, a-z and 0-9")
    ]


def test_sid_any_text_in_resource_policies() -> None:
    """A resource-based policy's `Sid` may hold any characters."""
    policy = Policy.parse(doc(shared(Sid="read-orders 1/ü")), "resource")
    assert policy.statements[0].sid == "read-orders 1/ü"


def test_duplicate_sid_names_the_first() -> None:
    """A repeated `Sid` is reported where it repeats, naming where it first appeared."""
    document = doc(statement(Sid="Read"), statement(Sid="Write"), statement(Sid="Read"))
    assert problems(document) == [
        ("Statement[2].Sid", "duplicate Sid `Read` (also at Statement[0])")
    ]


# --- Action / NotAction ------------------------------------------------------------------------


def test_both_action_and_not_action() -> None:
    """A statement has `Action` or `NotAction`, not both."""
    assert problems(doc(statement(NotAction="s3:PutObject"))) == [
        ("Statement[0]", "has both `Action` and `NotAction`")
    ]


def test_neither_action_nor_not_action() -> None:
    """A statement without `Action` and `NotAction` is reported."""
    assert problems(doc(statement(Action=DROP))) == [
        ("Statement[0]", "missing `Action` or `NotAction`")
    ]


@pytest.mark.parametrize("key", ["Action", "NotAction"])
def test_action_empty_list(key: str) -> None:
    """An empty action list is refused."""
    document = doc(statement(**{"Action": DROP, key: []}))
    assert problems(document) == [(f"Statement[0].{key}", "must not be an empty list")]


@pytest.mark.parametrize(("value", "what"), [(5, "a number"), ({"s3": "GetObject"}, "an object")])
def test_action_must_be_string_or_list(value: Any, what: str) -> None:
    """`Action` is a string or a list of strings."""
    assert problems(doc(statement(Action=value))) == [
        ("Statement[0].Action", f"must be a string or a list of strings, not {what}")
    ]


@pytest.mark.parametrize("action", ["GetObject", "s3:", ":GetObject", "s3:Get Object", "*:*"])
def test_action_needs_service_prefix(action: str) -> None:
    """An action is `*` or `service:action`."""
    assert problems(doc(statement(Action=action))) == [
        ("Statement[0].Action", f"`{action}` is not `*` or `service:action`")
    ]


def test_bad_actions_in_a_list_are_each_reported_with_index() -> None:
    """In a list, each bad action is reported at its index."""
    document = doc(statement(Action=DROP, NotAction=["s3:GetObject", "GetObject", "Put"]))
    assert problems(document) == [
        ("Statement[0].NotAction[1]", "`GetObject` is not `*` or `service:action`"),
        ("Statement[0].NotAction[2]", "`Put` is not `*` or `service:action`"),
    ]


@pytest.mark.parametrize("key", ["Action", "Resource"])
def test_non_string_list_item_is_reported_at_its_index(key: str) -> None:
    """A non-string inside an Action/Resource list is named at its index, with its own type."""
    good = "s3:GetObject" if key == "Action" else "arn:aws:s3:::b"
    assert problems(doc(statement(**{key: [good, 5]}))) == [
        (f"Statement[0].{key}[1]", "must be a string, not a number")
    ]


# --- Resource / NotResource --------------------------------------------------------------------


def test_both_resource_and_not_resource() -> None:
    """A statement has `Resource` or `NotResource`, not both."""
    assert problems(doc(statement(NotResource="arn:aws:s3:::b"))) == [
        ("Statement[0]", "has both `Resource` and `NotResource`")
    ]


def test_neither_resource_nor_not_resource() -> None:
    """An identity-policy statement without `Resource` and `NotResource` is reported."""
    assert problems(doc(statement(Resource=DROP))) == [
        ("Statement[0]", "missing `Resource` or `NotResource`")
    ]


@pytest.mark.parametrize("key", ["Resource", "NotResource"])
def test_resource_not_allowed_in_trust_policy(key: str) -> None:
    """A trust policy names no resource: the role is the resource."""
    assert problems(doc(trusting(**{key: "*"})), "trust") == [
        ("Statement[0]", f"`{key}` is not allowed in a trust policy")
    ]


def test_trust_policy_without_resource_is_fine() -> None:
    """A trust-policy statement without `Resource` parses."""
    policy = Policy.parse(doc(trusting()), "trust")
    assert policy.kind == "trust"
    assert len(policy.statements) == 1


@pytest.mark.parametrize("arn", ["arn:aws:s3", "arn:aws:s3::", "arn:"])
def test_arn_with_too_few_segments(arn: str) -> None:
    """A resource starting `arn:` has at least six segments."""
    assert problems(doc(statement(Resource=arn))) == [
        ("Statement[0].Resource", f"`{arn}` {ARN_HINT}")
    ]


def test_arn_with_too_few_segments_in_a_list_names_its_index() -> None:
    """In a resource list, the short ARN is reported at its index."""
    document = doc(statement(Resource=DROP, NotResource=["arn:aws:s3:::b", "arn:aws:s3"]))
    assert problems(document) == [("Statement[0].NotResource[1]", f"`arn:aws:s3` {ARN_HINT}")]


def test_empty_resource() -> None:
    """An empty resource string is refused."""
    assert problems(doc(statement(Resource=""))) == [("Statement[0].Resource", "must not be empty")]


def test_resource_that_is_not_an_arn_is_accepted() -> None:
    """Apps may name resources without ARNs (`orders/42`); such a pattern matches only itself
    or by wildcard (AWS requires ARNs; iamguard's own resources need not be AWS's)."""
    policy = Policy.parse(doc(statement(Resource="orders/*")))
    assert policy.statements[0].label == "Statement[0]"


# --- Principal / NotPrincipal ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["Principal", "NotPrincipal"])
def test_principal_not_allowed_in_identity_policy(key: str) -> None:
    """An identity-based policy names no principal: it is attached to one."""
    assert problems(doc(statement(**{key: "*"}))) == [
        ("Statement[0]", f"`{key}` is not allowed in an identity-based policy")
    ]


@pytest.mark.parametrize(("kind", "make"), [("resource", shared), ("trust", trusting)])
def test_principal_missing_in_resource_and_trust_policies(kind: str, make: Any) -> None:
    """Resource and trust policies need `Principal` or `NotPrincipal`."""
    assert problems(doc(make(Principal=DROP)), kind) == [
        ("Statement[0]", "missing `Principal` or `NotPrincipal`")
    ]


def test_both_principal_and_not_principal() -> None:
    """A statement has `Principal` or `NotPrincipal`, not both."""
    document = doc(shared(Effect="Deny", NotPrincipal={"AWS": "123456789012"}))
    assert problems(document, "resource") == [
        ("Statement[0]", "has both `Principal` and `NotPrincipal`")
    ]


@pytest.mark.parametrize("value", ["arn:aws:iam::123456789012:root", ["*"], 5])
def test_principal_wrong_shape(value: Any) -> None:
    """`Principal` is `*` or an object of principal types."""
    assert problems(doc(shared(Principal=value)), "resource") == [
        ("Statement[0].Principal", PRINCIPAL_SHAPE)
    ]


def test_principal_empty_object() -> None:
    """An empty `Principal` object names nobody, and says so."""
    assert problems(doc(shared(Principal={})), "resource") == [
        ("Statement[0].Principal", "must name at least one principal")
    ]


@pytest.mark.parametrize(("key", "hint"), [("AWZ", " (did you mean `AWS`?)"), ("User", "")])
def test_unknown_principal_key(key: str, hint: str) -> None:
    """Principal types are `AWS`, `Service`, `Federated` and `CanonicalUser`."""
    assert problems(doc(shared(Principal={key: "*"})), "resource") == [
        ("Statement[0].Principal", f"unknown key `{key}`{hint}")
    ]


@pytest.mark.parametrize(
    "arn",
    ["arn:aws:iam::123456789012:user/*", "arn:aws:iam::12345678901?:root",
     "arn:aws:iam::*:root"],
)  # fmt: skip
def test_wildcard_in_principal_arn(arn: str) -> None:
    """Wildcards are not allowed inside a principal ARN."""
    assert problems(doc(shared(Principal={"AWS": arn})), "resource") == [
        ("Statement[0].Principal.AWS", f"`{arn}`: wildcards are not allowed in a principal ARN")
    ]


@pytest.mark.parametrize(
    "name", ["bob", "12345", "arn:aws:iam::123456789012:group/devs", "arn:aws:s3:::bucket"]
)
def test_principal_neither_star_account_nor_arn(name: str) -> None:
    """An `AWS` principal is `*`, a 12-digit account id or an IAM/STS principal ARN."""
    document = doc(shared(Principal={"AWS": ["123456789012", name]}))
    assert problems(document, "resource") == [
        ("Statement[0].Principal.AWS[1]", f"`{name}` is not `*`, an account id or a principal ARN")
    ]


def test_principal_type_value_must_be_string_or_list() -> None:
    """The value of a principal type is a string or a list of strings."""
    assert problems(doc(shared(Principal={"Service": 5})), "resource") == [
        ("Statement[0].Principal.Service", "must be a string or a list of strings, not a number")
    ]


@pytest.mark.parametrize(
    "principal",
    ["*", {"AWS": "*"}, {"AWS": "123456789012"}, {"AWS": "arn:aws:iam::123456789012:root"},
     {"AWS": ["arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:role/R"]},
     {"AWS": "arn:aws:sts::123456789012:assumed-role/R/session"},
     {"Service": "ec2.amazonaws.com"}, {"Federated": "cognito-identity.amazonaws.com"}],
)  # fmt: skip
def test_valid_principals(principal: Any) -> None:
    """Every documented principal form parses in a resource policy."""
    assert len(Policy.parse(doc(shared(Principal=principal)), "resource").statements) == 1


def test_not_principal_not_allowed_in_trust_policy() -> None:
    """A trust policy cannot use `NotPrincipal` (AWS: not in an IAM role trust policy)."""
    document = doc(trusting(Effect="Deny", Principal=DROP, NotPrincipal={"AWS": "123456789012"}))
    assert problems(document, "trust") == [
        ("Statement[0]", "`NotPrincipal` is not allowed in a trust policy")
    ]


def test_not_principal_only_with_deny() -> None:
    """`NotPrincipal` with `Allow` (a grant to everyone but ...) is refused, as AWS does."""
    document = doc(shared(Principal=DROP, NotPrincipal={"AWS": "123456789012"}))
    assert problems(document, "resource") == [
        ("Statement[0]", '`NotPrincipal` may be used only with `"Effect": "Deny"`')
    ]


def test_not_principal_with_deny_in_resource_policy_is_fine() -> None:
    """`NotPrincipal` with `Deny` parses in a resource-based policy."""
    document = doc(shared(Effect="Deny", Principal=DROP, NotPrincipal={"AWS": "123456789012"}))
    assert Policy.parse(document, "resource").statements[0].principals.negated


# --- Condition ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("block", "what"), [("x", "a string"), (["a"], "a list"), (5, "a number")])
def test_condition_must_be_an_object(block: Any, what: str) -> None:
    """`Condition` is an object of operators."""
    assert problems(condition(block)) == [("Statement.Condition", f"must be an object, not {what}")]


@pytest.mark.parametrize(
    ("operator", "hint"),
    [("StringEqual", " (did you mean `StringEquals`?)"),
     ("stringequals", " (did you mean `StringEquals`?)"),
     ("NumericLessThen", " (did you mean `NumericLessThan`?)"),
     ("ForAnyValues:StringLike", " (did you mean `ForAnyValue:StringLike`?)"),
     ("Frobnicate", "")],
)  # fmt: skip
def test_unknown_operator_with_suggestion(operator: str, hint: str) -> None:
    """Operator names are case-sensitive; an unknown one suggests the nearest real one."""
    assert problems(condition({operator: {"aws:username": "alice"}})) == [
        ("Statement.Condition", f"unknown operator `{operator}`{hint}")
    ]


@pytest.mark.parametrize("operator", ["NullIfExists", "ForAllValues:Null", "ForAnyValue:Null"])
def test_null_takes_no_if_exists_and_no_qualifier(operator: str) -> None:
    """`Null` has no `...IfExists` form and no set qualifier."""
    assert problems(condition({operator: {"aws:username": "true"}})) == [
        ("Statement.Condition", f"unknown operator `{operator}` (did you mean `Null`?)")
    ]


def test_bad_qualifier() -> None:
    """The qualifiers are `ForAllValues` and `ForAnyValue` only."""
    assert problems(condition({"ForEachValue:StringEquals": {"aws:TagKeys": "a"}})) == [
        (
            "Statement.Condition",
            "unknown operator `ForEachValue:StringEquals` "
            "(did you mean `ForAnyValue:StringEquals`?)",
        )
    ]


@pytest.mark.parametrize(("block", "what"), [("alice", "a string"), (["a"], "a list")])
def test_operator_block_must_be_an_object(block: Any, what: str) -> None:
    """An operator maps condition keys to values."""
    assert problems(condition({"StringEquals": block})) == [
        ("Statement.Condition.StringEquals", f"must be an object of condition keys, not {what}")
    ]


@pytest.mark.parametrize("key", ["username", ":username", "aws:", "aws: username"])
def test_condition_key_needs_vendor_prefix(key: str) -> None:
    """A condition key is `service:key`."""
    assert problems(condition({"StringEquals": {key: "alice"}})) == [
        (f"Statement.Condition.StringEquals.{key}", f"condition key `{key}` is not `service:key`")
    ]


@pytest.mark.parametrize(
    ("value", "where", "what"),
    [(None, "", "null"), ({"a": 1}, "", "an object"), ([["alice"]], "[0]", "a list"),
     (["alice", None], "[1]", "null")],
)  # fmt: skip
def test_condition_value_of_wrong_type(value: Any, where: str, what: str) -> None:
    """Condition values are strings, numbers or booleans (or a list of them)."""
    assert problems(condition({"StringEquals": {"aws:username": value}})) == [
        (
            f"Statement.Condition.StringEquals.aws:username{where}",
            f"must be a string, number or boolean, not {what}",
        )
    ]


@pytest.mark.parametrize(
    ("operator", "key", "value", "complaint"),
    [("NumericLessThan", "s3:max-keys", "abc", "`abc` is not a number"),
     ("NumericEquals", "s3:max-keys", "Infinity", "`Infinity` is not a number"),
     ("DateGreaterThan", "aws:CurrentTime", "yesterday",
      "`yesterday` is not an ISO 8601 date or epoch seconds"),
     ("IpAddress", "aws:SourceIp", "300.1.1.1/8",
      "`300.1.1.1/8` is not an IP address or CIDR block"),
     ("NotIpAddressIfExists", "aws:SourceIp", "10.0.0.0/33",
      "`10.0.0.0/33` is not an IP address or CIDR block"),
     ("Bool", "aws:SecureTransport", "yes", "`yes` is not `true` or `false`"),
     ("BinaryEquals", "aws:x", "not base64!", "`not base64!` is not base64"),
     ("Null", "aws:TokenIssueTime", "maybe", "`maybe` is not `true` or `false`")],
)  # fmt: skip
def test_invalid_value_per_operator_family(
    operator: str, key: str, value: str, complaint: str
) -> None:
    """Each operator family reads its values when the policy is parsed and names a bad one."""
    assert problems(condition({operator: {key: value}})) == [
        (f"Statement.Condition.{operator}.{key}", complaint)
    ]


def test_invalid_value_in_a_list_names_its_index() -> None:
    """A bad value inside a list of condition values is reported at its index."""
    assert problems(condition({"NumericLessThan": {"s3:max-keys": ["10", "abc"]}})) == [
        (
            "Statement.Condition.NumericLessThan.s3:max-keys[1]",
            "`abc` is not a number",
        )
    ]


def test_every_bad_value_of_a_condition_key_is_reported() -> None:
    """Every bad value in a list of condition values is reported, not just the first."""
    assert problems(condition({"StringEquals": {"aws:username": ["a", None, {}]}})) == [
        ("Statement.Condition.StringEquals.aws:username[1]",
         "must be a string, number or boolean, not null"),
        ("Statement.Condition.StringEquals.aws:username[2]",
         "must be a string, number or boolean, not an object"),
    ]  # fmt: skip


def test_every_bad_operator_and_key_in_a_condition_is_reported() -> None:
    """Problems in several operators and keys of one Condition are all listed, in order."""
    block = {
        "StringEqual": {"aws:username": "a"},
        "NumericLessThan": {"s3:max-keys": "many", "prefix": "1"},
        "Bool": "true",
    }
    numeric = "Statement.Condition.NumericLessThan"
    assert problems(condition(block)) == [
        ("Statement.Condition", "unknown operator `StringEqual` (did you mean `StringEquals`?)"),
        (f"{numeric}.s3:max-keys", "`many` is not a number"),
        (f"{numeric}.prefix", "condition key `prefix` is not `service:key`"),
        ("Statement.Condition.Bool", "must be an object of condition keys, not a string"),
    ]


# --- several problems at once ------------------------------------------------------------------


def test_every_problem_is_listed_in_document_order() -> None:
    """A document with many problems lists every one of them, in the order of the document."""
    document = {
        "Version": "2012-10-18",
        "Id": 7,
        "Statement": [
            {
                "Sid": "First",
                "Effect": "allow",
                "Action": "GetObject",
                "Resource": "arn:aws:s3",
                "Condition": {"StringEqual": {"aws:username": "a"}},
            },
            "oops",
            {"Sid": "First", "Effect": "Deny", "Action": [], "NotResource": "*", "Principal": "*"},
        ],
    }
    assert problems(document) == [
        ("Version", "`2012-10-18` is not `2012-10-17` or `2008-10-17`"),
        ("Id", "must be a string, not a number"),
        ("Statement[0].Effect", "`allow` is not `Allow` or `Deny`"),
        ("Statement[0].Action", "`GetObject` is not `*` or `service:action`"),
        ("Statement[0].Resource", f"`arn:aws:s3` {ARN_HINT}"),
        ("Statement[0].Condition", "unknown operator `StringEqual` (did you mean `StringEquals`?)"),
        ("Statement[1]", "must be an object, not a string"),
        ("Statement[2].Sid", "duplicate Sid `First` (also at Statement[0])"),
        ("Statement[2].Action", "must not be an empty list"),
        ("Statement[2]", "`Principal` is not allowed in an identity-based policy"),
    ]


# --- null, and values that are not JSON ------------------------------------------------------

NOT_STRINGS_NULL = "must be a string or a list of strings, not null"


@pytest.mark.parametrize(
    ("top", "fields", "kind", "expected"),
    [
        pytest.param(
            {}, {"Action": DROP, "NotAction": None}, "identity",
            ("Statement[0].NotAction", NOT_STRINGS_NULL), id="NotAction",
        ),
        pytest.param(
            {}, {"Resource": None}, "identity",
            ("Statement[0].Resource", NOT_STRINGS_NULL), id="Resource",
        ),
        pytest.param(
            {}, {"Resource": DROP, "NotResource": None}, "identity",
            ("Statement[0].NotResource", NOT_STRINGS_NULL), id="NotResource",
        ),
        pytest.param(
            {}, {"Action": None}, "identity",
            ("Statement[0].Action", NOT_STRINGS_NULL), id="Action",
        ),
        pytest.param(
            {}, {"Principal": None}, "resource",
            ("Statement[0].Principal", PRINCIPAL_SHAPE), id="Principal",
        ),
        pytest.param(
            {}, {"Effect": None}, "identity",
            ("Statement[0].Effect", "`null` is not `Allow` or `Deny`"), id="Effect",
        ),
        pytest.param(
            {}, {"Sid": None}, "identity",
            ("Statement[0].Sid", "must be a string, not null"), id="Sid",
        ),
        pytest.param(
            {}, {"Condition": None}, "identity",
            ("Statement[0].Condition", "must be an object, not null"), id="Condition",
        ),
        pytest.param(
            {"Version": None}, {}, "identity",
            ("Version", "`null` is not `2012-10-17` or `2008-10-17`"), id="Version",
        ),
        pytest.param(
            {"Id": None}, {}, "identity", ("Id", "must be a string, not null"), id="Id",
        ),
    ],
)  # fmt: skip
def test_null_elements_are_refused(
    top: dict[str, Any], fields: dict[str, Any], kind: str, expected: tuple[str, str]
) -> None:
    """`null` is not a value of any policy element: it is refused where it stands, never read
    as an absent element."""
    make = shared if kind == "resource" else statement
    assert problems(doc(make(**fields), **top), kind) == [expected]


@pytest.mark.parametrize(
    ("fields", "action", "resource"),
    [({"Action": DROP, "NotAction": None}, "iam:DeleteUser", "*"),
     ({"Resource": None}, "s3:GetObject", "arn:aws:s3:::secret/key")],
    ids=["NotAction-null", "Resource-null"],
)  # fmt: skip
def test_null_never_widens_a_grant(fields: dict[str, Any], action: str, resource: str) -> None:
    """A `null` element is refused or matches nothing: it never allows what was not named."""
    try:
        policy = Policy.parse(doc(statement(**fields)))
    except MalformedPolicyDocument:
        return
    assert not evaluate(AccessRequest(ALICE, action, resource), [policy]).allowed


@pytest.mark.parametrize(
    ("document", "path"),
    [({**doc(statement()), 1: "x"}, ""), (doc({**statement(), None: "x"}), "Statement[0]"),
     (condition({1: {"aws:username": "a"}}), "Statement.Condition"),
     (condition({"StringEquals": {1: "a"}}), "Statement.Condition.StringEquals")],
    ids=["top", "statement", "operator", "condition-key"],
)  # fmt: skip
def test_non_string_keys_are_problems(document: dict[Any, Any], path: str) -> None:
    """A mapping with a non-string key is a malformed document (at the mapping), not a
    TypeError."""
    assert [where for where, _ in problems(document)] == [path]


@pytest.mark.parametrize(("key", "shown"), [(1, "1"), (None, "null"), (1.5, "1.5")])
def test_non_string_key_is_quoted(key: Any, shown: str) -> None:
    """The message quotes the offending key in backticks, like all user input."""
    assert problems({**doc(statement()), key: "x"}) == [("", f"key `{shown}` is not a string")]


def test_any_mapping_is_accepted() -> None:
    """`Policy.parse` takes any Mapping (as its signature says), not only a dict."""
    document = doc(statement())
    assert Policy.parse(types.MappingProxyType(document)) == Policy.parse(document)


def test_huge_integer_condition_value_is_a_problem() -> None:
    """An integer too long to print is a problem at its path, not a ValueError."""
    document = condition({"NumericLessThan": {"s3:max-keys": 10**5000}})
    assert problems(document) == [
        (
            "Statement.Condition.NumericLessThan.s3:max-keys",
            "must be a string, number or boolean, not a number that long",
        )
    ]


@pytest.mark.parametrize(
    ("value", "shown"), [(float("nan"), "nan"), (float("inf"), "inf")], ids=["nan", "inf"]
)
def test_nan_and_infinity_in_a_mapping_are_refused(value: float, shown: str) -> None:
    """A float that JSON cannot hold is refused in a mapping just as in JSON text."""
    assert problems(condition({"StringEquals": {"aws:username": value}})) == [
        (
            "Statement.Condition.StringEquals.aws:username",
            f"must be a string, number or boolean, not `{shown}`",
        )
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [(doc(statement(Action=("s3:GetObject",))),
      ("Statement[0].Action", "must be a string or a list of strings, not a tuple")),
     ({"Version": V12, "Statement": (statement(),)},
      ("Statement", "must be an object or a non-empty list, not a tuple"))],
    ids=["tuple-action", "tuple-statement"],
)  # fmt: skip
def test_non_json_values_are_named_by_type(
    document: dict[str, Any], expected: tuple[str, str]
) -> None:
    """A Python value with no JSON type is named by its Python type."""
    assert problems(document) == [expected]


@pytest.mark.parametrize(
    ("document", "path"),
    [(doc(statement(Effect=float("nan"))), "Statement[0].Effect"),
     (doc(statement(Effect=b"Allow")), "Statement[0].Effect"),
     (doc(statement(), Version=10**5000), "Version")],
    ids=["Effect-nan", "Effect-bytes", "Version-huge-int"],
)  # fmt: skip
def test_unshowable_value_is_not_quoted_as_text(document: dict[str, Any], path: str) -> None:
    """Backticks hold only what the user wrote: a value with no JSON text is named by its type,
    outside backticks."""
    found = problems(document)
    assert [where for where, _ in found] == [path]
    assert not any("`a " in message or "`an " in message for _, message in found)


@pytest.mark.parametrize(
    ("document", "path", "key", "meant", "kind"),
    [(doc(shared(Principal={"aws": "*"})), "Statement[0].Principal", "aws", "AWS", "resource"),
     (doc({**statement(), "SID": "A"}), "Statement[0]", "SID", "Sid", "identity"),
     ({"VERSION": V12, "Statement": statement()}, "", "VERSION", "Version", "identity")],
    ids=["aws", "SID", "VERSION"],
)  # fmt: skip
def test_case_only_typo_gets_a_suggestion(
    document: dict[str, Any], path: str, key: str, meant: str, kind: str
) -> None:
    """A key that is a real one in the wrong case suggests the real one."""
    assert problems(document, kind) == [(path, f"unknown key `{key}` (did you mean `{meant}`?)")]


# --- Policy.parse: arguments, name, kind -------------------------------------------------------


def test_unknown_kind_is_invalid_input() -> None:
    """`kind` is `identity`, `resource` or `trust`; anything else is InvalidInput."""
    with pytest.raises(InvalidInput) as e:
        Policy.parse(doc(statement()), kind="nope")
    assert e.value.message == "policy kind `nope` is not one of identity, resource, trust"
    assert e.value.code == "InvalidInput"


def test_name_prefixes_the_message() -> None:
    """`name=` starts the message with policy `NAME`, once; paths stay bare."""
    with pytest.raises(MalformedPolicyDocument) as e:
        Policy.parse(doc(statement(Effect="allow"), Id=7), name="ReadOrders")
    assert str(e.value) == (
        "policy `ReadOrders`: Id: must be a string, not a number; "
        "Statement[0].Effect: `allow` is not `Allow` or `Deny`"
    )
    assert e.value.name == "ReadOrders"
    assert [p.path for p in e.value.problems] == ["Id", "Statement[0].Effect"]
    assert e.value.code == "MalformedPolicyDocument"


def test_name_prefixes_a_root_problem() -> None:
    """A problem at the root is prefixed too."""
    with pytest.raises(MalformedPolicyDocument) as e:
        Policy.parse(42, name="ReadOrders")  # type: ignore[arg-type]
    assert str(e.value) == "policy `ReadOrders`: must be JSON text or a mapping"


def test_name_prefixes_a_json_syntax_problem() -> None:
    """JSON text that does not parse is reported under the policy's name too."""
    with pytest.raises(MalformedPolicyDocument) as e:
        Policy.parse("{nope", name="ReadOrders")
    assert str(e.value) == (
        "policy `ReadOrders`: not valid JSON: "
        "Expecting property name enclosed in double quotes (line 1 column 2)"
    )


# --- what parses -------------------------------------------------------------------------------


def test_statement_as_a_single_object() -> None:
    """`Statement` may be one object rather than a list."""
    policy = Policy.parse({"Version": V12, "Statement": statement(Sid="Only")})
    assert [s.sid for s in policy.statements] == ["Only"]
    assert policy.version == V12


def test_action_and_resource_as_single_strings() -> None:
    """`Action` and `Resource` may be single strings, and then match like one-item lists."""
    single = Policy.parse(doc(statement(Action="s3:GetObject", Resource="arn:aws:s3:::b/*")))
    listed = Policy.parse(doc(statement(Action=["s3:GetObject"], Resource=["arn:aws:s3:::b/*"])))
    for resource, allowed in [("arn:aws:s3:::b/k", True), ("arn:aws:s3:::c/k", False)]:
        request = AccessRequest(ALICE, "s3:GetObject", resource)
        assert evaluate(request, [single]).allowed is allowed
        assert evaluate(request, [listed]).allowed is allowed


@pytest.mark.parametrize("version", [V08, DROP], ids=["2008-10-17", "no-version"])
def test_old_or_missing_version_keeps_variables_literal(version: Any) -> None:
    """Without `Version` 2012-10-17, `${aws:username}` is plain text in a resource pattern."""
    policy = Policy.parse(
        doc(statement(Resource="arn:aws:s3:::b/${aws:username}"), Version=version)
    )
    context = {"aws:username": "alice"}
    literal = AccessRequest(ALICE, "s3:GetObject", "arn:aws:s3:::b/${aws:username}", context)
    named = AccessRequest(ALICE, "s3:GetObject", "arn:aws:s3:::b/alice", context)
    assert evaluate(literal, [policy]).allowed
    assert not evaluate(named, [policy]).allowed


def test_version_2012_substitutes_variables() -> None:
    """With `Version` 2012-10-17, `${aws:username}` is the caller's user name."""
    policy = Policy.parse(doc(statement(Resource="arn:aws:s3:::b/${aws:username}")))
    context = {"aws:username": "alice"}
    literal = AccessRequest(ALICE, "s3:GetObject", "arn:aws:s3:::b/${aws:username}", context)
    named = AccessRequest(ALICE, "s3:GetObject", "arn:aws:s3:::b/alice", context)
    assert evaluate(named, [policy]).allowed
    assert not evaluate(literal, [policy]).allowed


def test_numbers_and_booleans_as_condition_values() -> None:
    """JSON numbers and booleans are condition values, read as AWS writes them."""
    policy = Policy.parse(
        condition(
            {
                "NumericLessThan": {"aws:MultiFactorAuthAge": 3600},
                "NumericGreaterThanEquals": {"s3:max-keys": [1.5, 2]},
                "Bool": {"aws:MultiFactorAuthPresent": True},
            }
        )
    )
    ok = {"aws:MultiFactorAuthAge": 60, "s3:max-keys": "2", "aws:MultiFactorAuthPresent": True}
    request = AccessRequest(ALICE, "s3:GetObject", "arn:aws:s3:::b/k", ok)
    assert evaluate(request, [policy]).allowed
    stale = {**ok, "aws:MultiFactorAuthAge": 7200}
    assert not evaluate(AccessRequest(ALICE, "s3:GetObject", "x", stale), [policy]).allowed


def test_bytes_input_is_accepted() -> None:
    """UTF-8 bytes parse like the text they encode."""
    document = doc(statement(Sid="Bytes"))
    assert Policy.parse(json.dumps(document).encode()) == Policy.parse(document)


def test_policy_is_immutable() -> None:
    """Setting or deleting an attribute of a Policy raises AttributeError."""
    policy = Policy.parse(doc(statement()))
    with pytest.raises(AttributeError):
        policy.version = V08  # type: ignore[misc]
    with pytest.raises(AttributeError):
        policy.statements = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del policy.kind
    assert policy.version == V12


def test_policy_cannot_be_constructed_directly() -> None:
    """`Policy()` is refused: the only way in is `Policy.parse`."""
    with pytest.raises(TypeError):
        Policy()


def test_document_is_a_copy() -> None:
    """Mutating `policy.document` changes neither the policy nor the next copy."""
    original = doc(statement(Action="s3:GetObject"))
    policy = Policy.parse(original)
    copy = policy.document
    assert copy == original
    copy["Statement"][0]["Action"] = "*"
    copy["Version"] = V08
    assert policy.document == original
    assert not evaluate(AccessRequest(ALICE, "s3:DeleteObject", "x"), [policy]).allowed


def test_mutating_the_input_does_not_change_the_policy() -> None:
    """The policy does not hold on to the caller's mapping."""
    original = doc(statement(Action=["s3:GetObject"]))
    policy = Policy.parse(original)
    original["Statement"][0]["Action"].append("s3:DeleteObject")
    assert policy.document["Statement"][0]["Action"] == ["s3:GetObject"]
    assert not evaluate(AccessRequest(ALICE, "s3:DeleteObject", "x"), [policy]).allowed


def test_text_and_mapping_give_equal_policies() -> None:
    """JSON text and the equivalent mapping parse to equal (and equally hashed) policies."""
    document = doc(
        statement(Sid="A", Condition={"StringLike": {"s3:prefix": ["home/${aws:username}/*"]}}),
        statement(Effect="Deny", Action="s3:Delete*", Resource="arn:aws:s3:::b/*"),
        Id="Example",
    )
    from_text = Policy.parse(json.dumps(document, indent=2))
    from_mapping = Policy.parse(document)
    assert from_text == from_mapping
    assert hash(from_text) == hash(from_mapping)
    assert from_text.id == "Example"


def test_name_takes_part_in_equality() -> None:
    """The same document under another name is another policy."""
    document = doc(statement())
    assert Policy.parse(document, name="A") != Policy.parse(document, name="B")
    assert Policy.parse(document, name="A") == Policy.parse(document, name="A")
