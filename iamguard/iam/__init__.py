"""The management API: IAM's operations under IAM's names, errors and quotas.

``IAM(store, account)`` manages one account with full authority (operators, scripts, tests).
``IAM(store, account, caller=ARN, authorizer=...)`` acts as a principal: every operation is
first authorized by the matching ``iam:*`` action on the entity's ARN, so that an ``admins``
group allowed ``iam:*`` means what it means in AWS. Every operation is one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from iamguard.arn import DEFAULT_PARTITION, parse_arn
from iamguard.errors import AccessDenied
from iamguard.iam.accounts import create_account, get_account, list_accounts
from iamguard.iam.base import Clock, Quotas, utc_now
from iamguard.iam.credentials import CredentialsAPI
from iamguard.iam.groups import GroupsAPI
from iamguard.iam.mfa import MFAAPI
from iamguard.iam.roles import RolesAPI
from iamguard.iam.users import UsersAPI
from iamguard.stores.base import Store

if TYPE_CHECKING:
    from iamguard.authorizer import Authorizer

__all__ = ["IAM", "Quotas", "create_account", "get_account", "list_accounts"]


class IAM(UsersAPI, GroupsAPI, RolesAPI, CredentialsAPI, MFAAPI):
    """IAM's operations for one existing account (``NoSuchEntity`` otherwise). See the module
    docstring."""

    def __init__(
        self,
        store: Store,
        account: str,
        *,
        partition: str = DEFAULT_PARTITION,
        quotas: Quotas | None = None,
        clock: Clock = utc_now,
        caller: str | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        check = None
        if caller is not None:
            if authorizer is None:
                raise TypeError("acting as a caller needs an authorizer")

            caller_arn = parse_arn(caller)
            same_account = caller_arn is not None and caller_arn.account == account

            def check(action: str, resource: str) -> None:
                if not same_account:  # another account's IAM is never theirs to manage
                    raise AccessDenied(
                        f"User: {caller} is not authorized to perform: {action} on resource: "
                        f"{resource} because no resource-based policy allows the {action} action"
                    )
                decision = authorizer.authorize(caller, action, resource)
                if not decision.allowed:
                    raise AccessDenied(decision.message())

        get_account(store, account)  # NoSuchEntity: calls never write into an account not made
        super().__init__(
            store, account, partition=partition, quotas=quotas or Quotas(), clock=clock,
            check=check,
        )  # fmt: skip
