"""A short load run (`benchmarks/load.py`) against each example server, every answer checked.

The script sets up a SQLite store with 56 principals, serves the images API with `iamguard
demo` in its own process and loads it from worker processes of concurrent keep-alive clients;
it checks every status against the rules it granted, and every 403 against the caller's ARN.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "load.py"


def load_run(framework: str, tmp_path: Path, seconds: float = 3) -> dict[str, Any]:
    """Run the script for ``framework``; its figures, or fail with what it printed."""
    figures = tmp_path / "load.json"
    command = [sys.executable, str(SCRIPT), "--framework", framework, "--seconds", str(seconds),
               "--processes", "2", "--threads", "8", "--refresh", "0.01", "--json", str(figures)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    (run,) = json.loads(figures.read_text())
    return dict(run)


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_every_answer_under_load_is_right(framework: str, tmp_path: Path) -> None:
    """Under concurrent load from 50+ principals, no answer is wrong, each principal is
    answered, and both allowed and denied calls are exercised (fresh sign-ins included)."""
    run = load_run(framework, tmp_path)
    assert (run["wrong"], run["errors"], run["server_errors"]) == (0, 0, []), run["examples"]
    assert run["principals"] >= 50
    assert run["answered"] == run["principals"]  # each got at least one answer, checked
    assert run["arns"] >= 50
    assert run["allowed"] > 0
    assert run["denied"] > 0
    assert run["requests"] == run["allowed"] + run["denied"]
    assert run["signins"] > 0
