"""A real Airflow api-server with this auth manager, signed in through a real local IdP (npm oidc-provider)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dev.airflow_server import ApiServer, airflow_env, free_port, migrate, oidc_settings, start_api_server
from dev.idp.local_idp import LocalIdp, start_local_idp

ROLE_MAPPING = {
    "airflow-admins": "Admin",
    "airflow-ops": "Op",
    "airflow-users": "User",
    "airflow-viewers": "Viewer",
    "Airflow.Op": "Op",  # app role of the svc-etl client (machine access)
}


@dataclass
class Deployment:
    server: ApiServer
    idp: LocalIdp
    home: Path

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def local_deployment(
    home: Path,
    extra: Mapping[str, str] | Callable[[LocalIdp], Mapping[str, str]] | None = None,
    *,
    prepare: Callable[[dict[str, str]], None] | None = None,
    idp_options: Mapping[str, Any] | None = None,
) -> Iterator[Deployment]:
    """``prepare(env)`` runs after ``airflow db migrate``, before the api-server starts (serialize DAGs, create
    teams): the auth manager then finds them at start. ``idp_options`` go to ``start_local_idp`` (users, issuer
    path...); ``extra`` may be a function of the started IdP (settings that name its issuer)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    idp = start_local_idp(
        redirect_uris=[f"{base}/auth/callback"],
        post_logout_uris=[f"{base}/auth/logged-out"],
        **dict(idp_options or {}),
    )
    try:
        env = airflow_env(
            home,
            port=port,
            extra={
                **oidc_settings(idp, ROLE_MAPPING),
                **((extra(idp) if callable(extra) else extra) or {}),
            },
        )
        migrate(env)
        if prepare is not None:
            prepare(env)
        server = start_api_server(home, env, port=port)
        try:
            yield Deployment(server=server, idp=idp, home=home)
        finally:
            server.stop()
    finally:
        idp.stop()
