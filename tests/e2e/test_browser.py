"""A person's view: headless Chromium opens the Airflow UI, is sent to the local IdP, signs in, and sees
the UI their role allows. Screenshots land in $SCREENSHOT_DIR (default build/screenshots); the documentation
embeds copies of them (docs/assets/screenshots)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import Browser, save_screenshot, sign_in
from tests.support.dags import Bundle, bundle_settings, copy_bundles, reserialize
from tests.support.deployment import Deployment, local_deployment

pytestmark = pytest.mark.integration

# A few DAGs, so each role's landing page shows what that role may do with them.
BUNDLES = [Bundle("dags-folder", "main")]
LISTED = "document.body.innerText.includes('analytics_daily')"  # the DAG list has loaded


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("airflow_home_e2e")
    copy_bundles(home, BUNDLES)
    with local_deployment(home, bundle_settings(home, BUNDLES), prepare=reserialize) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = Browser()
    yield chromium
    chromium.close()


def test_viewer_lands_on_the_deep_link_without_admin_menu(browser: Browser, deployment: Deployment) -> None:
    sign_in(browser, deployment, "bob", "/dags?tags=analytics", idp_screenshot="idp-login")
    browser.wait_for(f"location.href === {deployment.url + '/dags?tags=analytics'!r}")
    browser.wait_for("document.body.innerText.includes('Browse')")
    browser.wait_for(LISTED, timeout=30)
    save_screenshot(browser, "viewer-dags")
    text = browser.eval("document.body.innerText")
    assert "Dags" in text and "Admin" not in text


def open_admin_menu(browser: Browser) -> None:
    """Click the navigation's Admin entry, so the screenshot shows what the role may administer."""
    browser.eval("[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Admin').click()")
    browser.wait_for("document.body.innerText.includes('Connections')")


def test_admin_sees_the_admin_menu(browser: Browser, deployment: Deployment) -> None:
    sign_in(browser, deployment, "alice")
    browser.wait_for("document.body.innerText.includes('Admin')")
    browser.wait_for(LISTED, timeout=30)
    open_admin_menu(browser)
    save_screenshot(browser, "admin-dags")


@pytest.mark.parametrize(("username", "role", "admin_menu"), [("erin", "user", False), ("dave", "op", True)])
def test_user_and_op_land_on_the_dag_list(
    browser: Browser, deployment: Deployment, username: str, role: str, admin_menu: bool
) -> None:
    sign_in(browser, deployment, username)
    browser.wait_for(f"location.href === {deployment.url + '/dags'!r}")
    browser.wait_for("document.body.innerText.includes('Browse')")
    browser.wait_for(LISTED, timeout=30)
    # Op holds the connection, variable and pool pages (FAB's matrix), so the Admin menu; User does not.
    assert ("Admin" in browser.eval("document.body.innerText")) is admin_menu
    if admin_menu:
        open_admin_menu(browser)
    save_screenshot(browser, f"{role}-dags")


def test_unmapped_user_reads_why_instead_of_looping(browser: Browser, deployment: Deployment) -> None:
    sign_in(browser, deployment, "carol")
    browser.wait_for("document.title.startsWith('No Airflow role')")
    save_screenshot(browser, "no-role")
    assert "marketing" in browser.eval("document.body.innerText")
    assert "/auth/callback" in browser.eval("location.href")  # stayed on the page: no redirect loop
