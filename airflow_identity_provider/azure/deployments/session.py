"""One ARM template deployment, addressed by scope and name: the requests the deployment operators and the
deferrable trigger send about it, written once.

:class:`DeploymentSession` (sync, a worker) maps ARM errors to task failures carrying ARM's text;
:class:`AsyncDeploymentSession` (the triggerer) lets ``HttpResponseError`` through, so the trigger can
report it in its event. Both read ``provisioningState`` the same way (:mod:`.state`). The azure SDK is
imported inside methods: operators import this module when their DAG file is parsed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_identity_provider.azure.deployments.state import (
    MAX_THROTTLED_POLLS,
    TERMINAL_STATES,
    DeploymentTarget,
    operation_failure,
    poll_pause,
    provisioning_state,
    throttled_out_message,
    throttled_pause,
    timeout_message,
)
from airflow_identity_provider.azure.hooks.errors import raise_arm_error
from airflow_identity_provider.azure.rules.arm_json import as_dict, error_lines

if TYPE_CHECKING:
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient
    from azure.mgmt.resource.deployments.aio import DeploymentsMgmtClient as AsyncDeploymentsMgmtClient

    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerAsyncHook, AzureResourceManagerHook

__all__ = ["AsyncDeploymentSession", "DeploymentSession"]

# What-if and validate are POSTs that change nothing in Azure, so one whose answer was lost (connection refused
# or dropped while an ARM front end restarts) is safe to send again. azure-core's retry policy resends a POST
# only on 500/503/504 (RetryPolicy._is_method_retryable); these calls add POST to its default methods.
_RESEND_READ_ONLY_POSTS: dict[str, Any] = {
    "retry_on_methods": frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})
}


class DeploymentSession:
    """Deployment ``name`` at ``target``, through ``hook``'s deployments client for the target's subscription.

    ``get`` / ``what_if`` / ``validate`` / ``start`` / ``wait`` / ``cancel`` / ``failed_operations``.
    """

    def __init__(self, hook: AzureResourceManagerHook, target: DeploymentTarget, name: str) -> None:
        self.hook = hook
        self.target = target
        self.name = name

    @property
    def client(self) -> DeploymentsMgmtClient:
        return self.hook.get_deployments_client(subscription_id=self.target.subscription_id)

    def get(self) -> Any:
        """The deployment, or None if ARM has none by that name (or the group does not exist yet)."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        try:
            return self.client.deployments.get_at_scope(self.target.scope, self.name)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as err:
            raise_arm_error(f"read deployment {self.name} at {self.target.scope}", err)

    def what_if(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """ARM's what-if for exactly the request that would be sent; the final result body as a dict."""
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.resource.deployments.models import DeploymentWhatIf

        # The SDK's hybrid models wrap the REST JSON as is; tags are not part of a what-if request.
        request = DeploymentWhatIf({key: value for key, value in body.items() if key != "tags"})
        deployments = self.client.deployments
        name, target = self.name, self.target
        try:
            if target.resource_group is not None:
                poller = deployments.begin_what_if(target.resource_group, name, request, **_RESEND_READ_ONLY_POSTS)
            else:
                poller = deployments.begin_what_if_at_subscription_scope(name, request, **_RESEND_READ_ONLY_POSTS)
            result = as_dict(poller.result())
        except HttpResponseError as err:
            raise_arm_error(f"run what-if for deployment {name} at {target.scope}", err)
        if str(result.get("status", "")).lower() == "failed" or result.get("error"):
            lines = "\n".join(error_lines(result.get("error")))
            raise AirflowException(f"What-if for deployment {name} at {target.scope} failed:\n{lines}")
        return result

    def validate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """ARM's ``validate`` of the request (nothing is written); the result as a dict."""
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.resource.deployments.models import Deployment

        try:
            result = self.client.deployments.begin_validate_at_scope(
                self.target.scope, self.name, Deployment(body), **_RESEND_READ_ONLY_POSTS
            ).result()
        except HttpResponseError as err:
            raise_arm_error(f"validate deployment {self.name} at {self.target.scope}", err)
        return as_dict(result)

    def start(self, body: Mapping[str, Any]) -> Any:
        """PUT the deployment; only the acceptance is awaited (waiting is done by GET, here or in the trigger)."""
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.resource.deployments.models import Deployment

        try:
            poller = self.client.deployments.begin_create_or_update_at_scope(
                self.target.scope, self.name, Deployment(body), polling=False
            )
            return poller.result()
        except HttpResponseError as err:
            raise_arm_error(f"start deployment {self.name} at {self.target.scope}", err)

    def wait(self, *, poll_interval: float, timeout: float | None, started: float, log: Any) -> Any:
        """GET until the deployment is terminal; AirflowException when it disappears or ``timeout`` (seconds
        since the monotonic ``started``) passes. A throttled read (429) is waited out, never past the timeout."""
        throttled, last_state = 0, None
        while True:
            try:
                deployment = self.get()
            except AirflowException as err:
                cause = err.__cause__ or err
                pause = throttled_pause(cause, default=poll_interval, throttled_in_a_row=throttled)
                if pause is None and throttled >= MAX_THROTTLED_POLLS and getattr(cause, "status_code", None) == 429:
                    raise AirflowException(f"{err} {throttled_out_message(self.name, throttled)}") from err
                if pause is None:
                    raise
                left = None if timeout is None else timeout - (time.monotonic() - started)
                if left is not None and left <= 0:  # the task's timeout, not the throttling, ends the wait
                    raise AirflowException(
                        timeout_message(self.name, self.target.scope, last_state, throttled=True)
                    ) from err
                throttled += 1
                pause = pause if left is None else min(pause, left)
                log.warning(
                    "Deployment %s: ARM throttled the status read (429); reading again in %ss", self.name, pause
                )
                time.sleep(pause)
                continue
            throttled = 0
            if deployment is None:
                raise AirflowException(f"Deployment {self.name} at {self.target.scope} disappeared while running")
            state = last_state = provisioning_state(deployment)
            if state in TERMINAL_STATES:
                return deployment
            left = None if timeout is None else timeout - (time.monotonic() - started)
            if left is not None and left <= 0:
                raise AirflowException(timeout_message(self.name, self.target.scope, state))
            pause = poll_pause(poll_interval, left)
            log.info("Deployment %s: %s; next poll in %ss", self.name, state, pause)
            time.sleep(pause)

    def cancel(self) -> None:
        """Cancel the deployment; HttpResponseError when ARM refuses (finished: 409, gone: 404)."""
        self.client.deployments.cancel_at_scope(self.target.scope, self.name)

    def failed_operations(self) -> list[str]:
        """One line per failed deployment operation (target and ARM's message); HttpResponseError if unlisted."""
        operations = self.client.deployment_operations.list_at_scope(self.target.scope, self.name)
        return [text for text in (operation_failure(as_dict(op)) for op in operations) if text]


class AsyncDeploymentSession:
    """Deployment ``name`` at ``scope`` through an async hook's deployments client (for the triggerer).

    ``get`` / ``wait`` / ``cancel``; ARM errors propagate as ``HttpResponseError``.
    """

    def __init__(self, hook: AzureResourceManagerAsyncHook, scope: str, name: str) -> None:
        self.hook = hook
        self.scope = scope
        self.name = name

    @property
    def client(self) -> AsyncDeploymentsMgmtClient:
        return self.hook.get_deployments_client()

    async def get(self) -> Any:
        return await self.client.deployments.get_at_scope(self.scope, self.name)

    async def wait(self, *, poll_interval: float, timeout_at: float | None, log: Any) -> tuple[str, Any]:
        """GET until terminal: ``(state, deployment)``; ``("timeout", deployment)`` once the epoch ``timeout_at``
        passes (the deployment keeps running), with the last deployment read, or None when ARM throttled every read.
        A throttled read (429) is waited out, never past ``timeout_at``."""
        from azure.core.exceptions import HttpResponseError

        throttled, last = 0, None
        while True:
            # Only a 429 is waited out here (throttled_pause); a 403/404 will not heal, a 5xx was retried already.
            try:
                deployment = await self.get()
            except HttpResponseError as err:
                pause = throttled_pause(err, default=poll_interval, throttled_in_a_row=throttled)
                if pause is None:
                    raise
                left = None if timeout_at is None else timeout_at - time.time()
                if left is not None and left <= 0:  # the timeout ends the wait (the deployment keeps running)
                    return "timeout", last
                throttled += 1
                pause = pause if left is None else min(pause, left)
                log.warning(
                    "Deployment %s: ARM throttled the status read (429); reading again in %ss", self.name, pause
                )
                await asyncio.sleep(pause)
                continue
            throttled, last = 0, deployment
            state = provisioning_state(deployment)
            log.info("Deployment %s at %s: %s", self.name, self.scope, state)
            if state in TERMINAL_STATES:
                return state, deployment
            left = None if timeout_at is None else timeout_at - time.time()
            if left is not None and left <= 0:
                return "timeout", deployment
            await asyncio.sleep(poll_pause(poll_interval, left))

    async def cancel(self) -> None:
        """Cancel the deployment; HttpResponseError when ARM refuses (finished: 409, gone: 404)."""
        await self.client.deployments.cancel_at_scope(self.scope, self.name)
