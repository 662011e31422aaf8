"""What the sync and the async ARM hook share: client keyword arguments, pipeline policies, per-subscription
clients, the correlation id and the connection metadata. See :mod:`.arm` for the hooks themselves.

The azure SDK is imported inside methods: Airflow may import this module to find the connection
form, and that must stay cheap.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from airflow.sdk.bases.hook import BaseHook

from airflow_identity_provider.azure.rules.connection_settings import (
    CONN_TYPE,
    DEFAULT_RATELIMIT_WARNING_THRESHOLD,
    ArmConnectionSettings,
)
from airflow_identity_provider.azure.rules.scopes import canonical_subscription_id

__all__ = ["ArmHookBase", "client_kwargs", "connection_type_info", "make_policies", "secret_fragments"]

_PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(.*?)-----END [A-Z ]*PRIVATE KEY-----", re.S)

T = TypeVar("T")


def _task_correlation_id() -> str:
    """The correlation id of the running task try, or a random one outside a task."""
    from airflow_identity_provider.azure.policies import correlation_id_for

    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        return correlation_id_for(ti.dag_id, ti.run_id, ti.task_id, ti.try_number, ti.map_index)
    except Exception:  # not inside a task (tests, the UI's Test button, a plain script)
        return correlation_id_for()


def secret_fragments(settings: ArmConnectionSettings) -> list[str]:
    """Secrets to mask, plus each line of an inline private key: a log line may hold only part of a PEM."""
    fragments = list(settings.secrets)
    if settings.certificate_data:
        for block in _PRIVATE_KEY_BLOCK.findall(settings.certificate_data):
            fragments.extend(line.strip() for line in block.splitlines() if len(line.strip()) >= 16)
    return fragments


def _quiet_http_logging() -> None:
    # azure-core logs every request's and response's headers at INFO; in a task log that drowns the
    # access report and ARM's own errors. Warnings and errors still come through.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)


def client_kwargs(settings: ArmConnectionSettings, policies: list[Any]) -> dict[str, Any]:
    """Keyword arguments shared by every ARM client of a hook (sync and async)."""
    _quiet_http_logging()
    kwargs: dict[str, Any] = {
        "base_url": settings.cloud.arm_endpoint,
        "credential_scopes": [settings.cloud.arm_scope],
        # A fresh list per client: ARMPipelineClient appends its own policy to a per_call list it is
        # given (azure/mgmt/core/_pipeline_client.py), which would otherwise accumulate across clients.
        "per_call_policies": list(policies),
        "polling_interval": settings.polling_interval,
        # ARM does not redirect. Following a 3xx would re-send the request (and its body) to wherever
        # it points, past the per-call host pin, so a redirect is surfaced as an error instead.
        "permit_redirects": False,
    }
    if settings.connection_verify:
        kwargs["connection_verify"] = settings.connection_verify
    return kwargs


def make_policies(settings: ArmConnectionSettings, correlation_id: str, threshold: int) -> list[Any]:
    from airflow_identity_provider.azure.policies import (
        CorrelationIdPolicy,
        HostPinningPolicy,
        RateLimitLoggingPolicy,
    )

    # Host pin first: nothing else should even see a request to a foreign host.
    return [
        HostPinningPolicy([settings.cloud.arm_endpoint]),
        CorrelationIdPolicy(correlation_id),
        RateLimitLoggingPolicy(threshold),
    ]


class ArmHookBase(BaseHook):
    """Connection metadata and settings shared by the sync and the async hook."""

    conn_name_attr = "azure_resource_manager_conn_id"
    default_conn_name = "azure_resource_manager_default"
    conn_type = CONN_TYPE
    hook_name = "Azure Resource Manager"

    def __init__(
        self,
        azure_resource_manager_conn_id: str = default_conn_name,
        *,
        correlation_id: str | None = None,
        ratelimit_warning_threshold: int = DEFAULT_RATELIMIT_WARNING_THRESHOLD,
    ) -> None:
        super().__init__()
        self.azure_resource_manager_conn_id = azure_resource_manager_conn_id
        self._correlation_id = correlation_id
        self._ratelimit_warning_threshold = ratelimit_warning_threshold
        self._settings: ArmConnectionSettings | None = None
        self._policies: list[Any] | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.RLock()  # re-entrant: a client factory takes it again for the credential

    @property
    def correlation_id(self) -> str:
        """One id for every ARM request of this hook; derived from the task try when run in a task."""
        if self._correlation_id is None:
            self._correlation_id = _task_correlation_id()
        return self._correlation_id

    def _pipeline_policies(self) -> list[Any]:
        if self._policies is None:
            self._policies = make_policies(
                self._require_settings(), self.correlation_id, self._ratelimit_warning_threshold
            )
        return self._policies

    def _require_settings(self) -> ArmConnectionSettings:
        if self._settings is None:
            raise RuntimeError("connection settings are not loaded yet")
        return self._settings

    def _client(self, name: str, factory: Callable[[], T]) -> T:
        """Build a client once per hook."""
        with self._lock:
            if name not in self._clients:
                self._clients[name] = factory()
            client: T = self._clients[name]
            return client

    def _subscription_client(
        self, kind: str, subscription_id: str | None, factory: Callable[[str], T], settings: ArmConnectionSettings
    ) -> T:
        """The ``kind`` client bound to ``subscription_id`` (a GUID; default: the connection's), built once
        per (kind, subscription). Every one shares the hook's credential and pipeline policies, and
        :meth:`close` closes them all. Naming the connection's own subscription gives the default client.
        """
        if subscription_id is None:
            subscription = settings.require_subscription_id()
        else:
            subscription = canonical_subscription_id(subscription_id)
        return self._client(f"{kind}:{subscription}", lambda: factory(subscription))


def connection_type_info() -> dict[str, Any]:
    """The connection form table that get_provider_info() also declares (one table, so the two never drift)."""
    from airflow_identity_provider.provider_info.arm_connection import ARM_CONNECTION_TYPE

    if ARM_CONNECTION_TYPE["connection-type"] != CONN_TYPE:
        raise LookupError(
            f"provider_info.arm_connection declares {ARM_CONNECTION_TYPE['connection-type']!r}, not {CONN_TYPE!r}"
        )
    return ARM_CONNECTION_TYPE
