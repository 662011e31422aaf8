"""Custom roles, DAG grants (by glob, tag and bundle) and DAG access_control through a real ``airflow api-server``,
signed in through the real npm ``oidc-provider``.

The DAG files (``dags_authz/main`` as the ``dags-folder`` bundle, ``dags_authz/extra`` as a second LocalDagBundle)
are serialized into the metadata DB before the api-server starts; the auth manager's DAG index reads their tags,
bundles and access_control from there. One deployment serves the whole module.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dev.airflow_server import free_port, start_api_server
from dev.idp.local_idp import start_local_idp
from tests.support.dags import (
    Bundle,
    bundle_settings,
    copy_bundles,
    dag_ids,
    install_sql_counter,
    poll,
    reserialize,
    sign_in,
    signed_in,
)
from tests.support.deployment import ROLE_MAPPING, Deployment, local_deployment

pytestmark = pytest.mark.integration

BUNDLES = [Bundle("dags-folder", "main"), Bundle("extra-bundle", "extra")]
ALL_DAGS = ["analytics_daily", "analytics_hourly", "extra_report", "finance_close", "ops_cleanup", "plain_other"]
ROLES = {"VariableEditor": {"extends": "Viewer", "allow": ["variable:*"]}}
DAG_GRANTS = [
    {"groups": ["analytics-operators"], "dags": ["analytics_*"], "role": "Op"},
    {"groups": ["analytics-readers"], "tags": ["analytics"], "role": "Viewer"},
    {"groups": ["extra-readers"], "bundles": ["extra-bundle"], "role": "Viewer"},
]
# user -> groups; none of these groups is in role_mapping except variable-editors.
USERS = {
    "gina": ["analytics-operators"],  # grant on the glob analytics_* only
    "tess": ["analytics-readers"],  # grant on the tag analytics only
    "bea": ["extra-readers"],  # grant on the bundle extra-bundle only
    "vic": ["variable-editors"],  # the custom role VariableEditor
    "fay": ["finance-team"],  # named by finance_close's access_control only
    "otto": ["ops-readers"],  # named by ops_cleanup's legacy access_control only
}
ADMIN_AREA = ("Variables", "Connections", "Pools", "Providers", "Plugins", "Config")


def settings_env() -> dict[str, str]:
    return {
        "AIRFLOW__IDENTITY_AUTH_MANAGER__ROLES": json.dumps(ROLES),
        "AIRFLOW__IDENTITY_AUTH_MANAGER__ROLE_MAPPING": json.dumps(
            {**ROLE_MAPPING, "variable-editors": "VariableEditor"}
        ),
        "AIRFLOW__IDENTITY_AUTH_MANAGER__DAG_GRANTS": json.dumps(DAG_GRANTS),
    }


def put_users(deployment: Deployment) -> None:
    for user, groups in USERS.items():
        deployment.idp.put_user(user, {"name": user.title(), "email": f"{user}@example.com", "groups": groups})


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow_home_authz")
    copy_bundles(home, BUNDLES)
    extra = {**bundle_settings(home, BUNDLES), **install_sql_counter(home), **settings_env()}
    with local_deployment(home, extra, prepare=reserialize) as running:
        put_users(running)
        yield running


@pytest.fixture(scope="module")
def admin(deployment: Deployment) -> httpx.Client:
    client = signed_in(deployment, "alice")
    # The DAGs were serialized before the api-server started, so its DAG index holds them from the first load;
    # poll anyway rather than trust a timing (the index refreshes every ~5 s in the background).
    poll(lambda: dag_ids(client, deployment)[0] == ALL_DAGS, what="the admin lists every serialized DAG")
    return client


@pytest.fixture(scope="module")
def gina(deployment: Deployment, admin: httpx.Client) -> httpx.Client:
    client = signed_in(deployment, "gina")
    poll(lambda: dag_ids(client, deployment)[0], what="the DAG index gives gina's grant some DAG")
    return client


def trigger(client: httpx.Client, deployment: Deployment, dag_id: str) -> httpx.Response:
    return client.post(f"{deployment.url}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})


def run_count(admin: httpx.Client, deployment: Deployment, dag_id: str) -> int:
    response = admin.get(f"{deployment.url}/api/v2/dags/{dag_id}/dagRuns")
    assert response.status_code == 200, response.text
    return int(response.json()["total_entries"])


def menus(client: httpx.Client, deployment: Deployment) -> list[str]:
    response = client.get(f"{deployment.url}/ui/auth/menus")
    assert response.status_code == 200, response.text
    return list(response.json()["authorized_menu_items"])


def test_admin_sees_every_dag(admin: httpx.Client, deployment: Deployment) -> None:
    assert dag_ids(admin, deployment) == (ALL_DAGS, len(ALL_DAGS))
    bundles = {d["dag_id"]: d["bundle_name"] for d in admin.get(f"{deployment.url}/api/v2/dags").json()["dags"]}
    assert bundles["extra_report"] == "extra-bundle" and bundles["analytics_daily"] == "dags-folder"


def test_grant_only_user_lists_only_the_granted_dags(gina: httpx.Client, deployment: Deployment) -> None:
    assert dag_ids(gina, deployment) == (["analytics_daily", "analytics_hourly"], 2)


def test_grant_only_user_runs_granted_dags_and_nothing_else(
    gina: httpx.Client, admin: httpx.Client, deployment: Deployment
) -> None:
    triggered = trigger(gina, deployment, "analytics_daily")
    assert triggered.status_code == 200, triggered.text
    assert triggered.json()["dag_id"] == "analytics_daily"
    assert gina.get(f"{deployment.url}/api/v2/dags/analytics_daily").status_code == 200
    assert gina.get(f"{deployment.url}/api/v2/dags/analytics_hourly/dagRuns").status_code == 200
    assert trigger(gina, deployment, "plain_other").status_code == 403
    assert run_count(admin, deployment, "plain_other") == 0
    assert gina.get(f"{deployment.url}/api/v2/dags/plain_other").status_code == 403
    assert gina.get(f"{deployment.url}/api/v2/dags/finance_close/dagRuns").status_code == 403
    # Runs of every DAG ("~"): only those of the granted DAGs, though the admin's run of ops_cleanup exists.
    assert trigger(admin, deployment, "ops_cleanup").status_code == 200
    runs = gina.get(f"{deployment.url}/api/v2/dags/~/dagRuns")
    assert runs.status_code == 200, runs.text
    assert {run["dag_id"] for run in runs.json()["dag_runs"]} == {"analytics_daily"}
    assert "ops_cleanup" in {
        run["dag_id"] for run in admin.get(f"{deployment.url}/api/v2/dags/~/dagRuns").json()["dag_runs"]
    }
    # A grant never gives a global right: Op on analytics_* is not Op's variables, connections or pools.
    for path in ("/api/v2/variables", "/api/v2/connections", "/api/v2/pools", "/api/v2/config"):
        assert gina.get(f"{deployment.url}{path}").status_code == 403, path


def test_grant_only_user_menu_has_dags_and_no_admin_entries(gina: httpx.Client, deployment: Deployment) -> None:
    items = menus(gina, deployment)
    assert "Dags" in items
    assert not set(ADMIN_AREA) & set(items), items


def test_grant_by_tag(deployment: Deployment) -> None:
    tess = signed_in(deployment, "tess")
    assert dag_ids(tess, deployment) == (["analytics_daily"], 1)
    assert tess.get(f"{deployment.url}/api/v2/dags/analytics_daily").status_code == 200
    assert tess.get(f"{deployment.url}/api/v2/dags/analytics_hourly").status_code == 403  # glob, not tag
    assert trigger(tess, deployment, "analytics_daily").status_code == 403  # Viewer's rights only


def test_grant_by_bundle(deployment: Deployment) -> None:
    bea = signed_in(deployment, "bea")
    assert dag_ids(bea, deployment) == (["extra_report"], 1)
    assert bea.get(f"{deployment.url}/api/v2/dags/extra_report").status_code == 200
    assert bea.get(f"{deployment.url}/api/v2/dags/plain_other").status_code == 403


def test_custom_role_edits_variables_but_cannot_trigger(admin: httpx.Client, deployment: Deployment) -> None:
    vic = signed_in(deployment, "vic")
    key = f"authz_{uuid.uuid4().hex[:8]}"
    created = vic.post(f"{deployment.url}/api/v2/variables", json={"key": key, "value": "one"})
    assert created.status_code == 201, created.text
    patched = vic.patch(f"{deployment.url}/api/v2/variables/{key}", json={"key": key, "value": "two"})
    assert patched.status_code == 200, patched.text
    assert admin.get(f"{deployment.url}/api/v2/variables/{key}").json()["value"] == "two"
    assert "Variables" in menus(vic, deployment)
    # Viewer underneath: every DAG readable, none triggerable, and the refused trigger created nothing.
    assert dag_ids(vic, deployment) == (ALL_DAGS, len(ALL_DAGS))
    assert trigger(vic, deployment, "plain_other").status_code == 403
    assert run_count(admin, deployment, "plain_other") == 0
    assert vic.get(f"{deployment.url}/api/v2/connections").status_code == 403


def test_access_control_group_reads_its_dag_only(admin: httpx.Client, deployment: Deployment) -> None:
    fay = signed_in(deployment, "fay")
    assert dag_ids(fay, deployment) == (["finance_close"], 1)
    assert fay.get(f"{deployment.url}/api/v2/dags/finance_close").status_code == 200
    assert fay.get(f"{deployment.url}/api/v2/dags/finance_close/dagRuns").status_code == 200
    assert trigger(fay, deployment, "finance_close").status_code == 403  # DAGs.can_read, not DAG Runs.can_create
    assert run_count(admin, deployment, "finance_close") == 0
    assert fay.get(f"{deployment.url}/api/v2/dags/plain_other").status_code == 403
    assert fay.get(f"{deployment.url}/api/v2/variables").status_code == 403
    assert "Dags" in menus(fay, deployment)


def test_legacy_access_control_form(deployment: Deployment) -> None:
    otto = signed_in(deployment, "otto")
    assert dag_ids(otto, deployment) == (["ops_cleanup"], 1)
    assert otto.get(f"{deployment.url}/api/v2/dags/ops_cleanup/dagRuns").status_code == 200
    assert trigger(otto, deployment, "ops_cleanup").status_code == 403


def statements(client: httpx.Client, deployment: Deployment, path: str) -> tuple[int, list[str]]:
    """SQL statements the api-server ran for one request (counted by tests/support/sql_counter_plugin.py)."""
    tag = uuid.uuid4().hex
    response = client.get(f"{deployment.url}{path}", headers={"x-sql-tag": tag})
    assert response.status_code == 200, response.text
    return int(response.headers["x-sql-statements"]), httpx.get(f"{deployment.url}/sql-counter/{tag}").json()


@pytest.mark.parametrize(
    "path", ["/api/v2/dags/analytics_daily", "/api/v2/dags/analytics_daily/dagRuns", "/api/v2/dags?limit=1"]
)
def test_authorization_adds_no_query(
    admin: httpx.Client, gina: httpx.Client, deployment: Deployment, path: str
) -> None:
    """An Admin's answer is a global permission; gina's goes through grants and the DAG index. Both must cost the
    same SQL: the index is read in memory, never queried on the request path."""
    for client in (admin, gina):
        statements(client, deployment, path)  # warm-up: first-request caches
    admin_count, admin_sql = statements(admin, deployment, path)
    gina_count, gina_sql = statements(gina, deployment, path)
    assert admin_count > 0  # the counter does count this request
    assert gina_count == admin_count, "\n".join(["admin:", *admin_sql, "gina:", *gina_sql])


def test_access_control_ignored_when_not_honoured(deployment: Deployment, tmp_path: Path) -> None:
    """honour_dag_access_control = False: access_control names no one, so a user whose only access was such an
    entry has no access at all and is refused at sign-in (the no-role page), while grants keep working."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    idp = start_local_idp(redirect_uris=[f"{base}/auth/callback"])
    env = {
        **deployment.server.env,
        "AIRFLOW__API__BASE_URL": f"{base}/",
        "AIRFLOW__IDENTITY_AUTH_MANAGER__ISSUER": idp.issuer,
        "AIRFLOW__IDENTITY_AUTH_MANAGER__HONOUR_DAG_ACCESS_CONTROL": "False",
    }
    server = start_api_server(deployment.home, env, port=port)
    try:
        second = Deployment(server=server, idp=idp, home=deployment.home)
        put_users(second)
        for user in ("fay", "otto"):
            browser, callback = sign_in(second, user)
            assert callback.status_code == 403, callback.text
            assert USERS[user][0] in callback.text and "role_mapping" in callback.text
            assert not browser.cookies.get("_token")
        gina = signed_in(second, "gina")
        assert dag_ids(gina, second) == (["analytics_daily", "analytics_hourly"], 2)
        alice = signed_in(second, "alice")
        assert alice.get(f"{base}/api/v2/dags/finance_close").status_code == 200
    finally:
        server.stop()
        idp.stop()


def test_a_dag_tagged_later_is_granted_without_a_restart(deployment: Deployment) -> None:
    """Tags come from the DAG index, which refreshes in the background: a new DAG with the tag analytics shows up
    for the tag grant's member without a restart (the last test: it changes the module's DAG set)."""
    tess = signed_in(deployment, "tess")
    folder = Path(deployment.server.env["AIRFLOW__CORE__DAGS_FOLDER"])
    header = (folder / "plain.py").read_text().split("with DAG(", 1)[0]
    (folder / "weekly.py").write_text(
        header + 'with DAG("weekly_summary", schedule=None, tags=["analytics"]):\n    EmptyOperator(task_id="noop")\n'
    )
    reserialize(deployment.server.env)
    expected = ["analytics_daily", "weekly_summary"]
    poll(lambda: dag_ids(tess, deployment)[0] == expected, what="tess lists the new weekly_summary", timeout=30)
    assert dag_ids(tess, deployment) == (expected, 2)
    assert tess.get(f"{deployment.url}/api/v2/dags/weekly_summary").status_code == 200
