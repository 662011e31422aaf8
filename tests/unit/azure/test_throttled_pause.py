"""When a running deployment's status read may be retried (airflow_identity_provider.azure.deployments.state)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from airflow_identity_provider.azure.deployments.state import MAX_THROTTLED_POLLS, throttled_pause


@dataclass
class _Response:
    headers: dict[str, str] = field(default_factory=dict)


class _ArmError(Exception):
    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"({status_code})")
        self.status_code = status_code
        self.response = _Response(headers or {})


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", 7.0), ("0", 2.0), ("", 2.0), ("Wed, 21 Oct 2026 07:28:00 GMT", 2.0), ("3600", 60.0), ("0.5", 2.0)],
)
def test_a_429_is_waited_out_honouring_retry_after_within_bounds(retry_after: str, expected: float) -> None:
    err = _ArmError(429, {"Retry-After": retry_after} if retry_after else {})
    assert throttled_pause(err, default=2.0, throttled_in_a_row=0) == expected


@pytest.mark.parametrize("status", [400, 403, 404, 409, 500, 503])
def test_anything_but_a_429_fails_the_task(status: int) -> None:
    assert throttled_pause(_ArmError(status, {"Retry-After": "1"}), default=1.0, throttled_in_a_row=0) is None


def test_not_an_http_error_fails_the_task() -> None:
    assert throttled_pause(ValueError("boom"), default=1.0, throttled_in_a_row=0) is None


def test_throttling_without_end_gives_up() -> None:
    err = _ArmError(429, {"Retry-After": "1"})
    assert throttled_pause(err, default=1.0, throttled_in_a_row=MAX_THROTTLED_POLLS - 1) == 1.0
    assert throttled_pause(err, default=1.0, throttled_in_a_row=MAX_THROTTLED_POLLS) is None
