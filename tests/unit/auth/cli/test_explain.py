"""``explain --claims ... [--dag ...]``: the roles and the group behind each, teams, grants, and per DAG every
permission with its reason (role, dag_grants entry, access_control entry); refusals say which setting to change."""

from __future__ import annotations

import argparse
import json

import pytest

from airflow_identity_provider.auth.catalog.dag_index import DagFacts
from airflow_identity_provider.auth.cli import explain
from tests.unit.auth.cli.conftest import FakeDb

GRANTS = [{"groups": ["analytics-operators"], "dags": ["analytics_*"], "role": "Op"}]
FINANCE = DagFacts("finance_daily", frozenset({"finance"}), "dags-folder", {"finance-team": {"DAGs": {"can_read"}}})
ANALYTICS = DagFacts("analytics_daily", frozenset({"analytics"}), "dags-folder", None)


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch, dag_db: FakeDb) -> None:
    values = {
        "issuer": "https://idp.example.com/",
        "client_id": "airflow",
        "role_mapping": json.dumps({"airflow-ops": "Op", "airflow-viewers": "Viewer"}),
        "dag_grants": json.dumps(GRANTS),
        "team_mapping": json.dumps({"analytics-operators": "analytics"}),
    }
    for key, value in values.items():
        monkeypatch.setenv(f"AIRFLOW__IDENTITY_AUTH_MANAGER__{key.upper()}", value)
    dag_db.facts = [FINANCE, ANALYTICS]


def run(groups: list[str], dag: str | None = None) -> str:
    claims = json.dumps({"sub": "u1", "name": "Una", "groups": groups})
    explain.explain(argparse.Namespace(claims=claims, dag=dag, provider=None))
    return ""


def lines_for(out: str, permission: str) -> str:
    return next(line for line in out.splitlines() if line.strip().startswith(permission))


def test_role_and_the_group_that_gave_it(capsys: pytest.CaptureFixture[str]) -> None:
    run(["marketing", "airflow-ops"], dag="finance_daily")
    out = capsys.readouterr().out
    assert "matched: airflow-ops (role_mapping)" in out and "marketing" not in out.split("matched:")[1]
    assert "role:    Op (group airflow-ops)" in out
    assert "teams:   (none)" in out
    assert "dags:    every DAG (2 in the index): dag:GET from role Op (group airflow-ops)" in out
    assert "dag:     finance_daily (bundle dags-folder; tags finance; access_control entries finance-team)" in out
    assert "role Op (group airflow-ops)" in lines_for(out, "dag.run:GET,POST,PUT,DELETE,MENU")


def test_grant_gives_dag_rights_on_matching_dags_only(capsys: pytest.CaptureFixture[str]) -> None:
    grant = "dag_grants[0]: Op for analytics-operators on dags analytics_*"
    run(["analytics-operators"], dag="analytics_daily")
    out = capsys.readouterr().out
    assert "role:    none (access through dag_grants or access_control only)" in out
    assert "teams:   analytics (group analytics-operators)" in out
    assert f"grant:   {grant}" in out
    assert "dags:    1 of 2 DAGs through dag_grants and access_control: analytics_daily" in out
    assert lines_for(out, "dag.run:").endswith(grant)

    run(["analytics-operators"], dag="finance_daily")
    out = capsys.readouterr().out
    assert "(nothing: this user may not see or change this DAG)" in out


def test_access_control_entry_alone_lets_the_user_in(capsys: pytest.CaptureFixture[str]) -> None:
    run(["finance-team"], dag="finance_daily")
    out = capsys.readouterr().out
    assert "matched: finance-team (access_control)" in out
    assert "dags:    1 of 2 DAGs through dag_grants and access_control: finance_daily" in out
    assert "access_control of finance_daily entry 'finance-team'" in lines_for(out, "dag:GET")
    assert "dag.run:GET" in out and "dag.run:POST" not in out  # can_read: what a Viewer may do on the DAG


def test_refused_user_is_told_which_setting_to_change(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["marketing"])
    message = str(exit_info.value.code)
    assert message.startswith("refused: no setting names any of the groups (marketing)")
    assert '[identity_auth_manager] role_mapping (e.g. {"marketing": "Viewer"})' in message
    assert "default_role" in message and "dag_grants" in message
    assert "role:    none: sign-in refused" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exit_info:
        run([])
    assert "no groups in the 'groups' claim" in str(exit_info.value.code)
    assert "[identity_auth_manager] groups_claim" in str(exit_info.value.code)


def test_unknown_dag_says_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    run(["airflow-viewers", "analytics-operators"], dag="analytics_new")
    out = capsys.readouterr().out
    assert "dag:     analytics_new: not in the DAG index: the metadata DB has no DAG with this id" in out
    assert "dag-processor" in out
    # By id alone: the glob of the grant still matches, as it does for the api-server.
    assert "dag_grants[0]" in lines_for(out, "dag.run:POST")


def test_database_down_is_one_note_not_a_traceback(dag_db: FakeDb, capsys: pytest.CaptureFixture[str]) -> None:
    dag_db.error = RuntimeError("could not connect to server\nsecond line")
    run(["airflow-ops"], dag="finance_daily")
    captured = capsys.readouterr()
    assert "note:    cannot read the DAG index from the metadata DB (RuntimeError: could not connect" in captured.out
    assert "second line" not in captured.out and "Traceback" not in captured.out + captured.err
    assert "finance_daily: not in the DAG index: the DAG index could not be read" in captured.out
    assert "role Op (group airflow-ops)" in lines_for(captured.out, "dag:GET")
