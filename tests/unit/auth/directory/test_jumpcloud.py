"""JumpCloudDirectory against the JumpCloud emulator (a real HTTPS process speaking JumpCloud's v1/v2 API)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from airflow_identity_provider.auth.directory import DirectoryForbidden, DirectoryUnavailable
from airflow_identity_provider.auth.directory.jumpcloud import JumpCloudDirectory
from airflow_identity_provider.auth.rules.access import AccessPolicy
from airflow_identity_provider.auth.rules.directory import DirectoryRefusal, DirectoryView, apply
from airflow_identity_provider.auth.rules.user import IdentityUser
from dev.jumpcloud_emulator.client import JumpCloudEmulator

KEY = "jc-test-key"
ADMINS, VIEWERS = "Airflow Admins", "Airflow Viewers"
POLICY = AccessPolicy(role_mapping={ADMINS: ("Admin",), VIEWERS: ("Viewer",)})


@pytest.fixture(scope="module")
def jc() -> Iterator[JumpCloudEmulator]:
    with JumpCloudEmulator(api_key=KEY) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _reset(jc: JumpCloudEmulator) -> None:
    jc.reset()
    jc.add_api_key(KEY)


def client(jc: JumpCloudEmulator, key: str = KEY) -> JumpCloudDirectory:
    return JumpCloudDirectory(
        api_url=jc.url, api_key=key, http=lambda: httpx.Client(verify=ssl.create_default_context(cafile=jc.ca_path))
    )


def synced(view: DirectoryView) -> DirectoryView:
    return replace(view, synced_at=100.0)  # as the sync thread stamps it: after these tokens' sign-in


def user(sub: str, *, groups: tuple[str, ...] = (ADMINS, VIEWERS), roles: tuple[str, ...] = ("Viewer", "Admin")):
    return IdentityUser(sub, sub, "", roles, auth_time=1, idp="default", groups=groups)


def test_states_aliases_and_group_members(jc: JumpCloudEmulator) -> None:
    ada = jc.put_user(username="ada", email="ada@example.test")["_id"]
    bob = jc.put_user(username="bob", email="bob@example.test")["_id"]
    cy = jc.put_user(username="cy", email="cy@example.test", suspended=True)["_id"]
    dee = jc.put_user(username="dee", email="dee@example.test", account_locked=True)["_id"]
    eve = jc.put_user(username="eve", email="eve@example.test", activated=False)["_id"]
    admins = jc.put_group(name=ADMINS)["id"]
    jc.put_group(name=VIEWERS)
    jc.add_member(admins, ada)
    view = synced(client(jc).sync({ADMINS, VIEWERS, "Gone Group"}))
    states = {uid: view.accounts[uid].state for uid in (ada, bob, cy, dee, eve)}
    assert states == {ada: "enabled", bob: "enabled", cy: "suspended", dee: "locked", eve: "deactivated"}
    assert view.holders == {ADMINS: frozenset({ada}), VIEWERS: frozenset(), "Gone Group": frozenset()}
    # A token may name the user by id, e-mail or username.
    assert view.key_of(ada) == ada and view.key_of("ADA@example.test") == ada and view.key_of("bob") == bob
    result = apply(user("bob@example.test"), view, POLICY, 10)
    assert isinstance(result, DirectoryRefusal)  # nobody holds either group: nothing left
    assert isinstance(apply(user("cy"), view, POLICY, 10), DirectoryRefusal)
    kept = apply(user(ada), view, POLICY, 10)
    assert isinstance(kept, IdentityUser) and kept.roles == ("Admin",)


def test_paging_past_one_hundred(jc: JumpCloudEmulator) -> None:
    ids = [jc.put_user(username=f"u{i}", email=f"u{i}@example.test")["_id"] for i in range(230)]
    group = jc.put_group(name=ADMINS)["id"]
    for uid in ids[:150]:
        jc.add_member(group, uid)
    directory = client(jc)
    view = directory.sync({ADMINS})
    assert len(view.accounts) == 230 and len(view.holders[ADMINS]) == 150
    # ceil(230/100) users + 1 groups page + ceil(150/100) members pages
    assert dict(directory.calls) == {"systemusers": 3, "usergroups": 1, "members": 2}


def test_a_deleted_user_is_remembered_an_unknown_subject_is_not_refused(jc: JumpCloudEmulator) -> None:
    ada = jc.put_user(username="ada", email="ada@example.test")["_id"]
    directory = client(jc)
    directory.sync(set())
    jc.delete_user(ada)
    view = synced(directory.sync(set()))
    assert view.accounts[ada].state == "deleted" and view.key_of("ada@example.test") == ada
    assert isinstance(apply(user("ada"), view, POLICY, 10), DirectoryRefusal)
    stranger = user("svc-client-id")
    assert apply(stranger, view, POLICY, 10) is stranger


def test_a_revoked_key_is_a_configuration_error(jc: JumpCloudEmulator) -> None:
    with pytest.raises(DirectoryForbidden, match="jumpcloud_api_key"):
        client(jc, key="wrong").sync(set())


def test_an_outage_raises_unavailable(jc: JumpCloudEmulator) -> None:
    jc.fail("503", times=1)
    with pytest.raises(DirectoryUnavailable, match="503"):
        client(jc).sync(set())
