"""Names shared by the template and reference checks: resource types, operator settings, linked rights.
A leaf: no imports from the rest of the package."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_identity_provider.azure.rules.scopes import ScopeError, ascii_fold, parse_scope

__all__ = [
    "ALLOW_DEPLOYMENT_SCRIPTS_SETTING",
    "ALLOW_NESTED_TEMPLATE_LINKS_SETTING",
    "DEPLOYMENTS_TYPE",
    "DEPLOYMENT_SCRIPTS_TYPE",
    "LinkedAccess",
    "is_definition_id",
]

ALLOW_DEPLOYMENT_SCRIPTS_SETTING = "allow_deployment_scripts"
ALLOW_NESTED_TEMPLATE_LINKS_SETTING = "allow_nested_template_links"
# Compared with scopes.lookalike_fold (deny rules), hence lower case.
DEPLOYMENTS_TYPE = "microsoft.resources/deployments"
DEPLOYMENT_SCRIPTS_TYPE = "microsoft.resources/deploymentscripts"

# Definitions, not resources: a role assignment names its role by such an id (often a built-in at tenant
# level), a policy assignment its definition; the RBAC gate already governs them.
_DEFINITION_TYPES = frozenset(
    {
        "microsoft.authorization/roledefinitions",
        "microsoft.authorization/policydefinitions",
        "microsoft.authorization/policysetdefinitions",
    }
)


@dataclass(frozen=True)
class LinkedAccess:
    """A right the deployment needs on a resource it uses without writing it (``listKeys``, join a
    subnet, assign an identity, read a Key Vault secret), checked where that resource lives."""

    resource_id: str
    action: str
    why: str


def is_definition_id(resource_id: str) -> bool:
    try:
        rtype = parse_scope(resource_id).resource_type
    except ScopeError:
        return False
    return rtype is not None and ascii_fold(rtype) in _DEFINITION_TYPES
