"""The terminal sign-in end to end: ``airflow-sso-login`` (a real subprocess) -> real api-server -> real local
IdP -> the CLI's loopback listener -> the real ``airflowctl`` (apache-airflow-ctl) using the token.

Only the browser is scripted: an httpx client opens the address the CLI prints (``--no-browser``) and signs in
through the IdP's pages, as ``sign_in`` does for the web UI. airflowctl keeps its token in the system keyring;
CI has none, so the airflowctl processes use ``tests.support.file_keyring`` (chosen by PYTHON_KEYRING_BACKEND).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from dev.airflow_server import REPO_ROOT
from dev.idp.local_idp import login_through_idp
from tests.support.deployment import Deployment, local_deployment
from tests.support.file_keyring import ENV_PATH, read_keyring

BIN = Path(sys.executable).parent
AIRFLOWCTL = shutil.which("airflowctl", path=str(BIN))
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(AIRFLOWCTL is None, reason="apache-airflow-ctl is not installed (pip install -e '.[dev]')"),
]
CLI_LIFETIME = 1800  # [api_auth] jwt_cli_expiration_time, not Airflow's default: the token must use it
URL_LINE = re.compile(r"(http://\S+/auth/cli-login\?\S+)")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    extra = {"AIRFLOW__API_AUTH__JWT_CLI_EXPIRATION_TIME": str(CLI_LIFETIME)}
    with local_deployment(tmp_path_factory.mktemp("airflow_home"), extra) as running:
        yield running


@pytest.fixture
def terminal(tmp_path: Path) -> dict[str, str]:
    """The environment of a person's terminal: their own AIRFLOW_HOME (airflowctl's config) and keyring."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON_KEYRING"))}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflowctl-home"),
            "PYTHON_KEYRING_BACKEND": "tests.support.file_keyring.FileKeyring",
            ENV_PATH: str(tmp_path / "keyring.json"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
            "COLUMNS": "400",  # airflowctl prints through rich, which wraps at the terminal's width
        }
    )
    return env


def sso_login_command() -> list[str]:
    script = BIN / "airflow-sso-login"  # the console script pyproject installs
    return [str(script)] if script.exists() else [sys.executable, "-m", "airflow_identity_provider.sso_login"]


def _lines(stream, into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def terminal_sign_in(
    deployment: Deployment,
    env: dict[str, str],
    username: str,
    *args: str,
    browser: httpx.Client | None = None,
    command: list[str] | None = None,
) -> tuple[int, str, str]:
    """Run airflow-sso-login, sign in "in the browser" at the address it prints; returns (exit, stdout, stderr)."""
    command = command or [*sso_login_command(), "--api-url", deployment.url]
    process = subprocess.Popen(
        [*command, "--no-browser", "--timeout", "60", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: queue.Queue[str | None] = queue.Queue()
        assert process.stderr is not None
        threading.Thread(target=_lines, args=(process.stderr, lines), daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while (match := URL_LINE.search("".join(seen))) is None:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"airflow-sso-login printed no sign-in address: {''.join(seen)}"
            seen.append(line)
        browser = browser or httpx.Client(timeout=30)
        started = browser.get(match.group(1))
        assert started.status_code == 302 and started.headers["location"].startswith(deployment.idp.issuer)
        back = login_through_idp(browser, started.headers["location"], username)
        callback = browser.get(back.headers["location"])
        assert callback.status_code == 303, callback.text
        loopback = callback.headers["location"]
        assert urlsplit(loopback).hostname == "127.0.0.1" and urlsplit(loopback).path == "/callback"
        assert "_token" not in browser.cookies  # the browser itself is not signed in to the UI
        page = browser.get(loopback)  # the CLI's listener answers after it redeemed the code
        process.wait(timeout=60)
        assert process.stdout is not None
        stdout = process.stdout.read()
        while (line := lines.get(timeout=5)) is not None:
            seen.append(line)
        return process.returncode, stdout, "".join(seen) + f"\n[browser page {page.status_code}] {page.text}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def airflowctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert AIRFLOWCTL is not None
    return subprocess.run(
        [AIRFLOWCTL, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
    )


def claims_of(token: str) -> dict[str, object]:
    import jwt as pyjwt

    return dict(pyjwt.decode(token, options={"verify_signature": False}))


def test_terminal_sign_in_gives_airflowctl_a_token_it_uses(deployment: Deployment, terminal: dict[str, str]) -> None:
    started = time.perf_counter()
    code, stdout, stderr = terminal_sign_in(deployment, terminal, "alice")
    assert code == 0, stderr
    assert f"Signed in to {deployment.url} as Alice Admin (Admin)" in stdout
    assert "Signed in to Airflow" in stderr  # the page the browser was shown
    # airflowctl stored it its own way: the token in the keyring, the URL in $AIRFLOW_HOME/<env>.json.
    token = read_keyring(Path(terminal[ENV_PATH]))["airflowctl api_token_production"]
    claims = claims_of(token)
    assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == CLI_LIFETIME  # type: ignore[operator]
    config = json.loads((Path(terminal["AIRFLOW_HOME"]) / "production.json").read_text())
    assert config == {"api_url": deployment.url}
    dags = airflowctl(terminal, "dags", "list")
    assert dags.returncode == 0, dags.stdout + dags.stderr
    assert json.loads(dags.stdout) == []  # no DAG in this deployment: an empty list, not an error
    forged = airflowctl({**terminal, "AIRFLOW_CLI_TOKEN": token[:-4] + "AAAA"}, "dags", "list")
    assert forged.returncode != 0  # the exit code means something: a forged token is refused
    assert airflowctl(terminal, "pools", "list").returncode == 0
    print(f"\nterminal sign-in and airflowctl: {time.perf_counter() - started:.1f} s")

    # A password login against this Airflow, even with that token stored (airflowctl sends it along).
    refused = airflowctl(
        terminal, "auth", "login", "--api-url", deployment.url, "--username", "alice", "--password", "x"
    )
    assert refused.returncode == 1
    said = " ".join((refused.stdout + refused.stderr).split())
    print(f"airflowctl auth login --username/--password prints:\n{refused.stdout}{refused.stderr}")
    assert "Login failed" in said and "password_login_not_supported" in said
    assert f"airflow-sso-login --api-url {deployment.url}" in said, said
    assert "missing_assertion" not in said
    # The stored token is untouched by the refused attempt.
    assert read_keyring(Path(terminal[ENV_PATH]))["airflowctl api_token_production"] == token


def test_viewer_token_carries_the_viewer_role(deployment: Deployment, terminal: dict[str, str]) -> None:
    code, stdout, stderr = terminal_sign_in(deployment, terminal, "bob", "--env", "staging")
    assert code == 0, stderr
    assert "(Viewer)" in stdout and "AIRFLOW_CLI_ENVIRONMENT=staging airflowctl dags list" in stdout
    # airflowctl 0.1.5: `dags list --env staging` is accepted but reads "production"; the variable selects.
    staging = {**terminal, "AIRFLOW_CLI_ENVIRONMENT": "staging"}
    assert airflowctl(staging, "dags", "list").returncode == 0
    variables = airflowctl(staging, "variables", "list")
    assert variables.returncode != 0 and "Forbidden" in variables.stdout + variables.stderr


def test_without_a_keyring_the_cli_says_how_to_use_the_token(deployment: Deployment, terminal: dict[str, str]) -> None:
    """A server without a desktop session: airflowctl cannot store the token; --print-token and the env var."""
    headless = {**terminal, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    browser = httpx.Client(timeout=30)  # one browser: the second sign-in rides the IdP session
    code, _, stderr = terminal_sign_in(deployment, headless, "alice", browser=browser)
    assert code == 1
    assert "no keyring" in stderr and "--print-token" in stderr and "AIRFLOW_CLI_TOKEN" in stderr, stderr
    code, stdout, stderr = terminal_sign_in(deployment, headless, "alice", "--print-token", browser=browser)
    assert code == 0, stderr
    token = stdout.strip()
    assert claims_of(token)["sub"] == "alice"
    # airflowctl had saved the URL before the keyring failed; the token comes from the environment.
    dags = airflowctl({**headless, "AIRFLOW_CLI_TOKEN": token}, "dags", "list")
    assert dags.returncode == 0, dags.stdout + dags.stderr


def test_airflow_cli_command_defaults_to_this_airflows_base_url(
    deployment: Deployment, terminal: dict[str, str]
) -> None:
    """`airflow identity-auth-manager login` where the Airflow configuration is: no --api-url needed."""
    env = {**deployment.server.env, **{k: v for k, v in terminal.items() if k != "AIRFLOW_HOME"}}
    command = [str(BIN / "airflow"), "identity-auth-manager", "login"]
    code, stdout, stderr = terminal_sign_in(deployment, env, "dave", "--print-token", command=command)
    assert code == 0, stderr
    assert claims_of(stdout.strip().splitlines()[-1])["sub"] == "dave"
