"""ARNs and unique identifiers, in AWS's shapes, under a configurable partition."""

from __future__ import annotations

import re
import secrets
from typing import Final, NamedTuple

DEFAULT_PARTITION: Final = "iamguard"

ACCOUNT_ID: Final = re.compile(r"[0-9]{12}")
NAME: Final = re.compile(r"[\w+=,.@-]+", re.ASCII)
PATH: Final = re.compile(r"/(?:[\x21-\x7e]+/)?")

# AWS's unique-id prefixes.
USER_ID_PREFIX: Final = "AIDA"
GROUP_ID_PREFIX: Final = "AGPA"
ROLE_ID_PREFIX: Final = "AROA"
POLICY_ID_PREFIX: Final = "ANPA"
ACCESS_KEY_PREFIX: Final = "AKIA"
SESSION_KEY_PREFIX: Final = "ASIA"
SERVICE_ID_PREFIX: Final = "ASPA"  # service principals (an iamguard notion; AWS owns its services)

_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_KEY_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def unique_id(prefix: str) -> str:
    """A new unique id: the prefix and 17 random characters (21 in all, as AWS's)."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def access_key_id() -> str:
    """A new access key id: ``AKIA`` and 16 random characters."""
    return ACCESS_KEY_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def secret_access_key() -> str:
    """A new 40-character secret access key (about 238 random bits)."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(40))


class Arn(NamedTuple):
    """The six parts of an ARN."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse_arn(text: str) -> Arn | None:
    """The parts of an ARN, or None when ``text`` is not one."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
        return None
    return Arn(*parts[1:])


def iam_arn(partition: str, account: str, kind: str, path: str, name: str) -> str:
    """``arn:P:iam::ACCOUNT:KIND/PATH/NAME`` for a user, group, role or policy."""
    return f"arn:{partition}:iam::{account}:{kind}{path}{name}"


def root_arn(partition: str, account: str) -> str:
    """The ARN of an account's root user."""
    return f"arn:{partition}:iam::{account}:root"


def assumed_role_arn(partition: str, account: str, role: str, session: str) -> str:
    """The ARN of a role session: ``arn:P:sts::ACCOUNT:assumed-role/ROLE/SESSION``."""
    return f"arn:{partition}:sts::{account}:assumed-role/{role}/{session}"
