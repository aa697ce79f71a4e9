"""Virtual MFA devices (TOTP, RFC 6238): create, enable with two consecutive codes, deactivate,
delete, list, and the code check sign-in uses.

A device is one ``mfa_device`` record keyed by its name, whose ``parent`` is its owner: the IAM
user's name, or ``ROOT_OWNER`` for the account's root user (a value no user name can take).
Its seed cannot be hashed, since codes are computed from it: it lives in an ``mfa_seed`` record
of its own, with the last time step accepted from the device, and leaves the store only in the
result of ``create_virtual_mfa_device``. A code is accepted once: one for a time step at or
before the last accepted step is refused, so that an observed code cannot be replayed.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from typing import Final

import pyotp

from iamguard.arn import NAME, parse_arn, root_arn
from iamguard.audit import audit
from iamguard.errors import DeleteConflict, EntityAlreadyExists, InvalidInput, NoSuchEntity
from iamguard.iam.base import Core, check_path
from iamguard.model import CreatedVirtualMFADevice, MFADevice
from iamguard.stores.base import Data, Reader, Writer

ROOT_OWNER: Final = ":root"  # the owner of root's devices: `:` is never part of a user name
DEVICES_PER_USER: Final = 8  # AWS's quota, root included
MAX_DEVICE_NAME: Final = 226  # AWS's
DRIFT: Final = 1  # time steps of clock drift allowed either way
ISSUER: Final = "iamguard"
ASSIGNMENT_STATUSES: Final = ("Any", "Assigned", "Unassigned")
_CODE: Final = re.compile(r"[0-9]{6}")


class MFAAPI(Core):
    """``create_virtual_mfa_device``, ``enable_mfa_device``, ``deactivate_mfa_device``,
    ``delete_virtual_mfa_device``, the list calls, their root forms, and ``check_mfa_code``."""

    # --- virtual devices ---------------------------------------------------------------------

    def create_virtual_mfa_device(
        self, virtual_mfa_device_name: str, *, path: str = "/"
    ) -> CreatedVirtualMFADevice:
        """A new virtual device; its seed (and an ``otpauth://`` URI for a QR code) is in the
        result, this once."""
        name = virtual_mfa_device_name
        if not isinstance(name, str) or not NAME.fullmatch(name) or len(name) > MAX_DEVICE_NAME:
            raise InvalidInput(
                f"MFA device name `{name}` must be 1-{MAX_DEVICE_NAME} letters, digits or any "
                f"of `+=,.@_-`"
            )
        check_path(path)
        serial = self.arn("mfa", path, name)
        self.allow("iam:CreateVirtualMFADevice", serial)
        seed = pyotp.random_base32(32)  # 160 bits, from `secrets`
        uri = pyotp.TOTP(seed).provisioning_uri(name=f"{name}@{self.account}", issuer_name=ISSUER)

        def create(tx: Writer) -> MFADevice:
            device = MFADevice(account=self.account, serial_number=serial, created=self.now())
            record = {**device.to_record(), "name": name, "owner": None}
            self.insert(tx, "mfa_device", name, record, what="MFA device")
            secret = {"serial_number": serial, "seed": seed, "last_step": None}
            tx.insert("mfa_seed", self.account, name, secret)
            return device

        return CreatedVirtualMFADevice(self.write(create), seed, uri)

    def delete_virtual_mfa_device(self, serial_number: str) -> None:
        """Delete a device and its seed; ``DeleteConflict`` while it is assigned."""
        self.allow("iam:DeleteVirtualMFADevice", serial_number)

        def delete(tx: Writer) -> None:
            device = self._need_device(tx, serial_number)
            if device["owner"] is not None:
                raise DeleteConflict(
                    f"cannot delete MFA device `{serial_number}`: must deactivate it first"
                )
            tx.delete("mfa_device", self.account, device["name"])
            tx.delete("mfa_seed", self.account, device["name"])

        self.write(delete)

    def list_virtual_mfa_devices(self, *, assignment_status: str = "Any") -> list[MFADevice]:
        """The account's virtual devices, by name: ``Any``, ``Assigned`` or ``Unassigned``."""
        if assignment_status not in ASSIGNMENT_STATUSES:
            raise InvalidInput(
                f"assignment status `{assignment_status}` must be `Any`, `Assigned` or `Unassigned`"
            )
        self.allow("iam:ListVirtualMFADevices", "*")
        records = self.read(lambda tx: tx.find("mfa_device", self.account))
        assigned = assignment_status == "Assigned"
        return [
            MFADevice.from_record(r)
            for r in records
            if assignment_status == "Any" or (r["owner"] is not None) == assigned
        ]

    # --- assignment --------------------------------------------------------------------------

    def enable_mfa_device(
        self, user_name: str, serial_number: str, authentication_code_1: str,
        authentication_code_2: str,
    ) -> MFADevice:  # fmt: skip
        """Assign a device to a user, proven by two consecutive codes from it."""
        self.allow("iam:EnableMFADevice", self.owner_arn("user", user_name))
        codes = _codes(authentication_code_1, authentication_code_2)
        moment = self.clock()

        def enable(tx: Writer) -> MFADevice:
            user = self.need(tx, "user", user_name)
            assignee = {"user": user["name"], "user_arn": user["arn"]}
            return self._enable(
                tx, serial_number, codes, moment, owner=user["name"], assignee=assignee
            )

        device = self.write(enable)
        audit("mfa.enabled", account=self.account, user=device.user, serial=serial_number)
        return device

    def enable_root_mfa_device(
        self, serial_number: str, authentication_code_1: str, authentication_code_2: str
    ) -> MFADevice:
        """Assign a device to the account's root user, proven by two consecutive codes."""
        root = root_arn(self.partition, self.account)
        self.allow("iam:EnableMFADevice", root)
        codes = _codes(authentication_code_1, authentication_code_2)
        moment = self.clock()
        assignee = {"user": None, "user_arn": root}

        def enable(tx: Writer) -> MFADevice:
            return self._enable(
                tx, serial_number, codes, moment, owner=ROOT_OWNER, assignee=assignee
            )

        device = self.write(enable)
        audit("mfa.enabled", account=self.account, user="root", serial=serial_number)
        return device

    def deactivate_mfa_device(self, user_name: str, serial_number: str) -> None:
        """Take a device away from a user; it stays, unassigned, until deleted."""
        self.allow("iam:DeactivateMFADevice", self.owner_arn("user", user_name))

        def deactivate(tx: Writer) -> None:
            user = self.need(tx, "user", user_name)
            self._deactivate(tx, serial_number, user["name"], f"user `{user['name']}`")

        self.write(deactivate)
        audit("mfa.deactivated", account=self.account, user=user_name, serial=serial_number)

    def deactivate_root_mfa_device(self, serial_number: str) -> None:
        """Take a device away from the account's root user."""
        self.allow("iam:DeactivateMFADevice", root_arn(self.partition, self.account))
        self.write(lambda tx: self._deactivate(tx, serial_number, ROOT_OWNER, "the root user"))
        audit("mfa.deactivated", account=self.account, user="root", serial=serial_number)

    def list_mfa_devices(self, user_name: str) -> list[MFADevice]:
        """The devices assigned to a user, by name."""
        self.allow("iam:ListMFADevices", self.owner_arn("user", user_name))

        def devices(tx: Reader) -> list[MFADevice]:
            user = self.need(tx, "user", user_name)
            found = tx.find("mfa_device", self.account, parent=user["name"])
            return [MFADevice.from_record(r) for r in found]

        return self.read(devices)

    # --- sign-in -----------------------------------------------------------------------------

    def check_mfa_code(
        self, tx: Writer, owner: str, serial_number: str, code: str, moment: datetime
    ) -> bool:
        """Is ``code`` a fresh, valid code at ``moment`` from a device assigned to ``owner`` (a
        user's name, or ``ROOT_OWNER``)? Accepting it remembers its time step in ``tx``, so that
        it is never accepted again. Never raises for a bad code or device: it answers False."""
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            return False
        device = self._device(tx, serial_number)
        if device is None or not _owned_by(device, owner):
            return False
        secret = self.need(tx, "mfa_seed", device["name"])
        step = _accepted_step(secret, moment, (code,))
        if step is None:
            return False
        tx.update("mfa_seed", self.account, device["name"], {**secret, "last_step": step})
        return True

    def verify_mfa_code(self, owner: str, serial_number: str, code: str) -> bool:
        """``check_mfa_code`` now, in a transaction of its own."""
        moment = self.clock()
        return self.write(lambda tx: self.check_mfa_code(tx, owner, serial_number, code, moment))

    # --- helpers -----------------------------------------------------------------------------

    def _device(self, tx: Reader, serial_number: str) -> Data | None:
        """The device with this serial number in this account, or None."""
        arn = parse_arn(serial_number) if isinstance(serial_number, str) else None
        if arn is None or arn.service != "iam" or arn.account != self.account:
            return None
        if not arn.resource.startswith("mfa/"):
            return None
        device = tx.get("mfa_device", self.account, arn.resource.rpartition("/")[2])
        return device if device is not None and device["serial_number"] == serial_number else None

    def _need_device(self, tx: Reader, serial_number: str) -> Data:
        device = self._device(tx, serial_number)
        if device is None:
            raise NoSuchEntity(f"MFA device `{serial_number}` cannot be found")
        return device

    def _enable(
        self, tx: Writer, serial_number: str, codes: tuple[str, str], moment: datetime,
        *, owner: str, assignee: Data,
    ) -> MFADevice:  # fmt: skip
        device = self._need_device(tx, serial_number)
        if device["owner"] is not None:
            raise EntityAlreadyExists(f"MFA device `{serial_number}` is already assigned")
        count = tx.count("mfa_device", self.account, parent=owner)
        self.under_quota(count, DEVICES_PER_USER, "MFADevicesPerUser")
        secret = self.need(tx, "mfa_seed", device["name"])
        step = _accepted_step(secret, moment, codes)
        if step is None:
            raise InvalidInput(
                f"MFA device `{serial_number}`: the authentication codes are not two consecutive "
                f"valid codes"
            )
        tx.update("mfa_seed", self.account, device["name"], {**secret, "last_step": step})
        return self._assign(tx, device, owner, {**assignee, "enable_date": self.now()})

    def _deactivate(self, tx: Writer, serial_number: str, owner: str, whose: str) -> None:
        device = self._device(tx, serial_number)
        if device is None or not _owned_by(device, owner):
            raise NoSuchEntity(f"MFA device `{serial_number}` of {whose} cannot be found")
        self._assign(tx, device, None, {"user": None, "user_arn": None, "enable_date": None})

    def _assign(self, tx: Writer, device: Data, owner: str | None, fields: Data) -> MFADevice:
        """Store the device under its new owner (a record's parent changes by re-inserting)."""
        record = {**device, **fields, "owner": owner}
        tx.delete("mfa_device", self.account, device["name"])
        tx.insert("mfa_device", self.account, device["name"], record, parent=owner)
        return MFADevice.from_record(record)


def _owned_by(device: Data, owner: str) -> bool:
    """Is the device assigned to ``owner`` (names compare in any letter case)?"""
    return device["owner"] is not None and str(device["owner"]).lower() == str(owner).lower()


def _codes(first: str, second: str) -> tuple[str, str]:
    for code in (first, second):
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            raise InvalidInput("an authentication code must be 6 digits")
    return first, second


def _accepted_step(secret: Data, moment: datetime, codes: tuple[str, ...]) -> int | None:
    """The time step of the last of ``codes`` when they are the device's codes for consecutive
    steps, the last within ``DRIFT`` steps of ``moment`` and the first after the last step ever
    accepted (replay protection); None otherwise."""
    totp = pyotp.TOTP(secret["seed"])
    last = secret["last_step"]
    now = totp.timecode(moment)
    for step in range(now - DRIFT, now + DRIFT + 1):
        first = step - len(codes) + 1
        if last is not None and first <= last:
            continue
        if all(
            hmac.compare_digest(totp.generate_otp(first + i), code) for i, code in enumerate(codes)
        ):
            return step
    return None
