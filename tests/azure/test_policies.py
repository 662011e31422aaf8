"""Pipeline policies, exercised inside real azure-mgmt clients over an in-memory requests adapter.

The emulator tests (test_arm_emulator.py) show the same end to end over HTTPS; these run without it and
pin down the ordering facts the host pin depends on.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import BaseAdapter

from airflow_identity_provider.azure.hooks.base import client_kwargs as _client_kwargs
from airflow_identity_provider.azure.hooks.base import make_policies as _make_policies
from airflow_identity_provider.azure.policies import (
    CORRELATION_HEADER,
    CorrelationIdPolicy,
    HostPinningPolicy,
    RateLimitLoggingPolicy,
    correlation_id_for,
)
from airflow_identity_provider.azure.rules.connection_extras import parse_connection_settings

SUB = "8a8a8a8a-1111-2222-3333-444444444444"
ARM = "https://arm.test:8443"
FOREIGN = "https://127.0.0.2:8443"

Responder = Callable[[requests.PreparedRequest], tuple[int, dict[str, str], Any]]


class FakeAdapter(BaseAdapter):
    """Answers every request from ``responder`` and records what was sent (with headers)."""

    def __init__(self, responder: Responder) -> None:
        super().__init__()
        self.responder = responder
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(request)
        status, headers, body = self.responder(request)
        data = json.dumps(body).encode() if body is not None else b""
        all_headers = {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}
        response = requests.Response()
        response.status_code = status
        response.headers.update(all_headers)
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(data), headers=all_headers, status=status, preload_content=False
        )
        response._content = data
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


class StaticCredential:
    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken("static-token", int(time.time()) + 3600)


def make_client(responder: Responder, **extras: Any) -> tuple[Any, FakeAdapter, StaticCredential]:
    from azure.mgmt.resource.resources import ResourceManagementClient

    settings = parse_connection_settings(
        "c",
        {
            "subscription_id": SUB,
            "cloud": "custom",
            "authority": ARM,
            "resource_manager_url": ARM,
            "polling_interval": 0.01,
            **extras,
        },
    )
    adapter = FakeAdapter(responder)
    session = requests.Session()
    session.mount("https://", adapter)
    credential = StaticCredential()
    policies = _make_policies(settings, "11111111-2222-3333-4444-555555555555", threshold=10)
    client = ResourceManagementClient(
        credential,  # type: ignore[arg-type]
        SUB,
        transport=RequestsTransport(session=session, session_owner=False),
        retry_total=0,
        **_client_kwargs(settings, policies),
    )
    return client, adapter, credential


def test_foreign_lro_host_never_receives_a_token() -> None:
    def responder(req: requests.PreparedRequest) -> tuple[int, dict[str, str], Any]:
        if req.method == "DELETE":
            return 202, {"Location": f"{FOREIGN}/evil/operation"}, None
        return 200, {}, {}

    client, adapter, _ = make_client(responder)
    with pytest.raises(ServiceRequestError, match=r"Refused to send GET https://127\.0\.0\.2:8443.*arm\.test:8443"):
        client.resource_groups.begin_delete("rg").result()
    hosts = [requests.utils.urlparse(r.url).netloc for r in adapter.sent]
    assert hosts == ["arm.test:8443"]  # the DELETE only; the poll was refused before the transport
    assert adapter.sent[0].headers["Authorization"] == "Bearer static-token"


def test_foreign_next_link_is_refused() -> None:
    def responder(req: requests.PreparedRequest) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {"value": [{"name": "rg1", "location": "x"}], "nextLink": f"{FOREIGN}/page2"}

    client, adapter, _ = make_client(responder)
    with pytest.raises(ServiceRequestError, match=r"127\.0\.0\.2:8443"):
        list(client.resource_groups.list())
    assert len(adapter.sent) == 1


def test_http_to_the_arm_host_is_refused() -> None:
    policy = HostPinningPolicy(["https://arm.test:8443/"])
    request = _pipeline_request("http://arm.test:8443/subscriptions")
    with pytest.raises(ServiceRequestError):
        policy.on_request(request)
    policy.on_request(_pipeline_request("https://ARM.test:8443/x"))  # host compare is case-insensitive
    default_port = HostPinningPolicy(["management.azure.com"])
    default_port.on_request(_pipeline_request("https://management.azure.com:443/x"))
    with pytest.raises(ServiceRequestError):
        default_port.on_request(_pipeline_request("https://management.azure.com:444/x"))


def test_redirects_are_not_followed() -> None:
    def responder(req: requests.PreparedRequest) -> tuple[int, dict[str, str], Any]:
        if "evil" in (req.url or ""):
            return 200, {}, {"value": []}
        return 307, {"Location": f"{FOREIGN}/evil"}, None

    client, adapter, _ = make_client(responder)
    with pytest.raises(Exception):  # noqa: B017 - HttpResponseError for the 307, but never a followed redirect
        list(client.resource_groups.list())
    assert all("127.0.0.2" not in (r.url or "") for r in adapter.sent)


def test_correlation_header_on_every_request_including_polls(caplog: pytest.LogCaptureFixture) -> None:
    polls = {"n": 0}

    def responder(req: requests.PreparedRequest) -> tuple[int, dict[str, str], Any]:
        if req.method == "DELETE":
            return 202, {"Location": f"{ARM}/operations/1", "Retry-After": "0"}, None
        polls["n"] += 1
        if polls["n"] < 3:
            return 202, {"Location": f"{ARM}/operations/1", "Retry-After": "0"}, None
        return 200, {}, None

    caplog.set_level(logging.INFO, logger="airflow_identity_provider.azure.policies")
    client, adapter, credential = make_client(responder)
    client.resource_groups.begin_delete("rg").result()
    assert len(adapter.sent) == 4
    assert {r.headers[CORRELATION_HEADER] for r in adapter.sent} == {"11111111-2222-3333-4444-555555555555"}
    assert credential.calls == 1  # the pipeline reuses its token for the polls
    logged = [r for r in caplog.records if "correlation id" in r.getMessage()]
    assert len(logged) == 1


def test_caller_correlation_header_wins() -> None:
    policy = CorrelationIdPolicy("a")
    request = _pipeline_request("https://x/", headers={CORRELATION_HEADER: "b"})
    policy.on_request(request)
    assert request.http_request.headers[CORRELATION_HEADER] == "b"


def test_correlation_id_for() -> None:
    one = correlation_id_for("dag", "run", "task", 1)
    assert one == correlation_id_for("dag", "run", "task", 1)
    assert uuid.UUID(one).version == 5
    assert one != correlation_id_for("dag", "run", "task", 2)
    assert correlation_id_for("dag", "run", "task", 1, 0) != correlation_id_for("dag", "run", "task", 1, 1)
    assert correlation_id_for("dag", "run", "task", 1, -1) == one
    assert uuid.UUID(correlation_id_for()).version == 4
    assert correlation_id_for() != correlation_id_for()


def test_ratelimit_logging(caplog: pytest.LogCaptureFixture) -> None:
    def responder(req: requests.PreparedRequest) -> tuple[int, dict[str, str], Any]:
        return (
            200,
            {
                "x-ms-ratelimit-remaining-subscription-reads": "7",
                "x-ms-ratelimit-remaining-tenant-reads": "11999",
                "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/HighCostGet3Min;107",
                "x-ms-ratelimit-remaining-subscription-global-reads": "n/a",
            },
            {"value": []},
        )

    caplog.set_level(logging.DEBUG, logger="airflow_identity_provider.azure.policies")
    client, _, _ = make_client(responder)
    list(client.resource_groups.list())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "ARM rate limit subscription-reads: 7 requests left (warning threshold 10); "
        "ARM will answer 429 when it reaches 0"
    ]
    policy = next(p for p in client._client._pipeline._impl_policies if isinstance(_unwrap(p), RateLimitLoggingPolicy))
    assert _unwrap(policy).remaining == {"subscription-reads": 7, "tenant-reads": 11999, "resource": 107}


def _unwrap(policy: Any) -> Any:
    return getattr(policy, "_policy", policy)


def _pipeline_request(url: str, headers: dict[str, str] | None = None) -> Any:
    from azure.core.pipeline import PipelineContext, PipelineRequest
    from azure.core.rest import HttpRequest

    return PipelineRequest(HttpRequest("GET", url, headers=headers), PipelineContext(None))
