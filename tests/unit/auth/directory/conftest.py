"""One Graph emulator process per module (reset before every test), and GraphDirectory clients of it built by the
production wiring (``services.directory.directory_sources`` for an ``idp = entra`` provider): the app-only token
comes from ``EntraProvider.graph_token`` through msal, as the api-server gets it from Entra.

The emulator's CA is trusted the way a deployment trusts a private CA, with no test-only client: REQUESTS_CA_BUNDLE
(msal's requests) and SSL_CERT_FILE (httpx); AZURE_AUTHORITY_HOST sends msal to the emulator's token endpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_identity_provider.auth.directory.graph import GraphDirectory
from airflow_identity_provider.auth.idp import make_provider
from airflow_identity_provider.auth.rules.settings import parse_settings
from airflow_identity_provider.auth.services.directory import directory_sources
from dev.graph_emulator.client import GraphEmulator

TENANT = "aaaaaaaa-0000-0000-0000-0000000000aa"
CLIENT = "cccccccc-0000-0000-0000-0000000000cc"
SECRET = "graph-secret"


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphEmulator]:
    with GraphEmulator(tenant_id=TENANT, apps={CLIENT: SECRET}) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _reset(graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    graph.reset()
    graph.register_app(CLIENT, SECRET)
    for name, value in {**graph.ca_env, "AZURE_AUTHORITY_HOST": graph.url}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def make_directory(graph: GraphEmulator) -> Callable[..., GraphDirectory]:
    def make(**settings: str) -> GraphDirectory:
        raw: dict[str, Any] = {
            "idp": "entra",
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "client_secret": SECRET,
            "graph_url": graph.graph_url,
            "http_timeout": "5",
            **settings,
        }
        ((source, _interval),) = directory_sources({"default": make_provider(parse_settings(raw))})["default"]
        assert isinstance(source, GraphDirectory)
        return source

    return make
