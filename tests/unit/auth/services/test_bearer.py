"""BearerAdmission: validation remembered per token (never past exp, at most cache_seconds, bounded), the
per-request user check always run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.auth.services import bearer
from airflow_identity_provider.auth.services.results import Refused
from airflow_identity_provider.auth.services.token import AdmittedToken
from airflow_identity_provider.errors import Refusal


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Ctx:
    """The one AuthContext method BearerAdmission calls itself (admit_access_token is replaced)."""

    def __init__(self) -> None:
        self.refuse: Exception | None = None
        self.checked: list[str] = []

    def check_user(self, user: IdentityUser) -> IdentityUser:
        self.checked.append(user.user_id)
        if self.refuse is not None:
            raise self.refuse
        return user


@pytest.fixture
def validated(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Tokens are "sub:exp" strings; each admit_access_token call is recorded."""
    record: dict[str, Any] = {"calls": []}

    async def admit(ctx: Any, token: str) -> AdmittedToken | Refused:
        record["calls"].append(token)
        sub, _, exp = token.partition(":")
        if sub == "bad":
            return Refused("invalid_aud", "wrong audience", 401)
        return AdmittedToken(IdentityUser(sub, sub, "", ("Op",), idp="default"), float(exp))

    monkeypatch.setattr(bearer, "admit_access_token", admit)
    return record


def run(admission: bearer.BearerAdmission, token: str) -> IdentityUser | Refused:
    return asyncio.run(admission.admit(token))


def test_cached_until_the_shorter_of_exp_and_cache_seconds(validated) -> None:
    clock, ctx = Clock(), Ctx()
    admission = bearer.BearerAdmission(ctx, cache_seconds=300, clock=clock)  # type: ignore[arg-type]
    long_lived, short_lived = f"a:{clock.now + 3600}", f"b:{clock.now + 60}"
    for _ in range(3):
        assert isinstance(run(admission, long_lived), IdentityUser)
        assert isinstance(run(admission, short_lived), IdentityUser)
    assert validated["calls"] == [long_lived, short_lived]
    clock.now += 61  # b's exp passed: validated again (and refused there, by the real check of times)
    run(admission, short_lived)
    run(admission, long_lived)
    assert validated["calls"] == [long_lived, short_lived, short_lived]
    clock.now += 240  # a's 300 s are over
    run(admission, long_lived)
    assert validated["calls"][-1] == long_lived and len(validated["calls"]) == 4
    assert ctx.checked.count("a") == 5  # the user check ran on every request, cached or not


def test_refusals_are_not_remembered(validated) -> None:
    admission = bearer.BearerAdmission(Ctx(), clock=Clock())  # type: ignore[arg-type]
    for _ in range(2):
        assert run(admission, "bad:0") == Refused("invalid_aud", "wrong audience", 401)
    assert len(validated["calls"]) == 2 and len(admission) == 0


def test_bounded_least_recently_used(validated) -> None:
    clock = Clock()
    admission = bearer.BearerAdmission(Ctx(), max_entries=2, clock=clock)  # type: ignore[arg-type]
    exp = clock.now + 600
    for sub in ("a", "b", "a", "c"):  # a was used again after b: b is the one dropped
        run(admission, f"{sub}:{exp}")
    assert len(admission) == 2
    run(admission, f"a:{exp}")
    run(admission, f"b:{exp}")
    assert validated["calls"] == [f"a:{exp}", f"b:{exp}", f"c:{exp}", f"b:{exp}"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ValueError("disabled in the directory"), "user_refused"),
        (Refusal("principal_disabled", "gone"), "principal_disabled"),
    ],
)
def test_user_check_refusal_is_a_401(validated, error: Exception, reason: str) -> None:
    ctx, clock = Ctx(), Clock()
    admission = bearer.BearerAdmission(ctx, clock=clock)  # type: ignore[arg-type]
    token = f"svc:{clock.now + 600}"
    assert isinstance(run(admission, token), IdentityUser)
    ctx.refuse = error
    refused = run(admission, token)
    assert isinstance(refused, Refused) and refused.status_code == 401 and refused.reason == reason
