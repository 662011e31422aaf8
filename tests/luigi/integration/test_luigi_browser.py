"""A person's view: headless Chromium opens the gateway, is sent to the local IdP, signs in, and sees the
pipeline an authenticated worker ran in luigi's visualiser. The viewer's "mark as done" (the very request
the visualiser's button sends) is refused and changes nothing; an Op's goes through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.airflow_server import free_port
from dev.idp.local_idp import API_AUDIENCE, LocalIdp, start_local_idp
from dev.luigi_stack import WORKER_CLIENTS, Process, run_worker, start_luigid, worker_config
from tests.luigi.support import Served, luigid_call, serve, settings_for, task_status
from tests.support.browser import Browser, sign_in_at

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, LocalIdp, Process, str]]:
    workdir = tmp_path_factory.mktemp("luigi_browser")
    port = free_port()
    idp = start_local_idp(redirect_uris=[f"http://127.0.0.1:{port}/auth/callback"], service_clients=WORKER_CLIENTS)
    luigid = start_luigid(workdir)
    try:
        with serve(settings_for(idp, upstream=luigid.url, port=port)) as gateway:
            config = worker_config(
                token_endpoint=idp.token_endpoint,
                client_id="svc-luigi",
                client_secret=WORKER_CLIENTS["svc-luigi"]["secret"],
                resource=API_AUDIENCE,
            )
            for task, code in (("Report", 0), ("AlwaysFails", 1)):
                ran = run_worker(
                    workdir,
                    config,
                    [
                        "--module",
                        "dev.luigi_pipeline",
                        task,
                        "--out-dir",
                        str(workdir),
                        "--scheduler-url",
                        gateway.url + "/",
                    ],
                )
                assert ran.returncode == code, ran.stderr[-3000:]
            failed = next(iter(luigid_call(luigid.url, "task_list", status="FAILED", upstream_status="")))
            yield gateway, idp, luigid, failed
    finally:
        luigid.stop()
        idp.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = Browser()
    yield chromium
    chromium.close()


def sign_in(browser: Browser, gateway: Served, idp: LocalIdp, username: str) -> None:
    sign_in_at(browser, gateway.url + "/", idp.issuer, username)
    browser.wait_for(f"location.href.startsWith({gateway.url + '/static/visualiser/index.html'!r})")


def mark_as_done_from_the_page(browser: Browser, task_id: str) -> int:
    """The request the visualiser's "Mark as done" button sends (luigi.js jsonRPC), from the page itself."""
    status: int = browser.eval(
        "new Promise(done => $.ajax('../../api/mark_as_done', {data: {data: JSON.stringify("
        f"{{task_id: {json.dumps(task_id)}}})}}, method: 'GET', dataType: 'json'}})"
        ".always((a, b, c) => done((c && c.status) || a.status)))"
    )
    return status


def test_a_viewer_sees_the_pipeline_but_cannot_mark_a_task_done(
    browser: Browser, stack: tuple[Served, LocalIdp, Process, str], tmp_path: Path
) -> None:
    gateway, idp, luigid, failed = stack
    sign_in(browser, gateway, idp, "bob")
    browser.wait_for("document.body.innerText.includes('Report') && document.body.innerText.includes('AlwaysFails')")
    browser.screenshot(tmp_path / "viewer.png")
    assert mark_as_done_from_the_page(browser, failed) == 403
    assert task_status(luigid.url, failed) == "FAILED"


def test_an_op_marks_the_failed_task_done_from_the_visualiser(
    browser: Browser, stack: tuple[Served, LocalIdp, Process, str], tmp_path: Path
) -> None:
    gateway, idp, luigid, failed = stack
    sign_in(browser, gateway, idp, "dave")
    browser.wait_for("document.body.innerText.includes('AlwaysFails')")
    assert mark_as_done_from_the_page(browser, failed) == 200  # Chromium's Sec-Fetch-Site: same-origin
    assert task_status(luigid.url, failed) == "DONE"
    browser.screenshot(tmp_path / "op.png")
