"""Structured audit events: one log line per sign-in decision, for the people who must answer "who got in, as what".

Events go to the ``airflow_identity_provider.audit`` logger as ``event=... key=value`` pairs so they can be
routed and searched separately from the rest of the api-server log. Never pass secrets or tokens here.
"""

from __future__ import annotations

import logging

audit_log = logging.getLogger("airflow_identity_provider.audit")


def _format(value: object) -> str:
    text = str(value)
    # Quote anything that could split or forge a log line (spaces, '=', newlines, other control chars).
    return repr(text) if (not text or not text.isprintable() or " " in text or "=" in text) else text


def emit(event: str, *, level: int = logging.INFO, **fields: object) -> str:
    """Log one audit event and return the formatted line (handy for tests and error pages)."""
    line = " ".join([f"event={event}", *(f"{key}={_format(value)}" for key, value in fields.items())])
    audit_log.log(level, line)
    return line
