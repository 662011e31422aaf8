"""GraphDirectory against the Graph emulator: delta queries (users, service principals, tracked groups with
members@delta and @removed), PIM-style expiring memberships, expired delta links, refusals and outages."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from airflow_identity_provider.auth.directory import DirectoryForbidden, DirectoryUnavailable
from airflow_identity_provider.auth.directory.graph import GraphDirectory
from airflow_identity_provider.auth.rules.directory import SERVICE_PRINCIPAL
from dev.graph_emulator.client import GraphEmulator
from tests.unit.auth.directory.conftest import CLIENT, SECRET, TENANT

Make = Callable[..., GraphDirectory]
ADMINS, OPS, NESTED = (str(uuid.uuid5(uuid.NAMESPACE_DNS, n)) for n in ("admins", "ops", "nested"))


def oid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def key(name: str) -> str:
    return f"{TENANT}:{oid(name)}"


@pytest.fixture
def people(graph: GraphEmulator) -> None:
    for name in ("ada", "bob", "cy"):
        graph.put_user(oid(name), upn=f"{name}@contoso.test")
    graph.put_service_principal(oid("svc"), app_id=oid("svc-app"))
    for group in (ADMINS, OPS, NESTED):
        graph.put_group(group, display_name=group)
    graph.add_member(ADMINS, oid("ada"))
    graph.add_member(OPS, oid("bob"))
    graph.add_member(OPS, oid("svc"), type="servicePrincipals")
    graph.add_member(NESTED, oid("cy"))
    graph.add_member(OPS, NESTED, type="groups")  # cy is in OPS through NESTED


@pytest.mark.usefixtures("people")
def test_first_round_reads_accounts_and_tracked_groups(make_directory: Make) -> None:
    view = make_directory().sync({ADMINS, OPS, "Airflow.Op"})
    assert {k: a.state for k, a in view.accounts.items()} == {
        key("ada"): "enabled",
        key("bob"): "enabled",
        key("cy"): "enabled",
        key("svc"): "enabled",
    }
    assert view.accounts[key("svc")].kind == SERVICE_PRINCIPAL
    assert view.holders[ADMINS] == {key("ada")}
    assert view.holders[OPS] == {key("bob"), key("svc"), key("cy")}  # transitive, through NESTED
    assert "Airflow.Op" not in view.holders  # no resource defines it here: left as tokens carry it
    assert view.scope == f"{TENANT}:" and view.key_of(key("ada")) == key("ada")


@pytest.mark.usefixtures("people")
def test_later_rounds_see_disable_delete_and_membership_changes(graph: GraphEmulator, make_directory: Make) -> None:
    directory = make_directory()
    first = directory.sync({ADMINS, OPS})
    graph.disable_user(oid("ada"))
    graph.delete_user(oid("bob"))
    graph.disable_service_principal(oid("svc"))
    graph.remove_member(ADMINS, oid("ada"))
    graph.add_member(ADMINS, oid("cy"))
    graph.remove_member(NESTED, oid("cy"))
    calls_before = sum(directory.calls.values())
    view = directory.sync({ADMINS, OPS})
    assert view.accounts[key("ada")].state == "disabled" and view.accounts[key("svc")].state == "disabled"
    assert key("bob") not in view.accounts  # deleted: absent, which apply reads as deleted
    assert view.holders[ADMINS] == {key("cy")}
    assert key("cy") not in view.holders[OPS]
    # Incremental: one page per stream: users, service principals, and each group batch (the tracked groups'; the
    # nested group, found in the first round, got a batch of its own).
    assert sum(directory.calls.values()) - calls_before == 4, dict(directory.calls)
    assert first.accounts is not view.accounts


@pytest.mark.usefixtures("people")
def test_nothing_changed_hands_back_the_same_account_table(make_directory: Make) -> None:
    directory = make_directory()
    first = directory.sync({ADMINS})
    assert directory.sync({ADMINS}).accounts is first.accounts


@pytest.mark.usefixtures("people")
def test_pim_membership_expires(graph: GraphEmulator, make_directory: Make) -> None:
    directory = make_directory()
    pim = graph.add_member(ADMINS, oid("bob"), expires_in=3.0)  # outlasts one sync on a busy machine
    assert key("bob") in directory.sync({ADMINS}).holders[ADMINS]
    time.sleep(max(0.0, pim["expires_at"] - time.time()) + 0.05)
    assert key("bob") not in directory.sync({ADMINS}).holders[ADMINS]


@pytest.mark.usefixtures("people")
def test_paging_and_an_expired_delta_link_start_over(graph: GraphEmulator, make_directory: Make) -> None:
    for i in range(25):
        graph.put_user(oid(f"extra{i}"))
    graph.set_page_size(10, members_page_size=1)
    directory = make_directory()
    view = directory.sync({OPS})
    assert len(view.accounts) == 29 and len(view.holders[OPS]) == 3
    assert directory.calls["users"] == 3  # 28 users, 10 per page
    graph.expire_delta_tokens()
    graph.disable_user(oid("extra3"))
    view = directory.sync({OPS})
    assert view.accounts[key("extra3")].state == "disabled" and len(view.accounts) == 29


@pytest.mark.usefixtures("people")
def test_a_delta_that_fails_on_a_later_page_loses_no_change(
    graph: GraphEmulator, make_directory: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offboarding many accounts at once spans several delta pages, and a throttled later page must not leave
    the first page's disables applied to nothing: the round is read again from the same link and published."""
    leavers = ["leaver0", "leaver1"]
    for name in leavers:
        graph.put_user(oid(name))
    graph.set_page_size(2)
    directory = make_directory()
    directory.sync({ADMINS})
    for name in leavers:
        graph.disable_user(oid(name))  # both on the round's first page...
    graph.disable_user(oid("cy"))  # ...and on the second, a change that leaves every state as it was
    graph.enable_user(oid("cy"))
    real_follow = directory._follow

    def second_page_fails(url: str, family: str, take: Callable[[list[object]], None], **kw: bool) -> str | None:
        pages: list[int] = []

        def take_then_fail(items: list[object]) -> None:
            if pages and family == "users":
                raise DirectoryUnavailable(f"{url}?$skiptoken=secret-paging-state", "503 Service Unavailable")
            pages.append(1)
            take(items)

        return real_follow(url, family, take_then_fail, **kw)

    monkeypatch.setattr(directory, "_follow", second_page_fails)
    with pytest.raises(DirectoryUnavailable) as failed:
        directory.sync({ADMINS})
    assert "skiptoken" not in str(failed.value) and "secret-paging-state" not in failed.value.message
    monkeypatch.undo()
    view = directory.sync({ADMINS})
    assert [view.accounts[key(name)].state for name in leavers] == ["disabled"] * len(leavers)


@pytest.mark.usefixtures("people")
def test_a_group_tracked_later_gets_a_full_read(make_directory: Make) -> None:
    directory = make_directory()
    directory.sync({ADMINS})
    assert directory.sync({ADMINS, OPS}).holders[OPS] == {key("bob"), key("svc"), key("cy")}


def test_missing_permission_names_it(graph: GraphEmulator, make_directory: Make) -> None:
    graph.register_app(CLIENT, SECRET, roles=["GroupMember.Read.All"])
    with pytest.raises(DirectoryForbidden, match=r"User\.Read\.All"):
        make_directory().sync(set())


def test_outages_and_throttling_are_unavailable(graph: GraphEmulator, make_directory: Make) -> None:
    directory = make_directory()
    graph.fail("503", times=1)
    with pytest.raises(DirectoryUnavailable, match="503"):
        directory.sync(set())
    graph.fail("429", times=1, retry_after=7)
    with pytest.raises(DirectoryUnavailable, match="Retry-After 7"):
        directory.sync(set())
    graph.fail("drop", times=1)
    with pytest.raises(DirectoryUnavailable):
        directory.sync(set())
    directory.sync(set())  # and then it works again


def test_a_token_failure_is_unavailable(graph: GraphEmulator, make_directory: Make) -> None:
    graph.register_app(CLIENT, "another-secret")
    with pytest.raises(DirectoryUnavailable, match="token"):
        make_directory().sync(set())


@pytest.mark.usefixtures("people")
def test_group_reads_are_filtered_to_the_tracked_groups(graph: GraphEmulator, make_directory: Make) -> None:
    graph.put_group(str(uuid.uuid5(uuid.NAMESPACE_DNS, "untracked")), display_name="untracked")
    directory = make_directory()
    graph.reset_stats()
    view = directory.sync({ADMINS})
    assert view.holders[ADMINS] == {key("ada")}
    reads = [r for r in graph.requests() if r["route"] == "/v1.0/groups/delta"]
    assert [(r["query"]["$select"], r["query"]["$filter"], r["status"]) for r in reads] == [
        (["members"], [f"id eq '{ADMINS}'"], 200)
    ]


@pytest.mark.usefixtures("people")
def test_a_graph_refusing_the_filter_is_read_unfiltered(
    graph: GraphEmulator, make_directory: Make, caplog: pytest.LogCaptureFixture
) -> None:
    graph.set_filter_limit(1)  # the sync's batch names 2 groups: Graph answers 400 Request_UnsupportedQuery
    directory = make_directory()
    view = directory.sync({ADMINS, OPS})
    assert view.holders[ADMINS] == {key("ada")} and view.holders[OPS] == {key("bob"), key("svc"), key("cy")}
    assert "reading all groups instead" in caplog.text
    graph.remove_member(OPS, oid("bob"))
    calls = directory.calls["groups"]
    assert key("bob") not in directory.sync({ADMINS, OPS}).holders[OPS]
    assert directory.calls["groups"] == calls + 1  # one unfiltered stream, incremental from then on


def test_app_role_holders_from_app_role_assigned_to(graph: GraphEmulator, make_directory: Make) -> None:
    admin_role, op_role = str(uuid.uuid4()), str(uuid.uuid4())
    sp = oid("airflow-sp")
    graph.put_service_principal(sp, app_id=CLIENT, app_roles={"Airflow.Admin": admin_role, "Airflow.Op": op_role})
    for name in ("ada", "bob", "cy"):
        graph.put_user(oid(name))
    graph.put_service_principal(oid("svc"), app_id=oid("svc-app"))
    graph.put_group(OPS, display_name="ops")
    graph.add_member(OPS, oid("bob"))
    graph.put_group(NESTED, display_name="nested")
    graph.add_member(NESTED, oid("cy"))
    graph.add_member(OPS, NESTED, type="groups")  # Entra gives a group's app role to its direct members only
    graph.assign_app_role(sp, oid("ada"), admin_role)
    graph.assign_app_role(sp, OPS, op_role)
    svc = graph.assign_app_role(sp, oid("svc"), op_role, type="servicePrincipals")
    directory = make_directory()
    view = directory.sync({"Airflow.Admin", "Airflow.Op", "Airflow.Unknown"})
    assert view.holders["Airflow.Admin"] == {key("ada")}
    assert view.holders["Airflow.Op"] == {key("bob"), key("svc")}
    assert "Airflow.Unknown" not in view.holders  # no resource defines it: left as tokens carry it
    graph.remove_app_role_assignment(sp, svc["id"])
    graph.remove_member(OPS, oid("bob"))
    assert directory.sync({"Airflow.Op"}).holders["Airflow.Op"] == frozenset()
    assert directory.calls["appRoleAssignedTo"] == 2 and directory.calls["servicePrincipals"] == 3  # 2 deltas + lookup
