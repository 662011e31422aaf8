"""Least-privilege preflight for ARM writes: gather the facts from ARM, judge them with the pure rules.

:class:`Preflight` (:mod:`.orchestration`) runs the steps; the ARM reads sit behind the
:class:`~.facts.ArmFacts` protocol (:mod:`.arm_reads` reads them through the hook), the judgement is in
:mod:`.judgement` and the result is an :class:`~.report.AccessReport`. What the facts *mean* lives in the
pure rules: :mod:`~airflow_identity_provider.azure.rules.rbac` (wildcards, deny assignments),
:mod:`~airflow_identity_provider.azure.rules.overprivilege` (findings) and
:mod:`~airflow_identity_provider.azure.rules.preflight_rules` (actions per operation, what-if rules).

One :meth:`Preflight.check`, in this order:

1. **Fence** (no network). The target scope must equal or lie inside one of the connection's
   ``allowed_scopes``, compared segment by segment (``rg1`` never admits ``rg10``). An empty fence refuses
   every write. This step is never optional, whatever ``least_privilege`` says.
2. **What-if** (no network; the operator passes the result it already has). Changes outside the fence,
   deletes, access-control changes, unwanted change types and Complete mode are violations. They are
   always refused; the operator's ``allow_*`` arguments are the way to permit them. The types the
   deployment writes or deletes become required actions.
3. **Principal** (no network): the ``oid`` claim of the ARM token the hook's credential already holds.
4. **ARM reads**, at most three in the usual case, counted in :attr:`AccessReport.arm_calls`:
   ``permissions`` at the target (or subscription), ``denyAssignments?$filter=atScope()`` and, for
   over-privilege, ``roleAssignments?$filter=assignedTo('{oid}')`` at the subscription.
5. **Verdict** with :func:`rbac.evaluate` and findings with :func:`overprivilege.broad_assignments`,
   :func:`overprivilege.unused_breadth` and :func:`overprivilege.escalation_findings`.
6. **Modes**: ``least_privilege`` (``enforce``/``warn``/``off``) governs missing or denied actions;
   ``overprivilege`` (``fail``/``warn``/``ignore``) governs high-severity findings.

Known limits (documented rather than papered over):

- Derived actions are evaluated at the target scope. A what-if change in another scope inside the fence
  (a nested deployment into a second allowed resource group) is admitted by the fence, but its
  permissions are only checked by ARM itself (what-if/validate with ``validationLevel: Provider``).
- Deny assignments are read with ``atScope()`` (at and above the target), so a deny on a single child
  resource is left to ARM. For ``resource_group_write`` they are read at the subscription unless the
  group is known to exist, because the group's own path 404s before it is created.
- Group-inherited role assignments are found by ``assignedTo()``; deny assignments naming a group the
  identity is in are not resolved (that would need Microsoft Graph).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_identity_provider.azure.preflight.arm_reads import AUTHORIZATION_API_VERSION
    from airflow_identity_provider.azure.preflight.orchestration import Preflight
    from airflow_identity_provider.azure.preflight.report import (
        AccessReport,
        LeastPrivilegeMode,
        OverprivilegeMode,
        PreflightLogger,
        PreflightRefused,
    )

# Exported lazily: the report and the refusal are SDK-free (operators import them at DAG parse time),
# the orchestration and the ARM reads import azure-core.
_EXPORTS = {
    "AUTHORIZATION_API_VERSION": "arm_reads",
    "AccessReport": "report",
    "LeastPrivilegeMode": "report",
    "OverprivilegeMode": "report",
    "Preflight": "orchestration",
    "PreflightLogger": "report",
    "PreflightRefused": "report",
}

__all__ = [
    "AUTHORIZATION_API_VERSION",
    "AccessReport",
    "LeastPrivilegeMode",
    "OverprivilegeMode",
    "Preflight",
    "PreflightLogger",
    "PreflightRefused",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
