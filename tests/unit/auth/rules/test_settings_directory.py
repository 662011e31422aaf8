"""The directory-sync keys: directory_sync_interval, api_token_max_age, jumpcloud_api_key, jumpcloud_api_url."""

from __future__ import annotations

import pytest

from airflow_identity_provider.auth.rules.settings import SettingsError, parse_settings, settings_warnings
from airflow_identity_provider.provider_info.auth_config import AUTH_MANAGER_CONFIG

BASE = {"issuer": "https://idp.example.com/", "client_id": "airflow"}
ENTRA = {"idp": "entra", "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "airflow"}


def test_defaults() -> None:
    settings = parse_settings(BASE)
    assert settings.directory_sync_interval == 60 and settings.api_token_max_age == 86400
    assert settings.jumpcloud_api_url == "https://console.jumpcloud.com" and settings.jumpcloud_api_key == ""


def test_the_api_key_is_secret() -> None:
    assert AUTH_MANAGER_CONFIG["options"]["jumpcloud_api_key"]["sensitive"] is True
    settings = parse_settings({**BASE, "idp": "jumpcloud", "jumpcloud_api_key": "k-123"})
    assert "k-123" not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({"directory_sync_interval": "-1"}, "directory_sync_interval", ">= 0"),
        ({"directory_sync_interval": "1m"}, "directory_sync_interval", "whole number"),
        ({"api_token_max_age": "soon"}, "api_token_max_age", "whole number"),
        ({"jumpcloud_api_url": "http://console.jumpcloud.com"}, "jumpcloud_api_url", "https://"),
    ],
)
def test_bad_values(raw: dict[str, str], key: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings({**BASE, **raw})
    assert err.value.key == key and fragment in err.value.problem


def test_warnings_when_the_sync_cannot_run() -> None:
    jumpcloud = parse_settings({**BASE, "idp": "jumpcloud"})
    assert any("jumpcloud_api_key: is empty" in w for w in settings_warnings(jumpcloud))
    assert not settings_warnings(parse_settings({**BASE, "idp": "jumpcloud", "directory_sync_interval": "0"}))
    entra = parse_settings(ENTRA)
    assert any("client_secret: is empty" in w for w in settings_warnings(entra))
    assert not settings_warnings(parse_settings({**ENTRA, "client_secret": "s"}))
    assert not settings_warnings(parse_settings(BASE))  # oidc: nothing to sync with, nothing to say
