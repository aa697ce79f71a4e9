"""The command line on a store: init, users, groups, credentials, roles, policies, services,
import/export and simulate, each through click's runner on a SQLite file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from iamguard.cli import main

ACCOUNT = "123456789012"
OTHER = "210987654321"
ARN = f"arn:iamguard:iam::{ACCOUNT}"
RAM = f"{ARN}:user/ram"
IMAGE = f"arn:iamguard:images::{ACCOUNT}:image/1"
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TEAM = EXAMPLES / "team.yaml"
DEVELOPERS = EXAMPLES / "policies" / "developers.json"
ADMINS = EXAMPLES / "policies" / "admins.json"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
WARNING = "shown only this once: iamguard keeps only a hash and cannot show it again."
TRUST_ACCOUNT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
}
TRUST_SERVICE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "resizer"}, "Action": "sts:AssumeRole"}
    ],
}
LIST_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "ListOnly", "Effect": "Allow", "Action": "images:ListImages",
                   "Resource": "*"}],
}  # fmt: skip
BROKEN = {"Version": "2012-10-17", "Statement": [{"Effect": "Permit", "Action": "images:Get"}]}


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in a fresh directory with no IAMGUARD_STORE set, holding a few policy files."""
    monkeypatch.delenv("IAMGUARD_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    for name, document in {
        "trust-account.json": TRUST_ACCOUNT, "trust-service.json": TRUST_SERVICE,
        "list-only.json": LIST_ONLY, "broken.json": BROKEN,
    }.items():  # fmt: skip
        (tmp_path / name).write_text(json.dumps(document))
    return tmp_path


@pytest.fixture
def db(tmp_path: Path) -> str:
    """The URL of a SQLite store in the test's directory (not created yet)."""
    return f"sqlite:///{tmp_path}/s.db"


def cli(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="iamguard", input=stdin)


def ok(*args: str, stdin: str | None = None) -> Result:
    """Run a command that must succeed."""
    result = cli(*args, stdin=stdin)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


@pytest.fixture
def team(db: str) -> str:
    """A store holding examples/team.yaml; its URL."""
    ok("import", str(TEAM), "--store", db)
    return db


@pytest.fixture
def account(db: str) -> str:
    """A store with account 123456789012 and nothing else; its URL."""
    ok("init", "--account-id", ACCOUNT, "--email", "root@example.com", "--store", db)
    return db


def db_bytes(url: str) -> bytes:
    """Everything the SQLite store holds on disk (with its write-ahead log)."""
    path = Path(url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


# -- init ------------------------------------------------------------------------------------


def test_init_prints_the_root_credentials_once(db: str) -> None:
    """`init` prints the account, root ARN, e-mail and a generated password, warning once."""
    result = ok("init", "--account-id", ACCOUNT, "--email", "root@example.com",
                "--alias", "example", "--store", db)  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"Created account {ACCOUNT} (example) in {db}",
        f"Root user:     {ARN}:root",
        "Root e-mail:   root@example.com",
    ]
    password = lines[3].removeprefix("Root password: ")
    assert len(lines) == 4 and len(password) == 24
    assert all(any(c in chars for c in password) for chars in ("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               "abcdefghijklmnopqrstuvwxyz", "0123456789", "_+-=@%^*"))  # fmt: skip
    assert result.stderr == f"Warning: the root password is {WARNING} Store it safely now.\n"
    assert password.encode() not in db_bytes(db)


def test_init_twice_for_one_account_is_an_error(account: str) -> None:
    """`init` for an account the store holds exits 1 with AWS's error and prints no password."""
    result = cli("init", "--account-id", ACCOUNT, "--store", account)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"Error (EntityAlreadyExists): account `{ACCOUNT}` already exists\n"


def test_init_again_without_an_account_id_is_an_error(account: str) -> None:
    """A second `init` without --account-id does not quietly add a second account."""
    result = cli("init", "--store", account)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error (EntityAlreadyExists): store `{account}` already holds account `{ACCOUNT}`: "
        "give --account-id to add another account\n"
    )


def test_init_without_options_generates_an_account_id(db: str) -> None:
    """`init` alone creates an account with a random 12-digit id and a placeholder e-mail."""
    created = json.loads(ok("init", "--json", "--store", db).stdout)
    assert re.fullmatch(r"\d{12}", created["AccountId"])
    assert created["RootEmail"] == f"root@{created['AccountId']}.invalid"
    assert created["RootArn"] == f"arn:iamguard:iam::{created['AccountId']}:root"


def test_init_with_a_bad_account_id_is_invalid_input(db: str) -> None:
    """An account id that is not 12 digits is AWS's InvalidInput, exit 1."""
    result = cli("init", "--account-id", "123", "--store", db)
    assert result.exit_code == 1
    assert result.stderr == "Error (InvalidInput): account id `123` must be 12 digits\n"


def test_the_default_store_is_iamguard_db_in_the_current_directory(workdir: Path) -> None:
    """Without --store or IAMGUARD_STORE, commands use ./iamguard.db."""
    ok("init", "--account-id", ACCOUNT)
    assert (workdir / "iamguard.db").is_file()
    assert ok("user", "create", "ram").stdout == f"Created user ram: {RAM}\n"


def test_the_store_comes_from_iamguard_store(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """IAMGUARD_STORE names the store when --store is not given."""
    monkeypatch.setenv("IAMGUARD_STORE", db)
    ok("init", "--account-id", ACCOUNT)
    ok("user", "create", "ram")
    assert json.loads(ok("user", "list", "--json", "--store", db).stdout)["Users"][0]["Arn"] == RAM


# -- the store and the account ---------------------------------------------------------------


def test_a_missing_sqlite_store_is_a_usage_error_and_is_not_created(
    db: str, tmp_path: Path
) -> None:
    """A command on a SQLite file that does not exist exits 2 and leaves no file behind."""
    result = cli("user", "list", "--store", db)
    assert result.exit_code == 2
    assert result.stderr.endswith(
        f"Error: store `{db}` does not exist: create it with `iamguard init` or "
        "`iamguard import FILE`, or name another with --store or $IAMGUARD_STORE\n"
    )
    assert not (tmp_path / "s.db").exists()


def test_an_unknown_store_scheme_is_a_usage_error() -> None:
    """A --store URL of an unknown kind exits 2 naming the option."""
    result = cli("user", "list", "--store", "mysql://db")
    assert result.exit_code == 2
    assert "Error: Invalid value for '--store': store url `mysql://...`: unknown scheme" in (
        result.stderr
    )


def test_a_file_that_is_not_a_store_is_an_error_without_traceback(tmp_path: Path) -> None:
    """A file that is not a database exits 1 with one `Error (...)` line."""
    (tmp_path / "junk.db").write_text("not a database")
    result = cli("user", "list", "--store", f"sqlite:///{tmp_path}/junk.db")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error (ServiceFailure): store `sqlite:///")
    assert result.stderr.count("\n") == 1


def test_a_store_with_two_accounts_needs_account(account: str) -> None:
    """With several accounts, --account is required (exit 2), and then used."""
    ok("init", "--account-id", OTHER, "--store", account)
    result = cli("user", "list", "--store", account)
    assert result.exit_code == 2
    assert result.stderr.endswith(
        f"Error: store `{account}` holds 2 accounts (`{ACCOUNT}`, `{OTHER}`): give --account\n"
    )
    ok("user", "create", "ram", "--account", OTHER, "--store", account)
    users = json.loads(ok("user", "list", "--json", "--account", OTHER, "--store", account).stdout)
    assert [u["Arn"] for u in users["Users"]] == [f"arn:iamguard:iam::{OTHER}:user/ram"]
    mine = json.loads(ok("user", "list", "--json", "--account", ACCOUNT, "--store", account).stdout)
    assert mine == {"Users": []}


def test_an_unknown_account_is_no_such_entity(account: str) -> None:
    """--account naming no account exits 1 rather than writing into a phantom account."""
    result = cli("user", "create", "ram", "--account", OTHER, "--store", account)
    assert result.exit_code == 1
    assert result.stderr == f"Error (NoSuchEntity): account `{OTHER}` cannot be found\n"


# -- user ------------------------------------------------------------------------------------


def test_user_create_get_list(account: str) -> None:
    """A created user is shown by `user get` and listed in an aligned table."""
    assert ok("user", "create", "ram", "--path", "/team/", "--tag", "team=images",
              "--store", account).stdout == f"Created user ram: {ARN}:user/team/ram\n"  # fmt: skip
    ok("user", "create", "shyam", "--store", account)
    listing = TIME.sub("YYYY-MM-DDTHH:MM:SSZ", ok("user", "list", "--store", account).stdout)
    assert listing == (
        f"NAME   PATH    {'ARN':44}  CREATED               TAGS\n"
        f"ram    /team/  {ARN}:user/team/ram  YYYY-MM-DDTHH:MM:SSZ  team=images\n"
        f"shyam  /       {ARN}:user/shyam     YYYY-MM-DDTHH:MM:SSZ  -\n"
    )
    shown = TIME.sub("T", ok("user", "get", "ram", "--store", account).stdout)
    assert re.sub(r"AIDA[A-Z2-7]{17}", "ID", shown) == (
        "Name:        ram\nPath:        /team/\nId:          ID\n"
        f"Arn:         {ARN}:user/team/ram\nCreated:     T\nTags:        team=images\n"
        "Boundary:    -\nGroups:      -\nPolicies:    -\nInline:      -\nAccess keys: -\n"
        "Password:    no\n"
    )


def test_user_json_uses_aws_field_names(account: str) -> None:
    """`user create --json` and `user get --json` print AWS's field names."""
    created = json.loads(ok("user", "create", "ram", "--tag", "team=images", "--json",
                            "--store", account).stdout)["User"]  # fmt: skip
    assert (created["UserName"], created["Path"], created["Arn"]) == ("ram", "/", RAM)
    assert created["Tags"] == [{"Key": "team", "Value": "images"}]
    assert created["UserId"].startswith("AIDA")
    shown = json.loads(ok("user", "get", "ram", "--json", "--store", account).stdout)
    assert shown == {
        "User": created, "Groups": [], "AttachedPolicies": [], "PolicyNames": [],
        "AccessKeys": [], "LoginProfile": False,
    }  # fmt: skip


def test_user_get_of_a_missing_user_is_no_such_entity(account: str) -> None:
    """A missing user exits 1 with `Error (NoSuchEntity): ...` and no traceback."""
    result = cli("user", "get", "nobody", "--store", account)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "Error (NoSuchEntity): user `nobody` cannot be found\n"


def test_user_create_twice_is_entity_already_exists(account: str) -> None:
    """User names are unique whatever their letter case."""
    ok("user", "create", "ram", "--store", account)
    result = cli("user", "create", "RAM", "--store", account)
    assert result.exit_code == 1
    assert result.stderr == "Error (EntityAlreadyExists): user `RAM` already exists\n"


def test_a_tag_without_equals_is_a_usage_error(account: str) -> None:
    """`--tag` must be KEY=VALUE."""
    result = cli("user", "create", "ram", "--tag", "team", "--store", account)
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: Invalid value for '--tag': `team` is not KEY=VALUE\n")


def test_user_delete_waits_for_its_groups(account: str) -> None:
    """Deleting a member of a group is a DeleteConflict until it leaves the group."""
    ok("user", "create", "ram", "--store", account)
    ok("group", "create", "developers", "--store", account)
    ok("group", "add-user", "developers", "ram", "--store", account)
    result = cli("user", "delete", "ram", "--store", account)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error (DeleteConflict): cannot delete user `ram`: must leave every group first\n"
    )
    assert ok("group", "remove-user", "developers", "ram", "--store", account).stdout == (
        "Removed user ram from group developers\n"
    )
    assert ok("user", "delete", "ram", "--store", account).stdout == "Deleted user ram\n"
    assert cli("user", "get", "ram", "--store", account).exit_code == 1


# -- group -----------------------------------------------------------------------------------


def test_group_members_and_policies(account: str) -> None:
    """`group get` shows the members added and the policies attached."""
    ok("user", "create", "ram", "--store", account)
    ok("group", "create", "developers", "--store", account)
    assert ok("group", "add-user", "developers", "ram", "--store", account).stdout == (
        "Added user ram to group developers\n"
    )
    ok("policy", "create", "ImageRead", "--document", str(DEVELOPERS), "--store", account)
    ok("policy", "attach", "--group", "developers", "ImageRead", "--store", account)
    shown = json.loads(ok("group", "get", "developers", "--json", "--store", account).stdout)
    assert [u["UserName"] for u in shown["Users"]] == ["ram"]
    assert shown["AttachedPolicies"] == [
        {"PolicyName": "ImageRead", "PolicyArn": f"{ARN}:policy/ImageRead"}
    ]
    text = ok("group", "get", "developers", "--store", account).stdout
    assert "Members:  ram\nPolicies: ImageRead\nInline:   -\n" in text
    user = json.loads(ok("user", "get", "ram", "--json", "--store", account).stdout)
    assert user["Groups"] == ["developers"]


def test_group_remove_user_who_is_not_a_member(account: str) -> None:
    """Removing a non-member is AWS's NoSuchEntity."""
    ok("user", "create", "ram", "--store", account)
    ok("group", "create", "developers", "--store", account)
    result = cli("group", "remove-user", "developers", "ram", "--store", account)
    assert result.exit_code == 1
    assert result.stderr == ("Error (NoSuchEntity): user `ram` is not in group `developers`\n")


def test_group_list_and_delete(account: str) -> None:
    """`group list` lists groups by name; `group delete` removes one."""
    for name in ("developers", "admins"):
        ok("group", "create", name, "--store", account)
    listed = json.loads(ok("group", "list", "--json", "--store", account).stdout)
    assert [g["GroupName"] for g in listed["Groups"]] == ["admins", "developers"]
    assert ok("group", "delete", "admins", "--store", account).stdout == "Deleted group admins\n"
    table = ok("group", "list", "--store", account).stdout.splitlines()
    assert table[0].split() == ["NAME", "PATH", "ARN", "CREATED"]
    assert table[1].split()[:3] == ["developers", "/", f"{ARN}:group/developers"]
    assert len(table) == 2


# -- access-key and login-profile ------------------------------------------------------------


def test_access_key_secret_is_shown_once_and_never_again(account: str) -> None:
    """The secret is printed by `create` only: not by list, get, export, nor kept in the store."""
    ok("user", "create", "ram", "--store", account)
    result = ok("access-key", "create", "ram", "--store", account)
    lines = result.stdout.splitlines()
    key_id = lines[1].removeprefix("AccessKeyId:     ")
    secret = lines[2].removeprefix("SecretAccessKey: ")
    assert lines[0] == "User:            ram" and lines[3] == "Status:          Active"
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key_id)
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", secret)
    assert result.stderr == f"Warning: the secret access key is {WARNING} Store it safely now.\n"
    for later in (
        ("access-key", "list", "ram"), ("access-key", "list", "ram", "--json"),
        ("user", "get", "ram"), ("user", "get", "ram", "--json"), ("export",), ("export", "--json"),
    ):  # fmt: skip
        shown = ok(*later, "--store", account)
        assert key_id in shown.stdout or later[0] == "export"
        assert secret not in shown.stdout + shown.stderr
    assert secret.encode() not in db_bytes(account)


def test_access_key_update_list_delete(account: str) -> None:
    """A key made Inactive is listed so; a deleted key is gone."""
    ok("user", "create", "ram", "--store", account)
    created = json.loads(ok("access-key", "create", "ram", "--json", "--store", account).stdout)
    key_id = created["AccessKey"]["AccessKeyId"]
    assert ok("access-key", "update", "ram", key_id, "--status", "inactive",
              "--store", account).stdout == f"Access key {key_id} of user ram is Inactive\n"  # fmt: skip
    listed = json.loads(ok("access-key", "list", "ram", "--json", "--store", account).stdout)
    assert [(k["AccessKeyId"], k["Status"]) for k in listed["AccessKeyMetadata"]] == [
        (key_id, "Inactive")
    ]
    table = ok("access-key", "list", "ram", "--store", account).stdout.splitlines()
    assert table[0] == "ACCESS-KEY-ID         STATUS    CREATED               LAST-USED"
    assert table[1].split()[:2] == [key_id, "Inactive"]
    ok("access-key", "delete", "ram", key_id, "--store", account)
    assert ok("access-key", "list", "ram", "--json", "--store", account).stdout == (
        '{\n  "AccessKeyMetadata": []\n}\n'
    )


def test_a_third_access_key_exceeds_the_quota(account: str) -> None:
    """AWS allows two access keys per user: the third is LimitExceeded."""
    ok("user", "create", "ram", "--store", account)
    ok("access-key", "create", "ram", "--store", account)
    ok("access-key", "create", "ram", "--store", account)
    result = cli("access-key", "create", "ram", "--store", account)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "Error (LimitExceeded): cannot exceed quota for AccessKeysPerUser: 2\n"


def test_access_key_update_of_someone_elses_key_is_no_such_entity(account: str) -> None:
    """A key id is looked up among the named user's keys only."""
    for name in ("ram", "shyam"):
        ok("user", "create", name, "--store", account)
    created = json.loads(ok("access-key", "create", "ram", "--json", "--store", account).stdout)
    key_id = created["AccessKey"]["AccessKeyId"]
    result = cli("access-key", "delete", "shyam", key_id, "--store", account)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error (NoSuchEntity): access key `{key_id}` of user `shyam` cannot be found\n"
    )


def test_login_profile_reads_the_password_from_stdin(account: str) -> None:
    """`--password-stdin` sets the password from stdin; it never reaches output or the store."""
    ok("user", "create", "ram", "--store", account)
    result = ok("login-profile", "create", "ram", "--password-stdin", "--store", account,
                stdin="Ram-s3cret-pw\n")  # fmt: skip
    assert result.stdout == "User ram can now sign in with a password\n"
    assert "Ram-s3cret-pw" not in result.stdout + result.stderr
    assert b"Ram-s3cret-pw" not in db_bytes(account)
    assert ok("user", "get", "ram", "--store", account).stdout.endswith("Password:    yes\n")


def test_login_profile_prompts_for_the_password_without_stdin_flag(account: str) -> None:
    """Without --password-stdin the password is asked twice at a hidden prompt."""
    ok("user", "create", "ram", "--store", account)
    result = ok("login-profile", "create", "ram", "--store", account,
                stdin="Ram-s3cret-pw\nRam-s3cret-pw\n")  # fmt: skip
    assert "Ram-s3cret-pw" not in result.stdout
    assert json.loads(ok("user", "get", "ram", "--json", "--store", account).stdout)["LoginProfile"]


def test_login_profile_takes_no_password_argument(account: str) -> None:
    """There is no way to give the password on the command line."""
    ok("user", "create", "ram", "--store", account)
    result = cli("login-profile", "create", "ram", "--password", "Ram-s3cret-pw",
                 "--store", account)  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: No such option '--password'. Did you mean '--password-stdin'?\n"
    )


def test_login_profile_weak_password_is_refused_without_echo(account: str) -> None:
    """A password against the policy exits 1 naming the rules, not the password."""
    ok("user", "create", "ram", "--store", account)
    result = cli("login-profile", "create", "ram", "--password-stdin", "--store", account,
                 stdin="abc\n")  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        "Error (PasswordPolicyViolation): password does not meet the account password policy: "
        "it needs at least 8 characters; three of: uppercase letters, lowercase letters, "
        "numbers, symbols\n"
    )


def test_login_profile_for_a_missing_user_asks_for_no_password(account: str) -> None:
    """An unknown user fails before the password is read."""
    result = cli("login-profile", "create", "nobody", "--store", account)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "Error (NoSuchEntity): user `nobody` cannot be found\n"


# -- role ------------------------------------------------------------------------------------


def test_role_create_get_and_update_trust(account: str) -> None:
    """A role's trust policy is stored, shown and replaced."""
    assert ok("role", "create", "ImageAdmin", "--trust-policy", "trust-account.json",
              "--description", "admins", "--max-session-duration", "7200",
              "--store", account).stdout == (
        f"Created role ImageAdmin: {ARN}:role/ImageAdmin\n"
    )  # fmt: skip
    shown = json.loads(ok("role", "get", "ImageAdmin", "--json", "--store", account).stdout)
    role = shown["Role"]
    assert role["AssumeRolePolicyDocument"] == TRUST_ACCOUNT
    assert (role["Description"], role["MaxSessionDuration"]) == ("admins", 7200)
    assert ok("role", "update-trust", "ImageAdmin", "--trust-policy", "trust-service.json",
              "--store", account).stdout == "Updated the trust policy of role ImageAdmin\n"  # fmt: skip
    text = ok("role", "get", "ImageAdmin", "--store", account).stdout
    assert "Max session: 7200 s\n" in text
    assert text.split("Trust policy:\n", 1)[1] == "".join(
        f"  {line}\n" for line in json.dumps(TRUST_SERVICE, indent=2).splitlines()
    )
    listed = ok("role", "list", "--store", account).stdout.splitlines()
    assert listed[0].split() == ["NAME", "PATH", "ARN", "MAX-SESSION", "DESCRIPTION"]
    assert listed[1].split() == ["ImageAdmin", "/", f"{ARN}:role/ImageAdmin", "7200", "admins"]
    assert ok("role", "delete", "ImageAdmin", "--store", account).stdout == (
        "Deleted role ImageAdmin\n"
    )


def test_role_with_a_malformed_trust_policy_names_the_file(account: str) -> None:
    """Each problem of a malformed trust policy is one `Error` line naming the file."""
    result = cli("role", "create", "R", "--trust-policy", "broken.json", "--store", account)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error (MalformedPolicyDocument): broken.json: Statement[0].Effect: `Permit` is not "
        "`Allow` or `Deny`\n"
        "Error (MalformedPolicyDocument): broken.json: Statement[0]: missing `Principal` or "
        "`NotPrincipal`\n"
    )


def test_role_max_session_duration_out_of_range(account: str) -> None:
    """AWS's session limits apply: 3600-43200 seconds."""
    result = cli("role", "create", "R", "--trust-policy", "trust-account.json",
                 "--max-session-duration", "60", "--store", account)  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        "Error (InvalidInput): max session duration `60` must be 3600-43200 seconds\n"
    )


def test_role_trust_policy_file_must_exist(account: str) -> None:
    """A missing trust policy file is a usage error."""
    result = cli("role", "create", "R", "--trust-policy", "nope.json", "--store", account)
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Invalid value for '--trust-policy': File 'nope.json' does not exist.\n"
    )


# -- policy (the store's policies) -------------------------------------------------------------


def _simulate(url: str, principal: str, action: str, resource: str = IMAGE) -> Result:
    return cli("simulate", "--principal", principal, "--action", action, "--resource", resource,
               "--store", url)  # fmt: skip


def test_policy_create_list_get(account: str) -> None:
    """A managed policy is created from a file, listed and shown with its document."""
    assert ok("policy", "create", "ImageRead", "--document", str(DEVELOPERS),
              "--description", "read images", "--store", account).stdout == (
        f"Created policy ImageRead: {ARN}:policy/ImageRead\n"
    )  # fmt: skip
    assert ok("policy", "list", "--store", account).stdout == (
        "NAME       VERSION  ATTACHED  ARN                                              "
        "DESCRIPTION\n"
        f"ImageRead  v1       0         {ARN}:policy/ImageRead  read images\n"
    )
    shown = json.loads(ok("policy", "get", "ImageRead", "--json", "--store", account).stdout)
    assert shown["Document"] == json.loads(DEVELOPERS.read_text())
    assert shown["Policy"]["DefaultVersionId"] == "v1"
    by_arn = json.loads(ok("policy", "get", f"{ARN}:policy/ImageRead", "--json",
                           "--store", account).stdout)  # fmt: skip
    assert by_arn == shown


def test_policy_attach_by_name_or_arn_then_simulate(account: str) -> None:
    """A policy attached by name (or ARN) decides `simulate`, which names it."""
    ok("user", "create", "ram", "--store", account)
    ok("policy", "create", "ImageRead", "--document", str(DEVELOPERS), "--store", account)
    assert _simulate(account, RAM, "images:GetImage").exit_code == 1
    assert ok("policy", "attach", "--user", "ram", "imageread", "--store", account).stdout == (
        f"Attached {ARN}:policy/ImageRead to user ram\n"
    )
    allowed = _simulate(account, RAM, "images:GetImage")
    assert (allowed.exit_code, allowed.stdout) == (0, (
        f"Allow: User: {RAM} is authorized to perform: images:GetImage on resource: {IMAGE}\n"
        "  decided by: identity policy `ImageRead` statement `ReadImages` (Allow)\n"
    ))  # fmt: skip
    ok("policy", "detach", "--user", "ram", f"{ARN}:policy/ImageRead", "--store", account)
    assert _simulate(account, RAM, "images:GetImage").exit_code == 1


def test_policy_attach_of_an_unknown_policy(account: str) -> None:
    """A policy name the account does not have is NoSuchEntity."""
    ok("user", "create", "ram", "--store", account)
    result = cli("policy", "attach", "--user", "ram", "Nope", "--store", account)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error (NoSuchEntity): policy `Nope` cannot be found in account `{ACCOUNT}`\n"
    )


@pytest.mark.parametrize("owners", [(), ("--user", "ram", "--group", "developers")])
def test_policy_attach_needs_exactly_one_owner(account: str, owners: tuple[str, ...]) -> None:
    """`policy attach` takes exactly one of --user, --group, --role."""
    result = cli("policy", "attach", *owners, "ImageRead", "--store", account)
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: give exactly one of --user, --group or --role\n")


def test_policy_put_inline_on_a_role_and_delete_it(account: str) -> None:
    """An inline policy is listed on its owner and deleted by name."""
    ok("role", "create", "Lister", "--trust-policy", "trust-account.json", "--store", account)
    assert ok("policy", "put-inline", "--role", "Lister", "list-only", "--document",
              "list-only.json", "--store", account).stdout == (
        "Put inline policy list-only on role Lister\n"
    )  # fmt: skip
    shown = json.loads(ok("role", "get", "Lister", "--json", "--store", account).stdout)
    assert shown["PolicyNames"] == ["list-only"]
    ok("policy", "delete-inline", "--role", "Lister", "list-only", "--store", account)
    result = cli("policy", "delete-inline", "--role", "Lister", "list-only", "--store", account)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error (NoSuchEntity): role `Lister` has no inline policy `")


def test_policy_put_inline_decides_for_the_user(account: str) -> None:
    """A user's inline policy is named `user/NAME/POLICY` in the decision."""
    ok("user", "create", "ram", "--store", account)
    ok("policy", "put-inline", "--user", "ram", "list-only", "--document", "list-only.json",
       "--store", account)  # fmt: skip
    result = _simulate(account, RAM, "images:ListImages")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1] == (
        "  decided by: identity policy `user/ram/list-only` statement `ListOnly` (Allow)"
    )


def test_policy_create_version_set_default_changes_decisions(account: str) -> None:
    """A new default version is in force at once; without --set-default it is not."""
    ok("user", "create", "ram", "--store", account)
    ok("policy", "create", "P", "--document", "list-only.json", "--store", account)
    ok("policy", "attach", "--user", "ram", "P", "--store", account)
    assert ok("policy", "create-version", "P", "--document", str(DEVELOPERS),
              "--store", account).stdout == (
        f"Created version v2 of {ARN}:policy/P (not the default)\n"
    )  # fmt: skip
    assert _simulate(account, RAM, "images:GetImage").exit_code == 1
    assert ok("policy", "create-version", "P", "--document", str(DEVELOPERS), "--set-default",
              "--store", account).stdout == (
        f"Created version v3 of {ARN}:policy/P (the default)\n"
    )  # fmt: skip
    assert _simulate(account, RAM, "images:GetImage").exit_code == 0
    shown = ok("policy", "get", "P", "--store", account).stdout
    assert "Versions:    v1, v2, v3\nDefault:     v3\n" in shown


def test_policy_create_malformed_document_names_every_problem(account: str) -> None:
    """A malformed document prints each problem as `Error (...): FILE: PATH: MESSAGE`."""
    result = cli("policy", "create", "Bad", "--document", "broken.json", "--store", account)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error (MalformedPolicyDocument): broken.json: Statement[0].Effect: `Permit` is not "
        "`Allow` or `Deny`\n"
        "Error (MalformedPolicyDocument): broken.json: Statement[0]: missing `Resource` or "
        "`NotResource`\n"
    )
    assert json.loads(ok("policy", "list", "--json", "--store", account).stdout) == {"Policies": []}


def test_policy_document_from_stdin(account: str) -> None:
    """`--document -` reads the document from stdin."""
    ok("policy", "create", "P", "--document", "-", "--store", account,
       stdin=json.dumps(LIST_ONLY))  # fmt: skip
    shown = json.loads(ok("policy", "get", "P", "--json", "--store", account).stdout)
    assert shown["Document"] == LIST_ONLY


def test_policy_delete_while_attached_is_a_conflict(account: str) -> None:
    """An attached policy cannot be deleted; detached, it can."""
    ok("group", "create", "g", "--store", account)
    ok("policy", "create", "P", "--document", "list-only.json", "--store", account)
    ok("policy", "attach", "--group", "g", "P", "--store", account)
    result = cli("policy", "delete", "P", "--store", account)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error (DeleteConflict): cannot delete policy `{ARN}:policy/P`: it is attached to "
        "entities\n"
    )
    ok("policy", "detach", "--group", "g", "P", "--store", account)
    assert ok("policy", "delete", "P", "--store", account).stdout == (
        f"Deleted policy {ARN}:policy/P\n"
    )


def test_user_with_a_permissions_boundary(account: str) -> None:
    """A boundary given by name caps what the user's policies allow."""
    ok("policy", "create", "Everything", "--document", str(ADMINS), "--store", account)
    ok("policy", "create", "ListOnly", "--document", "list-only.json", "--store", account)
    ok("user", "create", "ram", "--permissions-boundary", "ListOnly", "--store", account)
    ok("policy", "attach", "--user", "ram", "Everything", "--store", account)
    assert _simulate(account, RAM, "images:ListImages").exit_code == 0
    denied = _simulate(account, RAM, "images:PutImage")
    assert denied.exit_code == 1
    assert "because no permissions boundary allows the images:PutImage action" in denied.stdout


# -- service ---------------------------------------------------------------------------------


def test_service_secret_is_shown_once(account: str) -> None:
    """`service create` prints the secret once; `service list` never does."""
    result = ok("service", "create", "resizer", "--description", "resizes", "--store", account)
    lines = result.stdout.splitlines()
    assert lines[0] == "Service: resizer"
    assert re.fullmatch(r"Id:      ASPA[A-Z2-7]{17}", lines[1])
    secret = lines[2].removeprefix("Secret:  ")
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", secret)
    assert result.stderr == f"Warning: the service's secret is {WARNING} Store it safely now.\n"
    listed = ok("service", "list", "--store", account).stdout
    assert secret not in listed
    assert listed.splitlines()[1].split()[0] == "resizer"
    assert secret.encode() not in db_bytes(account)
    assert ok("service", "delete", "resizer", "--store", account).stdout == (
        "Deleted service resizer\n"
    )


# -- import and export -----------------------------------------------------------------------


def test_import_team_prints_each_secret_once(db: str) -> None:
    """`import` loads the team and prints the root password and service secret, once."""
    result = ok("import", str(TEAM), "--store", db)
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"Imported account {ACCOUNT}: policies 3, groups 2, users 4, roles 2, services 1"
    )
    assert re.fullmatch(rf"Root password of account {ACCOUNT}: \S{{20,}}", lines[1])
    assert re.fullmatch(
        rf"Secret of service image-processor \(account {ACCOUNT}\): [A-Za-z0-9+/]{{40}}", lines[2]
    )
    assert len(lines) == 3
    assert result.stderr == (
        f"Warning: each root password and service secret is {WARNING} Store it safely now.\n"
    )
    stored = db_bytes(db)
    for secret in (lines[1].rsplit(" ", 1)[1], lines[2].rsplit(" ", 1)[1]):
        assert secret.encode() not in stored


def test_import_json_lists_the_secrets(db: str) -> None:
    """`import --json` gives the secrets to scripts."""
    created = json.loads(ok("import", str(TEAM), "--json", "--store", db).stdout)
    assert [a["AccountId"] for a in created["Accounts"]] == [ACCOUNT]
    assert [(s["AccountId"], s["ServiceName"]) for s in created["Services"]] == [
        (ACCOUNT, "image-processor")
    ]


def test_import_the_same_account_twice_is_refused(team: str) -> None:
    """An account the store holds is not imported again; nothing changes."""
    before = ok("export", "--store", team).stdout
    result = cli("import", str(TEAM), "--store", team)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error (EntityAlreadyExists): account `{ACCOUNT}` already exists in the store\n"
    )
    assert ok("export", "--store", team).stdout == before


def test_import_of_a_file_with_a_mistake_changes_nothing(db: str, tmp_path: Path) -> None:
    """A mistake late in the file is located and leaves no store and no account behind."""
    model = yaml.safe_load(TEAM.read_text())
    model["accounts"][0]["users"][1]["groups"] = ["developers", "testers"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(model))
    result = cli("import", "bad.yaml", "--store", db)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error (NoSuchEntity): accounts[0].users[1]: group `testers` cannot be found\n"
    )
    assert not (tmp_path / "s.db").exists()


def test_import_of_text_that_is_not_yaml(db: str, tmp_path: Path) -> None:
    """Text that is not YAML exits 1 with InvalidInput."""
    (tmp_path / "bad.yaml").write_text("accounts: [\n")
    result = cli("import", "bad.yaml", "--store", db)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error (InvalidInput): model file is not valid YAML or JSON: ")


def test_import_then_simulate_the_team(team: str) -> None:
    """After importing the team, developers read images and cannot delete outside their folder."""
    assert _simulate(team, RAM, "images:GetImage").exit_code == 0
    home = f"arn:iamguard:images::{ACCOUNT}:image/home/ram/cat.png"
    other = f"arn:iamguard:images::{ACCOUNT}:image/home/shyam/cat.png"
    assert _simulate(team, RAM, "images:DeleteImage", home).exit_code == 0
    denied = _simulate(team, RAM, "images:DeleteImage", other)
    assert (denied.exit_code, denied.stdout) == (1, (
        f"ImplicitDeny: User: {RAM} is not authorized to perform: images:DeleteImage on "
        f"resource: {other} because no identity-based policy allows the images:DeleteImage "
        "action\n"
    ))  # fmt: skip


def test_export_of_the_team(team: str) -> None:
    """`export` writes the team back: policies, groups, memberships, tags, roles, services."""
    text = ok("export", "--store", team).stdout
    assert text.startswith(f"# iamguard model of account {ACCOUNT}: ")
    exported = yaml.safe_load(text)["accounts"][0]
    original = yaml.safe_load(TEAM.read_text())["accounts"][0]

    def by_name(items: list[dict]) -> dict[str, dict]:
        return {item["name"]: item for item in items}

    assert (exported["id"], exported["alias"], exported["root_email"]) == (
        ACCOUNT, "example", "root@example.com",
    )  # fmt: skip
    assert by_name(exported["policies"]) == by_name(original["policies"])
    assert by_name(exported["users"]) == by_name(original["users"])
    assert {g["name"]: sorted(g["policies"]) for g in exported["groups"]} == {
        g["name"]: sorted(g["policies"]) for g in original["groups"]
    }
    roles = by_name(exported["roles"])
    assert roles == {
        name: {k: v for k, v in role.items() if k != "max_session_duration"}
        for name, role in by_name(original["roles"]).items()
    }
    assert exported["services"] == original["services"]
    assert yaml.safe_load(text) == json.loads(ok("export", "--json", "--store", team).stdout)


def test_export_import_round_trip_of_every_feature(account: str, tmp_path: Path) -> None:
    """Importing an export into an empty store recreates the model, whatever it holds."""
    s = ("--store", account)
    ok("policy", "create", "Read", "--document", str(DEVELOPERS), "--path", "/team/",
       "--description", "read", *s)  # fmt: skip
    ok("policy", "create-version", "Read", "--document", "list-only.json", "--set-default", *s)
    ok("policy", "create", "Cap", "--document", "list-only.json", *s)
    ok("group", "create", "devs", "--path", "/eng/", *s)
    ok("policy", "attach", "--group", "devs", "Read", *s)
    ok("policy", "put-inline", "--group", "devs", "extra", "--document", "list-only.json", *s)
    ok("user", "create", "ram", "--path", "/eng/", "--tag", "team=images", "--tag", "x=y",
       "--permissions-boundary", "Cap", *s)  # fmt: skip
    ok("group", "add-user", "devs", "ram", *s)
    ok("policy", "attach", "--user", "ram", "Cap", *s)
    ok("policy", "put-inline", "--user", "ram", "mine", "--document", str(ADMINS), *s)
    ok("role", "create", "Worker", "--trust-policy", "trust-service.json", "--description", "w",
       "--max-session-duration", "7200", "--permissions-boundary", "Cap", "--tag", "k=v", *s)  # fmt: skip
    ok("policy", "attach", "--role", "Worker", "Read", *s)
    ok("policy", "put-inline", "--role", "Worker", "inline", "--document", "list-only.json", *s)
    ok("service", "create", "resizer", "--description", "resizes", *s)
    ok("user", "create", "idle", *s)
    ok("login-profile", "create", "ram", "--password-stdin", *s, stdin="Ram-s3cret-pw\n")
    ok("access-key", "create", "ram", *s)
    exported = ok("export", *s).stdout
    (tmp_path / "export.yaml").write_text(exported)
    copy = f"sqlite:///{tmp_path}/copy.db"
    ok("import", "export.yaml", "--store", copy)
    assert ok("export", "--store", copy).stdout == exported
    for kind, name in (("user", "ram"), ("group", "devs"), ("role", "Worker")):
        original = json.loads(ok(kind, "get", name, "--json", *s).stdout)
        again = json.loads(ok(kind, "get", name, "--json", "--store", copy).stdout)
        for field in ("Groups", "AttachedPolicies", "PolicyNames"):
            assert original.get(field) == again.get(field), (kind, field)
        assert [u["Arn"] for u in original.get("Users", [])] == [
            u["Arn"] for u in again.get("Users", [])
        ]
        entity = original.get("User") or original.get("Role") or original["Group"]
        copied = again.get("User") or again.get("Role") or again["Group"]
        ids = {"UserId", "RoleId", "GroupId", "CreateDate"}
        assert {k: v for k, v in entity.items() if k not in ids} == {
            k: v for k, v in copied.items() if k not in ids
        }
    model = yaml.safe_load(exported)["accounts"][0]
    assert next(p for p in model["policies"] if p["name"] == "Read")["document"] == LIST_ONLY
    assert "Ram-s3cret-pw" not in exported and "AKIA" not in exported


def test_export_carries_the_password_policy(account: str, tmp_path: Path) -> None:
    """A non-default password policy is exported with only its non-default options."""
    from iamguard.iam import IAM
    from iamguard.stores import open_store

    store = open_store(account)
    try:
        IAM(store, ACCOUNT).update_account_password_policy(
            minimum_password_length=14, require_symbols=True
        )
    finally:
        store.close()
    model = yaml.safe_load(ok("export", "--store", account).stdout)
    assert model["accounts"][0]["password_policy"] == {
        "minimum_password_length": 14, "require_symbols": True,
    }  # fmt: skip


# -- simulate --------------------------------------------------------------------------------


def test_simulate_explicit_deny_names_the_policy_and_statement(account: str) -> None:
    """A denial names the managed policy and statement that denied; exit 1."""
    ok("user", "create", "ram", "--store", account)
    ok("policy", "create", "Developers", "--document", str(DEVELOPERS), "--store", account)
    ok("policy", "attach", "--user", "ram", "Developers", "--store", account)
    result = _simulate(account, RAM, "images:DeleteImage")
    assert (result.exit_code, result.stderr) == (1, "")
    assert result.stdout == (
        f"ExplicitDeny: User: {RAM} is not authorized to perform: images:DeleteImage on "
        f"resource: {IMAGE} with an explicit deny in an identity-based policy\n"
        "  decided by: identity policy `Developers` statement `NeverDeleteImages` (Deny)\n"
    )


def test_simulate_context_reaches_conditions(account: str) -> None:
    """`--context` sets condition keys: the MFA deny holds without MFA and not with it."""
    ok("user", "create", "sita", "--store", account)
    ok("policy", "create", "Admins", "--document", str(ADMINS), "--store", account)
    ok("policy", "attach", "--user", "sita", "Admins", "--store", account)
    args = ("simulate", "--principal", f"{ARN}:user/sita", "--action", "images:DeleteImage",
            "--resource", IMAGE, "--store", account)  # fmt: skip
    assert cli(*args).exit_code == 1
    assert cli(*args, "--context", "aws:MultiFactorAuthPresent=true").exit_code == 0
    assert cli(*args, "--context", "aws:MultiFactorAuthPresent").exit_code == 2


def test_simulate_json(team: str) -> None:
    """`simulate --json` prints the decision as `policy simulate --json` does."""
    result = cli("simulate", "--json", "--principal", f"{ARN}:user/sita", "--action",
                 "iam:CreateUser", "--resource", f"{ARN}:user/new", "--store", team)  # fmt: skip
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "effect": "Allow",
        "allowed": True,
        "message": (
            f"User: {ARN}:user/sita is authorized to perform: iam:CreateUser on resource: "
            f"{ARN}:user/new"
        ),
        "statements": [{"kind": "identity", "policy": "AdminAccess",
                        "statement": "ManageIdentities", "effect": "Allow"}],
        "errors": [],
    }  # fmt: skip


def test_simulate_an_unknown_principal_says_so(team: str) -> None:
    """A principal the store does not hold is denied, with a note on stderr."""
    result = _simulate(team, f"{ARN}:user/nobody", "images:GetImage")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Note: the store has no principal `{ARN}:user/nobody`: it may do nothing\n"
    )
    assert result.stdout.startswith("ImplicitDeny: ")


def test_simulate_the_root_user(team: str) -> None:
    """The root user may do anything in its account."""
    result = _simulate(team, f"{ARN}:root", "images:DeleteImage")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1].startswith("  decided by: ")


def test_help_of_the_store_commands_shows_store_and_account() -> None:
    """Every store command takes --store (with IAMGUARD_STORE); those on an account --account."""
    result = cli("user", "create", "--help")
    assert result.exit_code == 0
    assert "--store URL" in result.stdout and "IAMGUARD_STORE" in result.stdout
    assert "--account ID" in result.stdout
    assert "--account " not in cli("simulate", "--help").stdout


# -- the README walk-through, through the installed script -----------------------------------


def _console_script() -> str:
    beside = Path(sys.executable).parent / "iamguard"
    found = str(beside) if beside.exists() else shutil.which("iamguard")
    assert found, "the iamguard console script is not installed"
    return found


def test_readme_walk_through_with_the_installed_script(workdir: Path) -> None:
    """init -> policy create/attach -> user create -> group add-user -> simulate, as a shell would."""
    shutil.copytree(EXAMPLES, workdir / "examples")
    env = {k: v for k, v in os.environ.items() if k != "IAMGUARD_STORE"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_console_script(), *args], cwd=workdir, env=env, capture_output=True, text=True,
            check=False, timeout=60,
        )  # fmt: skip

    steps = [
        ("init", "--account-id", ACCOUNT, "--email", "root@example.com", "--alias", "example"),
        ("policy", "create", "ImageReadAccess", "--document", "examples/policies/developers.json"),
        ("group", "create", "developers"),
        ("policy", "attach", "--group", "developers", "ImageReadAccess"),
        ("user", "create", "ram", "--tag", "team=images"),
        ("group", "add-user", "developers", "ram"),
    ]
    for step in steps:
        completed = run(*step)
        assert completed.returncode == 0, (step, completed.stderr)
        assert "Traceback" not in completed.stderr
    allowed = run("simulate", "--principal", RAM, "--action", "images:GetImage",
                  "--resource", IMAGE)  # fmt: skip
    assert (allowed.returncode, allowed.stdout) == (0, (
        f"Allow: User: {RAM} is authorized to perform: images:GetImage on resource: {IMAGE}\n"
        "  decided by: identity policy `ImageReadAccess` statement `ReadImages` (Allow)\n"
    ))  # fmt: skip
    denied = run("simulate", "--principal", RAM, "--action", "images:DeleteImage",
                 "--resource", IMAGE)  # fmt: skip
    assert denied.returncode == 1
    assert denied.stdout.splitlines()[1] == (
        "  decided by: identity policy `ImageReadAccess` statement `NeverDeleteImages` (Deny)"
    )
    again = run("group", "add-user", "testers", "ram")
    assert (again.returncode, again.stderr) == (
        1, "Error (NoSuchEntity): group `testers` cannot be found\n"
    )  # fmt: skip
    assert (workdir / "iamguard.db").is_file()
