"""A declarative model file (YAML or JSON): accounts, policies, groups, users, roles, services.

::

    accounts:
      - id: "123456789012"
        alias: example
        root_email: root@example.com
        policies:                          # managed policies, attached below by name
          - name: ImageReadAccess
            description: Read images
            document: {Version: "2012-10-17", Statement: [...]}
        groups:
          - name: developers
            policies: [ImageReadAccess]    # managed policy names (or ARNs)
            inline_policies: {}            # name -> document
        users:
          - name: ram
            groups: [developers]
            tags: {team: images}
            permissions_boundary: SomePolicy
        roles:
          - name: ImageReader
            trust_policy: {Version: "2012-10-17", Statement: [...]}
            policies: [ImageReadAccess]
            max_session_duration: 3600
        services:
          - name: image-processor

The file is loaded through the management API, so every name, quota and policy rule applies,
and a file that breaks one is refused with the same error the API gives, naming where. Loading
is all or nothing: the model is built in memory first, then written in one transaction.
Secrets are never read from the file: root passwords and service credentials are generated and
returned by ``load_model`` once, for the caller to hand over.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iamguard.errors import (
    EntityAlreadyExists,
    IAMGuardError,
    InvalidInput,
    MalformedPolicyDocument,
)
from iamguard.iam import IAM, Quotas, create_account, list_accounts
from iamguard.stores.base import KeyExists, Store
from iamguard.stores.memory import MemoryStore

_ACCOUNT_KEYS = {"id", "alias", "root_email", "policies", "groups", "users", "roles", "services",
                 "password_policy"}  # fmt: skip
_SECTION_KEYS = {
    "policies": {"name", "path", "description", "document"},
    "groups": {"name", "path", "policies", "inline_policies"},
    "users": {"name", "path", "groups", "tags", "policies", "inline_policies",
              "permissions_boundary"},
    "roles": {"name", "path", "description", "trust_policy", "policies", "inline_policies",
              "max_session_duration", "tags", "permissions_boundary"},
    "services": {"name", "description"},
}  # fmt: skip


@dataclass
class LoadedSecrets:
    """What loading generated, to be shown once: root passwords and service secrets."""

    root_passwords: dict[str, str] = field(default_factory=dict)  # account id -> password
    service_secrets: dict[str, str] = field(default_factory=dict)  # "account/service" -> secret


def read_model_text(text: str) -> dict[str, Any]:
    """Parse YAML (which includes JSON) into the model's mapping; ``InvalidInput`` if malformed."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InvalidInput(f"model file is not valid YAML or JSON: {e}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("accounts"), list):
        raise InvalidInput("model file must be a mapping with a list of `accounts`")
    return dict(data)


def load_model(
    model: Mapping[str, Any] | str | Path, store: Store | None = None, *,
    quotas: Quotas | None = None,
) -> tuple[Store, LoadedSecrets]:  # fmt: skip
    """Load a model (a mapping, YAML/JSON text, or a file path) into ``store`` (default: a new
    in-memory store), all of it or nothing. Returns the store and the secrets generated for it.
    ``EntityAlreadyExists`` when one of its accounts is in ``store`` already."""
    built, loaded = build_model(model, quotas=quotas)
    if store is None:
        return built, loaded
    install_model(built, store)
    return store, loaded


def build_model(
    model: Mapping[str, Any] | str | Path, *, quotas: Quotas | None = None
) -> tuple[MemoryStore, LoadedSecrets]:
    """The model in a new in-memory store, checked by every rule of the management API."""
    if isinstance(model, Path):
        model = read_model_text(model.read_text(encoding="utf-8"))
    elif isinstance(model, str):
        model = read_model_text(model)
    built = MemoryStore()
    loaded = LoadedSecrets()
    for index, account in enumerate(model.get("accounts") or []):
        _load_account(built, account, loaded, quotas, f"accounts[{index}]")
    return built, loaded


def install_model(built: MemoryStore, store: Store) -> None:
    """Write a built model into ``store`` in one transaction; ``EntityAlreadyExists`` when one
    of its accounts is there already (and then nothing is written)."""
    try:
        built.copy_into(store)
    except KeyExists:
        existing = [a.account_id for a in list_accounts(built) if _exists(store, a.account_id)]
        raise EntityAlreadyExists(
            f"account `{existing[0] if existing else '?'}` already exists in the store"
        ) from None


def _exists(store: Store, account_id: str) -> bool:
    return store.read(lambda tx: tx.get("account", account_id, account_id)) is not None


@contextmanager
def _located(where: str) -> Iterator[None]:
    """Prefix any error raised within with where in the file it arose."""
    try:
        yield
    except MalformedPolicyDocument as e:
        raise MalformedPolicyDocument(e.problems, name=where) from None
    except IAMGuardError as e:
        raise type(e)(f"{where}: {e.message}") from None


def _check_keys(entry: Any, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(entry, Mapping):
        raise InvalidInput("must be a mapping")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise InvalidInput(f"unknown key `{unknown[0]}`")
    return entry


def _items(
    entry: Mapping[str, Any], section: str, where: str
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(where in the file, entry)`` for each entry of a section, its keys checked."""
    for i, item in enumerate(entry.get(section) or []):
        path = f"{where}.{section}[{i}]"
        with _located(path):
            yield path, _check_keys(item, _SECTION_KEYS[section])


def _load_account(
    store: Store, entry: Any, loaded: LoadedSecrets, quotas: Quotas | None, where: str
) -> None:
    with _located(where):
        entry = _check_keys(entry, _ACCOUNT_KEYS)
        account_id = entry.get("id")
        if not isinstance(account_id, str):
            raise InvalidInput(
                f"account id `{account_id}` must be a quoted string of 12 digits "
                '(id: "012345678901"): unquoted, YAML reads some digits as another number'
            )
        password = secrets.token_urlsafe(18) + "aA1!"  # meets any password policy's classes
        email = entry.get("root_email", f"root@{account_id}.invalid")
        create_account(store, email=email, password=password, account_id=account_id,
                       alias=entry.get("alias"))  # fmt: skip
        loaded.root_passwords[account_id] = password
        iam = IAM(store, account_id, quotas=quotas)
        if entry.get("password_policy"):
            iam.update_account_password_policy(**entry["password_policy"])
    arns: dict[str, str] = {}

    def arn(name: str) -> str:
        return name if name.startswith("arn:") else arns.get(name, name)

    for path, item in _items(entry, "policies", where):
        with _located(path):
            policy = iam.create_policy(item["name"], _document(item["document"]),
                                       path=item.get("path", "/"),
                                       description=item.get("description", ""))  # fmt: skip
            arns[policy.name] = policy.arn
    for path, item in _items(entry, "groups", where):
        with _located(path):
            iam.create_group(item["name"], path=item.get("path", "/"))
            _policies(iam, "group", item, arn)
    for path, item in _items(entry, "users", where):
        with _located(path):
            boundary = item.get("permissions_boundary")
            iam.create_user(item["name"], path=item.get("path", "/"),
                            tags=_tags(item.get("tags")),
                            permissions_boundary=arn(boundary) if boundary else None)  # fmt: skip
            for group in item.get("groups") or []:
                iam.add_user_to_group(group, item["name"])
            _policies(iam, "user", item, arn)
    for path, item in _items(entry, "roles", where):
        with _located(path):
            boundary = item.get("permissions_boundary")
            iam.create_role(
                item["name"], _document(item["trust_policy"]), path=item.get("path", "/"),
                description=item.get("description", ""),
                max_session_duration=item.get("max_session_duration", 3600),
                tags=_tags(item.get("tags")),
                permissions_boundary=arn(boundary) if boundary else None,
            )  # fmt: skip
            _policies(iam, "role", item, arn)
    for path, item in _items(entry, "services", where):
        with _located(path):
            created = iam.create_service(item["name"], description=item.get("description", ""))
            loaded.service_secrets[f"{account_id}/{item['name']}"] = created.secret


def _policies(iam: IAM, kind: str, item: Mapping[str, Any], arn: Any) -> None:
    for name in item.get("policies") or []:
        iam.attach_policy(kind, item["name"], arn(name))
    for name, document in (item.get("inline_policies") or {}).items():
        iam.put_inline_policy(kind, item["name"], name, _document(document))


def _document(value: Any) -> str:
    """A policy written in the file as a mapping (YAML or JSON) or as JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


def _tags(value: Any) -> list[dict[str, str]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInput("tags must be a mapping of keys to values")
    return [{"Key": str(k), "Value": str(v)} for k, v in value.items()]
