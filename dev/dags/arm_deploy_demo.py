"""Demo: create a resource group, preview and deploy a storage account template, tag the account.

Every write goes through the least-privilege preflight: the connection ``azure_resource_manager_default``
(set by ``dev/demo``) may only write inside ``rg-demo``. The access report of each task is in its XCom
``access_report``; the deployment's outputs are the deploy task's return value.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_identity_provider.azure.operators import (
    AzureResourceGroupCreateOrUpdateOperator,
    AzureTagsUpdateOperator,
    AzureTemplateDeploymentOperator,
    AzureTemplateWhatIfOperator,
)

RESOURCE_GROUP = "rg-demo"
TEMPLATE = {
    "template_file": "templates/storage_account.json",  # relative to this file
    "parameters": {"storageAccountName": "stairflowdemo"},
}

with DAG(
    dag_id="arm_deploy_demo",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["azure", "demo"],
    doc_md=__doc__,
):
    create_group = AzureResourceGroupCreateOrUpdateOperator(
        task_id="create_resource_group",
        resource_group_name=RESOURCE_GROUP,
        location="westeurope",
        tags={"env": "demo", "owner": "airflow"},
    )
    # A gate as well as a preview: fail before the deploy if the template would delete anything.
    preview = AzureTemplateWhatIfOperator(
        task_id="what_if",
        resource_group_name=RESOURCE_GROUP,
        fail_on_delete=True,
        fail_on_rbac_change=True,
        **TEMPLATE,
    )
    deploy = AzureTemplateDeploymentOperator(
        task_id="deploy_storage",
        resource_group_name=RESOURCE_GROUP,
        deferrable=True,  # the triggerer polls; no worker slot is held while ARM deploys
        poll_interval=2,
        **TEMPLATE,
    )
    tag = AzureTagsUpdateOperator(
        task_id="tag_storage_account",
        scope=(
            "{% set out = ti.xcom_pull(task_ids='deploy_storage') %}"
            "{{ out.resourceGroupId }}/providers/Microsoft.Storage/storageAccounts/{{ out.storageAccountName }}"
        ),
        tags={"deployed_by": "{{ dag.dag_id }}", "run": "{{ run_id }}"},
    )
    create_group >> preview >> deploy >> tag
