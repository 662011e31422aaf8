"""The smallest custom roles of the documentation (dev/docs/arm_roles.py, docs/arm/custom-roles.md) against the
operators themselves: each operator runs against the ARM emulator with its identity holding exactly its role
(as effective permissions and as a custom-role assignment), under ``least_privilege="enforce"`` and
``overprivilege="fail"``, and passes; the preflight requires nothing the role lacks, and the role holds nothing
the preflight does not require except the operations the operator runs outside it (named in the table); and
with any one required action taken away the operator is refused before any write.

The emulator returns permissions but enforces none, so the actions the operator's own ARM calls need beyond the
preflight (what-if before a deployment, the resource list before a group delete) are shown only by the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_identity_provider.azure.operators import (
    AzureResourceGroupCreateOrUpdateOperator,
    AzureResourceGroupDeleteOperator,
    AzureTagsUpdateOperator,
    AzureTemplateValidateOperator,
    AzureTemplateWhatIfOperator,
)
from airflow_identity_provider.azure.preflight import PreflightRefused
from airflow_identity_provider.azure.rules.preflight_rules import REQUIRED_ACTIONS
from dev.docs.arm_roles import EXAMPLE_TYPE, OPERATORS, OperatorNeeds, role_actions
from tests.azure.test_arm_emulator import CLIENT, SUB, emulator
from tests.azure.test_operators import (
    RG,
    RG_SCOPE,
    TEMPLATE,
    FakeTaskInstance,
    connect,
    create_group,
    deploy_op,
    deploy_storage,
    make_context,
    mark,
    writes,
)

pytestmark = pytest.mark.integration

__all__ = ["emulator"]  # the module-scoped emulator fixture

SUBSCRIPTION = f"/subscriptions/{SUB}"
NEW_RG = "rg-new"
STRICT = {"least_privilege": "enforce", "overprivilege": "fail"}
PARAMETERS = {"name": "stetl01"}

# One run of each operator, in the situation its role's example describes.
RUNS: dict[str, Callable[[], Any]] = {
    "AzureResourceGroupCreateOrUpdateOperator": lambda: AzureResourceGroupCreateOrUpdateOperator(
        task_id="rg", resource_group_name=NEW_RG, location="westeurope", **STRICT
    ),
    "AzureResourceGroupDeleteOperator": lambda: AzureResourceGroupDeleteOperator(
        task_id="rm", resource_group_name=RG, **STRICT
    ),
    "AzureTemplateValidateOperator": lambda: AzureTemplateValidateOperator(
        task_id="validate", resource_group_name=RG, template=TEMPLATE, parameters=PARAMETERS, **STRICT
    ),
    "AzureTemplateWhatIfOperator": lambda: AzureTemplateWhatIfOperator(
        task_id="what_if", resource_group_name=RG, template=TEMPLATE, parameters=PARAMETERS, **STRICT
    ),
    "AzureTemplateDeploymentOperator": lambda: deploy_op(**STRICT),
    "AzureTagsUpdateOperator": lambda: AzureTagsUpdateOperator(
        task_id="tags", scope=RG_SCOPE, tags={"owner": "data"}, **STRICT
    ),
}


@pytest.fixture
def emu(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """rg-etl exists with one storage account (the example's contents); the fence also admits rg-new."""
    emulator.reset()
    connect(monkeypatch, emulator, allowed_scopes=[RG_SCOPE, f"{SUBSCRIPTION}/resourceGroups/{NEW_RG}"])
    create_group(emulator, RG)
    deploy_storage(emulator, RG, "stetl01")
    yield emulator
    emulator.reset()


def holds_exactly(emu: Any, needs: OperatorNeeds, actions: tuple[str, ...]) -> None:
    """The identity's effective permissions and its only role assignment are ``actions``, where the docs say."""
    scope = SUBSCRIPTION if needs.assign_at.count("/") == 2 else RG_SCOPE
    emu.set_permissions(SUBSCRIPTION, [{"actions": [], "notActions": []}])
    emu.set_permissions(scope, [{"actions": list(actions), "notActions": []}])
    name = f"Airflow {needs.operator} ({len(actions)})"
    emu.add_role_definition({"roleName": name, "actions": list(actions), "notActions": []})
    emu.set_role_assignments([{"scope": scope, "principalId": emu.principal_oid(client_id=CLIENT), "roleName": name}])


def folded(actions: Any) -> set[str]:
    return {str(a).lower() for a in actions}


@pytest.mark.parametrize("needs", OPERATORS, ids=lambda n: n.operator)
def test_the_documented_role_is_enough_and_nothing_in_it_is_spare(emu: Any, needs: OperatorNeeds) -> None:
    actions = role_actions(needs)
    holds_exactly(emu, needs, actions)
    ti = FakeTaskInstance(task_id=needs.operator)
    RUNS[needs.operator]().execute(make_context(ti))

    report = ti.xcom["access_report"]
    assert report["ok"], report
    assert report["findings"] == [], "a clean role: no over-privilege finding"
    required = folded(report["required_actions"])
    assert required <= folded(actions), "the preflight required an action the documented role lacks"
    # What the role holds beyond the preflight's demands is exactly what the table says the operator's own
    # calls need (what-if before a deployment, the resource list before a group delete).
    outside = {*needs.own, *(a for op in needs.called for a in REQUIRED_ACTIONS[op])}
    assert folded(actions) - required == folded(outside)


@pytest.mark.parametrize("needs", OPERATORS, ids=lambda n: n.operator)
def test_each_required_action_taken_away_is_refused_before_any_write(emu: Any, needs: OperatorNeeds) -> None:
    outside = folded({*needs.own, *(a for op in needs.called for a in REQUIRED_ACTIONS[op])})
    required = [a for a in role_actions(needs) if a.lower() not in outside]
    assert required
    for action in required:
        holds_exactly(emu, needs, tuple(a for a in role_actions(needs) if a != action))
        start = mark(emu)
        with pytest.raises(PreflightRefused) as refused:
            RUNS[needs.operator]().execute(make_context(FakeTaskInstance(task_id=needs.operator)))
        assert action in str(refused.value), (action, str(refused.value))
        assert not writes(emu, start), [(r.method, r.path) for r in writes(emu, start)]


def test_the_examples_are_what_the_runs_touch() -> None:
    """The role's example types are those of the emulator runs: the storage account of TEMPLATE."""
    assert {r["type"] for r in TEMPLATE["resources"]} == {EXAMPLE_TYPE}
