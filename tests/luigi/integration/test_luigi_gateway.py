"""The gateway for real: a real luigid (subprocess, loopback), the gateway under uvicorn, the real local IdP
(people sign in through its login page, workers get client-credentials tokens), and real luigi workers
running a small task graph. Every refusal is checked against luigid's own state: nothing changed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dev.airflow_server import free_port
from dev.idp.local_idp import API_AUDIENCE, LocalIdp, login_through_idp, start_local_idp
from dev.luigi_stack import WORKER_CLIENTS, Process, run_worker, start_luigid, worker_config
from tests.luigi.support import (
    Served,
    api,
    client_token,
    luigid_call,
    same_origin,
    serve,
    settings_for,
    signed_in,
    task_status,
)
from tests.support.audit import audit_events

pytestmark = pytest.mark.integration

SVC, SVC_SECRET = "svc-luigi", WORKER_CLIENTS["svc-luigi"]["secret"]
SVC2, SVC2_SECRET = "svc-luigi-2", WORKER_CLIENTS["svc-luigi-2"]["secret"]


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def idp(port: int) -> Iterator[LocalIdp]:
    base = f"http://127.0.0.1:{port}"
    with start_local_idp(
        redirect_uris=[f"{base}/auth/callback"],
        post_logout_uris=[f"{base}/auth/logged-out"],
        service_clients=WORKER_CLIENTS,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def luigid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    started = start_luigid(tmp_path_factory.mktemp("luigid"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def gateway(idp: LocalIdp, luigid: Process, port: int) -> Iterator[Served]:
    with serve(settings_for(idp, upstream=luigid.url, port=port)) as served:
        yield served


def helper_config(idp: LocalIdp, client: str = SVC, secret: str = SVC_SECRET) -> str:
    return worker_config(
        token_endpoint=idp.token_endpoint, client_id=client, client_secret=secret, resource=API_AUDIENCE
    )


def failed_task(gateway: Served, idp: LocalIdp, workdir: Path) -> str:
    """Run AlwaysFails through the gateway: luigid then holds a FAILED task (its id is returned)."""
    result = run_worker(
        workdir,
        helper_config(idp),
        [
            "--module",
            "dev.luigi_pipeline",
            "AlwaysFails",
            "--out-dir",
            str(workdir),
            "--scheduler-url",
            gateway.url + "/",
        ],
    )
    assert result.returncode == 1, result.stderr[-3000:]
    status = luigid_call(gateway.settings.upstream.base_url, "task_list", status="FAILED", upstream_status="")
    ids = [task_id for task_id, task in status.items() if task["params"]["out_dir"] == str(workdir)]
    assert len(ids) == 1, status
    return ids[0]


@pytest.fixture(scope="module")
def failed(gateway: Served, idp: LocalIdp, tmp_path_factory: pytest.TempPathFactory) -> str:
    return failed_task(gateway, idp, tmp_path_factory.mktemp("failing"))


@pytest.fixture(scope="module")
def worker_token(idp: LocalIdp) -> str:
    return client_token(idp, SVC, SVC_SECRET)


def test_a_worker_runs_the_pipeline_with_the_helper_s_bearer(
    gateway: Served, idp: LocalIdp, luigid: Process, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_identity_provider.audit")
    result = run_worker(
        tmp_path,
        helper_config(idp),
        ["--module", "dev.luigi_pipeline", "Report", "--out-dir", str(tmp_path), "--scheduler-url", gateway.url + "/"],
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "report.txt").read_text() == "report\nROWS: 3\n"
    done = luigid_call(luigid.url, "task_list", status="DONE", upstream_status="")
    mine = {task["name"] for task in done.values() if task["params"]["out_dir"] == str(tmp_path)}
    assert mine == {"Extract", "Transform", "Report"}
    calls = [e for e in audit_events(caplog, "luigi_call") if e.get("status") == "DONE"]
    assert {e["task_family"] for e in calls} >= {"Extract", "Transform", "Report"}
    assert all(e["user_id"] == SVC and e["via"] == "bearer" and e["roles"] == ["Worker"] for e in calls)


def test_an_unmodified_worker_sends_the_token_as_the_basic_password(
    gateway: Served, luigid: Process, worker_token: str, tmp_path: Path
) -> None:
    scheduler_url = gateway.url.replace("http://", f"http://worker:{worker_token}@") + "/"
    config = "[core]\nrpc-retry-attempts = 1\nrpc-retry-wait = 1\n[worker]\nkeep_alive = false\n"
    result = run_worker(
        tmp_path,
        config,
        ["--module", "dev.luigi_pipeline", "Extract", "--out-dir", str(tmp_path), "--scheduler-url", scheduler_url],
        helper=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    done = luigid_call(luigid.url, "task_list", status="DONE", upstream_status="")
    assert any(t["params"]["out_dir"] == str(tmp_path) for t in done.values())


def test_no_credentials_get_401_and_a_browser_is_sent_to_sign_in(
    gateway: Served, luigid: Process, failed: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_identity_provider.audit")
    refused = api(None, gateway.url, "forgive_failures", task_id=failed)
    assert refused.status_code == 401 and refused.json()["reason"] == "unauthenticated"
    assert refused.headers["www-authenticate"].startswith("Bearer ")  # never Basic: no browser password dialog
    assert task_status(luigid.url, failed) == "FAILED"
    denial = audit_events(caplog, "authorization")[-1]
    assert (denial["reason"], denial["method"], denial["http_status"]) == ("unauthenticated", "forgive_failures", 401)
    page = httpx.get(f"{gateway.url}/static/visualiser/index.html", headers={"Accept": "text/html"})
    assert page.status_code == 302
    assert page.headers["location"] == f"{gateway.url}/auth/login?next=%2Fstatic%2Fvisualiser%2Findex.html"


def test_a_bad_token_gets_401_with_the_reason(gateway: Served, worker_token: str) -> None:
    tampered = worker_token[:-4] + ("AAAA" if not worker_token.endswith("AAAA") else "BBBB")
    response = httpx.get(f"{gateway.url}/api/task_list", headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401 and response.json()["reason"] == "bad_signature"


def test_a_worker_may_not_mark_tasks_done(
    gateway: Served, luigid: Process, worker_token: str, failed: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_identity_provider.audit")
    headers = {"Authorization": f"Bearer {worker_token}"}
    refused = httpx.post(
        f"{gateway.url}/api/mark_as_done", data={"data": json.dumps({"task_id": failed})}, headers=headers
    )
    assert refused.status_code == 403
    body = refused.json()
    assert (body["reason"], body["method"], body["role_needed"]) == ("not_permitted", "mark_as_done", "Op")
    assert "needs the role Op" in body["detail"] and "Worker" in body["detail"]
    assert task_status(luigid.url, failed) == "FAILED"
    denial = audit_events(caplog, "authorization")[-1]
    assert (denial["user_id"], denial["role_needed"], denial["service"]) == (SVC, "Op", "luigi")


def test_a_worker_may_act_only_under_its_own_identity(
    gateway: Served, idp: LocalIdp, luigid: Process, worker_token: str, failed: str
) -> None:
    mine = "Worker(salt=111222333, workers=1, host=a, username=u, pid=1)"
    first = api(
        None,
        gateway.url,
        "add_worker",
        worker=mine,
        info={"host": "a"},
        headers={"Authorization": f"Bearer {worker_token}"},
    )
    assert first.status_code == 200, first.text
    other = {"Authorization": f"Bearer {client_token(idp, SVC2, SVC2_SECRET)}"}
    for method, arguments in (
        ("add_task", {"task_id": failed, "status": "DONE", "worker": mine}),
        ("get_work", {"worker": mine}),
    ):
        refused = api(None, gateway.url, method, headers=other, **arguments)
        assert refused.status_code == 403 and refused.json()["reason"] == "worker_not_owned", refused.text
    assert task_status(luigid.url, failed) == "FAILED"
    missing = api(None, gateway.url, "add_task", headers=other, task_id=failed, status="DONE")
    assert missing.status_code == 403 and missing.json()["reason"] == "worker_missing"
    assert task_status(luigid.url, failed) == "FAILED"


def test_a_worker_reports_only_on_tasks_it_registered_or_was_given(
    gateway: Served, idp: LocalIdp, luigid: Process, failed: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_identity_provider.audit")
    other = {"Authorization": f"Bearer {client_token(idp, SVC2, SVC2_SECRET)}"}
    own = "Worker(salt=444555666, workers=1, host=b, username=u, pid=2)"
    assert api(None, gateway.url, "add_worker", worker=own, info={"host": "b"}, headers=other).status_code == 200
    # `failed` was registered by, and handed to, SVC's worker: SVC2 may not report on it under its own worker,
    # not even with the scheduling call's description (family, params) that registers a complete task.
    for arguments in (
        {"status": "DONE"},
        {"status": "DISABLED"},
        {"status": "DONE", "family": "AlwaysFails", "params": {}, "deps": None},
    ):
        refused = api(None, gateway.url, "add_task", headers=other, task_id=failed, worker=own, **arguments)
        assert refused.status_code == 403 and refused.json()["reason"] == "task_not_owned", refused.text
        assert failed in refused.json()["detail"] and "mark_as_done" in refused.json()["detail"]
    progress = api(None, gateway.url, "set_task_status_message", headers=other, task_id=failed, status_message="x")
    assert progress.status_code == 403 and progress.json()["reason"] == "task_not_owned"
    assistant = api(None, gateway.url, "get_work", headers=other, worker=own, assistant=True)
    assert assistant.status_code == 403 and assistant.json()["reason"] == "assistant_not_allowed"
    assert task_status(luigid.url, failed) == "FAILED"
    assert luigid_call(luigid.url, "get_task_status_message", task_id=failed)["statusMessage"] != "x"
    assert not [e for e in audit_events(caplog, "luigi_call") if e.get("worker") == own and e["method"] != "add_worker"]
    denial = audit_events(caplog, "authorization")[-1]
    assert (denial["user_id"], denial["reason"]) == (SVC2, "assistant_not_allowed")


def test_unknown_methods_are_refused_even_for_an_admin(gateway: Served, luigid: Process) -> None:
    with signed_in(gateway.url, "alice") as admin:
        response = api(admin, gateway.url, "shutdown", headers=same_origin(gateway.url))
        assert response.status_code == 403 and response.json()["reason"] == "unknown_method"
        assert admin.get(f"{gateway.url}/debug/vars").status_code == 404
        # A decoded "?" or "#" in a page path is re-quoted for luigid (which answers as it answers it directly),
        # never a crash of the gateway's own.
        for odd in ("/tasklist/a%3Fb", "/tasklist/a%23b"):
            assert admin.get(f"{gateway.url}{odd}").status_code == httpx.get(f"{luigid.url}{odd}").status_code


def test_a_viewer_sees_the_visualiser_and_lists_but_cannot_mark_done(
    gateway: Served, luigid: Process, failed: str
) -> None:
    with signed_in(gateway.url, "bob") as viewer:
        index = viewer.get(f"{gateway.url}/static/visualiser/index.html")
        assert (
            index.status_code == 200 and "LuigiAPI" in viewer.get(f"{gateway.url}/static/visualiser/js/luigi.js").text
        )
        listed = api(viewer, gateway.url, "task_list", status="FAILED", upstream_status="")
        assert listed.status_code == 200 and failed in listed.json()["response"]
        refused = api(viewer, gateway.url, "mark_as_done", task_id=failed, headers=same_origin(gateway.url))
        assert refused.status_code == 403 and refused.json()["role_needed"] == "Op"
        assert api(viewer, gateway.url, "add_task", task_id=failed, status="DONE", worker="w").status_code == 403
    assert task_status(luigid.url, failed) == "FAILED"


def test_an_op_marks_done_from_the_visualiser_but_not_from_another_site(
    gateway: Served, idp: LocalIdp, luigid: Process, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    task = failed_task(gateway, idp, tmp_path)
    caplog.set_level(logging.INFO, logger="airflow_identity_provider.audit")
    with signed_in(gateway.url, "dave") as op:
        cross = api(op, gateway.url, "mark_as_done", task_id=task, headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403 and cross.json()["reason"] == "cross_site"
        assert task_status(luigid.url, task) == "FAILED"
        done = api(op, gateway.url, "mark_as_done", task_id=task, headers=same_origin(gateway.url))
        assert done.status_code == 200 and done.json()["response"]["status"] == "DONE"
    assert task_status(luigid.url, task) == "DONE"
    recorded = [e for e in audit_events(caplog, "luigi_call") if e["method"] == "mark_as_done"]
    assert recorded and recorded[-1]["user_id"] == "dave" and recorded[-1]["via"] == "session"
    # The task: family and hash always (the audit writer may mask a long id that looks random).
    assert (recorded[-1]["task_family"], recorded[-1]["task_hash"]) == ("AlwaysFails", task[-10:])


def test_sign_out_ends_the_session_and_the_idp_session(gateway: Served, idp: LocalIdp) -> None:
    with signed_in(gateway.url, "bob") as viewer:
        confirm = viewer.get(f"{gateway.url}/auth/logout")  # a page with the button, nothing ended yet
        assert confirm.status_code == 200 and f'action="{gateway.url}/auth/logout"' in confirm.text
        assert api(viewer, gateway.url, "task_list").status_code == 200
        out = viewer.post(f"{gateway.url}/auth/logout", headers=same_origin(gateway.url))
        assert out.status_code == 302 and out.headers["location"].startswith(idp.end_session_endpoint)
        assert "id_token_hint=" in out.headers["location"]
        assert api(viewer, gateway.url, "task_list").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},  # a form on another site
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain
        {"Origin": "null"},  # a sandboxed frame
        {},  # no browser headers at all
    ],
)
def test_sign_out_from_another_site_is_refused_and_the_session_stays(
    gateway: Served, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A link, image or form on another page cannot end a person's session: GET only shows the button, and a POST
    that does not come from the gateway's own page is a 403 that clears no cookie."""
    caplog.set_level(logging.INFO, logger="airflow_identity_provider.audit")
    with signed_in(gateway.url, "bob") as viewer:
        refused = viewer.post(f"{gateway.url}/auth/logout", headers=headers)
        assert refused.status_code == 403 and "Sign out button" in refused.text
        assert "set-cookie" not in refused.headers
        assert api(viewer, gateway.url, "task_list").status_code == 200
    assert [e["reason"] for e in audit_events(caplog, "logout")] == ["cross_site"]


def test_luigid_down_is_502_and_nothing_is_pretended(idp: LocalIdp, worker_token: str) -> None:
    port = free_port()
    with serve(settings_for(idp, upstream=f"http://127.0.0.1:{free_port()}", port=port)) as down:
        response = api(None, down.url, "task_list", headers={"Authorization": f"Bearer {worker_token}"})
        assert response.status_code == 502 and response.json()["reason"] == "upstream_unreachable"
        health = httpx.get(f"{down.url}/_gateway/health")
        assert health.status_code == 503 and health.json() == {"gateway": "ok", "luigid": "unreachable"}


def test_idp_down_is_503_while_signed_in_sessions_and_validated_tokens_keep_working(luigid: Process) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    own_idp = start_local_idp(redirect_uris=[f"{base}/auth/callback"], service_clients=WORKER_CLIENTS)
    try:
        settings = settings_for(own_idp, upstream=luigid.url, port=port)
        with serve(settings) as served, httpx.Client(timeout=30) as late:
            token = client_token(own_idp, SVC, SVC_SECRET)
            bearer = {"Authorization": f"Bearer {token}"}
            assert api(None, served.url, "task_list", headers=bearer).status_code == 200
            # A sign-in under way when the IdP goes down: the code cannot be redeemed.
            begun = late.get(f"{served.url}/auth/login")
            back = login_through_idp(late, begun.headers["location"], "dave")
            with signed_in(served.url, "bob") as viewer:
                own_idp.stop()
                finished = late.get(back.headers["location"])
                assert finished.status_code == 503 and "Identity provider unreachable" in finished.text
                assert api(late, served.url, "task_list").status_code == 401  # dave never got a session
                assert api(viewer, served.url, "task_list").status_code == 200  # bob's session goes on
                assert api(None, served.url, "task_list", headers=bearer).status_code == 200  # validated already
        # A gateway that never saw the IdP's keys cannot check a token: 503, not 401.
        with serve(settings_for(own_idp, upstream=luigid.url, port=free_port())) as fresh:
            response = api(None, fresh.url, "task_list", headers=bearer)
            assert response.status_code == 503 and response.json()["reason"] == "idp_unavailable"
            assert response.headers["retry-after"] == "30"
    finally:
        own_idp.stop()


def test_sign_in_is_audited_and_a_person_without_a_luigi_role_is_told_why(
    gateway: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_identity_provider.audit")
    with signed_in(gateway.url, "bob"):
        pass
    login = [e for e in audit_events(caplog, "login") if e["outcome"] == "success"][-1]
    assert (login["user_id"], login["roles"], login["kind"]) == ("bob", ["Viewer"], "browser")
    with httpx.Client(timeout=30) as browser:
        start = browser.get(f"{gateway.url}/auth/login")
        back = login_through_idp(browser, start.headers["location"], "carol")  # group marketing: no role
        refused = browser.get(back.headers["location"])
        assert refused.status_code == 403 and "No Luigi role" in refused.text
        assert "luigi_gateway_session" not in browser.cookies
    failure = [e for e in audit_events(caplog, "login") if e["outcome"] == "failure"][-1]
    assert (failure["reason"], failure["user_id"], failure["service"]) == ("no_mapped_role", "carol", "luigi")


def test_a_workload_token_of_a_trusted_issuer_maps_by_its_subject(luigid: Process, idp: LocalIdp) -> None:
    """The Kubernetes pattern: a second provider trusts another issuer (here a second local IdP standing in
    for the cluster's) and maps service accounts by ``sub``; its tokens carry no roles at all."""
    cluster = start_local_idp(
        redirect_uris=["http://127.0.0.1:1/unused"],
        service_clients={"system-serviceaccount-etl-worker": {"secret": "k8s", "roles": []}},
    )
    try:
        port = free_port()
        staff = settings_for(idp, upstream=luigid.url, port=port)
        sections = {
            "luigi_gateway": {
                "upstream": luigid.url, "public_url": staff.public_url, "port": str(port),
                "session_secret": staff.session_secret, "providers": "staff,cluster",
            },
            "luigi_gateway_staff": {
                "issuer": idp.issuer, "client_id": idp.client_id, "client_secret": idp.client_secret,
                "role_mapping": json.dumps({"airflow-viewers": "Viewer"}), "api_audiences": API_AUDIENCE,
            },
            "luigi_gateway_cluster": {
                "issuer": cluster.issuer, "client_id": "luigi-gateway", "groups_claim": "sub",
                "role_mapping": json.dumps({"system-serviceaccount-etl-worker": "Worker"}),
                "api_audiences": API_AUDIENCE,
            },
        }  # fmt: skip
        from airflow_identity_provider.luigi_gateway.settings import parse_gateway

        with serve(parse_gateway(sections)) as served:
            workload = client_token(cluster, "system-serviceaccount-etl-worker", "k8s")
            bearer = {"Authorization": f"Bearer {workload}"}
            me = "Worker(salt=999888777, workers=1, host=pod, username=app, pid=7)"
            assert api(None, served.url, "ping", headers=bearer, worker=me).status_code == 200
            assert api(None, served.url, "mark_as_done", headers=bearer, task_id="x").status_code == 403
            # A staff token with no mapped role gets nothing from the other provider's mapping.
            staff_machine = {"Authorization": f"Bearer {client_token(idp, SVC, SVC_SECRET)}"}
            refused = api(None, served.url, "task_list", headers=staff_machine)
            assert refused.status_code == 403 and refused.json()["reason"] == "no_mapped_role"
    finally:
        cluster.stop()


def test_the_helper_reads_a_token_file_as_kubelet_or_workload_identity_leave_it(
    gateway: Served, luigid: Process, worker_token: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(worker_token + "\n")
    config = (
        "[core]\nrpc-retry-attempts = 1\nrpc-retry-wait = 1\n[worker]\nkeep_alive = false\n"
        f"[identity_gateway]\ntoken_file = {token_file}\n"
    )
    result = run_worker(
        tmp_path,
        config,
        ["--module", "dev.luigi_pipeline", "Extract", "--out-dir", str(tmp_path), "--scheduler-url", gateway.url + "/"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    token_file.write_text("not-a-token\n")  # a bad token: the worker is refused, luigid learns nothing
    refused = run_worker(
        tmp_path,
        config,
        [
            "--module",
            "dev.luigi_pipeline",
            "Transform",
            "--out-dir",
            str(tmp_path),
            "--scheduler-url",
            gateway.url + "/",
        ],
    )
    assert "malformed_token" in refused.stderr, refused.stderr[-3000:]
    listed = luigid_call(luigid.url, "task_search", task_str="Transform")
    assert not any(task["params"]["out_dir"] == str(tmp_path) for tasks in listed.values() for task in tasks.values())
