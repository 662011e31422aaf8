"""The package as Airflow sees it: provider discovery, config declaration and the CLI commands."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dev.airflow_server import airflow_bin, airflow_env

pytestmark = pytest.mark.integration


def airflow(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = airflow_env(home, port=8080, extra=env)
    return subprocess.run([airflow_bin(), *args], env=environment, capture_output=True, text=True, timeout=120)


def test_provider_auth_manager_config_and_connection_type_are_registered(tmp_path: Path) -> None:
    providers = airflow(tmp_path, "providers", "list", "--output", "json")
    assert any(p["package_name"] == "airflow-identity-provider" for p in json.loads(providers.stdout))
    managers = airflow(tmp_path, "providers", "auth-managers")
    assert "airflow_identity_provider.auth.manager.IdentityAuthManager" in managers.stdout
    config = airflow(tmp_path, "config", "list", "--section", "identity_auth_manager", "--include-descriptions")
    assert "[identity_auth_manager]" in config.stdout
    for key in ("idp", "issuer", "client_id", "client_secret", "role_mapping", "default_role", "revalidate_interval"):
        assert f"# {key} = " in config.stdout or f"{key} = " in config.stdout
    hooks = airflow(tmp_path, "providers", "hooks")
    assert "azure_resource_manager" in hooks.stdout and "AzureResourceManagerHook" in hooks.stdout


def test_explain_shows_the_role_and_why(tmp_path: Path) -> None:
    result = airflow(
        tmp_path,
        "identity-auth-manager",
        "explain",
        "--claims",
        '{"sub": "u1", "name": "Una", "groups": ["marketing", "airflow-ops"]}',
        AIRFLOW__IDENTITY_AUTH_MANAGER__ISSUER="https://idp.example.com/",
        AIRFLOW__IDENTITY_AUTH_MANAGER__CLIENT_ID="airflow",
        AIRFLOW__IDENTITY_AUTH_MANAGER__ROLE_MAPPING='{"airflow-ops": "Op"}',
    )
    assert result.returncode == 0, result.stderr
    assert "matched: airflow-ops" in result.stdout and "role:    Op" in result.stdout


def test_check_config_names_the_bad_key_in_one_line(tmp_path: Path) -> None:
    result = airflow(
        tmp_path,
        "identity-auth-manager",
        "check-config",
        AIRFLOW__IDENTITY_AUTH_MANAGER__ISSUER="https://idp.example.com/",
        AIRFLOW__IDENTITY_AUTH_MANAGER__CLIENT_ID="airflow",
        AIRFLOW__IDENTITY_AUTH_MANAGER__DEFAULT_ROLE="Superuser",
    )
    assert result.returncode != 0
    assert "[identity_auth_manager] default_role: 'Superuser' is not an Airflow role" in result.stderr
    assert "Traceback" not in result.stderr
