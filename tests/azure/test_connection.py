"""Connection extras -> ArmConnectionSettings: every refusal names the connection, the key and the fix."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_identity_provider.azure.rules.connection_extras import parse_connection_settings, settings_from_connection
from airflow_identity_provider.azure.rules.connection_settings import (
    KNOWN_EXTRAS,
    ArmConnectionSettings,
    AuthType,
    ConnectionConfigError,
    ManagedIdentityId,
)
from airflow_identity_provider.azure.rules.scopes import normalize_scope, parse_allowed_scopes

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b0b0b0b-1111-2222-3333-444444444444"
SUB = "8a8a8a8a-1111-2222-3333-444444444444"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
MI_RESOURCE = (
    "/subscriptions/8a8a8a8a-1111-2222-3333-444444444444/resourceGroups/ids/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/etl"
)


def parse(extras: dict[str, Any], login: str | None = None, password: str | None = None) -> ArmConnectionSettings:
    return parse_connection_settings("arm_etl", extras, login=login, password=password)


def refused(extras: dict[str, Any], login: str | None = None, password: str | None = None) -> ConnectionConfigError:
    with pytest.raises(ConnectionConfigError) as info:
        parse(extras, login, password)
    message = str(info.value)
    assert message.startswith("Azure Resource Manager connection 'arm_etl': ")
    assert isinstance(info.value, ValueError)
    return info.value


# -- valid connections -----------------------------------------------------------------------------


def test_defaults_to_system_assigned_managed_identity_in_public_cloud() -> None:
    s = parse({})
    assert s.auth_type is AuthType.MANAGED_IDENTITY
    assert s.managed_identity is None
    assert s.cloud.name == "public"
    assert s.polling_interval == 10.0
    assert s.allowed_scopes == ()
    assert not s.disable_instance_discovery


@pytest.mark.parametrize(
    ("key", "kind", "value"),
    [
        ("managed_identity_client_id", "client_id", CLIENT.upper()),
        ("managed_identity_object_id", "object_id", CLIENT),
        ("managed_identity_resource_id", "resource_id", MI_RESOURCE),
    ],
)
def test_user_assigned_managed_identity(key: str, kind: str, value: str) -> None:
    s = parse({"auth_type": "managed_identity", key: value, "tenant_id": TENANT, "subscription_id": SUB})
    expected = value if kind == "resource_id" else value.lower()
    assert s.managed_identity == ManagedIdentityId(kind, expected)  # type: ignore[arg-type]
    assert s.client_id is None


def test_client_secret_from_login_and_password() -> None:
    s = parse({"auth_type": "client_secret", "tenant_id": TENANT, "subscription_id": SUB}, CLIENT, "s3cret!")
    assert (s.client_id, s.client_secret, s.tenant_id, s.subscription_id) == (CLIENT, "s3cret!", TENANT, SUB)
    assert "s3cret" not in repr(s)
    assert s.secrets == ("s3cret!",)


def test_client_id_extra_instead_of_login() -> None:
    s = parse({"auth_type": "client_secret", "tenant_id": TENANT, "client_id": CLIENT}, None, "x")
    assert s.client_id == CLIENT


def test_certificate_inline_with_password_and_escaped_newlines() -> None:
    s = parse(
        {"auth_type": "certificate", "tenant_id": TENANT, "certificate_data": PEM.replace("\n", "\\n")},
        CLIENT,
        "pfx-pass",
    )
    assert s.certificate_data == PEM
    assert s.certificate_password == "pfx-pass"
    assert s.client_secret is None
    assert "MIIB" not in repr(s) and "pfx-pass" not in repr(s)


def test_workload_identity() -> None:
    s = parse(
        {"auth_type": "workload_identity", "tenant_id": "contoso.onmicrosoft.com", "federated_token_file": "/t"},
        CLIENT,
    )
    assert s.tenant_id == "contoso.onmicrosoft.com"
    assert s.federated_token_file == "/t"


def test_default_auth_type() -> None:
    assert parse({"auth_type": "DEFAULT"}).auth_type is AuthType.DEFAULT


def test_legacy_prefix_and_empty_ui_fields() -> None:
    s = parse(
        {
            "extra__azure_resource_manager__auth_type": "client_secret",
            "extra__azure_resource_manager__tenant_id": TENANT,
            "tenant_id": TENANT,  # same value twice is fine
            "managed_identity_client_id": "",  # the UI stores empty fields
            "certificate_path": None,
        },
        CLIENT,
        "pw",
    )
    assert s.auth_type is AuthType.CLIENT_SECRET


def test_custom_cloud_and_knobs() -> None:
    s = parse(
        {
            "cloud": "custom",
            "authority": "https://127.0.0.1:8443",
            "resource_manager_url": "https://127.0.0.1:8443/",
            "disable_instance_discovery": "true",
            "connection_verify": "/ca.pem",
            "polling_interval": "1",
        }
    )
    assert s.cloud.authority == "https://127.0.0.1:8443"
    assert s.cloud.arm_scope == "https://127.0.0.1:8443/.default"
    assert s.disable_instance_discovery is True
    assert s.connection_verify == "/ca.pem"
    assert s.polling_interval == 1.0


@pytest.mark.parametrize("cloud", ["usgov", "china", "Public"])
def test_named_cloud(cloud: str) -> None:
    assert parse({"cloud": cloud}).cloud.name == cloud.lower()


@pytest.mark.parametrize(
    "value",
    [
        json.dumps([f"/subscriptions/{SUB.upper()}/resourcegroups/rg-etl/", "/"]),
        [f"/subscriptions/{SUB}/resourceGroups/rg-etl", "/"],
        f" /subscriptions/{SUB}/RESOURCEGROUPS/rg-etl , /, ",
    ],
)
def test_allowed_scopes_forms(value: Any) -> None:
    assert parse({"allowed_scopes": value}).allowed_scopes == (f"/subscriptions/{SUB}/resourceGroups/rg-etl", "/")


@pytest.mark.parametrize(
    ("scope", "normal"),
    [
        ("/", "/"),
        (f"/subscriptions/{SUB}", f"/subscriptions/{SUB}"),
        (f"/Subscriptions/{SUB.upper()}/", f"/subscriptions/{SUB}"),
        (f"/subscriptions/{SUB}/resourceGroups/My.RG_(1)", f"/subscriptions/{SUB}/resourceGroups/My.RG_(1)"),
        (
            f"/subscriptions/{SUB}/resourcegroups/rg/PROVIDERS/Microsoft.Storage/storageAccounts/st1",
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1",
        ),
        (
            f"/subscriptions/{SUB}/providers/Microsoft.Network/dnsZones/a.example/A/www",
            f"/subscriptions/{SUB}/providers/Microsoft.Network/dnsZones/a.example/A/www",
        ),
        (
            "/providers/microsoft.management/MANAGEMENTGROUPS/platform",
            "/providers/Microsoft.Management/managementGroups/platform",
        ),
    ],
)
def test_normalize_scope(scope: str, normal: str) -> None:
    assert normalize_scope(scope) == normal


@pytest.mark.parametrize(
    "scope",
    [
        "subscriptions/" + SUB,
        "/subscriptions/not-a-guid",
        "/subscriptions",
        f"/subscriptions/{SUB}//resourceGroups/rg",
        f"/subscriptions/{SUB}/resourceGroups",
        f"/subscriptions/{SUB}/resourceGroups/rg./",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts",
        f"/subscriptions/{SUB}/resourceGroups/rg/extra",
        f"/subscriptions/{SUB}/resourceGroups/has space",
        "/providers/Microsoft.Management/managementGroups",
        "/providers/Microsoft.Compute/virtualMachines/vm",
        "/tenants/x",
        "https://management.azure.com/subscriptions/" + SUB,
    ],
)
def test_malformed_scope(scope: str) -> None:
    with pytest.raises(ValueError):
        normalize_scope(scope)


def test_parse_allowed_scopes_dedupes() -> None:
    assert parse_allowed_scopes(["/", " / "]) == ("/",)


# -- refusals -------------------------------------------------------------------------------------


def test_unknown_auth_type_lists_choices() -> None:
    err = refused({"auth_type": "service_principal"})
    assert err.key == "auth_type"
    assert "extra 'auth_type' is 'service_principal'" in str(err)
    assert "managed_identity, workload_identity, client_secret, certificate, default" in str(err)


@pytest.mark.parametrize("auth_type", ["client_secret", "certificate", "workload_identity"])
def test_tenant_required(auth_type: str) -> None:
    extras = (
        {"auth_type": auth_type, "certificate_path": "/c.pem"}
        if auth_type == "certificate"
        else {"auth_type": auth_type}
    )
    err = refused(extras, CLIENT, "pw" if auth_type != "workload_identity" else None)
    assert err.key == "tenant_id"
    assert f"is required for auth_type '{auth_type}'" in str(err)
    assert "directory (tenant) id" in str(err)


@pytest.mark.parametrize("auth_type", ["client_secret", "certificate", "workload_identity"])
def test_client_id_required(auth_type: str) -> None:
    err = refused({"auth_type": auth_type, "tenant_id": TENANT})
    assert err.key == "client_id"
    assert "Put the application (client) id in the connection's login" in str(err)


def test_secret_required() -> None:
    err = refused({"auth_type": "client_secret", "tenant_id": TENANT}, CLIENT)
    assert err.key == "password"
    assert "Put the client secret in the connection's password" in str(err)


def test_two_managed_identity_ids() -> None:
    err = refused({"managed_identity_client_id": CLIENT, "managed_identity_object_id": CLIENT})
    assert err.key == "managed_identity_object_id"
    assert "set together with 'managed_identity_client_id'" in str(err)
    assert "exactly one id" in str(err)


def test_certificate_path_and_data() -> None:
    err = refused(
        {"auth_type": "certificate", "tenant_id": TENANT, "certificate_path": "/c.pem", "certificate_data": PEM},
        CLIENT,
    )
    assert err.key == "certificate_data"
    assert "either certificate_path or certificate_data" in str(err)


def test_certificate_missing() -> None:
    err = refused({"auth_type": "certificate", "tenant_id": TENANT}, CLIENT)
    assert err.key == "certificate_path"


def test_certificate_data_not_pem() -> None:
    err = refused({"auth_type": "certificate", "tenant_id": TENANT, "certificate_data": "MIIB=="}, CLIENT)
    assert err.key == "certificate_data" and "is not PEM" in str(err)


@pytest.mark.parametrize(
    ("extras", "key"),
    [
        ({"cloud": "custom", "authority": "http://127.0.0.1:1", "resource_manager_url": "https://a/"}, "authority"),
        (
            {"cloud": "custom", "authority": "https://127.0.0.1:1", "resource_manager_url": "http://127.0.0.1:2/"},
            "resource_manager_url",
        ),
        (
            {
                "cloud": "custom",
                "authority": "https://a",
                "resource_manager_url": "https://b/",
                "credential_scope": "http://b/.default",
            },
            "credential_scope",
        ),
    ],
)
def test_http_endpoints_refused(extras: dict[str, str], key: str) -> None:
    err = refused(extras)
    assert err.key == key
    assert f"extra {key!r} is invalid" in str(err)
    assert "https" in str(err)


def test_custom_cloud_needs_endpoints() -> None:
    err = refused({"cloud": "custom", "authority": "https://a"})
    assert err.key == "resource_manager_url" and "is required when cloud is 'custom'" in str(err)


def test_custom_endpoint_with_named_cloud_refused() -> None:
    err = refused({"cloud": "public", "resource_manager_url": "https://127.0.0.1:1/"})
    assert err.key == "resource_manager_url"
    assert "Set cloud to 'custom'" in str(err)


def test_unknown_cloud() -> None:
    err = refused({"cloud": "AzureGermanCloud"})
    assert err.key == "cloud"
    assert "public, usgov, china, custom" in str(err)


@pytest.mark.parametrize("value", ["[/subscriptions/x", '["/subscriptions/x"]', "rg-etl", '{"a": 1}', 5])
def test_malformed_allowed_scopes(value: Any) -> None:
    err = refused({"allowed_scopes": value})
    assert err.key == "allowed_scopes"
    assert "is invalid" in str(err) and "/subscriptions/<id>/resourceGroups/<rg>" in str(err)


@pytest.mark.parametrize("auth_type", ["client_secret", "certificate", "workload_identity", "default"])
@pytest.mark.parametrize(
    "key", ["managed_identity_client_id", "managed_identity_object_id", "managed_identity_resource_id"]
)
def test_managed_identity_id_with_other_auth_type_refused(auth_type: str, key: str) -> None:
    value = MI_RESOURCE if key.endswith("resource_id") else CLIENT
    err = refused({"auth_type": auth_type, "tenant_id": TENANT, key: value}, CLIENT, "pw")
    assert err.key == key
    assert f"is set but auth_type is '{auth_type}'" in str(err)
    assert "remove it or set auth_type to managed_identity" in str(err)


def test_login_with_managed_identity_refused() -> None:
    err = refused({}, CLIENT)
    assert err.key == "login"
    assert "use managed_identity_client_id instead" in str(err)


def test_password_with_managed_identity_refused() -> None:
    # e.g. a URI with a secret but no auth_type: never fall back to the machine's identity silently
    err = refused({}, None, "s3cret")
    assert err.key == "password" and "does not use it" in str(err)


def test_certificate_with_client_secret_refused() -> None:
    err = refused({"auth_type": "client_secret", "tenant_id": TENANT, "certificate_path": "/c"}, CLIENT, "pw")
    assert err.key == "certificate_path" and "set auth_type to certificate" in str(err)


def test_federated_token_file_with_other_auth_type_refused() -> None:
    err = refused({"federated_token_file": "/t"})
    assert err.key == "federated_token_file"


def test_tenant_with_default_refused() -> None:
    err = refused({"auth_type": "default", "tenant_id": TENANT})
    assert err.key == "tenant_id" and "AZURE_TENANT_ID" in str(err)


def test_multi_tenant_name_refused() -> None:
    err = refused({"auth_type": "client_secret", "tenant_id": "common"}, CLIENT, "pw")
    assert err.key == "tenant_id" and "tenant GUID or domain" in str(err)


def test_unknown_extra_suggests_name() -> None:
    err = refused({"tenantId": TENANT})
    assert err.key == "tenantId"
    assert "Did you mean 'tenant_id'?" in str(err)
    err = refused({"managed_identity_clientid": CLIENT})
    assert "Did you mean 'managed_identity_client_id'?" in str(err)


def test_conflicting_legacy_and_plain_keys() -> None:
    err = refused({"extra__azure_resource_manager__cloud": "usgov", "cloud": "public"})
    assert err.key == "cloud" and "given twice" in str(err)


def test_login_and_client_id_differ() -> None:
    other = CLIENT.replace("0b", "0c")
    err = refused({"auth_type": "client_secret", "tenant_id": TENANT, "client_id": other}, CLIENT, "pw")
    assert err.key == "client_id" and "differs from the connection login" in str(err)


@pytest.mark.parametrize(
    ("extras", "key"),
    [
        ({"subscription_id": "prod"}, "subscription_id"),
        ({"managed_identity_client_id": "my-identity"}, "managed_identity_client_id"),
        ({"managed_identity_resource_id": "/subscriptions/x/rg"}, "managed_identity_resource_id"),
        ({"polling_interval": "0"}, "polling_interval"),
        ({"polling_interval": "soon"}, "polling_interval"),
        ({"disable_instance_discovery": "maybe"}, "disable_instance_discovery"),
        ({"connection_verify": False}, "connection_verify"),
    ],
)
def test_bad_values(extras: dict[str, Any], key: str) -> None:
    assert refused(extras).key == key


def test_require_subscription_id() -> None:
    with pytest.raises(ConnectionConfigError, match=r"extra 'subscription_id' is not set\. Set it to the subscription"):
        parse({}).require_subscription_id()


# -- from an Airflow connection object --------------------------------------------------------------


@dataclass
class FakeConn:
    conn_id: str = "arm_etl"
    conn_type: str | None = "azure_resource_manager"
    login: str | None = None
    password: str | None = None
    extra: str | None = None


def test_settings_from_connection() -> None:
    conn = FakeConn(login=CLIENT, password="pw", extra=json.dumps({"auth_type": "client_secret", "tenant_id": TENANT}))
    assert settings_from_connection(conn).client_secret == "pw"


def test_invalid_json_extra_is_not_silently_empty() -> None:
    with pytest.raises(ConnectionConfigError, match="'arm_etl': extra is not valid JSON"):
        settings_from_connection(FakeConn(extra="{auth_type: client_secret"))


def test_wrong_conn_type() -> None:
    with pytest.raises(ConnectionConfigError, match=r"conn_type is 'azure'.*type 'azure_resource_manager'"):
        settings_from_connection(FakeConn(conn_type="azure"))


# -- allowed_reference_scopes -------------------------------------------------------------------------

SHARED = f"/subscriptions/{SUB}/resourceGroups/rg-shared"
IDENTITY = f"{SHARED}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-etl"


def test_allowed_reference_scopes_default_empty() -> None:
    s = parse({"allowed_scopes": [f"/subscriptions/{SUB}/resourceGroups/rg-etl"]})
    assert s.allowed_reference_scopes == ()


@pytest.mark.parametrize(
    "value",
    [
        json.dumps(
            [f"/subscriptions/{SUB.upper()}/resourcegroups/rg-shared/", IDENTITY.upper().replace("SHARED", "shared")]
        ),
        [SHARED, IDENTITY, SHARED.replace("resourceGroups", "RESOURCEGROUPS")],
        f" {SHARED} , {IDENTITY}, ",
    ],
)
def test_allowed_reference_scopes_forms(value: Any) -> None:
    s = parse({"allowed_scopes": "/", "allowed_reference_scopes": value})
    assert s.allowed_reference_scopes[0] == SHARED
    assert len(s.allowed_reference_scopes) == 2
    assert s.allowed_reference_scopes[1].lower() == IDENTITY.lower()
    assert s.allowed_scopes == ("/",)


def test_allowed_reference_scopes_canonical_like_allowed_scopes() -> None:
    raw = [
        f"/Subscriptions/{SUB.upper()}/resourcegroups/Rg-Shared/PROVIDERS/Microsoft.Network/virtualNetworks/vn/subnets/s1"
    ]
    s = parse({"allowed_scopes": raw, "allowed_reference_scopes": raw})
    assert (
        s.allowed_reference_scopes
        == s.allowed_scopes
        == (f"/subscriptions/{SUB}/resourceGroups/Rg-Shared/providers/Microsoft.Network/virtualNetworks/vn/subnets/s1",)
    )


def test_allowed_reference_scopes_legacy_prefix_and_blank() -> None:
    assert parse({"extra__azure_resource_manager__allowed_reference_scopes": [SHARED]}).allowed_reference_scopes == (
        SHARED,
    )
    assert parse({"allowed_reference_scopes": ""}).allowed_reference_scopes == ()
    assert parse({"allowed_reference_scopes": []}).allowed_reference_scopes == ()


@pytest.mark.parametrize(
    "value",
    [
        "[/subscriptions/x",
        '["/subscriptions/x"]',
        "rg-shared",
        '{"a": 1}',
        5,
        [SHARED, 7],
        [f"/subscriptions/{SUB}/resourceGroups/\u212a-rg/../rg"],
        [f"/\u017fubscriptions/{SUB}"],
    ],
)
def test_malformed_allowed_reference_scopes(value: Any) -> None:
    err = refused({"allowed_reference_scopes": value})
    assert err.key == "allowed_reference_scopes"
    assert "extra 'allowed_reference_scopes' is invalid" in str(err)
    assert "/subscriptions/<id>/resourceGroups/<rg>" in str(err)


def test_allowed_reference_scopes_is_known_and_suggested() -> None:
    assert "allowed_reference_scopes" in KNOWN_EXTRAS
    assert "Did you mean 'allowed_reference_scopes'?" in str(refused({"allowed_reference_scope": [SHARED]}))
    assert "Did you mean 'allowed_reference_scopes'?" in str(refused({"reference_scopes": [SHARED]}))


def test_form_fields_are_known_extras_and_reference_scopes_follow_allowed_scopes() -> None:
    from airflow_identity_provider.get_provider_info import get_provider_info

    (entry,) = [e for e in get_provider_info()["connection-types"] if e["connection-type"] == "azure_resource_manager"]
    fields = list(entry["conn-fields"])
    assert set(fields) <= KNOWN_EXTRAS
    assert fields.index("allowed_reference_scopes") == fields.index("allowed_scopes") + 1
    assert (
        entry["conn-fields"]["allowed_reference_scopes"]["schema"] == entry["conn-fields"]["allowed_scopes"]["schema"]
    )
    assert "allowed_reference_scopes" in entry["ui-field-behaviour"]["placeholders"]


# -- secrets are never echoed ----------------------------------------------------------------------

SECRET = "Xq8Q~sEcReT.value-1234567890abcdefghij"


@pytest.mark.parametrize(
    ("auth_type", "extra", "password"),
    [
        ("client_secret", {}, "pw"),
        ("certificate", {"certificate_data": PEM}, "pw"),
        ("workload_identity", {"federated_token_file": "/t"}, None),
    ],
)
def test_secret_in_login_is_not_echoed(
    auth_type: str, extra: dict[str, str], password: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    extras = {"auth_type": auth_type, "tenant_id": TENANT, **extra}
    caplog.set_level(logging.DEBUG)
    err = refused(extras, SECRET, password)
    assert err.key == "login"
    text = str(err)
    assert SECRET not in text and SECRET[:8] not in text and SECRET not in repr(err)
    assert "login is not a GUID (its value is not shown, in case a secret was pasted there)" in text
    assert "Put the application (client) id (a GUID) in login" in text
    assert SECRET not in caplog.text


def test_secret_in_client_id_extra_is_not_echoed() -> None:
    err = refused({"auth_type": "client_secret", "tenant_id": TENANT, "client_id": SECRET}, None, "pw")
    assert err.key == "client_id" and SECRET not in str(err) and "value is not shown" in str(err)


def test_non_secret_fields_still_show_their_value() -> None:
    assert "'prod', not a GUID" in str(refused({"subscription_id": "prod"}))


def test_secret_in_login_not_echoed_by_hook_test_button(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

    fields = {
        "conn_type": "azure_resource_manager",
        "login": SECRET,
        "password": "pw",
        "extra": {"auth_type": "client_secret", "tenant_id": TENANT, "subscription_id": SUB},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ARM_PASTED", json.dumps(fields))
    caplog.set_level(logging.DEBUG)
    ok, message = AzureResourceManagerHook("arm_pasted").test_connection()
    assert not ok and "login is not a GUID" in message
    assert SECRET not in message and SECRET not in caplog.text
    with pytest.raises(ConnectionConfigError) as info:
        _ = AzureResourceManagerHook("arm_pasted").settings
    assert SECRET not in str(info.value) and SECRET not in caplog.text
