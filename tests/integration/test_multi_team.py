"""Airflow's multi-team mode ([core] multi_team) through a real ``airflow api-server`` and the real local IdP.

Teams exist in the metadata DB (``airflow teams create``); a DAG bundle belongs to a team through its
``team_name`` in ``[dag_processor] dag_bundle_config_list`` (the dag_bundle_team table), a connection through its
``team_name``. ``team_mapping`` gives the members of a directory group a team; the core then asks the auth manager
about each team-owned DAG and connection with that team's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from dev.airflow_server import free_port, start_component
from tests.support.dags import Bundle, airflow_cli, bundle_settings, copy_bundles, dag_ids, poll, reserialize, signed_in
from tests.support.deployment import ROLE_MAPPING, Deployment, local_deployment
from tests.support.versions import needs_multi_team

pytestmark = [pytest.mark.integration, needs_multi_team]

BUNDLES = [
    Bundle("dags-folder", "extra"),  # extra_report: no team
    Bundle("analytics-bundle", "team_analytics", team="analytics"),  # analytics_team_load
    Bundle("finance-bundle", "team_finance", team="finance"),  # finance_team_books
]
ALL_DAGS = ["analytics_team_load", "extra_report", "finance_team_books"]
CONNECTIONS = {"conn_analytics": "analytics", "conn_finance": "finance", "conn_global": None}
USERS = {"tina": ["grp-analytics"], "olaf": ["grp-other"]}  # both Op; only tina is in a team
TEAM_MAPPING = {"grp-analytics": "analytics"}


def settings_env() -> dict[str, str]:
    return {
        "AIRFLOW__CORE__MULTI_TEAM": "True",
        "AIRFLOW__IDENTITY_AUTH_MANAGER__ROLE_MAPPING": json.dumps(
            {**ROLE_MAPPING, "grp-analytics": "Op", "grp-other": "Op"}
        ),
        "AIRFLOW__IDENTITY_AUTH_MANAGER__TEAM_MAPPING": json.dumps(TEAM_MAPPING),
    }


def prepare(env: dict[str, str]) -> None:
    # Creates every team the bundle config names (what `airflow teams create` does one by one) in one command,
    # before reserialize, which refuses a bundle whose team does not exist. The api-server's start then checks
    # that team_mapping's teams exist too.
    airflow_cli(env, "teams", "sync")
    reserialize(env)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow_home_teams")
    copy_bundles(home, BUNDLES)
    # Starting at all is the first check: with multi_team on, an auth manager without is_authorized_team used to
    # stop the api-server with NotImplementedError.
    with local_deployment(home, {**bundle_settings(home, BUNDLES), **settings_env()}, prepare=prepare) as running:
        for user, groups in USERS.items():
            running.idp.put_user(user, {"name": user.title(), "groups": groups})
        yield running


@pytest.fixture(scope="module")
def admin(deployment: Deployment) -> httpx.Client:
    client = signed_in(deployment, "alice")
    for conn_id, team in CONNECTIONS.items():
        created = client.post(
            f"{deployment.url}/api/v2/connections",
            json={"connection_id": conn_id, "conn_type": "http", "host": "example.com", "team_name": team},
        )
        assert created.status_code == 201, created.text
    return client


def connection_ids(client: httpx.Client, deployment: Deployment) -> list[str]:
    response = client.get(f"{deployment.url}/api/v2/connections")
    assert response.status_code == 200, response.text
    return sorted(c["connection_id"] for c in response.json()["connections"])


def test_admin_sees_every_team(admin: httpx.Client, deployment: Deployment) -> None:
    poll(lambda: dag_ids(admin, deployment)[0] == ALL_DAGS, what="the admin lists every serialized DAG")
    assert dag_ids(admin, deployment) == (ALL_DAGS, 3)
    assert connection_ids(admin, deployment) == sorted(CONNECTIONS)
    teams = {
        c["connection_id"]: c["team_name"]
        for c in admin.get(f"{deployment.url}/api/v2/connections").json()["connections"]
    }
    assert teams == CONNECTIONS


def test_team_member_sees_their_team_and_shared_resources(admin: httpx.Client, deployment: Deployment) -> None:
    tina = signed_in(deployment, "tina")
    assert dag_ids(tina, deployment) == (["analytics_team_load", "extra_report"], 2)
    assert tina.get(f"{deployment.url}/api/v2/dags/analytics_team_load").status_code == 200
    assert tina.get(f"{deployment.url}/api/v2/dags/finance_team_books").status_code == 403
    assert connection_ids(tina, deployment) == ["conn_analytics", "conn_global"]
    assert tina.get(f"{deployment.url}/api/v2/connections/conn_analytics").status_code == 200
    assert tina.get(f"{deployment.url}/api/v2/connections/conn_finance").status_code == 403


def test_non_member_sees_no_team_resource(admin: httpx.Client, deployment: Deployment) -> None:
    olaf = signed_in(deployment, "olaf")
    assert dag_ids(olaf, deployment) == (["extra_report"], 1)
    assert olaf.get(f"{deployment.url}/api/v2/dags/analytics_team_load").status_code == 403
    assert connection_ids(olaf, deployment) == ["conn_global"]
    assert olaf.get(f"{deployment.url}/api/v2/connections/conn_analytics").status_code == 403


def test_team_missing_from_the_db_stops_the_api_server_with_one_line(deployment: Deployment) -> None:
    port = free_port()
    env = {
        **deployment.server.env,
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}/",
        "AIRFLOW__IDENTITY_AUTH_MANAGER__TEAM_MAPPING": json.dumps({**TEAM_MAPPING, "grp-ghosts": "ghosts"}),
    }
    component = start_component(
        "api-server-missing-team", ["api-server", "--host", "127.0.0.1", "--port", str(port)], env, deployment.home
    )
    try:
        component.process.wait(timeout=60)
    finally:
        component.stop()
    log = component.log_tail(20000)
    lines = [line for line in log.splitlines() if "team_mapping:" in line]
    assert lines and "ghosts" in lines[0] and "airflow teams create" in lines[0], log[-4000:]
    assert "Traceback" not in log, log[-4000:]
