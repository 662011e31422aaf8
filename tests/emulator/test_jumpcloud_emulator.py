"""The JumpCloud emulator as a real process, over plain HTTPS as a JumpCloud API client calls it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dev.jumpcloud_emulator.client import JumpCloudEmulator

pytestmark = pytest.mark.integration

KEY = "jc-test-key"


@pytest.fixture(scope="module")
def jc() -> Iterator[JumpCloudEmulator]:
    with JumpCloudEmulator(api_key=KEY) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _reset(jc: JumpCloudEmulator) -> None:  # overrides the ARM emulator's reset of tests/emulator/conftest.py
    jc.reset()


def get(jc: JumpCloudEmulator, path: str, key: str | None = KEY, **kw: Any) -> requests.Response:
    headers = {"x-api-key": key} if key else {}
    headers.update(kw.pop("headers", {}))
    return requests.get(jc.api_url + path, headers=headers, verify=jc.ca_path, timeout=kw.pop("timeout", 10), **kw)


def all_users(jc: JumpCloudEmulator, fields: str) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    while True:
        body = get(jc, "/systemusers", params={"limit": 100, "skip": len(users), "fields": fields}).json()
        users += body["results"]
        if len(users) >= body["totalCount"]:
            return users


def test_api_key_is_required(jc: JumpCloudEmulator) -> None:
    assert get(jc, "/systemusers").status_code == 200
    for key in (None, "wrong"):
        resp = get(jc, "/systemusers", key=key)
        assert (resp.status_code, resp.json()) == (401, {"message": "Unauthorized"})
    assert get(jc, "/v2/usergroups", key=None).status_code == 401
    jc.add_api_key("rotated")
    jc.revoke_api_key(KEY)
    assert get(jc, "/systemusers").status_code == 401
    assert get(jc, "/systemusers", key="rotated").status_code == 200
    jc.reset()  # back to the start-up key
    assert get(jc, "/systemusers").status_code == 200


def test_systemusers_paging_fields_filter_sort(jc: JumpCloudEmulator) -> None:
    ids = [jc.put_user(username=f"user{n:02d}")["_id"] for n in range(25)]
    first = get(jc, "/systemusers").json()
    assert first["totalCount"] == 25 and len(first["results"]) == 10  # default limit 10
    page = get(jc, "/systemusers", params={"limit": 10, "skip": 20}).json()["results"]
    assert [u["_id"] for u in page] == ids[20:]
    assert get(jc, "/systemusers", params={"limit": 101}).status_code == 400
    users = all_users(jc, "username suspended account_locked activated state")
    assert len(users) == 25
    assert users[0] == {
        "_id": ids[0], "username": "user00", "suspended": False, "account_locked": False,
        "activated": True, "state": "ACTIVATED",
    }  # fmt: skip
    assert set(get(jc, "/systemusers", params={"fields": "email,username"}).json()["results"][0]) == {
        "_id",
        "email",
        "username",
    }
    jc.suspend_user(ids[3])
    suspended = get(jc, "/systemusers", params={"filter": "suspended:$eq:true", "fields": "username"}).json()
    assert suspended == {"totalCount": 1, "results": [{"_id": ids[3], "username": "user03"}]}
    newest = get(jc, "/systemusers", params={"sort": "-username", "limit": 1}).json()["results"][0]
    assert newest["username"] == "user24"
    one = get(jc, f"/systemusers/{ids[3]}", params={"fields": "state"}).json()
    assert one == {"_id": ids[3], "state": "SUSPENDED"}
    assert get(jc, "/systemusers/000000000000000000000000").status_code == 404


def test_user_states(jc: JumpCloudEmulator) -> None:
    uid = jc.put_user(username="alice", email="alice@example.test")["_id"]
    assert jc.suspend_user(uid)["state"] == "SUSPENDED"
    assert jc.unsuspend_user(uid)["state"] == "ACTIVATED"
    locked = jc.lock_user(uid)
    assert (locked["account_locked"], locked["state"]) == (True, "ACTIVATED")
    jc.unlock_user(uid)
    staged = jc.deactivate_user(uid)
    assert (staged["activated"], staged["state"], staged["suspended"]) == (False, "STAGED", False)
    assert jc.patch_user(uid, state="SUSPENDED")["suspended"] is True
    fields = "username suspended account_locked activated state"
    assert get(jc, f"/systemusers/{uid}", params={"fields": fields}).json() == {
        "_id": uid, "username": "alice", "suspended": True, "account_locked": False, "activated": False,
        "state": "SUSPENDED",
    }  # fmt: skip


def test_usergroups_and_members(jc: JumpCloudEmulator) -> None:
    users = [jc.put_user(username=f"m{n}")["_id"] for n in range(15)]
    group = jc.put_group(name="airflow-admins")["id"]
    other = jc.put_group(name="airflow-viewers")["id"]
    for uid in users:
        jc.add_member(group, uid)
    jc.add_member(other, users[0])
    groups = get(jc, "/v2/usergroups", params={"limit": 100})
    assert groups.headers["x-total-count"] == "2"
    assert [(g["id"], g["name"], g["type"]) for g in groups.json()] == [
        (group, "airflow-admins", "user_group"),
        (other, "airflow-viewers", "user_group"),
    ]
    first = get(jc, f"/v2/usergroups/{group}/members")
    assert first.headers["x-total-count"] == "15" and len(first.json()) == 10
    assert first.json()[0] == {"attributes": {}, "to": {"attributes": {}, "id": users[0], "type": "user"}}
    rest = get(jc, f"/v2/usergroups/{group}/members", params={"limit": 10, "skip": 10}).json()
    assert [m["to"]["id"] for m in first.json() + rest] == users
    memberof = get(jc, f"/v2/users/{users[0]}/memberof").json()
    assert [g["id"] for g in memberof] == [group, other]

    jc.remove_member(group, users[1])
    jc.suspend_user(users[2])  # still a member
    jc.delete_user(users[0])  # gone from every group
    ids = [m["to"]["id"] for m in get(jc, f"/v2/usergroups/{group}/members", params={"limit": 100}).json()]
    assert ids == users[2:]
    assert get(jc, f"/v2/usergroups/{other}/members").json() == []
    assert get(jc, "/v2/usergroups/nope/members").status_code == 404
    assert get(jc, "/v2/usergroups", params={"limit": 500}).status_code == 400


def test_fail_modes_and_stats(jc: JumpCloudEmulator) -> None:
    jc.fail("429", times=1, retry_after=3)
    throttled = get(jc, "/systemusers")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "3")
    assert get(jc, "/systemusers").status_code == 200
    # 2 s, so the requests below land inside the outage even on a busy machine.
    jc.fail("503", seconds=2.0)
    outage = time.monotonic() + 2.0  # no earlier than the emulator's window ends
    assert get(jc, "/v2/usergroups").status_code == 503
    time.sleep(max(0.0, outage - time.monotonic()) + 0.05)
    assert get(jc, "/v2/usergroups").status_code == 200
    jc.fail("hang", seconds=30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        get(jc, "/systemusers", timeout=0.5)
    jc.clear_failures()
    assert get(jc, "/systemusers").status_code == 200
    jc.fail("drop", times=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        get(jc, "/systemusers")

    jc.reset_stats()
    group = jc.put_group(name="g")["id"]  # control calls are not counted
    get(jc, "/systemusers")
    get(jc, "/systemusers", key=None)
    get(jc, f"/v2/usergroups/{group}/members", headers={"x-org-id": "org-1"})
    stats = jc.stats()
    assert stats["total"] == 3
    assert stats["routes"] == {"/api/systemusers": 2, "/api/v2/usergroups/{id}/members": 1}
    assert stats["paths"][f"/api/v2/usergroups/{group}/members"] == 1
    assert stats["statuses"] == {"200": 2, "401": 1}
    assert jc.requests()[-1]["org_id"] == "org-1"
