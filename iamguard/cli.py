"""The iamguard command line, built on the public API.

``main`` is the root group. ``policy validate`` and ``policy simulate`` work on policy files
alone; every other command works on a store (``--store URL``, default ``$IAMGUARD_STORE``, else
``sqlite:///iamguard.db``): ``init``, ``user``, ``group``, ``access-key``, ``login-profile``,
``role``, ``service``, the store commands of ``policy``, ``import``, ``export`` and
``simulate``. They live in ``cli_identities``, ``cli_permissions`` and ``cli_model``, on the
helpers of ``cli_common``.

Exit statuses follow click's convention: 0 success, 1 a negative answer (an AWS error such as
``NoSuchEntity``, printed as ``Error (NoSuchEntity): MESSAGE``; an invalid policy; a denied
request), 2 a usage error (a missing file, a bad option, no store, a malformed policy given to
``policy simulate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from iamguard import AccessRequest, MalformedPolicyDocument, Policy, evaluate
from iamguard.cli_common import (
    EXIT_NO,
    EXIT_USAGE,
    RootGroup,
    echo_json,
    exit_with_decision,
    request_options,
)
from iamguard.cli_credentials import access_key, login_profile, service
from iamguard.cli_demo import demo
from iamguard.cli_identities import group, init, user
from iamguard.cli_model import export, import_
from iamguard.cli_model import simulate as simulate_store
from iamguard.cli_permissions import POLICY_COMMANDS, role

_POLICY_FILE = click.Path(exists=True, dir_okay=False, readable=True)


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="iamguard")
def main() -> None:
    """iamguard: AWS IAM's identity and permission model for Python web apps.

    Every command but `policy validate` and `policy simulate` works on a store: --store URL,
    default $IAMGUARD_STORE, else sqlite:///iamguard.db (a file in the current directory).
    Start with `iamguard init` or `iamguard import FILE`.

    \b
    Exit status: 0 success; 1 an AWS error (printed as
    `Error (CODE): MESSAGE`), an invalid policy or a denied request;
    2 a usage error.
    """


for _command in (init, user, group, access_key, login_profile, role, service, import_, export):
    main.add_command(_command)
main.add_command(simulate_store, "simulate")
main.add_command(demo)


# -- policy ----------------------------------------------------------------------------------


@main.group()
def policy() -> None:
    """Check policy files; manage the store's policies.

    `validate` and `simulate` work on policy files alone. The other commands manage the
    store's managed policies (by name or ARN) and inline policies.
    """


def _load(path: str, kind: str) -> Policy | MalformedPolicyDocument:
    """The policy in the JSON file at ``path``, named by its file name; the error if malformed."""
    try:
        text = Path(path).read_bytes()
    except OSError as e:  # click.Path checked it; it may still vanish or be unreadable
        raise click.UsageError(f"cannot read `{path}`: {e.strerror or e}") from None
    try:
        return Policy.parse(text, kind, name=Path(path).name)
    except MalformedPolicyDocument as e:
        return e


def _problem_lines(path: str, error: MalformedPolicyDocument) -> list[str]:
    """``FILE: PATH: MESSAGE`` (``FILE: MESSAGE`` for the whole document), one per problem."""
    return [f"{path}: {problem}" for problem in error.problems]


@policy.command()
@click.argument("files", nargs=-1, required=True, type=_POLICY_FILE, metavar="FILE...")
@click.option(
    "--kind",
    type=click.Choice(["identity", "resource", "trust"]),
    default="identity",
    show_default=True,
    help="What the documents are (identity also covers boundaries and session policies).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one entry per file.")
def validate(*, files: tuple[str, ...], kind: str, as_json: bool) -> None:
    """Check policy documents against AWS IAM's policy grammar.

    Prints `FILE: ok` for a valid document, and `FILE: PATH: MESSAGE` for every problem of an
    invalid one (PATH is a JSON path such as Statement[0].Effect).

    \b
    Exit status: 0 all valid; 1 a document has problems;
    2 usage error (e.g. a missing file).
    """
    reports = []
    for path in files:
        loaded = _load(path, kind)
        problems = loaded.problems if isinstance(loaded, MalformedPolicyDocument) else ()
        reports.append((path, loaded, problems))
    if as_json:
        entries = [
            {
                "file": path,
                "valid": not problems,
                "problems": [{"path": p.path, "message": p.message} for p in problems],
            }
            for path, _, problems in reports
        ]
        echo_json(entries)
    else:
        for path, loaded, _ in reports:
            if isinstance(loaded, MalformedPolicyDocument):
                click.echo("\n".join(_problem_lines(path, loaded)))
            else:
                click.echo(f"{path}: ok")
    if any(problems for _, _, problems in reports):
        click.get_current_context().exit(EXIT_NO)


_SIMULATE_EPILOG = """\b
Example:
  iamguard policy simulate --policy developers.json \\
    --principal arn:iamguard:iam::123456789012:user/ram \\
    --action images:GetImage --resource arn:iamguard:images::123456789012:image/1
"""


@policy.command(epilog=_SIMULATE_EPILOG)
@click.option(
    "--policy",
    "policy_files",
    multiple=True,
    type=_POLICY_FILE,
    metavar="FILE",
    help="An identity-based policy of the caller (repeatable).",
)
@click.option(
    "--boundary",
    "boundary_files",
    multiple=True,
    type=_POLICY_FILE,
    metavar="FILE",
    help="A permissions boundary (repeatable).",
)
@click.option(
    "--session",
    "session_files",
    multiple=True,
    type=_POLICY_FILE,
    metavar="FILE",
    help="A session policy (repeatable).",
)
@click.option(
    "--resource-policy",
    "resource_file",
    type=_POLICY_FILE,
    metavar="FILE",
    help="The resource's resource-based policy.",
)
@click.option("--principal", required=True, metavar="ARN", help="The caller's ARN.")
@request_options
@click.option("--json", "as_json", is_flag=True, help="Print the decision as a JSON object.")
def simulate(
    *,
    policy_files: tuple[str, ...],
    boundary_files: tuple[str, ...],
    session_files: tuple[str, ...],
    resource_file: str | None,
    principal: str,
    action: str,
    resource: str,
    context: dict[str, str | list[str]],
    as_json: bool,
) -> None:
    """Decide one request as AWS's policy simulator would.

    Evaluates the request under the caller's identity-based policies, within its permissions
    boundaries and session policies, together with the resource's resource-based policy (give
    at least one --policy or a --resource-policy). Prints the decision (Allow, ExplicitDeny or
    ImplicitDeny), AWS's message and the statements that decided it, each named by its
    policy's file name and its Sid (or Statement[i]).

    \b
    A multi-valued context key is given by repeating it:
      --context aws:TagKeys=team --context aws:TagKeys=project

    \b
    Exit status: 0 allowed; 1 denied (explicitly or implicitly);
    2 usage error, or a malformed policy (its problems printed as
    `policy validate` prints them).
    """
    if not policy_files and resource_file is None:
        raise click.UsageError("give at least one --policy or a --resource-policy")
    problems: list[str] = []

    def load(paths: Sequence[str], kind: str) -> list[Policy]:
        policies = []
        for path in paths:
            loaded = _load(path, kind)
            if isinstance(loaded, MalformedPolicyDocument):
                problems.extend(_problem_lines(path, loaded))
            else:
                policies.append(loaded)
        return policies

    identity = load(policy_files, "identity")
    boundaries = load(boundary_files, "identity")
    session = load(session_files, "identity")
    resource_policies = load([resource_file] if resource_file else [], "resource")
    if problems:
        click.echo("\n".join(problems), err=True)
        click.get_current_context().exit(EXIT_USAGE)

    decision = evaluate(
        AccessRequest(principal, action, resource, context),
        identity=identity,
        boundaries=boundaries,
        session=session,
        resource=resource_policies[0] if resource_policies else None,
    )
    exit_with_decision(decision, as_json)


for _command in POLICY_COMMANDS:
    policy.add_command(_command)
