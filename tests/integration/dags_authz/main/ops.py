"""access_control in the legacy set form (actions on DAGs), readable by the group ops-readers."""

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("ops_cleanup", schedule=None, access_control={"ops-readers": {"can_read"}}):
    EmptyOperator(task_id="noop")
