"""Airflow api-servers on the soak's PostgreSQL: one deployment's replicas share the database and the secrets.

A replica is what a load balancer spreads requests over: a separate ``airflow api-server`` process (its own
AIRFLOW_HOME for logs) with the same metadata database, the same ``[api] secret_key`` and ``[api_auth]
jwt_secret`` (so a cookie or token one replica set is good on the other) and the same public ``[api] base_url``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from dev.airflow_server import ApiServer, airflow_env, free_port, migrate, start_api_server
from dev.bench.soak.postgres import Postgres

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


@contextmanager
def replicas(
    root: Path,
    postgres: Postgres,
    database: str,
    *,
    count: int,
    settings: Mapping[str, str],
    public_port: int | None = None,
) -> Iterator[list[ApiServer]]:
    """Migrate ``database`` once, then start ``count`` api-servers on it; all are stopped on exit.

    ``settings`` are extra environment variables for every replica (auth manager, IdP...). ``public_port`` is
    the port of the shared ``base_url`` (default: the first replica's), as a load balancer in front would have.
    """
    ports = [free_port() for _ in range(count)]
    base_port = public_port or ports[0]
    homes = [root / f"replica-{index}" for index in range(count)]
    shared = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url(database), **settings}
    envs = []
    for index, (home, port) in enumerate(zip(homes, ports, strict=True)):
        if index > 0:  # the first replica wrote the secrets; the others take the same ones
            home.mkdir(parents=True, exist_ok=True)
            shutil.copy(homes[0] / "secrets.env", home / "secrets.env")
        env = airflow_env(home, port=base_port, extra=shared)
        (home / "dags").mkdir(exist_ok=True)
        envs.append((home, port, env))
    migrate(envs[0][2])
    with ExitStack() as running:
        servers = []
        for home, port, env in envs:
            server = start_api_server(home, env, port=port)
            running.callback(server.stop)
            servers.append(server)
        yield servers
