"""IAM users: create, read, list, tag, delete (as AWS: only once nothing hangs off them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from iamguard.errors import DeleteConflict
from iamguard.iam.base import Core, check_name, check_path, check_tags, merge_tags
from iamguard.iam.policies import Document, PoliciesAPI, owner_key
from iamguard.model import AttachedPolicy, Tag, User
from iamguard.stores.base import Reader, Writer

Tags = Iterable[Tag | Mapping[str, str]]


class UsersAPI(PoliciesAPI, Core):
    """``create_user``, ``get_user``, ``list_users``, ``delete_user``, tags, and the user forms
    of the policy calls (``attach_user_policy``, ``put_user_policy``, boundaries)."""

    def create_user(
        self, user_name: str, *, path: str = "/", permissions_boundary: str | None = None,
        tags: Tags | None = None,
    ) -> User:  # fmt: skip
        """Create a user. It has no credentials and no permissions until given some."""
        check_name(user_name, "user")
        check_path(path)
        checked_tags = check_tags(tags, self.quotas.tags_per_entity)
        arn = self.arn("user", path, user_name)
        self.allow("iam:CreateUser", arn)

        def create(tx: Writer) -> User:
            self.under_quota(tx.count("user", self.account), self.quotas.users, "UsersPerAccount")
            user = User(
                account=self.account, name=user_name, path=path, user_id=self.unique_id("user"),
                arn=arn, created=self.now(), tags=checked_tags,
                permissions_boundary=permissions_boundary,
            )  # fmt: skip
            self.insert(tx, "user", user_name, user.to_record())
            if permissions_boundary is not None:
                self.policy_record(tx, permissions_boundary)
                record = {"owner": owner_key("user", user_name), "policy_arn": permissions_boundary}
                tx.insert("boundary", self.account, owner_key("user", user_name), record,
                          ref=permissions_boundary)  # fmt: skip
            return user

        return self.write(create)

    def get_user(self, user_name: str) -> User:
        """The user, or ``NoSuchEntity``."""
        self.allow("iam:GetUser", self.owner_arn("user", user_name))
        return User.from_record(self.read(lambda tx: self.need(tx, "user", user_name)))

    def list_users(self, *, path_prefix: str = "/") -> list[User]:
        """The account's users whose path starts with ``path_prefix``, by name."""
        self.allow("iam:ListUsers", "*")
        records = self.read(lambda tx: tx.find("user", self.account))
        return [User.from_record(r) for r in records if r["path"].startswith(path_prefix)]

    def delete_user(self, user_name: str) -> None:
        """Delete a user; ``DeleteConflict`` while it has a password, access keys, group
        memberships, attached or inline policies. Its permissions boundary goes with it."""
        self.allow("iam:DeleteUser", self.owner_arn("user", user_name))

        def delete(tx: Writer) -> None:
            user = self.need(tx, "user", user_name)
            name = user["name"]
            owner = owner_key("user", name)
            blockers = [
                (tx.get("login_profile", self.account, name), "delete the login profile"),
                (tx.count("access_key", self.account, parent=name), "delete access keys"),
                (tx.count("membership", self.account, parent=name), "leave every group"),
                (tx.count("attachment", self.account, parent=owner), "detach all policies"),
                (tx.count("inline_policy", self.account, parent=owner), "delete inline policies"),
                (tx.count("mfa_device", self.account, parent=name), "delete MFA devices"),
            ]
            for present, what in blockers:
                if present:
                    raise DeleteConflict(f"cannot delete user `{name}`: must {what} first")
            tx.delete("boundary", self.account, owner)
            tx.delete("password_history", self.account, name)
            tx.delete("user", self.account, name)

        self.write(delete)

    def tag_user(self, user_name: str, tags: Tags) -> None:
        """Add tags, replacing those with the same keys."""
        new = check_tags(tags, self.quotas.tags_per_entity)
        self.allow("iam:TagUser", self.owner_arn("user", user_name))

        def tag(tx: Writer) -> None:
            user = User.from_record(self.need(tx, "user", user_name))
            merged = merge_tags(user.tags, new, self.quotas.tags_per_entity)
            record = {**user.to_record(), "tags": [vars(t) for t in merged]}
            tx.update("user", self.account, user.name, record)

        self.write(tag)

    def untag_user(self, user_name: str, tag_keys: Iterable[str]) -> None:
        """Remove the tags with these keys (any letter case)."""
        keys = {k.lower() for k in tag_keys}
        self.allow("iam:UntagUser", self.owner_arn("user", user_name))

        def untag(tx: Writer) -> None:
            user = User.from_record(self.need(tx, "user", user_name))
            kept = [vars(t) for t in user.tags if t.key.lower() not in keys]
            tx.update("user", self.account, user.name, {**user.to_record(), "tags": kept})

        self.write(untag)

    def list_user_tags(self, user_name: str) -> list[Tag]:
        """The user's tags."""
        return list(self.get_user(user_name).tags)

    def list_groups_for_user(self, user_name: str) -> list[str]:
        """The names of the groups the user is in."""
        self.allow("iam:ListGroupsForUser", self.owner_arn("user", user_name))

        def groups(tx: Reader) -> list[str]:
            user = self.need(tx, "user", user_name)
            return [m["group"] for m in tx.find("membership", self.account, parent=user["name"])]

        return self.read(groups)

    # --- the user forms of the policy calls ---------------------------------------------------

    def attach_user_policy(self, user_name: str, policy_arn: str) -> None:
        """Attach a managed policy to a user."""
        self.attach_policy("user", user_name, policy_arn)

    def detach_user_policy(self, user_name: str, policy_arn: str) -> None:
        """Detach a managed policy from a user."""
        self.detach_policy("user", user_name, policy_arn)

    def list_attached_user_policies(self, user_name: str) -> list[AttachedPolicy]:
        """The managed policies attached to a user."""
        return self.attached_policies("user", user_name)

    def put_user_policy(self, user_name: str, policy_name: str, policy_document: Document) -> None:
        """Add or replace a user's inline policy (at most 2,048 characters)."""
        self.put_inline_policy("user", user_name, policy_name, policy_document)

    def get_user_policy(self, user_name: str, policy_name: str) -> str:
        """A user's inline policy document."""
        return self.get_inline_policy("user", user_name, policy_name)

    def delete_user_policy(self, user_name: str, policy_name: str) -> None:
        """Delete a user's inline policy."""
        self.delete_inline_policy("user", user_name, policy_name)

    def list_user_policies(self, user_name: str) -> list[str]:
        """The names of a user's inline policies."""
        return self.inline_policy_names("user", user_name)

    def put_user_permissions_boundary(self, user_name: str, permissions_boundary: str) -> None:
        """Set a user's permissions boundary."""
        self.put_boundary("user", user_name, permissions_boundary)

    def delete_user_permissions_boundary(self, user_name: str) -> None:
        """Remove a user's permissions boundary."""
        self.delete_boundary("user", user_name)
