from __future__ import annotations

import pytest

from airflow_identity_provider.auth.rules.access import AccessPolicy
from airflow_identity_provider.auth.rules.claims import ClaimError, extract_groups, identity_from_claims

MAPPING = {"admins": ("Admin",), "ops": ("Op",), "viewers": ("Viewer",)}


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
    ("groups", "default", "roles"),
    [
        (["viewers", "ops"], None, ("Viewer", "Op")),  # every mapped role, as FAB does
        (["viewers", "admins", "ops"], None, ("Viewer", "Op", "Admin")),
        (["marketing"], None, ()),
        (["marketing"], "Viewer", ("Viewer",)),
        (["viewers"], "Op", ("Viewer",)),  # a mapped group wins over default_role, even if lower
        ([], None, ()),
        (["Admins"], None, ()),  # exact match: Entra GUIDs and app-role values are case-sensitive
    ],
)
def test_roles_for(groups: list[str], default: str | None, roles: tuple[str, ...]) -> None:
    policy = AccessPolicy(role_mapping=MAPPING, default_roles=(default,) if default else ())
    assert policy.roles_for(groups) == roles


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


@pytest.mark.parametrize(
    ("extra", "aliases"),
    [
        ({"email": "ada@example.com", "email_verified": True}, ("ada@example.com",)),
        ({"email": "ada@example.com"}, ()),  # unverified: users choose e-mails at many OIDC providers
        ({"email": "ada@example.com", "email_verified": False}, ()),
        ({"preferred_username": "boss@example.com"}, ()),  # user-chosen at many providers: never an alias
    ],
)
def test_only_a_verified_email_can_be_a_hitl_assignee_alias(extra: dict, aliases: tuple[str, ...]) -> None:
    assert identity_from_claims({"sub": "s", **extra}, groups_claim="groups").aliases == aliases


def test_entra_aliases_are_the_upn_only() -> None:
    from airflow_identity_provider.auth.rules.entra import entra_identity

    claims = {
        "oid": "00000000-0000-0000-0000-0000000000aa",
        "tid": "00000000-0000-0000-0000-0000000000bb",
        "upn": "ada@contoso.com",
        "email": "boss@contoso.com",  # Entra's email claim is not verified ("nOAuth")
        "preferred_username": "someone@else.com",
    }
    assert entra_identity(claims, groups_claim="groups").aliases == ("ada@contoso.com",)
