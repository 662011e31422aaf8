"""The hooks end to end: real azure-identity credentials and azure-mgmt clients over HTTPS against the
project's ARM emulator (Entra token endpoint, IMDS, App Service MI and ARM in one process).

Nothing leaves loopback: every connection uses cloud=custom pointing at the emulator, instance
discovery is off, and the conftest fixture clears AZURE_* and managed-identity variables.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerAsyncHook, AzureResourceManagerHook
from dev.arm_emulator.client import ArmEmulator

pytestmark = pytest.mark.integration

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b0b0b0b-1111-2222-3333-444444444444"
SUB = "8a8a8a8a-1111-2222-3333-444444444444"
ARM_SCOPE = "https://management.azure.com/.default"
MI_RESOURCE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/arm-emulator/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/etl-identity"
)
MI_OBJECT = "5e5e5e5e-1111-2222-3333-444444444444"
TOKEN_PATHS = re.compile(r"(/oauth2/v2\.0/token|/msi/token|/metadata/identity/oauth2/token)/?$", re.I)
REPO = Path(__file__).resolve().parents[2]


# -- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with ArmEmulator() as emu:
        yield emu


@pytest.fixture
def emu(emulator: Any) -> Iterator[Any]:
    emulator.reset()
    yield emulator
    emulator.reset()


def arm_extras(emu: Any, **extras: Any) -> dict[str, Any]:
    """A connection's extras for the emulator as a custom cloud (ARM audience, as real ARM expects)."""
    return {
        "subscription_id": SUB,
        **emu.connection_extras(),
        "polling_interval": 0.2,
        **extras,
    }


def set_conn(
    monkeypatch: pytest.MonkeyPatch,
    conn_id: str,
    *,
    login: str | None = None,
    password: str | None = None,
    **extra: Any,
) -> None:
    fields: dict[str, Any] = {"conn_type": "azure_resource_manager", "extra": extra}
    if login:
        fields["login"] = login
    if password:
        fields["password"] = password
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def set_sp_conn(monkeypatch: pytest.MonkeyPatch, emu: Any, conn_id: str) -> None:
    """The service-principal (client secret) connection most tests use, pointing at the emulator."""
    set_conn(
        monkeypatch,
        conn_id,
        login=CLIENT,
        password="sp-secret-value",
        **arm_extras(emu, auth_type="client_secret", tenant_id=TENANT),
    )


def token_requests(emu: Any) -> list[Any]:
    return [r for r in emu.requests() if TOKEN_PATHS.search(r.path)]


def arm_requests(emu: Any) -> list[Any]:
    return [r for r in emu.requests() if not TOKEN_PATHS.search(r.path) and "well-known" not in r.path]


def param(record: Any, name: str) -> str | None:
    query = record.query
    if isinstance(query, str):
        from urllib.parse import parse_qs

        query = parse_qs(query)
    for key, values in query.items():
        if key.lower() == name.lower():
            return values[0] if isinstance(values, list) else values
    return None


def form(record: Any) -> dict[str, str]:
    from urllib.parse import parse_qs

    body = record.body.decode() if isinstance(record.body, bytes) else record.body
    return {k: v[0] for k, v in parse_qs(body).items()}


def list_and_identity(conn_id: str, emu: Any) -> dict[str, Any]:
    """List resource groups through the hook; return the identity ARM saw (the bearer's claims)."""
    hook = AzureResourceManagerHook(conn_id)
    hook.get_resource_client().resource_groups.create_or_update("rg-etl", {"location": "westeurope"})
    names = [g.name for g in hook.list_resource_groups()]
    assert "rg-etl" in names
    hook.close()
    calls = arm_requests(emu)
    assert calls and all(r.identity for r in calls)
    assert len({r.identity["oid"] for r in calls}) == 1
    identity: dict[str, Any] = calls[0].identity
    assert identity["aud"].rstrip("/") == "https://management.azure.com"
    return identity


def oid_for(**selector: str) -> str:
    from dev.arm_emulator import tokens

    return tokens.principal_oid(**selector)


def rsa_certificate_pem(password: bytes | None = None) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airflow-arm-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return (key_pem + cert.public_bytes(serialization.Encoding.PEM)).decode()


# -- managed identity ------------------------------------------------------------------------------

MI_PLATFORMS = {
    # platform -> (token path, resource-id query parameter name)
    "imds": ("/metadata/identity/oauth2/token", "msi_res_id"),
    "app_service": ("/msi/token", "mi_res_id"),
}


def use_platform(monkeypatch: pytest.MonkeyPatch, emu: Any, platform: str) -> None:
    if platform == "imds":
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.http_url)
    else:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{emu.http_url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "emulator-identity-header")


@pytest.mark.parametrize("platform", sorted(MI_PLATFORMS))
def test_system_assigned_managed_identity(monkeypatch: pytest.MonkeyPatch, emu: Any, platform: str) -> None:
    from dev.arm_emulator import tokens

    use_platform(monkeypatch, emu, platform)
    set_conn(monkeypatch, "arm_mi", **arm_extras(emu, auth_type="managed_identity"))
    identity = list_and_identity("arm_mi", emu)
    (token,) = token_requests(emu)
    assert token.path.rstrip("/") == MI_PLATFORMS[platform][0]
    assert not any(param(token, p) for p in ("client_id", "object_id", "msi_res_id", "mi_res_id"))
    assert identity["xms_mirid"] == tokens.SYSTEM_ASSIGNED_RESOURCE_IDS[platform]


@pytest.mark.parametrize("platform", sorted(MI_PLATFORMS))
@pytest.mark.parametrize(
    ("extra", "value", "expected_oid"),
    [
        ("managed_identity_client_id", CLIENT, lambda: oid_for(client_id=CLIENT)),
        ("managed_identity_object_id", MI_OBJECT, lambda: MI_OBJECT),
        ("managed_identity_resource_id", MI_RESOURCE, lambda: oid_for(resource_id=MI_RESOURCE)),
    ],
)
def test_user_assigned_managed_identity(
    monkeypatch: pytest.MonkeyPatch, emu: Any, platform: str, extra: str, value: str, expected_oid: Any
) -> None:
    use_platform(monkeypatch, emu, platform)
    set_conn(monkeypatch, "arm_uami", **arm_extras(emu, auth_type="managed_identity", **{extra: value}))
    identity = list_and_identity("arm_uami", emu)
    (token,) = token_requests(emu)
    wire_name = {
        "managed_identity_client_id": "client_id",
        "managed_identity_object_id": "object_id",
        "managed_identity_resource_id": MI_PLATFORMS[platform][1],
    }[extra]
    assert param(token, wire_name) == value  # the id reached the identity endpoint under its own name
    assert identity["oid"] == expected_oid()


# -- service principals and workload identity ------------------------------------------------------


def test_client_secret(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    set_sp_conn(monkeypatch, emu, "arm_sp")
    identity = list_and_identity("arm_sp", emu)
    assert identity["appid"] == CLIENT and identity["tid"] == TENANT
    (token,) = token_requests(emu)
    assert token.path == f"/{TENANT}/oauth2/v2.0/token"
    sent = form(token)
    assert sent["client_secret"] == "sp-secret-value" and sent["scope"] == ARM_SCOPE


def test_wrong_secret_fails_the_test_button(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    set_conn(
        monkeypatch,
        "arm_sp",
        login=CLIENT,
        password="wrong",
        **arm_extras(emu, auth_type="client_secret", tenant_id=TENANT),
    )
    ok, message = AzureResourceManagerHook("arm_sp").test_connection()
    assert not ok
    assert "ClientAuthenticationError" in message and "AADSTS7000215" in message
    assert not arm_requests(emu)


def test_test_button_succeeds(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    set_sp_conn(monkeypatch, emu, "arm_sp")
    ok, message = AzureResourceManagerHook("arm_sp").test_connection()
    assert ok, message
    assert "client_secret" in message and SUB in message


@pytest.mark.parametrize("source", ["path", "inline"])
def test_certificate(monkeypatch: pytest.MonkeyPatch, emu: Any, tmp_path: Path, source: str) -> None:
    if source == "path":
        pem_file = tmp_path / "sp.pem"
        pem_file.write_text(rsa_certificate_pem())
        extras, password = {"certificate_path": str(pem_file)}, None
    else:  # inline, with an encrypted key: the connection password is the certificate password
        extras, password = {"certificate_data": rsa_certificate_pem(b"key-pass")}, "key-pass"
    set_conn(
        monkeypatch,
        "arm_cert",
        login=CLIENT,
        password=password,
        **arm_extras(emu, auth_type="certificate", tenant_id=TENANT, **extras),
    )
    identity = list_and_identity("arm_cert", emu)
    assert identity["appid"] == CLIENT
    (token,) = token_requests(emu)
    sent = form(token)
    assert sent["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert "client_secret" not in sent


@pytest.mark.parametrize("source", ["extra", "env"])
def test_workload_identity(monkeypatch: pytest.MonkeyPatch, emu: Any, tmp_path: Path, source: str) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YWlyZmxvdyJ9.c2ln")
    extras = {"federated_token_file": str(token_file)} if source == "extra" else {}
    if source == "env":
        monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    set_conn(
        monkeypatch,
        "arm_wi",
        login=CLIENT,
        **arm_extras(emu, auth_type="workload_identity", tenant_id=TENANT, **extras),
    )
    identity = list_and_identity("arm_wi", emu)
    assert identity["appid"] == CLIENT and identity["tid"] == TENANT
    (token,) = token_requests(emu)
    assert token.path == f"/{TENANT}/oauth2/v2.0/token"
    assert form(token)["client_assertion"] == token_file.read_text()


def test_default_credential_from_environment(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "env-secret-value")
    set_conn(monkeypatch, "arm_default", **arm_extras(emu, auth_type="default"))
    identity = list_and_identity("arm_default", emu)
    assert identity["appid"] == CLIENT
    (token,) = token_requests(emu)
    assert form(token)["client_secret"] == "env-secret-value"


# -- cloud -----------------------------------------------------------------------------------------


def test_custom_cloud_authority_and_scope_are_used(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    """The live half of the cloud tests (named sovereign clouds are asserted offline in test_hook.py)."""
    set_sp_conn(monkeypatch, emu, "arm_sp")
    hook = AzureResourceManagerHook("arm_sp")
    hook.list_resource_groups()
    host = emu.url.split("://", 1)[1]
    assert {r.host for r in emu.requests()} == {host}
    assert form(token_requests(emu)[0])["scope"] == ARM_SCOPE
    hook.close()


def test_scope_must_match_the_arm_audience(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    """Without credential_scope a custom cloud asks for <arm_endpoint>/.default; ARM refuses that audience,
    which is why base_url and scope live in one row."""
    extras = arm_extras(emu, auth_type="client_secret", tenant_id=TENANT)
    del extras["credential_scope"]
    set_conn(monkeypatch, "arm_sp", login=CLIENT, password="sp-secret-value", **extras)
    ok, message = AzureResourceManagerHook("arm_sp").test_connection()
    assert not ok and "InvalidAuthenticationTokenAudience" in message


# -- pipeline behaviour ----------------------------------------------------------------------------


def _foreign_base(emu: Any) -> str:
    # "localhost" is the emulator itself under another host name (its certificate names it): a real,
    # reachable foreign origin, so the control test below proves a token WOULD leak without the pin.
    port = emu.url.rsplit(":", 1)[1]
    return f"https://localhost:{port}"


def test_foreign_polling_host_is_blocked_before_the_token(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    from azure.core.exceptions import ServiceRequestError

    set_sp_conn(monkeypatch, emu, "arm_sp")
    hook = AzureResourceManagerHook("arm_sp")
    client = hook.get_resource_client()
    client.resource_groups.create_or_update("rg-doomed", {"location": "westeurope"})
    emu.set_async_base(_foreign_base(emu))
    poller = client.resource_groups.begin_delete("rg-doomed")
    with pytest.raises(ServiceRequestError, match=r"Refused to send GET https://localhost:\d+"):
        poller.result()
    assert not [r for r in emu.requests() if r.host.split(":")[0] == "localhost"]
    hook.close()


def test_control_without_the_pin_the_token_leaks(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    """Proves the test above is not vacuous: a plain SDK client sends the bearer to the foreign host."""
    from azure.mgmt.resource.resources import ResourceManagementClient

    set_sp_conn(monkeypatch, emu, "arm_sp")
    hook = AzureResourceManagerHook("arm_sp")
    bare = ResourceManagementClient(
        hook.get_credential(),
        SUB,
        base_url=emu.url,
        credential_scopes=[ARM_SCOPE],
        connection_verify=str(emu.ca_path),
        polling_interval=0.2,
    )
    bare.resource_groups.create_or_update("rg-doomed", {"location": "westeurope"})
    emu.set_async_base(_foreign_base(emu))
    bare.resource_groups.begin_delete("rg-doomed").result()
    leaked = [r for r in emu.requests() if r.host.split(":")[0] == "localhost"]
    assert leaked and leaked[0].headers.get("authorization", "").startswith("Bearer ")
    bare.close()
    hook.close()


def test_429_is_retried(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    set_sp_conn(monkeypatch, emu, "arm_sp")
    emu.throttle(r"/resourcegroups$", times=1, retry_after=1)
    hook = AzureResourceManagerHook("arm_sp")
    started = time.monotonic()
    hook.list_resource_groups()
    assert time.monotonic() - started >= 0.9  # waited for Retry-After
    lists = [r for r in arm_requests(emu) if r.path.lower().endswith("/resourcegroups")]
    assert len(lists) == 2
    hook.close()


def test_correlation_id_and_ratelimit_warning(
    monkeypatch: pytest.MonkeyPatch, emu: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="airflow_identity_provider.azure.policies")
    set_sp_conn(monkeypatch, emu, "arm_sp")
    emu.set_ratelimit_remaining(3)
    hook = AzureResourceManagerHook("arm_sp", correlation_id="c0ffee00-1111-2222-3333-444444444444")
    hook.get_resource_client().resource_groups.create_or_update("rg-x", {"location": "westeurope"})
    hook.get_resource_client().resource_groups.begin_delete("rg-x").result()
    calls = arm_requests(emu)
    assert len(calls) >= 3  # PUT, DELETE, at least one poll
    assert {r.headers.get("x-ms-correlation-request-id") for r in calls} == {"c0ffee00-1111-2222-3333-444444444444"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("requests left" in w and ": 3 " in w for w in warnings)
    hook.close()


def test_one_token_request_across_clients_and_calls(
    monkeypatch: pytest.MonkeyPatch, emu: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The figure for the release note: how many token requests a task pays for many ARM calls."""
    set_sp_conn(monkeypatch, emu, "arm_sp")
    hook = AzureResourceManagerHook("arm_sp")
    resources, deployments, authorization = (
        hook.get_resource_client(),
        hook.get_deployments_client(),
        hook.get_authorization_client(),
    )
    calls = 0
    resources.resource_groups.create_or_update("rg-count", {"location": "westeurope"})
    calls += 1
    for _ in range(5):
        list(resources.resource_groups.list())
        resources.resource_groups.get("rg-count")
        list(deployments.deployments.list_by_resource_group("rg-count"))
        list(authorization.permissions.list_for_resource_group("rg-count"))
        calls += 4
    tokens = len(token_requests(emu))
    hook.close()
    with capsys.disabled():
        print(f"\ntoken requests for {calls} client calls across 3 clients: {tokens}")
    assert len(arm_requests(emu)) >= calls
    assert tokens == 1


def test_async_hook_lists_and_closes(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.http_url)
    set_conn(monkeypatch, "arm_mi", **arm_extras(emu, auth_type="managed_identity", managed_identity_client_id=CLIENT))
    closed: list[str] = []

    async def run() -> None:
        async with AzureResourceManagerAsyncHook("arm_mi") as hook:
            credential = hook.get_credential()
            original_close = credential.close

            async def spy_close() -> None:
                closed.append("credential")
                await original_close()

            monkeypatch.setattr(credential, "close", spy_close)
            groups = await hook.list_resource_groups()
            assert isinstance(groups, list)
            transports = [c._client._pipeline._transport for c in hook._clients.values()]
            assert transports
        assert closed == ["credential"]
        assert all(getattr(t, "session", None) is None for t in transports)
        assert hook._clients == {}

    asyncio.run(run())
    (token,) = token_requests(emu)
    assert param(token, "client_id") == CLIENT
    assert all(r.identity and r.identity["oid"] == oid_for(client_id=CLIENT) for r in arm_requests(emu))


def test_async_hook_one_token_for_three_clients(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    set_sp_conn(monkeypatch, emu, "arm_sp")

    async def run() -> None:
        async with AzureResourceManagerAsyncHook("arm_sp") as hook:
            await hook.get_resource_client().resource_groups.create_or_update("rg-a", {"location": "westeurope"})
            for _ in range(3):
                await hook.list_resource_groups()
                _ = [d async for d in hook.get_deployments_client().deployments.list_by_resource_group("rg-a")]
                _ = [p async for p in hook.get_authorization_client().permissions.list_for_resource_group("rg-a")]

    asyncio.run(run())
    assert len(token_requests(emu)) == 1


# -- connections created the ways Airflow users create them -----------------------------------------


def test_uri_connection(monkeypatch: pytest.MonkeyPatch, emu: Any) -> None:
    from urllib.parse import urlencode

    query = urlencode(
        {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in arm_extras(emu, auth_type="client_secret", tenant_id=TENANT).items()
        }
    )
    monkeypatch.setenv("AIRFLOW_CONN_ARM_URI", f"azure-resource-manager://{CLIENT}:uri-secret-value@/?{query}")
    identity = list_and_identity("arm_uri", emu)
    assert identity["appid"] == CLIENT


@pytest.mark.timeout(240)
def test_airflow_cli_connection(emu: Any, tmp_path: Path) -> None:
    """`airflow connections add` into a fresh metadata DB, then the hook (and `connections test`) use it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AZURE_", "_AIRFLOW"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path / 'airflow.db'}",
        AZURE_AUTHORITY_HOST="https://127.0.0.1:9",
        PYTHONPATH=str(REPO),
    )
    airflow = str(Path(sys.executable).with_name("airflow"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
        return done

    run(airflow, "db", "migrate")
    extras = arm_extras(emu, auth_type="client_secret", tenant_id=TENANT)
    run(
        airflow,
        "connections",
        "add",
        "arm_cli",
        "--conn-type",
        "azure_resource_manager",
        "--conn-login",
        CLIENT,
        "--conn-password",
        "cli-secret-value",
        "--conn-extra",
        json.dumps(extras),
    )
    script = (
        "from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook\n"
        "print('groups:', len(AzureResourceManagerHook('arm_cli').list_resource_groups()))\n"
    )
    # Outside a task, the SDK reads connections from the metadata DB only in the "server" context.
    env["_AIRFLOW_PROCESS_CONTEXT"] = "server"
    assert "groups:" in run(sys.executable, "-c", script).stdout
    tested = run(airflow, "connections", "test", "arm_cli")
    assert "Connection success!" in tested.stdout
    assert any(r.identity and r.identity.get("appid") == CLIENT for r in arm_requests(emu))
