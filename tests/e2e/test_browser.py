"""A person's view: headless Chromium opens the Airflow UI, is sent to the local IdP, signs in, and sees
the UI their role allows. Screenshots land in the test's tmp_path for inspection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import Browser
from tests.support.deployment import Deployment, local_deployment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with local_deployment(tmp_path_factory.mktemp("airflow_home_e2e")) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Browser]:
    chromium = Browser()
    yield chromium
    chromium.close()


def sign_in(browser: Browser, deployment: Deployment, username: str, path: str = "/dags") -> None:
    browser.goto(f"{deployment.url}{path}")
    # The SPA gets a 401, goes to /api/v2/auth/login?next=..., then our /auth/login sends it to the IdP.
    browser.wait_for(f"location.href.startsWith({deployment.idp.issuer!r}) && !!document.querySelector('form')")
    login_page = browser.eval("location.href")
    browser.eval(
        f"document.querySelector('input[name=login]').value = {username!r};"
        "document.querySelector('input[name=password]').value = 'test';"
        "document.querySelector('form').submit()"
    )
    browser.wait_for(f"location.href !== {login_page!r} && document.readyState === 'complete'")
    if browser.eval(f"location.href.startsWith({deployment.idp.issuer!r}) && !!document.querySelector('form')"):
        browser.eval("document.querySelector('form').submit()")  # the IdP's consent page


def test_viewer_lands_on_the_deep_link_without_admin_menu(
    browser: Browser, deployment: Deployment, tmp_path: Path
) -> None:
    sign_in(browser, deployment, "bob", "/dags?tags=etl")
    browser.wait_for(f"location.href === {deployment.url + '/dags?tags=etl'!r}")
    browser.wait_for("document.body.innerText.includes('Browse')")
    browser.screenshot(tmp_path / "viewer.png")
    text = browser.eval("document.body.innerText")
    assert "Dags" in text and "Admin" not in text


def test_admin_sees_the_admin_menu(browser: Browser, deployment: Deployment, tmp_path: Path) -> None:
    sign_in(browser, deployment, "alice")
    browser.wait_for("document.body.innerText.includes('Admin')")
    browser.screenshot(tmp_path / "admin.png")


def test_unmapped_user_reads_why_instead_of_looping(browser: Browser, deployment: Deployment, tmp_path: Path) -> None:
    sign_in(browser, deployment, "carol")
    browser.wait_for("document.title.startsWith('No Airflow role')")
    browser.screenshot(tmp_path / "refused.png")
    assert "marketing" in browser.eval("document.body.innerText")
    assert "/auth/callback" in browser.eval("location.href")  # stayed on the page: no redirect loop
