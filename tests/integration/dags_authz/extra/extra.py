"""The only DAG of its bundle: reached by a grant on the bundle, or (multi-team test) by nobody's team."""

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("extra_report", schedule=None):
    EmptyOperator(task_id="noop")
