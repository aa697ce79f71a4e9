"""The command line for permissions: ``role`` and the store commands of ``policy`` (managed
policies and their versions, attachments, inline policies).

A managed policy is named on the command line by its ARN or by its name in the account. Policy
documents are read from files (``-``: standard input); a malformed one prints every problem as
``Error (MalformedPolicyDocument): FILE: PATH: MESSAGE`` and exits 1.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import click

from iamguard.cli_common import (
    DOCUMENT_FILE,
    F,
    Target,
    attached_json,
    boundary_json,
    document_block,
    document_from,
    echo_created,
    echo_json,
    echo_list,
    fields,
    json_option,
    listed,
    on_store,
    policy_arn,
    read_document,
    tag_option,
    tags_json,
    tags_text,
)
from iamguard.model import ManagedPolicy, Role


def _trust_option(fn: F) -> F:
    return click.option(
        "--trust-policy", "trust_file", required=True, type=DOCUMENT_FILE, metavar="FILE",
        help="The trust policy (JSON): who may assume the role.",
    )(fn)  # fmt: skip


def _document_option(fn: F) -> F:
    return click.option(
        "--document", "document_file", required=True, type=DOCUMENT_FILE, metavar="FILE",
        help="The policy document (JSON; - reads stdin).",
    )(fn)  # fmt: skip


def _owner_options(fn: F) -> F:
    """``--user``, ``--group``, ``--role``: exactly one names who the policy is for; the command
    receives it as ``owner: (kind, name)``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, user: str | None, group: str | None, role: str | None,
                **kw: Any) -> Any:  # fmt: skip
        given = [(kind, name) for kind, name in (("user", user), ("group", group), ("role", role))
                 if name is not None]  # fmt: skip
        if len(given) != 1:
            raise click.UsageError("give exactly one of --user, --group or --role")
        return fn(*args, owner=given[0], **kw)

    for kind in ("role", "group", "user"):
        wrapper = click.option(f"--{kind}", metavar="NAME", help=f"The {kind}.")(wrapper)
    return wrapper  # type: ignore[return-value]


# -- role ------------------------------------------------------------------------------------


def role_json(role: Role) -> dict[str, Any]:
    return boundary_json({
        "RoleName": role.name, "Path": role.path, "RoleId": role.role_id, "Arn": role.arn,
        "CreateDate": role.created, "AssumeRolePolicyDocument": json.loads(role.assume_role_policy),
        "Description": role.description, "MaxSessionDuration": role.max_session_duration,
        "Tags": tags_json(role.tags),
    }, role.permissions_boundary)  # fmt: skip


@click.group()
def role() -> None:
    """Manage roles and who may assume them."""


@role.command("create")
@click.argument("name")
@_trust_option
@click.option("--path", default="/", show_default=True, help="The role's path.")
@click.option("--description", default="", help="What the role is for.")
@click.option(
    "--max-session-duration", type=int, default=3600, show_default=True, metavar="SECONDS",
    help="The longest session, 3600-43200 seconds.",
)  # fmt: skip
@click.option(
    "--permissions-boundary", metavar="POLICY",
    help="A managed policy (name or ARN) that caps the role's permissions.",
)  # fmt: skip
@tag_option
@json_option
@on_store()
def role_create(
    *, target: Target, name: str, trust_file: str, path: str, description: str,
    max_session_duration: int, permissions_boundary: str | None, tags: list[dict[str, str]],
    as_json: bool,
) -> None:  # fmt: skip
    """Create a role.

    It is assumed under its trust policy; attach policies to give it permissions.
    """
    iam = target.iam()
    boundary = policy_arn(iam, permissions_boundary) if permissions_boundary else None
    with document_from(trust_file):
        created = iam.create_role(
            name, read_document(trust_file), path=path, description=description,
            max_session_duration=max_session_duration, permissions_boundary=boundary, tags=tags,
        )  # fmt: skip
    echo_created("role", created.name, created.arn, role_json(created), as_json=as_json)


@role.command("list")
@click.option("--path-prefix", default="/", show_default=True, help="Only roles under this path.")
@json_option
@on_store()
def role_list(*, target: Target, path_prefix: str, as_json: bool) -> None:
    """List the account's roles, by name."""
    echo_list(
        target.iam().list_roles(path_prefix=path_prefix), "Roles", role_json,
        ["NAME", "PATH", "ARN", "MAX-SESSION", "DESCRIPTION"],
        lambda r: (r.name, r.path, r.arn, str(r.max_session_duration), r.description),
        as_json=as_json,
    )  # fmt: skip


@role.command("get")
@click.argument("name")
@json_option
@on_store()
def role_get(*, target: Target, name: str, as_json: bool) -> None:
    """Show a role, its policies and its trust policy."""
    iam = target.iam()
    found = iam.get_role(name)
    attached = iam.list_attached_role_policies(found.name)
    inline = iam.list_role_policies(found.name)
    if as_json:
        echo_json({
            "Role": role_json(found), "AttachedPolicies": attached_json(attached),
            "PolicyNames": inline,
        })  # fmt: skip
        return
    click.echo(fields([
        ("Name", found.name), ("Path", found.path), ("Id", found.role_id), ("Arn", found.arn),
        ("Created", found.created), ("Description", found.description or "-"),
        ("Max session", f"{found.max_session_duration} s"), ("Tags", tags_text(found.tags)),
        ("Boundary", found.permissions_boundary or "-"),
        ("Policies", listed(p.policy_name for p in attached)), ("Inline", listed(inline)),
    ]))  # fmt: skip
    click.echo(document_block("Trust policy", found.assume_role_policy))


@role.command("delete")
@click.argument("name")
@on_store()
def role_delete(*, target: Target, name: str) -> None:
    """Delete a role.

    It must have no policies left (AWS's rule).
    """
    target.iam().delete_role(name)
    click.echo(f"Deleted role {name}")


@role.command("update-trust")
@click.argument("name")
@_trust_option
@on_store()
def role_update_trust(*, target: Target, name: str, trust_file: str) -> None:
    """Replace a role's trust policy."""
    with document_from(trust_file):
        target.iam().update_assume_role_policy(name, read_document(trust_file))
    click.echo(f"Updated the trust policy of role {name}")


# -- policy (the store's policies) -------------------------------------------------------------


def policy_json(policy: ManagedPolicy) -> dict[str, Any]:
    return {
        "PolicyName": policy.name, "PolicyId": policy.policy_id, "Arn": policy.arn,
        "Path": policy.path, "DefaultVersionId": policy.default_version_id,
        "AttachmentCount": policy.attachment_count, "Description": policy.description,
        "CreateDate": policy.created, "UpdateDate": policy.updated,
    }  # fmt: skip


@click.command("create")
@click.argument("name")
@_document_option
@click.option("--path", default="/", show_default=True, help="The policy's path.")
@click.option("--description", default="", help="What the policy allows.")
@json_option
@on_store()
def policy_create(
    *, target: Target, name: str, document_file: str, path: str, description: str,
    as_json: bool,
) -> None:  # fmt: skip
    """Create a managed policy. Its document becomes version v1, the default."""
    with document_from(document_file):
        created = target.iam().create_policy(
            name, read_document(document_file), path=path, description=description
        )
    echo_created("policy", created.name, created.arn, policy_json(created), as_json=as_json)


@click.command("list")
@click.option(
    "--path-prefix", default="/", show_default=True, help="Only policies under this path."
)
@json_option
@on_store()
def policy_list(*, target: Target, path_prefix: str, as_json: bool) -> None:
    """List the account's managed policies, by name."""
    echo_list(
        target.iam().list_policies(path_prefix=path_prefix), "Policies", policy_json,
        ["NAME", "VERSION", "ATTACHED", "ARN", "DESCRIPTION"],
        lambda p: (p.name, p.default_version_id, str(p.attachment_count), p.arn, p.description),
        as_json=as_json,
    )  # fmt: skip


@click.command("get")
@click.argument("policy", metavar="POLICY")
@json_option
@on_store()
def policy_get(*, target: Target, policy: str, as_json: bool) -> None:
    """Show a managed policy and its document. POLICY: a name or an ARN."""
    iam = target.iam()
    found = iam.get_policy(policy_arn(iam, policy))
    versions = iam.list_policy_versions(found.arn)
    default = next(v for v in versions if v.version_id == found.default_version_id)
    if as_json:
        echo_json({
            "Policy": policy_json(found),
            "Versions": [{"VersionId": v.version_id, "IsDefaultVersion": v.is_default,
                          "CreateDate": v.created} for v in versions],
            "Document": json.loads(default.document),
        })  # fmt: skip
        return
    click.echo(fields([
        ("Name", found.name), ("Arn", found.arn), ("Description", found.description or "-"),
        ("Versions", listed(v.version_id for v in versions)),
        ("Default", found.default_version_id), ("Attached", str(found.attachment_count)),
    ]))  # fmt: skip
    click.echo(document_block(f"Document ({default.version_id})", default.document))


@click.command("delete")
@click.argument("policy", metavar="POLICY")
@on_store()
def policy_delete(*, target: Target, policy: str) -> None:
    """Delete a managed policy and all its versions. Detach it first."""
    iam = target.iam()
    arn = policy_arn(iam, policy)
    iam.delete_policy(arn)
    click.echo(f"Deleted policy {arn}")


@click.command("create-version")
@click.argument("policy", metavar="POLICY")
@_document_option
@click.option("--set-default", is_flag=True, help="Make the new version the one in force.")
@on_store()
def policy_create_version(
    *, target: Target, policy: str, document_file: str, set_default: bool
) -> None:
    """Add a version to a managed policy (at most five versions)."""
    iam = target.iam()
    arn = policy_arn(iam, policy)
    with document_from(document_file):
        version = iam.create_policy_version(
            arn, read_document(document_file), set_as_default=set_default
        )
    state = "the default" if version.is_default else "not the default"
    click.echo(f"Created version {version.version_id} of {arn} ({state})")


@click.command("attach")
@_owner_options
@click.argument("policy", metavar="POLICY")
@on_store()
def policy_attach(*, target: Target, owner: tuple[str, str], policy: str) -> None:
    """Attach a managed policy to a user, group or role.

    POLICY is the policy's name in the account or its ARN.

    \b
    Example:
      iamguard policy attach --group developers ImageReadAccess
    """
    kind, name = owner
    iam = target.iam()
    arn = policy_arn(iam, policy)
    iam.attach_policy(kind, name, arn)
    click.echo(f"Attached {arn} to {kind} {name}")


@click.command("detach")
@_owner_options
@click.argument("policy", metavar="POLICY")
@on_store()
def policy_detach(*, target: Target, owner: tuple[str, str], policy: str) -> None:
    """Detach a managed policy from a user, group or role.

    POLICY is the policy's name in the account or its ARN.
    """
    kind, name = owner
    iam = target.iam()
    arn = policy_arn(iam, policy)
    iam.detach_policy(kind, name, arn)
    click.echo(f"Detached {arn} from {kind} {name}")


@click.command("put-inline")
@_owner_options
@click.argument("policy_name")
@_document_option
@on_store()
def policy_put_inline(
    *, target: Target, owner: tuple[str, str], policy_name: str, document_file: str
) -> None:
    """Add or replace an inline policy of a user, group or role."""
    kind, name = owner
    with document_from(document_file):
        target.iam().put_inline_policy(kind, name, policy_name, read_document(document_file))
    click.echo(f"Put inline policy {policy_name} on {kind} {name}")


@click.command("delete-inline")
@_owner_options
@click.argument("policy_name")
@on_store()
def policy_delete_inline(*, target: Target, owner: tuple[str, str], policy_name: str) -> None:
    """Delete an inline policy of a user, group or role."""
    kind, name = owner
    target.iam().delete_inline_policy(kind, name, policy_name)
    click.echo(f"Deleted inline policy {policy_name} of {kind} {name}")


POLICY_COMMANDS = (
    policy_attach, policy_create, policy_create_version, policy_delete, policy_delete_inline,
    policy_detach, policy_get, policy_list, policy_put_inline,
)  # fmt: skip
