"""``iamguard demo``: the example team and images API, running, in one command.

It creates (or reuses) an embedded SQLite store holding the example team of
``examples/team.yaml``, gives Ram (a developer) and Sita (an admin) an access key, prints those
and the image-processor service's secret ONCE (only when it creates the store: iamguard keeps
hashes only), then serves the example images API in Starlette, FastAPI or Flask and prints how
to sign in with curl.

The apps live in ``examples/`` (not an installed package): they are imported as
``examples.images_<framework>`` with the repository root on ``sys.path``, found next to this
package (an editable install) or in the current directory (the repository root).
"""

from __future__ import annotations

import importlib
import signal
import sys
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, Final

import click

from iamguard.cli_common import Target, display_url, sqlite_file
from iamguard.guard import Guard
from iamguard.iam import IAM, list_accounts
from iamguard.modelfile import build_model, install_model
from iamguard.stores.base import Store

DEMO_STORE: Final = "sqlite:///iamguard-demo.db"
ACCOUNT: Final = "123456789012"
SERVICE: Final = "image-processor"
FRAMEWORKS: Final = ("starlette", "fastapi", "flask")


def examples_dir() -> Path:
    """The repository's ``examples/`` directory, or a usage error naming where to run from."""
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / "examples" / "team.yaml").is_file():
            return root / "examples"
    raise click.UsageError(
        "cannot find examples/team.yaml: run `iamguard demo` from the repository root"
    )


def example_module(name: str) -> ModuleType:
    """``examples.<name>``, imported with the repository root at the end of ``sys.path`` (so it
    never shadows the installed iamguard)."""
    root = str(examples_dir().parent)
    if root not in sys.path:
        sys.path.append(root)
    return importlib.import_module(f"examples.{name}")


def _has_account(store: Store) -> bool:
    return any(account.account_id == ACCOUNT for account in list_accounts(store))


def set_up(store: Store) -> dict[str, str] | None:
    """Load the example team into ``store`` unless its account is there; the new credentials
    (``ram``, ``sita``, ``image-processor``: ``id:secret``), or None when it was there."""
    if _has_account(store):
        return None
    built, loaded = build_model(examples_dir() / "team.yaml")
    install_model(built, store)
    iam = IAM(store, ACCOUNT)
    secrets = {}
    for user in ("ram", "sita"):
        created = iam.create_access_key(user)
        secrets[user] = f"{created.access_key.access_key_id}:{created.secret_access_key}"
    secrets[SERVICE] = f"{SERVICE}:{loaded.service_secrets[f'{ACCOUNT}/{SERVICE}']}"
    return secrets


def _banner(url: str, base: str, secrets: dict[str, str] | None, framework: str) -> str:
    lines = [f"iamguard demo: the images API ({framework}) at {base}, store {display_url(url)}"]
    if secrets is None:
        lines += [
            "",
            "The store exists: its secrets were shown when it was created. New ones:",
            f"  iamguard access-key create ram --store {url}    (at most two per user)",
            "  or start afresh: delete the store and run `iamguard demo` again.",
        ]
    else:
        lines += [
            "",
            "Credentials, shown ONLY this once (the store keeps hashes): paste into your shell:",
            f"  export RAM='{secrets['ram']}'              # ram, a developer",
            f"  export SITA='{secrets['sita']}'             # sita, an admin",
            f"  export PROCESSOR='{secrets[SERVICE]}'       # the image-processor service",
        ]
    session = (
        f"curl -s -u \"$RAM\" -X POST {base}/sts/session -H 'content-type: application/json' "
        f'-d \'{{"AccountId":"{ACCOUNT}"}}\''
    )
    lines += [
        "",
        "Sign in as Ram and list the images:",
        f"  {session}",
        "  TOKEN=...   # Credentials.SessionToken from the answer",
        f'  curl -s {base}/images -H "authorization: Bearer $TOKEN"',
        f'  curl -s -X DELETE {base}/images/1 -H "authorization: Bearer $TOKEN"   # 403',
        "",
        "Press Ctrl+C to stop.",
    ]
    return "\n".join(lines)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(framework: str, app: Any, host: str, port: int) -> None:
    """Serve until Ctrl+C or SIGTERM, then return (uvicorn shuts down gracefully first and then
    re-raises the signal, which ``_stop`` turns into a clean exit)."""
    signal.signal(signal.SIGTERM, _stop)
    try:
        if framework == "flask":
            from waitress.server import create_server  # noqa: PLC0415 -- optional, only here

            server: Any = create_server(app, host=host, port=port)
            try:
                server.run()
            finally:
                server.close()
        else:
            import uvicorn  # noqa: PLC0415 -- an optional dependency, needed only here

            uvicorn.run(app, host=host, port=port, log_level="warning")
    except KeyboardInterrupt:
        pass


@click.command()
@click.option(
    "--framework", type=click.Choice(FRAMEWORKS), default="starlette", show_default=True,
    help="The app to serve: Starlette and FastAPI in uvicorn, Flask in waitress.",
)  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="The port to listen on.")
@click.option(
    "--store", "store_url", metavar="URL", default=DEMO_STORE, show_default=True,
    help="The demo's store (created with the example team if it lacks its account).",
)  # fmt: skip
def demo(*, framework: str, host: str, port: int, store_url: str) -> None:
    """Run the example images API, guarded by iamguard, on the example team.

    Creates the store with the team of examples/team.yaml (Ram and Shyam, developers; Sita and
    Gita, admins; the image-processor service and its ImageReader role) unless it holds the
    team already, prints access keys for Ram and Sita and the service's secret (only when it
    creates the store), then serves the API until Ctrl+C. Run it from the repository root.
    """
    module = example_module(f"images_{framework}")
    path = sqlite_file(store_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    target = Target(store_url, None, must_exist=False)
    try:
        secrets = set_up(target.store)
        shared = example_module("images_store")
        guard = Guard(target.store, issuer=shared.ISSUER, audience=shared.AUDIENCE)
        app = module.create_app(guard)
        base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        click.echo(_banner(store_url, base, secrets, framework))
        sys.stdout.flush()
        _serve(framework, app, host, port)
    finally:
        target.close()
    click.echo("iamguard demo: stopped")
