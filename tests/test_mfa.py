"""Virtual MFA devices on every store: creation (the seed shown once), enabling with two
consecutive codes, AWS's errors and quota, and the code check sign-in uses (drift, replay).

Time is a fixed clock that tests move; codes come from ``pyotp.TOTP(seed).at(moment)``.
"""

from __future__ import annotations

import base64
import functools
import json
from datetime import timedelta

import pyotp
import pytest
import test_throttle

from iamguard.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
)
from iamguard.iam import IAM, create_account
from iamguard.iam.mfa import ROOT_OWNER
from iamguard.model import CreatedVirtualMFADevice
from iamguard.passwords import hash_password
from iamguard.stores.base import Reader, Store, Writer

ACCT = "123456789012"
OTHER = "210987654321"
STAMP = "2024-05-06T07:08:09Z"  # the clock's start as the store writes it
STEP = timedelta(seconds=30)
ROOT = f"arn:iamguard:iam::{ACCT}:root"


class Clock(test_throttle.Clock):
    """The throttle tests' clock, moved in TOTP time steps."""

    def steps(self, count: int) -> None:
        self.advance(count * STEP.total_seconds())


_hash_once = functools.cache(hash_password)  # argon2 once per session: these tests are not about it


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def iam(store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> IAM:
    """Full authority over ACCT (with users ram and sam), on a clock tests move."""
    monkeypatch.setattr("iamguard.iam.accounts.hash_password", _hash_once)
    for account in (ACCT, OTHER):
        create_account(store, email="root@example.com", password="Root-Passw0rd-42",
                       account_id=account)  # fmt: skip
    iam = IAM(store, ACCT, clock=clock)
    iam.create_user("ram")
    iam.create_user("sam")
    return iam


def code(seed: str, clock: Clock, steps: int = 0) -> str:
    """The device's code ``steps`` time steps from the clock's time."""
    return pyotp.TOTP(seed).at(clock() + steps * STEP)


def wrong(valid: str) -> str:
    """A well-formed code that is not ``valid``."""
    return f"{(int(valid) + 1) % 1_000_000:06d}"


def enable(iam: IAM, clock: Clock, user: str = "ram", name: str = "ram-phone") -> tuple[str, str]:
    """A new device enabled for ``user`` with the codes of the last two steps: (serial, seed)."""
    created = iam.create_virtual_mfa_device(name)
    serial, seed = created.device.serial_number, created.base32_string_seed
    iam.enable_mfa_device(user, serial, code(seed, clock, -1), code(seed, clock))
    return serial, seed


@pytest.fixture
def ram(iam: IAM, clock: Clock) -> tuple[str, str]:
    """Ram's enabled device, ten steps before the clock's time: (serial, seed)."""
    enabled = enable(iam, clock)
    clock.steps(10)
    return enabled


def records(store: Store, *kinds: str) -> str:
    """Every record of these kinds in ACCT, as one JSON text."""

    def read(tx: Reader) -> str:
        return json.dumps({kind: tx.find(kind, ACCT) for kind in kinds})

    return store.read(read)


# --- virtual devices -----------------------------------------------------------------------------


def test_create_virtual_mfa_device(iam: IAM) -> None:
    """A device's serial number is its ARN (with path); the seed is 160 bits with a QR-code URI."""
    created = iam.create_virtual_mfa_device("ram-phone", path="/team/")
    device = created.device
    assert device.serial_number == f"arn:iamguard:iam::{ACCT}:mfa/team/ram-phone"
    assert (device.account, device.created) == (ACCT, STAMP)
    assert (device.user, device.user_arn, device.enable_date) == (None, None, None)
    assert len(base64.b32decode(created.base32_string_seed)) == 20
    uri = created.otpauth_uri
    assert uri.startswith("otpauth://totp/iamguard:ram-phone%40123456789012?")
    assert f"secret={created.base32_string_seed}" in uri
    assert "issuer=iamguard" in uri
    assert iam.list_virtual_mfa_devices() == [device]


def test_seed_is_shown_once(iam: IAM, clock: Clock) -> None:
    """The seed is in the creation result only: not in its repr, the device, the lists, or any
    record but the seed's own."""
    created = iam.create_virtual_mfa_device("ram-phone")
    seed = created.base32_string_seed
    assert seed not in repr(created)
    assert seed not in repr(CreatedVirtualMFADevice(created.device, seed, created.otpauth_uri))
    iam.enable_mfa_device("ram", created.device.serial_number, code(seed, clock, -1),
                          code(seed, clock))  # fmt: skip
    shown = [*iam.list_virtual_mfa_devices(), *iam.list_mfa_devices("ram")]
    assert all(seed not in json.dumps(d.to_record()) for d in shown)
    assert seed not in records(iam.store, "mfa_device", "user")
    assert seed in records(iam.store, "mfa_seed")


def test_device_names_are_unique(iam: IAM) -> None:
    """A device name is unique in its account, in any letter case and on any path."""
    iam.create_virtual_mfa_device("ram-phone")
    with pytest.raises(EntityAlreadyExists, match="MFA device `RAM-phone` already exists"):
        iam.create_virtual_mfa_device("RAM-phone", path="/other/")
    IAM(iam.store, OTHER).create_virtual_mfa_device("ram-phone")  # another account's name


def test_bad_device_names_and_paths(iam: IAM) -> None:
    """Names are 1-226 of AWS's name characters; paths are checked as for users."""
    for name in ("", "a b", "x" * 227, "a/b"):
        with pytest.raises(InvalidInput, match="MFA device name"):
            iam.create_virtual_mfa_device(name)
    with pytest.raises(InvalidInput, match="path `team`"):
        iam.create_virtual_mfa_device("phone", path="team")
    assert iam.list_virtual_mfa_devices() == []


# --- enabling ------------------------------------------------------------------------------------


def test_enable_with_two_consecutive_codes(iam: IAM, clock: Clock) -> None:
    """Two consecutive codes assign the device to the user."""
    serial, _ = enable(iam, clock)
    [device] = iam.list_mfa_devices("RAM")
    assert (device.serial_number, device.user, device.enable_date) == (serial, "ram", STAMP)
    assert device.user_arn == f"arn:iamguard:iam::{ACCT}:user/ram"
    assert iam.list_virtual_mfa_devices(assignment_status="Assigned") == [device]
    assert iam.list_virtual_mfa_devices(assignment_status="Unassigned") == []
    assert iam.list_mfa_devices("sam") == []


def test_enable_accepts_one_step_of_drift(iam: IAM, clock: Clock) -> None:
    """The second code may be from the step before or after the server's."""
    for number, last in enumerate((-1, 1)):
        created = iam.create_virtual_mfa_device(f"phone{number}")
        seed = created.base32_string_seed
        iam.enable_mfa_device("ram", created.device.serial_number, code(seed, clock, last - 1),
                              code(seed, clock, last))  # fmt: skip
    assert len(iam.list_mfa_devices("ram")) == 2


def test_enable_refuses_bad_codes(iam: IAM, clock: Clock) -> None:
    """Codes that are not consecutive, out of order, repeated, too old, wrong or malformed enable
    nothing and change nothing."""
    created = iam.create_virtual_mfa_device("ram-phone")
    serial, seed = created.device.serial_number, created.base32_string_seed
    cases = {
        "not consecutive": (code(seed, clock, -2), code(seed, clock)),
        "out of order": (code(seed, clock), code(seed, clock, -1)),
        "the same twice": (code(seed, clock), code(seed, clock)),
        "too old": (code(seed, clock, -3), code(seed, clock, -2)),
        "wrong": (wrong(code(seed, clock, -1)), code(seed, clock)),
    }
    version = iam.store.version()
    for case, (first, second) in cases.items():
        with pytest.raises(InvalidInput, match="not two consecutive valid codes"):
            iam.enable_mfa_device("ram", serial, first, second)
        assert iam.store.version() == version, case
    for bad in ("12345", "1234567", "abcdef", " 12345"):
        with pytest.raises(InvalidInput, match="must be 6 digits"):
            iam.enable_mfa_device("ram", serial, bad, code(seed, clock))
    assert iam.list_mfa_devices("ram") == []


def test_enable_refuses_reused_codes(iam: IAM, clock: Clock) -> None:
    """Codes once accepted never enable the device again; later ones do."""
    serial, seed = enable(iam, clock)
    iam.deactivate_mfa_device("ram", serial)
    with pytest.raises(InvalidInput, match="not two consecutive valid codes"):
        iam.enable_mfa_device("ram", serial, code(seed, clock, -1), code(seed, clock))
    clock.steps(1)
    iam.enable_mfa_device("ram", serial, code(seed, clock), code(seed, clock, 1))
    assert [d.serial_number for d in iam.list_mfa_devices("ram")] == [serial]


def test_eight_devices_per_user(iam: IAM, clock: Clock) -> None:
    """A user may have eight devices (AWS's quota); the ninth is refused."""
    for number in range(8):
        enable(iam, clock, name=f"phone{number}")
    created = iam.create_virtual_mfa_device("phone8")
    seed = created.base32_string_seed
    with pytest.raises(LimitExceeded, match="cannot exceed quota for MFADevicesPerUser: 8"):
        iam.enable_mfa_device("ram", created.device.serial_number, code(seed, clock, -1),
                              code(seed, clock))  # fmt: skip
    enable(iam, clock, user="sam", name="sam-phone")  # the quota is per user


def test_device_serves_one_user(iam: IAM, clock: Clock) -> None:
    """A device assigned to one user cannot be enabled for another (nor again for the same)."""
    serial, seed = enable(iam, clock)
    clock.steps(2)
    for user in ("sam", "ram"):
        with pytest.raises(EntityAlreadyExists, match=f"MFA device `{serial}` is already assigned"):
            iam.enable_mfa_device(user, serial, code(seed, clock, -1), code(seed, clock))


def test_unknown_users_and_devices(iam: IAM, clock: Clock) -> None:
    """Unknown users, unknown serials and other accounts' devices are NoSuchEntity."""
    created = IAM(iam.store, OTHER).create_virtual_mfa_device("ram-phone")
    seed = created.base32_string_seed
    codes = (code(seed, clock, -1), code(seed, clock))
    with pytest.raises(NoSuchEntity, match="user `ghost` cannot be found"):
        iam.enable_mfa_device("ghost", created.device.serial_number, *codes)
    for serial in (
        created.device.serial_number,  # OTHER's
        f"arn:iamguard:iam::{ACCT}:mfa/ghost",
        f"arn:iamguard:iam::{ACCT}:user/ram",
        "not-an-arn",
    ):
        with pytest.raises(NoSuchEntity, match="cannot be found"):
            iam.enable_mfa_device("ram", serial, *codes)
        with pytest.raises(NoSuchEntity, match="cannot be found"):
            iam.delete_virtual_mfa_device(serial)
    iam.create_virtual_mfa_device("ram-phone", path="/team/")
    with pytest.raises(NoSuchEntity):  # the same name on another path is another serial number
        iam.delete_virtual_mfa_device(f"arn:iamguard:iam::{ACCT}:mfa/ram-phone")


# --- deactivating and deleting -------------------------------------------------------------------


def test_deactivate(iam: IAM, clock: Clock) -> None:
    """Deactivating unassigns the device; it stays, and only its user can deactivate it."""
    serial, _ = enable(iam, clock)
    with pytest.raises(NoSuchEntity, match=f"MFA device `{serial}` of user `sam` cannot be found"):
        iam.deactivate_mfa_device("sam", serial)
    iam.deactivate_mfa_device("Ram", serial)
    assert iam.list_mfa_devices("ram") == []
    [device] = iam.list_virtual_mfa_devices(assignment_status="Unassigned")
    assert (device.serial_number, device.user, device.enable_date) == (serial, None, None)
    with pytest.raises(NoSuchEntity):
        iam.deactivate_mfa_device("ram", serial)


def test_delete_while_assigned_conflicts(iam: IAM, clock: Clock) -> None:
    """An assigned device cannot be deleted; once deactivated it goes, with its seed."""
    serial, _ = enable(iam, clock)
    message = f"cannot delete MFA device `{serial}`: must deactivate it first"
    with pytest.raises(DeleteConflict, match=message):
        iam.delete_virtual_mfa_device(serial)
    iam.deactivate_mfa_device("ram", serial)
    iam.delete_virtual_mfa_device(serial)
    assert iam.list_virtual_mfa_devices() == []
    assert records(iam.store, "mfa_device", "mfa_seed") == '{"mfa_device": [], "mfa_seed": []}'
    iam.create_virtual_mfa_device("ram-phone")  # the name is free again


def test_delete_user_refused_while_device_assigned(iam: IAM, clock: Clock) -> None:
    """A user with an MFA device cannot be deleted until the device is deactivated."""
    serial, _ = enable(iam, clock)
    with pytest.raises(DeleteConflict, match="cannot delete user `ram`: must delete MFA devices"):
        iam.delete_user("ram")
    iam.deactivate_mfa_device("ram", serial)
    iam.delete_user("ram")


def test_bad_assignment_status(iam: IAM) -> None:
    """list_virtual_mfa_devices takes AWS's three assignment statuses only."""
    with pytest.raises(InvalidInput, match="assignment status `assigned`"):
        iam.list_virtual_mfa_devices(assignment_status="assigned")


# --- the code check sign-in uses -----------------------------------------------------------------


def test_verify_current_code(iam: IAM, clock: Clock, ram: tuple[str, str]) -> None:
    """The code of the current step from the user's device is accepted."""
    serial, seed = ram
    assert iam.verify_mfa_code("ram", serial, code(seed, clock)) is True


@pytest.mark.parametrize("drift", [-1, 1])
def test_verify_allows_one_step_of_drift(
    iam: IAM, clock: Clock, ram: tuple[str, str], drift: int
) -> None:
    """A code one step early or late is accepted."""
    serial, seed = ram
    assert iam.verify_mfa_code("RAM", serial, code(seed, clock, drift)) is True


@pytest.mark.parametrize("drift", [-2, 2])
def test_verify_refuses_two_steps_of_drift(
    iam: IAM, clock: Clock, ram: tuple[str, str], drift: int
) -> None:
    """A code two steps early or late is refused, and nothing is written."""
    serial, seed = ram
    version = iam.store.version()
    assert iam.verify_mfa_code("ram", serial, code(seed, clock, drift)) is False
    assert iam.store.version() == version


def test_verify_refuses_replay(iam: IAM, clock: Clock, ram: tuple[str, str]) -> None:
    """An accepted code is never accepted again, nor one of an earlier step; the next one is."""
    serial, seed = ram
    assert iam.verify_mfa_code("ram", serial, code(seed, clock)) is True
    assert iam.verify_mfa_code("ram", serial, code(seed, clock)) is False
    assert iam.verify_mfa_code("ram", serial, code(seed, clock, -1)) is False
    clock.steps(1)
    assert iam.verify_mfa_code("ram", serial, code(seed, clock, -1)) is False  # the used one
    assert iam.verify_mfa_code("ram", serial, code(seed, clock)) is True


def test_verify_refuses_the_codes_that_enabled(iam: IAM, clock: Clock) -> None:
    """The codes given to enable a device cannot then sign in."""
    serial, seed = enable(iam, clock)
    assert iam.verify_mfa_code("ram", serial, code(seed, clock)) is False
    assert iam.verify_mfa_code("ram", serial, code(seed, clock, 1)) is True


def test_verify_refuses_another_users_device(iam: IAM, clock: Clock, ram: tuple[str, str]) -> None:
    """A valid code from someone else's device is refused, and is not used up."""
    serial, seed = ram
    assert iam.verify_mfa_code("sam", serial, code(seed, clock)) is False
    assert iam.verify_mfa_code(ROOT_OWNER, serial, code(seed, clock)) is False
    assert iam.verify_mfa_code("ram", serial, code(seed, clock)) is True


def test_verify_refuses_deactivated_device(iam: IAM, clock: Clock, ram: tuple[str, str]) -> None:
    """A deactivated device signs no one in."""
    serial, seed = ram
    iam.deactivate_mfa_device("ram", serial)
    assert iam.verify_mfa_code("ram", serial, code(seed, clock)) is False


def test_verify_answers_false_to_garbage(iam: IAM, clock: Clock, ram: tuple[str, str]) -> None:
    """Malformed codes and unknown or malformed serial numbers are False, not errors."""
    serial, seed = ram
    for bad in (
        "",
        "12345",
        "1234567",
        "abcdef",
        code(seed, clock) + "\n",
        wrong(code(seed, clock)),
    ):
        assert iam.verify_mfa_code("ram", serial, bad) is False, bad
    for other in (f"arn:iamguard:iam::{ACCT}:mfa/ghost", "nonsense", serial + "\x00", ""):
        assert iam.verify_mfa_code("ram", other, code(seed, clock)) is False, other


def test_check_is_part_of_the_callers_transaction(
    iam: IAM, clock: Clock, ram: tuple[str, str]
) -> None:
    """check_mfa_code writes in the caller's transaction: if that fails, the code is not used."""
    serial, seed = ram

    def sign_in(tx: Writer) -> None:
        assert iam.check_mfa_code(tx, "ram", serial, code(seed, clock), clock()) is True
        raise RuntimeError("a later step of sign-in failed")

    with pytest.raises(RuntimeError):
        iam.store.write(sign_in)
    assert iam.verify_mfa_code("ram", serial, code(seed, clock)) is True


def test_root_device(iam: IAM, clock: Clock) -> None:
    """Root's device is enabled, checked and deactivated under ROOT_OWNER, apart from any user
    named `root`."""
    iam.create_user("root")
    created = iam.create_virtual_mfa_device("root-key")
    serial, seed = created.device.serial_number, created.base32_string_seed
    device = iam.enable_root_mfa_device(serial, code(seed, clock, -1), code(seed, clock))
    assert (device.user, device.user_arn, device.enable_date) == (None, ROOT, STAMP)
    assert iam.list_mfa_devices("root") == []  # the IAM user named root has none
    clock.steps(1)
    assert iam.verify_mfa_code("root", serial, code(seed, clock)) is False
    assert iam.verify_mfa_code(ROOT_OWNER, serial, code(seed, clock)) is True
    with pytest.raises(NoSuchEntity):
        iam.deactivate_mfa_device("root", serial)
    iam.deactivate_root_mfa_device(serial)
    iam.delete_virtual_mfa_device(serial)
    iam.delete_user("root")


def test_operations_are_authorized(iam: IAM, clock: Clock) -> None:
    """Each operation asks for its IAM action on the device's, the user's or root's ARN."""
    asked: list[tuple[str, str]] = []
    iam._check = lambda action, resource: asked.append((action, resource))
    user = f"arn:iamguard:iam::{ACCT}:user/ram"
    serial, _ = enable(iam, clock)
    iam.list_mfa_devices("ram")
    iam.list_virtual_mfa_devices()
    iam.deactivate_mfa_device("ram", serial)
    iam.delete_virtual_mfa_device(serial)
    assert asked == [
        ("iam:CreateVirtualMFADevice", serial),
        ("iam:EnableMFADevice", user),
        ("iam:ListMFADevices", user),
        ("iam:ListVirtualMFADevices", "*"),
        ("iam:DeactivateMFADevice", user),
        ("iam:DeleteVirtualMFADevice", serial),
    ]


two_stores = test_throttle.two_stores  # two stores opened on one database


def test_replay_refused_across_instances(
    two_stores: tuple[Store, Store], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A code accepted through one instance is refused through another."""
    monkeypatch.setattr("iamguard.iam.accounts.hash_password", _hash_once)
    first, second = two_stores
    create_account(first, email="root@example.com", password="Root-Passw0rd-42", account_id=ACCT)
    one, two = IAM(first, ACCT, clock=clock), IAM(second, ACCT, clock=clock)
    one.create_user("ram")
    serial, seed = enable(one, clock)
    clock.steps(5)
    assert one.verify_mfa_code("ram", serial, code(seed, clock)) is True
    assert two.verify_mfa_code("ram", serial, code(seed, clock)) is False
