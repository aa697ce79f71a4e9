"""The command line for the whole model: ``import`` a model file, ``export`` one, and
``simulate`` a request against the store.

``export`` writes the model file ``import`` reads (see ``iamguard.modelfile``), without any
credential, so that importing an export into an empty store recreates the same users, groups,
roles, services, managed policies (their default version), inline policies, memberships,
attachments, boundaries, tags and password policy.
"""

from __future__ import annotations

import json
from typing import Any

import click
import yaml

from iamguard.authorizer import Authorizer
from iamguard.cli_common import (
    Target,
    echo_json,
    exit_with_decision,
    json_option,
    on_store,
    read_document,
    request_options,
    warn_once,
)
from iamguard.iam import IAM, get_account
from iamguard.model import AttachedPolicy, PasswordPolicy, Tag
from iamguard.modelfile import build_model, install_model, read_model_text

_SECTIONS = ("policies", "groups", "users", "roles", "services")

# -- import ----------------------------------------------------------------------------------


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@json_option
@on_store(account=False, must_exist=False)
def import_(*, target: Target, file: str, as_json: bool) -> None:
    """Load a model file (YAML or JSON) into the store.

    The whole file is checked first, so that a file with a mistake changes nothing. Its
    accounts must not exist in the store yet. Prints the generated root passwords and service
    secrets, shown only this once (the file never holds secrets).

    \b
    Exit status: 0 loaded; 1 a mistake in the file (named by where it is,
    e.g. accounts[0].users[1]) or an account that exists already.
    """
    model = read_model_text(read_document(file))
    built, secrets = build_model(model)  # every mistake found before the store is touched
    install_model(built, target.store)  # one transaction: all of it or nothing
    if as_json:
        echo_json({
            "Accounts": [
                {"AccountId": account_id, "RootPassword": password}
                for account_id, password in secrets.root_passwords.items()
            ],
            "Services": [
                {"AccountId": key.split("/", 1)[0], "ServiceName": key.split("/", 1)[1],
                 "Secret": secret}
                for key, secret in secrets.service_secrets.items()
            ],
        })  # fmt: skip
    else:
        for account in model["accounts"]:
            counts = ", ".join(
                f"{section} {len(account.get(section) or [])}" for section in _SECTIONS
            )
            click.echo(f"Imported account {account['id']}: {counts}")
        for account_id, password in secrets.root_passwords.items():
            click.echo(f"Root password of account {account_id}: {password}")
        for key, secret in secrets.service_secrets.items():
            account_id, name = key.split("/", 1)
            click.echo(f"Secret of service {name} (account {account_id}): {secret}")
    warn_once("each root password and service secret is")


# -- export ----------------------------------------------------------------------------------


@click.command()
@json_option
@on_store()
def export(*, target: Target, as_json: bool) -> None:
    """Print the model as a model file (YAML), without secrets.

    --json prints it as JSON. `iamguard import` of the output into an empty store recreates the
    account: its managed policies (the default version of each), groups, users, roles,
    services, memberships, attachments, inline policies, boundaries, tags and password policy.
    Not exported: the root password, users' passwords, access keys, service secrets and older
    policy versions.
    """
    model = {"accounts": [export_account(target.iam())]}
    if as_json:
        echo_json(model)
        return
    click.echo(
        f"# iamguard model of account {target.account}: import with `iamguard import FILE`.\n"
        "# No credentials are included: import generates new root passwords and service secrets."
    )
    click.echo(yaml.safe_dump(model, sort_keys=False, allow_unicode=True, width=100), nl=False)


def export_account(iam: IAM) -> dict[str, Any]:
    """One account of a model file, as ``iamguard.modelfile`` reads it."""
    account = get_account(iam.store, iam.account)
    entry: dict[str, Any] = {"id": account.account_id}
    _put(entry, "alias", account.alias)
    entry["root_email"] = account.root_email
    password_policy = iam.get_account_password_policy()
    if not password_policy.is_default:
        defaults = PasswordPolicy().to_record()
        entry["password_policy"] = {
            k: v for k, v in password_policy.to_record().items()
            if k != "is_default" and v != defaults[k]
        }  # fmt: skip
    policies = []
    for policy in iam.list_policies():
        version = iam.get_policy_version(policy.arn, policy.default_version_id)
        item: dict[str, Any] = {"name": policy.name}
        _put(item, "path", policy.path, "/")
        _put(item, "description", policy.description)
        item["document"] = json.loads(version.document)
        policies.append(item)
    groups = []
    for group in iam.list_groups():
        item = {"name": group.name}
        _put(item, "path", group.path, "/")
        _permissions(item, iam, "group", group.name)
        groups.append(item)
    users = []
    for user in iam.list_users():
        item = {"name": user.name}
        _put(item, "path", user.path, "/")
        _put(item, "groups", iam.list_groups_for_user(user.name))
        _put(item, "tags", _tags(user.tags))
        _permissions(item, iam, "user", user.name, user.permissions_boundary)
        users.append(item)
    roles = []
    for role in iam.list_roles():
        item = {"name": role.name}
        _put(item, "path", role.path, "/")
        _put(item, "description", role.description)
        item["trust_policy"] = json.loads(role.assume_role_policy)
        _put(item, "max_session_duration", role.max_session_duration, 3600)
        _put(item, "tags", _tags(role.tags))
        _permissions(item, iam, "role", role.name, role.permissions_boundary)
        roles.append(item)
    services = []
    for service in iam.list_services():
        item = {"name": service.name}
        _put(item, "description", service.description)
        services.append(item)
    for section, items in zip(_SECTIONS, (policies, groups, users, roles, services), strict=True):
        _put(entry, section, items)
    return entry


def _put(item: dict[str, Any], key: str, value: Any, default: Any = None) -> None:
    """Set ``key`` unless ``value`` is empty or the default (the model file's defaults)."""
    if value not in (None, "", [], {}) and value != default:
        item[key] = value


def _permissions(
    item: dict[str, Any], iam: IAM, kind: str, name: str, boundary: str | None = None
) -> None:
    """The managed policies (by name), inline policies and permissions boundary (by name) of a
    user, group or role."""
    attached: list[AttachedPolicy] = iam.attached_policies(kind, name)
    _put(item, "policies", [p.policy_name for p in attached])
    inline = {
        policy: json.loads(iam.get_inline_policy(kind, name, policy))
        for policy in iam.inline_policy_names(kind, name)
    }
    _put(item, "inline_policies", inline)
    _put(item, "permissions_boundary", boundary.rsplit("/", 1)[-1] if boundary else None)


def _tags(tags: tuple[Tag, ...]) -> dict[str, str]:
    return {t.key: t.value for t in tags}


# -- simulate --------------------------------------------------------------------------------

_SIMULATE_EPILOG = """\b
Example:
  iamguard simulate --principal arn:iamguard:iam::123456789012:user/ram \\
    --action images:GetImage --resource arn:iamguard:images::123456789012:image/1
"""


@click.command(epilog=_SIMULATE_EPILOG)
@click.option(
    "--principal",
    required=True,
    metavar="ARN",
    help="The caller: a user's, a role session's or the root user's ARN.",
)
@request_options
@json_option
@on_store(account=False)
def simulate(
    *, target: Target, principal: str, action: str, resource: str,
    context: dict[str, str | list[str]], as_json: bool,
) -> None:  # fmt: skip
    """Decide a request against the store's policies.

    The decision is the one the app would make now. The principal's policies are read from the
    store: its own and its groups' managed and inline policies, within its permissions
    boundary. Global keys such as aws:username and aws:PrincipalTag/... are filled in from the
    store; --context adds or overrides keys. Prints the decision, AWS's message and the
    policies and statements that decided it.

    \b
    Exit status: 0 allowed; 1 denied (explicitly or implicitly).
    """
    authorizer = Authorizer(target.store)
    if not principal.endswith(":root") and authorizer.principal(principal) is None:
        click.echo(f"Note: the store has no principal `{principal}`: it may do nothing", err=True)
    exit_with_decision(authorizer.authorize(principal, action, resource, context), as_json)
