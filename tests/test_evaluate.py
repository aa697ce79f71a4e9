"""AWS's evaluation logic, the Decision it returns, and failing closed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from iamguard import (
    AccessRequest,
    Decision,
    Effect,
    Policy,
    PolicySet,
    Reason,
    StatementRef,
    evaluate,
)

ACCOUNT = "123456789012"
RAM = f"arn:iamguard:iam::{ACCOUNT}:user/ram"
ROLE = f"arn:iamguard:iam::{ACCOUNT}:role/ImageReader"
SESSION = f"arn:iamguard:sts::{ACCOUNT}:assumed-role/ImageReader/batch"
IMAGE = f"arn:iamguard:images::{ACCOUNT}:image/42"


def policy(*statements: dict[str, Any], kind: str = "identity", name: str | None = None) -> Policy:
    return Policy.parse({"Version": "2012-10-17", "Statement": list(statements)}, kind, name=name)


def allow(action: str = "images:GetImage", resource: str = IMAGE, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str = "images:GetImage", resource: str = IMAGE, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def request(principal: str = RAM, action: str = "images:GetImage", **context: Any) -> AccessRequest:
    return AccessRequest(principal, action, IMAGE, context)


def test_default_is_implicit_deny() -> None:
    """With no policy at all, nothing is allowed."""
    decision = evaluate(request())
    assert decision.effect is Effect.IMPLICIT_DENY
    assert decision.allowed is False
    assert decision.reason is Reason.NO_IDENTITY_ALLOW


def test_identity_allow() -> None:
    """An identity-based allow that matches action and resource allows."""
    decision = evaluate(request(), identity=[policy(allow())])
    assert decision.effect == "Allow"
    assert decision.allowed is True


def test_explicit_deny_beats_allow_everywhere() -> None:
    """A deny in any one policy wins over allows in all the others."""
    everything = policy(allow("*", "*"))
    denied = policy(deny())
    for kwargs in (
        {"identity": [everything, denied]},
        {"identity": [everything], "boundaries": [everything, denied]},
        {"identity": [everything], "session": [denied]},
        {
            "identity": [everything],
            "resource": policy({**deny(), "Principal": "*"}, kind="resource"),
        },
    ):
        assert evaluate(request(), **kwargs).effect is Effect.EXPLICIT_DENY, kwargs


def test_boundary_limits_identity() -> None:
    """An identity allow outside the permissions boundary is an implicit deny."""
    decision = evaluate(
        request(), identity=[policy(allow())], boundaries=[policy(allow("images:List*"))]
    )
    assert decision.effect is Effect.IMPLICIT_DENY
    assert decision.reason is Reason.NO_BOUNDARY_ALLOW


def test_boundary_alone_grants_nothing() -> None:
    """A boundary that allows does not grant by itself."""
    decision = evaluate(request(), boundaries=[policy(allow())])
    assert decision.effect is Effect.IMPLICIT_DENY
    assert decision.reason is Reason.NO_IDENTITY_ALLOW


def test_session_policy_limits_role_session() -> None:
    """A role session gets only what both the role's policies and the session policy allow."""
    role_policies = [policy(allow("images:*", "*"))]
    narrow = [policy(allow("images:ListImages", "*"))]
    decision = evaluate(request(SESSION), identity=role_policies, session=narrow)
    assert decision.effect is Effect.IMPLICIT_DENY
    assert decision.reason is Reason.NO_SESSION_ALLOW
    listing = evaluate(
        request(SESSION, "images:ListImages"), identity=role_policies, session=narrow
    )
    assert listing.allowed


@pytest.mark.parametrize(
    ("principal_in_policy", "caller", "with_boundary", "expected"),
    [
        (RAM, RAM, False, Effect.ALLOW),
        (RAM, RAM, True, Effect.ALLOW),  # naming the user: a boundary's implicit deny can't limit
        (SESSION, SESSION, True, Effect.ALLOW),  # naming the session: likewise
        (ROLE, SESSION, False, Effect.ALLOW),
        (ROLE, SESSION, True, Effect.IMPLICIT_DENY),  # naming the role: the boundary limits it
        ("*", RAM, False, Effect.ALLOW),
        ("*", RAM, True, Effect.IMPLICIT_DENY),
        (ACCOUNT, RAM, False, Effect.IMPLICIT_DENY),  # the account only delegates
        (f"arn:iamguard:iam::{ACCOUNT}:root", RAM, False, Effect.IMPLICIT_DENY),
        (f"arn:iamguard:iam::{ACCOUNT}:user/shyam", RAM, False, Effect.IMPLICIT_DENY),
    ],
)
def test_resource_policy_grants(
    principal_in_policy: str, caller: str, with_boundary: bool, expected: Effect
) -> None:
    """A same-account resource policy grants per whom it names, as AWS documents."""
    resource_policy = policy(
        {**allow(), "Principal": {"AWS": principal_in_policy}}, kind="resource"
    )
    boundaries = [policy(allow("images:ListImages"))] if with_boundary else []
    decision = evaluate(request(caller), boundaries=boundaries, resource=resource_policy)
    assert decision.effect is expected


def test_resource_policy_naming_account_delegates_to_identity() -> None:
    """An account grant plus an identity allow allows; the identity allow is what counts."""
    resource_policy = policy({**allow(), "Principal": {"AWS": ACCOUNT}}, kind="resource")
    decision = evaluate(request(), identity=[policy(allow())], resource=resource_policy)
    assert decision.allowed
    assert [ref.kind for ref in decision.statements] == ["identity"]


def test_not_principal_deny_exempts_only_the_whole_chain() -> None:
    """NotPrincipal exempts a role session only when its session, role and account are listed."""
    everyone_else = [SESSION, ROLE, ACCOUNT]
    for listed, expected in (
        (everyone_else, Effect.ALLOW),
        (everyone_else[1:], Effect.EXPLICIT_DENY),
    ):
        resource_policy = policy({**deny(), "NotPrincipal": {"AWS": listed}}, kind="resource")
        decision = evaluate(request(SESSION), identity=[policy(allow())], resource=resource_policy)
        assert decision.effect is expected, listed


def test_decision_names_the_deciding_statements() -> None:
    """A decision names each statement that decided it: kind, policy, Sid or index, effect."""
    decision = evaluate(
        request(),
        identity=[
            policy(allow(Sid="ReadImages"), name="developers"),
            policy(allow("*", "*"), deny(), deny("images:*", "*", Sid="NoImages")),
        ],
    )
    assert decision.effect is Effect.EXPLICIT_DENY
    assert decision.statements == (
        StatementRef("identity", "identity[1]", "Statement[1]", "Deny"),
        StatementRef("identity", "identity[1]", "NoImages", "Deny"),
    )
    allowed = evaluate(request(), identity=[policy(allow(Sid="ReadImages"), name="developers")])
    assert allowed.statements == (StatementRef("identity", "developers", "ReadImages", "Allow"),)


@pytest.mark.parametrize(
    ("kwargs", "ending"),
    [
        ({}, "because no identity-based policy allows the images:GetImage action"),
        ({"identity": [policy(deny())]}, "with an explicit deny in an identity-based policy"),
        (
            {"identity": [policy(allow())], "boundaries": [policy(deny())]},
            "with an explicit deny in a permissions boundary",
        ),
        (
            {"identity": [policy(allow())], "boundaries": [policy(allow("x:Y"))]},
            "because no permissions boundary allows the images:GetImage action",
        ),
        (
            {"identity": [policy(allow())], "session": [policy(allow("x:Y"))]},
            "because no session policy allows the images:GetImage action",
        ),
        (
            {"identity": [policy(allow())], "session": [policy(deny())]},
            "with an explicit deny in a session policy",
        ),
        (
            {"resource": policy({**deny(), "Principal": "*"}, kind="resource")},
            "with an explicit deny in a resource-based policy",
        ),
    ],
)
def test_denial_message_reads_like_aws(kwargs: dict[str, Any], ending: str) -> None:
    """The denial message is AWS's sentence, naming the kind of policy, never its text."""
    decision = evaluate(request(), **kwargs)
    assert decision.message() == (
        f"User: {RAM} is not authorized to perform: images:GetImage on resource: {IMAGE} {ending}"
    )


def test_explain_lists_decision_and_statements() -> None:
    """explain() gives the effect, AWS's message and one line per deciding statement."""
    decision = evaluate(request(), identity=[policy(deny(Sid="NoGet"), name="guard")])
    assert decision.explain().splitlines() == [
        f"ExplicitDeny: {decision.message()}",
        "  decided by: identity policy `guard` statement `NoGet` (Deny)",
    ]


def test_decision_has_no_truth_value() -> None:
    """`if decision:` raises instead of silently reading as allowed."""
    decision = evaluate(request())
    with pytest.raises(TypeError, match=r"decision\.allowed"):
        bool(decision)
    assert isinstance(decision, Decision)


class ExplodingContext(Mapping[str, Any]):
    """A request context whose every read fails, as a broken provider's would."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("context provider failed")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("context provider failed")

    def __len__(self) -> int:
        return 1


def test_error_during_evaluation_denies_and_is_recorded() -> None:
    """An exception inside evaluation denies (fail closed) and is recorded on the decision."""
    conditional = policy(allow(Condition={"Bool": {"aws:SecureTransport": "true"}}))
    decision = evaluate(
        AccessRequest(RAM, "images:GetImage", IMAGE, ExplodingContext()), identity=[conditional]
    )
    assert decision.allowed is False
    assert decision.reason is Reason.ERROR
    assert decision.errors == ("RuntimeError('context provider failed')",)
    assert decision.message().endswith("because the request could not be evaluated")


def test_bad_argument_types_deny_rather_than_raise() -> None:
    """Garbage in the policy lists is an error on the decision, never an exception."""
    decision = evaluate(request(), identity=["not a policy"])  # type: ignore[list-item]
    assert decision.allowed is False
    assert decision.errors


def test_context_is_used_exactly_as_given() -> None:
    """Nothing is derived from the principal: `${aws:username}` needs the key in the context."""
    home = policy(
        allow("images:GetImage", f"arn:iamguard:images::{ACCOUNT}:image/${{aws:username}}")
    )
    req = AccessRequest(RAM, "images:GetImage", f"arn:iamguard:images::{ACCOUNT}:image/ram")
    assert evaluate(req, identity=[home]).allowed is False
    req = AccessRequest(
        RAM, "images:GetImage", f"arn:iamguard:images::{ACCOUNT}:image/ram", {"aws:username": "ram"}
    )
    assert evaluate(req, identity=[home]).allowed is True


def test_literal_specials_in_resource() -> None:
    """`${*}` in a resource is a literal asterisk, not a wildcard."""
    starred = policy(allow("images:GetImage", f"arn:iamguard:images::{ACCOUNT}:image/${{*}}"))
    literal = AccessRequest(RAM, "images:GetImage", f"arn:iamguard:images::{ACCOUNT}:image/*")
    other = AccessRequest(RAM, "images:GetImage", f"arn:iamguard:images::{ACCOUNT}:image/42")
    assert evaluate(literal, identity=[starred]).allowed is True
    assert evaluate(other, identity=[starred]).allowed is False


def test_context_values_of_python_types() -> None:
    """Booleans and numbers in the context are read as AWS writes them."""
    mfa = policy(
        allow(
            Condition={
                "Bool": {"aws:MultiFactorAuthPresent": "true"},
                "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"},
            }
        )
    )
    ok = request(**{"aws:MultiFactorAuthPresent": True, "aws:MultiFactorAuthAge": 60})
    stale = request(**{"aws:MultiFactorAuthPresent": True, "aws:MultiFactorAuthAge": 7200})
    assert evaluate(ok, identity=[mfa]).allowed is True
    assert evaluate(stale, identity=[mfa]).allowed is False


def test_many_statements_about_other_actions_are_not_consulted() -> None:
    """Statements are indexed by action: only those covering the action are candidates."""
    statements = [allow(f"svc:Action{i}", "*") for i in range(1000)]
    statements.append(allow("images:Get*", "*"))
    big = policy(*statements)
    assert [s.index for s in big.statements_for("images:getimage")] == [1000]
    assert [s.index for s in big.statements_for("svc:action7")] == [7]


def test_policy_set_decides_like_a_list() -> None:
    """A PolicySet gives the same decision and names the same statements as a plain list."""
    policies = [
        policy(allow("images:*", "*", Sid="All"), name="broad"),
        policy(deny("images:DeleteImage", "*", Sid="NoDelete"), allow(Sid="Get"), name="narrow"),
    ]
    grouped = PolicySet(policies)
    for action in ("images:GetImage", "images:DeleteImage", "orders:GetOrder"):
        as_list = evaluate(request(action=action), identity=policies)
        as_set = evaluate(request(action=action), identity=grouped)
        assert (as_set.effect, as_set.statements) == (as_list.effect, as_list.statements)
    assert evaluate(request(action="images:DeleteImage"), identity=grouped).statements == (
        StatementRef("identity", "narrow", "NoDelete", "Deny"),
    )


def test_policy_set_holds_only_policies() -> None:
    """A PolicySet refuses anything but compiled policies, and is an immutable sequence."""
    with pytest.raises(TypeError, match="PolicySet holds Policy objects, not dict"):
        PolicySet([{"Version": "2012-10-17"}])  # type: ignore[list-item]
    grouped = PolicySet([policy(allow())])
    assert len(grouped) == 1 and isinstance(grouped, tuple)
