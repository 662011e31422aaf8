"""A failed ARM request as an Airflow task failure whose message carries ARM's own words."""

from __future__ import annotations

from typing import NoReturn

from airflow.sdk.exceptions import AirflowException

from airflow_identity_provider.azure.rules.arm_json import arm_error_text

__all__ = ["raise_arm_error"]


def raise_arm_error(what: str, err: BaseException) -> NoReturn:
    """Re-raise an ARM error as an AirflowException whose message carries ARM's text verbatim."""
    raise AirflowException(f"Azure Resource Manager refused to {what}. {arm_error_text(err)}") from err
