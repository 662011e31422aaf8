"""How big one soak run is: the issue's full size (by hand) and the reduced size CI runs after the tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    name: str
    sign_ins: int  # browser sign-ins through two api-server replicas and the real local IdP
    sign_in_concurrency: int
    api_requests: int  # authorized /api/v2 requests per server (ours, then SimpleAuthManager's)
    api_concurrency: int
    deployments: int  # ARM template deployments started at once against the emulator
    failing_deployments: int  # of which the emulator is told to fail this many (ARM's own error)
    seconds: float  # the part's own bound: past it, what is left is cancelled and counted as a failure


FULL = Size(
    name="full",
    sign_ins=300,
    sign_in_concurrency=20,
    api_requests=10_000,
    api_concurrency=20,
    deployments=30,
    failing_deployments=5,
    seconds=600,
)
REDUCED = Size(
    name="reduced",
    sign_ins=40,
    sign_in_concurrency=10,
    api_requests=1_000,
    api_concurrency=10,
    deployments=6,
    failing_deployments=1,
    seconds=120,
)
