"""azure-identity credentials against the emulator's Entra and managed-identity endpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CertificateCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from dev.arm_emulator.client import ArmEmulator
from tests.emulator.support import ARM_SCOPE, SUB, TENANT, client_kwargs, make_clients, secret_credential

pytestmark = pytest.mark.integration

_MI_ENV = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_CLIENT_ID",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _MI_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _last_arm_call(emu: ArmEmulator) -> dict[str, object]:
    calls = [r for r in emu.requests() if r.path.startswith("/subscriptions/")]
    assert calls and calls[-1].identity is not None
    return calls[-1].identity


def test_app_service_managed_identity(emu: ArmEmulator, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("IDENTITY_ENDPOINT", f"{emu.http_url}/msi/token")
    clean_env.setenv("IDENTITY_HEADER", "header-s3cret")
    clients = make_clients(emu, ManagedIdentityCredential(client_id="mi-client-1"))
    clients.resources.resource_groups.create_or_update("rg-mi", {"location": "westeurope"})
    clients.resources.resource_groups.get("rg-mi")

    (mi_call,) = emu.requests(r"^/msi/token$")  # cached after the first token
    assert mi_call.scheme == "http"
    assert mi_call.headers["x-identity-header"] == "header-s3cret"
    assert mi_call.query["api-version"] == ["2019-08-01"]
    assert mi_call.query["client_id"] == ["mi-client-1"]
    claims = _last_arm_call(emu)
    assert claims["oid"] == ArmEmulator.principal_oid(client_id="mi-client-1")
    assert (claims["appid"], claims["emu_flow"]) == ("mi-client-1", "app_service")


def test_imds_managed_identity_by_object_id(emu: ArmEmulator, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.http_url)
    object_id = "0b0b0b0b-0000-0000-0000-000000000001"
    clients = make_clients(emu, ManagedIdentityCredential(identity_config={"object_id": object_id}))
    clients.resources.resource_groups.create_or_update("rg-imds", {"location": "westeurope"})

    (mi_call,) = emu.requests(r"^/metadata/identity/oauth2/token$")
    assert mi_call.headers["metadata"] == "true"
    assert mi_call.query["object_id"] == [object_id]
    assert mi_call.query["resource"] == ["https://management.azure.com"]
    claims = _last_arm_call(emu)
    assert claims["oid"] == object_id and claims["emu_flow"] == "imds"


def test_imds_system_assigned_and_resource_id_are_distinct(emu: ArmEmulator, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.http_url)
    res_id = f"/subscriptions/{SUB}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai"
    system = ManagedIdentityCredential().get_token(ARM_SCOPE)
    by_res = ManagedIdentityCredential(identity_config={"resource_id": res_id}).get_token(ARM_SCOPE)
    assert system.token != by_res.token
    calls = emu.requests(r"^/metadata/identity/oauth2/token$")
    assert calls[1].query["msi_res_id"] == [res_id]
    assert "msi_res_id" not in calls[0].query and "client_id" not in calls[0].query


def test_workload_identity_from_env(emu: ArmEmulator, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token_file = tmp_path / "federated-token"
    token_file.write_text("eyJhbGciOiJub25lIn0.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YWlyZmxvdyJ9.")
    clean_env.setenv("AZURE_AUTHORITY_HOST", emu.url)
    clean_env.setenv("AZURE_TENANT_ID", TENANT)
    clean_env.setenv("AZURE_CLIENT_ID", "wi-client")
    clean_env.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    clean_env.setenv("REQUESTS_CA_BUNDLE", emu.ca_path)
    clients = make_clients(emu, WorkloadIdentityCredential())
    clients.resources.resource_groups.create_or_update("rg-wi", {"location": "westeurope"})

    (token_call,) = emu.requests(rf"^/{TENANT}/oauth2/v2.0/token$")
    assert "client_assertion=eyJhbGciOiJub25lIn0" in token_call.body
    claims = _last_arm_call(emu)
    assert claims["oid"] == ArmEmulator.principal_oid(client_id="wi-client")
    assert (claims["tid"], claims["emu_flow"]) == (TENANT, "client_assertion")


def _rsa_pem(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airflow-sp")])
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path = tmp_path / "sp.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return path


def test_certificate_credential(emu: ArmEmulator, tmp_path: Path) -> None:
    cred = CertificateCredential(
        TENANT,
        "cert-client",
        certificate_path=str(_rsa_pem(tmp_path)),
        authority=emu.url,
        disable_instance_discovery=True,
        connection_verify=emu.ca_path,
    )
    make_clients(emu, cred).resources.resource_groups.create_or_update("rg-cert", {"location": "westeurope"})
    paths = [r.path for r in emu.requests() if not r.path.startswith("/subscriptions/")]
    assert paths == [f"/{TENANT}/v2.0/.well-known/openid-configuration", f"/{TENANT}/oauth2/v2.0/token"]
    assert "client_assertion_type=" in emu.requests(r"/token$")[0].body
    assert _last_arm_call(emu)["appid"] == "cert-client"


def test_wrong_secret_is_rejected(emu: ArmEmulator) -> None:
    cred = secret_credential(emu, secret="wrong")
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        cred.get_token(ARM_SCOPE)
    assert emu.requests(r"/token$")[0].status == 401


def test_async_clients_with_managed_identity(emu: ArmEmulator, clean_env: pytest.MonkeyPatch) -> None:
    from azure.identity.aio import ManagedIdentityCredential as AioManagedIdentityCredential
    from azure.mgmt.resource.deployments.aio import DeploymentsMgmtClient as AioDeploymentsClient
    from azure.mgmt.resource.resources.aio import ResourceManagementClient as AioResourceClient

    from tests.emulator.support import deployment_body

    clean_env.setenv("IDENTITY_ENDPOINT", f"{emu.http_url}/msi/token")
    clean_env.setenv("IDENTITY_HEADER", "h")

    async def run() -> str:
        async with AioManagedIdentityCredential() as cred:
            kw = client_kwargs(emu)
            async with AioResourceClient(cred, SUB, **kw) as res, AioDeploymentsClient(cred, SUB, **kw) as dep:
                await res.resource_groups.create_or_update("rg-aio", {"location": "westeurope"})
                poller = await dep.deployments.begin_create_or_update("rg-aio", "aio", deployment_body())
                result = await poller.result()
                return result.properties.provisioning_state  # type: ignore[no-any-return]

    assert asyncio.run(run()) == "Succeeded"
    assert _last_arm_call(emu)["emu_flow"] == "app_service"
