"""The entities of the IAM model, as the management API returns them.

They are immutable snapshots: changing one goes through ``iamguard.iam.IAM``. Secrets never
appear here, except in ``CreatedAccessKey``, ``CreatedServiceCredential`` and
``CreatedVirtualMFADevice``, which are returned once, by the call that made them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="Entity")


@dataclass(frozen=True)
class Entity:
    """Common behaviour: conversion to and from the JSON records stores keep."""

    kind: ClassVar[str]

    def to_record(self) -> dict[str, Any]:
        """The entity as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_record(cls: type[T], data: dict[str, Any]) -> T:
        """The entity from a stored record (unknown keys, from newer versions, are ignored)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if "tags" in values:
            values["tags"] = tuple(Tag(**t) if isinstance(t, dict) else t for t in values["tags"])
        return cls(**values)


@dataclass(frozen=True)
class Tag:
    """A key-value tag on a user or role."""

    key: str
    value: str


@dataclass(frozen=True)
class Account(Entity):
    """An account (a tenant): a 12-digit id, an optional alias and its root user's e-mail."""

    kind: ClassVar[str] = "account"
    account_id: str
    root_email: str
    created: str
    alias: str | None = None


@dataclass(frozen=True)
class User(Entity):
    """An IAM user. A new user can do nothing until a policy allows it."""

    kind: ClassVar[str] = "user"
    account: str
    name: str
    path: str
    user_id: str
    arn: str
    created: str
    tags: tuple[Tag, ...] = ()
    permissions_boundary: str | None = None


@dataclass(frozen=True)
class Group(Entity):
    """A group: policies attached to it apply to every member. Never a principal."""

    kind: ClassVar[str] = "group"
    account: str
    name: str
    path: str
    group_id: str
    arn: str
    created: str


@dataclass(frozen=True)
class Role(Entity):
    """A role: no long-term credentials; assumed, under its trust policy, for a session."""

    kind: ClassVar[str] = "role"
    account: str
    name: str
    path: str
    role_id: str
    arn: str
    created: str
    assume_role_policy: str
    max_session_duration: int = 3600
    description: str = ""
    tags: tuple[Tag, ...] = ()
    permissions_boundary: str | None = None


@dataclass(frozen=True)
class Service(Entity):
    """A service principal: an application or workload with a credential of its own and no
    permissions of its own. It can only assume roles whose trust policy names it
    (``"Principal": {"Service": "image-processor"}``)."""

    kind: ClassVar[str] = "service"
    account: str
    name: str
    service_id: str
    created: str
    description: str = ""


@dataclass(frozen=True)
class ManagedPolicy(Entity):
    """A managed policy: up to five versions, one of them the default, attachable by ARN."""

    kind: ClassVar[str] = "policy"
    account: str
    name: str
    path: str
    policy_id: str
    arn: str
    default_version_id: str
    created: str
    updated: str
    attachment_count: int = 0
    description: str = ""


@dataclass(frozen=True)
class PolicyVersion(Entity):
    """One version (``v1``, ``v2``, ...) of a managed policy's document."""

    kind: ClassVar[str] = "policy_version"
    policy_arn: str
    version_id: str
    document: str
    is_default: bool
    created: str


@dataclass(frozen=True)
class AccessKey(Entity):
    """An access key's public half. The secret is shown once, at creation, and never stored."""

    kind: ClassVar[str] = "access_key"
    account: str
    user: str
    access_key_id: str
    status: str  # "Active" | "Inactive"
    created: str
    last_used: str | None = None


@dataclass(frozen=True)
class CreatedAccessKey:
    """What ``create_access_key`` returns: the only time the secret is ever shown."""

    access_key: AccessKey
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class CreatedServiceCredential:
    """What ``create_service`` returns: the service and its secret, shown this once."""

    service: Service
    secret: str = field(repr=False)


@dataclass(frozen=True)
class LoginProfile(Entity):
    """That a user may sign in with a password (the password itself is kept only as a hash)."""

    kind: ClassVar[str] = "login_profile"
    account: str
    user: str
    created: str
    password_reset_required: bool = False


@dataclass(frozen=True)
class PasswordPolicy(Entity):
    """An account's password policy, with AWS's options and AWS's defaults.

    With no policy set, AWS asks for 8 characters and three of the four character classes; set
    one to require exactly the classes chosen.
    """

    kind: ClassVar[str] = "password_policy"
    minimum_password_length: int = 8
    require_symbols: bool = False
    require_numbers: bool = False
    require_uppercase_characters: bool = False
    require_lowercase_characters: bool = False
    allow_users_to_change_password: bool = True
    max_password_age: int | None = None  # days, 1-1095
    password_reuse_prevention: int | None = None  # remembered passwords, 1-24
    hard_expiry: bool = False
    is_default: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class AttachedPolicy:
    """A managed policy attached to a user, group or role."""

    policy_name: str
    policy_arn: str


@dataclass(frozen=True)
class MFADevice(Entity):
    """A virtual MFA device: its serial number (an ARN) and, once enabled, whom it is assigned to
    (``user_arn``: an IAM user's ARN, or the account's root ARN with ``user`` None). Its seed is
    never part of it."""

    kind: ClassVar[str] = "mfa_device"
    account: str
    serial_number: str
    created: str
    user: str | None = None
    user_arn: str | None = None
    enable_date: str | None = None


@dataclass(frozen=True)
class CreatedVirtualMFADevice:
    """What ``create_virtual_mfa_device`` returns: the only time the seed is ever shown."""

    device: MFADevice
    base32_string_seed: str = field(repr=False)
    otpauth_uri: str = field(repr=False)
