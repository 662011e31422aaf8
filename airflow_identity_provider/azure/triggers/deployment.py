"""Deferrable polling of an ARM template deployment.

The trigger holds identifiers only (connection id, scope, deployment name, times), never a poller or
a continuation token: the triggerer can restart, or hand the trigger to another triggerer, and the
re-created trigger simply GETs the deployment again. ARM keeps the state; ``provisioningState`` is
the whole protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_identity_provider.azure.deployments.state import (
    MAX_THROTTLED_POLLS,
    TRIGGER_STATUS,
    deployment_scope,
    provisioning_state,
    throttled_out_message,
)
from airflow_identity_provider.azure.rules.arm_json import as_plain

__all__ = ["AzureDeploymentTrigger"]


def _error_dict(value: Any) -> dict[str, Any] | None:
    """An error for the event: ARM's error object as a dict, or its text as ``message``."""
    if value is None:
        return None
    plain = as_plain(value)
    return dict(plain) if isinstance(plain, Mapping) else {"message": str(value)}


class AzureDeploymentTrigger(BaseTrigger):
    """Poll ``GET {scope}/providers/Microsoft.Resources/deployments/{name}`` until it is terminal.

    Emits one event ``{"status", "deployment_name", "scope", "deployment_id", "provisioning_state",
    "correlation_id", "error"}``; ``status`` is ``success``, ``failed``, ``canceled``, ``timeout``
    (``timeout_at`` passed, the deployment keeps running) or ``error`` (the poll itself failed, e.g.
    the deployment was deleted or access was revoked; ``error`` holds ARM's message verbatim).

    :param conn_id: an ``azure_resource_manager`` connection.
    :param deployment_name: the deployment.
    :param subscription_id: with ``resource_group_name``, locates a resource-group deployment.
    :param resource_group_name: see above.
    :param scope: the deployment's scope (``/subscriptions/S`` or a resource group); wins if given.
    :param poll_interval: seconds between GETs.
    :param timeout_at: epoch seconds after which to stop polling (None: no limit).
    :param correlation_id: ``x-ms-correlation-request-id`` for the polls: the task try's, so the whole
        task, deferral included, is one search in the Activity Log.
    """

    def __init__(
        self,
        *,
        conn_id: str,
        deployment_name: str,
        subscription_id: str | None = None,
        resource_group_name: str | None = None,
        scope: str | None = None,
        poll_interval: float = 10.0,
        timeout_at: float | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.conn_id = conn_id
        self.deployment_name = deployment_name
        self.subscription_id = subscription_id
        self.resource_group_name = resource_group_name
        self.scope = scope
        self.poll_interval = float(poll_interval)
        self.timeout_at = None if timeout_at is None else float(timeout_at)
        self.correlation_id = correlation_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "deployment_name": self.deployment_name,
                "subscription_id": self.subscription_id,
                "resource_group_name": self.resource_group_name,
                "scope": self.scope,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
                "correlation_id": self.correlation_id,
            },
        )

    def _scope(self, connection_subscription: str | None) -> str:
        return deployment_scope(self.subscription_id or connection_subscription, self.resource_group_name, self.scope)

    def _event(self, status: str, scope: str, deployment: Any = None, error: Any = None) -> TriggerEvent:
        props = getattr(deployment, "properties", None)
        payload: dict[str, Any] = {
            "status": status,
            "deployment_name": self.deployment_name,
            "scope": scope,
            "deployment_id": getattr(deployment, "id", None),
            "provisioning_state": provisioning_state(deployment) if deployment is not None else None,
            "correlation_id": getattr(props, "correlation_id", None),
            "error": _error_dict(error if error is not None else getattr(props, "error", None)),
        }
        return TriggerEvent(payload)  # type: ignore[no-untyped-call]

    def _hook(self) -> Any:
        from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerAsyncHook

        return AzureResourceManagerAsyncHook(self.conn_id, correlation_id=self.correlation_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Poll to the end first, then yield outside the hook's 'async with': a consumer that stops after
        # the first event never resumes the generator, so a yield inside it would leave the aiohttp
        # session open until garbage collection ("Unclosed client session", apache/airflow#55724).
        event = await self._poll()
        yield event

    async def _poll(self) -> TriggerEvent:
        from azure.core.exceptions import HttpResponseError

        from airflow_identity_provider.azure.deployments.session import AsyncDeploymentSession

        async with self._hook() as hook:
            scope = self._scope(hook.settings.subscription_id)
            session = AsyncDeploymentSession(hook, scope, self.deployment_name)
            try:
                state, deployment = await session.wait(
                    poll_interval=self.poll_interval, timeout_at=self.timeout_at, log=self.log
                )
            except HttpResponseError as err:
                code = getattr(getattr(err, "error", None), "code", None)
                message = str(err)
                if err.status_code == 429:  # a 429 gets here only once the wait gave up on the throttling
                    message = f"{message} {throttled_out_message(self.deployment_name, MAX_THROTTLED_POLLS)}"
                return self._event("error", scope, error={"code": code, "message": message})
            return self._event(TRIGGER_STATUS.get(state, state), scope, deployment)

    async def on_kill(self) -> None:
        """The user killed the deferred task (mark failed/success, clear): cancel the deployment.

        Only then: a triggerer restart or hand-over does not call this, so the deployment survives it.
        """
        from azure.core.exceptions import HttpResponseError

        from airflow_identity_provider.azure.deployments.session import AsyncDeploymentSession

        async with self._hook() as hook:
            scope = self._scope(hook.settings.subscription_id)
            try:
                await AsyncDeploymentSession(hook, scope, self.deployment_name).cancel()
                self.log.warning("Canceled deployment %s at %s", self.deployment_name, scope)
            except HttpResponseError as err:  # already finished (409) or gone (404)
                self.log.warning("Could not cancel deployment %s at %s: %s", self.deployment_name, scope, err)
