"""The command line: `iamguard policy validate` and `iamguard policy simulate`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from iamguard.cli import main

ACCOUNT = "123456789012"
RAM = f"arn:iamguard:iam::{ACCOUNT}:user/ram"
ANA = f"arn:iamguard:iam::{ACCOUNT}:user/ana"
IMAGE = f"arn:iamguard:images::{ACCOUNT}:image/1"
SHARED_IMAGE = f"arn:iamguard:images::{ACCOUNT}:image/shared/cat"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "policies"

DEVELOPERS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ReadImages",
            "Effect": "Allow",
            "Action": ["images:GetImage", "images:ListImages"],
            "Resource": f"arn:iamguard:images::{ACCOUNT}:image/*",
        },
        {"Effect": "Deny", "Action": "images:DeleteImage", "Resource": "*"},
    ],
}
ADMINS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ManageImages",
            "Effect": "Allow",
            "Action": "images:*",
            "Resource": f"arn:iamguard:images::{ACCOUNT}:image/*",
        },
        {
            "Sid": "DeleteOnlyWithMFA",
            "Effect": "Deny",
            "Action": "images:DeleteImage",
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        },
    ],
}
BOUNDARY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ReadAndUploadOnly",
            "Effect": "Allow",
            "Action": ["images:Get*", "images:List*", "images:PutImage"],
            "Resource": "*",
        }
    ],
}
LIST_ONLY_SESSION = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "images:ListImages", "Resource": "*"}],
}
TAGGERS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "TagProjects",
            "Effect": "Allow",
            "Action": "images:TagImage",
            "Resource": "*",
            "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "project"}},
        }
    ],
}
SHARED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ShareWithAna",
            "Effect": "Allow",
            "Principal": {"AWS": ANA},
            "Action": "images:GetImage",
            "Resource": f"arn:iamguard:images::{ACCOUNT}:image/shared/*",
        }
    ],
}
BROKEN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Permit", "Action": "images:GetImage"}],
}


@pytest.fixture(autouse=True)
def policy_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write the policies above into a fresh directory and work there."""
    files = {
        "developers.json": DEVELOPERS,
        "admins.json": ADMINS,
        "boundary.json": BOUNDARY,
        "list-only.json": LIST_ONLY_SESSION,
        "taggers.json": TAGGERS,
        "shared.json": SHARED,
        "broken.json": BROKEN,
    }
    for name, document in files.items():
        (tmp_path / name).write_text(json.dumps(document, indent=2))
    (tmp_path / "not-json.json").write_text("Version: 2012-10-17\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="iamguard")


def simulate(*args: str) -> Result:
    return run("policy", "simulate", *args)


# -- help ------------------------------------------------------------------------------------


def test_help_lists_the_policy_group() -> None:
    """`iamguard --help` lists `policy` among its commands."""
    result = run("--help")
    assert result.exit_code == 0
    lines = result.stdout.split("Commands:\n", 1)[1].splitlines()
    assert ["policy", "Check policy files; manage the store's policies."] in [
        line.split(None, 1) for line in lines
    ]


def test_policy_help_lists_validate_and_simulate() -> None:
    """`iamguard policy --help` lists exactly `simulate` and `validate`."""
    result = run("policy", "--help")
    assert result.exit_code == 0
    commands = result.stdout.split("Commands:\n", 1)[1].split()
    assert [word for word in commands if word in {"simulate", "validate"}] == [
        "simulate",
        "validate",
    ]


def test_simulate_help_documents_the_exit_statuses() -> None:
    """`policy simulate --help` says that a denial exits 1."""
    result = run("policy", "simulate", "--help")
    assert result.exit_code == 0
    assert "Exit status: 0 allowed; 1 denied (explicitly or implicitly);" in result.stdout


# -- validate --------------------------------------------------------------------------------


def test_validate_a_valid_policy_prints_ok() -> None:
    """A valid policy prints `FILE: ok` and exits 0."""
    result = run("policy", "validate", "developers.json")
    assert (result.exit_code, result.stdout) == (0, "developers.json: ok\n")


def test_validate_prints_every_problem_with_its_path() -> None:
    """An invalid policy prints each problem as `FILE: PATH: MESSAGE` and exits 1."""
    result = run("policy", "validate", "broken.json")
    assert result.exit_code == 1
    assert result.stdout == (
        "broken.json: Statement[0].Effect: `Permit` is not `Allow` or `Deny`\n"
        "broken.json: Statement[0]: missing `Resource` or `NotResource`\n"
    )


def test_validate_a_problem_without_a_path_prints_file_and_message() -> None:
    """A document-wide problem (not JSON) prints `FILE: MESSAGE`."""
    result = run("policy", "validate", "not-json.json")
    assert result.exit_code == 1
    assert result.stdout == "not-json.json: not valid JSON: Expecting value (line 1 column 1)\n"


def test_validate_several_files_exits_1_if_any_is_invalid() -> None:
    """Each file is reported in order; one invalid file makes the exit status 1."""
    result = run("policy", "validate", "developers.json", "not-json.json", "admins.json")
    assert result.exit_code == 1
    assert result.stdout == (
        "developers.json: ok\n"
        "not-json.json: not valid JSON: Expecting value (line 1 column 1)\n"
        "admins.json: ok\n"
    )


def test_validate_kind_resource_requires_a_principal() -> None:
    """`--kind resource` validates against the resource-policy grammar."""
    result = run("policy", "validate", "--kind", "resource", "shared.json", "developers.json")
    assert result.exit_code == 1
    assert result.stdout == (
        "shared.json: ok\n"
        "developers.json: Statement[0]: missing `Principal` or `NotPrincipal`\n"
        "developers.json: Statement[1]: missing `Principal` or `NotPrincipal`\n"
    )


def test_validate_identity_kind_rejects_a_principal() -> None:
    """By default documents are identity policies, which may not name a Principal."""
    result = run("policy", "validate", "shared.json")
    assert result.exit_code == 1
    assert result.stdout == (
        "shared.json: Statement[0]: `Principal` is not allowed in an identity-based policy\n"
    )


def test_validate_json_output() -> None:
    """`--json` prints one entry per file with its validity and problems."""
    result = run("policy", "validate", "--json", "developers.json", "broken.json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {"file": "developers.json", "valid": True, "problems": []},
        {
            "file": "broken.json",
            "valid": False,
            "problems": [
                {"path": "Statement[0].Effect", "message": "`Permit` is not `Allow` or `Deny`"},
                {"path": "Statement[0]", "message": "missing `Resource` or `NotResource`"},
            ],
        },
    ]


def test_validate_json_all_valid_exits_0() -> None:
    """`--json` with only valid files exits 0."""
    result = run("policy", "validate", "--json", "admins.json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [{"file": "admins.json", "valid": True, "problems": []}]


def test_validate_a_missing_file_is_a_usage_error() -> None:
    """A missing file exits 2 with click's error and checks nothing."""
    result = run("policy", "validate", "developers.json", "missing.json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.endswith(
        "Error: Invalid value for 'FILE...': File 'missing.json' does not exist.\n"
    )


def test_validate_without_files_is_a_usage_error() -> None:
    """`policy validate` needs at least one file."""
    result = run("policy", "validate")
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: Missing argument 'FILE...'.\n")


def test_the_example_policies_are_valid() -> None:
    """Every policy shipped under examples/policies/ validates."""
    identity = sorted(str(p) for p in EXAMPLES.glob("*.json") if p.name != "shared-images.json")
    assert len(identity) == 3
    for kind, files in (
        ("identity", identity),
        ("resource", [str(EXAMPLES / "shared-images.json")]),
    ):
        result = run("policy", "validate", "--kind", kind, *files)
        assert (result.exit_code, result.stdout) == (0, "".join(f"{f}: ok\n" for f in files))


# -- simulate --------------------------------------------------------------------------------


def test_simulate_allow_names_the_allowing_statement() -> None:
    """An allowed request prints Allow, AWS's message and the allowing statement; exits 0."""
    result = simulate(
        "--policy", "developers.json", "--principal", RAM,
        "--action", "images:GetImage", "--resource", IMAGE,
    )  # fmt: skip
    assert result.exit_code == 0
    assert result.stdout == (
        f"Allow: User: {RAM} is authorized to perform: images:GetImage on resource: {IMAGE}\n"
        "  decided by: identity policy `developers.json` statement `ReadImages` (Allow)\n"
    )


def test_simulate_explicit_deny_names_the_denying_statement() -> None:
    """An explicit deny prints AWS's message and the statement (unnamed: Statement[i]); exits 1."""
    result = simulate(
        "--policy", "developers.json", "--principal", RAM,
        "--action", "images:DeleteImage", "--resource", IMAGE,
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout == (
        "ExplicitDeny: User: arn:iamguard:iam::123456789012:user/ram is not authorized to "
        "perform: images:DeleteImage on resource: arn:iamguard:images::123456789012:image/1 "
        "with an explicit deny in an identity-based policy\n"
        "  decided by: identity policy `developers.json` statement `Statement[1]` (Deny)\n"
    )


def test_simulate_implicit_deny() -> None:
    """A request no policy allows is an implicit deny with AWS's reason; exits 1."""
    result = simulate(
        "--policy", "developers.json", "--principal", RAM,
        "--action", "images:PutImage", "--resource", IMAGE,
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout == (
        f"ImplicitDeny: User: {RAM} is not authorized to perform: images:PutImage on resource: "
        f"{IMAGE} because no identity-based policy allows the images:PutImage action\n"
    )


def test_simulate_boundary_caps_the_identity_policy() -> None:
    """An identity allow outside the permissions boundary is an implicit deny, shown as such."""
    result = simulate(
        "--policy", "admins.json", "--boundary", "boundary.json", "--principal", RAM,
        "--action", "images:DeleteImage", "--resource", IMAGE,
        "--context", "aws:MultiFactorAuthPresent=true",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout == (
        f"ImplicitDeny: User: {RAM} is not authorized to perform: images:DeleteImage on "
        f"resource: {IMAGE} because no permissions boundary allows the images:DeleteImage "
        "action\n"
        "  matched, not enough: identity policy `admins.json` statement `ManageImages` (Allow)\n"
    )


def test_simulate_boundary_and_identity_both_allow() -> None:
    """An action both the identity policy and the boundary allow is allowed, naming both."""
    result = simulate(
        "--policy", "admins.json", "--boundary", "boundary.json", "--principal", RAM,
        "--action", "images:PutImage", "--resource", IMAGE,
    )  # fmt: skip
    assert result.exit_code == 0
    assert result.stdout == (
        f"Allow: User: {RAM} is authorized to perform: images:PutImage on resource: {IMAGE}\n"
        "  decided by: identity policy `admins.json` statement `ManageImages` (Allow)\n"
        "  decided by: boundary policy `boundary.json` statement `ReadAndUploadOnly` (Allow)\n"
    )


def test_simulate_session_policy_limits_the_session() -> None:
    """A session policy that does not allow the action denies it."""
    result = simulate(
        "--policy", "developers.json", "--session", "list-only.json", "--principal", RAM,
        "--action", "images:GetImage", "--resource", IMAGE,
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout == (
        f"ImplicitDeny: User: {RAM} is not authorized to perform: images:GetImage on resource: "
        f"{IMAGE} because no session policy allows the images:GetImage action\n"
        "  matched, not enough: identity policy `developers.json` statement `ReadImages` (Allow)\n"
    )


def test_simulate_resource_policy_grant_to_the_caller() -> None:
    """A resource policy naming the caller allows without any identity policy."""
    result = simulate(
        "--resource-policy", "shared.json", "--principal", ANA,
        "--action", "images:GetImage", "--resource", SHARED_IMAGE,
    )  # fmt: skip
    assert result.exit_code == 0
    assert result.stdout == (
        f"Allow: User: {ANA} is authorized to perform: images:GetImage on resource: "
        f"{SHARED_IMAGE}\n"
        "  decided by: resource policy `shared.json` statement `ShareWithAna` (Allow)\n"
    )


def test_simulate_resource_policy_does_not_grant_others() -> None:
    """A resource policy naming someone else grants the caller nothing."""
    result = simulate(
        "--resource-policy", "shared.json", "--principal", RAM,
        "--action", "images:GetImage", "--resource", SHARED_IMAGE,
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout.startswith(f"ImplicitDeny: User: {RAM} is not authorized")


@pytest.mark.parametrize(
    ("context", "exit_code", "effect"),
    [
        ((), 1, "ExplicitDeny"),
        (("--context", "aws:MultiFactorAuthPresent=false"), 1, "ExplicitDeny"),
        (("--context", "aws:MultiFactorAuthPresent=true"), 0, "Allow"),
    ],
)
def test_simulate_context_reaches_the_conditions(
    context: tuple[str, ...], exit_code: int, effect: str
) -> None:
    """`--context KEY=VALUE` sets the condition key the MFA deny reads."""
    result = simulate(
        "--policy", "admins.json", "--principal", RAM,
        "--action", "images:DeleteImage", "--resource", IMAGE, *context,
    )  # fmt: skip
    assert result.exit_code == exit_code
    assert result.stdout.split(":", 1)[0] == effect


@pytest.mark.parametrize(
    ("values", "exit_code"),
    [
        (("team", "project", "owner"), 0),  # only a list holding all three contains `project`
        (("team", "owner"), 1),
    ],
)
def test_simulate_repeated_context_key_is_multi_valued(
    values: tuple[str, ...], exit_code: int
) -> None:
    """A key given several times is one multi-valued key holding every value."""
    context = [arg for v in values for arg in ("--context", f"aws:TagKeys={v}")]
    result = simulate(
        "--policy", "taggers.json", "--principal", RAM,
        "--action", "images:TagImage", "--resource", IMAGE, *context,
    )  # fmt: skip
    assert result.exit_code == exit_code


def test_simulate_context_keys_are_case_insensitive() -> None:
    """Spellings of one key that differ only in case are merged into one multi-valued key."""
    result = simulate(
        "--policy", "taggers.json", "--principal", RAM,
        "--action", "images:TagImage", "--resource", IMAGE,
        "--context", "aws:TagKeys=project", "--context", "AWS:tagkeys=team",
    )  # fmt: skip
    assert result.exit_code == 0


def test_simulate_json_output() -> None:
    """`--json` prints effect, allowed, message, statements and errors."""
    result = simulate(
        "--json", "--policy", "developers.json", "--policy", "admins.json",
        "--principal", RAM, "--action", "images:DeleteImage", "--resource", IMAGE,
    )  # fmt: skip
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "effect": "ExplicitDeny",
        "allowed": False,
        "message": (
            f"User: {RAM} is not authorized to perform: images:DeleteImage on resource: "
            f"{IMAGE} with an explicit deny in an identity-based policy"
        ),
        "statements": [
            {
                "kind": "identity",
                "policy": "developers.json",
                "statement": "Statement[1]",
                "effect": "Deny",
            },
            {
                "kind": "identity",
                "policy": "admins.json",
                "statement": "DeleteOnlyWithMFA",
                "effect": "Deny",
            },
        ],
        "errors": [],
    }


def test_simulate_json_allow_exits_0() -> None:
    """`--json` for an allowed request reports allowed true and exits 0."""
    result = simulate(
        "--json", "--policy", "developers.json", "--principal", RAM,
        "--action", "images:ListImages", "--resource", IMAGE,
    )  # fmt: skip
    assert result.exit_code == 0
    output = json.loads(result.stdout)
    assert (output["effect"], output["allowed"], output["errors"]) == ("Allow", True, [])


def test_simulate_malformed_policy_prints_its_problems_and_exits_2() -> None:
    """Malformed policies print every problem as validate does, on stderr, and exit 2."""
    result = simulate(
        "--policy", "broken.json", "--boundary", "not-json.json", "--principal", RAM,
        "--action", "images:GetImage", "--resource", IMAGE,
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "broken.json: Statement[0].Effect: `Permit` is not `Allow` or `Deny`\n"
        "broken.json: Statement[0]: missing `Resource` or `NotResource`\n"
        "not-json.json: not valid JSON: Expecting value (line 1 column 1)\n"
    )


def test_simulate_identity_policy_given_as_resource_policy_is_malformed() -> None:
    """`--resource-policy` is read with the resource-policy grammar."""
    result = simulate(
        "--resource-policy", "developers.json", "--principal", RAM,
        "--action", "images:GetImage", "--resource", IMAGE,
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        "developers.json: Statement[0]: missing `Principal` or `NotPrincipal`\n"
        "developers.json: Statement[1]: missing `Principal` or `NotPrincipal`\n"
    )


def test_simulate_context_without_equals_is_a_usage_error() -> None:
    """A `--context` value that is not KEY=VALUE exits 2 and names the option."""
    result = simulate(
        "--policy", "developers.json", "--principal", RAM,
        "--action", "images:GetImage", "--resource", IMAGE, "--context", "aws:username",
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Invalid value for '--context': `aws:username` is not KEY=VALUE\n"
    )


def test_simulate_without_any_policy_is_a_usage_error() -> None:
    """Simulating needs at least one identity policy or a resource policy."""
    result = simulate("--principal", RAM, "--action", "images:GetImage", "--resource", IMAGE)
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: give at least one --policy or a --resource-policy\n")


def test_simulate_without_a_principal_is_a_usage_error() -> None:
    """`--principal` is required."""
    result = simulate(
        "--policy", "developers.json", "--action", "images:GetImage", "--resource", IMAGE
    )
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: Missing option '--principal'.\n")


def test_simulate_missing_policy_file_is_a_usage_error() -> None:
    """A missing policy file exits 2 naming the option and the file."""
    result = simulate(
        "--policy", "nope.json", "--principal", RAM,
        "--action", "images:GetImage", "--resource", IMAGE,
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Invalid value for '--policy': File 'nope.json' does not exist.\n"
    )


# -- the installed console script ------------------------------------------------------------


def _console_script() -> str:
    """The `iamguard` script installed next to this interpreter (else the one on PATH)."""
    beside = Path(sys.executable).parent / "iamguard"
    found = str(beside) if beside.exists() else shutil.which("iamguard")
    assert found, "the iamguard console script is not installed"
    return found


def test_console_script_simulates_an_explicit_deny(policy_files: Path) -> None:
    """The installed `iamguard` script prints AWS's explicit-deny message and exits 1."""
    completed = subprocess.run(
        [
            _console_script(), "policy", "simulate", "--policy", "developers.json",
            "--principal", RAM, "--action", "images:DeleteImage", "--resource", IMAGE,
        ],
        cwd=policy_files, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert (completed.returncode, completed.stderr) == (1, "")
    assert completed.stdout.splitlines()[0] == (
        "ExplicitDeny: User: arn:iamguard:iam::123456789012:user/ram is not authorized to "
        "perform: images:DeleteImage on resource: arn:iamguard:images::123456789012:image/1 "
        "with an explicit deny in an identity-based policy"
    )


def test_console_script_reports_a_missing_file_without_a_traceback(policy_files: Path) -> None:
    """The installed script turns a missing file into a one-line error and exit status 2."""
    completed = subprocess.run(
        [_console_script(), "policy", "validate", "missing.json"],
        cwd=policy_files, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.splitlines()[-1] == (
        "Error: Invalid value for 'FILE...': File 'missing.json' does not exist."
    )
