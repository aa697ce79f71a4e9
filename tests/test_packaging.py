"""The installed package holds every package of the source tree (the CI installs it plainly)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _source_packages() -> list[str]:
    found = []
    for init in sorted((ROOT / "iamguard").rglob("__init__.py")):
        parts = init.parent.relative_to(ROOT).parts
        found.append(".".join(parts))
    if (ROOT / "integrations" / "__init__.py").exists():
        found.append("iamguard.integrations")
    return found


def test_every_source_package_is_importable_from_the_installation() -> None:
    """Each package in iamguard/ and integrations/ imports from the installed distribution."""
    packages = _source_packages()
    assert "iamguard.policy" in packages
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    assert missing == []
