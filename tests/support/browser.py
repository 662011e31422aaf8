"""A headless Chromium driven over the DevTools protocol (Debian's chromium; no browser download).

Just enough for end-to-end checks: navigate, evaluate JavaScript, wait for a condition, screenshot, and sign in
through the local IdP's form as a person would.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from websockets.sync.client import connect

if TYPE_CHECKING:
    from tests.support.deployment import Deployment

# Where the browser tests leave their screenshots (test artefacts; docs/assets/screenshots holds the copies the
# documentation embeds). build/ is git-ignored.
SCREENSHOT_DIR = Path(os.environ.get("SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "build" / "screenshots")

# Flags from the machine notes: without the background-networking ones Chromium keeps trying to reach
# Google's hosts, which this closed network refuses.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1300,850",
    "--remote-debugging-port=0",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("chromium is not installed; dev/lib/setup.sh installs Debian's chromium package")
    return path


class Browser:
    def __init__(self) -> None:
        self._profile = Path(tempfile.mkdtemp(prefix="e2e-chromium-"))
        self._process = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json").json() if t["type"] == "page"]
        self._ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None).__enter__()
        self._id = 0

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def goto(self, url: str) -> None:
        self.command("Page.navigate", url=url)

    def eval(self, expression: str) -> Any:
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.eval(expression)
            except RuntimeError:
                value = None  # the page is navigating
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression!r}; at {self.eval('location.href')}")

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.command("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        if hasattr(self, "_ws"):
            self._ws.close()
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        shutil.rmtree(self._profile, ignore_errors=True)


def save_screenshot(browser: Browser, name: str) -> Path:
    """The page as a PNG (CDP ``Page.captureScreenshot``) at ``$SCREENSHOT_DIR/<name>.png``."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    browser.screenshot(path)
    return path


def sign_in(
    browser: Browser, deployment: Deployment, username: str, path: str = "/dags", *, idp_screenshot: str = ""
) -> None:
    """Open ``path``: the SPA's 401 leads (through /api/v2/auth/login and our /auth/login) to the IdP's login
    form, which is filled and submitted as a person would, then its consent page if it shows one.
    ``idp_screenshot`` names a screenshot of the IdP's form, taken before it is submitted."""
    sign_in_at(browser, f"{deployment.url}{path}", deployment.idp.issuer, username, idp_screenshot=idp_screenshot)


def sign_in_at(browser: Browser, url: str, issuer: str, username: str, *, idp_screenshot: str = "") -> None:
    """Open ``url``, which leads to the login form of the IdP at ``issuer``; fill and submit it as a person would,
    then its consent page if it shows one. ``idp_screenshot`` as for :func:`sign_in`."""
    browser.goto(url)
    browser.wait_for(f"location.href.startsWith({issuer!r}) && !!document.querySelector('form')")
    if idp_screenshot:
        browser.wait_for("document.readyState === 'complete'")
        save_screenshot(browser, idp_screenshot)
    login_page = browser.eval("location.href")
    browser.eval(
        f"document.querySelector('input[name=login]').value = {username!r};"
        "document.querySelector('input[name=password]').value = 'test';"
        "document.querySelector('form').submit()"
    )
    browser.wait_for(f"location.href !== {login_page!r} && document.readyState === 'complete'")
    if browser.eval(f"location.href.startsWith({issuer!r}) && !!document.querySelector('form')"):
        browser.eval("document.querySelector('form').submit()")  # the IdP's consent page
