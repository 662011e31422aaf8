"""rules.directory (the view and apply/upgrade_due) and rules.token_age: pure, in milliseconds."""

from __future__ import annotations

import pytest

from airflow_identity_provider.auth.rules.access import AccessPolicy
from airflow_identity_provider.auth.rules.directory import (
    SERVICE_PRINCIPAL,
    Account,
    DirectoryRefusal,
    DirectoryView,
    apply,
    upgrade_due,
)
from airflow_identity_provider.auth.rules.token_age import SESSION_CLAIM, TokenTooOld, token_age_refusal
from airflow_identity_provider.auth.rules.user import IdentityUser

TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ALICE = f"{TID}:00000000-0000-0000-0000-00000000a11c"
SVC = f"{TID}:00000000-0000-0000-0000-0000000005c0"
ADMINS, OPS, ANALYTICS = "g-admins", "g-ops", "g-analytics"
SYNCED = 1_000.0
POLICY = AccessPolicy(
    role_mapping={ADMINS: ("Admin",), OPS: ("Op",), "Airflow.Op": ("Op",)},
    default_roles=("Viewer",),
    team_mapping={ANALYTICS: ("analytics",)},
)


def view(**overrides: object) -> DirectoryView:
    fields: dict[str, object] = {
        "source": "graph",
        "accounts": {ALICE: Account(), SVC: Account(kind=SERVICE_PRINCIPAL)},
        "holders": {ADMINS: frozenset({ALICE}), OPS: frozenset({ALICE}), ANALYTICS: frozenset({ALICE})},
        "synced_at": SYNCED,
        "scope": f"{TID}:",
    }
    fields.update(overrides)
    return DirectoryView(**fields)  # type: ignore[arg-type]


def alice(**overrides: object) -> IdentityUser:
    fields: dict[str, object] = {
        "user_id": ALICE,
        "name": "Alice",
        "email": "",
        "roles": ("Op", "Admin"),
        "auth_time": int(SYNCED - 60),  # signed in before the view was taken: the view decides
        "idp": "default",
        "groups": (OPS, ADMINS, ANALYTICS),
        "teams": ("analytics",),
    }
    fields.update(overrides)
    return IdentityUser(**fields)  # type: ignore[arg-type]


NOW = SYNCED + 5


def test_unchanged_account_gets_the_same_object_back() -> None:
    user = alice()
    assert apply(user, view(), POLICY, NOW) is user


def test_no_view_and_other_tenants_pass_untouched() -> None:
    user = alice()
    assert apply(user, None, POLICY, NOW) is user
    stranger = alice(user_id="0a1b2c3d-1111-2222-3333-444455556666:00000000-0000-0000-0000-00000000a11c")
    assert apply(stranger, view(accounts={}), POLICY, NOW) is stranger


@pytest.mark.parametrize("state", ["disabled", "suspended", "locked", "deactivated", "deleted"])
def test_an_account_the_directory_switched_off_is_refused(state: str) -> None:
    refusal = apply(alice(), view(accounts={ALICE: Account(state)}), POLICY, NOW)
    assert isinstance(refusal, DirectoryRefusal) and refusal.reason == f"account_{state}"
    assert isinstance(refusal, ValueError)  # the core's way of refusing a token, should it get this raised
    assert ALICE in refusal.message and state in refusal.message


def test_a_disabled_service_principal_is_named_so() -> None:
    svc = IdentityUser(SVC, "svc-etl", "", ("Op",), auth_time=int(SYNCED - 1), idp="default", groups=("Airflow.Op",))
    refusal = apply(svc, view(accounts={SVC: Account("disabled", SERVICE_PRINCIPAL)}), POLICY, NOW)
    assert isinstance(refusal, DirectoryRefusal) and "service principal" in refusal.message


def test_an_account_absent_from_a_complete_view_was_deleted() -> None:
    refusal = apply(alice(), view(accounts={SVC: Account()}), POLICY, NOW)
    assert isinstance(refusal, DirectoryRefusal) and refusal.reason == "account_deleted"


def test_an_unknown_subject_of_an_incomplete_view_is_left_alone() -> None:
    """JumpCloud: a subject it never listed may be another kind of principal; never refuse it, nor cut its groups."""
    user = alice()
    assert apply(user, view(accounts={}, absent_means_deleted=False), POLICY, NOW) is user


def test_a_sign_in_newer_than_the_view_wins() -> None:
    """Re-enabled, or given a PIM membership, a second ago: the IdP's fresh word beats the older view."""
    fresh = alice(auth_time=int(SYNCED + 1))
    stale = view(accounts={ALICE: Account("disabled")}, holders={ADMINS: frozenset()})
    assert apply(fresh, stale, POLICY, NOW) is fresh


def test_a_sign_in_from_the_future_is_no_evidence() -> None:
    ahead = alice(auth_time=int(NOW + 3600))
    assert isinstance(apply(ahead, view(accounts={ALICE: Account("disabled")}), POLICY, NOW), DirectoryRefusal)


def test_removed_from_the_admin_group_drops_to_the_remaining_role_at_once() -> None:
    result = apply(alice(), view(holders={ADMINS: frozenset(), OPS: frozenset({ALICE})}), POLICY, NOW)
    assert isinstance(result, IdentityUser)
    assert result.roles == ("Op",) and ADMINS not in result.groups
    assert result.teams == ("analytics",)  # ANALYTICS is not tracked here: left as the token says


def test_teams_follow_the_groups() -> None:
    result = apply(alice(), view(holders={ANALYTICS: frozenset(), OPS: frozenset({ALICE})}), POLICY, NOW)
    assert isinstance(result, IdentityUser) and result.teams == () and result.roles == ("Op", "Admin")


def test_never_a_higher_role_from_the_view() -> None:
    viewer = alice(roles=("Viewer",), groups=(OPS,))
    assert apply(viewer, view(), POLICY, NOW) is viewer  # the view says Op, Admin: the token's Viewer stays


def test_the_default_role_survives_losing_every_group() -> None:
    user = alice(roles=("Viewer",), groups=(ANALYTICS,), teams=("analytics",))
    result = apply(user, view(holders={ANALYTICS: frozenset()}), POLICY, NOW)
    assert isinstance(result, IdentityUser) and result.roles == ("Viewer",) and result.groups == ()


def test_a_principal_that_lost_its_mapped_group_does_not_keep_the_default_role() -> None:
    """A managed identity cannot be disabled, so removing its app-role assignment is how its access is taken:
    default_role (Viewer here) must not take the lost role's place on the request path."""
    svc = IdentityUser(SVC, "svc", "", ("Op",), auth_time=int(SYNCED - 1), idp="default", groups=("Airflow.Op",))
    with_default = AccessPolicy(role_mapping={"Airflow.Op": ("Op",)}, default_roles=("Viewer",))
    refusal = apply(svc, view(holders={"Airflow.Op": frozenset()}), with_default, NOW)
    assert isinstance(refusal, DirectoryRefusal) and refusal.reason == "no_access_left"


def test_nothing_left_is_refused() -> None:
    svc = IdentityUser(SVC, "svc", "", ("Op",), auth_time=int(SYNCED - 1), idp="default", groups=("Airflow.Op",))
    no_default = AccessPolicy(role_mapping={"Airflow.Op": ("Op",)})
    refusal = apply(svc, view(holders={"Airflow.Op": frozenset()}), no_default, NOW)
    assert isinstance(refusal, DirectoryRefusal) and refusal.reason == "no_access_left"


def test_provider_prefix_and_aliases() -> None:
    prefixed = alice(user_id=f"staff/{ALICE}")
    assert isinstance(apply(prefixed, view(id_prefix="staff/", accounts={}), POLICY, NOW), DirectoryRefusal)
    other_provider = alice(user_id=f"contractors/{ALICE}")
    assert apply(other_provider, view(id_prefix="staff/", accounts={}), POLICY, NOW) is other_provider
    jc = view(scope="", accounts={"5f1e": Account("suspended")}, aliases={"alice@example.test": "5f1e"})
    assert isinstance(apply(alice(user_id="Alice@Example.test"), jc, POLICY, NOW), DirectoryRefusal)


def test_upgrade_due_once_after_a_gain() -> None:
    viewer = alice(roles=("Viewer",), groups=(), teams=())
    gained = view(gained={ALICE: SYNCED})
    assert upgrade_due(viewer, gained, POLICY)  # Admin, Op and a team are waiting at the IdP
    assert not upgrade_due(alice(roles=("Viewer",), groups=(), teams=(), auth_time=int(SYNCED + 1)), gained, POLICY)
    assert not upgrade_due(alice(), gained, POLICY)  # already holds all of it
    assert not upgrade_due(viewer, view(), POLICY) and not upgrade_due(viewer, None, POLICY)


def test_apply_is_fast() -> None:
    import time

    big = view(accounts={f"{TID}:{i:032x}": Account() for i in range(100_000)} | {ALICE: Account()})
    user = alice()
    started = time.perf_counter()
    for _ in range(10_000):
        apply(user, big, POLICY, NOW)
    per_call = (time.perf_counter() - started) / 10_000
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} µs per request"


# --- api_token_max_age -----------------------------------------------------------------------------------


def test_api_tokens_are_capped_from_the_last_proof_at_the_idp() -> None:
    assert token_age_refusal({"auth_time": 1000}, max_age=3600, now=4600) is None
    refusal = token_age_refusal({"auth_time": 1000}, max_age=3600, now=4601)
    assert isinstance(refusal, TokenTooOld) and refusal.reason == "token_too_old"
    assert isinstance(token_age_refusal({}, max_age=3600, now=4601), TokenTooOld)  # no auth_time: as old as can be


def test_sessions_are_capped_by_their_own_limit() -> None:
    session = {"auth_time": 1000, SESSION_CLAIM: True}
    assert token_age_refusal(session, max_age=60, now=1000 + 600, session_max_age=600) is None
    refusal = token_age_refusal(session, max_age=10**6, now=1000 + 601, session_max_age=600)
    assert isinstance(refusal, TokenTooOld) and "revalidate_interval" in refusal.message


def test_sessions_and_zero_are_not_capped() -> None:
    assert token_age_refusal({"auth_time": 0, SESSION_CLAIM: True}, max_age=60, now=10**9) is None
    assert token_age_refusal({"auth_time": 0}, max_age=0, now=10**9) is None
    assert isinstance(token_age_refusal({"auth_time": 0, SESSION_CLAIM: "yes"}, max_age=60, now=10**9), TokenTooOld)
