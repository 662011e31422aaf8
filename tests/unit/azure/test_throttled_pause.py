"""When a running deployment's status read may be retried (airflow_identity_provider.azure.deployments.state), and
how the two waits (worker and triggerer) keep within the operator's timeout while ARM throttles, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from airflow.sdk.exceptions import AirflowException
from azure.core.exceptions import HttpResponseError

from airflow_identity_provider.azure.deployments import session as session_module
from airflow_identity_provider.azure.deployments.session import AsyncDeploymentSession, DeploymentSession
from airflow_identity_provider.azure.deployments.state import (
    MAX_THROTTLED_POLLS,
    DeploymentTarget,
    poll_pause,
    throttled_pause,
    timeout_message,
)

SCOPE = "/subscriptions/s/resourceGroups/rg"
READ = 3.0  # seconds one throttled read takes: azure-core's own three retries, a second each


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


def test_a_timeout_message_says_what_was_last_read() -> None:
    assert "is still Running after the operator's timeout." in timeout_message("d", SCOPE, "Running")
    throttled = timeout_message("d", SCOPE, "Running", throttled=True)
    assert "is still Running after the operator's timeout (ARM throttled its status reads)." in throttled
    unread = timeout_message("d", SCOPE, None)
    assert "was not read before the operator's timeout (ARM throttled its status reads)" in unread
    assert all("re-attaches" in text for text in (throttled, unread))


# -- the waits, on a fake clock --------------------------------------------------------------------------------


@dataclass
class _Clock:
    now: float = 0.0
    pauses: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(session_module, "time", fake)
    monkeypatch.setattr(session_module, "asyncio", SimpleNamespace(sleep=fake.async_sleep))
    return fake


class _Log:
    def info(self, *args: Any) -> None:
        pass

    def warning(self, *args: Any) -> None:
        pass


def _running() -> dict[str, Any]:
    return {"properties": {"provisioningState": "Running"}}


def _reads(clock: _Clock, answers: list[str]) -> Iterator[str]:
    """``answers`` ("running" or "429"), then 429s for ever; each read takes READ seconds of the clock."""
    for answer in [*answers, *["429"] * 1000]:
        clock.now += READ
        yield answer


class _Worker(DeploymentSession):
    def __init__(self, clock: _Clock, answers: list[str], retry_after: str = "60") -> None:
        super().__init__(cast(Any, None), DeploymentTarget(SCOPE, "s", "rg"), "d")  # no hook: get() is faked
        self.answers, self.retry_after = _reads(clock, answers), retry_after

    def get(self) -> Any:
        if next(self.answers) == "running":
            return _running()
        failure = AirflowException("Could not read deployment d: (429) throttled")  # as raise_arm_error words it
        failure.__cause__ = _ArmError(429, {"Retry-After": self.retry_after})
        raise failure


class _Triggerer(AsyncDeploymentSession):
    def __init__(self, clock: _Clock, answers: list[str]) -> None:
        super().__init__(cast(Any, None), SCOPE, "d")
        self.answers = _reads(clock, answers)

    async def get(self) -> Any:
        if next(self.answers) == "running":
            return _running()
        error = HttpResponseError(message="(429) throttled")
        error.status_code, error.response = 429, _Response({"Retry-After": "60"})  # type: ignore[assignment]
        raise error


def test_a_worker_never_waits_a_throttle_out_past_the_timeout(clock: _Clock) -> None:
    """Retry-After 60 s, 10 s left: the pause is cut to the time left, and the next throttled read ends the wait
    with the timeout's words (the deployment keeps running, a retry re-attaches), not with the 429."""
    with pytest.raises(AirflowException) as err:
        _Worker(clock, ["running"]).wait(poll_interval=1.0, timeout=15.0, started=0.0, log=_Log())
    assert clock.pauses == [1.0, 15.0 - 2 * READ - 1.0]  # a poll, then the time left, not Retry-After's 60 s
    assert clock.now == 15.0 + READ  # one read's own retries past the timeout, no more
    assert "is still Running after the operator's timeout (ARM throttled its status reads)" in str(err.value)
    assert "re-attaches" in str(err.value) and "(429)" not in str(err.value)


def test_a_worker_throttled_from_its_first_read_times_out_as_a_timeout(clock: _Clock) -> None:
    with pytest.raises(AirflowException, match="was not read before the operator's timeout") as err:
        _Worker(clock, []).wait(poll_interval=1.0, timeout=5.0, started=0.0, log=_Log())
    assert clock.pauses == [5.0 - READ] and "re-attaches" in str(err.value)


def test_a_worker_gives_up_after_max_throttled_polls_saying_the_deployment_keeps_running(clock: _Clock) -> None:
    with pytest.raises(AirflowException) as err:
        _Worker(clock, [], retry_after="1").wait(poll_interval=1.0, timeout=None, started=0.0, log=_Log())
    assert len(clock.pauses) == MAX_THROTTLED_POLLS
    assert "(429)" in str(err.value) and f"({MAX_THROTTLED_POLLS} waited out in a row)" in str(err.value)
    assert "keeps running in Azure" in str(err.value) and "re-attaches" in str(err.value)


def test_a_triggerer_timeout_while_throttled_is_a_timeout_with_the_last_deployment_read(clock: _Clock) -> None:
    state, deployment = asyncio.run(_Triggerer(clock, ["running"]).wait(poll_interval=1.0, timeout_at=15.0, log=_Log()))
    assert (state, deployment) == ("timeout", _running())
    assert clock.pauses == [1.0, 15.0 - 2 * READ - 1.0]


def test_a_triggerer_throttled_from_its_first_read_times_out_without_a_deployment(clock: _Clock) -> None:
    assert asyncio.run(_Triggerer(clock, []).wait(poll_interval=1.0, timeout_at=5.0, log=_Log())) == ("timeout", None)
    assert clock.pauses == [5.0 - READ]


@pytest.mark.parametrize(("left", "expected"), [(None, 30.0), (100.0, 30.0), (12.5, 12.5), (0.0, 0.0), (-3.0, 0.0)])
def test_a_poll_pause_is_cut_to_the_time_left(left: float | None, expected: float) -> None:
    assert poll_pause(30.0, left) == expected


class _Running(DeploymentSession):
    """A worker's session whose deployment is Running for ever; each read takes READ seconds of the clock."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__(cast(Any, None), DeploymentTarget(SCOPE, "s", "rg"), "d")
        self.clock = clock

    def get(self) -> Any:
        self.clock.now += READ
        return _running()


class _AsyncRunning(AsyncDeploymentSession):
    def __init__(self, clock: _Clock) -> None:
        super().__init__(cast(Any, None), SCOPE, "d")
        self.clock = clock

    async def get(self) -> Any:
        self.clock.now += READ
        return _running()


def test_a_worker_never_sleeps_a_poll_interval_past_the_timeout(clock: _Clock) -> None:
    """Poll interval 30 s, timeout 40 s: the second sleep is the 4 s left, not 30 s, and the wait ends at 40 s
    plus one read."""
    with pytest.raises(AirflowException, match="is still Running after the operator's timeout"):
        _Running(clock).wait(poll_interval=30.0, timeout=40.0, started=0.0, log=_Log())
    assert clock.pauses == [30.0, 40.0 - 2 * READ - 30.0]
    assert clock.now == 40.0 + READ


def test_a_triggerer_never_sleeps_a_poll_interval_past_the_timeout(clock: _Clock) -> None:
    state, _ = asyncio.run(_AsyncRunning(clock).wait(poll_interval=30.0, timeout_at=40.0, log=_Log()))
    assert state == "timeout"
    assert clock.pauses == [30.0, 40.0 - 2 * READ - 30.0]
