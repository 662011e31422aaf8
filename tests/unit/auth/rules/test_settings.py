from __future__ import annotations

import pytest

from airflow_identity_provider.auth.rules.settings import SettingsError, parse_settings

BASE = {"issuer": "https://idp.example.com/", "client_id": "airflow"}


def test_defaults() -> None:
    settings = parse_settings(BASE)
    assert settings.idp == "oidc"
    assert settings.scopes == ("openid", "profile", "email")
    assert settings.groups_claim == "groups"
    assert settings.role_mapping == {}
    assert settings.default_role is None
    assert settings.id_token_signing_algs == ("RS256",)
    assert "client_secret" not in repr(settings)


def test_role_mapping_parsed_case_insensitively() -> None:
    settings = parse_settings({**BASE, "role_mapping": '{"a": "admin", "b": "Viewer"}', "default_role": "op"})
    assert settings.role_mapping == {"a": ("Admin",), "b": ("Viewer",)}
    assert settings.default_role == "Op"


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({"client_id": ""}, "client_id", "is empty"),
        ({"idp": "okta"}, "idp", "expected one of oidc, entra, jumpcloud"),
        ({"role_mapping": "{not json"}, "role_mapping", "is not valid JSON"),
        ({"role_mapping": '["Admin"]'}, "role_mapping", "expected a JSON object"),
        ({"role_mapping": '{"g": "Superuser"}'}, "role_mapping", "'Superuser' is not an Airflow role"),
        ({"role_mapping": '{"g": 3}'}, "role_mapping", "must be a role name or a list of them"),
        ({"default_role": "Root"}, "default_role", "'Root' is not an Airflow role"),
        ({"issuer": "http://idp.example.com/"}, "issuer", "expected an https:// URL"),
        ({"issuer": ""}, "issuer", "is empty"),
        ({"scopes": "profile email"}, "scopes", "must include openid"),
        ({"id_token_signing_algs": "HS256"}, "id_token_signing_algs", "subset"),
        ({"id_token_signing_algs": "none"}, "id_token_signing_algs", "subset"),
        ({"leeway": "soon"}, "leeway", "whole number"),
        ({"http_timeout": "0"}, "http_timeout", ">= 1"),
        ({"role_maping": "{}"}, "role_maping", "unknown key"),
        ({"idp": "entra", "issuer": ""}, "tenant_id", "is required"),
        ({"idp": "entra", "tenant_id": "common"}, "allowed_tenants", "is required"),
        ({"idp": "entra", "tenant_id": "organizations", "allowed_tenants": "contoso"}, "allowed_tenants", "GUIDs"),
        ({"idp": "entra", "tenant_id": "t", "cloud": "mars"}, "cloud", "mars"),
    ],
)
def test_bad_settings_name_the_key(raw: dict[str, str], key: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings({**BASE, **raw})
    assert info.value.key == key
    assert str(info.value).startswith(f"[identity_auth_manager] {key}:")
    assert fragment in str(info.value)


def test_loopback_http_issuer_allowed_for_local_providers() -> None:
    assert parse_settings({**BASE, "issuer": "http://127.0.0.1:9000"}).issuer == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("cloud", "issuer"),
    [
        ("public", "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"),
        ("usgov", "https://login.microsoftonline.us/contoso.onmicrosoft.com/v2.0"),
        ("china", "https://login.partner.microsoftonline.cn/contoso.onmicrosoft.com/v2.0"),
    ],
)
def test_entra_issuer_derived_from_tenant_and_cloud(cloud: str, issuer: str) -> None:
    settings = parse_settings(
        {"idp": "entra", "client_id": "c", "tenant_id": "contoso.onmicrosoft.com", "cloud": cloud}
    )
    assert settings.issuer == issuer
    assert settings.groups_claim == "roles"


def test_jumpcloud_defaults() -> None:
    settings = parse_settings({"idp": "jumpcloud", "client_id": "c"})
    assert settings.issuer == "https://oauth.id.jumpcloud.com/"
    assert settings.groups_claim == "memberOf"
