"""Validated settings of an ``azure_resource_manager`` connection: the frozen :class:`ArmConnectionSettings`,
its vocabulary (auth types, the known extras) and :class:`ConnectionConfigError`.

Pure: no Airflow and no azure SDK imports. :mod:`.connection_extras` turns extras into these settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from airflow_identity_provider.clouds import Cloud
from airflow_identity_provider.errors import Refusal

__all__ = [
    "CONN_TYPE",
    "DEFAULT_AUTH_TYPE",
    "DEFAULT_POLLING_INTERVAL",
    "DEFAULT_RATELIMIT_WARNING_THRESHOLD",
    "KNOWN_EXTRAS",
    "LEGACY_PREFIX",
    "ArmConnectionSettings",
    "AuthType",
    "ConnectionConfigError",
    "ManagedIdentityId",
    "check_auth_requirements",
]

CONN_TYPE = "azure_resource_manager"
# Airflow 2 stored custom form fields as extra__<conn_type>__<name>; old connections still carry them.
LEGACY_PREFIX = f"extra__{CONN_TYPE}__"
DEFAULT_POLLING_INTERVAL = 10.0
# Warn when an x-ms-ratelimit-remaining-* counter of ARM drops below this (the hook's and the policy's default).
DEFAULT_RATELIMIT_WARNING_THRESHOLD = 100


class AuthType(str, Enum):
    MANAGED_IDENTITY = "managed_identity"
    WORKLOAD_IDENTITY = "workload_identity"
    CLIENT_SECRET = "client_secret"
    CERTIFICATE = "certificate"
    DEFAULT = "default"


# What an auth_type defaults to when the extra is absent: the same default the UI form shows
# (get_provider_info conn-fields). Safe because stray credentials are refused below, not ignored.
DEFAULT_AUTH_TYPE = AuthType.MANAGED_IDENTITY

KNOWN_EXTRAS: frozenset[str] = frozenset(
    {
        "auth_type",
        "tenant_id",
        "subscription_id",
        "client_id",
        "managed_identity_client_id",
        "managed_identity_object_id",
        "managed_identity_resource_id",
        "certificate_path",
        "certificate_data",
        "federated_token_file",
        "cloud",
        "authority",
        "resource_manager_url",
        "credential_scope",
        "allowed_scopes",
        "allowed_reference_scopes",
        "disable_instance_discovery",
        "connection_verify",
        "polling_interval",
    }
)

class ConnectionConfigError(Refusal, ValueError):
    """A connection cannot be used as configured. The message names the connection, the key and the fix."""

    def __init__(self, conn_id: str, key: str, problem: str, fix: str) -> None:
        self.conn_id = conn_id
        self.key = key
        label = key if key in ("login", "password", "extra", "conn_type") else f"extra {key!r}"
        super().__init__(
            "connection_config", f"Azure Resource Manager connection {conn_id!r}: {label} {problem}. {fix}"
        )


@dataclass(frozen=True)
class ManagedIdentityId:
    """One user-assigned managed identity, named by exactly one of its three ids."""

    kind: Literal["client_id", "object_id", "resource_id"]
    value: str


@dataclass(frozen=True)
class ArmConnectionSettings:
    """Everything a hook needs to authenticate as one identity in one cloud. Secrets stay out of repr."""

    conn_id: str
    auth_type: AuthType
    cloud: Cloud
    tenant_id: str | None = None
    subscription_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    managed_identity: ManagedIdentityId | None = None
    certificate_path: str | None = None
    certificate_data: str | None = field(default=None, repr=False)
    certificate_password: str | None = field(default=None, repr=False)
    federated_token_file: str | None = None
    allowed_scopes: tuple[str, ...] = ()
    """Scopes the connection may write inside (the fence)."""
    allowed_reference_scopes: tuple[str, ...] = ()
    """Scopes outside the fence a deployment may reference (identity, subnet, Key Vault, listKeys), never write."""
    disable_instance_discovery: bool = False
    connection_verify: str | None = None
    polling_interval: float = DEFAULT_POLLING_INTERVAL

    def require_subscription_id(self) -> str:
        """The subscription, or a ConnectionConfigError: every ARM client here is subscription-bound."""
        if not self.subscription_id:
            raise ConnectionConfigError(
                self.conn_id,
                "subscription_id",
                "is not set",
                "Set it to the subscription (GUID) the hook works in.",
            )
        return self.subscription_id

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values to register with Airflow's secrets masker."""
        values = (self.client_secret, self.certificate_data, self.certificate_password)
        return tuple(v for v in values if v)


def check_auth_requirements(
    s: ArmConnectionSettings, *, login: str | None, password: str | None, given: Callable[[str], bool]
) -> None:
    """Per auth_type: what must be present, and what must not be (it would be silently unused).

    ``given(key)`` tells whether the extra ``key`` was set (non-blank)."""

    def error(key: str, problem: str, fix: str) -> ConnectionConfigError:
        return ConnectionConfigError(s.conn_id, key, problem, fix)

    auth = s.auth_type
    needs_tenant = auth in (AuthType.CLIENT_SECRET, AuthType.CERTIFICATE, AuthType.WORKLOAD_IDENTITY)
    needs_client = needs_tenant

    if needs_tenant and not s.tenant_id:
        raise error(
            "tenant_id",
            f"is required for auth_type {auth.value!r}",
            "Set it to the directory (tenant) id of the app registration.",
        )
    if auth is AuthType.DEFAULT and s.tenant_id:
        raise error(
            "tenant_id",
            "is set but auth_type is 'default'",
            "DefaultAzureCredential takes its tenant from AZURE_TENANT_ID; remove tenant_id or choose an "
            "explicit auth_type (client_secret, certificate, workload_identity).",
        )
    if needs_client and not s.client_id:
        raise error(
            "client_id",
            f"is missing for auth_type {auth.value!r}",
            "Put the application (client) id in the connection's login (or the client_id extra).",
        )
    if not needs_client and s.client_id:
        key = "login" if login else "client_id"
        hint = (
            "For a user-assigned managed identity use managed_identity_client_id instead."
            if auth is AuthType.MANAGED_IDENTITY
            else "auth_type 'default' takes the client id from the environment; remove it."
        )
        raise error(key, f"is set but auth_type {auth.value!r} does not use a client id", hint)

    if password and auth not in (AuthType.CLIENT_SECRET, AuthType.CERTIFICATE):
        raise error(
            "password",
            f"is set but auth_type {auth.value!r} does not use it",
            "Remove the password, or set auth_type to client_secret (password = secret) or certificate "
            "(password = certificate password).",
        )
    if auth is AuthType.CLIENT_SECRET and not password:
        raise error(
            "password",
            "is empty but auth_type is 'client_secret'",
            "Put the client secret in the connection's password.",
        )

    if auth is AuthType.CERTIFICATE:
        if s.certificate_path and s.certificate_data:
            raise error(
                "certificate_data",
                "is set together with certificate_path",
                "Give the certificate once: either certificate_path or certificate_data.",
            )
        if not (s.certificate_path or s.certificate_data):
            raise error(
                "certificate_path",
                "is missing for auth_type 'certificate'",
                "Set certificate_path (a PEM file with key and certificate) or certificate_data (the PEM).",
            )
    else:
        for key in ("certificate_path", "certificate_data"):
            if given(key):
                raise error(
                    key, f"is set but auth_type is {auth.value!r}", "Remove it or set auth_type to certificate."
                )

    if auth is not AuthType.WORKLOAD_IDENTITY and s.federated_token_file:
        raise error(
            "federated_token_file",
            f"is set but auth_type is {auth.value!r}",
            "Remove it or set auth_type to workload_identity.",
        )
