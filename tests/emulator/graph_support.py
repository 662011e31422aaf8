"""Shared by the Graph emulator tests (the ``graph`` fixture is in conftest.py): the reset before every test, and the
clients production uses: msal built as ``EntraProvider`` builds it (no ``verify=``, no ``http_client``), trusting the
emulator's CA the standard way, through ``REQUESTS_CA_BUNDLE`` (see ``EmulatorProcess.ca_env``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import msal
import pytest
import requests

from dev.graph_emulator.client import GRAPH_SCOPE, GraphEmulator

TENANT = "aaaaaaaa-0000-0000-0000-0000000000aa"
CLIENT = "cccccccc-0000-0000-0000-0000000000cc"
SECRET = "graph-secret"


def reset_graph(graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before every test of a Graph module (from its own autouse ``_reset``, which replaces the ARM one)."""
    graph.reset()
    for name, value in graph.ca_env.items():
        monkeypatch.setenv(name, value)


def msal_app(graph: GraphEmulator, client: str = CLIENT, secret: str = SECRET) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client, client_credential=secret, authority=graph.authority, instance_discovery=False
    )


def token(graph: GraphEmulator) -> str:
    result = msal_app(graph).acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in result, result
    return str(result["access_token"])


def get(graph: GraphEmulator, url: str, tok: str | None, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    headers.update(kw.pop("headers", {}))
    full = url if url.startswith("https://") else graph.url + url
    return requests.get(full, headers=headers, timeout=kw.pop("timeout", 10), **kw)


def delta_round(graph: GraphEmulator, url: str, tok: str, **kw: Any) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink: (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        resp = get(graph, url, tok, **kw)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages += 1
        items += body["value"]
        assert ("@odata.nextLink" in body) != ("@odata.deltaLink" in body)
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


def claims_of(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def graph_error(response: requests.Response) -> tuple[int, str]:
    """(status, Graph error code), checking Graph's error envelope on the way."""
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "innerError"} <= set(body["error"]), body
    assert {"date", "request-id", "client-request-id"} <= set(body["error"]["innerError"]), body
    return response.status_code, str(body["error"]["code"])
