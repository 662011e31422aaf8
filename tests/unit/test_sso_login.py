"""``airflow-sso-login``'s own side: the loopback listener, its refusals, and what it tells the user."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from airflow_identity_provider import sso_login


def run_sign_in(monkeypatch: pytest.MonkeyPatch, answers: list[dict[str, str]]) -> tuple[object, list[int]]:
    """Run sign_in in a thread; play ``answers`` (query parameters, "state" filled in) at its listener."""
    exchanged: list[tuple[str, str]] = []

    def fake_exchange(api_url: str, code: str, verifier: str) -> str:
        exchanged.append((code, verifier))
        if code == "bad":
            raise sso_login.LoginFailed("Airflow refused the sign-in code (HTTP 400): reused")
        return "the.airflow.token"

    monkeypatch.setattr(sso_login, "exchange", fake_exchange)
    said: list[str] = []
    url_seen = threading.Event()

    def say(line: str) -> None:
        said.append(line)
        if "/auth/cli-login?" in line:
            url_seen.set()

    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["token"] = sso_login.sign_in("http://airflow.example", open_browser=False, timeout=10, say=say)
        except sso_login.LoginFailed as err:
            result["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    assert url_seen.wait(5)
    url = re.search(r"http://airflow\.example/auth/cli-login\?\S+", "\n".join(said))
    assert url is not None
    query = {k: v[0] for k, v in parse_qs(urlsplit(url.group(0)).query).items()}
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    statuses = []
    for answer in answers:
        params = {"state": query["state"], **answer}
        statuses.append(httpx.get(f"http://127.0.0.1:{query['port']}/callback", params=params).status_code)
    thread.join(10)
    assert not thread.is_alive()
    if exchanged:  # the verifier sent is the one whose hash was sent to Airflow
        from airflow_identity_provider.auth.rules.cli_code import s256

        assert s256(exchanged[0][1]) == query["code_challenge"]
    return result.get("token") or result.get("error"), statuses


def test_only_the_answer_with_our_state_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, statuses = run_sign_in(monkeypatch, [{"state": "forged", "code": "x"}, {"code": "good"}])
    assert outcome == "the.airflow.token"
    assert statuses == [400, 200]


def test_a_refused_code_ends_the_wait_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, statuses = run_sign_in(monkeypatch, [{"code": "bad"}])
    assert isinstance(outcome, sso_login.LoginFailed) and "reused" in str(outcome)
    assert statuses == [400]


def test_an_error_answer_ends_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome, _ = run_sign_in(monkeypatch, [{"error": "access_denied", "error_description": "no role"}])
    assert isinstance(outcome, sso_login.LoginFailed) and "no role" in str(outcome)


def test_no_answer_times_out_with_a_message() -> None:
    with pytest.raises(sso_login.LoginFailed, match=r"No sign-in came back within 0\.2 s"):
        sso_login.sign_in("http://airflow.example", open_browser=False, timeout=0.2, say=lambda _: None)


def args(**overrides: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sso_login.add_arguments(parser, api_url_required=False)
    namespace = parser.parse_args([])
    for key, value in overrides.items():
        setattr(namespace, key, value)
    return namespace


@pytest.mark.parametrize("url", ["", "airflow.example.com", "ftp://airflow.example.com"])
def test_api_url_must_be_http(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert sso_login.run(args(api_url=url)) == 2
    assert "--api-url must be Airflow's address" in capsys.readouterr().err


def test_plain_http_is_refused_except_on_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    """The code, its verifier and the token must not cross a network in clear text."""
    assert sso_login.run(args(api_url="http://airflow.example.com")) == 2
    assert "use https://" in capsys.readouterr().err


def test_without_airflowctl_it_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sso_login, "find_airflowctl", lambda: None)
    said: list[str] = []
    assert not sso_login.hand_to_airflowctl("https://airflow.example", "production", "t", say=said.append)
    assert "pip install apache-airflow-ctl" in said[0] and "--print-token" in said[0]


def test_token_goes_to_airflowctl_in_its_environment_not_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen["cmd"], seen["env"] = cmd, kwargs["env"]
        return subprocess.CompletedProcess(cmd, 0, "Login successful!", "")

    monkeypatch.setattr(sso_login, "find_airflowctl", lambda: "/bin/airflowctl")
    monkeypatch.setattr(subprocess, "run", fake_run)
    assert sso_login.hand_to_airflowctl("https://airflow.example", "staging", "secret.tok.en", say=print)
    assert seen["cmd"] == [
        "/bin/airflowctl",
        "auth",
        "login",
        "--api-url",
        "https://airflow.example",
        "--env",
        "staging",
    ]
    assert seen["env"]["AIRFLOW_CLI_TOKEN"] == "secret.tok.en"  # type: ignore[index]


def test_importing_it_does_not_import_airflow() -> None:
    check = "import sys, airflow_identity_provider.sso_login; print([m for m in sys.modules if m == 'airflow'])"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
