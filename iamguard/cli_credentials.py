"""The command line for credentials: ``access-key``, ``login-profile`` and ``service``
(service principals, which sign in with a secret of their own).

Secrets (access-key and service secrets) are printed once, by the command that made them, with a
warning on stderr; passwords are read from stdin or a hidden prompt, never from the command line.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from iamguard.cli_common import (
    Target,
    echo_json,
    echo_list,
    fields,
    json_option,
    on_store,
    warn_once,
)
from iamguard.cli_identities import access_key_json
from iamguard.model import Service

# -- access-key ------------------------------------------------------------------------------


@click.group("access-key")
def access_key() -> None:
    """Manage a user's access keys."""


@access_key.command("create")
@click.argument("user_name", metavar="USER")
@json_option
@on_store()
def access_key_create(*, target: Target, user_name: str, as_json: bool) -> None:
    """Create an access key (at most two per user). Its secret is shown only this once."""
    created = target.iam().create_access_key(user_name)
    key = created.access_key
    if as_json:
        echo_json({"AccessKey": {
            **access_key_json(key), "SecretAccessKey": created.secret_access_key,
        }})  # fmt: skip
    else:
        click.echo(fields([
            ("User", key.user), ("AccessKeyId", key.access_key_id),
            ("SecretAccessKey", created.secret_access_key), ("Status", key.status),
        ]))  # fmt: skip
    warn_once("the secret access key is")


@access_key.command("list")
@click.argument("user_name", metavar="USER")
@json_option
@on_store()
def access_key_list(*, target: Target, user_name: str, as_json: bool) -> None:
    """List a user's access keys (never their secrets)."""
    echo_list(
        target.iam().list_access_keys(user_name), "AccessKeyMetadata", access_key_json,
        ["ACCESS-KEY-ID", "STATUS", "CREATED", "LAST-USED"],
        lambda k: (k.access_key_id, k.status, k.created, k.last_used or "-"),
        as_json=as_json,
    )  # fmt: skip


@access_key.command("update")
@click.argument("user_name", metavar="USER")
@click.argument("key_id", metavar="ACCESS_KEY_ID")
@click.option(
    "--status", required=True, type=click.Choice(["Active", "Inactive"], case_sensitive=False),
    help="Inactive: the key can no longer sign in (until made Active again).",
)  # fmt: skip
@on_store()
def access_key_update(*, target: Target, user_name: str, key_id: str, status: str) -> None:
    """Make an access key Active or Inactive."""
    target.iam().update_access_key(user_name, key_id, status)
    click.echo(f"Access key {key_id} of user {user_name} is {status}")


@access_key.command("delete")
@click.argument("user_name", metavar="USER")
@click.argument("key_id", metavar="ACCESS_KEY_ID")
@on_store()
def access_key_delete(*, target: Target, user_name: str, key_id: str) -> None:
    """Delete an access key: it can never sign in again."""
    target.iam().delete_access_key(user_name, key_id)
    click.echo(f"Deleted access key {key_id} of user {user_name}")


# -- login-profile ---------------------------------------------------------------------------


@click.group("login-profile")
def login_profile() -> None:
    """Give a user a password, or take it away."""


def _read_password(from_stdin: bool) -> str:
    """The new password: the one line on stdin, or typed twice at a hidden prompt."""
    if not from_stdin:
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    text = sys.stdin.read()
    password = text[:-1] if text.endswith("\n") else text
    password = password[:-1] if password.endswith("\r") else password
    if not password or "\n" in password:
        raise click.UsageError("--password-stdin needs the password as one line on stdin")
    return password


@login_profile.command("create")
@click.argument("user_name", metavar="USER")
@click.option(
    "--password-stdin", is_flag=True,
    help="Read the password from stdin (one line). Without it: a hidden prompt.",
)  # fmt: skip
@click.option(
    "--password-reset-required", is_flag=True, help="The user must change it at first sign-in."
)
@on_store()
def login_profile_create(
    *, target: Target, user_name: str, password_stdin: bool, password_reset_required: bool
) -> None:
    """Give a user a password.

    The password must meet the account's password policy.

    The password is never taken from the command line, where other users and the shell's
    history could read it.
    """
    iam = target.iam()
    iam.get_user(user_name)  # NoSuchEntity before asking for a password
    password = _read_password(password_stdin)
    iam.create_login_profile(user_name, password, password_reset_required=password_reset_required)
    click.echo(f"User {user_name} can now sign in with a password")


@login_profile.command("delete")
@click.argument("user_name", metavar="USER")
@on_store()
def login_profile_delete(*, target: Target, user_name: str) -> None:
    """Take a user's password away."""
    target.iam().delete_login_profile(user_name)
    click.echo(f"User {user_name} can no longer sign in with a password")


# -- service ---------------------------------------------------------------------------------


def service_json(found: Service) -> dict[str, Any]:
    return {
        "ServiceName": found.name, "ServiceId": found.service_id, "CreateDate": found.created,
        "Description": found.description,
    }  # fmt: skip


@click.group()
def service() -> None:
    """Manage service principals: workloads that assume roles."""


@service.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the service is.")
@json_option
@on_store()
def service_create(*, target: Target, name: str, description: str, as_json: bool) -> None:
    """Register a service principal. Its secret is shown only this once.

    A service has no permissions of its own: it assumes roles whose trust policy names it
    ("Principal": {"Service": "NAME"}).
    """
    created = target.iam().create_service(name, description=description)
    found = created.service
    if as_json:
        echo_json({"Service": {**service_json(found), "Secret": created.secret}})
    else:
        click.echo(fields([
            ("Service", found.name), ("Id", found.service_id), ("Secret", created.secret),
        ]))  # fmt: skip
    warn_once("the service's secret is")


@service.command("list")
@json_option
@on_store()
def service_list(*, target: Target, as_json: bool) -> None:
    """List the account's service principals."""
    echo_list(
        target.iam().list_services(), "Services", service_json,
        ["NAME", "ID", "CREATED", "DESCRIPTION"],
        lambda s: (s.name, s.service_id, s.created, s.description),
        as_json=as_json,
    )  # fmt: skip


@service.command("delete")
@click.argument("name")
@on_store()
def service_delete(*, target: Target, name: str) -> None:
    """Delete a service principal: its secret stops working."""
    target.iam().delete_service(name)
    click.echo(f"Deleted service {name}")
