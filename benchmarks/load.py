"""A bounded load run on the example images API, every answer checked.

    .venv/bin/python benchmarks/load.py [--seconds N] [--framework starlette|flask|all] [--soak]

Setup: a fresh SQLite file holding the example team (``examples/team.yaml``) plus generated
groups, policies and users, each user with an access key and a session token, and role sessions
(the image-processor service as ``ImageReader``; admins as ``ImageAdmin`` with a session policy
of their own): 56 principals. What each was granted is restated below as a plain rule
(``allowed``), and every answer is checked against it: allowed calls answer 200 (404 for a
missing image), denied ones 403 whose message names the caller's ARN, the action and the
resource. ``iamguard demo`` serves the API in its own process (uvicorn or waitress); worker
processes of keep-alive ``http.client`` threads send the load, each request from a principal
chosen at random. Exit status 1 on any wrong answer or transport error, or, with ``--soak``,
when the server's RSS grows beyond the bound after warm-up. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timing import fmt_us, stop, table

from iamguard.cli_demo import example_module, examples_dir
from iamguard.guard import Guard
from iamguard.iam import IAM
from iamguard.modelfile import build_model, install_model, read_model_text
from iamguard.stores import open_store

ACCOUNT = "123456789012"
IMAGES = f"arn:iamguard:images::{ACCOUNT}:image/"
READER_ROLE = f"arn:iamguard:iam::{ACCOUNT}:role/ImageReader"
ADMIN_ROLE = f"arn:iamguard:iam::{ACCOUNT}:role/ImageAdmin"
SERVICE = "image-processor"
LIST, GET, PUT, DELETE = (f"images:{a}" for a in ("ListImages", "GetImage", "PutImage",
                                                  "DeleteImage"))  # fmt: skip
READS = frozenset({LIST, GET})
METHOD = {LIST: "GET", GET: "GET", PUT: "PUT", DELETE: "DELETE"}
MIX = ((LIST, 1), (GET, 4), (PUT, 3), (DELETE, 2))  # action, weight
TEAMS = ("t0", "t1", "t2", "t3")
BATCHES = range(1, 9)
FRESH = "n-"  # the name of an image never seen before starts so
FOLDER = 4  # images a principal may create per folder: keeps the app's own data small
FRAMEWORKS = ("starlette", "fastapi", "flask")
SOAK_BOUND_MB = 5.0  # RSS growth allowed after warm-up, in MB, and as a share of RSS:
SOAK_BOUND_SHARE = 0.05  # whichever is larger (see benchmarks/README.md)

# What each generated kind of principal is granted, on top of the example team's policies.
GENERATED_POLICIES = [
    {"name": "TeamUpload", "document": {"Version": "2012-10-17", "Statement": [
        {"Sid": "OwnTeamFolder", "Effect": "Allow", "Action": [GET, PUT],
         "Resource": IMAGES + "team/${aws:PrincipalTag/team}/*"}]}},
    {"name": "ReadAndUploadBoundary", "document": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["images:Get*", "images:List*", PUT],
         "Resource": IMAGES + "*"}]}},
]  # fmt: skip
NO_ARCHIVE_DELETE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Action": DELETE, "Resource": IMAGES + "archive/*"}]}  # fmt: skip
NOT_IMAGE_2 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Action": GET, "Resource": IMAGES + "2"}]}  # fmt: skip


def batch_policy(batch: int) -> str:
    """The session policy of an ``ImageAdmin`` session: read all, write one batch folder."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": [GET, LIST], "Resource": IMAGES + "*"},
        {"Effect": "Allow", "Action": [PUT, DELETE], "Resource": f"{IMAGES}batch/{batch}/*"},
    ]})  # fmt: skip


# --- who is granted what -------------------------------------------------------------------------


def allowed(slot: dict[str, Any], action: str, image_id: str | None) -> bool:
    """What the policies generated here grant, restated (never asks iamguard)."""
    kind = slot["kind"]
    image = image_id or ""
    own_home = image_id is not None and image.startswith(f"home/{slot['user']}/")
    if kind in ("reader", "reader-role"):  # ImageReadAccess
        return action in READS
    if kind == "developer":  # ImageReadAccess + DeveloperAccess (images:* on home/<self>/*)
        return action in READS or own_home
    if kind == "restricted":  # a developer with an explicit deny of GetImage on image/2
        return (action in READS or own_home) and not (action == GET and image == "2")
    if kind == "bounded":  # a developer within ReadAndUploadBoundary: no deletes at all
        return action in READS or (action == PUT and own_home)
    if kind == "uploader":  # TeamUpload only: get and put in team/<tag>/
        return action in (GET, PUT) and image.startswith(f"team/{slot['team']}/")
    if kind == "admin":  # AdminAccess (images:* on *), but never delete in archive/
        return not (action == DELETE and image.startswith("archive/"))
    if kind == "admin-role":  # ImageAdmin (images:*) within batch_policy(batch)
        return action in READS or image.startswith(f"batch/{slot['batch']}/")
    raise ValueError(f"unknown kind `{kind}`")


SPOT_CHECKS = (  # (kind, user/team/batch, action, image id, allowed): the README's facts and ours
    ("developer", "ram", LIST, None, True),
    ("developer", "ram", DELETE, "1", False),
    ("developer", "ram", PUT, "home/ram/dog.png", True),
    ("developer", "ram", PUT, "home/shyam/x.png", False),
    ("developer", "ram", DELETE, "home/ram/dog.png", True),
    ("restricted", "dev09", GET, "2", False),
    ("restricted", "dev09", GET, "1", True),
    ("bounded", "bnd01", PUT, "home/bnd01/a", True),
    ("bounded", "bnd01", DELETE, "home/bnd01/a", False),
    ("reader", "rdr01", PUT, "1", False),
    ("reader-role", None, GET, "3", True),
    ("reader-role", None, PUT, "3", False),
    ("uploader", "t1", PUT, "team/t1/f0.png", True),
    ("uploader", "t1", PUT, "team/t2/f0.png", False),
    ("uploader", "t1", LIST, None, False),
    ("uploader", "t1", DELETE, "team/t1/f0.png", False),
    ("admin", "sita", DELETE, "2", True),
    ("admin", "sita", DELETE, "archive/f1.png", False),
    ("admin-role", 3, PUT, "batch/3/f0.png", True),
    ("admin-role", 3, PUT, "batch/4/f0.png", False),
    ("admin-role", 3, DELETE, "1", False),
)


def check_rules() -> None:
    """The rules say what the policies above grant, on cases written out by hand."""
    for kind, who, action, image_id, expected in SPOT_CHECKS:
        slot = {"kind": kind, "user": who, "team": who, "batch": who}
        if allowed(slot, action, image_id) != expected:
            raise SystemExit(f"FAIL: rule for {kind} {who}: {action} {image_id}: not {expected}")


# --- setup: the store and the principals ---------------------------------------------------------


def generated_users() -> list[dict[str, Any]]:
    """Model-file entries of the generated users, with a ``kind`` for the rules."""
    def user(kind: str, name: str, groups: list[str], **extra: Any) -> dict[str, Any]:
        return {"kind": kind, "name": name, "groups": groups, **extra}

    users = [user("developer", f"dev{i:02}", ["developers"]) for i in range(1, 9)]
    users += [user("restricted", f"dev{i:02}", ["developers"],
                   inline_policies={"not-image-2": NOT_IMAGE_2}) for i in range(9, 13)]  # fmt: skip
    users += [user("bounded", f"bnd{i:02}", ["developers"],
                   permissions_boundary="ReadAndUploadBoundary") for i in range(1, 7)]  # fmt: skip
    users += [user("reader", f"rdr{i:02}", ["readers"]) for i in range(1, 9)]
    users += [user("uploader", f"upl{i:02}", ["uploaders"], tags={"team": TEAMS[i % 4]})
              for i in range(1, 9)]  # fmt: skip
    users += [user("admin", f"adm{i:02}", ["admins"]) for i in range(1, 5)]
    return users


def model() -> tuple[dict[str, Any], dict[str, str]]:
    """The example team plus the generated entities; and each user's kind."""
    data = read_model_text((examples_dir() / "team.yaml").read_text(encoding="utf-8"))
    account = data["accounts"][0]
    account["policies"] += GENERATED_POLICIES
    account["groups"] += [{"name": "readers", "policies": ["ImageReadAccess"]},
                          {"name": "uploaders", "policies": ["TeamUpload"]}]  # fmt: skip
    kinds = {"ram": "developer", "shyam": "developer", "sita": "admin", "gita": "admin"}
    for entry in generated_users():
        kinds[entry["name"]] = entry.pop("kind")
        account["users"].append(entry)
    for entry in account["users"]:
        if kinds[entry["name"]] == "admin":
            entry.setdefault("inline_policies", {})["no-archive-delete"] = NO_ARCHIVE_DELETE
    return data, kinds


def user_slots(guard: Guard, iam: IAM, kinds: dict[str, str]) -> list[dict[str, Any]]:
    """One slot per user: an access key, a session token from it, the user's rule inputs."""
    slots = []
    teams = {entry["name"]: entry.get("tags", {}).get("team") for entry in generated_users()}
    for name, kind in kinds.items():
        created = iam.create_access_key(name)
        key_id, secret = created.access_key.access_key_id, created.secret_access_key
        token = guard.sts.get_session_token(
            ACCOUNT, access_key_id=key_id, secret_access_key=secret
        ).session_token
        slots.append({
            "kind": kind, "user": name, "team": teams.get(name), "batch": None,
            "key": f"{key_id}:{secret}", "session": None,
            "cred": (f"arn:iamguard:iam::{ACCOUNT}:user/{name}", token),
        })  # fmt: skip
    return slots


def role_slots(
    guard: Guard, service_secret: str, admins: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Role sessions: the service as ImageReader (six), admins as ImageAdmin (eight batches)."""
    slots: list[dict[str, Any]] = []
    service = guard.authenticate(
        guard.sts.get_service_session(ACCOUNT, SERVICE, service_secret).session_token
    )
    for n in range(1, 7):
        name = f"resize-{n}"
        made = guard.sts.assume_role(service, READER_ROLE, name)
        slots.append({"kind": "reader-role", "user": None, "team": None, "batch": None,
                      "key": f"{SERVICE}:{service_secret}", "session": name,
                      "cred": (made.session.principal, made.session_token)})  # fmt: skip
    for batch in BATCHES:
        admin = admins[batch % len(admins)]
        caller = guard.authenticate(admin["cred"][1])
        name = f"batch-{batch}-{admin['user']}"
        made = guard.sts.assume_role(caller, ADMIN_ROLE, name, policy=batch_policy(batch))
        slots.append({"kind": "admin-role", "user": admin["user"], "team": None, "batch": batch,
                      "key": admin["key"], "session": name,
                      "cred": (made.session.principal, made.session_token)})  # fmt: skip
    return slots


def set_up(url: str) -> list[dict[str, Any]]:
    """Create the store at ``url`` and return every principal's slot (see ``allowed``)."""
    data, kinds = model()
    built, loaded = build_model(data)
    store = open_store(url)
    try:
        install_model(built, store)
        shared = example_module("images_store")
        guard = Guard(store, issuer=shared.ISSUER, audience=shared.AUDIENCE)
        users = user_slots(guard, IAM(store, ACCOUNT), kinds)
        admins = [s for s in users if s["kind"] == "admin"]
        secret = loaded.service_secrets[f"{ACCOUNT}/{SERVICE}"]
        return users + role_slots(guard, secret, admins)
    finally:
        store.close()


# --- one request, checked ------------------------------------------------------------------------


def pick(rng: random.Random, slot: dict[str, Any], users: list[str],
         fresh: float) -> tuple[str, str | None]:  # fmt: skip
    """An action and an image id (None for the list) for ``slot``: its own folder, others',
    shared ones, and, except for PUT, a share ``fresh`` of ids never seen before (many distinct
    paths, for caches keyed by path to show)."""
    action = rng.choices([a for a, _ in MIX], [w for _, w in MIX])[0]
    if action == LIST:
        return action, None
    k = rng.randrange(FOLDER)
    own = {"uploader": f"team/{slot['team']}/", "admin-role": f"batch/{slot['batch']}/",
           "reader-role": "shared/"}.get(slot["kind"], f"home/{slot['user']}/")  # fmt: skip
    families = [
        own, own, f"home/{rng.choice(users)}/", f"team/{rng.choice(TEAMS)}/", "archive/",
        f"batch/{rng.choice(BATCHES)}/", "",
    ]  # fmt: skip
    prefix = rng.choice(families)
    if prefix == "":
        return action, rng.choice("123")
    if action != PUT and rng.random() < fresh:
        return action, f"{prefix}{FRESH}{rng.getrandbits(48):x}.png"
    return action, f"{prefix}f{k}.png"


def verdict(arn: str, action: str, image_id: str | None, expect: bool, status: int,
            body: bytes) -> str | None:  # fmt: skip
    """None when the answer is right, else what is wrong with it."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return f"status {status}, body not JSON: {body[:120]!r}"
    if not expect:
        resource = IMAGES + (image_id if image_id is not None else "*")
        prefix = (f"User: {arn} is not authorized to perform: {action} on resource: "
                  f"{resource} ")  # fmt: skip
        error = data.get("Error") if isinstance(data, dict) else None
        message = str(error.get("Message", "")) if status == 403 and isinstance(error, dict) else ""
        return None if message.startswith(prefix) else f"expected 403 for {arn}: {status} {data}"
    got = data if isinstance(data, dict) else {}
    ok = {
        LIST: status == 200 and isinstance(got.get("Images"), list),
        GET: (status == 200 and got.get("ImageId") == image_id) or status == 404,
        PUT: status == 200 and got.get("ImageId") == image_id and got.get("UploadedBy") == arn,
        DELETE: (status == 200 and got == {"Deleted": image_id}) or status == 404,
    }[action]
    return None if ok else f"expected allowed for {arn}: {status} {data}"


# --- the load: worker processes of threads -------------------------------------------------------


@dataclass
class Tally:
    """What one thread (then one run) saw."""

    requests: int = 0
    allowed: int = 0
    denied: int = 0
    wrong: int = 0
    errors: int = 0
    signins: int = 0
    fresh: int = 0  # requests for an image id never seen before
    examples: list[str] = field(default_factory=list)
    latencies_us: list[int] = field(default_factory=list)
    signin_us: list[int] = field(default_factory=list)
    answered: dict[int, list[int]] = field(default_factory=dict)  # slot -> [allowed, denied]
    arns: set[str] = field(default_factory=set)

    def merge(self, other: dict[str, Any]) -> None:
        for name in ("requests", "allowed", "denied", "wrong", "errors", "signins", "fresh"):
            setattr(self, name, getattr(self, name) + other[name])
        self.examples += other["examples"][: max(0, 10 - len(self.examples))]
        self.latencies_us += other["latencies_us"]
        self.signin_us += other["signin_us"]
        for index, (yes, no) in other["answered"].items():
            mine = self.answered.setdefault(int(index), [0, 0])
            mine[0] += yes
            mine[1] += no
        self.arns |= set(other["arns"])

    def wrong_answer(self, text: str) -> None:
        self.wrong += 1
        if len(self.examples) < 10:
            self.examples.append(text)


class Client:
    """One keep-alive connection, reopened after a transport error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, headers: dict[str, str],
             body: bytes | None = None) -> tuple[int, bytes]:  # fmt: skip
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise


def post_json(client: Client, path: str, auth: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST to the token endpoint; the answer's JSON, or RuntimeError naming the failure."""
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    status, body = client.call("POST", path, headers, json.dumps(payload).encode())
    if status != 200:
        raise RuntimeError(f"{path}: {status} {body[:200]!r}")
    return dict(json.loads(body))


def basic(credential: str) -> str:
    return "Basic " + base64.b64encode(credential.encode()).decode()


def sign_in_again(client: Client, slot: dict[str, Any], name: str) -> tuple[str, str]:
    """A fresh session through the server's token endpoint: a new token (and, for a role, a
    new session name ``name``); the slot's new (ARN, token)."""
    account = {"AccountId": ACCOUNT}
    if slot["kind"] == "reader-role":
        made = post_json(client, "/sts/service-session", basic(slot["key"]), account)
    else:
        made = post_json(client, "/sts/session", basic(slot["key"]), account)
    token = made["Credentials"]["SessionToken"]
    if slot["session"] is None:
        return slot["cred"][0], token
    request: dict[str, Any] = {"RoleSessionName": name, "RoleArn": READER_ROLE}
    if slot["kind"] == "admin-role":
        request = {"RoleSessionName": name, "RoleArn": ADMIN_ROLE,
                   "Policy": batch_policy(slot["batch"])}  # fmt: skip
    made = post_json(client, "/sts/assume-role", f"Bearer {token}", request)
    return made["AssumedRoleUser"]["Arn"], made["Credentials"]["SessionToken"]


def refresh(client: Client, slots: list[dict[str, Any]], index: int, name: str,
            tally: Tally) -> None:  # fmt: skip
    """Sign ``slots[index]`` in afresh; a failure is a wrong answer."""
    slot = slots[index]
    start = time.perf_counter_ns()
    try:
        slot["cred"] = sign_in_again(client, slot, f"{slot['session']}-{name}")
    except (OSError, http.client.HTTPException) as e:
        tally.errors += 1
        tally.wrong_answer(f"sign-in of {slot['cred'][0]}: {e!r}")
        return
    except (RuntimeError, KeyError, ValueError) as e:
        tally.wrong_answer(f"sign-in of {slot['cred'][0]}: {e}")
        return
    tally.signins += 1
    tally.signin_us.append((time.perf_counter_ns() - start) // 1000)


def one_request(client: Client, rng: random.Random, slots: list[dict[str, Any]],
                users: list[str], fresh: float, tally: Tally) -> None:  # fmt: skip
    """A request from a random principal, its answer checked and timed."""
    index = rng.randrange(len(slots))
    slot = slots[index]
    arn, token = slot["cred"]  # one read: the pair is replaced whole by a sign-in
    action, image_id = pick(rng, slot, users, fresh)
    path = "/images" if image_id is None else f"/images/{image_id}"
    headers = {"Authorization": f"Bearer {token}"}
    body = None
    if action == PUT:
        headers["Content-Type"] = "application/json"
        body = json.dumps({"Title": f"by {slot['user']}"}).encode()
    expect = allowed(slot, action, image_id)
    start = time.perf_counter_ns()
    try:
        status, answer = client.call(METHOD[action], path, headers, body)
    except (OSError, http.client.HTTPException) as e:
        tally.errors += 1
        tally.wrong_answer(f"{action} {path} as {arn}: {e!r}")
        return
    tally.latencies_us.append((time.perf_counter_ns() - start) // 1000)
    tally.requests += 1
    tally.fresh += image_id is not None and f"/{FRESH}" in image_id
    tally.arns.add(arn)
    problem = verdict(arn, action, image_id, expect, status, answer)
    if problem is not None:
        tally.wrong_answer(f"{action} {path}: {problem}")
        return
    counts = tally.answered.setdefault(index, [0, 0])
    counts[0 if expect else 1] += 1
    if expect:
        tally.allowed += 1
    else:
        tally.denied += 1


def worker(plan: dict[str, Any], index: int) -> dict[str, Any]:
    """Run ``plan["threads"]`` client threads until the deadline; the merged tally."""
    slots = plan["slots"]
    for slot in slots:
        slot["cred"] = tuple(slot["cred"])
    users = sorted({s["user"] for s in slots if s["user"]})
    deadline = time.monotonic() + plan["seconds"]
    tallies = [Tally() for _ in range(plan["threads"])]

    def run(thread: int) -> None:
        rng = random.Random(plan["seed"] * 1000 + index * 100 + thread)
        client, tally, n = Client(plan["port"]), tallies[thread], 0
        try:
            while time.monotonic() < deadline:
                if rng.random() < plan["refresh"]:
                    n += 1
                    name = f"w{index}t{thread}n{n}"
                    refresh(client, slots, rng.randrange(len(slots)), name, tally)
                else:
                    one_request(client, rng, slots, users, plan["fresh"], tally)
        except Exception as e:  # a client bug must fail the run, not shorten it
            tally.wrong_answer(f"client thread {thread} stopped: {e!r}")
        client.conn.close()

    threads = [threading.Thread(target=run, args=(t,)) for t in range(plan["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Tally()
    for tally in tallies:
        total.merge({**tally.__dict__, "arns": list(tally.arns)})
    return {**total.__dict__, "arns": sorted(total.arns)}


# --- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kb(pid: int) -> int:
    """The resident set size of process ``pid`` in kB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def wait_until_serving(port: int, child: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            if Client(port).call("GET", "/", {})[0] == 200:
                return
        if child.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"FAIL: the server on port {port} did not start")


@contextlib.contextmanager
def demo_server(framework: str, url: str, logs: Path) -> Iterator[tuple[int, int]]:
    """``iamguard demo`` on ``url`` and a free port, in its own process; yields (port, pid)."""
    port = free_port()
    # The installed console script, from the repository's root, as the README runs it
    # (``python -c`` there would import the source tree instead of the installed package).
    script = Path(sys.executable).parent / "iamguard"
    command = [str(script), "demo", "--framework", framework, "--port", str(port),
               "--store", url]  # fmt: skip
    with logs.open("wb") as out:
        child = subprocess.Popen(command, cwd=examples_dir().parent, stdout=out, stderr=out)
    try:
        wait_until_serving(port, child)
        yield port, child.pid
    finally:
        stop(child, 15)


# --- a run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """One framework's run: the tally, its duration, the server's RSS samples (s, kB)."""

    framework: str
    tally: Tally
    seconds: float
    rss: list[tuple[float, int]]
    server_errors: list[str]
    principals: int  # slots set up; each must get an answer

    @property
    def failed(self) -> bool:
        return bool(self.tally.wrong or self.tally.errors or self.server_errors)


def launch_workers(plan: dict[str, Any], directory: Path) -> list[subprocess.Popen[bytes]]:
    """The worker processes; each writes its tally to ``worker-<index>.json`` in ``directory``."""
    path = directory / "plan.json"
    path.write_text(json.dumps(plan))
    command = [sys.executable, __file__, "--worker", str(path), "--index"]
    return [subprocess.Popen([*command, str(i)]) for i in range(plan["processes"])]


def sample_rss(pid: int, children: list[subprocess.Popen[bytes]], every: float,
               began: float, limit: float) -> list[tuple[float, int]]:  # fmt: skip
    """The server's RSS (seconds since ``began``, kB) at the start, every ``every`` seconds
    while the workers run (at most ``limit`` seconds), and at the end."""
    samples = [(0.0, rss_kb(pid))]
    due = every
    while any(child.poll() is None for child in children) and time.monotonic() - began < limit:
        time.sleep(0.1)
        if (now := time.monotonic() - began) >= due:
            samples.append((now, rss_kb(pid)))
            due += every
    samples.append((time.monotonic() - began, rss_kb(pid)))
    return samples


def collect(children: list[subprocess.Popen[bytes]], directory: Path, timeout: float) -> Tally:
    """The workers' merged tallies; a worker that hangs or fails fails the run."""
    tally = Tally()
    for index, child in enumerate(children):
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise SystemExit(f"FAIL: load worker {index} did not finish") from None
        if child.returncode != 0:
            raise SystemExit(f"FAIL: load worker {index} exited with {child.returncode}")
        tally.merge(json.loads((directory / f"worker-{index}.json").read_text()))
    return tally


def server_errors(logs: Path) -> list[str]:
    """Lines of the server's output that report a failure."""
    text = logs.read_text(errors="replace")
    return [line for line in text.splitlines()
            if "Traceback" in line or "ERROR" in line or "Exception" in line]  # fmt: skip


def run_one(framework: str, args: argparse.Namespace, directory: Path) -> Run:
    """Set up a fresh store, serve it, load it; the run's figures."""
    url = f"sqlite:///{directory / f'{framework}.db'}"
    slots = set_up(url)
    logs = directory / f"{framework}.log"
    with demo_server(framework, url, logs) as (port, pid):
        plan = {"port": port, "seconds": args.seconds, "threads": args.threads,
                "processes": args.processes, "seed": args.seed, "refresh": args.refresh,
                "fresh": args.fresh,
                "slots": slots}  # fmt: skip
        began = time.monotonic()
        children = launch_workers(plan, directory)
        rss = sample_rss(pid, children, args.rss_every, began, args.seconds + 60)
        tally = collect(children, directory, timeout=60)
        seconds = time.monotonic() - began
    return Run(framework, tally, seconds, rss, server_errors(logs), len(slots))


# --- figures -------------------------------------------------------------------------------------


def percentile(ordered: list[int], share: float) -> float:
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * share))]) if ordered else 0.0


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f}"


def summary_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for run in runs:
        t, ordered = run.tally, sorted(run.tally.latencies_us)
        rss = [kb for _, kb in run.rss]
        rows.append([
            run.framework, f"{t.requests:,}", f"{t.allowed:,}/{t.denied:,}", f"{t.wrong}",
            f"{t.errors}", f"{t.requests / run.seconds:,.0f}",
            fmt_us(percentile(ordered, 0.5) / 1000), fmt_us(percentile(ordered, 0.99) / 1000),
            f"{len(t.answered)}/{run.principals}/{len(t.arns)}", f"{t.signins:,}",
            f"{mb(rss[0])} / {mb(rss[len(rss) // 2])} / {mb(rss[-1])} / {mb(max(rss))}",
        ])  # fmt: skip
    return rows


def soak_verdict(run: Run, warmup: float) -> tuple[bool, str]:
    """Did RSS stay within the bound after warm-up? And a line saying so."""
    after = [kb for t, kb in run.rss if t >= warmup * run.seconds]
    if len(after) < 2:
        return False, f"{run.framework}: too few RSS samples after warm-up"
    growth = after[-1] - min(after)
    bound = max(SOAK_BOUND_MB * 1024, SOAK_BOUND_SHARE * after[0])
    ok = growth <= bound
    return ok, (
        f"{run.framework}: RSS after warm-up ({warmup:.0%} of the run) {mb(after[0])} -> "
        f"{mb(after[-1])} MB (min {mb(min(after))}, max {mb(max(after))}): growth "
        f"{mb(growth)} MB, bound {mb(int(bound))} MB: {'ok' if ok else 'EXCEEDED'}"
    )


def report(runs: list[Run], args: argparse.Namespace) -> bool:
    """Print the figures; True when everything passed."""
    headers = ["server", "requests", "allowed/denied", "wrong", "errors", "req/s", "p50 ms",
               "p99 ms", "principals answered/set up/ARNs", "sign-ins",
               "RSS MB start / mid / end / max"]  # fmt: skip
    print(table(headers, summary_rows(runs)))
    passed = True
    for run in runs:
        t = run.tally
        for example in t.examples:
            print(f"  {run.framework}: WRONG: {example}")
        for line in run.server_errors[:10]:
            print(f"  {run.framework}: server: {line}")
        if t.signin_us:
            p50 = percentile(sorted(t.signin_us), 0.5) / 1000
            print(f"  {run.framework}: sign-in p50 {fmt_us(p50)} ms")
        series = " ".join(f"{s:.0f}s:{mb(kb)}" for s, kb in run.rss[:: max(1, len(run.rss) // 24)])
        print(f"  {run.framework}: RSS MB series: {series}")
        grown = run.rss[-1][1] - run.rss[0][1]
        if t.fresh:
            print(f"  {run.framework}: RSS growth {mb(grown)} MB over {t.fresh:,} requests for "
                  f"new image ids: {grown * 1024 / t.fresh:,.0f} bytes each")
        if args.soak:
            ok, line = soak_verdict(run, args.warmup)
            print("  " + line)
            passed &= ok
        passed &= not run.failed
        if len(t.answered) < run.principals:
            print(f"  {run.framework}: {run.principals - len(t.answered)} principals got no answer")
    print("PASS" if passed else "FAIL")
    return passed


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="load per framework (default 20; soak 300)")
    parser.add_argument("--framework", choices=[*FRAMEWORKS, "all"], default="all",
                        help="all: starlette and flask")  # fmt: skip
    parser.add_argument("--soak", action="store_true", help="long run, RSS growth bounded")
    parser.add_argument("--processes", type=int, default=2, help="load worker processes")
    parser.add_argument("--threads", type=int, default=12, help="connections per worker")
    parser.add_argument("--refresh", type=float, help="share of calls that sign in afresh")
    parser.add_argument("--fresh", type=float, help="share of GET/DELETE on never-seen ids")
    parser.add_argument("--warmup", type=float, default=0.6, help="soak: share of the run")
    parser.add_argument("--rss-every", type=float, help="seconds between RSS samples")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (300.0 if args.soak else 20.0)
    args.refresh = args.refresh if args.refresh is not None else (0.08 if args.soak else 0.005)
    args.fresh = args.fresh if args.fresh is not None else (0.8 if args.soak else 0.3)
    args.rss_every = args.rss_every or (5.0 if args.soak else 1.0)
    return args


def write_json(path: Path, runs: list[Run]) -> None:
    path.write_text(json.dumps([{
        "framework": r.framework, "requests": r.tally.requests, "allowed": r.tally.allowed,
        "denied": r.tally.denied, "wrong": r.tally.wrong, "errors": r.tally.errors,
        "signins": r.tally.signins, "fresh": r.tally.fresh, "seconds": r.seconds,
        "principals": r.principals, "answered": len(r.tally.answered),
        "slots_both": sum(1 for yes, no in r.tally.answered.values() if yes and no),
        "arns": len(r.tally.arns), "rss_kb": r.rss, "server_errors": r.server_errors,
        "examples": r.tally.examples,
    } for r in runs], indent=1))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker is not None:
        result = worker(json.loads(args.worker.read_text()), args.index)
        (args.worker.parent / f"worker-{args.index}.json").write_text(json.dumps(result))
        return 0
    check_rules()
    frameworks = ("starlette", "flask") if args.framework == "all" else (args.framework,)
    runs = []
    with tempfile.TemporaryDirectory(prefix="iamguard-load-") as directory:
        for framework in frameworks:
            print(f"{framework}: {args.seconds:.0f} s, {args.processes}x{args.threads} "
                  f"connections", flush=True)  # fmt: skip
            runs.append(run_one(framework, args, Path(directory)))
    if args.json is not None:
        write_json(args.json, runs)
    return 0 if report(runs, args) else 1


if __name__ == "__main__":
    sys.exit(main())
