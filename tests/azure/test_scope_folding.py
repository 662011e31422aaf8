"""Unicode case folding must not let a scope through the fence.

ARM compares names case-insensitively in ASCII only, so ``\\u212a-rg`` (KELVIN SIGN) is a different resource
group from ``k-rg``, although ``"\\u212a".lower() == "k"``. The connection's scope grammar and the fence
both fold A-Z only (``ascii_fold``); these tests hold the whole path to that, up to a real operator run
against the ARM emulator that must record no write.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from airflow_identity_provider.azure.operators import AzureResourceGroupCreateOrUpdateOperator, AzureTagsUpdateOperator
from airflow_identity_provider.azure.preflight import PreflightRefused
from airflow_identity_provider.azure.rules.connection_extras import parse_connection_settings
from airflow_identity_provider.azure.rules.scopes import ascii_fold, first_containing, is_within, normalize_scope
from tests.azure.test_arm_emulator import SUB
from tests.azure.test_operators import FakeTaskInstance, connect, emu, emulator, make_context, mark, writes

__all__ = ["emu", "emulator"]  # fixtures, imported for use here

KELVIN, LONG_S, DOTTED_I = "\u212a", "\u017f", "\u0130"
K_SCOPE = f"/subscriptions/{SUB}/resourceGroups/k-rg"
S_SCOPE = f"/subscriptions/{SUB}/resourceGroups/rg-s"


def _fence(*scopes: str) -> tuple[str, ...]:
    """The fence exactly as an operator gets it: through the connection's parser."""
    return parse_connection_settings("arm", {"allowed_scopes": list(scopes)}).allowed_scopes


# -- pure: connection grammar + fence --------------------------------------------------------------


def test_helper_is_the_same_object_everywhere() -> None:
    from airflow_identity_provider.azure.rules import scopes

    assert ascii_fold is scopes.ascii_fold
    assert ascii_fold(f"ABC{KELVIN}{LONG_S}{DOTTED_I}xyz") == f"abc{KELVIN}{LONG_S}{DOTTED_I}xyz"


@pytest.mark.parametrize(
    ("fence", "target"),
    [
        (K_SCOPE, f"/subscriptions/{SUB}/resourceGroups/{KELVIN}-rg"),
        (K_SCOPE, f"/subscriptions/{SUB}/resourceGroups/{KELVIN}-RG"),
        (K_SCOPE, f"/subscriptions/{SUB}/resourceGroups/{KELVIN}-RG/providers/Microsoft.Storage/storageAccounts/st1"),
        (S_SCOPE, f"/subscriptions/{SUB}/resourceGroups/rg-{LONG_S}"),
        (S_SCOPE.replace("rg-s", f"rg-{LONG_S}"), f"/subscriptions/{SUB}/resourceGroups/rg-S"),
        (f"/subscriptions/{SUB}/resourceGroups/rg-i", f"/subscriptions/{SUB}/resourceGroups/rg-{DOTTED_I}"),
    ],
)
def test_lookalike_target_is_outside_the_fence(fence: str, target: str) -> None:
    fences = _fence(fence)
    normal = normalize_scope(target)  # a valid ARM name: ARM allows Unicode letters in group names
    assert first_containing(normal, fences) is None
    assert not any(is_within(normal, f) for f in fences)


def test_ascii_case_still_matches() -> None:
    fences = _fence(K_SCOPE)
    assert first_containing(normalize_scope(f"/subscriptions/{SUB.upper()}/RESOURCEGROUPS/K-RG"), fences) is not None
    assert first_containing(f"/subscriptions/{SUB}/resourceGroups/K-Rg/providers/Microsoft.Web/sites/a", fences)


def test_connection_dedupes_by_ascii_fold_only() -> None:
    kelvin = f"/subscriptions/{SUB}/resourceGroups/{KELVIN}-rg"
    assert _fence(K_SCOPE, K_SCOPE.upper().replace(SUB.upper(), SUB), kelvin) == (K_SCOPE, kelvin)


@pytest.mark.parametrize(
    "scope",
    [
        f"/{LONG_S}ubscriptions/{SUB}/resourceGroups/rg",
        f"/subscriptions/{SUB}/resourceGroup{LONG_S}/rg",
        f"/subscriptions/{SUB}/resourceGroups/rg/provider{LONG_S}/Microsoft.Storage/storageAccounts/x",
        f"/providers/Microsoft.Management/managementGroup{LONG_S}/mg",
        f"/subscriptions/{SUB}/resourceGroups/rg\n/providers/Microsoft.Storage/storageAccounts/x",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x\x00y",
    ],
)
def test_lookalike_or_control_fixed_segments_are_refused(scope: str) -> None:
    with pytest.raises(ValueError):
        normalize_scope(scope)


def test_managed_identity_resource_id_needs_ascii_fixed_segments() -> None:
    rid = (
        f"/subscriptions/{SUB}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentitie{LONG_S}/etl"
    )
    with pytest.raises(ValueError, match="managed_identity_resource_id"):
        parse_connection_settings("arm", {"managed_identity_resource_id": rid})


# -- through a real operator run (ARM emulator) ----------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("fence", "name"),
    [(K_SCOPE, f"{KELVIN}-rg"), (K_SCOPE, f"{KELVIN}-RG"), (S_SCOPE, f"rg-{LONG_S}")],
)
def test_resource_group_with_lookalike_name_is_refused(
    emu: Any, monkeypatch: pytest.MonkeyPatch, fence: str, name: str
) -> None:
    connect(monkeypatch, emu, allowed_scopes=[fence])
    op = AzureResourceGroupCreateOrUpdateOperator(task_id="rg", resource_group_name=name, location="westeurope")
    start = mark(emu)
    with pytest.raises(PreflightRefused) as err:
        op.execute(make_context(FakeTaskInstance(task_id="rg")))
    assert not writes(emu, start), [(r.method, r.path) for r in writes(emu, start)]
    assert "outside" in str(err.value) and "allowed_scopes" in str(err.value)
    # The fence is offline: nothing about the target reached ARM at all.
    assert not [r for r in emu.requests()[start:] if ascii_fold(name) in ascii_fold(unquote(r.path))]


@pytest.mark.integration
def test_tags_on_lookalike_scope_are_refused(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    connect(monkeypatch, emu, allowed_scopes=[K_SCOPE])
    op = AzureTagsUpdateOperator(
        task_id="tags", scope=f"/subscriptions/{SUB}/resourceGroups/{KELVIN}-rg", tags={"team": "data"}
    )
    start = mark(emu)
    with pytest.raises(PreflightRefused):
        op.execute(make_context(FakeTaskInstance(task_id="tags")))
    assert not writes(emu, start)


@pytest.mark.integration
def test_ascii_case_variant_is_still_written(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    connect(monkeypatch, emu, allowed_scopes=[K_SCOPE])
    op = AzureResourceGroupCreateOrUpdateOperator(task_id="rg", resource_group_name="K-RG", location="westeurope")
    start = mark(emu)
    result = op.execute(make_context(FakeTaskInstance(task_id="rg")))
    assert ascii_fold(result["id"]).endswith("/resourcegroups/k-rg")
    assert [r.method for r in writes(emu, start)] == ["PUT"]
