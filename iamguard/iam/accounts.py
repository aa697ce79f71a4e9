"""Accounts (tenants) and their root users."""

from __future__ import annotations

import re
import secrets
from typing import Final

from iamguard.arn import ACCOUNT_ID
from iamguard.audit import audit
from iamguard.errors import EntityAlreadyExists, InvalidInput, NoSuchEntity
from iamguard.iam.base import Clock, timestamp, utc_now
from iamguard.iam.credentials import DEFAULT_PASSWORD_POLICY
from iamguard.model import Account
from iamguard.passwords import check_password, hash_password
from iamguard.stores.base import KeyExists, Reader, Store, Writer

ROOT_KEY = "root"
INDEX: Final = ""  # the pseudo-account under which every account is listed
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def create_account(
    store: Store, *, email: str, password: str, account_id: str | None = None,
    alias: str | None = None, clock: Clock = utc_now,
) -> Account:  # fmt: skip
    """Create an account and its root user, who signs in with ``email`` and ``password``.

    The root user has full access within its account, and every use of it is audited: keep its
    password for the rare tasks that need it, and give people IAM users instead.
    """
    if account_id is None:
        account_id = "".join(secrets.choice("0123456789") for _ in range(12))
    if not ACCOUNT_ID.fullmatch(account_id):
        raise InvalidInput(f"account id `{account_id}` must be 12 digits")
    if not isinstance(email, str) or not _EMAIL.fullmatch(email):
        raise InvalidInput(f"`{email}` is not an e-mail address")
    check_password(password, DEFAULT_PASSWORD_POLICY, user=email)
    encoded = hash_password(password)
    account = Account(account_id=account_id, root_email=email, created=timestamp(clock()),
                      alias=alias)  # fmt: skip

    def create(tx: Writer) -> Account:
        try:
            tx.insert("account", account_id, account_id, account.to_record())
        except KeyExists:
            raise EntityAlreadyExists(f"account `{account_id}` already exists") from None
        tx.insert("root_login", account_id, ROOT_KEY, {"email": email, "password_hash": encoded})
        tx.insert("account_index", INDEX, account_id, {"account_id": account_id})
        return account

    created = store.write(create)
    audit("account.created", account=account_id)
    return created


def list_accounts(store: Store) -> list[Account]:
    """Every account in the store, by id."""

    def accounts(tx: Reader) -> list[Account]:
        found = tx.find("account_index", INDEX)
        return [Account.from_record(tx.get("account", a["account_id"], a["account_id"]) or {})
                for a in found]  # fmt: skip

    return store.read(accounts)


def get_account(store: Store, account_id: str) -> Account:
    """The account, or ``NoSuchEntity``."""
    data = store.read(lambda tx: tx.get("account", account_id, account_id))
    if data is None:
        raise NoSuchEntity(f"account `{account_id}` cannot be found")
    return Account.from_record(data)
