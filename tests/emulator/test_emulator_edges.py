"""Raw HTTP behaviour, fault injection, host pinning support and the process lifecycle."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from dev.arm_emulator.client import REPO_ROOT, ArmEmulator, ArmEmulatorError
from tests.emulator.support import ARM_SCOPE, SUB, TENANT, deployment_body, make_clients, secret_credential

pytestmark = pytest.mark.integration

API = {"api-version": "2025-04-01"}


def _arm(emu: ArmEmulator, method: str, path: str, token: str | None = "opaque", **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, emu.url + path, headers=headers, verify=emu.ca_path, timeout=10, **kw)


def test_unknown_path_is_an_arm_404(emu: ArmEmulator) -> None:
    resp = _arm(emu, "GET", "/subscriptions/s/providers/Microsoft.Nope/things", params=API)
    assert resp.status_code == 404
    error = resp.json()["error"]
    assert error["code"] == "NotFound" and "/subscriptions/s/providers/Microsoft.Nope/things" in error["message"]
    assert "Traceback" not in resp.text
    assert resp.headers["x-ms-request-id"] and resp.headers["x-ms-correlation-request-id"]
    unauthenticated = _arm(emu, "DELETE", "/whatever", token=None)
    assert (unauthenticated.status_code, unauthenticated.json()["error"]["code"]) == (404, "NotFound")


def test_authentication_and_api_version_are_required(emu: ArmEmulator) -> None:
    no_auth = _arm(emu, "GET", f"/subscriptions/{SUB}/resourcegroups", token=None, params=API)
    assert (no_auth.status_code, no_auth.json()["error"]["code"]) == (401, "AuthenticationFailed")
    no_version = _arm(emu, "GET", f"/subscriptions/{SUB}/resourcegroups")
    assert (no_version.status_code, no_version.json()["error"]["code"]) == (400, "MissingApiVersionParameter")
    graph_token = secret_credential(emu).get_token("https://graph.microsoft.com/.default").token
    wrong_aud = _arm(emu, "GET", f"/subscriptions/{SUB}/resourcegroups", token=graph_token, params=API)
    assert wrong_aud.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_token_endpoint_validation(emu: ArmEmulator) -> None:
    url = f"{emu.url}/{TENANT}/oauth2/v2.0/token"

    def post(**form: str) -> requests.Response:
        return requests.post(url, data=form, verify=emu.ca_path, timeout=10)

    base = {"grant_type": "client_credentials", "client_id": "c", "client_secret": "x"}
    assert post(**{**base, "scope": "https://management.azure.com"}).json()["error"] == "invalid_scope"
    assert post(**{**base, "grant_type": "password", "scope": ARM_SCOPE}).json()["error"] == "unsupported_grant_type"
    no_secret = post(grant_type="client_credentials", client_id="c", scope=ARM_SCOPE)
    assert (no_secret.status_code, no_secret.json()["error"]) == (401, "invalid_client")
    ok = post(**{**base, "scope": ARM_SCOPE}).json()
    assert ok["token_type"] == "Bearer" and ok["expires_in"] == 3599
    oidc = requests.get(f"{emu.url}/{TENANT}/v2.0/.well-known/openid-configuration", verify=emu.ca_path, timeout=10)
    assert oidc.json()["token_endpoint"] == url


def test_managed_identity_endpoints_validate_headers(emu: ArmEmulator) -> None:
    params = {"resource": "https://management.azure.com", "api-version": "2018-02-01"}
    imds = requests.get(f"{emu.http_url}/metadata/identity/oauth2/token", params=params, timeout=10)
    assert (imds.status_code, imds.json()["error"]) == (400, "invalid_request")
    app = requests.get(f"{emu.http_url}/msi/token", params={**params, "api-version": "2019-08-01"}, timeout=10)
    assert app.status_code == 401
    both = requests.get(
        f"{emu.url}/msi/token",  # also served over https
        params={**params, "api-version": "2019-08-01", "client_id": "a", "object_id": "b"},
        headers={"X-IDENTITY-HEADER": "h"},
        verify=emu.ca_path,
        timeout=10,
    )
    assert both.status_code == 400


@pytest.mark.parametrize("host", ["127.0.0.2", "localhost"])
def test_async_base_moves_polling_to_another_host(emu: ArmEmulator, host: str) -> None:
    port = emu.url.rsplit(":", 1)[1]
    emu.set_async_base(f"https://{host}:{port}")  # same process and state; both names are in the cert
    clients = make_clients(emu)
    clients.resources.resource_groups.create_or_update("rg-pin", {"location": "westeurope"})
    clients.deployments.deployments.begin_create_or_update("rg-pin", "d", deployment_body()).result()
    polls = emu.requests(r"/operationStatuses/")
    assert polls and {p.host for p in polls} == {f"{host}:{port}"}
    assert all(p.headers["authorization"].startswith("Bearer ") for p in polls)  # what a pin policy must stop


def test_ratelimit_headers_and_injected_errors(emu: ArmEmulator) -> None:
    clients = make_clients(emu)
    emu.set_ratelimit_remaining(42)
    seen: dict[str, str] = {}

    def hook(response: Any) -> None:
        seen.update(response.http_response.headers)

    clients.resources.resource_groups.create_or_update("rg-rl", {"location": "westeurope"}, raw_response_hook=hook)
    assert seen["x-ms-ratelimit-remaining-subscription-writes"] == "42"
    clients.resources.resource_groups.get("rg-rl", raw_response_hook=hook)
    assert seen["x-ms-ratelimit-remaining-subscription-reads"] == "42"

    emu.fail_request(r"/deployments/locked$", method="PUT", code="AuthorizationFailed", message="nope")
    with pytest.raises(HttpResponseError) as err:
        clients.deployments.deployments.begin_create_or_update("rg-rl", "locked", deployment_body())
    assert (err.value.status_code, err.value.error.code) == (403, "AuthorizationFailed")  # type: ignore[union-attr]
    assert not any(r.path.startswith("/_emulator") for r in emu.requests())


def test_throttle_a_seeded_share_of_the_requests(emu: ArmEmulator) -> None:
    path = f"/subscriptions/{SUB}/resourcegroups"

    def statuses() -> list[int]:
        return [_arm(emu, "GET", path, params=API).status_code for _ in range(40)]

    emu.throttle(r"/resourcegroups$", times=100, retry_after=3, share=0.25, seed=7)
    first = statuses()
    assert 3 <= first.count(429) <= 20 and set(first) == {200, 429}
    emu.reset()
    emu.throttle(r"/resourcegroups$", times=100, retry_after=3, share=0.25, seed=7)
    assert statuses() == first  # same seed, same order: same answers
    emu.reset()
    emu.throttle(r"/resourcegroups$", times=2, retry_after=3, share=0.25, seed=7)
    assert statuses().count(429) == 2  # times still caps the total
    with pytest.raises(ArmEmulatorError, match="share must be"):
        emu.throttle(r"/x$", share=0)


def test_reset_clears_state_and_settings(emu: ArmEmulator) -> None:
    clients = make_clients(emu)
    clients.resources.resource_groups.create_or_update("rg-reset", {"location": "westeurope"})
    emu.set_deployment_duration(7)
    emu.throttle(".*", times=100)
    emu.reset()
    assert emu.requests() == []
    assert clients.resources.resource_groups.check_existence("rg-reset") is False
    assert [r.status for r in emu.requests()] == [404]


def test_process_ready_line_and_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dev.arm_emulator", "--port", "0", "--state-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"ARM_EMULATOR_READY (\{.*\})\n", line)
        assert match, line
        ready = json.loads(match.group(1))
        assert set(ready) == {"url", "http_url", "ca"}
        assert ready["url"].startswith("https://127.0.0.1:") and ready["http_url"].startswith("http://127.0.0.1:")
        assert Path(ready["ca"]) == tmp_path / "ca.pem"
        assert requests.get(ready["url"] + "/_emulator/health", verify=ready["ca"], timeout=10).json() == {"ok": True}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == ""  # exactly one stdout line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_startup_failure_reports_stderr(emu: ArmEmulator) -> None:
    busy_port = int(emu.url.rsplit(":", 1)[1])
    with pytest.raises(ArmEmulatorError, match="Address already in use"):
        ArmEmulator(port=busy_port, startup_timeout=20).start()


def test_restart_with_persist_keeps_state_certificate_and_ports(tmp_path: Path) -> None:
    """persist=True: a deployment started before a restart is found, and finishes, after it (same clients: same
    URL, same CA file), the request log spans both processes, and fault settings carry over. Without persist
    there is no restart."""
    with ArmEmulator(state_dir=tmp_path, persist=True) as emu:
        clients = make_clients(emu)
        clients.resources.resource_groups.create_or_update("rg-restart", {"location": "westeurope"})
        emu.set_deployment_duration(3)
        poller = clients.deployments.deployments.begin_create_or_update("rg-restart", "dep1", deployment_body())
        url, ca, pid = emu.url, emu.ca_path, emu.pid
        emu.restart(downtime=0.2)
        assert (emu.url, emu.ca_path) == (url, ca) and emu.pid != pid
        assert clients.resources.resource_groups.check_existence("rg-restart") is True
        assert poller.result().properties.provisioning_state == "Succeeded"
        puts = [r for r in emu.requests(r"/deployments/dep1$") if r.method == "PUT"]
        assert [r.status for r in puts] == [201]  # recorded by the first process, read from the second
        emu.throttle(r"/resourcegroups/rg-restart$", times=1)
        emu.restart()
        assert _arm(emu, "GET", f"/subscriptions/{SUB}/resourcegroups/rg-restart", params=API).status_code == 429
    with ArmEmulator() as plain, pytest.raises(ArmEmulatorError, match="persist=True"):
        plain.restart()
    with pytest.raises(ValueError, match="state_dir"):
        ArmEmulator(persist=True)
