"""The hook without a server: connection sources, client construction per cloud, policy order, caching
(one test, per-subscription clients and their one token, runs against the ARM emulator)."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import pytest

from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerAsyncHook, AzureResourceManagerHook
from airflow_identity_provider.azure.policies import CorrelationIdPolicy, HostPinningPolicy, RateLimitLoggingPolicy
from airflow_identity_provider.azure.rules.connection_settings import ConnectionConfigError
from tests.azure.test_arm_emulator import arm_extras, arm_requests, emulator, set_conn, token_requests

__all__ = ["emulator"]  # the module-scoped ARM emulator fixture (started only by the test that uses it)

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b0b0b0b-1111-2222-3333-444444444444"
SUB = "8a8a8a8a-1111-2222-3333-444444444444"


def set_json_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "azure_resource_manager", **fields}))


def test_class_metadata_matches_provider_info() -> None:
    from airflow_identity_provider.get_provider_info import get_provider_info

    entry = get_provider_info()["connection-types"][0]
    hook = AzureResourceManagerHook
    assert entry["hook-class-name"] == f"{hook.__module__}.{hook.__qualname__}"
    assert (hook.conn_type, hook.hook_name) == (entry["connection-type"], entry["hook-name"])
    assert hook.conn_name_attr == "azure_resource_manager_conn_id"
    assert hook.default_conn_name == "azure_resource_manager_default"
    behaviour = hook.get_ui_field_behaviour()
    declared = entry["ui-field-behaviour"]
    assert behaviour["hidden_fields"] == declared["hidden-fields"]
    assert behaviour["relabeling"] == declared["relabeling"]
    assert behaviour["placeholders"] == declared["placeholders"]
    # wtforms / flask_appbuilder are not installed here: the fallback degrades to no custom widgets.
    try:
        import wtforms  # noqa: F401
    except ImportError:
        assert hook.get_connection_form_widgets() == {}
    else:
        assert set(hook.get_connection_form_widgets()) == set(entry["conn-fields"])


def test_legacy_form_methods_are_on_the_registered_class() -> None:
    # ProvidersManager only calls them when they are in the hook class's own __dict__.
    assert "get_connection_form_widgets" in AzureResourceManagerHook.__dict__
    assert "get_ui_field_behaviour" in AzureResourceManagerHook.__dict__


@pytest.mark.filterwarnings("ignore:ProvidersManager.hooks is deprecated")
def test_airflow_registers_the_hook_and_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    info = manager.hooks["azure_resource_manager"]
    assert info is not None
    assert info.hook_class_name == "airflow_identity_provider.azure.hooks.arm.AzureResourceManagerHook"
    assert info.connection_id_attribute_name == "azure_resource_manager_conn_id"
    assert info.connection_testable
    assert "extra__azure_resource_manager__managed_identity_client_id" in manager.connection_form_widgets
    assert manager.field_behaviours["azure_resource_manager"]["hidden_fields"] == ["schema", "port", "host"]


def test_settings_from_json_env_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(
        monkeypatch,
        "arm_json",
        login=CLIENT,
        password="json-secret-value",
        extra={"auth_type": "client_secret", "tenant_id": TENANT, "subscription_id": SUB},
    )
    settings = AzureResourceManagerHook("arm_json").settings
    assert (settings.client_id, settings.client_secret, settings.subscription_id) == (CLIENT, "json-secret-value", SUB)


def test_settings_from_uri_env_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow turns '-' into '_' in a URI scheme, so azure-resource-manager:// is our conn type."""
    scopes = json.dumps([f"/subscriptions/{SUB}/resourceGroups/rg-etl"])
    uri = (
        f"azure-resource-manager://{CLIENT}:{quote('s3cr/t+=', safe='')}@/?auth_type=client_secret"
        f"&tenant_id={TENANT}&subscription_id={SUB}&cloud=usgov&allowed_scopes={quote(scopes)}"
    )
    monkeypatch.setenv("AIRFLOW_CONN_ARM_URI", uri)
    hook = AzureResourceManagerHook("arm_uri")
    settings = hook.settings
    assert settings.client_secret == "s3cr/t+="
    assert settings.cloud.name == "usgov"
    assert settings.allowed_scopes == (f"/subscriptions/{SUB}/resourceGroups/rg-etl",)


def test_invalid_connection_names_conn_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, "arm_bad", extra={"auth_type": "client_secret", "managed_identity_client_id": CLIENT})
    with pytest.raises(ConnectionConfigError, match="'arm_bad': extra 'managed_identity_client_id' is set but"):
        _ = AzureResourceManagerHook("arm_bad").settings


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    masked: list[Any] = []
    monkeypatch.setattr("airflow.sdk.log.mask_secret", lambda value, name=None: masked.append(value))
    pem = "-----BEGIN PRIVATE KEY-----\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n-----END PRIVATE KEY-----\n"
    set_json_conn(
        monkeypatch,
        "arm_cert",
        login=CLIENT,
        password="cert-password",
        extra={"auth_type": "certificate", "tenant_id": TENANT, "certificate_data": pem},
    )
    _ = AzureResourceManagerHook("arm_cert").settings
    assert "cert-password" in masked
    assert pem.strip() in masked
    assert "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" in masked  # a single PEM line is masked too


@pytest.mark.parametrize(
    ("cloud", "base_url", "scope"),
    [
        ("public", "https://management.azure.com/", "https://management.azure.com/.default"),
        ("usgov", "https://management.usgovcloudapi.net/", "https://management.core.usgovcloudapi.net/.default"),
        ("china", "https://management.chinacloudapi.cn/", "https://management.chinacloudapi.cn/.default"),
    ],
)
def test_every_client_targets_the_connection_cloud(
    monkeypatch: pytest.MonkeyPatch, cloud: str, base_url: str, scope: str
) -> None:
    """Sovereign hosts are unreachable here, so assert what the built clients and credential hold."""
    set_json_conn(
        monkeypatch,
        "arm_cloud",
        login=CLIENT,
        password="pw",
        extra={"auth_type": "client_secret", "tenant_id": TENANT, "subscription_id": SUB, "cloud": cloud},
    )
    hook = AzureResourceManagerHook("arm_cloud")
    host = base_url.split("/")[2]
    clients = [hook.get_resource_client(), hook.get_deployments_client(), hook.get_authorization_client()]
    for client in clients:
        config = client._config
        assert config.credential_scopes == [scope]
        assert config.authentication_policy._scopes == (scope,)
        assert config.polling_interval == 10
        pins = [p._policy for p in client._client._pipeline._impl_policies if hasattr(p, "_policy")]
        pin = next(p for p in pins if isinstance(p, HostPinningPolicy))
        assert pin.allowed == [f"{host}:443"]
    assert clients[0]._config.base_url == base_url
    assert clients[1]._config.base_url == base_url
    assert clients[2]._client._base_url == base_url  # multi-API client keeps it on the pipeline client
    assert hook.get_credential()._authority == hook.settings.cloud.authority  # type: ignore[attr-defined]
    hook.close()


def _policy_order(client: Any) -> list[str]:
    return [type(getattr(p, "_policy", p)).__name__ for p in client._client._pipeline._impl_policies]


def test_host_pin_runs_before_the_token_is_attached(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, "arm_mi", extra={"subscription_id": SUB})
    with AzureResourceManagerHook("arm_mi") as hook:
        for client in (hook.get_resource_client(), hook.get_deployments_client(), hook.get_authorization_client()):
            order = _policy_order(client)
            pin = order.index("HostPinningPolicy")
            assert pin < order.index("ARMChallengeAuthenticationPolicy")
            assert pin < order.index("RetryPolicy") and pin < order.index("RedirectPolicy")
            assert order.count("ARMAutoResourceProviderRegistrationPolicy") == 1  # per_call list not shared
            redirect = next(
                getattr(p, "_policy", p)
                for p in client._client._pipeline._impl_policies
                if type(getattr(p, "_policy", p)).__name__ == "RedirectPolicy"
            )
            assert redirect.allow is False


def test_clients_are_built_once_and_share_one_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, "arm_mi", extra={"subscription_id": SUB, "managed_identity_client_id": CLIENT})
    hook = AzureResourceManagerHook("arm_mi", correlation_id="fixed-id")
    assert hook.get_resource_client() is hook.get_resource_client()
    assert hook.get_deployments_client() is hook.get_deployments_client()
    credential = hook.get_credential()
    assert credential is hook.get_credential()
    for client in (hook.get_resource_client(), hook.get_deployments_client(), hook.get_authorization_client()):
        assert client._config.credential is credential
        policies = [getattr(p, "_policy", p) for p in client._client._pipeline._impl_policies]
        correlation = next(p for p in policies if isinstance(p, CorrelationIdPolicy))
        assert correlation.correlation_id == "fixed-id"
        assert any(isinstance(p, RateLimitLoggingPolicy) for p in policies)
    hook.close()
    assert hook.get_resource_client() is not None  # usable again after close


OTHER_SUB = "9b9b9b9b-5555-6666-7777-888888888888"


def test_one_client_per_kind_and_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, "arm_mi", extra={"subscription_id": SUB})
    hook = AzureResourceManagerHook("arm_mi", correlation_id="fixed-id")
    getters = (hook.get_resource_client, hook.get_deployments_client, hook.get_authorization_client)
    for get in getters:
        default, other = get(), get(subscription_id=OTHER_SUB)
        assert other is not default
        assert get(subscription_id=f" {OTHER_SUB.upper()} ") is other  # canonical GUID: the same client
        assert get(subscription_id=SUB) is default  # the connection's own subscription, spelled out
        assert default._config.subscription_id == SUB and other._config.subscription_id == OTHER_SUB
        assert default._config.credential is other._config.credential is hook.get_credential()
        policies = [getattr(p, "_policy", p) for p in other._client._pipeline._impl_policies]
        assert next(p for p in policies if isinstance(p, CorrelationIdPolicy)).correlation_id == "fixed-id"
        assert any(isinstance(p, HostPinningPolicy) for p in policies)
    assert len(hook._clients) == 6
    with pytest.raises(ValueError, match="not a GUID"):
        hook.get_resource_client(subscription_id="../../providers/Microsoft.Authorization")
    hook.close()
    assert hook._clients == {}


def test_other_subscription_needs_no_connection_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, "arm_nosub", extra={})
    hook = AzureResourceManagerHook("arm_nosub")
    assert hook.get_resource_client(subscription_id=OTHER_SUB)._config.subscription_id == OTHER_SUB
    with pytest.raises(ConnectionConfigError, match="'subscription_id' is not set"):
        hook.get_resource_client()
    hook.close()


def test_async_hook_one_client_per_kind_and_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, "arm_mi", extra={"subscription_id": SUB})

    async def run() -> None:
        async with AzureResourceManagerAsyncHook("arm_mi") as hook:
            for get in (hook.get_resource_client, hook.get_deployments_client, hook.get_authorization_client):
                default, other = get(), get(subscription_id=OTHER_SUB)
                assert other is not default and get(subscription_id=OTHER_SUB) is other
                assert get(subscription_id=SUB) is default
                assert other._config.subscription_id == OTHER_SUB
                assert default._config.credential is other._config.credential is hook.get_credential()
            assert len(hook._clients) == 6
        assert hook._clients == {} and hook._credential is None

    asyncio.run(run())


@pytest.mark.integration
def test_two_subscriptions_two_clients_one_token(monkeypatch: pytest.MonkeyPatch, emulator: Any) -> None:
    """Against the ARM emulator: each subscription gets its own client, both ride on one token."""
    emulator.reset()
    set_conn(
        monkeypatch,
        "arm_sp",
        login=CLIENT,
        password="sp-secret-value",
        **arm_extras(emulator, auth_type="client_secret", tenant_id=TENANT, subscription_id=SUB),
    )
    hook = AzureResourceManagerHook("arm_sp")
    try:
        mine, other = hook.get_resource_client(), hook.get_resource_client(subscription_id=OTHER_SUB)
        assert mine is not other
        assert mine._config.credential is other._config.credential is hook.get_credential()
        mine.resource_groups.create_or_update("rg-mine", {"location": "westeurope"})
        other.resource_groups.create_or_update("rg-other", {"location": "westeurope"})
        assert [g.name for g in mine.resource_groups.list()] == ["rg-mine"]
        assert [g.name for g in other.resource_groups.list()] == ["rg-other"]
        deployments = hook.get_deployments_client(subscription_id=OTHER_SUB)
        assert list(deployments.deployments.list_by_resource_group("rg-other")) == []
        subscriptions = {r.path.split("/")[2].lower() for r in arm_requests(emulator)}
        assert subscriptions == {SUB, OTHER_SUB}
        assert len(token_requests(emulator)) == 1
    finally:
        hook.close()
        emulator.reset()
    assert hook._clients == {}


def test_subscription_required_for_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, "arm_nosub", extra={})
    with pytest.raises(ConnectionConfigError, match="'subscription_id' is not set"):
        AzureResourceManagerHook("arm_nosub").get_resource_client()


def test_test_connection_reports_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, "arm_bad", extra={"auth_type": "nope"})
    ok, message = AzureResourceManagerHook("arm_bad").test_connection()
    assert not ok and "extra 'auth_type' is 'nope'" in message


def test_async_hook_requires_context_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    set_json_conn(monkeypatch, "arm_mi", extra={"subscription_id": SUB})

    async def run() -> None:
        hook = AzureResourceManagerAsyncHook("arm_mi")
        with pytest.raises(RuntimeError, match="async with"):
            hook.get_resource_client()
        async with hook:
            client = hook.get_resource_client()
            order = _policy_order(client)
            assert order.index("HostPinningPolicy") < order.index("AsyncARMChallengeAuthenticationPolicy")
            assert hook.get_authorization_client()._config.credential is hook.get_credential()
        assert hook._clients == {} and hook._credential is None

    asyncio.run(run())


def test_correlation_id_comes_from_the_running_task(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from airflow.sdk.execution_time.context import set_current_context

    from airflow_identity_provider.azure.policies import correlation_id_for

    ti = SimpleNamespace(dag_id="etl", run_id="manual__1", task_id="deploy", try_number=2, map_index=-1)
    with set_current_context({"ti": ti}):  # type: ignore[arg-type]
        inside = AzureResourceManagerHook("any").correlation_id
    assert inside == correlation_id_for("etl", "manual__1", "deploy", 2)
    outside = AzureResourceManagerHook("any").correlation_id
    assert outside != inside and outside != AzureResourceManagerHook("any").correlation_id


def test_guard_public_cloud_cannot_be_reached_from_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The conftest guard: a public-cloud connection fails on name resolution, never on the network."""
    set_json_conn(
        monkeypatch,
        "arm_public",
        login=CLIENT,
        password="pw",
        extra={"auth_type": "client_secret", "tenant_id": TENANT, "subscription_id": SUB},
    )
    ok, message = AzureResourceManagerHook("arm_public").test_connection()
    assert not ok
    assert "login.microsoftonline.com" in message and "must stay on loopback" in message
