"""Audit events on the ``iamguard.audit`` logger: one structured record per event, never a secret.

Each record's message is ``event key=value ...``; the fields are also on the record as
``record.audit`` (a dict), for handlers that ship JSON.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("iamguard.audit")


def audit(event: str, **fields: object) -> None:
    """Record one event. Callers pass identifiers and outcomes only: no secret, no token."""
    if logger.isEnabledFor(logging.INFO):
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        logger.info("%s %s", event, text, extra={"audit": {"event": event, **fields}})
