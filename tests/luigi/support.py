"""Helpers of tests/luigi: the gateway served in-process by uvicorn, sign-in through the real local IdP, and
reading luigid's own state directly (to assert that a refused call changed nothing)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn

from airflow_identity_provider.luigi_gateway.app import create_app
from airflow_identity_provider.luigi_gateway.settings import GatewaySettings, parse_gateway
from dev.airflow_server import free_port
from dev.idp.local_idp import LocalIdp, login_through_idp
from dev.luigi_stack import gateway_values
from tests.support.idp_tokens import client_credentials_token


def settings_for(idp: LocalIdp, *, upstream: str, port: int, **extra: str) -> GatewaySettings:
    return parse_gateway({"luigi_gateway": gateway_values(idp, upstream=upstream, port=port, **extra)})


@dataclass
class Served:
    url: str
    settings: GatewaySettings


@contextmanager
def serve(settings: GatewaySettings) -> Iterator[Served]:
    """The gateway app under a real uvicorn on loopback, in a thread of the test process."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start the gateway")
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{settings.port}", settings)
    finally:
        server.should_exit = True
        thread.join(10)


def gateway_port() -> int:
    return free_port()


@contextmanager
def signed_in(gateway_url: str, username: str) -> Iterator[httpx.Client]:
    """A browser-like client signed in to the gateway as ``username`` (through the IdP's real login page)."""
    with httpx.Client(timeout=30) as browser:
        start = browser.get(f"{gateway_url}/auth/login", params={"next": "/static/visualiser/index.html"})
        assert start.status_code == 302, start.text
        back = login_through_idp(browser, start.headers["location"], username)
        done = browser.get(back.headers["location"])
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"{gateway_url}/static/visualiser/index.html"
        yield browser


def luigid_call(luigid_url: str, method: str, **arguments: Any) -> Any:
    """Straight to luigid (no gateway): what the scheduler really holds."""
    response = httpx.post(f"{luigid_url}/api/{method}", data={"data": json.dumps(arguments)}, timeout=30)
    response.raise_for_status()
    return response.json()["response"]


def task_status(luigid_url: str, task_id: str) -> str | None:
    found = luigid_call(luigid_url, "task_search", task_str=task_id.split("_")[0])
    for tasks in found.values():
        if task_id in tasks:
            return str(tasks[task_id]["status"])
    return None


def api(
    client: httpx.Client | None,
    gateway_url: str,
    method: str,
    *,
    headers: Mapping[str, str] | None = None,
    **arguments: Any,
) -> httpx.Response:
    """A GET /api/<method>?data=... as the visualiser sends it."""
    send = client.get if client is not None else httpx.get
    return send(f"{gateway_url}/api/{method}", params={"data": json.dumps(arguments)}, headers=dict(headers or {}))


def same_origin(gateway_url: str) -> dict[str, str]:
    """The headers the visualiser's own $.ajax calls carry in Chromium."""
    parts = urlsplit(gateway_url)
    return {
        "Sec-Fetch-Site": "same-origin",
        "X-Requested-With": "XMLHttpRequest",
        "Origin": f"{parts.scheme}://{parts.netloc}",
    }


def client_token(idp: LocalIdp, client_id: str, secret: str) -> str:
    return client_credentials_token(idp, client_id, secret, scope=None)
