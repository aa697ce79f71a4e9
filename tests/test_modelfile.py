"""The declarative model file: examples/team.yaml loads into the team it describes, decides as
it says, and a file with a mistake is refused with an error that says where."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from iamguard import InvalidInput, MalformedPolicyDocument
from iamguard.authorizer import Authorizer
from iamguard.errors import AccessDenied, EntityAlreadyExists, NoSuchEntity
from iamguard.iam import IAM, get_account
from iamguard.modelfile import load_model, read_model_text
from iamguard.passwords import verify_password, verify_secret
from iamguard.stores import open_store
from iamguard.stores.base import Store

ACCOUNT = "123456789012"
ARN = f"arn:iamguard:iam::{ACCOUNT}"
IMAGES = f"arn:iamguard:images::{ACCOUNT}:image"
TEAM = Path(__file__).resolve().parents[1] / "examples" / "team.yaml"
TEAM_MODEL: dict[str, Any] = yaml.safe_load(TEAM.read_text())


def team_model() -> dict[str, Any]:
    """A fresh copy of examples/team.yaml as a mapping, to break for a test."""
    return copy.deepcopy(TEAM_MODEL)


@pytest.fixture(scope="module")
def team() -> tuple[Store, Any]:
    """examples/team.yaml loaded into a memory store (once: loading hashes passwords)."""
    return load_model(TEAM)


@pytest.fixture
def iam(team: tuple[Store, Any]) -> IAM:
    return IAM(team[0], ACCOUNT)


@pytest.fixture(params=["memory", "sqlite"])
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each kind a model file is loaded into."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/model.db"
    store = open_store(url)
    try:
        yield store
    finally:
        store.close()


# -- the example team ------------------------------------------------------------------------


def test_team_account(team: tuple[Store, Any]) -> None:
    """The account has the file's id, alias and root e-mail."""
    account = get_account(team[0], ACCOUNT)
    assert (account.alias, account.root_email) == ("example", "root@example.com")


def test_team_users_are_in_their_groups(iam: IAM) -> None:
    """Ram and Shyam are developers; Sita and Gita are admins; each is tagged with a team."""
    assert [u.name for u in iam.get_group_users("developers")] == ["ram", "shyam"]
    assert [u.name for u in iam.get_group_users("admins")] == ["gita", "sita"]
    tags = {u.name: {t.key: t.value for t in u.tags} for u in iam.list_users()}
    assert tags == {
        "gita": {"team": "platform"}, "ram": {"team": "images"},
        "shyam": {"team": "images"}, "sita": {"team": "platform"},
    }  # fmt: skip


def test_team_groups_have_their_policies(iam: IAM) -> None:
    """Groups carry the managed policies the file attaches, by name."""
    attached = {
        group: sorted(p.policy_name for p in iam.list_attached_group_policies(group))
        for group in ("developers", "admins")
    }
    assert attached == {
        "developers": ["DeveloperAccess", "ImageReadAccess"],
        "admins": ["AdminAccess", "ImageReadAccess"],
    }
    policies = {p.name: (p.arn, p.description) for p in iam.list_policies()}
    assert policies["ImageReadAccess"] == (
        f"{ARN}:policy/ImageReadAccess", "Read and list every image"
    )  # fmt: skip
    assert set(policies) == {"AdminAccess", "DeveloperAccess", "ImageReadAccess"}


def test_team_roles_have_their_trust_policies(iam: IAM) -> None:
    """ImageReader trusts the image-processor service; ImageAdmin trusts the account."""
    reader = iam.get_role("ImageReader")
    assert json.loads(reader.assume_role_policy)["Statement"][0]["Principal"] == {
        "Service": "image-processor"
    }
    assert [p.policy_name for p in iam.list_attached_role_policies("ImageReader")] == [
        "ImageReadAccess"
    ]
    admin = iam.get_role("ImageAdmin")
    assert json.loads(admin.assume_role_policy)["Statement"][0]["Principal"] == {"AWS": ACCOUNT}
    assert admin.max_session_duration == 3600
    assert iam.list_role_policies("ImageAdmin") == ["images-admin"]
    assert iam.list_attached_role_policies("ImageAdmin") == []


def test_team_service(iam: IAM) -> None:
    """The image-processor service principal exists, described, with no permissions attached."""
    [service] = iam.list_services()
    assert (service.name, service.description) == ("image-processor", "Resizes uploaded images")
    assert service.service_id.startswith("ASPA")


@pytest.mark.parametrize(
    ("user", "action", "resource", "effect"),
    [
        ("ram", "images:GetImage", f"{IMAGES}/1", "Allow"),
        ("shyam", "images:ListImages", f"{IMAGES}/1", "Allow"),
        ("ram", "images:PutImage", f"{IMAGES}/home/ram/cat.png", "Allow"),
        ("ram", "images:DeleteImage", f"{IMAGES}/home/ram/cat.png", "Allow"),
        ("ram", "images:DeleteImage", f"{IMAGES}/home/shyam/cat.png", "ImplicitDeny"),
        ("ram", "images:DeleteImage", f"{IMAGES}/1", "ImplicitDeny"),
        ("ram", "iam:CreateUser", f"{ARN}:user/new", "ImplicitDeny"),
        ("sita", "iam:CreateUser", f"{ARN}:user/new", "Allow"),
        ("gita", "iam:DeleteUser", f"{ARN}:user/ram", "Allow"),
        ("sita", "images:DeleteImage", f"{IMAGES}/1", "Allow"),
        ("sita", "sts:AssumeRole", f"{ARN}:role/ImageAdmin", "Allow"),
        ("ram", "sts:AssumeRole", f"{ARN}:role/ImageAdmin", "ImplicitDeny"),
    ],
)
def test_team_decisions(
    team: tuple[Store, Any], user: str, action: str, resource: str, effect: str
) -> None:
    """Developers read images and manage only their own folder; admins manage images and IAM."""
    decision = Authorizer(team[0]).authorize(f"{ARN}:user/{user}", action, resource)
    assert decision.effect.value == effect


def test_admins_manage_users_through_the_api(team: tuple[Store, Any]) -> None:
    """Acting as Sita the API creates and deletes a user; acting as Ram it is AccessDenied."""
    authorizer = Authorizer(team[0])
    as_sita = IAM(team[0], ACCOUNT, caller=f"{ARN}:user/sita", authorizer=authorizer)
    as_sita.create_user("temp")
    as_sita.delete_user("temp")
    as_ram = IAM(team[0], ACCOUNT, caller=f"{ARN}:user/ram", authorizer=authorizer)
    with pytest.raises(AccessDenied):
        as_ram.create_user("temp")


def test_a_new_user_can_do_nothing(empty_store: Store) -> None:
    """A user added to the team without groups or policies is denied everything."""
    load_model(TEAM, empty_store)
    IAM(empty_store, ACCOUNT).create_user("newcomer")
    authorizer = Authorizer(empty_store)
    for action, resource in [
        ("images:GetImage", f"{IMAGES}/1"), ("images:ListImages", "*"),
        ("images:DeleteImage", f"{IMAGES}/home/newcomer/x"), ("iam:GetUser", f"{ARN}:user/ram"),
    ]:  # fmt: skip
        decision = authorizer.authorize(f"{ARN}:user/newcomer", action, resource)
        assert decision.effect.value == "ImplicitDeny", action
        assert decision.statements == ()


def test_the_team_loads_the_same_into_every_store(empty_store: Store) -> None:
    """Loading into a SQLite store gives what loading into memory gives."""
    load_model(TEAM, empty_store)
    iam = IAM(empty_store, ACCOUNT)
    assert [u.name for u in iam.get_group_users("developers")] == ["ram", "shyam"]
    assert sorted(r.name for r in iam.list_roles()) == ["ImageAdmin", "ImageReader"]
    decision = Authorizer(empty_store).authorize(
        f"{ARN}:user/ram", "images:GetImage", f"{IMAGES}/1"
    )
    assert decision.allowed


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_are_generated_and_returned(team: tuple[Store, Any]) -> None:
    """The root password and service secret are returned, and are what the store checks."""
    store, secrets = team
    password = secrets.root_passwords[ACCOUNT]
    assert list(secrets.root_passwords) == [ACCOUNT]
    assert len(password) >= 20
    root = store.read(lambda tx: tx.get("root_login", ACCOUNT, "root"))
    assert root is not None and verify_password(root["password_hash"], password)
    assert password not in json.dumps(root)
    secret = secrets.service_secrets[f"{ACCOUNT}/image-processor"]
    record = store.read(lambda tx: tx.get("service", ACCOUNT, "image-processor"))
    assert record is not None and verify_secret(record["secret_hash"], secret)
    assert secret not in json.dumps(record)


def test_each_load_generates_new_secrets() -> None:
    """Two loads of one file give different secrets: none comes from the file."""
    _, first = load_model(TEAM)
    _, second = load_model(TEAM)
    assert first.root_passwords[ACCOUNT] != second.root_passwords[ACCOUNT]
    key = f"{ACCOUNT}/image-processor"
    assert first.service_secrets[key] != second.service_secrets[key]


@pytest.mark.parametrize(
    ("section", "key"),
    [("users", "password"), ("services", "secret"), ("users", "access_keys")],
)
def test_a_secret_in_the_file_is_refused(section: str, key: str) -> None:
    """A file cannot carry credentials: such keys are unknown keys, located."""
    model = team_model()
    model["accounts"][0][section][0][key] = "hunter2-Hunter2"
    with pytest.raises(InvalidInput) as raised:
        load_model(model)
    assert raised.value.message == f"accounts[0].{section}[0]: unknown key `{key}`"


# -- errors, located -------------------------------------------------------------------------


def test_a_user_in_a_missing_group_is_located() -> None:
    """A user naming a group the file does not define: NoSuchEntity at accounts[0].users[1]."""
    model = team_model()
    model["accounts"][0]["users"][1]["groups"] = ["testers"]
    with pytest.raises(NoSuchEntity) as raised:
        load_model(model)
    assert raised.value.message == "accounts[0].users[1]: group `testers` cannot be found"


def test_an_unknown_key_is_located() -> None:
    """A misspelt key is refused where it is, at any level."""
    model = team_model()
    model["accounts"][0]["roles"][1]["trust"] = model["accounts"][0]["roles"][1].pop("trust_policy")
    with pytest.raises(InvalidInput) as raised:
        load_model(model)
    assert raised.value.message == "accounts[0].roles[1]: unknown key `trust`"
    model = team_model()
    model["accounts"][0]["user"] = []
    with pytest.raises(InvalidInput) as raised:
        load_model(model)
    assert raised.value.message == "accounts[0]: unknown key `user`"


def test_a_malformed_policy_document_is_named_with_every_problem() -> None:
    """A bad managed policy raises MalformedPolicyDocument naming the entry and every problem."""
    model = team_model()
    statement = model["accounts"][0]["policies"][1]["document"]["Statement"][0]
    statement["Effect"] = "Permit"
    statement["Acton"] = statement.pop("Action")
    with pytest.raises(MalformedPolicyDocument) as raised:
        load_model(model)
    where = "policy `accounts[0].policies[1]`"
    assert raised.value.message == (
        f"{where}: Statement[0]: unknown key `Acton` (did you mean `Action`?); "
        "Statement[0].Effect: `Permit` is not `Allow` or `Deny`; "
        "Statement[0]: missing `Action` or `NotAction`"
    )
    assert len(raised.value.problems) == 3


def test_a_malformed_trust_policy_is_named() -> None:
    """A trust policy without a Principal is located at its role."""
    model = team_model()
    del model["accounts"][0]["roles"][0]["trust_policy"]["Statement"][0]["Principal"]
    with pytest.raises(MalformedPolicyDocument) as raised:
        load_model(model)
    assert raised.value.message == (
        "policy `accounts[0].roles[0]`: Statement[0]: missing `Principal` or `NotPrincipal`"
    )


def test_an_unknown_attached_policy_is_located() -> None:
    """Attaching a policy the file does not define fails at the entry that attaches it."""
    model = team_model()
    model["accounts"][0]["groups"][1]["policies"].append("Nope")
    with pytest.raises(NoSuchEntity) as raised:
        load_model(model)
    assert raised.value.message == "accounts[0].groups[1]: policy `Nope` cannot be found"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accounts: [\n", "model file is not valid YAML or JSON: "),
        ("{not json", "model file is not valid YAML or JSON: "),
        ("- just\n- a list\n", "model file must be a mapping with a list of `accounts`"),
        ("accounts: {}\n", "model file must be a mapping with a list of `accounts`"),
        ("", "model file must be a mapping with a list of `accounts`"),
    ],
)
def test_text_that_is_not_a_model_is_invalid_input(text: str, message: str) -> None:
    """Text that is not YAML, or not a mapping with a list of accounts, is InvalidInput."""
    with pytest.raises(InvalidInput) as raised:
        read_model_text(text)
    assert raised.value.message.startswith(message)
    with pytest.raises(InvalidInput):
        load_model(text)


def test_json_text_is_a_model_too() -> None:
    """JSON is YAML: the team written as JSON loads the same team."""
    store, _ = load_model(json.dumps(TEAM_MODEL))
    assert [u.name for u in IAM(store, ACCOUNT).get_group_users("admins")] == ["gita", "sita"]


def test_an_account_that_exists_is_refused_before_anything_is_written(
    team: tuple[Store, Any],
) -> None:
    """Loading an account a second time fails at once, naming the account entry."""
    store, _ = team
    version = store.version()
    with pytest.raises(EntityAlreadyExists) as raised:
        load_model(TEAM, store)
    assert raised.value.message == f"account `{ACCOUNT}` already exists in the store"
    assert store.version() == version


def test_a_failed_load_writes_nothing(empty_store: Store) -> None:
    """Loading is all or nothing: a mistake in the second user leaves the store untouched, and
    the fixed file then loads in full."""
    model = team_model()
    model["accounts"][0]["users"][1]["groups"] = ["testers"]
    version = empty_store.version()
    with pytest.raises(NoSuchEntity):
        load_model(model, empty_store)
    assert empty_store.version() == version
    with pytest.raises(NoSuchEntity):
        get_account(empty_store, ACCOUNT)
    load_model(TEAM, empty_store)
    assert [u.name for u in IAM(empty_store, ACCOUNT).list_users()] == [
        "gita", "ram", "shyam", "sita",
    ]  # fmt: skip


def test_an_unquoted_account_id_is_refused() -> None:
    """An account id YAML reads as a number (leading zero: octal) is refused with a hint."""
    with pytest.raises(InvalidInput) as raised:
        load_model("accounts:\n  - id: 012345670123\n")
    assert raised.value.message == (
        "accounts[0]: account id `1402433619` must be a quoted string of 12 digits "
        '(id: "012345678901"): unquoted, YAML reads some digits as another number'
    )
