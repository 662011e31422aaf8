"""IdentityUser inside the Airflow JWT: round trip, tokens of the previous release, and the 4 KB cookie."""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_identity_provider.auth.rules.access import AccessPolicy, Principal
from airflow_identity_provider.auth.rules.custom_roles import parse_custom_roles
from airflow_identity_provider.auth.rules.dag_grants import parse_dag_grants
from airflow_identity_provider.auth.rules.roles import Role
from airflow_identity_provider.auth.rules.user import IdentityUser

ROLES = parse_custom_roles('{"VariableEditor": {"extends": "Viewer", "allow": ["variable:*"]}}')


def full_user() -> IdentityUser:
    return IdentityUser(
        user_id="0f9c-oid",
        name="Ada Lovelace",
        email="ada@example.com",
        roles=("Viewer", "VariableEditor"),
        auth_time=1_700_000_000,
        idp="entra",
        groups=("analytics-ops", "data-team"),
        teams=("analytics",),
        aliases=("ada@corp.example.com",),
    )


def test_round_trip_through_claims() -> None:
    user = full_user()
    claims = user.to_claims()
    assert claims == {
        "sub": "0f9c-oid",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "roles": ["Viewer", "VariableEditor"],
        "role": "Viewer",
        "auth_time": 1_700_000_000,
        "idp": "entra",
        "groups": ["analytics-ops", "data-team"],
        "teams": ["analytics"],
        "aliases": ["ada@corp.example.com"],
    }
    assert IdentityUser.from_claims(json.loads(json.dumps(claims))) == user


def test_empty_lists_are_left_out_and_come_back_empty() -> None:
    user = IdentityUser(user_id="u", name="u", email="", roles=())
    claims = user.to_claims()
    assert "groups" not in claims and "teams" not in claims and "aliases" not in claims
    assert "role" not in claims  # no built-in role to name
    assert IdentityUser.from_claims(claims) == user


@pytest.mark.parametrize(
    ("roles", "highest"),
    [
        (("Viewer", "Op"), Role.OP),
        (("Admin", "Viewer"), Role.ADMIN),
        (("VariableEditor", "User"), Role.USER),
        (("VariableEditor",), None),  # custom roles only: no "role" claim, an older replica fails closed
        ((), None),
    ],
)
def test_role_claim_is_the_highest_builtin(roles: tuple[str, ...], highest: Role | None) -> None:
    user = IdentityUser(user_id="u", name="u", email="", roles=roles)
    assert user.role is highest
    claims = user.to_claims()
    assert claims.get("role") == (highest.display_name if highest else None)
    assert claims["roles"] == list(roles)


@pytest.mark.parametrize("role", ["Viewer", "Admin"])
def test_an_old_token_with_only_role_still_parses(role: str) -> None:
    user = IdentityUser.from_claims({"sub": "u", "name": "U", "email": "u@x", "role": role, "auth_time": 5})
    assert user.roles == (role,)
    assert user.role is Role.parse(role)
    assert user.groups == () and user.teams == () and user.aliases == ()
    assert user.idp == ""


def test_roles_wins_over_role() -> None:
    assert IdentityUser.from_claims({"sub": "u", "roles": ["Op"], "role": "Admin"}).roles == ("Op",)


@pytest.mark.parametrize(
    "claims",
    [
        {"roles": ["Viewer"]},  # no sub
        {"sub": "u"},  # neither roles nor role
    ],
)
def test_missing_claims_are_key_errors(claims: dict[str, object]) -> None:
    with pytest.raises(KeyError):
        IdentityUser.from_claims(claims)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "", "roles": ["Viewer"]},
        {"sub": 3, "roles": ["Viewer"]},
        {"sub": "u", "roles": [1]},
        {"sub": "u", "roles": {"Viewer": True}},
        {"sub": "u", "roles": ["Viewer"], "groups": [None]},
        {"sub": "u", "roles": ["Viewer"], "teams": 3},
    ],
)
def test_malformed_claims_are_value_errors(claims: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        IdentityUser.from_claims(claims)


def test_one_name_or_a_role_is_accepted() -> None:
    user = IdentityUser(user_id="u", name="u", email="", roles=Role.OP, groups="g")  # type: ignore[arg-type]
    assert user.roles == ("Op",)
    assert user.groups == ("g",)


def test_principal() -> None:
    assert full_user().principal == Principal(
        roles=("Viewer", "VariableEditor"),
        groups=frozenset({"analytics-ops", "data-team"}),
        teams=frozenset({"analytics"}),
    )


def test_a_user_with_200_idp_groups_fits_in_a_cookie() -> None:
    guids = [str(uuid.UUID(int=n + 1)) for n in range(200)]
    admins, operators, team = guids[3], guids[99], guids[150]
    policy = AccessPolicy(
        role_mapping={admins: ("Admin",), guids[10]: ("Op",)},
        roles=ROLES,
        grants=parse_dag_grants(json.dumps([{"groups": [operators], "dags": ["*"], "role": "Op"}]), ROLES),
        team_mapping={team: ("analytics",)},
    )
    assigned = policy.assign(guids[:10] + guids[11:])  # everything but the Op group
    assert assigned is not None
    assert assigned.groups == (admins, operators, team)
    user = IdentityUser(
        user_id=str(uuid.uuid4()),
        name="Grace Brewster Murray Hopper",
        email="grace.hopper@contoso.onmicrosoft.com",
        roles=(*assigned.roles, "VariableEditor"),
        auth_time=1_700_000_000,
        idp="entra",
        groups=assigned.groups,
        teams=assigned.teams,
        aliases=("grace.hopper@contoso.com",),
    )
    encoded = json.dumps(user.to_claims())
    assert len(encoded) < 1024, len(encoded)  # the signed JWT (base64 + header + signature) stays well under 4 KB
    assert len(json.dumps(guids)) > 7000  # what carrying the IdP's list would have cost
    assert IdentityUser.from_claims(json.loads(encoded)) == user
