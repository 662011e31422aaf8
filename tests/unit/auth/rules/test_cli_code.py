"""The terminal sign-in's pure rules: what /auth/cli-login accepts, the one-time code, the login-state cookie."""

from __future__ import annotations

import secrets
import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from airflow_identity_provider.auth.rules.cli_code import (
    CODE_MAX_AGE,
    CliLoginError,
    CliRequest,
    issue_code,
    parse_cli_request,
    redeem_code,
    s256,
)
from airflow_identity_provider.auth.rules.state import LoginState, decode_state, encode_state
from airflow_identity_provider.auth.rules.user import IdentityUser

SECRET = "unit-test-secret"
VERIFIER = secrets.token_urlsafe(64)
REQUEST = CliRequest(50123, "s" * 32, s256(VERIFIER))
USER = IdentityUser(
    "alice", "Alice", "a@example.com", ("Admin", "Reporting"), auth_time=1, idp="default", groups=("g",)
)


def test_redirect_is_always_loopback_ip_literal() -> None:
    assert REQUEST.redirect_with("c") == f"http://127.0.0.1:50123/callback?code=c&state={'s' * 32}"


# Fullwidth digits: str.isdigit() and int() accept them.
@pytest.mark.parametrize("port", ["1023", "0", "-1", "65536", "+8080", "\uff18\uff10\uff18\uff10", "", None])
def test_port_must_be_an_unprivileged_port_number(port: str | None) -> None:
    with pytest.raises(CliLoginError) as err:
        parse_cli_request(
            port=port, state="s" * 32, code_challenge=REQUEST.code_challenge, code_challenge_method="S256"
        )
    assert err.value.reason == "cli_bad_port"


def test_a_valid_request_parses() -> None:
    parsed = parse_cli_request(
        port="50123", state="s" * 32, code_challenge=REQUEST.code_challenge, code_challenge_method="S256"
    )
    assert parsed == REQUEST


def test_code_round_trip_keeps_the_user_and_hides_it() -> None:
    code = issue_code(USER, REQUEST, SECRET)
    assert "alice" not in code and "Admin" not in code
    redeemed = redeem_code(code, VERIFIER, SECRET)
    assert redeemed.user == USER
    assert len(redeemed.jti) == 32  # Airflow's revoked_token.jti is String(32)
    assert redeemed.expires_at <= time.time() + CODE_MAX_AGE


def test_each_code_has_its_own_jti() -> None:
    assert (
        redeem_code(issue_code(USER, REQUEST, SECRET), VERIFIER, SECRET).jti
        != redeem_code(issue_code(USER, REQUEST, SECRET), VERIFIER, SECRET).jti
    )


@pytest.mark.parametrize(
    ("age", "reason"), [(CODE_MAX_AGE - 1, None), (CODE_MAX_AGE + 1, "cli_code_expired"), (-120, "cli_code_expired")]
)
def test_code_age(age: int, reason: str | None) -> None:
    code = issue_code(USER, REQUEST, SECRET, now=time.time() - age)
    if reason is None:
        assert redeem_code(code, VERIFIER, SECRET).user == USER
        return
    with pytest.raises(CliLoginError) as err:
        redeem_code(code, VERIFIER, SECRET)
    assert err.value.reason == reason


def test_tampered_code_is_refused() -> None:
    code = issue_code(USER, REQUEST, SECRET)
    flipped = code[:20] + ("A" if code[20] != "A" else "B") + code[21:]
    with pytest.raises(CliLoginError) as err:
        redeem_code(flipped, VERIFIER, SECRET)
    assert err.value.reason == "bad_cli_code"


def test_browser_login_cookie_keeps_its_previous_shape() -> None:
    """A replica of the previous release (LoginState without the cli fields) still reads a browser sign-in's
    cookie during a rolling upgrade; and this release reads the previous release's cookies."""
    browser = LoginState.new(next_url="http://x/", idp="default")
    data = URLSafeTimedSerializer(SECRET, salt="airflow-identity-provider.login-state").loads(
        encode_state(browser, SECRET)
    )
    assert set(data) == {"state", "nonce", "code_verifier", "next_url", "idp"}
    assert decode_state(encode_state(browser, SECRET), SECRET).cli is None
    terminal = LoginState.new(next_url="http://x/", idp="default", cli=REQUEST)
    assert decode_state(encode_state(terminal, SECRET), SECRET).cli == REQUEST
