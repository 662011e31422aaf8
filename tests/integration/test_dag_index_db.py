"""DagIndex against a real Airflow metadata database (SQLite in a temporary AIRFLOW_HOME).

DAG files are serialized by ``airflow dags reserialize``; the index runs in a subprocess whose environment points
Airflow at that home before Airflow is imported (as ``test_demo_dags`` does). SQL statements are counted with
SQLAlchemy's ``before_cursor_execute`` on every engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from dev.airflow_server import airflow_bin, airflow_env, migrate

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# Not this project's auth manager: the CLI loads the configured one, and this test is about the index only.
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"

DAG_FILES = {
    "finance.py": """
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG

        with DAG(
            "finance_daily",
            schedule=None,
            tags=["finance", "daily"],
            access_control={"finance-team": {"DAGs": {"can_read"}, "DAG Runs": {"can_create"}}},
        ):
            EmptyOperator(task_id="noop")
    """,
    "ops.py": """
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG

        with DAG("ops_legacy", schedule=None, access_control={"ops": {"can_read", "can_edit"}}):
            EmptyOperator(task_id="noop")
    """,
    "plain.py": """
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG

        with DAG("plain", schedule=None):
            EmptyOperator(task_id="noop")
    """,
}
# The finance DAG after an edit: its access_control changes, and it is stored compressed this time.
FINANCE_EDITED = DAG_FILES["finance.py"].replace('{"DAGs": {"can_read"},', '{"DAGs": {"can_read", "can_edit"},')

SCRIPT = r"""
import json, os, subprocess, sys
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from airflow_identity_provider.auth.catalog.dag_index import DagIndex

statements = []
event.listen(Engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: statements.append(statement))


def measured(call):
    statements.clear()
    value = call()
    return value, list(statements)


def plain(value):
    # JSON with the container types kept visible: sets must come back as sets, not lists.
    if isinstance(value, dict):
        return {"dict": {k: plain(v) for k, v in value.items()}}
    if isinstance(value, (set, frozenset)):
        return {"set": sorted(value)}
    if isinstance(value, (list, tuple)):
        return {"list": [plain(v) for v in value]}
    return value


def facts(index):
    return {
        dag_id: {"tags": sorted(f.tags), "bundle": f.bundle, "access_control": plain(f.access_control)}
        for dag_id, f in index.all().items()
    }


out = {}
index = DagIndex(refresh_seconds=3600)  # the thread stays idle: refreshes are driven by hand to count them
_, out["start_sql"] = measured(index.start)
out["generation_after_start"] = index.generation
out["facts"] = facts(index)

out["steady_changed"], out["steady_sql"] = measured(index.refresh)
out["generation_after_steady"] = index.generation
_, out["get_sql"] = measured(lambda: [index.get(d) for d in ("finance_daily", "ops_legacy", "plain", "nope")])
_, out["all_sql"] = measured(lambda: dict(index.all()))

Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], "finance.py").write_text(sys.argv[1])
env = dict(os.environ, AIRFLOW__CORE__COMPRESS_SERIALIZED_DAGS="True")
subprocess.run([sys.argv[2], "dags", "reserialize"], env=env, check=True, capture_output=True, timeout=120)
out["edit_changed"], out["edit_sql"] = measured(index.refresh)
out["generation_after_edit"] = index.generation
out["facts_after_edit"] = facts(index)
out["steady_after_edit_sql"] = measured(index.refresh)[1]
index.stop()

from airflow.models.serialized_dag import SerializedDagModel
from airflow.utils.session import create_session

with create_session() as session:
    rows = session.execute(select(SerializedDagModel.dag_id, SerializedDagModel._data_compressed.isnot(None)))
    out["compressed"] = sorted(dag_id for dag_id, compressed in rows if compressed)
print("RESULT " + json.dumps(out), flush=True)
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("airflow_home")
    extra = {
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        # Otherwise the second reserialize, seconds after the first, leaves the serialized rows as they are.
        "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "0",
    }
    env = airflow_env(home, port=0, extra=extra)
    dags = Path(env["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    for name, source in DAG_FILES.items():
        (dags / name).write_text(textwrap.dedent(source))
    migrate(env)
    reserialize = subprocess.run(
        [airflow_bin(), "dags", "reserialize"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert reserialize.returncode == 0, (reserialize.stdout + reserialize.stderr)[-4000:]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, textwrap.dedent(FINANCE_EDITED), airflow_bin()],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and len(lines) == 1, (proc.stdout + proc.stderr)[-6000:]
    parsed: dict[str, Any] = json.loads(lines[0][len("RESULT ") :])
    return parsed


def sets(**resources: list[str]) -> dict[str, Any]:
    return {"dict": {name: {"set": sorted(actions)} for name, actions in resources.items()}}


def test_facts_from_serialized_dags(result: dict[str, Any]) -> None:
    assert result["facts"] == {
        "finance_daily": {
            "tags": ["daily", "finance"],
            "bundle": "dags-folder",
            "access_control": {"dict": {"finance-team": sets(**{"DAGs": ["can_read"], "DAG Runs": ["can_create"]})}},
        },
        # The Task SDK's DAG converts the legacy set form to {"DAGs": actions} before serialization (3.1, 3.3).
        "ops_legacy": {
            "tags": [],
            "bundle": "dags-folder",
            "access_control": {"dict": {"ops": sets(DAGs=["can_read", "can_edit"])}},
        },
        "plain": {"tags": [], "bundle": "dags-folder", "access_control": None},
    }
    assert result["generation_after_start"] == 1


def test_first_load_reads_the_serialized_dags_once(result: dict[str, Any]) -> None:
    # The summary query, then one chunk of serialized rows for the three new DAGs.
    assert len(result["start_sql"]) == 2, result["start_sql"]


def test_steady_state_refresh_is_one_query(result: dict[str, Any]) -> None:
    assert len(result["steady_sql"]) == 1, result["steady_sql"]
    assert "serialized_dag.data" not in result["steady_sql"][0]  # only hashes, never the JSON
    assert result["steady_changed"] is False
    assert result["generation_after_steady"] == 1
    assert len(result["steady_after_edit_sql"]) == 1, result["steady_after_edit_sql"]


def test_reads_do_no_io(result: dict[str, Any]) -> None:
    assert result["get_sql"] == []
    assert result["all_sql"] == []


def test_edited_dag_is_reread_alone(result: dict[str, Any]) -> None:
    assert len(result["edit_sql"]) == 2, result["edit_sql"]
    assert result["edit_changed"] is True
    assert result["generation_after_edit"] == 2
    assert result["compressed"] == ["finance_daily"]  # the re-read went through data_compressed
    edited = result["facts_after_edit"]
    assert edited["finance_daily"]["access_control"] == {
        "dict": {"finance-team": sets(**{"DAGs": ["can_edit", "can_read"], "DAG Runs": ["can_create"]})}
    }
    assert {k: v for k, v in edited.items() if k != "finance_daily"} == {
        k: v for k, v in result["facts"].items() if k != "finance_daily"
    }
