"""What every area of the management API shares: validation, quotas, time, the caller's check,
and the record keys entities are stored under."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, TypeVar

from iamguard.arn import (
    ACCESS_KEY_PREFIX,
    GROUP_ID_PREFIX,
    NAME,
    PATH,
    POLICY_ID_PREFIX,
    ROLE_ID_PREFIX,
    SERVICE_ID_PREFIX,
    USER_ID_PREFIX,
    iam_arn,
    unique_id,
)
from iamguard.errors import (
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
)
from iamguard.model import Entity, Tag
from iamguard.policy import Policy
from iamguard.policy.limits import check_policy_characters, check_policy_size
from iamguard.stores.base import Data, KeyExists, Reader, Store, Writer

T = TypeVar("T")
E = TypeVar("E", bound=Entity)
Clock = Callable[[], datetime]
Check = Callable[[str, str], None]  # (action, resource ARN) -> None, or raise AccessDenied


@dataclass(frozen=True)
class Quotas:
    """IAM's quotas, AWS's defaults; raise them for large models."""

    users: int = 5000
    groups: int = 300
    roles: int = 1000
    services: int = 1000
    managed_policies: int = 1500
    groups_per_user: int = 10
    policies_per_entity: int = 10  # managed policies attached to one user, group or role
    access_keys_per_user: int = 2
    versions_per_policy: int = 5
    tags_per_entity: int = 50


# Name lengths, by what is named (AWS's).
NAME_LENGTHS: Final = {
    "user": 64, "group": 128, "role": 64, "policy": 128, "inline policy": 128, "service": 64,
}  # fmt: skip
MAX_PATH: Final = 512
ID_PREFIXES: Final = {
    "user": USER_ID_PREFIX, "group": GROUP_ID_PREFIX, "role": ROLE_ID_PREFIX,
    "policy": POLICY_ID_PREFIX, "service": SERVICE_ID_PREFIX, "access_key": ACCESS_KEY_PREFIX,
}  # fmt: skip
SEPARATOR: Final = " "  # joins names in compound record keys; never part of a name or a path
OWNER_KINDS: Final = ("user", "group", "role")  # what policies attach to


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    """A stored time: ISO 8601 in UTC, to the second, ``Z``-suffixed, as AWS writes it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_name(value: Any, what: str) -> str:
    """An entity name per AWS: 1 to N characters of letters, digits and ``+=,.@_-``."""
    limit = NAME_LENGTHS[what]
    if not isinstance(value, str) or not NAME.fullmatch(value) or len(value) > limit:
        raise InvalidInput(
            f"{what} name `{value}` must be 1-{limit} letters, digits or any of `+=,.@_-`"
        )
    return value


def check_path(value: Any) -> str:
    """A path per AWS: ``/`` or ``/a/b/``, printable ASCII, at most 512 characters."""
    if not isinstance(value, str) or not PATH.fullmatch(value) or len(value) > MAX_PATH:
        raise InvalidInput(
            f"path `{value}` must begin and end with `/`, hold printable ASCII without spaces "
            f"and be at most {MAX_PATH} characters"
        )
    return value


def check_tags(tags: Iterable[Tag | Mapping[str, str]] | None, limit: int) -> tuple[Tag, ...]:
    """Tags per AWS: keys 1-128 characters, unique (any letter case), values up to 256, no
    ``aws:`` prefix, at most ``limit``."""
    result: list[Tag] = []
    seen: set[str] = set()
    for raw in tags or ():
        tag = raw if isinstance(raw, Tag) else Tag(raw.get("Key", ""), raw.get("Value", ""))
        if not isinstance(tag.key, str) or not 1 <= len(tag.key) <= 128:
            raise InvalidInput(f"tag key `{tag.key}` must be 1-128 characters")
        if not isinstance(tag.value, str) or len(tag.value) > 256:
            raise InvalidInput(f"tag `{tag.key}`: value must be at most 256 characters")
        check_text(tag.key, f"tag key `{tag.key}`", 128, tag_character)
        check_text(tag.value, f"tag `{tag.key}`: value", 256, tag_character)
        if tag.key.lower().startswith("aws:"):
            raise InvalidInput(f"tag key `{tag.key}`: the prefix `aws:` is reserved")
        if tag.key.lower() in seen:
            raise InvalidInput(f"tag key `{tag.key}` is given twice")
        seen.add(tag.key.lower())
        result.append(tag)
    if len(result) > limit:
        raise LimitExceeded(f"cannot exceed quota for TagsPerEntity: {limit}")
    return tuple(result)


def merge_tags(old: Iterable[Tag], new: Iterable[Tag], limit: int) -> tuple[Tag, ...]:
    """``old`` with ``new`` added or replacing same-key tags (keys compared in any case)."""
    merged = {t.key.lower(): t for t in old}
    merged.update((t.key.lower(), t) for t in new)
    if len(merged) > limit:
        raise LimitExceeded(f"cannot exceed quota for TagsPerEntity: {limit}")
    return tuple(merged.values())


def policy_text(
    document: str | Mapping[str, Any], kind: str, quota: tuple[str, int], name: str
) -> str:
    """A policy document as stored: validated (grammar, characters, size) and as JSON text.

    Errors name the policy (``name``), as in ``policy `ReadOrders`: Statement[2]...``."""
    text = document if isinstance(document, str) else json.dumps(document)
    try:
        check_policy_characters(text)
        parsed = Policy.parse(text, kind)
        check_policy_characters(parsed.text)  # the document's own characters, unescaped
    except MalformedPolicyDocument as e:
        raise MalformedPolicyDocument(e.problems, name) from None
    check_policy_size(text, quota)
    return text


def check_text(value: Any, what: str, limit: int, allowed: Callable[[str], bool]) -> str:
    """A free-text field: a string of at most ``limit`` characters, each ``allowed``."""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{what} must be a string of at most {limit} characters")
    bad = next((ch for ch in value if not allowed(ch)), None)
    if bad is not None:
        raise InvalidInput(f"{what}: character U+{ord(bad):04X} is not allowed")
    return value


def tag_character(ch: str) -> bool:
    """AWS's tag characters: letters and digits of any script, spaces, and `_.:/=+-@`."""
    return ch.isalnum() or ch == " " or ch in "_.:/=+-@"


def description_character(ch: str) -> bool:
    """AWS's description characters: tab, line breaks, printable ASCII and U+00A1-U+00FF."""
    return ch in "\t\n\r" or " " <= ch <= "~" or "\xa1" <= ch <= "\xff"


def compound_key(*parts: str) -> str:
    """A record key built from names: ``"user/ram developers"``."""
    return SEPARATOR.join(parts)


class Core:
    """State and helpers shared by every area of the management API (see ``IAM``)."""

    def __init__(
        self,
        store: Store,
        account: str,
        *,
        partition: str,
        quotas: Quotas,
        clock: Clock,
        check: Check | None,
    ) -> None:
        self.store = store
        self.account = account
        self.partition = partition
        self.quotas = quotas
        self.clock = clock
        self._check = check

    @property
    def checks(self) -> bool:
        """Are calls checked against a caller's permissions?"""
        return self._check is not None

    def now(self) -> str:
        return timestamp(self.clock())

    def unique_id(self, kind: str) -> str:
        """A new unique id with AWS's prefix for ``kind``."""
        return unique_id(ID_PREFIXES[kind])

    def arn(self, kind: str, path: str, name: str) -> str:
        return iam_arn(self.partition, self.account, kind, path, name)

    def allow(self, action: str, resource: str) -> None:
        """When called as a principal: raise ``AccessDenied`` unless it may do ``action``."""
        if self._check is not None:
            self._check(action, resource)

    # --- reading and writing records -------------------------------------------------------

    def read(self, fn: Callable[[Reader], T]) -> T:
        return self.store.read(fn)

    def write(self, fn: Callable[[Writer], T]) -> T:
        return self.store.write(fn)

    def need(self, tx: Reader, kind: str, key: str, missing: str | None = None) -> Data:
        """The record, or ``NoSuchEntity`` saying ``missing`` (default: ``KIND `KEY` cannot be
        found``)."""
        data = tx.get(kind, self.account, key)
        if data is None:
            raise NoSuchEntity(missing or f"{kind} `{key}` cannot be found")
        return data

    def insert(
        self, tx: Writer, kind: str, key: str, data: Data, *, what: str | None = None,
        parent: str | None = None, ref: str | None = None,
    ) -> None:  # fmt: skip
        """Insert a record; ``EntityAlreadyExists`` when the key exists in any letter case."""
        try:
            tx.insert(kind, self.account, key, data, parent=parent, ref=ref)
        except KeyExists:
            raise EntityAlreadyExists(f"{what or kind} `{key}` already exists") from None

    def under_quota(self, count: int, limit: int, name: str) -> None:
        """Raise ``LimitExceeded`` when one more would exceed ``limit``."""
        if count >= limit:
            raise LimitExceeded(f"cannot exceed quota for {name}: {limit}")

    # --- owners ----------------------------------------------------------------------------

    def owner(self, tx: Reader, kind: str, name: str) -> Data:
        """The user, group or role that policies are attached to."""
        if kind not in OWNER_KINDS:
            raise InvalidInput(f"`{kind}` is not user, group or role")
        return self.need(tx, kind, name)

    def owner_arn(self, kind: str, name: str) -> str:
        """The ARN a caller's permission to change ``name`` is checked against.

        Its path is not known before the entity is read, so the ARN is read first; an entity
        that does not exist is named with the root path (the call then fails as NoSuchEntity).
        """
        data = self.read(lambda tx: tx.get(kind, self.account, name)) if self.checks else None
        path = data["path"] if data else "/"
        return self.arn(kind, path, data["name"] if data else name)
