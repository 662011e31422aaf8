"""One full browser sign-in against the local IdP, and the IdP HTTP calls of a cold and a warm login.

    .venv/bin/python -m dev.bench.login_roundtrip [--logins 20]

Part 1 drives a real ``airflow api-server`` (this auth manager) and the real npm ``oidc-provider`` with a
cookie-keeping HTTP client; the baseline, measured in the same run, is the IdP's own part of the chain
(authorize -> login form -> consent -> redirect), so the ratio shows what Airflow and this package add.
Part 2 counts the relying party's calls to the IdP in-process (the api-server's counter is not visible
from outside): cold = first login of a process, warm = every later one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from dev.airflow_server import airflow_env, free_port, migrate, start_api_server
from dev.idp.local_idp import GROUPS_SCOPES, login_through_idp, start_local_idp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=20)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench_login_"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    idp = start_local_idp(redirect_uris=[f"{base}/auth/callback"])
    settings = {
        "AIRFLOW__IDENTITY_AUTH_MANAGER__ISSUER": idp.issuer,
        "AIRFLOW__IDENTITY_AUTH_MANAGER__CLIENT_ID": idp.client_id,
        "AIRFLOW__IDENTITY_AUTH_MANAGER__CLIENT_SECRET": idp.client_secret,
        "AIRFLOW__IDENTITY_AUTH_MANAGER__SCOPES": " ".join(GROUPS_SCOPES),
        "AIRFLOW__IDENTITY_AUTH_MANAGER__ROLE_MAPPING": json.dumps({"airflow-admins": "Admin"}),
    }
    env = airflow_env(home, port=port, extra=settings)
    migrate(env)
    server = start_api_server(home, env, port=port)
    try:
        totals, idp_parts = [], []
        for _ in range(args.logins):
            with httpx.Client(timeout=30) as browser:
                started = time.perf_counter()
                core = browser.get(f"{base}/api/v2/auth/login", params={"next": f"{base}/"})
                ours = browser.get(f"{base}{core.headers['location']}")
                idp_started = time.perf_counter()
                back = login_through_idp(browser, ours.headers["location"], "alice")
                idp_parts.append(time.perf_counter() - idp_started)
                done = browser.get(back.headers["location"])
                me = browser.get(f"{base}/ui/auth/me")
                totals.append(time.perf_counter() - started)
                assert done.status_code == 303 and me.status_code == 200, (done.status_code, me.status_code)
        first, rest = totals[0], totals[1:]
        total, idp_only = statistics.median(rest), statistics.median(idp_parts[1:])
        print(f"full login round trip (cold, first):   {first * 1000:7.1f} ms")
        print(f"full login round trip (warm, median):  {total * 1000:7.1f} ms over {len(rest)} logins")
        print(f"  of which the IdP's own pages:        {idp_only * 1000:7.1f} ms   (baseline)")
        print(f"  ratio full/IdP-only:                 {total / idp_only:7.2f}")
    finally:
        server.stop()

    print(f"IdP HTTP calls per login: cold {cold_and_warm_calls(idp, base)}")
    idp.stop()


def cold_and_warm_calls(idp, base: str) -> str:
    import os

    os.environ["AIRFLOW__API__BASE_URL"] = f"{base}/"
    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.rules.settings import parse_settings
    from airflow_identity_provider.auth.rules.state import LoginState

    settings = parse_settings(
        {
            "issuer": idp.issuer,
            "client_id": idp.client_id,
            "client_secret": idp.client_secret,
            "scopes": " ".join(GROUPS_SCOPES),
            "role_mapping": '{"airflow-admins": "Admin"}',
        }
    )
    provider = OidcProvider(settings)
    # Count the relying party's IdP round trips here, around its one HTTP method (not in production code).
    http_calls = 0
    request = provider._request

    def counting_request(method: str, url: str, **kwargs: object) -> httpx.Response:
        nonlocal http_calls
        http_calls += 1
        return request(method, url, **kwargs)

    provider._request = counting_request  # type: ignore[method-assign]
    counts = []
    for _ in range(3):
        before = http_calls
        login = LoginState.new(next_url=f"{base}/", idp="default")
        url = provider.authorization_url(redirect_uri=f"{base}/auth/callback", login=login)
        with httpx.Client(timeout=30) as browser:
            back = login_through_idp(browser, url, "alice")
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
        provider.sign_in(code=code, redirect_uri=f"{base}/auth/callback", login=login)
        counts.append(http_calls - before)
    return f"{counts[0]} (discovery, keys, token), warm {counts[1]} and {counts[2]} (token only)"


if __name__ == "__main__":
    main()
