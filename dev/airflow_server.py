"""Start a real ``airflow api-server`` (and, for the demo, the other Airflow components) on loopback.

Used by the integration tests and by ``dev/demo``. Everything lives in one AIRFLOW_HOME with a SQLite
metadata database; processes are started in their own process group and stopped by it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dev.idp.local_idp import API_AUDIENCE, GROUPS_SCOPES, LocalIdp

REPO_ROOT = Path(__file__).resolve().parent.parent
AUTH_MANAGER = "airflow_identity_provider.auth.manager.IdentityAuthManager"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def preferred_port(preferred: int) -> int:
    """``preferred`` when it is free on loopback (the demo's URLs stay the same from run to run), else any."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def airflow_env(home: Path, *, port: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every Airflow process of one deployment shares (same secrets, same DB)."""
    home.mkdir(parents=True, exist_ok=True)
    secrets_file = home / "secrets.env"
    if not secrets_file.exists():
        secrets_file.write_text(f"{secrets.token_urlsafe(32)}\n{secrets.token_urlsafe(32)}\n")
    jwt_secret, secret_key = secrets_file.read_text().split()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AZURE_", "IDENTITY_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}/",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secret_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
            "AIRFLOW__API_AUTH__JWT_ISSUER": "airflow-identity-provider-dev",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
        }
    )
    env.update(extra or {})
    return env


def oidc_settings(idp: LocalIdp, role_mapping: Mapping[str, str]) -> dict[str, str]:
    """``[identity_auth_manager]`` (as ``airflow_env`` extras) for the local IdP as a plain OIDC provider, with
    its ``api://airflow`` access tokens accepted for machine access."""
    prefix = "AIRFLOW__IDENTITY_AUTH_MANAGER__"
    return {
        f"{prefix}IDP": "oidc",
        f"{prefix}ISSUER": idp.issuer,
        f"{prefix}CLIENT_ID": idp.client_id,
        f"{prefix}CLIENT_SECRET": idp.client_secret,
        f"{prefix}SCOPES": " ".join(GROUPS_SCOPES),
        f"{prefix}ROLE_MAPPING": json.dumps(role_mapping),
        f"{prefix}API_AUDIENCES": API_AUDIENCE,
    }


def migrate(env: Mapping[str, str]) -> None:
    try:
        result = subprocess.run(
            [airflow_bin(), "db", "migrate"], env=dict(env), capture_output=True, text=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired as exc:  # one kind of failure for callers: a start that did not happen
        raise RuntimeError("airflow db migrate did not finish within 300 s") from exc
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


@dataclass
class AirflowProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def start_component(name: str, args: list[str], env: Mapping[str, str], home: Path) -> AirflowProcess:
    log_path = home / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [airflow_bin(), *args],
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return AirflowProcess(name, process, log_path)


@dataclass
class ApiServer:
    url: str
    component: AirflowProcess
    env: dict[str, str] = field(repr=False)

    def stop(self) -> None:
        self.component.stop()


def start_api_server(home: Path, env: Mapping[str, str], *, port: int, timeout: float = 90) -> ApiServer:
    component = start_component("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(port)], env, home)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if component.process.poll() is not None:
                code = component.process.returncode
                raise RuntimeError(f"airflow api-server exited with {code}:\n{component.log_tail()}")
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    return ApiServer(url=url, component=component, env=dict(env))
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"airflow api-server not healthy after {timeout} s:\n{component.log_tail()}")
    except BaseException:  # not healthy, or Ctrl-C / SIGTERM while waiting: never leave it running on its own
        component.stop()
        raise
