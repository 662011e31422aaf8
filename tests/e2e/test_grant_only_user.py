"""A person whose only access is a DAG grant: headless Chromium signs them in through the local IdP and the
Airflow UI's DAG list shows the granted DAGs and nothing else. The screenshot lands in $SCREENSHOT_DIR."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.browser import Browser, save_screenshot, sign_in
from tests.support.dags import Bundle, bundle_settings, copy_bundles, dag_ids, poll, reserialize, signed_in
from tests.support.deployment import Deployment, local_deployment

pytestmark = pytest.mark.integration

BUNDLES = [Bundle("dags-folder", "main")]
GRANTED = ["analytics_daily", "analytics_hourly"]
OTHERS = ["finance_close", "ops_cleanup", "plain_other"]
DAG_GRANTS = [{"groups": ["analytics-operators"], "dags": ["analytics_*"], "role": "Op"}]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow_home_e2e_grant")
    copy_bundles(home, BUNDLES)
    extra = {**bundle_settings(home, BUNDLES), "AIRFLOW__IDENTITY_AUTH_MANAGER__DAG_GRANTS": json.dumps(DAG_GRANTS)}
    with local_deployment(home, extra, prepare=reserialize) as running:
        running.idp.put_user("gina", {"name": "Gina", "groups": ["analytics-operators"]})
        # The API answers first: once it lists the grant's DAGs, the DAG index is loaded for the UI too.
        api = signed_in(running, "gina")
        poll(lambda: dag_ids(api, running)[0] == GRANTED, what="the API lists gina's granted DAGs")
        yield running


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = Browser()
    yield chromium
    chromium.close()


def test_dag_list_shows_only_the_granted_dags(browser: Browser, deployment: Deployment) -> None:
    sign_in(browser, deployment, "gina", "/dags")
    browser.wait_for(f"location.href === {deployment.url + '/dags'!r}")
    browser.wait_for(" && ".join(f"document.body.innerText.includes({dag_id!r})" for dag_id in GRANTED), timeout=30)
    # The UI's own count (total_entries of the same API call): no DAG was hidden by the page only.
    browser.wait_for(r"/\b2 Dags\b/i.test(document.body.innerText)")
    save_screenshot(browser, "grant-only-dags")
    text = browser.eval("document.body.innerText")
    assert [dag_id for dag_id in OTHERS if dag_id in text] == [], text
    assert "Admin" not in text  # no global role, so no admin menu
