"""The worker-side helper: token sources and luigi's RemoteScheduler sending a fresh Bearer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_identity_provider.luigi_gateway.worker import (
    AzureToken,
    BearerFetcher,
    BearerRemoteScheduler,
    ClientCredentials,
    IdentitySchedulerFactory,
    TokenFile,
    TokenUnavailable,
    source_from_config,
)


def test_a_token_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    source = TokenFile(path)
    assert source.token() == "first"
    path.write_text("second-token\n")
    os.utime(path, (1, 1))  # kubelet swaps the file: another mtime
    assert source.token() == "second-token"
    path.write_text("")
    os.utime(path, (2, 2))
    with pytest.raises(TokenUnavailable, match="is empty"):
        source.token()
    with pytest.raises(TokenUnavailable, match="cannot read"):
        TokenFile(tmp_path / "missing").token()


def test_an_azure_credential_is_asked_again_only_near_expiry() -> None:
    now = [1000.0]
    calls: list[str] = []

    class Credential:
        def get_token(self, scope: str) -> SimpleNamespace:
            calls.append(scope)
            return SimpleNamespace(token=f"t{len(calls)}", expires_on=now[0] + 3600)

    source = AzureToken("api://luigi/.default", Credential(), clock=lambda: now[0])
    assert source.token() == "t1" and source.token() == "t1"
    now[0] += 3600 - 299  # within RENEW_BEFORE_SECONDS of expiry
    assert source.token() == "t2" and calls == ["api://luigi/.default"] * 2


def test_the_source_comes_from_luigi_config() -> None:
    def config(values: dict[str, str]):  # type: ignore[no-untyped-def]
        return lambda key: values.get(key, "")

    assert isinstance(source_from_config(config({"token_file": "/var/run/token"})), TokenFile)
    assert isinstance(source_from_config(config({"azure_scope": "api://x/.default"})), AzureToken)
    found = source_from_config(config({"token_endpoint": "https://idp/token", "client_id": "c", "client_secret": "s"}))
    assert isinstance(found, ClientCredentials)
    with pytest.raises(TokenUnavailable, match="client_secret"):
        source_from_config(config({"token_endpoint": "https://idp/token", "client_id": "c"}))
    with pytest.raises(TokenUnavailable, match="no token source"):
        source_from_config(config({}))


def test_the_scheduler_drops_basic_credentials_from_the_url_and_fetches_with_bearer() -> None:
    scheduler = IdentitySchedulerFactory(TokenFile("/nonexistent")).create_remote_scheduler(
        "https://worker:secret@luigi.example.com/"
    )
    assert isinstance(scheduler, BearerRemoteScheduler)
    assert scheduler._url == "https://luigi.example.com" and isinstance(scheduler._fetcher, BearerFetcher)
    assert TokenUnavailable in scheduler._fetcher.raises  # luigi's retry loop handles it as a failed call


def test_the_helper_imports_neither_airflow_nor_the_gateway() -> None:
    code = (
        "import sys; import airflow_identity_provider.luigi_gateway.worker; "
        "bad = [m for m in sys.modules if m == 'airflow' or m.startswith(('airflow.', "
        "'airflow_identity_provider.auth', 'starlette'))]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
