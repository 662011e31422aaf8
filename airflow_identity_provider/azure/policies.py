"""azure-core pipeline policies for the ARM hook, one concern each.

All are ``SansIOHTTPPolicy`` with plain (non-async) hooks, so the same instances work in the sync and
the async pipelines. The hook passes them as ``per_call_policies``. In the generated mgmt clients
(which hand an explicit ``policies=`` list to ``ARMPipelineClient``) azure-core's
``PipelineClient._build_pipeline`` puts ``per_call_policies`` in FRONT of the whole list, so they run
before the redirect, retry and ``ARMChallengeAuthenticationPolicy`` (bearer token) policies, and
again for every request the client makes: operations, paging ``nextLink`` and LRO polling all go
through ``client._client._pipeline``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

from airflow_identity_provider.azure.rules.connection_settings import DEFAULT_RATELIMIT_WARNING_THRESHOLD

__all__ = [
    "CORRELATION_HEADER",
    "CorrelationIdPolicy",
    "HostPinningPolicy",
    "RateLimitLoggingPolicy",
    "correlation_id_for",
]

log = logging.getLogger(__name__)

CORRELATION_HEADER = "x-ms-correlation-request-id"
RATELIMIT_PREFIX = "x-ms-ratelimit-remaining-"
# Fixed namespace so the same task try always maps to the same correlation id (uuid5 is deterministic).
_CORRELATION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/airflow-identity-provider/")
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in; a bare ``host[:port]`` means https."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    return scheme, host, port


class HostPinningPolicy(SansIOHTTPPolicy[Any, Any]):
    """Refuse any request whose origin is not the connection's ARM endpoint.

    ARM polling follows ``Azure-AsyncOperation``/``Location`` and paging follows ``nextLink`` to any
    host and attaches the bearer token (azure-core's BearerTokenCredentialPolicy does not check the host).
    As a per-call policy this runs
    before the authentication policy, so a refused request never gets a token, and it raises
    ``ServiceRequestError`` before anything is sent.
    """

    def __init__(self, allowed_hosts: Iterable[str]) -> None:
        self._allowed = frozenset(_origin(h) for h in allowed_hosts)
        if not self._allowed:
            raise ValueError("HostPinningPolicy needs at least one allowed host")

    @property
    def allowed(self) -> list[str]:
        return sorted(f"{host}:{port}" for _, host, port in self._allowed)

    def on_request(self, request: PipelineRequest[Any]) -> None:
        url = str(request.http_request.url)
        scheme, host, port = _origin(url)
        if (scheme, host, port) in self._allowed:
            return
        raise ServiceRequestError(
            f"Refused to send {request.http_request.method} {scheme}://{host}:{port}: only "
            f"{', '.join(self.allowed)} (this connection's ARM endpoint) may receive its token. A "
            "long-running-operation or nextLink URL pointed elsewhere; nothing was sent."
        )


def correlation_id_for(
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    try_number: int | None = None,
    map_index: int | None = None,
) -> str:
    """The ARM correlation id of one task try: uuid5 of its identity, or a random uuid4 outside a task.

    Deterministic so that the id can be recomputed from the task instance later and used to search
    the Activity Log; mapped task instances differ by map_index, so it is part of the name.
    """
    if not (dag_id and run_id and task_id):
        return str(uuid.uuid4())
    name = f"{dag_id}/{run_id}/{task_id}/{try_number if try_number is not None else ''}"
    if map_index is not None and map_index >= 0:
        name += f"/{map_index}"
    return str(uuid.uuid5(_CORRELATION_NAMESPACE, name))


class CorrelationIdPolicy(SansIOHTTPPolicy[Any, Any]):
    """Send one ``x-ms-correlation-request-id`` on every request and log it once.

    ARM records it as a deployment's ``properties.correlationId`` and in the Activity Log, so every
    call of one task, polling included, can be found with one search. A header the caller set on a
    request wins.
    """

    def __init__(self, correlation_id: str) -> None:
        self.correlation_id = correlation_id
        self._logged = False
        self._lock = threading.Lock()

    def on_request(self, request: PipelineRequest[Any]) -> None:
        headers = request.http_request.headers
        if CORRELATION_HEADER not in headers:
            headers[CORRELATION_HEADER] = self.correlation_id
        if not self._logged:
            with self._lock:
                if not self._logged:
                    self._logged = True
                    log.info(
                        "Azure Resource Manager correlation id: %s (search the Activity Log for it)",
                        self.correlation_id,
                    )


class RateLimitLoggingPolicy(SansIOHTTPPolicy[Any, Any]):
    """Log ARM's ``x-ms-ratelimit-remaining-*`` counters and warn when one drops below ``threshold``.

    azure-core already retries 429 with ``Retry-After``; this makes the approach to throttling visible
    in the task log before it happens. The latest value of each counter is kept in ``remaining``.
    """

    def __init__(self, threshold: int = DEFAULT_RATELIMIT_WARNING_THRESHOLD) -> None:
        self.threshold = threshold
        self.remaining: dict[str, int] = {}

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        for name, value in response.http_response.headers.items():
            key = name.lower()
            if not key.startswith(RATELIMIT_PREFIX):
                continue
            count = _remaining_count(value)
            if count is None:
                continue
            counter = key[len(RATELIMIT_PREFIX) :]
            self.remaining[counter] = count
            if count < self.threshold:
                log.warning(
                    "ARM rate limit %s: %d requests left (warning threshold %d); ARM will answer 429 when it reaches 0",
                    counter,
                    count,
                    self.threshold,
                )
            else:
                log.debug("ARM rate limit %s: %d requests left", counter, count)


def _remaining_count(value: str) -> int | None:
    # Most counters are a bare number; RP-specific ones look like "Microsoft.Compute/HighCostGet3Min;107".
    last = str(value).rsplit(";", 1)[-1].strip()
    try:
        return int(last)
    except ValueError:
        return None
