"""DAG file for tests/azure/test_fence_holes.py: one DAG per case, read from the JSON file the test writes.

Not collected by pytest (no ``test_`` prefix); the test copies it into a temporary DAGs folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from airflow.sdk import DAG

from airflow_identity_provider.azure.operators import AzureTemplateDeploymentOperator, AzureTemplateWhatIfOperator

OPERATORS = {"deploy": AzureTemplateDeploymentOperator, "what_if": AzureTemplateWhatIfOperator}

for case in json.loads(Path(os.environ["FENCE_HOLES_CASES"]).read_text()):
    with DAG(case["dag_id"], schedule=None, catchup=False) as dag:
        OPERATORS[case.get("operator", "deploy")](task_id="deploy", retries=0, **case["kwargs"])
    globals()[case["dag_id"]] = dag
