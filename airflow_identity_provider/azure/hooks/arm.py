"""Azure Resource Manager hooks: one identity, one cloud, one credential per hook.

``AzureResourceManagerHook`` (sync) and ``AzureResourceManagerAsyncHook`` (``async with``) read an
``azure_resource_manager`` connection, build ONE azure-identity credential for it and share that
credential across the resources, deployments and authorization clients, so a task fetches one token
however many clients and calls it uses (the credential's MSAL cache serves the others). Each
``get_*_client`` takes an optional ``subscription_id`` for another subscription than the connection's:
one client per (kind, subscription), same credential, same token.

Every client gets, from the connection's cloud: ``base_url``, ``credential_scopes`` (the two must
change together or ARM answers "wrong audience"), and per-call policies that pin requests to the
ARM host, tag them with one correlation id and log the rate-limit counters.

The azure SDK is imported inside methods: Airflow may import this module to find the connection
form, and that must stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_identity_provider.azure.credentials import build_async_credential, build_credential
from airflow_identity_provider.azure.hooks.base import (
    ArmHookBase,
    client_kwargs,
    connection_type_info,
    secret_fragments,
)
from airflow_identity_provider.azure.rules.connection_extras import settings_from_connection
from airflow_identity_provider.azure.rules.connection_settings import (
    DEFAULT_RATELIMIT_WARNING_THRESHOLD,
    ArmConnectionSettings,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.authorization.aio import AuthorizationManagementClient as AsyncAuthorizationManagementClient
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient
    from azure.mgmt.resource.deployments.aio import DeploymentsMgmtClient as AsyncDeploymentsMgmtClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.resource.resources.aio import ResourceManagementClient as AsyncResourceManagementClient
    from azure.mgmt.resource.resources.models import ResourceGroup

__all__ = ["AzureResourceManagerAsyncHook", "AzureResourceManagerHook"]


class AzureResourceManagerHook(ArmHookBase):
    """Synchronous ARM hook.

    :param azure_resource_manager_conn_id: an ``azure_resource_manager`` connection.
    :param correlation_id: ``x-ms-correlation-request-id`` for every request; by default derived from
        the task try (uuid5 of dag/run/task/try/map index), random outside a task.
    :param ratelimit_warning_threshold: warn when an ``x-ms-ratelimit-remaining-*`` counter drops below.
    """

    def __init__(
        self,
        azure_resource_manager_conn_id: str = ArmHookBase.default_conn_name,
        *,
        correlation_id: str | None = None,
        ratelimit_warning_threshold: int = DEFAULT_RATELIMIT_WARNING_THRESHOLD,
    ) -> None:
        super().__init__(
            azure_resource_manager_conn_id,
            correlation_id=correlation_id,
            ratelimit_warning_threshold=ratelimit_warning_threshold,
        )
        self._credential: TokenCredential | None = None

    # -- connection form: legacy Python fallback of get_provider_info's declarative conn-fields --------
    # Airflow >= 3.2 reads conn-fields/ui-field-behaviour and skips these; older UIs call them. They are
    # defined on this class itself because ProvidersManager looks them up in the hook's own __dict__.

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """wtforms fields for the extras, generated from get_provider_info so the two never drift.

        Only StringField/PasswordField: ProvidersManager drops the whole hook if it meets another
        field class (e.g. SelectField), so choices are listed in the description instead.
        """
        try:
            from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import PasswordField, StringField
        except ImportError:  # Airflow 3 without the FAB provider: the UI reads conn-fields instead
            return {}
        widgets: dict[str, Any] = {}
        for name, spec in connection_type_info()["conn-fields"].items():
            schema = spec.get("schema", {})
            label = lazy_gettext(spec["label"])
            description = spec.get("description", "")
            if "enum" in schema:
                description = f"{description} One of: {', '.join(schema['enum'])}.".strip()
            if schema.get("format") == "password":
                widgets[name] = PasswordField(label, widget=BS3PasswordFieldWidget(), description=description)
            else:
                widgets[name] = StringField(
                    label, widget=BS3TextFieldWidget(), description=description, default=schema.get("default")
                )
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        behaviour = connection_type_info()["ui-field-behaviour"]
        return {
            "hidden_fields": list(behaviour.get("hidden-fields", [])),
            "relabeling": dict(behaviour.get("relabeling", {})),
            "placeholders": dict(behaviour.get("placeholders", {})),
        }

    @property
    def settings(self) -> ArmConnectionSettings:
        """The validated connection (read once). Raises ConnectionConfigError naming the key to fix."""
        if self._settings is None:
            from airflow.sdk.log import mask_secret

            settings = settings_from_connection(self.get_connection(self.azure_resource_manager_conn_id))
            for secret in secret_fragments(settings):
                mask_secret(secret)
            self._settings = settings
        return self._settings

    def get_conn(self) -> ResourceManagementClient:
        return self.get_resource_client()

    def get_credential(self) -> TokenCredential:
        """The hook's one credential; every client shares it, so its token cache is shared too."""
        settings = self.settings
        with self._lock:
            if self._credential is None:
                self._credential = build_credential(settings)
            return self._credential

    def _kwargs(self) -> dict[str, Any]:
        return client_kwargs(self.settings, self._pipeline_policies())

    def get_resource_client(self, *, subscription_id: str | None = None) -> ResourceManagementClient:
        """The resources client for ``subscription_id`` (default: the connection's subscription).

        Likewise :meth:`get_deployments_client` and :meth:`get_authorization_client`: one client per
        (kind, subscription), all sharing the hook's one credential, so another subscription costs no
        new token. ValueError if ``subscription_id`` is not a GUID.
        """

        def build(subscription: str) -> ResourceManagementClient:
            from azure.mgmt.resource.resources import ResourceManagementClient

            return ResourceManagementClient(self.get_credential(), subscription, **self._kwargs())

        return self._subscription_client("resources", subscription_id, build, self.settings)

    def get_deployments_client(self, *, subscription_id: str | None = None) -> DeploymentsMgmtClient:
        def build(subscription: str) -> DeploymentsMgmtClient:
            from azure.mgmt.resource.deployments import DeploymentsMgmtClient

            return DeploymentsMgmtClient(self.get_credential(), subscription, **self._kwargs())

        return self._subscription_client("deployments", subscription_id, build, self.settings)

    def get_authorization_client(self, *, subscription_id: str | None = None) -> AuthorizationManagementClient:
        def build(subscription: str) -> AuthorizationManagementClient:
            from azure.mgmt.authorization import AuthorizationManagementClient

            return AuthorizationManagementClient(self.get_credential(), subscription, **self._kwargs())

        return self._subscription_client("authorization", subscription_id, build, self.settings)

    def list_resource_groups(self) -> list[ResourceGroup]:
        return list(self.get_resource_client().resource_groups.list())

    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button: sign in and list the subscription's resource groups."""
        try:
            count = len(self.list_resource_groups())
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        finally:
            self.close()
        settings = self.settings
        return True, (
            f"Signed in with {settings.auth_type.value} in cloud {settings.cloud.name} and listed "
            f"{count} resource group(s) in subscription {settings.subscription_id}."
        )

    def close(self) -> None:
        """Close the clients and the credential (their HTTP sessions). The hook can be used again."""
        with self._lock:
            clients, self._clients = self._clients, {}
            credential, self._credential = self._credential, None
        for client in clients.values():
            client.close()
        if credential is not None and hasattr(credential, "close"):
            credential.close()

    def __enter__(self) -> AzureResourceManagerHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AzureResourceManagerAsyncHook(ArmHookBase):
    """Asynchronous ARM hook for triggers and async tasks; use it as an async context manager::

        async with AzureResourceManagerAsyncHook("my_conn") as hook:
            groups = await hook.list_resource_groups()

    Leaving the block closes every client and the credential (unclosed aiohttp sessions were the
    Azure provider's deferrable-operator bug, apache/airflow#55724).
    """

    def __init__(
        self,
        azure_resource_manager_conn_id: str = ArmHookBase.default_conn_name,
        *,
        correlation_id: str | None = None,
        ratelimit_warning_threshold: int = DEFAULT_RATELIMIT_WARNING_THRESHOLD,
    ) -> None:
        super().__init__(
            azure_resource_manager_conn_id,
            correlation_id=correlation_id,
            ratelimit_warning_threshold=ratelimit_warning_threshold,
        )
        self._credential: AsyncTokenCredential | None = None

    async def __aenter__(self) -> AzureResourceManagerAsyncHook:
        await self.load_settings()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def load_settings(self) -> ArmConnectionSettings:
        """Read and validate the connection without blocking the event loop."""
        if self._settings is None:
            from airflow_identity_provider.version_compat import amask_secret

            conn = await self.aget_connection(self.azure_resource_manager_conn_id)
            settings = settings_from_connection(conn)
            for secret in secret_fragments(settings):
                await amask_secret(secret)
            self._settings = settings
        return self._settings

    @property
    def settings(self) -> ArmConnectionSettings:
        """The validated connection; available inside ``async with`` (or after ``load_settings()``)."""
        if self._settings is None:
            raise RuntimeError("AzureResourceManagerAsyncHook is used outside 'async with' (or before load_settings())")
        return self._settings

    def get_credential(self) -> AsyncTokenCredential:
        settings = self.settings
        with self._lock:
            if self._credential is None:
                self._credential = build_async_credential(settings)
            return self._credential

    def _kwargs(self) -> dict[str, Any]:
        return client_kwargs(self.settings, self._pipeline_policies())

    def get_resource_client(self, *, subscription_id: str | None = None) -> AsyncResourceManagementClient:
        def build(subscription: str) -> AsyncResourceManagementClient:
            from azure.mgmt.resource.resources.aio import ResourceManagementClient

            return ResourceManagementClient(self.get_credential(), subscription, **self._kwargs())

        return self._subscription_client("resources", subscription_id, build, self.settings)

    def get_deployments_client(self, *, subscription_id: str | None = None) -> AsyncDeploymentsMgmtClient:
        def build(subscription: str) -> AsyncDeploymentsMgmtClient:
            from azure.mgmt.resource.deployments.aio import DeploymentsMgmtClient

            return DeploymentsMgmtClient(self.get_credential(), subscription, **self._kwargs())

        return self._subscription_client("deployments", subscription_id, build, self.settings)

    def get_authorization_client(self, *, subscription_id: str | None = None) -> AsyncAuthorizationManagementClient:
        def build(subscription: str) -> AsyncAuthorizationManagementClient:
            from azure.mgmt.authorization.aio import AuthorizationManagementClient

            return AuthorizationManagementClient(self.get_credential(), subscription, **self._kwargs())

        return self._subscription_client("authorization", subscription_id, build, self.settings)

    async def list_resource_groups(self) -> list[ResourceGroup]:
        return [group async for group in self.get_resource_client().resource_groups.list()]

    async def close(self) -> None:
        """Close every client, then the credential. Safe to call twice."""
        with self._lock:
            clients, self._clients = self._clients, {}
            credential, self._credential = self._credential, None
        for client in clients.values():
            await client.close()
        if credential is not None:
            await credential.close()
