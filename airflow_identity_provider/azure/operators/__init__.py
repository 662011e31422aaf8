"""Azure Resource Manager operators that check, before they write, that they stay least-privileged.

Exported lazily so that ``import airflow_identity_provider.azure.operators`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_identity_provider.azure.operators.deployment import AzureTemplateDeploymentOperator
    from airflow_identity_provider.azure.operators.preview import (
        AzureTemplateValidateOperator,
        AzureTemplateWhatIfOperator,
    )
    from airflow_identity_provider.azure.operators.resource_group import (
        AzureResourceGroupCreateOrUpdateOperator,
        AzureResourceGroupDeleteOperator,
    )
    from airflow_identity_provider.azure.operators.tags import AzureTagsUpdateOperator

_EXPORTS = {
    "AzureResourceGroupCreateOrUpdateOperator": "resource_group",
    "AzureResourceGroupDeleteOperator": "resource_group",
    "AzureTemplateDeploymentOperator": "deployment",
    "AzureTemplateValidateOperator": "preview",
    "AzureTemplateWhatIfOperator": "preview",
    "AzureTagsUpdateOperator": "tags",
}

__all__ = [
    "AzureResourceGroupCreateOrUpdateOperator",
    "AzureResourceGroupDeleteOperator",
    "AzureTagsUpdateOperator",
    "AzureTemplateDeploymentOperator",
    "AzureTemplateValidateOperator",
    "AzureTemplateWhatIfOperator",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
