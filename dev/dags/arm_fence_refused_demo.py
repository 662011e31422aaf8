"""Demo: a deployment aimed outside the connection's fence is refused before ARM hears of it.

The connection ``azure_resource_manager_default`` allows writes only inside ``rg-demo``; this DAG targets
``rg-outside``. The task fails in the preflight with a message naming the connection, its
``allowed_scopes`` and how to change them; the ARM emulator receives no request for ``rg-outside``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_identity_provider.azure.operators import AzureTemplateDeploymentOperator

with DAG(
    dag_id="arm_fence_refused_demo",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["azure", "demo"],
    default_args={"retries": 0},
    doc_md=__doc__,
):
    AzureTemplateDeploymentOperator(
        task_id="deploy_outside_fence",
        resource_group_name="rg-outside",
        template_file="templates/storage_account.json",
        parameters={"storageAccountName": "stoutside"},
    )
