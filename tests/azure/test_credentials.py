"""Settings -> exactly one azure-identity credential, with the cloud's authority on every Entra credential."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_identity_provider.azure.credentials import (
    build_async_credential,
    build_credential,
    credential_spec,
)
from airflow_identity_provider.azure.rules.connection_extras import parse_connection_settings
from airflow_identity_provider.azure.rules.connection_settings import ConnectionConfigError

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b0b0b0b-1111-2222-3333-444444444444"
MI_RESOURCE = (
    "/subscriptions/8a8a8a8a-1111-2222-3333-444444444444/resourceGroups/ids/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/etl"
)


def spec(extras: dict[str, Any], login: str | None = None, password: str | None = None, env: Any = None) -> Any:
    settings = parse_connection_settings("c", extras, login=login, password=password)
    return credential_spec(settings, env or {})


@pytest.mark.parametrize(
    ("extras", "kwargs"),
    [
        ({}, {}),
        ({"managed_identity_client_id": CLIENT}, {"client_id": CLIENT}),
        ({"managed_identity_object_id": CLIENT}, {"identity_config": {"object_id": CLIENT}}),
        ({"managed_identity_resource_id": MI_RESOURCE}, {"identity_config": {"resource_id": MI_RESOURCE}}),
        ({"connection_verify": "/ca.pem"}, {"connection_verify": "/ca.pem"}),
    ],
)
def test_managed_identity(extras: dict[str, Any], kwargs: dict[str, Any]) -> None:
    s = spec({"auth_type": "managed_identity", **extras})
    assert s.class_name == "ManagedIdentityCredential"
    assert dict(s.kwargs) == kwargs  # no authority: the MI endpoint is local to the host


@pytest.mark.parametrize(
    ("cloud", "authority"),
    [
        ("public", "https://login.microsoftonline.com"),
        ("usgov", "https://login.microsoftonline.us"),
        ("china", "https://login.partner.microsoftonline.cn"),
    ],
)
def test_entra_credentials_get_the_cloud_authority(cloud: str, authority: str) -> None:
    base = {"tenant_id": TENANT, "cloud": cloud}
    secret = spec({**base, "auth_type": "client_secret"}, CLIENT, "pw")
    assert secret.class_name == "ClientSecretCredential"
    assert dict(secret.kwargs) == {
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "client_secret": "pw",
        "authority": authority,
        "disable_instance_discovery": False,
    }
    cert = spec({**base, "auth_type": "certificate", "certificate_path": "/c.pem"}, CLIENT)
    assert cert.class_name == "CertificateCredential"
    assert cert.kwargs["authority"] == authority and cert.kwargs["certificate_path"] == "/c.pem"
    wi = spec({**base, "auth_type": "workload_identity", "federated_token_file": "/t"}, CLIENT)
    assert wi.class_name == "WorkloadIdentityCredential"
    assert dict(wi.kwargs) == {
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "token_file_path": "/t",
        "authority": authority,
    }
    default = spec({"auth_type": "default", "cloud": cloud})
    assert default.class_name == "DefaultAzureCredential"
    assert default.kwargs["authority"] == authority


def test_certificate_data_as_bytes_with_password() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    s = spec({"auth_type": "certificate", "tenant_id": TENANT, "certificate_data": pem}, CLIENT, "pass")
    assert s.kwargs["certificate_data"] == pem.strip().encode()
    assert s.kwargs["password"] == "pass"
    assert "certificate_path" not in s.kwargs
    assert "AAAA" not in repr(s)


def test_workload_identity_token_file_from_env() -> None:
    s = spec({"auth_type": "workload_identity", "tenant_id": TENANT}, CLIENT, env={"AZURE_FEDERATED_TOKEN_FILE": "/e"})
    assert s.kwargs["token_file_path"] == "/e"
    s = spec(
        {"auth_type": "workload_identity", "tenant_id": TENANT, "federated_token_file": "/x"},
        CLIENT,
        env={"AZURE_FEDERATED_TOKEN_FILE": "/e"},
    )
    assert s.kwargs["token_file_path"] == "/x"


def test_workload_identity_without_token_file() -> None:
    with pytest.raises(ConnectionConfigError, match="'federated_token_file' is not set and neither is"):
        spec({"auth_type": "workload_identity", "tenant_id": TENANT}, CLIENT)


def test_knobs_reach_msal_credentials() -> None:
    s = spec(
        {
            "auth_type": "client_secret",
            "tenant_id": TENANT,
            "disable_instance_discovery": True,
            "connection_verify": "/ca.pem",
        },
        CLIENT,
        "pw",
    )
    assert s.kwargs["disable_instance_discovery"] is True
    assert s.kwargs["connection_verify"] == "/ca.pem"


@pytest.mark.parametrize("cloud", ["public", "usgov", "china"])
def test_built_objects_carry_the_authority(cloud: str) -> None:
    """The real azure-identity objects (built offline) hold the cloud's authority."""
    from azure.identity import ClientSecretCredential, WorkloadIdentityCredential

    from airflow_identity_provider.clouds import get_cloud

    authority = get_cloud(cloud).authority
    settings = parse_connection_settings(
        "c", {"auth_type": "client_secret", "tenant_id": TENANT, "cloud": cloud}, login=CLIENT, password="pw"
    )
    cred = build_credential(settings)
    assert isinstance(cred, ClientSecretCredential)
    assert cred._authority == authority
    settings = parse_connection_settings(
        "c",
        {"auth_type": "workload_identity", "tenant_id": TENANT, "cloud": cloud, "federated_token_file": "/t"},
        login=CLIENT,
    )
    wi = build_credential(settings)
    assert isinstance(wi, WorkloadIdentityCredential)
    assert wi._client._authority == authority  # type: ignore[attr-defined]


def test_async_credential_class() -> None:
    import azure.identity.aio

    async def run() -> None:
        settings = parse_connection_settings("c", {"managed_identity_client_id": CLIENT})
        cred = build_async_credential(settings)
        try:
            assert isinstance(cred, azure.identity.aio.ManagedIdentityCredential)
        finally:
            await cred.close()

    asyncio.run(run())
