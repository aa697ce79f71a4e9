"""Groups and memberships: policies attached to a group apply to every member."""

from __future__ import annotations

from iamguard.errors import DeleteConflict, NoSuchEntity
from iamguard.iam.base import Core, check_name, check_path, compound_key
from iamguard.iam.policies import Document, PoliciesAPI, owner_key
from iamguard.model import AttachedPolicy, Group, User
from iamguard.stores.base import Reader, Writer


class GroupsAPI(PoliciesAPI, Core):
    """``create_group``, ``add_user_to_group``, ``remove_user_from_group``, ``delete_group``
    and the group forms of the policy calls."""

    def create_group(self, group_name: str, *, path: str = "/") -> Group:
        """Create a group."""
        check_name(group_name, "group")
        check_path(path)
        arn = self.arn("group", path, group_name)
        self.allow("iam:CreateGroup", arn)

        def create(tx: Writer) -> Group:
            count = tx.count("group", self.account)
            self.under_quota(count, self.quotas.groups, "GroupsPerAccount")
            group = Group(
                account=self.account, name=group_name, path=path,
                group_id=self.unique_id("group"), arn=arn, created=self.now(),
            )  # fmt: skip
            self.insert(tx, "group", group_name, group.to_record())
            return group

        return self.write(create)

    def get_group(self, group_name: str) -> Group:
        """The group, or ``NoSuchEntity`` (its members: ``get_group_users``)."""
        self.allow("iam:GetGroup", self.owner_arn("group", group_name))
        return Group.from_record(self.read(lambda tx: self.need(tx, "group", group_name)))

    def get_group_users(self, group_name: str) -> list[User]:
        """The group's members, by name."""
        self.allow("iam:GetGroup", self.owner_arn("group", group_name))

        def members(tx: Reader) -> list[User]:
            group = self.need(tx, "group", group_name)
            found = tx.find("membership", self.account, ref=group["name"])
            return [User.from_record(self.need(tx, "user", m["user"])) for m in found]

        return self.read(members)

    def list_groups(self, *, path_prefix: str = "/") -> list[Group]:
        """The account's groups, by name."""
        self.allow("iam:ListGroups", "*")
        records = self.read(lambda tx: tx.find("group", self.account))
        return [Group.from_record(r) for r in records if r["path"].startswith(path_prefix)]

    def delete_group(self, group_name: str) -> None:
        """Delete a group; ``DeleteConflict`` while it has members, attached or inline policies."""
        self.allow("iam:DeleteGroup", self.owner_arn("group", group_name))

        def delete(tx: Writer) -> None:
            group = self.need(tx, "group", group_name)
            name = group["name"]
            owner = owner_key("group", name)
            blockers = [
                (tx.count("membership", self.account, ref=name), "remove users from the group"),
                (tx.count("attachment", self.account, parent=owner), "detach all policies"),
                (tx.count("inline_policy", self.account, parent=owner), "delete inline policies"),
            ]
            for present, what in blockers:
                if present:
                    raise DeleteConflict(f"cannot delete group `{name}`: must {what} first")
            tx.delete("group", self.account, name)

        self.write(delete)

    def add_user_to_group(self, group_name: str, user_name: str) -> None:
        """Make a user a member (at most 10 groups per user; again: no change)."""
        self.allow("iam:AddUserToGroup", self.owner_arn("group", group_name))

        def add(tx: Writer) -> None:
            group = self.need(tx, "group", group_name)
            user = self.need(tx, "user", user_name)
            key = compound_key(user["name"], group["name"])
            if tx.get("membership", self.account, key) is not None:
                return
            count = tx.count("membership", self.account, parent=user["name"])
            self.under_quota(count, self.quotas.groups_per_user, "GroupsPerUser")
            record = {"user": user["name"], "group": group["name"]}
            tx.insert("membership", self.account, key, record, parent=user["name"],
                      ref=group["name"])  # fmt: skip

        self.write(add)

    def remove_user_from_group(self, group_name: str, user_name: str) -> None:
        """End a membership; ``NoSuchEntity`` when the user is not a member."""
        self.allow("iam:RemoveUserFromGroup", self.owner_arn("group", group_name))

        def remove(tx: Writer) -> None:
            group = self.need(tx, "group", group_name)
            user = self.need(tx, "user", user_name)
            key = compound_key(user["name"], group["name"])
            if tx.get("membership", self.account, key) is None:
                raise NoSuchEntity(f"user `{user_name}` is not in group `{group_name}`")
            tx.delete("membership", self.account, key)

        self.write(remove)

    # --- the group forms of the policy calls ----------------------------------------------------

    def attach_group_policy(self, group_name: str, policy_arn: str) -> None:
        """Attach a managed policy to a group."""
        self.attach_policy("group", group_name, policy_arn)

    def detach_group_policy(self, group_name: str, policy_arn: str) -> None:
        """Detach a managed policy from a group."""
        self.detach_policy("group", group_name, policy_arn)

    def list_attached_group_policies(self, group_name: str) -> list[AttachedPolicy]:
        """The managed policies attached to a group."""
        return self.attached_policies("group", group_name)

    def put_group_policy(
        self, group_name: str, policy_name: str, policy_document: Document
    ) -> None:
        """Add or replace a group's inline policy (at most 5,120 characters)."""
        self.put_inline_policy("group", group_name, policy_name, policy_document)

    def get_group_policy(self, group_name: str, policy_name: str) -> str:
        """A group's inline policy document."""
        return self.get_inline_policy("group", group_name, policy_name)

    def delete_group_policy(self, group_name: str, policy_name: str) -> None:
        """Delete a group's inline policy."""
        self.delete_inline_policy("group", group_name, policy_name)

    def list_group_policies(self, group_name: str) -> list[str]:
        """The names of a group's inline policies."""
        return self.inline_policy_names("group", group_name)
