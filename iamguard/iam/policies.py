"""Managed policies and their versions, inline policies, attachments and permissions boundaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from iamguard.arn import parse_arn
from iamguard.errors import DeleteConflict, LimitExceeded, NoSuchEntity
from iamguard.iam.base import Core, check_name, check_path, compound_key, policy_text
from iamguard.model import AttachedPolicy, ManagedPolicy, PolicyVersion
from iamguard.policy.limits import (
    GROUP_INLINE_POLICY_SIZE,
    MANAGED_POLICY_SIZE,
    ROLE_INLINE_POLICY_SIZE,
    USER_INLINE_POLICY_SIZE,
    check_policy_size,
)
from iamguard.stores.base import Data, Reader, Writer

Document = str | Mapping[str, Any]

INLINE_SIZES: Final = {
    "user": USER_INLINE_POLICY_SIZE,
    "group": GROUP_INLINE_POLICY_SIZE,
    "role": ROLE_INLINE_POLICY_SIZE,
}
ATTACHED_QUOTA_NAMES: Final = {
    "user": "PoliciesPerUser",
    "group": "PoliciesPerGroup",
    "role": "PoliciesPerRole",
}
_ACTION_NAMES: Final = {"user": "User", "group": "Group", "role": "Role"}


def owner_key(kind: str, name: str) -> str:
    """How attachments, inline policies and boundaries name their owner: ``user/ram``."""
    return f"{kind}/{name}"


class PoliciesAPI(Core):
    """Managed policies (``create_policy``, versions, attach/detach), inline policies
    (``put_user_policy`` ...) and permissions boundaries."""

    # --- managed policies ------------------------------------------------------------------

    def policy_record(self, tx: Reader, policy_arn: str) -> Data:
        """The managed policy with this ARN in this account, or ``NoSuchEntity``."""
        arn = parse_arn(policy_arn) if isinstance(policy_arn, str) else None
        name = arn.resource.rsplit("/", 1)[-1] if arn else ""
        data = tx.get("policy", self.account, name) if arn and name else None
        if data is None or data["arn"] != policy_arn:
            raise NoSuchEntity(f"policy `{policy_arn}` cannot be found")
        return data

    def create_policy(
        self, policy_name: str, policy_document: Document, *, path: str = "/",
        description: str = "",
    ) -> ManagedPolicy:  # fmt: skip
        """Create a managed policy; its document becomes version ``v1``, the default."""
        check_name(policy_name, "policy")
        check_path(path)
        text = policy_text(policy_document, "identity", MANAGED_POLICY_SIZE, policy_name)
        arn = self.arn("policy", path, policy_name)
        self.allow("iam:CreatePolicy", arn)

        def create(tx: Writer) -> ManagedPolicy:
            count = tx.count("policy", self.account)
            self.under_quota(count, self.quotas.managed_policies, "PoliciesPerAccount")
            now = self.now()
            policy = ManagedPolicy(
                account=self.account, name=policy_name, path=path,
                policy_id=self.unique_id("policy"), arn=arn, default_version_id="v1",
                created=now, updated=now, description=description,
            )  # fmt: skip
            record = {**policy.to_record(), "next_version": 2}
            self.insert(tx, "policy", policy_name, record, what="policy")
            self._insert_version(tx, policy, "v1", text, now)
            return policy

        return self.write(create)

    def _insert_version(
        self, tx: Writer, policy: ManagedPolicy, version_id: str, text: str, now: str
    ) -> PolicyVersion:
        version = PolicyVersion(
            policy_arn=policy.arn, version_id=version_id, document=text,
            is_default=version_id == policy.default_version_id, created=now,
        )  # fmt: skip
        key = compound_key(policy.name, version_id)
        tx.insert("policy_version", self.account, key, version.to_record(), parent=policy.name)
        return version

    def get_policy(self, policy_arn: str) -> ManagedPolicy:
        """The managed policy (its default version's document: ``get_policy_version``)."""
        self.allow("iam:GetPolicy", policy_arn)
        return ManagedPolicy.from_record(self.read(lambda tx: self.policy_record(tx, policy_arn)))

    def list_policies(self, *, path_prefix: str = "/") -> list[ManagedPolicy]:
        """The account's managed policies, by name."""
        self.allow("iam:ListPolicies", "*")
        records = self.read(lambda tx: tx.find("policy", self.account))
        return [ManagedPolicy.from_record(r) for r in records if r["path"].startswith(path_prefix)]

    def delete_policy(self, policy_arn: str) -> None:
        """Delete a managed policy and all its versions; ``DeleteConflict`` while attached."""
        self.allow("iam:DeletePolicy", policy_arn)

        def delete(tx: Writer) -> None:
            data = self.policy_record(tx, policy_arn)
            if tx.count("attachment", self.account, ref=policy_arn) or tx.count(
                "boundary", self.account, ref=policy_arn
            ):
                raise DeleteConflict(
                    f"cannot delete policy `{policy_arn}`: it is attached to entities"
                )
            if tx.count("policy_version", self.account, parent=data["name"]) > 1:
                raise DeleteConflict(
                    f"cannot delete policy `{policy_arn}`: must delete its non-default "
                    "versions first"
                )
            for version in tx.find("policy_version", self.account, parent=data["name"]):
                key = compound_key(data["name"], version["version_id"])
                tx.delete("policy_version", self.account, key)
            tx.delete("policy", self.account, data["name"])

        self.write(delete)

    def create_policy_version(
        self, policy_arn: str, policy_document: Document, *, set_as_default: bool = False
    ) -> PolicyVersion:
        """Add a version (at most five); ``set_as_default`` makes it the one in force."""
        text = policy_text(policy_document, "identity", MANAGED_POLICY_SIZE, policy_arn)
        self.allow("iam:CreatePolicyVersion", policy_arn)

        def create(tx: Writer) -> PolicyVersion:
            data = self.policy_record(tx, policy_arn)
            count = tx.count("policy_version", self.account, parent=data["name"])
            if count >= self.quotas.versions_per_policy:
                raise LimitExceeded(
                    "cannot exceed quota for PolicyVersionsPerPolicy: "
                    f"{self.quotas.versions_per_policy}"
                )
            version_id = f"v{data['next_version']}"
            now = self.now()
            if set_as_default:
                self._set_default(tx, data, version_id)
            data["next_version"] += 1
            data["updated"] = now
            tx.update("policy", self.account, data["name"], data)
            return self._insert_version(tx, ManagedPolicy.from_record(data), version_id, text, now)

        return self.write(create)

    def _set_default(self, tx: Writer, data: Data, version_id: str) -> None:
        old = compound_key(data["name"], data["default_version_id"])
        previous = tx.get("policy_version", self.account, old)
        if previous is not None:
            previous["is_default"] = False
            tx.update("policy_version", self.account, old, previous)
        data["default_version_id"] = version_id

    def get_policy_version(self, policy_arn: str, version_id: str) -> PolicyVersion:
        """One version of a managed policy, with its document."""
        self.allow("iam:GetPolicyVersion", policy_arn)

        def get(tx: Reader) -> PolicyVersion:
            data = self.policy_record(tx, policy_arn)
            key = compound_key(data["name"], version_id)
            missing = f"policy `{policy_arn}` has no version `{version_id}`"
            return PolicyVersion.from_record(self.need(tx, "policy_version", key, missing))

        return self.read(get)

    def list_policy_versions(self, policy_arn: str) -> list[PolicyVersion]:
        """Every version of a managed policy, oldest first."""
        self.allow("iam:ListPolicyVersions", policy_arn)

        def versions(tx: Reader) -> list[PolicyVersion]:
            data = self.policy_record(tx, policy_arn)
            found = tx.find("policy_version", self.account, parent=data["name"])
            return sorted(
                (PolicyVersion.from_record(v) for v in found), key=lambda v: int(v.version_id[1:])
            )

        return self.read(versions)

    def set_default_policy_version(self, policy_arn: str, version_id: str) -> None:
        """Make ``version_id`` the version in force."""
        self.allow("iam:SetDefaultPolicyVersion", policy_arn)

        def set_default(tx: Writer) -> None:
            data = self.policy_record(tx, policy_arn)
            key = compound_key(data["name"], version_id)
            missing = f"policy `{policy_arn}` has no version `{version_id}`"
            version = self.need(tx, "policy_version", key, missing)
            self._set_default(tx, data, version_id)
            version["is_default"] = True
            data["updated"] = self.now()
            tx.update("policy_version", self.account, key, version)
            tx.update("policy", self.account, data["name"], data)

        self.write(set_default)

    def delete_policy_version(self, policy_arn: str, version_id: str) -> None:
        """Delete a version that is not the default."""
        self.allow("iam:DeletePolicyVersion", policy_arn)

        def delete(tx: Writer) -> None:
            data = self.policy_record(tx, policy_arn)
            key = compound_key(data["name"], version_id)
            self.need(
                tx, "policy_version", key, f"policy `{policy_arn}` has no version `{version_id}`"
            )
            if data["default_version_id"] == version_id:
                raise DeleteConflict("cannot delete the default version of a policy")
            tx.delete("policy_version", self.account, key)

        self.write(delete)

    # --- attachments -----------------------------------------------------------------------

    def attach_policy(self, kind: str, name: str, policy_arn: str) -> None:
        """Attach a managed policy to a user, group or role (again: no change)."""
        self.allow(f"iam:Attach{_ACTION_NAMES[kind]}Policy", self.owner_arn(kind, name))

        def attach(tx: Writer) -> None:
            owner = self.owner(tx, kind, name)
            policy = self.policy_record(tx, policy_arn)
            key = compound_key(owner_key(kind, owner["name"]), policy_arn)
            if tx.get("attachment", self.account, key) is not None:
                return
            count = tx.count("attachment", self.account, parent=owner_key(kind, owner["name"]))
            self.under_quota(count, self.quotas.policies_per_entity, ATTACHED_QUOTA_NAMES[kind])
            record = {"owner": owner_key(kind, owner["name"]), "policy_arn": policy_arn}
            tx.insert("attachment", self.account, key, record,
                      parent=owner_key(kind, owner["name"]), ref=policy_arn)  # fmt: skip
            policy["attachment_count"] += 1
            tx.update("policy", self.account, policy["name"], policy)

        self.write(attach)

    def detach_policy(self, kind: str, name: str, policy_arn: str) -> None:
        """Detach a managed policy; ``NoSuchEntity`` when it is not attached."""
        self.allow(f"iam:Detach{_ACTION_NAMES[kind]}Policy", self.owner_arn(kind, name))

        def detach(tx: Writer) -> None:
            owner = self.owner(tx, kind, name)
            key = compound_key(owner_key(kind, owner["name"]), policy_arn)
            if tx.get("attachment", self.account, key) is None:
                raise NoSuchEntity(f"policy `{policy_arn}` is not attached to {kind} `{name}`")
            tx.delete("attachment", self.account, key)
            policy = tx.get("policy", self.account, policy_arn.rsplit("/", 1)[-1])
            if policy is not None:
                policy["attachment_count"] -= 1
                tx.update("policy", self.account, policy["name"], policy)

        self.write(detach)

    def attached_policies(self, kind: str, name: str) -> list[AttachedPolicy]:
        """The managed policies attached to a user, group or role."""
        self.allow(f"iam:ListAttached{_ACTION_NAMES[kind]}Policies", self.owner_arn(kind, name))

        def attached(tx: Reader) -> list[AttachedPolicy]:
            owner = self.owner(tx, kind, name)
            found = tx.find("attachment", self.account, parent=owner_key(kind, owner["name"]))
            return [
                AttachedPolicy(a["policy_arn"].rsplit("/", 1)[-1], a["policy_arn"]) for a in found
            ]

        return self.read(attached)

    # --- inline policies ---------------------------------------------------------------------

    def put_inline_policy(
        self, kind: str, name: str, policy_name: str, policy_document: Document
    ) -> None:
        """Add or replace an inline policy of a user, group or role."""
        check_name(policy_name, "inline policy")
        quota = INLINE_SIZES[kind]
        text = policy_text(policy_document, "identity", quota, policy_name)
        self.allow(f"iam:Put{_ACTION_NAMES[kind]}Policy", self.owner_arn(kind, name))

        def put(tx: Writer) -> None:
            owner = self.owner(tx, kind, name)
            parent = owner_key(kind, owner["name"])
            key = compound_key(parent, policy_name)
            # AWS's inline size quota is for all of an owner's inline policies together.
            others = [
                p["document"] for p in tx.find("inline_policy", self.account, parent=parent)
                if p["name"].lower() != policy_name.lower()
            ]  # fmt: skip
            check_policy_size("".join([*others, text]), quota)
            record = {"owner": parent, "name": policy_name, "document": text}
            existing = tx.get("inline_policy", self.account, key)
            if existing is None:
                tx.insert("inline_policy", self.account, key, record, parent=parent)
            else:
                record["name"] = existing["name"]
                tx.update("inline_policy", self.account, key, record)

        self.write(put)

    def get_inline_policy(self, kind: str, name: str, policy_name: str) -> str:
        """An inline policy's document (JSON text)."""
        self.allow(f"iam:Get{_ACTION_NAMES[kind]}Policy", self.owner_arn(kind, name))

        def get(tx: Reader) -> str:
            owner = self.owner(tx, kind, name)
            key = compound_key(owner_key(kind, owner["name"]), policy_name)
            record = self.need(
                tx, "inline_policy", key, f"{kind} `{name}` has no inline policy `{policy_name}`"
            )
            return record["document"]  # type: ignore[no-any-return]

        return self.read(get)

    def delete_inline_policy(self, kind: str, name: str, policy_name: str) -> None:
        """Delete an inline policy; ``NoSuchEntity`` when there is none of that name."""
        self.allow(f"iam:Delete{_ACTION_NAMES[kind]}Policy", self.owner_arn(kind, name))

        def delete(tx: Writer) -> None:
            owner = self.owner(tx, kind, name)
            key = compound_key(owner_key(kind, owner["name"]), policy_name)
            self.need(
                tx, "inline_policy", key, f"{kind} `{name}` has no inline policy `{policy_name}`"
            )
            tx.delete("inline_policy", self.account, key)

        self.write(delete)

    def inline_policy_names(self, kind: str, name: str) -> list[str]:
        """The names of a user's, group's or role's inline policies."""
        self.allow(f"iam:List{_ACTION_NAMES[kind]}Policies", self.owner_arn(kind, name))

        def names(tx: Reader) -> list[str]:
            owner = self.owner(tx, kind, name)
            found = tx.find("inline_policy", self.account, parent=owner_key(kind, owner["name"]))
            return [p["name"] for p in found]

        return self.read(names)

    # --- permissions boundaries ----------------------------------------------------------------

    def put_boundary(self, kind: str, name: str, policy_arn: str) -> None:
        """Set a user's or role's permissions boundary (a managed policy)."""
        self.allow(f"iam:Put{_ACTION_NAMES[kind]}PermissionsBoundary", self.owner_arn(kind, name))

        def put(tx: Writer) -> None:
            owner = self.owner(tx, kind, name)
            self.policy_record(tx, policy_arn)
            parent = owner_key(kind, owner["name"])
            tx.delete("boundary", self.account, parent)
            record = {"owner": parent, "policy_arn": policy_arn}
            tx.insert("boundary", self.account, parent, record, ref=policy_arn)
            owner["permissions_boundary"] = policy_arn
            tx.update(kind, self.account, owner["name"], owner)

        self.write(put)

    def delete_boundary(self, kind: str, name: str) -> None:
        """Remove a user's or role's permissions boundary."""
        action = f"iam:Delete{_ACTION_NAMES[kind]}PermissionsBoundary"
        self.allow(action, self.owner_arn(kind, name))

        def delete(tx: Writer) -> None:
            owner = self.owner(tx, kind, name)
            if owner.get("permissions_boundary") is None:
                raise NoSuchEntity(f"{kind} `{name}` has no permissions boundary")
            tx.delete("boundary", self.account, owner_key(kind, owner["name"]))
            owner["permissions_boundary"] = None
            tx.update(kind, self.account, owner["name"], owner)

        self.write(delete)
