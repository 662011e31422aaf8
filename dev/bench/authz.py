"""What per-DAG authorization costs: ``GET /api/v2/dags?limit=100`` on real api-servers, and per call in-process.

    .venv/bin/python -m dev.bench.authz [--requests 200] [--keep]

Part 1 writes 1,000 DAGs (10 files, one loop of 100 DAGs each; tags per domain, access_control on the finance
DAGs and every 25th other), serializes them with ``airflow dags reserialize`` into one SQLite metadata DB, copies
it for three ``airflow api-server`` processes started side by side, and then alternates requests between them
(the order rotates every round, so machine noise hits all three alike):

    simple   Airflow's SimpleAuthManager, user role "viewer" (sees every DAG): the baseline
    builtin  IdentityAuthManager, the 4 built-in roles only, user = Viewer (sees every DAG)
    grants   IdentityAuthManager, 10 custom roles + 50 dag_grants, user with no role at all: grants only
             (analytics_* as Op, the finance tag as Viewer, ml_00*/ml_01* as a custom role = 220 DAGs)

builtin and simple list the same 1,000 DAGs, so they differ only by the auth manager; the grants user's list
query filters on 220 ids instead of 1,000, which SQLite answers a little faster (and counts in our favour).

Tokens are minted the way each api-server mints its own (``_get_token_signer`` with the shared jwt_secret),
from each manager's own claim shape: no IdP and no browser are involved. Target: grants <= 1.10 x simple.

Part 2 times the calls themselves in-process against the same 1,000 DAG facts: ours vs SimpleAuthManager per
check, and filter_authorized_dag_ids over 1,000 ids (ours vs BaseAuthManager's one-check-per-id default).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import timeit
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from dev.airflow_server import ApiServer, airflow_bin, airflow_env, free_port, migrate, start_api_server

SIMPLE = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
DOMAINS = ("analytics", "finance", "marketing", "sales", "ops", "ml", "hr", "risk", "supply", "web")
PER_DOMAIN = 100
GRANT_USER_GROUPS = ("analytics-operators", "finance-viewers", "ml-editors")
GRANT_USER_DAGS = 100 + 100 + 20  # analytics_*, tag finance, ml_00* + ml_01*
TARGET = 1.10

# One DAG file per domain; the specs are baked in so the file needs nothing from this repository.
DAG_FILE = '''"""Benchmark DAGs written by dev/bench/authz.py: one loop, many DAGs."""
from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

SPECS = {specs!r}

for dag_id, tags, access_control in SPECS:
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=tags,
             access_control=access_control):
        EmptyOperator(task_id="noop")
'''


def dag_specs(domain: str) -> list[tuple[str, list[str], dict[str, Any] | None]]:
    specs: list[tuple[str, list[str], dict[str, Any] | None]] = []
    for i in range(PER_DOMAIN):
        access_control: dict[str, Any] | None = None
        if domain == "finance":
            access_control = {"finance-team": {"DAGs": {"can_read"}}}
        elif i % 25 == 0:
            access_control = {"data-stewards": {"DAGs": {"can_read", "can_edit"}}}
        tags = [domain, f"tier{i % 3}"] + ([f"{domain}-critical"] if i % 7 == 0 else [])
        specs.append((f"{domain}_{i:03d}", tags, access_control))
    return specs


def custom_roles() -> dict[str, Any]:
    """10 roles on top of the built-in ones, some with allow and deny, two extending another custom role."""
    roles: dict[str, Any] = {}
    for k in range(10):
        role: dict[str, Any] = {
            "extends": "Viewer" if k < 8 else "Role0",
            "allow": ["dag:PUT", "dag.run:POST", "dag.run:PUT"],
        }
        if k % 2:
            role["allow"].append("variable:GET")
        if k % 3 == 0:
            role["deny"] = ["dag.code:GET"]
        roles[f"Role{k}"] = role
    return roles


def dag_grants() -> list[dict[str, Any]]:
    """50 grants: five kinds (glob as Op, tag as Viewer, globs as a custom role, tag as User, bundle) x 10 domains."""
    grants: list[dict[str, Any]] = []
    for j in range(50):
        domain, kind = DOMAINS[j % 10], j // 10
        grants.append(
            [
                {"groups": [f"{domain}-operators"], "dags": [f"{domain}_*"], "role": "Op"},
                {"groups": [f"{domain}-viewers"], "tags": [domain], "role": "Viewer"},
                {"groups": [f"{domain}-editors"], "dags": [f"{domain}_00*", f"{domain}_01*"], "role": f"Role{j % 10}"},
                {"groups": [f"{domain}-stewards"], "tags": [f"{domain}-critical"], "role": "User"},
                {"groups": [f"{domain}-bundle"], "bundles": [f"{domain}-bundle"], "role": "Viewer"},
            ][kind]
        )
    return grants


def identity_options(*, with_grants: bool) -> dict[str, str]:
    """Our [identity_auth_manager] keys. The issuer is never contacted: tokens are minted, not signed in for."""
    options = {
        "idp": "oidc",
        "issuer": "http://127.0.0.1:9/",
        "client_id": "bench",
        "client_secret": "bench-secret",
        "role_mapping": json.dumps({"airflow-viewers": "Viewer", "airflow-ops": "Op"}),
    }
    if with_grants:
        options |= {"roles": json.dumps(custom_roles()), "dag_grants": json.dumps(dag_grants())}
    return options


# --- part 1: real api-servers ------------------------------------------------------------------------------


def prepare_db(work: Path) -> Path:
    """A migrated metadata DB holding the 1,000 serialized DAGs (and the secrets every server shares)."""
    dags = work / "dags"
    dags.mkdir(parents=True)
    for domain in DOMAINS:
        (dags / f"bench_{domain}.py").write_text(DAG_FILE.format(specs=dag_specs(domain)))
    base = work / "base"
    env = airflow_env(
        base, port=0, extra={"AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE}
    )
    migrate(env)
    result = subprocess.run(
        [airflow_bin(), "dags", "reserialize"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow dags reserialize failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return base


def start_servers(work: Path, base: Path) -> dict[str, ApiServer]:
    configs: dict[str, dict[str, str]] = {
        "simple": {"AIRFLOW__CORE__AUTH_MANAGER": SIMPLE},
        "builtin": {
            f"AIRFLOW__IDENTITY_AUTH_MANAGER__{k.upper()}": v for k, v in identity_options(with_grants=False).items()
        },
        "grants": {
            f"AIRFLOW__IDENTITY_AUTH_MANAGER__{k.upper()}": v for k, v in identity_options(with_grants=True).items()
        },
    }
    servers: dict[str, ApiServer] = {}
    try:
        for name, extra in configs.items():
            home = work / name
            home.mkdir()
            for file in ("airflow.db", "secrets.env"):  # own copy of the DB: no SQLite locking between servers
                shutil.copy(base / file, home / file)
            port = free_port()
            env = airflow_env(home, port=port, extra={"AIRFLOW__CORE__DAGS_FOLDER": str(work / "dags"), **extra})
            servers[name] = start_api_server(home, env, port=port)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


def mint_tokens(env: dict[str, str]) -> dict[str, str]:
    """Each manager's own claims, signed by its own signer with the servers' jwt_secret (read into this process)."""
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API_AUTH__JWT_ISSUER"):
        os.environ[key] = env[key]
    # Noise for this process only: dev secrets are 43 bytes, and FastAPI's test client is imported, not used.
    warnings.filterwarnings("ignore", message="The HMAC key is")
    warnings.filterwarnings("ignore", message="Using `httpx` with")
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from airflow_identity_provider.auth.manager import IdentityAuthManager
    from airflow_identity_provider.auth.rules.user import IdentityUser

    now = int(time.time())
    viewer = IdentityUser("bench-viewer", "V", "", roles=("Viewer",), auth_time=now, idp="default")
    granted = IdentityUser("bench-grants", "G", "", roles=(), auth_time=now, idp="default", groups=GRANT_USER_GROUPS)
    ours = IdentityAuthManager._get_token_signer(expiration_time_in_seconds=3600)
    simple = SimpleAuthManager._get_token_signer(expiration_time_in_seconds=3600)
    simple_user = SimpleAuthManagerUser(username="bench", role="viewer")
    return {
        "simple": simple.generate(SimpleAuthManager().serialize_user(simple_user)),
        "builtin": ours.generate(viewer.to_claims()),
        "grants": ours.generate(granted.to_claims()),
    }


def measure(servers: dict[str, ApiServer], tokens: dict[str, str], requests: int) -> dict[str, list[float]]:
    clients = {
        name: httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens[name]}"}, timeout=30)
        for name, server in servers.items()
    }
    expected = {"simple": len(DOMAINS) * PER_DOMAIN, "builtin": len(DOMAINS) * PER_DOMAIN, "grants": GRANT_USER_DAGS}
    try:
        for name, client in clients.items():  # warm-up: connections, DAG index, memo tables
            for _ in range(20):
                resp = client.get("/api/v2/dags", params={"limit": 100})
            resp.raise_for_status()
            body = resp.json()
            if body["total_entries"] != expected[name] or len(body["dags"]) != 100:
                raise RuntimeError(f"{name}: {body['total_entries']} DAGs visible, expected {expected[name]}")
        timings: dict[str, list[float]] = {name: [] for name in clients}
        names = list(clients)
        for i in range(requests):
            for name in names[i % 3 :] + names[: i % 3]:  # rotate who goes first
                started = time.perf_counter()
                resp = clients[name].get("/api/v2/dags", params={"limit": 100})
                timings[name].append(time.perf_counter() - started)
                if resp.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {resp.status_code}: {resp.text[:300]}")
        return timings
    finally:
        for client in clients.values():
            client.close()


def print_table(timings: dict[str, list[float]]) -> float:
    """Ratio of medians, and the median of per-round ratios (each round's three requests ran back to back,
    so a burst of load from elsewhere on the machine mostly cancels out in the paired figure)."""
    simple = timings["simple"]
    baseline = statistics.median(simple)
    print(f"\nGET /api/v2/dags?limit=100, 1,000 DAGs, {len(simple)} requests each, interleaved")
    print(f"{'config':<10}{'median ms':>11}{'p90 ms':>9}{'ratio vs simple':>17}{'paired ratio':>14}")
    for name, values in timings.items():
        median, p90 = statistics.median(values), statistics.quantiles(values, n=10)[-1]
        paired = statistics.median([t / s for t, s in zip(values, simple, strict=True)])
        print(f"{name:<10}{median * 1e3:>11.2f}{p90 * 1e3:>9.2f}{median / baseline:>17.3f}{paired:>14.3f}")
    ratio = statistics.median(timings["grants"]) / baseline
    print(f"target grants <= {TARGET:.2f} x simple: {'met' if ratio <= TARGET else 'MISSED'} ({ratio:.3f})")
    return ratio


def server_benchmark(requests: int, keep: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench_authz_"))
    # This process reads Airflow's config too (to sign tokens): keep it out of ~/airflow.
    os.environ["AIRFLOW_HOME"] = str(work / "client")
    servers: dict[str, ApiServer] = {}
    try:
        started = time.perf_counter()
        base = prepare_db(work)
        print(f"1,000 DAGs serialized in {time.perf_counter() - started:.0f} s; starting 3 api-servers")
        servers = start_servers(work, base)
        tokens = mint_tokens(servers["grants"].env)
        print_table(measure(servers, tokens, requests))
    finally:
        for server in servers.values():
            server.stop()
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# --- part 2: in-process ------------------------------------------------------------------------------------


def best(stmt: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number


def micro_benchmark() -> None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from airflow_identity_provider.auth.catalog.dag_index import DagFacts, DagIndex
    from airflow_identity_provider.auth.manager import IdentityAuthManager
    from airflow_identity_provider.auth.rules.settings import parse_settings
    from airflow_identity_provider.auth.rules.user import IdentityUser
    from airflow_identity_provider.auth.services.authorizer import Authorizer

    entries = {
        dag_id: ("h", DagFacts(dag_id, frozenset(tags), "dags-folder", access_control))
        for domain in DOMAINS
        for dag_id, tags, access_control in dag_specs(domain)
    }
    index = DagIndex(load=lambda previous: entries)
    index.refresh()  # the real adapter, fed without a database; no refresh thread
    ours, simple = IdentityAuthManager(), SimpleAuthManager()
    ours.__dict__["authorizer"] = Authorizer(
        {"default": parse_settings(identity_options(with_grants=True)).access}, index
    )
    op = IdentityUser("u", "U", "", roles=("Op",), idp="default")
    granted = IdentityUser("g", "G", "", roles=(), idp="default", groups=GRANT_USER_GROUPS)
    simple_op, simple_viewer = (
        SimpleAuthManagerUser(username="u", role="op"),
        SimpleAuthManagerUser(username="v", role="viewer"),
    )
    dag_ids = set(entries)
    run, on_dag = DagDetails(id="analytics_001"), DagDetails(id="ml_015")
    assert len(ours.filter_authorized_dag_ids(dag_ids=dag_ids, user=granted)) == GRANT_USER_DAGS

    put_run = {"method": "PUT", "access_entity": DagAccessEntity.RUN, "details": run}
    get_dag = {"method": "GET", "details": on_dag}
    rows = [
        (
            "is_authorized_dag(PUT, RUN), Op",
            best(lambda: ours.is_authorized_dag(user=op, **put_run), 100_000),
            best(lambda: simple.is_authorized_dag(user=simple_op, **put_run), 100_000),
        ),
        (
            "is_authorized_dag(GET, dag), grants-only",
            best(lambda: ours.is_authorized_dag(user=granted, **get_dag), 100_000),
            best(lambda: simple.is_authorized_dag(user=simple_viewer, **get_dag), 100_000),
        ),
        (
            "filter_authorized_dag_ids(1,000), grants-only",
            best(lambda: ours.filter_authorized_dag_ids(dag_ids=dag_ids, user=granted), 300),
            best(lambda: simple.filter_authorized_dag_ids(dag_ids=dag_ids, user=simple_viewer), 300),
        ),
    ]
    per_id = best(lambda: BaseAuthManager.filter_authorized_dag_ids(ours, dag_ids=dag_ids, user=granted), 100)
    print("\nin-process, 1,000 DAG facts, 10 custom roles, 50 dag_grants (simple = SimpleAuthManager, role op/viewer)")
    print(f"{'call':<48}{'ours us':>10}{'simple us':>11}{'ours/simple':>13}")
    for label, ours_s, simple_s in rows:
        print(f"{label:<48}{ours_s * 1e6:>10.2f}{simple_s * 1e6:>11.2f}{ours_s / simple_s:>13.2f}")
    ours_filter = rows[2][1]
    print(
        f"filter_authorized_dag_ids(1,000), grants-only: one-check-per-id default {per_id * 1e6:.0f} us, "
        f"ours {ours_filter * 1e6:.0f} us ({per_id / ours_filter:.1f}x faster)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per configuration (default 200)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOMEs and logs")
    args = parser.parse_args()
    server_benchmark(args.requests, args.keep)
    micro_benchmark()


if __name__ == "__main__":
    main()
