"""Transport-free request/response types shared by the route handlers: the emulators' common ``Request`` and
``Response`` (``dev/emulator_kit/web.py``), the request with what ARM routing reads besides, and ARM's envelopes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dev.emulator_kit.web import Request as _Request
from dev.emulator_kit.web import Response

__all__ = ["ArmFailure", "Request", "Response", "arm_error", "oauth_error"]


@dataclass
class Request(_Request):
    identity: dict[str, Any] | None = None  # decoded (unverified) claims of the bearer token
    correlation_id: str = ""

    @property
    def api_version(self) -> str | None:
        return self.param("api-version")


def arm_error(
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The ARM error envelope."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "target": None,
            "details": details or [],
            "additionalInfo": [],
        }
    }
    return Response(status, body, dict(headers or {}))


def oauth_error(status: int, error: str, description: str, codes: list[int] | None = None) -> Response:
    """The Entra (AADSTS) error shape MSAL understands."""
    return Response(
        status,
        {
            "error": error,
            "error_description": description,
            "error_codes": codes or [],
            "timestamp": "",
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
        },
    )


class ArmFailure(Exception):
    """Raised by handlers to answer with an ARM error envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.response = arm_error(status, code, message)
