from __future__ import annotations

import pytest

from airflow_identity_provider.auth.rules.claims import ClaimError, extract_groups, identity_from_claims, map_role
from airflow_identity_provider.auth.rules.roles import Role

MAPPING = {"admins": Role.ADMIN, "ops": Role.OP, "viewers": Role.VIEWER}


@pytest.mark.parametrize(
    ("value", "groups"),
    [
        (None, ()),
        ("admins", ("admins",)),  # JumpCloud: one group is a string, not a list of characters
        ("", ()),
        (["a", "b", "a"], ("a", "b")),
        ([], ()),
    ],
)
def test_extract_groups_shapes(value: object, groups: tuple[str, ...]) -> None:
    claims = {} if value is None else {"memberOf": value}
    assert extract_groups(claims, "memberOf") == groups


@pytest.mark.parametrize("value", [{"admins": True}, ["a", 1], 42, [["a"]]])
def test_extract_groups_refuses_malformed(value: object) -> None:
    with pytest.raises(ClaimError) as info:
        extract_groups({"groups": value}, "groups")
    assert info.value.reason == "malformed_groups_claim"


@pytest.mark.parametrize(
    ("groups", "default", "role"),
    [
        (["viewers", "ops"], None, Role.OP),
        (["viewers", "admins", "ops"], None, Role.ADMIN),
        (["marketing"], None, None),
        (["marketing"], Role.VIEWER, Role.VIEWER),
        (["viewers"], Role.OP, Role.VIEWER),  # a mapped group wins over default_role, even if lower
        ([], None, None),
        (["Admins"], None, None),  # exact match: Entra GUIDs and app-role values are case-sensitive
    ],
)
def test_map_role(groups: list[str], default: Role | None, role: Role | None) -> None:
    assert map_role(groups, MAPPING, default) is role


def test_identity_prefers_stable_sub_and_readable_name() -> None:
    identity = identity_from_claims(
        {"sub": "u1", "preferred_username": "alice", "email": "a@x", "groups": ["g"]}, groups_claim="groups"
    )
    assert (identity.user_id, identity.name, identity.email, identity.groups) == ("u1", "alice", "a@x", ("g",))


def test_identity_requires_sub() -> None:
    with pytest.raises(ClaimError):
        identity_from_claims({"name": "x"}, groups_claim="groups")


def test_eddsa_selects_okp_keys() -> None:
    from joserfc.jwk import KeySet, OKPKey, RSAKey

    from airflow_identity_provider.auth.idp.oidc import _select_key

    okp = OKPKey.generate_key("Ed25519", parameters={"kid": "ed"})
    keys = KeySet([okp, RSAKey.generate_key(2048, parameters={"kid": "rsa"})])
    assert _select_key(keys, "ed", "EdDSA") is okp
    assert _select_key(keys, None, "EdDSA") is okp
    assert _select_key(keys, "ed", "RS256") is None
