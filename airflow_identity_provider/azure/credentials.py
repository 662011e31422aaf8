"""Validated connection settings -> exactly one azure-identity credential (sync or async).

The choice of credential class and its keyword arguments is computed by the pure
:func:`credential_spec`, then instantiated from ``azure.identity`` or ``azure.identity.aio``, so
both variants get the same arguments and tests can check them without network.

Why each credential is built explicitly rather than through DefaultAzureCredential: DAC guesses
from the environment (``AZURE_CLIENT_ID``, then the machine's identity), which is how the Azure
provider ends up running as the wrong identity. Only ``auth_type=default`` opts into that chain.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_identity_provider.azure.rules.connection_settings import (
    ArmConnectionSettings,
    AuthType,
    ConnectionConfigError,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["CredentialSpec", "build_async_credential", "build_credential", "credential_spec"]

FEDERATED_TOKEN_FILE_ENV = "AZURE_FEDERATED_TOKEN_FILE"


@dataclass(frozen=True)
class CredentialSpec:
    """Which azure-identity class to build, and with what keyword arguments (may hold secrets)."""

    class_name: str
    kwargs: Mapping[str, Any] = field(repr=False)


def credential_spec(settings: ArmConnectionSettings, environ: Mapping[str, str] | None = None) -> CredentialSpec:
    """Pure mapping from settings to a credential class name and its kwargs."""
    env = os.environ if environ is None else environ
    auth = settings.auth_type
    transport: dict[str, Any] = {}
    if settings.connection_verify:
        transport["connection_verify"] = settings.connection_verify
    # Every credential that talks to Entra gets the cloud's authority explicitly, so neither
    # AZURE_AUTHORITY_HOST nor the public-cloud default can send it to the wrong cloud.
    entra: dict[str, Any] = {"authority": settings.cloud.authority, **transport}
    # Instance discovery is an MSAL feature (secret, certificate); it asks login.microsoftonline.com
    # to validate any authority outside MSAL's well-known list, so private clouds and tests turn it off.
    msal = {**entra, "disable_instance_discovery": settings.disable_instance_discovery}

    if auth is AuthType.MANAGED_IDENTITY:
        mi: dict[str, Any] = dict(transport)
        ident = settings.managed_identity
        if ident is not None and ident.kind == "client_id":
            mi["client_id"] = ident.value
        elif ident is not None:
            mi["identity_config"] = {ident.kind: ident.value}
        return CredentialSpec("ManagedIdentityCredential", mi)

    if auth is AuthType.WORKLOAD_IDENTITY:
        token_file = settings.federated_token_file or env.get(FEDERATED_TOKEN_FILE_ENV)
        if not token_file:
            raise ConnectionConfigError(
                settings.conn_id,
                "federated_token_file",
                "is not set and neither is the AZURE_FEDERATED_TOKEN_FILE environment variable",
                "Set federated_token_file to the projected service-account token path "
                "(on AKS the workload identity webhook sets AZURE_FEDERATED_TOKEN_FILE).",
            )
        return CredentialSpec(
            "WorkloadIdentityCredential",
            {
                "tenant_id": settings.tenant_id,
                "client_id": settings.client_id,
                "token_file_path": token_file,
                **entra,
            },
        )

    if auth is AuthType.CLIENT_SECRET:
        return CredentialSpec(
            "ClientSecretCredential",
            {
                "tenant_id": settings.tenant_id,
                "client_id": settings.client_id,
                "client_secret": settings.client_secret,
                **msal,
            },
        )

    if auth is AuthType.CERTIFICATE:
        cert: dict[str, Any] = {"tenant_id": settings.tenant_id, "client_id": settings.client_id, **msal}
        if settings.certificate_path:
            cert["certificate_path"] = settings.certificate_path
        else:
            cert["certificate_data"] = (settings.certificate_data or "").encode()
        if settings.certificate_password:
            cert["password"] = settings.certificate_password
        return CredentialSpec("CertificateCredential", cert)

    # AuthType.DEFAULT. Note: inside DAC only EnvironmentCredential and SharedTokenCache receive
    # `authority`; its WorkloadIdentityCredential reads AZURE_AUTHORITY_HOST (azure-identity 1.27).
    return CredentialSpec("DefaultAzureCredential", msal)


def build_credential(settings: ArmConnectionSettings, environ: Mapping[str, str] | None = None) -> TokenCredential:
    """One synchronous credential (``azure.identity``) for the connection."""
    import azure.identity

    spec = credential_spec(settings, environ)
    credential: TokenCredential = getattr(azure.identity, spec.class_name)(**spec.kwargs)
    return credential


def build_async_credential(
    settings: ArmConnectionSettings, environ: Mapping[str, str] | None = None
) -> AsyncTokenCredential:
    """One asynchronous credential (``azure.identity.aio``) for the connection; the caller closes it."""
    import azure.identity.aio

    spec = credential_spec(settings, environ)
    credential: AsyncTokenCredential = getattr(azure.identity.aio, spec.class_name)(**spec.kwargs)
    return credential
