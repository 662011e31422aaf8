"""DAG bundles, serialized DAGs and signed-in HTTP clients for the authorization integration tests.

The DAG files live in ``tests/integration/dags_authz/<folder>``; a deployment gets copies in its AIRFLOW_HOME (so
parsing writes no ``__pycache__`` into the repository), one folder per LocalDagBundle, serialized by
``airflow dags reserialize`` (Airflow 3.1 and 3.3 both parse every configured bundle) before the api-server starts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from dev.airflow_server import airflow_bin
from dev.idp.local_idp import login_through_idp
from tests.support.deployment import Deployment

DAG_SOURCES = Path(__file__).resolve().parents[1] / "integration" / "dags_authz"
SQL_COUNTER_PLUGIN = Path(__file__).resolve().with_name("sql_counter_plugin.py")
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


@dataclass(frozen=True)
class Bundle:
    name: str
    folder: str  # under DAG_SOURCES
    team: str | None = None


def bundle_settings(home: Path, bundles: list[Bundle]) -> dict[str, str]:
    """Environment for these bundles; the first is the ``dags-folder`` (AIRFLOW__CORE__DAGS_FOLDER)."""
    configs: list[dict[str, Any]] = []
    for bundle in bundles:
        config: dict[str, Any] = {
            "name": bundle.name,
            "classpath": LOCAL_BUNDLE,
            "kwargs": {"path": str(home / bundle.folder)},
        }
        if bundle.team:
            config["team_name"] = bundle.team
        configs.append(config)
    return {
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / bundles[0].folder),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(configs),
    }


def copy_bundles(home: Path, bundles: list[Bundle]) -> None:
    for bundle in bundles:
        shutil.copytree(DAG_SOURCES / bundle.folder, home / bundle.folder, dirs_exist_ok=True)


def install_sql_counter(home: Path) -> dict[str, str]:
    """Put the statement-counting plugin in the deployment's plugins folder; returns the env that loads it."""
    plugins = home / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    shutil.copy(SQL_COUNTER_PLUGIN, plugins / SQL_COUNTER_PLUGIN.name)
    return {"AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins)}


def airflow_cli(env: Mapping[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``airflow <args>`` with the deployment's environment; raise with its output when it fails."""
    result = subprocess.run(
        [airflow_bin(), *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return result


def reserialize(env: Mapping[str, str]) -> None:
    airflow_cli(env, "dags", "reserialize")


T = TypeVar("T")


def poll(check: Callable[[], T], *, what: str, timeout: float = 30, interval: float = 0.5) -> T:
    """``check()`` until it returns something truthy (the DAG index refreshes in the background every ~5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true after {timeout:g} s (last value {value!r})")
        time.sleep(interval)


def sign_in(deployment: Deployment, username: str, next_path: str = "/dags") -> tuple[httpx.Client, httpx.Response]:
    """The browser's chain: Airflow login -> our /auth/login -> IdP -> /auth/callback (cookie-keeping client)."""
    browser = httpx.Client(timeout=30)
    core = browser.get(f"{deployment.url}/api/v2/auth/login", params={"next": f"{deployment.url}{next_path}"})
    assert core.status_code == 307, core.text
    ours = browser.get(f"{deployment.url}{core.headers['location']}")
    assert ours.status_code == 302, ours.text
    back = login_through_idp(browser, ours.headers["location"], username)
    return browser, browser.get(back.headers["location"])


def signed_in(deployment: Deployment, username: str) -> httpx.Client:
    browser, callback = sign_in(deployment, username)
    assert callback.status_code == 303, (username, callback.status_code, callback.text[:2000])
    return browser


def dag_ids(client: httpx.Client, deployment: Deployment) -> tuple[list[str], int]:
    """The DAG ids GET /api/v2/dags lists for this client, and its total_entries."""
    response = client.get(f"{deployment.url}/api/v2/dags", params={"limit": 100})
    assert response.status_code == 200, response.text
    body = response.json()
    return sorted(dag["dag_id"] for dag in body["dags"]), int(body["total_entries"])
