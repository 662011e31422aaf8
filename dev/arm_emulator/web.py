"""Transport-free request/response types shared by the route handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case keys
    body: bytes
    scheme: str
    host: str
    identity: dict[str, Any] | None = None
    correlation_id: str = ""

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def param(self, name: str) -> str | None:
        """First value of a query parameter (names compared case-insensitively)."""
        for key, values in self.query.items():
            if key.lower() == name.lower() and values:
                return values[0]
        return None

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)

    @property
    def api_version(self) -> str | None:
        return self.param("api-version")


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list -> JSON, bytes -> as is, None -> empty
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str | None]:
        if self.body is None:
            return b"", None
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        return json.dumps(self.body).encode(), "application/json; charset=utf-8"


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
