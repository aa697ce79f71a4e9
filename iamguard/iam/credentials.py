"""Long-term credentials: passwords (login profiles), access keys, the account password policy."""

from __future__ import annotations

from dataclasses import fields

from iamguard.arn import access_key_id, secret_access_key
from iamguard.errors import InvalidInput, NoSuchEntity, PasswordPolicyViolation
from iamguard.iam.base import Core
from iamguard.model import AccessKey, CreatedAccessKey, LoginProfile, PasswordPolicy
from iamguard.passwords import check_password, hash_password, hash_secret, verify_password
from iamguard.stores.base import Reader, Writer

ACCESS_KEY_STATUSES = ("Active", "Inactive")
DEFAULT_PASSWORD_POLICY = PasswordPolicy(is_default=True)
POLICY_KEY = "password-policy"


class CredentialsAPI(Core):
    """``create_login_profile``, ``create_access_key``, ``update_access_key``, the password
    policy, and the checks sign-in uses."""

    # --- the account password policy -------------------------------------------------------

    def password_policy(self, tx: Reader) -> PasswordPolicy:
        data = tx.get("password_policy", self.account, POLICY_KEY)
        return DEFAULT_PASSWORD_POLICY if data is None else PasswordPolicy.from_record(data)

    def get_account_password_policy(self) -> PasswordPolicy:
        """The account's password policy (AWS's default when none is set: ``is_default``)."""
        self.allow("iam:GetAccountPasswordPolicy", "*")
        return self.read(self.password_policy)

    def update_account_password_policy(self, **options: object) -> PasswordPolicy:
        """Set the password policy; options are ``PasswordPolicy``'s fields (AWS's names)."""
        types = {f.name: f.type for f in fields(PasswordPolicy) if f.name != "is_default"}
        unknown = set(options) - set(types)
        if unknown:
            raise InvalidInput(f"unknown password policy option `{sorted(unknown)[0]}`")
        for name, value in options.items():
            wanted = bool if "bool" in str(types[name]) else int
            optional = "None" in str(types[name])
            if not (type(value) is wanted or (optional and value is None)):
                raise InvalidInput(f"password policy option `{name}` must be {wanted.__name__}")
        policy = PasswordPolicy(**options)  # type: ignore[arg-type]
        _check_policy_ranges(policy)
        self.allow("iam:UpdateAccountPasswordPolicy", "*")

        def update(tx: Writer) -> PasswordPolicy:
            tx.delete("password_policy", self.account, POLICY_KEY)
            tx.insert("password_policy", self.account, POLICY_KEY, policy.to_record())
            return policy

        return self.write(update)

    def delete_account_password_policy(self) -> None:
        """Go back to AWS's default password policy."""
        self.allow("iam:DeleteAccountPasswordPolicy", "*")

        def delete(tx: Writer) -> None:
            if tx.get("password_policy", self.account, POLICY_KEY) is None:
                raise NoSuchEntity("the account has no password policy")
            tx.delete("password_policy", self.account, POLICY_KEY)

        self.write(delete)

    # --- login profiles (passwords) ----------------------------------------------------------

    def create_login_profile(
        self, user_name: str, password: str, *, password_reset_required: bool = False
    ) -> LoginProfile:
        """Give a user a password for interactive sign-in (stored as an argon2id hash)."""
        self.allow("iam:CreateLoginProfile", self.owner_arn("user", user_name))
        self.read(lambda tx: self.need(tx, "user", user_name))  # before the costly hash
        policy = self.read(self.password_policy)
        check_password(password, policy, user=user_name)
        encoded = hash_password(password)

        def create(tx: Writer) -> LoginProfile:
            user = self.need(tx, "user", user_name)
            profile = LoginProfile(
                account=self.account, user=user["name"], created=self.now(),
                password_reset_required=password_reset_required,
            )  # fmt: skip
            record = {**profile.to_record(), "password_hash": encoded, "password_set": self.now()}
            self.insert(tx, "login_profile", user["name"], record, what="login profile")
            self._remember_password(tx, user["name"], encoded)
            return profile

        return self.write(create)

    def get_login_profile(self, user_name: str) -> LoginProfile:
        """The user's login profile, or ``NoSuchEntity`` when it has no password."""
        self.allow("iam:GetLoginProfile", self.owner_arn("user", user_name))
        return LoginProfile.from_record(
            self.read(
                lambda tx: self.need(
                    tx, "login_profile", user_name, f"login profile `{user_name}` cannot be found"
                )
            )
        )

    def update_login_profile(
        self, user_name: str, *, password: str | None = None,
        password_reset_required: bool | None = None,
    ) -> None:  # fmt: skip
        """Change a user's password (checked against the policy and its reuse rule)."""
        self.allow("iam:UpdateLoginProfile", self.owner_arn("user", user_name))
        policy = self.read(self.password_policy)
        if password is not None:
            check_password(password, policy, user=user_name)
        encoded = None if password is None else hash_password(password)

        def update(tx: Writer) -> None:
            record = self.need(
                tx, "login_profile", user_name, f"login profile `{user_name}` cannot be found"
            )
            if password is not None and encoded is not None:
                self._refuse_reuse(tx, record["user"], password, policy)
                record["password_hash"] = encoded
                record["password_set"] = self.now()
                self._remember_password(tx, record["user"], encoded)
            if password_reset_required is not None:
                record["password_reset_required"] = password_reset_required
            tx.update("login_profile", self.account, record["user"], record)

        self.write(update)

    def delete_login_profile(self, user_name: str) -> None:
        """Take a user's password away: it can no longer sign in with one."""
        self.allow("iam:DeleteLoginProfile", self.owner_arn("user", user_name))

        def delete(tx: Writer) -> None:
            record = self.need(
                tx, "login_profile", user_name, f"login profile `{user_name}` cannot be found"
            )
            tx.delete("login_profile", self.account, record["user"])

        self.write(delete)

    def _remember_password(self, tx: Writer, user: str, encoded: str) -> None:
        history = tx.get("password_history", self.account, user)
        hashes = ([] if history is None else history["hashes"]) + [encoded]
        record = {"user": user, "hashes": hashes[-24:]}  # AWS remembers at most 24
        if history is None:
            tx.insert("password_history", self.account, user, record, parent=user)
        else:
            tx.update("password_history", self.account, user, record)

    def _refuse_reuse(self, tx: Reader, user: str, password: str, policy: PasswordPolicy) -> None:
        remembered = policy.password_reuse_prevention
        history = tx.get("password_history", self.account, user)
        if not remembered or history is None:
            return
        if any(verify_password(h, password) for h in history["hashes"][-remembered:]):
            raise PasswordPolicyViolation(
                f"password was used recently: the account policy forbids reusing the last "
                f"{remembered}"
            )

    # --- access keys ---------------------------------------------------------------------------

    def create_access_key(self, user_name: str) -> CreatedAccessKey:
        """A new access key (at most two per user); its secret is in the result, this once."""
        self.allow("iam:CreateAccessKey", self.owner_arn("user", user_name))
        secret = secret_access_key()

        def create(tx: Writer) -> CreatedAccessKey:
            user = self.need(tx, "user", user_name)
            count = tx.count("access_key", self.account, parent=user["name"])
            self.under_quota(count, self.quotas.access_keys_per_user, "AccessKeysPerUser")
            key = AccessKey(
                account=self.account, user=user["name"], access_key_id=access_key_id(),
                status="Active", created=self.now(),
            )  # fmt: skip
            record = {**key.to_record(), "secret_hash": hash_secret(secret)}
            tx.insert("access_key", self.account, key.access_key_id, record, parent=user["name"])
            return CreatedAccessKey(key, secret)

        return self.write(create)

    def _user_key(self, tx: Reader, user_name: str, key_id: str) -> dict[str, object]:
        user = self.need(tx, "user", user_name)
        record = tx.get("access_key", self.account, key_id)
        if record is None or str(record["user"]).lower() != str(user["name"]).lower():
            raise NoSuchEntity(f"access key `{key_id}` of user `{user_name}` cannot be found")
        return record

    def update_access_key(self, user_name: str, access_key_id: str, status: str) -> None:
        """Make a key ``Active`` or ``Inactive`` (an inactive key cannot sign in)."""
        if status not in ACCESS_KEY_STATUSES:
            raise InvalidInput(f"status `{status}` must be `Active` or `Inactive`")
        self.allow("iam:UpdateAccessKey", self.owner_arn("user", user_name))

        def update(tx: Writer) -> None:
            record = self._user_key(tx, user_name, access_key_id)
            record["status"] = status
            tx.update("access_key", self.account, access_key_id, record)

        self.write(update)

    def delete_access_key(self, user_name: str, access_key_id: str) -> None:
        """Delete a key: it can never sign in again."""
        self.allow("iam:DeleteAccessKey", self.owner_arn("user", user_name))

        def delete(tx: Writer) -> None:
            self._user_key(tx, user_name, access_key_id)
            tx.delete("access_key", self.account, access_key_id)

        self.write(delete)

    def list_access_keys(self, user_name: str) -> list[AccessKey]:
        """A user's access keys (never their secrets)."""
        self.allow("iam:ListAccessKeys", self.owner_arn("user", user_name))

        def keys(tx: Reader) -> list[AccessKey]:
            user = self.need(tx, "user", user_name)
            found = tx.find("access_key", self.account, parent=user["name"])
            return [AccessKey.from_record(k) for k in found]

        return self.read(keys)


def _check_policy_ranges(policy: PasswordPolicy) -> None:
    if not 6 <= policy.minimum_password_length <= 128:
        raise InvalidInput("minimum_password_length must be 6-128")
    if policy.max_password_age is not None and not 1 <= policy.max_password_age <= 1095:
        raise InvalidInput("max_password_age must be 1-1095 days")
    if policy.password_reuse_prevention is not None and not (
        1 <= policy.password_reuse_prevention <= 24
    ):
        raise InvalidInput("password_reuse_prevention must be 1-24")


def _no_profile(user_name: str) -> str:
    return f"login profile `{user_name}` cannot be found"
