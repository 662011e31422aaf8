"""The connection's fence grammar (``normalize_scope``) and the ARM grammar (``parse_scope``) live in one
module and agree: whatever the fence grammar accepts, ``parse_scope`` accepts with the same spelling and key;
where they differ, the fence grammar is the stricter one on purpose."""

from __future__ import annotations

import pytest

from airflow_identity_provider.azure.rules import scopes
from airflow_identity_provider.azure.rules.connection_extras import parse_connection_settings
from airflow_identity_provider.azure.rules.connection_settings import ConnectionConfigError
from airflow_identity_provider.azure.rules.scopes import ScopeError, is_within, normalize_scope, parse_scope
from airflow_identity_provider.errors import Refusal

SUB = "8a8a8a8a-1111-2222-3333-444444444444"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
MG = "/providers/Microsoft.Management/managementGroups/mg-data"

BOTH_ACCEPT = [
    "/",
    f"/SUBSCRIPTIONS/{SUB.upper()}",
    f"{RG}/",
    f"/subscriptions/{SUB}/resourcegroups/RG-Etl",
    f"{RG}/providers/Microsoft.Storage/storageAccounts/sa",
    f"{RG}/providers/Microsoft.Network/virtualNetworks/vn/subnets/s1",
    f"{RG}/providers/Microsoft.Web/sites/app/PROVIDERS/Microsoft.Authorization/locks/l",
    MG,
    "/PROVIDERS/microsoft.management/MANAGEMENTGROUPS/Mg-Data",
]


@pytest.mark.parametrize("scope", BOTH_ACCEPT)
def test_same_spelling_and_key(scope: str) -> None:
    normal = normalize_scope(scope)
    assert normal == str(parse_scope(scope))
    assert parse_scope(normal) == parse_scope(scope)
    assert normalize_scope(normal) == normal


@pytest.mark.parametrize(
    "scope",
    [
        f"{RG}/providers/Microsoft.Web/sites/a&b",
        f"{RG}/providers/Microsoft.Web/sites/with space",
        "/subscriptions/not-a-guid",
        "/subscriptions/not-a-guid/resourceGroups/rg",
        f"{MG}/providers/Microsoft.Authorization/policyAssignments/p",
        "/providers/Microsoft.Management/managementGroups/mg&x",
    ],
)
def test_fence_grammar_is_stricter(scope: str) -> None:
    parse_scope(scope)  # an id ARM may return: parsed and compared
    with pytest.raises(ValueError):
        normalize_scope(scope)  # but never a fence
    with pytest.raises(ConnectionConfigError) as err:
        parse_connection_settings("c", {"allowed_scopes": [scope]})
    assert err.value.key == "allowed_scopes"


@pytest.mark.parametrize(
    "scope",
    [
        f"{RG}/providers/Microsoft.Network/$bad/x",
        f"{RG}/providers/Microsoft.Web/sites/..",
        f"{RG}/providers/Microsoft.Web/sites/app//",
    ],
)
def test_nothing_the_arm_grammar_refuses_becomes_a_fence(scope: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(scope)
    with pytest.raises(ValueError):
        normalize_scope(scope)


def test_names_with_ampersand_or_space_compare_segment_wise() -> None:
    inside = f"{RG}/providers/Microsoft.Web/sites/a&b b"
    assert is_within(inside, normalize_scope(RG))
    assert not is_within(f"/subscriptions/{SUB}/resourceGroups/rg2/providers/Microsoft.Web/sites/a&b", RG)


def test_one_guid_rule() -> None:
    from airflow_identity_provider import entra_ids

    assert scopes.is_guid is entra_ids.is_guid
    assert str(parse_scope(f"/subscriptions/{SUB.upper()}")) == f"/subscriptions/{SUB}"
    assert str(parse_scope("/subscriptions/MySub")) == "/subscriptions/MySub"


def test_scope_error_is_a_refusal_and_a_value_error() -> None:
    with pytest.raises(ScopeError) as err:
        parse_scope("nope")
    assert isinstance(err.value, Refusal) and isinstance(err.value, ValueError)
    assert err.value.reason == "invalid_scope" and str(err.value) == err.value.message
