from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

# The Airflow JWT signer is cached per process on first use, so its secret must be set before that.
os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "app-tests-only-" + "0123456789" * 6)
os.environ.setdefault("AIRFLOW__API__SECRET_KEY", "test-secret-key")

from fastapi import FastAPI
from fastapi.testclient import TestClient

from airflow_identity_provider.auth.manager import IdentityAuthManager
from tests.support.stub_op import StubOp

BASE = "http://127.0.0.1:8080"


@pytest.fixture(autouse=True)
def revoked_token_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A throw-away metadata DB holding only Airflow's revoked_token table: logout revokes for real, and
    no test writes to the default ~/airflow/airflow.db."""
    from airflow import settings
    from sqlalchemy import create_engine

    from tests.support.versions import HAS_TOKEN_REVOCATION

    if not HAS_TOKEN_REVOCATION:  # Airflow 3.1: no revoked_token table, nothing is written
        yield
        return
    from airflow.models.revoked_token import RevokedToken
    from sqlalchemy.orm import scoped_session, sessionmaker

    engine = create_engine(f"sqlite:///{tmp_path / 'revoked_token.db'}")
    RevokedToken.__table__.create(engine)
    session = scoped_session(sessionmaker(bind=engine, expire_on_commit=False))
    monkeypatch.setattr(settings, "Session", session)
    yield
    session.remove()
    engine.dispose()


@pytest.fixture(autouse=True)
def count_idp_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """``provider.http_calls``: the IdP round trips a provider made (counted here, not in production code)."""
    from airflow_identity_provider.auth.idp.oidc import OidcProvider

    request = OidcProvider._request

    def counting(self: OidcProvider, method: str, url: str, **kwargs: Any) -> Any:
        self.http_calls = getattr(self, "http_calls", 0) + 1  # type: ignore[attr-defined]
        return request(self, method, url, **kwargs)

    monkeypatch.setattr(OidcProvider, "http_calls", 0, raising=False)
    monkeypatch.setattr(OidcProvider, "_request", counting)


@pytest.fixture
def stub_op() -> Iterator[StubOp]:
    with StubOp() as op:
        yield op


@pytest.fixture
def make_client(
    stub_op: StubOp, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., tuple[TestClient, IdentityAuthManager]]]:
    made: list[IdentityAuthManager] = []

    def make(**settings: str) -> tuple[TestClient, IdentityAuthManager]:
        values = {
            "idp": "oidc",
            "issuer": stub_op.issuer,
            "client_id": "airflow",
            "client_secret": "airflow-secret",
            "role_mapping": '{"airflow-admins": "Admin", "airflow-viewers": "Viewer", "airflow-ops": "Op"}',
            # No directory to sync with here (Graph, JumpCloud): tests/unit/auth/directory and the deprovisioning
            # integration test use the emulators.
            "directory_sync_interval": "0",
            **settings,
        }
        for key, value in values.items():
            monkeypatch.setenv(f"AIRFLOW__IDENTITY_AUTH_MANAGER__{key.upper()}", value)
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", f"{BASE}/")
        manager = IdentityAuthManager()
        manager.init()
        made.append(manager)
        app = manager.get_fastapi_app()
        assert app is not None
        parent = FastAPI()
        parent.mount("/auth", app)  # as Airflow mounts it, so cookie paths behave as in production
        return TestClient(parent, base_url=BASE, follow_redirects=False), manager

    yield make
    for manager in made:  # init() started each manager's DAG index (and directory) thread
        manager.dag_index.stop()
        manager.directory.stop()


def start_login(client: TestClient, next_url: str | None = None) -> dict[str, str]:
    """GET /auth/login and return the authorize request's parameters (state, nonce, code_challenge...)."""
    response = client.get("/auth/login", params={"next": next_url} if next_url else None)
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {key: values[0] for key, values in query.items()}
