"""The command line for identities: ``init`` (an account and its root user), ``user`` and
``group``.

JSON output uses AWS's field names (``UserName``, ``Arn``, ``CreateDate`` ...), as the AWS CLI
prints them. The root password is printed once, by ``init``, with a warning on stderr.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

import click

from iamguard.arn import DEFAULT_PARTITION, root_arn
from iamguard.cli_common import (
    Target,
    attached_json,
    boundary_json,
    echo_created,
    echo_json,
    echo_list,
    fields,
    json_option,
    listed,
    new_password,
    on_store,
    policy_arn,
    store_accounts,
    tag_option,
    tags_json,
    tags_text,
    warn_once,
)
from iamguard.errors import EntityAlreadyExists, NoSuchEntity
from iamguard.iam import create_account
from iamguard.model import AccessKey, Group, User

# -- init ------------------------------------------------------------------------------------


@click.command()
@click.option("--account-id", metavar="ID", help="The account's 12-digit id. Default: random.")
@click.option("--email", metavar="EMAIL", help="The root user's e-mail. Default: root@ID.invalid.")
@click.option("--alias", metavar="ALIAS", help="A friendly name for the account.")
@json_option
@on_store(account=False, must_exist=False)
def init(
    *, target: Target, account_id: str | None, email: str | None, alias: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Create an account and its root user.

    Creates the store too, if need be.

    Prints the root user's generated password, shown only this once. The root user may do
    anything in its account: keep it for the rare tasks that need it and give people IAM users.

    \b
    Exit status: 0 created; 1 the account exists already (or the store
    holds one and no --account-id was given).
    """
    if account_id is None:
        existing = store_accounts(target.store)
        if existing:
            raise EntityAlreadyExists(
                f"store `{target.shown_url}` already holds account `{existing[0]}`: "
                "give --account-id to add another account"
            )
        account_id = "".join(secrets.choice(string.digits) for _ in range(12))
    password = new_password()
    account = create_account(
        target.store, email=email or f"root@{account_id}.invalid", password=password,
        account_id=account_id, alias=alias,
    )  # fmt: skip
    arn = root_arn(DEFAULT_PARTITION, account.account_id)
    if as_json:
        echo_json({
            "AccountId": account.account_id, "AccountAlias": account.alias,
            "RootArn": arn, "RootEmail": account.root_email, "RootPassword": password,
        })  # fmt: skip
    else:
        alias_text = f" ({account.alias})" if account.alias else ""
        click.echo(f"Created account {account.account_id}{alias_text} in {target.shown_url}")
        click.echo(fields([
            ("Root user", arn), ("Root e-mail", account.root_email), ("Root password", password),
        ]))  # fmt: skip
    warn_once("the root password is")


# -- user ------------------------------------------------------------------------------------


def user_json(user: User) -> dict[str, Any]:
    return boundary_json({
        "UserName": user.name, "Path": user.path, "UserId": user.user_id, "Arn": user.arn,
        "CreateDate": user.created, "Tags": tags_json(user.tags),
    }, user.permissions_boundary)  # fmt: skip


def access_key_json(key: AccessKey) -> dict[str, Any]:
    return {
        "UserName": key.user, "AccessKeyId": key.access_key_id, "Status": key.status,
        "CreateDate": key.created,
    }  # fmt: skip


@click.group()
def user() -> None:
    """Manage IAM users."""


@user.command("create")
@click.argument("name")
@click.option("--path", default="/", show_default=True, help="The user's path, e.g. /team/.")
@tag_option
@click.option(
    "--permissions-boundary", metavar="POLICY",
    help="A managed policy (name or ARN) that caps the user's permissions.",
)  # fmt: skip
@json_option
@on_store()
def user_create(
    *, target: Target, name: str, path: str, tags: list[dict[str, str]],
    permissions_boundary: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Create a user. It has no credentials and may do nothing until a policy allows it."""
    iam = target.iam()
    boundary = policy_arn(iam, permissions_boundary) if permissions_boundary else None
    created = iam.create_user(name, path=path, tags=tags, permissions_boundary=boundary)
    echo_created("user", created.name, created.arn, user_json(created), as_json=as_json)


@user.command("list")
@click.option("--path-prefix", default="/", show_default=True, help="Only users under this path.")
@json_option
@on_store()
def user_list(*, target: Target, path_prefix: str, as_json: bool) -> None:
    """List the account's users, by name."""
    echo_list(
        target.iam().list_users(path_prefix=path_prefix), "Users", user_json,
        ["NAME", "PATH", "ARN", "CREATED", "TAGS"],
        lambda u: (u.name, u.path, u.arn, u.created, tags_text(u.tags)),
        as_json=as_json,
    )  # fmt: skip


@user.command("get")
@click.argument("name")
@json_option
@on_store()
def user_get(*, target: Target, name: str, as_json: bool) -> None:
    """Show a user.

    With its groups, policies, access keys and whether it has a password.
    """
    iam = target.iam()
    found = iam.get_user(name)
    groups = iam.list_groups_for_user(found.name)
    attached = iam.list_attached_user_policies(found.name)
    inline = iam.list_user_policies(found.name)
    keys = iam.list_access_keys(found.name)
    try:
        iam.get_login_profile(found.name)
        password = True
    except NoSuchEntity:
        password = False
    if as_json:
        echo_json({
            "User": user_json(found), "Groups": groups, "AttachedPolicies": attached_json(attached),
            "PolicyNames": inline, "AccessKeys": [access_key_json(k) for k in keys],
            "LoginProfile": password,
        })  # fmt: skip
        return
    click.echo(fields([
        ("Name", found.name), ("Path", found.path), ("Id", found.user_id), ("Arn", found.arn),
        ("Created", found.created), ("Tags", tags_text(found.tags)),
        ("Boundary", found.permissions_boundary or "-"), ("Groups", listed(groups)),
        ("Policies", listed(p.policy_name for p in attached)), ("Inline", listed(inline)),
        ("Access keys", listed(f"{k.access_key_id} ({k.status})" for k in keys)),
        ("Password", "yes" if password else "no"),
    ]))  # fmt: skip


@user.command("delete")
@click.argument("name")
@on_store()
def user_delete(*, target: Target, name: str) -> None:
    """Delete a user.

    It must have no password, access keys, groups or policies left (AWS's rule).
    """
    target.iam().delete_user(name)
    click.echo(f"Deleted user {name}")


# -- group -----------------------------------------------------------------------------------


def group_json(group: Group) -> dict[str, Any]:
    return {
        "GroupName": group.name, "Path": group.path, "GroupId": group.group_id,
        "Arn": group.arn, "CreateDate": group.created,
    }  # fmt: skip


@click.group()
def group() -> None:
    """Manage groups and their members."""


@group.command("create")
@click.argument("name")
@click.option("--path", default="/", show_default=True, help="The group's path.")
@json_option
@on_store()
def group_create(*, target: Target, name: str, path: str, as_json: bool) -> None:
    """Create a group.

    Policies attached to a group apply to every member.
    """
    created = target.iam().create_group(name, path=path)
    echo_created("group", created.name, created.arn, group_json(created), as_json=as_json)


@group.command("list")
@click.option("--path-prefix", default="/", show_default=True, help="Only groups under this path.")
@json_option
@on_store()
def group_list(*, target: Target, path_prefix: str, as_json: bool) -> None:
    """List the account's groups, by name."""
    echo_list(
        target.iam().list_groups(path_prefix=path_prefix), "Groups", group_json,
        ["NAME", "PATH", "ARN", "CREATED"], lambda g: (g.name, g.path, g.arn, g.created),
        as_json=as_json,
    )  # fmt: skip


@group.command("get")
@click.argument("name")
@json_option
@on_store()
def group_get(*, target: Target, name: str, as_json: bool) -> None:
    """Show a group, its members and its policies."""
    iam = target.iam()
    found = iam.get_group(name)
    members = iam.get_group_users(found.name)
    attached = iam.list_attached_group_policies(found.name)
    inline = iam.list_group_policies(found.name)
    if as_json:
        echo_json({
            "Group": group_json(found), "Users": [user_json(u) for u in members],
            "AttachedPolicies": attached_json(attached), "PolicyNames": inline,
        })  # fmt: skip
        return
    click.echo(fields([
        ("Name", found.name), ("Path", found.path), ("Id", found.group_id), ("Arn", found.arn),
        ("Created", found.created), ("Members", listed(u.name for u in members)),
        ("Policies", listed(p.policy_name for p in attached)), ("Inline", listed(inline)),
    ]))  # fmt: skip


@group.command("delete")
@click.argument("name")
@on_store()
def group_delete(*, target: Target, name: str) -> None:
    """Delete a group.

    It must have no members or policies left (AWS's rule).
    """
    target.iam().delete_group(name)
    click.echo(f"Deleted group {name}")


@group.command("add-user")
@click.argument("group_name", metavar="GROUP")
@click.argument("user_name", metavar="USER")
@on_store()
def group_add_user(*, target: Target, group_name: str, user_name: str) -> None:
    """Make USER a member of GROUP (already a member: no change)."""
    target.iam().add_user_to_group(group_name, user_name)
    click.echo(f"Added user {user_name} to group {group_name}")


@group.command("remove-user")
@click.argument("group_name", metavar="GROUP")
@click.argument("user_name", metavar="USER")
@on_store()
def group_remove_user(*, target: Target, group_name: str, user_name: str) -> None:
    """Remove USER from GROUP."""
    target.iam().remove_user_from_group(group_name, user_name)
    click.echo(f"Removed user {user_name} from group {group_name}")
