"""Airflow imports auth managers and providers from every CLI command and DAG files import operators at
parse time: none of that may pull in the azure SDK or msal (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import airflow_identity_provider.get_provider_info
import airflow_identity_provider.auth.manager
from airflow_identity_provider.azure.operators import AzureTemplateDeploymentOperator, AzureTagsUpdateOperator
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("azure", "msal"))
print("HEAVY=" + ",".join(heavy))
"""


def test_package_imports_do_not_load_the_azure_sdk() -> None:
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # Airflow 3.2 logs to stdout at import (alembic plugin lines): read only our line.
    assert [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")] == ["HEAVY="]
