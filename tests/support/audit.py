"""Reading audit events back in tests: each record of the audit logger is one JSON object."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_identity_provider.audit import AUDIT_LOGGER


def audit_events(caplog: pytest.LogCaptureFixture, event: str | None = None) -> list[dict[str, Any]]:
    """The audit events caplog captured (optionally only those named ``event``), in order."""
    found = [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]
    return [e for e in found if event is None or e["event"] == event]
