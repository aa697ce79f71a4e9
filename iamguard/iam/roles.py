"""Roles (assumed under their trust policy, for a session) and service principals."""

from __future__ import annotations

from collections.abc import Iterable

from iamguard.arn import secret_access_key
from iamguard.errors import DeleteConflict, InvalidInput
from iamguard.iam.base import (
    Core,
    check_name,
    check_path,
    check_tags,
    check_text,
    description_character,
    merge_tags,
    policy_text,
)
from iamguard.iam.policies import Document, PoliciesAPI, owner_key
from iamguard.iam.users import Tags
from iamguard.model import AttachedPolicy, CreatedServiceCredential, Role, Service, Tag
from iamguard.passwords import hash_secret
from iamguard.policy.limits import TRUST_POLICY_SIZE
from iamguard.stores.base import Writer

MIN_SESSION_DURATION = 3600
MAX_SESSION_DURATION = 43200


def check_max_session_duration(seconds: object) -> int:
    """A role's maximum session duration: 3,600 to 43,200 seconds."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not (MIN_SESSION_DURATION <= seconds <= MAX_SESSION_DURATION)
    ):
        raise InvalidInput(
            f"max session duration `{seconds}` must be {MIN_SESSION_DURATION}-"
            f"{MAX_SESSION_DURATION} seconds"
        )
    return seconds


class RolesAPI(PoliciesAPI, Core):
    """``create_role``, ``update_assume_role_policy``, ``delete_role``, tags, service principals
    and the role forms of the policy calls."""

    def create_role(
        self, role_name: str, assume_role_policy_document: Document, *, path: str = "/",
        description: str = "", max_session_duration: int = MIN_SESSION_DURATION,
        permissions_boundary: str | None = None, tags: Tags | None = None,
    ) -> Role:  # fmt: skip
        """Create a role; its trust policy names who may assume it."""
        check_name(role_name, "role")
        check_path(path)
        check_max_session_duration(max_session_duration)
        checked_tags = check_tags(tags, self.quotas.tags_per_entity)
        trust = policy_text(assume_role_policy_document, "trust", TRUST_POLICY_SIZE, role_name)
        check_text(description, "role description", 1000, description_character)
        arn = self.arn("role", path, role_name)
        self.allow("iam:CreateRole", arn)

        def create(tx: Writer) -> Role:
            self.under_quota(tx.count("role", self.account), self.quotas.roles, "RolesPerAccount")
            role = Role(
                account=self.account, name=role_name, path=path, role_id=self.unique_id("role"),
                arn=arn, created=self.now(), assume_role_policy=trust, description=description,
                max_session_duration=max_session_duration, tags=checked_tags,
                permissions_boundary=permissions_boundary,
            )  # fmt: skip
            self.insert(tx, "role", role_name, role.to_record())
            if permissions_boundary is not None:
                self.policy_record(tx, permissions_boundary)
                owner = owner_key("role", role_name)
                record = {"owner": owner, "policy_arn": permissions_boundary}
                tx.insert("boundary", self.account, owner, record, ref=permissions_boundary)
            return role

        return self.write(create)

    def get_role(self, role_name: str) -> Role:
        """The role, or ``NoSuchEntity``."""
        self.allow("iam:GetRole", self.owner_arn("role", role_name))
        return Role.from_record(self.read(lambda tx: self.need(tx, "role", role_name)))

    def list_roles(self, *, path_prefix: str = "/") -> list[Role]:
        """The account's roles, by name."""
        self.allow("iam:ListRoles", "*")
        records = self.read(lambda tx: tx.find("role", self.account))
        return [Role.from_record(r) for r in records if r["path"].startswith(path_prefix)]

    def update_role(
        self, role_name: str, *, description: str | None = None,
        max_session_duration: int | None = None,
    ) -> None:  # fmt: skip
        """Change a role's description or maximum session duration."""
        if max_session_duration is not None:
            check_max_session_duration(max_session_duration)
        if description is not None:
            check_text(description, "role description", 1000, description_character)
        self.allow("iam:UpdateRole", self.owner_arn("role", role_name))

        def update(tx: Writer) -> None:
            role = self.need(tx, "role", role_name)
            if description is not None:
                role["description"] = description
            if max_session_duration is not None:
                role["max_session_duration"] = max_session_duration
            tx.update("role", self.account, role["name"], role)

        self.write(update)

    def update_assume_role_policy(self, role_name: str, policy_document: Document) -> None:
        """Replace a role's trust policy."""
        trust = policy_text(policy_document, "trust", TRUST_POLICY_SIZE, role_name)
        self.allow("iam:UpdateAssumeRolePolicy", self.owner_arn("role", role_name))

        def update(tx: Writer) -> None:
            role = self.need(tx, "role", role_name)
            role["assume_role_policy"] = trust
            tx.update("role", self.account, role["name"], role)

        self.write(update)

    def delete_role(self, role_name: str) -> None:
        """Delete a role; ``DeleteConflict`` while it has attached or inline policies."""
        self.allow("iam:DeleteRole", self.owner_arn("role", role_name))

        def delete(tx: Writer) -> None:
            role = self.need(tx, "role", role_name)
            owner = owner_key("role", role["name"])
            blockers = [
                (tx.count("attachment", self.account, parent=owner), "detach all policies"),
                (tx.count("inline_policy", self.account, parent=owner), "delete inline policies"),
            ]
            for present, what in blockers:
                if present:
                    raise DeleteConflict(f"cannot delete role `{role['name']}`: must {what} first")
            tx.delete("boundary", self.account, owner)
            tx.delete("role", self.account, role["name"])

        self.write(delete)

    def tag_role(self, role_name: str, tags: Tags) -> None:
        """Add tags to a role, replacing those with the same keys."""
        new = check_tags(tags, self.quotas.tags_per_entity)
        self.allow("iam:TagRole", self.owner_arn("role", role_name))

        def tag(tx: Writer) -> None:
            role = Role.from_record(self.need(tx, "role", role_name))
            merged = merge_tags(role.tags, new, self.quotas.tags_per_entity)
            tx.update("role", self.account, role.name,
                      {**role.to_record(), "tags": [vars(t) for t in merged]})  # fmt: skip

        self.write(tag)

    def untag_role(self, role_name: str, tag_keys: Iterable[str]) -> None:
        """Remove a role's tags with these keys."""
        keys = {k.lower() for k in tag_keys}
        self.allow("iam:UntagRole", self.owner_arn("role", role_name))

        def untag(tx: Writer) -> None:
            role = Role.from_record(self.need(tx, "role", role_name))
            kept = [vars(t) for t in role.tags if t.key.lower() not in keys]
            tx.update("role", self.account, role.name, {**role.to_record(), "tags": kept})

        self.write(untag)

    def list_role_tags(self, role_name: str) -> list[Tag]:
        """A role's tags."""
        return list(self.get_role(role_name).tags)

    # --- service principals ------------------------------------------------------------------

    def create_service(
        self, service_name: str, *, description: str = ""
    ) -> CreatedServiceCredential:
        """Register a service principal; its secret is returned this once and stored as a hash."""
        check_name(service_name, "service")
        arn = self.arn("service", "/", service_name)
        self.allow("iam:CreateService", arn)
        secret = secret_access_key()

        def create(tx: Writer) -> CreatedServiceCredential:
            count = tx.count("service", self.account)
            self.under_quota(count, self.quotas.services, "ServicesPerAccount")
            service = Service(
                account=self.account, name=service_name, service_id=self.unique_id("service"),
                created=self.now(), description=description,
            )  # fmt: skip
            record = {**service.to_record(), "secret_hash": hash_secret(secret)}
            self.insert(tx, "service", service_name, record)
            return CreatedServiceCredential(service, secret)

        return self.write(create)

    def get_service(self, service_name: str) -> Service:
        """The service principal, or ``NoSuchEntity``."""
        self.allow("iam:GetService", self.arn("service", "/", service_name))
        return Service.from_record(self.read(lambda tx: self.need(tx, "service", service_name)))

    def list_services(self) -> list[Service]:
        """The account's service principals, by name."""
        self.allow("iam:ListServices", "*")
        return [
            Service.from_record(r) for r in self.read(lambda tx: tx.find("service", self.account))
        ]

    def delete_service(self, service_name: str) -> None:
        """Delete a service principal; its credential stops working."""
        self.allow("iam:DeleteService", self.arn("service", "/", service_name))

        def delete(tx: Writer) -> None:
            service = self.need(tx, "service", service_name)
            tx.delete("service", self.account, service["name"])

        self.write(delete)

    # --- the role forms of the policy calls -----------------------------------------------------

    def attach_role_policy(self, role_name: str, policy_arn: str) -> None:
        """Attach a managed policy to a role."""
        self.attach_policy("role", role_name, policy_arn)

    def detach_role_policy(self, role_name: str, policy_arn: str) -> None:
        """Detach a managed policy from a role."""
        self.detach_policy("role", role_name, policy_arn)

    def list_attached_role_policies(self, role_name: str) -> list[AttachedPolicy]:
        """The managed policies attached to a role."""
        return self.attached_policies("role", role_name)

    def put_role_policy(self, role_name: str, policy_name: str, policy_document: Document) -> None:
        """Add or replace a role's inline policy (at most 10,240 characters)."""
        self.put_inline_policy("role", role_name, policy_name, policy_document)

    def get_role_policy(self, role_name: str, policy_name: str) -> str:
        """A role's inline policy document."""
        return self.get_inline_policy("role", role_name, policy_name)

    def delete_role_policy(self, role_name: str, policy_name: str) -> None:
        """Delete a role's inline policy."""
        self.delete_inline_policy("role", role_name, policy_name)

    def list_role_policies(self, role_name: str) -> list[str]:
        """The names of a role's inline policies."""
        return self.inline_policy_names("role", role_name)

    def put_role_permissions_boundary(self, role_name: str, permissions_boundary: str) -> None:
        """Set a role's permissions boundary."""
        self.put_boundary("role", role_name, permissions_boundary)

    def delete_role_permissions_boundary(self, role_name: str) -> None:
        """Remove a role's permissions boundary."""
        self.delete_boundary("role", role_name)
