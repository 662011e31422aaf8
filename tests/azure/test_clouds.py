"""The cloud table: one row per cloud, consistent with what the azure SDKs themselves use."""

from __future__ import annotations

import pytest

from airflow_identity_provider.clouds import CLOUDS, Cloud, CloudConfigError, custom_cloud, get_cloud


@pytest.mark.parametrize(
    ("name", "login", "arm", "scope", "graph"),
    [
        (
            "public",
            "login.microsoftonline.com",
            "https://management.azure.com/",
            "https://management.azure.com/.default",
            "graph.microsoft.com",
        ),
        (
            "usgov",
            "login.microsoftonline.us",
            "https://management.usgovcloudapi.net/",
            "https://management.core.usgovcloudapi.net/.default",
            "graph.microsoft.us",
        ),
        (
            "china",
            "login.partner.microsoftonline.cn",
            "https://management.chinacloudapi.cn/",
            "https://management.chinacloudapi.cn/.default",
            "microsoftgraph.chinacloudapi.cn",
        ),
    ],
)
def test_named_clouds(name: str, login: str, arm: str, scope: str, graph: str) -> None:
    cloud = get_cloud(name)
    assert cloud == Cloud(name=name, login_host=login, graph_host=graph, arm_endpoint=arm, arm_scope=scope)
    assert cloud.authority == f"https://{login}"
    assert cloud.graph_endpoint == f"https://{graph}"
    assert get_cloud(name.upper()) is cloud


def test_arm_rows_match_azure_mgmt_core() -> None:
    """base_url and scope must change together; take both from the same source as the SDK's cloud_setting."""
    from azure.core import AzureClouds
    from azure.mgmt.core.tools import get_arm_endpoints

    sdk = {
        "public": AzureClouds.AZURE_PUBLIC_CLOUD,
        "usgov": AzureClouds.AZURE_US_GOVERNMENT,
        "china": AzureClouds.AZURE_CHINA_CLOUD,
    }
    for name, setting in sdk.items():
        endpoints = get_arm_endpoints(setting)
        assert CLOUDS[name].arm_endpoint == endpoints["resource_manager"]
        assert [CLOUDS[name].arm_scope] == endpoints["credential_scopes"]


def test_login_hosts_are_known_to_msal() -> None:
    """No instance discovery round trip for the named clouds."""
    from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

    for cloud in CLOUDS.values():
        assert cloud.login_host in WELL_KNOWN_AUTHORITY_HOSTS


def test_public_and_usgov_match_azure_identity_constants() -> None:
    from azure.identity import AzureAuthorityHosts

    assert CLOUDS["public"].login_host == AzureAuthorityHosts.AZURE_PUBLIC_CLOUD
    assert CLOUDS["usgov"].login_host == AzureAuthorityHosts.AZURE_GOVERNMENT
    # Deliberate difference: azure-identity still names the legacy China host; MSAL calls it deprecated.
    assert AzureAuthorityHosts.AZURE_CHINA == "login.chinacloudapi.cn"


def test_table_is_frozen() -> None:
    with pytest.raises(TypeError):
        CLOUDS["evil"] = CLOUDS["public"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        CLOUDS["public"].arm_endpoint = "https://evil.example/"  # type: ignore[misc]


def test_unknown_cloud_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown Azure cloud 'germany'.*public, usgov, china"):
        get_cloud("germany")


def test_custom_cloud() -> None:
    cloud = custom_cloud("https://127.0.0.1:8443", "https://127.0.0.1:8443")
    assert cloud.name == "custom"
    assert cloud.login_host == "127.0.0.1:8443"
    assert cloud.authority == "https://127.0.0.1:8443"
    assert cloud.arm_endpoint == "https://127.0.0.1:8443/"
    assert cloud.arm_scope == "https://127.0.0.1:8443/.default"
    assert cloud.arm_host == "127.0.0.1:8443"
    assert cloud.graph_host is None and cloud.graph_endpoint is None


def test_custom_cloud_bare_authority_and_explicit_scope() -> None:
    cloud = custom_cloud(
        "login.Contoso.example", "https://ARM.contoso.example/", "https://management.azure.com/.default"
    )
    assert cloud.login_host == "login.contoso.example"
    assert cloud.arm_endpoint == "https://arm.contoso.example/"
    assert cloud.arm_scope == "https://management.azure.com/.default"


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"authority": "http://127.0.0.1:1"}, "authority", "must be an https:// URL"),
        ({"arm_endpoint": "http://127.0.0.1:1/"}, "arm_endpoint", "must be an https:// URL"),
        ({"arm_endpoint": "127.0.0.1:1"}, "arm_endpoint", "must be an https:// URL"),
        ({"authority": "https://login.example/tenant"}, "authority", "no path"),
        ({"arm_endpoint": "https://arm.example:notaport/"}, "arm_endpoint", "invalid port"),
        ({"credential_scope": "http://arm.example/.default"}, "credential_scope", "https://"),
        ({"credential_scope": "https://arm.example/"}, "credential_scope", "/.default"),
    ],
)
def test_custom_cloud_refuses(kwargs: dict[str, str], field: str, message: str) -> None:
    args = {"authority": "https://login.example", "arm_endpoint": "https://arm.example/", **kwargs}
    with pytest.raises(CloudConfigError, match=message) as info:
        custom_cloud(**args)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_clouds_module_is_sdk_free() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import airflow_identity_provider.clouds, airflow_identity_provider.azure.rules.connection_extras, "
        "airflow_identity_provider.azure.credentials, airflow_identity_provider.get_provider_info; "
        "bad = sorted(m for m in sys.modules if m.startswith(('azure', 'msal', 'airflow.'))); print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
