"""The gateway's ini file: its own keys, then the [identity_auth_manager] keys through the same parser."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_identity_provider.auth.rules.settings import SettingsError
from airflow_identity_provider.luigi_gateway.settings import load_gateway, parse_gateway, read_sections

SECRET = "x" * 40
BASE = {
    "upstream": "http://127.0.0.1:8082",
    "public_url": "https://luigi.example.com",
    "session_secret": SECRET,
    "issuer": "https://idp.example.com",
    "client_id": "luigi",
    "role_mapping": json.dumps({"ops": "Op", "machines": "Worker"}),
    "api_audiences": "api://luigi",
}


def parse(**changes: str) -> object:
    raw = {**BASE, **changes}
    return parse_gateway({"luigi_gateway": {k: v for k, v in raw.items() if v != "<drop>"}})


def test_a_complete_section() -> None:
    settings = parse_gateway({"luigi_gateway": BASE})
    assert settings.upstream.base_url == "http://127.0.0.1:8082" and settings.upstream.unix_socket is None
    assert settings.public_url == "https://luigi.example.com/" and settings.secure_cookies
    assert settings.callback_url() == "https://luigi.example.com/auth/callback"
    provider = settings.providers["default"]
    assert provider.role_mapping == {"ops": ("Op",), "machines": ("Worker",)}  # Worker: the gateway's role
    assert (settings.host, settings.port, settings.session_lifetime) == ("127.0.0.1", 8083, 28800)
    assert settings.warnings == ()


def test_a_unix_socket_upstream() -> None:
    settings = parse_gateway({"luigi_gateway": {**BASE, "upstream": "unix:/run/luigid.sock"}})
    assert settings.upstream.unix_socket == "/run/luigid.sock"


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"upstream": "<drop>"}, "upstream", "is empty"),
        ({"upstream": "ftp://x"}, "upstream", "expected http://host:port"),
        ({"upstream": "http://127.0.0.1:8082/api"}, "upstream", "expected http://host:port"),
        ({"upstream": "unix:relative.sock"}, "upstream", "absolute"),
        ({"public_url": "<drop>"}, "public_url", "is empty"),
        ({"public_url": "http://luigi.example.com"}, "public_url", "https://"),
        ({"session_secret": "short"}, "session_secret", "at least 32"),
        ({"port": "99999"}, "port", "between 1 and 65535"),
        ({"session_lifetime": "ten"}, "session_lifetime", "whole number"),
        # The identity keys: the auth manager's own validation, under the gateway's section.
        ({"client_id": "<drop>"}, "client_id", "is empty"),
        ({"role_mapping": '{"ops": "Operator"}'}, "role_mapping", "is not an Airflow role"),
        ({"role_mapping": "{bad"}, "role_mapping", "not valid JSON"),
        ({"issuer": "http://idp.example.com"}, "issuer", "https://"),
        ({"idp": "okta"}, "idp", "expected one of"),
        ({"colour": "blue"}, "colour", "unknown key"),
    ],
)
def test_each_bad_value_is_one_line_naming_section_and_key(changes: dict[str, str], key: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse(**changes)
    message = str(caught.value)
    assert caught.value.key == key and words in message, message
    assert message.startswith(f"[luigi_gateway] {key}: ") and "\n" not in message


def test_custom_roles_keep_the_worker_role() -> None:
    roles = json.dumps({"Reader": {"extends": "Viewer"}})
    settings = parse_gateway({"luigi_gateway": {**BASE, "roles": roles}})
    assert set(settings.providers["default"].access.roles) >= {"Reader", "Worker"}


def test_several_providers_each_in_its_own_section() -> None:
    sections = {
        "luigi_gateway": {k: v for k, v in BASE.items() if k in ("upstream", "public_url", "session_secret")}
        | {"providers": "staff,k8s"},
        "luigi_gateway_staff": {
            "issuer": "https://idp.example.com",
            "client_id": "luigi",
            "role_mapping": '{"ops": "Op"}',
        },
        "luigi_gateway_k8s": {
            "issuer": "https://oidc.example.com/cluster",
            "client_id": "unused",
            "groups_claim": "sub",
            "api_audiences": "luigi-gateway",
            "role_mapping": '{"system:serviceaccount:etl:worker": "Worker"}',
        },
    }
    settings = parse_gateway(sections)
    assert list(settings.providers) == ["staff", "k8s"]
    assert settings.callback_url("staff") == "https://luigi.example.com/auth/callback/staff"
    sections["luigi_gateway_k8s"]["role_mapping"] = '{"x": "Nobody"}'
    with pytest.raises(SettingsError, match=r"^\[luigi_gateway_k8s\] role_mapping: "):
        parse_gateway(sections)


def test_warnings() -> None:
    settings = parse_gateway({"luigi_gateway": {**BASE, "upstream": "http://10.0.0.5:8082", "api_audiences": ""}})
    assert any("not a loopback address" in w for w in settings.warnings)
    assert any("api_audiences: is empty" in w for w in settings.warnings)


def test_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "gateway.ini"
    body = "".join(f"{k} = {v}\n" for k, v in BASE.items() if k not in ("client_id", "role_mapping"))
    # Multi-line JSON and a % sign: no interpolation.
    path.write_text("[luigi_gateway]\n" + body + 'role_mapping = {\n    "ops": "Op"}\nclient_secret = 50%off\n')
    settings = load_gateway(path, {"LUIGI_GATEWAY__CLIENT_ID": "from-env", "OTHER": "x"})
    provider = settings.providers["default"]
    assert (provider.client_id, provider.client_secret, provider.role_mapping) == (
        "from-env",
        "50%off",
        {"ops": ("Op",)},
    )
    assert read_sections(None, {"LUIGI_GATEWAY_K8S__ISSUER": "https://x"}) == {
        "luigi_gateway_k8s": {"issuer": "https://x"}
    }


def test_an_unreadable_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_gateway(tmp_path / "missing.ini", {})
    broken = tmp_path / "broken.ini"
    broken.write_text("no section header\n")
    with pytest.raises(SettingsError, match="is not an ini file"):
        load_gateway(broken, {})


def test_the_console_script_stops_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.ini"
    path.write_text("[luigi_gateway]\n" + "".join(f"{k} = {v}\n" for k, v in {**BASE, "session_secret": "x"}.items()))
    result = subprocess.run(
        [sys.executable, "-m", "airflow_identity_provider.luigi_gateway.cli", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "luigi-identity-gateway:" in line]
    assert errors == [
        "luigi-identity-gateway: error: [luigi_gateway] session_secret: needs at least 32 characters (it signs "
        "the session cookies); generate one with python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    ]
