"""The example images apps (Starlette, FastAPI, Flask) and `iamguard demo`, end to end.

Each app is driven through its framework's test client over the example team in memory; then
`iamguard demo` runs in a subprocess on a free port and the README's curl walk-through is
performed against it with httpx. Access keys, not passwords: argon2 is slow.
"""

from __future__ import annotations

import base64
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from iamguard import Guard
from iamguard.cli_demo import example_module, set_up
from iamguard.iam import IAM
from iamguard.modelfile import load_model
from iamguard.stores import open_store

with warnings.catch_warnings():  # starlette 1.x prefers `httpx2`; the venv has `httpx`
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
READER = f"arn:iamguard:iam::{ACCOUNT}:role/ImageReader"
FRAMEWORKS = ("starlette", "fastapi", "flask")
Call = Callable[..., tuple[int, Any]]


def basic(credential: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(credential.encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def team() -> tuple[Guard, dict[str, str]]:
    store, loaded = load_model(ROOT / "examples" / "team.yaml")
    iam = IAM(store, ACCOUNT)
    secrets = {}
    for user in ("ram", "sita"):
        created = iam.create_access_key(user)
        secrets[user] = f"{created.access_key.access_key_id}:{created.secret_access_key}"
    secrets["image-processor"] = (
        "image-processor:" + loaded.service_secrets[f"{ACCOUNT}/image-processor"]
    )
    shared = example_module("images_store")
    return Guard(store, issuer=shared.ISSUER, audience=shared.AUDIENCE), secrets


@pytest.fixture(params=FRAMEWORKS)
def call(request: pytest.FixtureRequest, team: tuple[Guard, dict[str, str]]) -> Iterator[Call]:
    """``call(method, path, headers=..., json=...) -> (status, body)`` on a fresh app."""
    guard, _ = team
    app = example_module(f"images_{request.param}").create_app(guard)
    if request.param == "flask":
        client = app.test_client()

        def flask_call(method: str, path: str, **kw: Any) -> tuple[int, Any]:
            response = client.open(path, method=method, **kw)
            return response.status_code, response.get_json(silent=True)

        yield flask_call
        return
    with TestClient(app) as test_client:

        def asgi_call(method: str, path: str, **kw: Any) -> tuple[int, Any]:
            response = test_client.request(method, path, **kw)
            body = response.json() if response.content else None
            return response.status_code, body

        yield asgi_call


def sign_in(call: Call, credential: str) -> str:
    status, body = call(
        "POST", "/sts/session", headers=basic(credential), json={"AccountId": ACCOUNT}
    )
    assert status == 200, body
    return body["Credentials"]["SessionToken"]


def service_role_token(call: Call, credential: str) -> str:
    status, body = call(
        "POST", "/sts/service-session", headers=basic(credential), json={"AccountId": ACCOUNT}
    )
    assert status == 200, body
    status, body = call(
        "POST", "/sts/assume-role", headers=bearer(body["Credentials"]["SessionToken"]),
        json={"RoleArn": READER, "RoleSessionName": "resize-42"},
    )  # fmt: skip
    assert status == 200, body
    assert body["AssumedRoleUser"]["Arn"].endswith(":assumed-role/ImageReader/resize-42")
    return body["Credentials"]["SessionToken"]


def test_ram_lists_but_cannot_delete(call: Call, team: tuple[Guard, dict[str, str]]) -> None:
    ram = sign_in(call, team[1]["ram"])
    status, body = call("GET", "/images", headers=bearer(ram))
    assert status == 200
    assert "1" in [image["ImageId"] for image in body["Images"]]
    assert call("GET", "/images/1", headers=bearer(ram))[0] == 200
    status, body = call("DELETE", "/images/1", headers=bearer(ram))
    assert status == 403
    assert body["Error"]["Code"] == "AccessDenied"
    assert body["Error"]["Message"] == (
        f"User: arn:iamguard:iam::{ACCOUNT}:user/ram is not authorized to perform: "
        f"images:DeleteImage on resource: arn:iamguard:images::{ACCOUNT}:image/1 because no "
        "identity-based policy allows the images:DeleteImage action"
    )
    # His own folder is his: images:* on image/home/${aws:username}/*.
    status, body = call(
        "PUT", "/images/home/ram/dog.png", headers=bearer(ram), json={"Title": "Dog"}
    )
    assert (status, body["Title"]) == (200, "Dog")
    assert call("DELETE", "/images/home/ram/dog.png", headers=bearer(ram))[0] == 200
    assert call("PUT", "/images/home/shyam/x.png", headers=bearer(ram), json={})[0] == 403


def test_sita_deletes(call: Call, team: tuple[Guard, dict[str, str]]) -> None:
    sita = sign_in(call, team[1]["sita"])
    status, body = call("DELETE", "/images/2", headers=bearer(sita))
    assert (status, body) == (200, {"Deleted": "2"})
    assert call("GET", "/images/2", headers=bearer(sita))[0] == 404


def test_service_reads_through_its_role(call: Call, team: tuple[Guard, dict[str, str]]) -> None:
    reader = service_role_token(call, team[1]["image-processor"])
    status, body = call("GET", "/images/3", headers=bearer(reader))
    assert (status, body["ImageId"]) == (200, "3")
    status, body = call("PUT", "/images/3", headers=bearer(reader), json={"Title": "x"})
    assert status == 403
    assert body["Error"]["Message"].startswith(
        f"User: arn:iamguard:sts::{ACCOUNT}:assumed-role/ImageReader/resize-42 is not "
        "authorized to perform: images:PutImage"
    )


def test_no_token_is_401_and_the_token_endpoint_is_public(call: Call) -> None:
    status, body = call("GET", "/images")
    assert (status, body["Error"]["Code"]) == (401, "MissingAuthenticationToken")
    assert call("DELETE", "/images/1")[0] == 401
    assert call("GET", "/images/1", headers=bearer("not-a-token"))[0] == 401
    assert call("GET", "/")[0] == 200
    status, body = call("GET", "/.well-known/jwks.json")
    assert status == 200
    assert body["keys"]


# --- `iamguard demo` in a subprocess -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_banner(process: subprocess.Popen[str], errors: Path, timeout: float = 30.0) -> str:
    """The demo's output up to its last banner line, or fail with what it printed."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=0.5))
        except queue.Empty:
            continue
        if "Press Ctrl+C" in seen[-1]:
            return "".join(seen)
    pytest.fail(f"`iamguard demo` did not start:\n{''.join(seen)}\n{errors.read_text()}")


def wait_until_serving(base: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"nothing answered at {base}")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_demo_command_walk_through(framework: str, tmp_path: Path) -> None:
    """The installed `iamguard demo`, run from the repository root as the README says, serves
    the walk-through: Ram lists and is refused a delete; the service assumes ImageReader."""
    port = free_port()
    store = f"sqlite:///{tmp_path / 'demo.db'}"
    script = Path(sys.executable).parent / "iamguard"  # the console script, as a user runs it
    command = [
        str(script),
        "demo",
        "--framework",
        framework,
        "--port",
        str(port),
        "--store",
        store,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    errors = tmp_path / "stderr.txt"
    with (
        errors.open("w") as stderr,
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr,
                         text=True) as process,
    ):  # fmt: skip
        try:
            walk_through(process, port, errors)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0, errors.read_text()
        finally:
            if process.poll() is None:
                process.kill()
    # Started again on the same store, the demo reuses the team and shows no secret again.
    reopened = open_store(store)
    try:
        assert set_up(reopened) is None
    finally:
        reopened.close()


def walk_through(process: subprocess.Popen[str], port: int, errors: Path) -> None:
    """The README's curl walk-through, with httpx, on the keys the demo printed."""
    banner = read_banner(process, errors)
    found = dict(re.findall(r"export (RAM|SITA|PROCESSOR)='([^']+)'", banner))
    assert set(found) == {"RAM", "SITA", "PROCESSOR"}, banner
    assert found["RAM"].startswith("AKIA")
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(base)
    with httpx.Client(base_url=base, timeout=10.0) as client:
        signed_in = client.post(
            "/sts/session", auth=tuple(found["RAM"].split(":", 1)), json={"AccountId": ACCOUNT}
        )
        assert signed_in.status_code == 200, signed_in.text
        ram = bearer(signed_in.json()["Credentials"]["SessionToken"])
        assert client.get("/images", headers=ram).status_code == 200
        denied = client.delete("/images/1", headers=ram)
        assert denied.status_code == 403
        assert "because no identity-based policy allows" in denied.json()["Error"]["Message"]

        service = client.post(
            "/sts/service-session", auth=tuple(found["PROCESSOR"].split(":", 1)),
            json={"AccountId": ACCOUNT},
        )  # fmt: skip
        assert service.status_code == 200, service.text
        assumed = client.post(
            "/sts/assume-role",
            headers=bearer(service.json()["Credentials"]["SessionToken"]),
            json={"RoleArn": READER, "RoleSessionName": "resize-42"},
        )
        assert assumed.status_code == 200, assumed.text
        reader = bearer(assumed.json()["Credentials"]["SessionToken"])
        assert client.get("/images/1", headers=reader).json()["ImageId"] == "1"
        assert client.put("/images/1", headers=reader, json={}).status_code == 403
