"""What an IdP access token sent straight to /api/v2 costs, against the Airflow JWT exchanged for it (3.3+).

    .venv/bin/python -m dev.bench.bearer [--requests 300] [--warmup 30]

One real ``airflow api-server`` (this auth manager, SQLite, no DAGs: the listing is cheap, so what differs,
authentication, weighs the most) and the real local IdP. The service principal ``svc-etl`` gets one
client-credentials access token for the Airflow API; ``POST /auth/token`` exchanges it for an Airflow JWT of the
same user and role. Then ``GET /api/v2/dags?limit=10`` is sent with each in turn on one keep-alive connection,
the order swapped every round so machine noise hits both alike, after a warm-up of each (the first IdP-token
request validates it; the middleware then remembers it for up to 5 minutes).

    airflow_jwt   Authorization: Bearer <Airflow JWT>: the core verifies it (HS512) and looks up its jti in
                  revoked_token (3.2+), as for every API client today
    idp_token     Authorization: Bearer <IdP access token>: our middleware (a digest and a dict lookup after the
                  first request), the core then takes the user it set

Target: idp_token median <= 1.2 x airflow_jwt median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from dev.airflow_server import airflow_env, free_port, migrate, oidc_settings, start_api_server
from dev.idp.local_idp import API_AUDIENCE, SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET, start_local_idp

TARGET = 1.2
PATH = "/api/v2/dags?limit=10"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300, help="measured requests per mode")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests per mode first")
    args = parser.parse_args()

    from airflow_identity_provider import version_compat

    if not version_compat.AIRFLOW_V_3_3_PLUS:
        raise SystemExit(f"Airflow {version_compat.AIRFLOW_VERSION_STRING}: IdP tokens on /api/v2 need 3.3+")

    home = Path(tempfile.mkdtemp(prefix="bench_bearer_"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    idp = start_local_idp(redirect_uris=[f"{base}/auth/callback"])
    try:
        env = airflow_env(
            home,
            port=port,
            extra={
                **oidc_settings(idp, {"Airflow.Op": "Op"}),
                # The api-server's access log is one line per request on both sides; keep the log quiet.
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            },
        )
        migrate(env)
        server = start_api_server(home, env, port=port)
        try:
            run(base, idp.token_endpoint, requests=args.requests, warmup=args.warmup)
        finally:
            server.stop()
    finally:
        idp.stop()


def run(base: str, token_endpoint: str, *, requests: int, warmup: int) -> None:
    idp_token = httpx.post(
        token_endpoint,
        data={"grant_type": "client_credentials", "scope": "airflow.api", "resource": API_AUDIENCE},
        auth=(SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET),
    ).json()["access_token"]
    exchanged = httpx.post(f"{base}/auth/token", headers={"Authorization": f"Bearer {idp_token}"})
    assert exchanged.status_code == 201, exchanged.text
    tokens = {"airflow_jwt": exchanged.json()["access_token"], "idp_token": idp_token}
    times: dict[str, list[float]] = {mode: [] for mode in tokens}
    with httpx.Client(base_url=base, timeout=30) as client:

        def once(mode: str) -> float:
            started = time.perf_counter()
            response = client.get(PATH, headers={"Authorization": f"Bearer {tokens[mode]}"})
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, (mode, response.status_code, response.text)
            return elapsed

        first_idp = once("idp_token")  # validates the IdP token (keys already fetched by the exchange)
        for _ in range(warmup):
            for mode in tokens:
                once(mode)
        for i in range(requests):
            for mode in tokens if i % 2 == 0 else reversed(list(tokens)):
                times[mode].append(once(mode))

    print(f"GET {PATH} on one api-server, {requests} interleaved requests per mode after {warmup} warm-up each")
    print(f"{'mode':<12} {'median ms':>10} {'p90 ms':>8} {'mean ms':>8} {'min ms':>8}")
    for mode, samples in times.items():
        ordered = sorted(samples)
        p90 = ordered[int(len(ordered) * 0.9) - 1]
        print(
            f"{mode:<12} {statistics.median(samples) * 1000:10.2f} {p90 * 1000:8.2f} "
            f"{statistics.fmean(samples) * 1000:8.2f} {ordered[0] * 1000:8.2f}"
        )
    ratio = statistics.median(times["idp_token"]) / statistics.median(times["airflow_jwt"])
    verdict = "ok" if ratio <= TARGET else "OVER TARGET"
    print(f"ratio idp_token/airflow_jwt (medians): {ratio:.3f}  (target <= {TARGET}: {verdict})")
    print(f"first idp_token request (validation, cache miss): {first_idp * 1000:.2f} ms")


if __name__ == "__main__":
    main()
