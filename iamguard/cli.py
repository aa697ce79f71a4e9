"""The iamguard command line."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """iamguard: AWS IAM's identity and permission model for Python web apps."""
