"""The access report: the pure builder (every mapped group and role, globally and per DAG, with reasons), its
JSON / CSV / HTML renderings (names from DAG files are hostile input), and the thin ``access-report`` command."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_identity_provider.auth.catalog.dag_index import DagFacts
from airflow_identity_provider.auth.cli import access_report
from airflow_identity_provider.auth.cli.report_formats import CSV_HEADER, render_csv, render_html, render_json
from airflow_identity_provider.auth.rules.access import AccessPolicy
from airflow_identity_provider.auth.rules.access_report import build_report
from airflow_identity_provider.auth.rules.settings import parse_settings
from tests.unit.auth.cli.conftest import FakeDb

EVIL = "<script>alert(1)</script>"
GRANT = "dag_grants[0]: Op for analytics-operators on dags analytics_*"
SETTINGS = {
    "issuer": "https://idp.example.com/",
    "client_id": "airflow",
    "roles": json.dumps({"VariableEditor": {"extends": "Viewer", "allow": ["variable:*"]}}),
    "role_mapping": json.dumps({"airflow-ops": "Op", EVIL: "Viewer", '=HYPERLINK("http://x")': "Viewer"}),
    "default_role": "Viewer",
    "dag_grants": json.dumps([{"groups": ["analytics-operators"], "dags": ["analytics_*"], "role": "Op"}]),
    "team_mapping": json.dumps({"analytics-operators": "analytics"}),
}
DAGS = {
    facts.dag_id: facts
    for facts in (
        DagFacts("analytics_daily", frozenset({"analytics"}), "dags-folder", None),
        DagFacts(
            "finance_daily",
            frozenset({"finance"}),
            "dags-folder",
            {
                "finance-team": {"DAGs": {"can_read"}, "DAG Runs": {"can_create"}},
                "op": {"DAGs": {"can_delete"}},  # a role name (case-insensitive): reported under the role Op
                "<img src=x onerror=alert(1)>": {"DAGs": {"can_read"}},
                "broken": {"DAGs": {"can_fly"}},
            },
        ),
    )
}


def policy() -> AccessPolicy:
    return parse_settings(SETTINGS).access


def report() -> dict[str, Any]:
    return build_report({"default": ("Staff", policy())}, DAGS, generated_at="2025-01-31T12:00:00+00:00")


def principal(built: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next(p for p in built["providers"][0]["principals"] if p["kind"] == kind and p["name"] == name)


def sources(entries: list[dict[str, Any]], permission: str) -> list[str]:
    return next(e["sources"] for e in entries if e["permission"] == permission)


def test_report_covers_mapped_groups_grant_groups_access_control_principals_and_every_role() -> None:
    built = report()
    assert built["report_version"] == 1 and built["generated_at"] == "2025-01-31T12:00:00+00:00"
    principals = built["providers"][0]["principals"]
    assert [p["name"] for p in principals if p["kind"] == "group"] == sorted(
        [
            "airflow-ops",
            EVIL,
            '=HYPERLINK("http://x")',
            "analytics-operators",
            "finance-team",
            "<img src=x onerror=alert(1)>",
        ]
    )
    assert [p["name"] for p in principals if p["kind"] == "role"] == ["Viewer", "User", "Op", "Admin", "VariableEditor"]
    assert principal(built, "default", "*")["roles"] == ["Viewer"]

    ops = principal(built, "group", "airflow-ops")
    assert ops["named_by"] == ["role_mapping"] and ops["roles"] == ["Op"]
    assert sources(ops["global"], "variable:GET") == ["role Op (role_mapping: airflow-ops)"]
    # The access_control entry "op" names the role Op, so members of a group mapped to Op get it too.
    assert sources(ops["dags"]["finance_daily"], "dag:DELETE") == ["access_control of finance_daily entry 'op'"]

    analytics = principal(built, "group", "analytics-operators")
    assert analytics["named_by"] == ["dag_grants", "team_mapping"] and analytics["teams"] == ["analytics"]
    assert analytics["roles"] == [] and analytics["global"] == []
    assert list(analytics["dags"]) == ["analytics_daily"]
    assert sources(analytics["dags"]["analytics_daily"], "dag.run:POST") == [GRANT]

    finance = principal(built, "group", "finance-team")
    assert finance["named_by"] == ["access_control"]
    assert sources(finance["dags"]["finance_daily"], "dag.run:POST") == [
        "access_control of finance_daily entry 'finance-team'"
    ]
    assert "dag.run:PUT" not in {e["permission"] for e in finance["dags"]["finance_daily"]}

    editor = principal(built, "role", "VariableEditor")
    assert sources(editor["global"], "variable:DELETE") == ["role VariableEditor"] and editor["dags"] == {}
    assert built["dags"]["finance_daily"]["access_control"] == sorted(
        ["finance-team", "op", "<img src=x onerror=alert(1)>"]
    )
    assert "broken" in built["dags"]["finance_daily"]["problems"][0]


def test_json_is_the_report_itself() -> None:
    built = report()
    assert json.loads(render_json(built)) == built


def test_csv_has_one_row_per_permission_and_reason() -> None:
    rows = list(csv.reader(io.StringIO(render_csv(report()))))
    assert tuple(rows[0]) == CSV_HEADER
    assert ["default", "group", "analytics-operators", "analytics_daily", "dag.run:POST", GRANT] in rows
    assert ["default", "group", "airflow-ops", "*", "variable:GET", "role Op (role_mapping: airflow-ops)"] in rows
    assert ["default", "default", "*", "*", "dag:GET", "role Viewer (default_role)"] in rows
    # A spreadsheet would run this cell as a formula: it is written as text.
    assert any(row[2] == '\'=HYPERLINK("http://x")' for row in rows)
    assert not any(cell.startswith("=") for row in rows for cell in row)


def test_html_is_one_page_with_every_name_escaped() -> None:
    page = render_html(report())
    assert page.startswith("<!doctype html>") and "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "src=" not in page.replace("src=x", "")  # nothing loads from anywhere: self-contained
    assert GRANT.replace("*", "") in page.replace("*", "") and "analytics_daily" in page


def test_command_writes_the_chosen_format(
    dag_db: FakeDb, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in SETTINGS.items():
        monkeypatch.setenv(f"AIRFLOW__IDENTITY_AUTH_MANAGER__{key.upper()}", value)
    dag_db.facts = list(DAGS.values())
    target = tmp_path / "access.csv"
    access_report.access_report(argparse.Namespace(format="csv", provider=None, output=str(target)))
    assert f"default,group,analytics-operators,analytics_daily,dag.run:POST,{GRANT}" in target.read_text()
    assert "wrote " in capsys.readouterr().err

    access_report.access_report(argparse.Namespace(format="json", provider=None, output=None))
    assert sorted(json.loads(capsys.readouterr().out)["dags"]) == ["analytics_daily", "finance_daily"]


def test_command_fails_loudly_when_the_dag_index_cannot_be_read(
    dag_db: FakeDb, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in SETTINGS.items():
        monkeypatch.setenv(f"AIRFLOW__IDENTITY_AUTH_MANAGER__{key.upper()}", value)
    dag_db.error = RuntimeError("no such table: dag")
    with pytest.raises(SystemExit) as exit_info:
        access_report.access_report(argparse.Namespace(format="json", provider=None, output=None))
    assert "cannot read the DAG index" in str(exit_info.value.code)
    written = json.loads(capsys.readouterr().out)  # still written, and says what it lacks
    assert written["dags"] == {} and "no such table: dag" in written["warnings"][0]


def test_registered_command_parses_its_arguments_and_loads_its_function(
    dag_db: FakeDb, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow_identity_provider.auth.cli import get_identity_cli_commands

    for key, value in SETTINGS.items():
        monkeypatch.setenv(f"AIRFLOW__IDENTITY_AUTH_MANAGER__{key.upper()}", value)
    (group,) = get_identity_cli_commands()
    commands = {command.name: command for command in group.subcommands}
    assert sorted(commands) == ["access-report", "check-config", "explain", "login", "role-table"]
    parser = argparse.ArgumentParser()
    for arg in commands["access-report"].args:
        arg.add_to_parser(parser)
    target = tmp_path / "report.html"
    args = parser.parse_args(["--format", "html", "--output", str(target)])
    commands["access-report"].func(args)  # the lazy import path resolves to the command
    assert target.read_text().startswith("<!doctype html>")
    with pytest.raises(SystemExit):
        parser.parse_args(["--format", "xml"])
    explain_parser = argparse.ArgumentParser()
    for arg in commands["explain"].args:
        arg.add_to_parser(explain_parser)
    assert explain_parser.parse_args(["--claims", "{}", "--dag", "d1"]).dag == "d1"
