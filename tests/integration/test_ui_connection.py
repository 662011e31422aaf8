"""The connection as a person creates it in the UI: the form's fields are saved through the REST API by a
signed-in admin, then a hook in another process (a task's view) lists resource groups with it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from dev.arm_emulator.client import ArmEmulator
from dev.idp.local_idp import login_through_idp
from tests.support.deployment import Deployment, local_deployment

pytestmark = pytest.mark.integration

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b0b0b0b-1111-2222-3333-444444444444"
SUB = "8a8a8a8a-1111-2222-3333-444444444444"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with local_deployment(tmp_path_factory.mktemp("airflow_home_ui_conn")) as running:
        yield running


def admin_session(deployment: Deployment) -> httpx.Client:
    browser = httpx.Client(timeout=30)
    core = browser.get(f"{deployment.url}/api/v2/auth/login", params={"next": f"{deployment.url}/"})
    ours = browser.get(f"{deployment.url}{core.headers['location']}")
    back = login_through_idp(browser, ours.headers["location"], "alice")
    assert browser.get(back.headers["location"]).status_code == 303
    return browser


def test_connection_saved_from_the_form_fields_works_in_a_task(deployment: Deployment) -> None:
    with ArmEmulator() as emu:
        # What the connection form posts: login/password, the conn-fields, and the (advanced) extra JSON.
        form = {
            "connection_id": "arm_from_ui",
            "conn_type": "azure_resource_manager",
            "login": CLIENT,
            "password": "ui-secret-value",
            "extra": json.dumps(
                {
                    "auth_type": "client_secret",
                    "tenant_id": TENANT,
                    "subscription_id": SUB,
                    **emu.connection_extras(),
                    "allowed_scopes": f'["/subscriptions/{SUB}/resourceGroups/rg-ui"]',
                }
            ),
        }
        browser = admin_session(deployment)
        created = browser.post(f"{deployment.url}/api/v2/connections", json=form)
        assert created.status_code == 201, created.text
        # The password never comes back from the API.
        assert "ui-secret-value" not in browser.get(f"{deployment.url}/api/v2/connections/arm_from_ui").text

        script = (
            "from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook\n"
            "hook = AzureResourceManagerHook('arm_from_ui')\n"
            "hook.get_resource_client().resource_groups.create_or_update('rg-ui', {'location': 'westeurope'})\n"
            "print('groups:', [g.name for g in hook.list_resource_groups()])\n"
        )
        # Outside a task, the SDK reads connections from the metadata DB only in the "server" context.
        env = {**deployment.server.env, "_AIRFLOW_PROCESS_CONTEXT": "server"}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "groups: ['rg-ui']" in done.stdout
        calls = [r for r in emu.requests() if r.identity]
        assert calls and all(r.identity.get("appid") == CLIENT for r in calls)
