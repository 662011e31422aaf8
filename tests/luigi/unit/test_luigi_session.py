"""The session cookie: the signed-in user, checked without the IdP; expired or altered is no session."""

from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.luigi_gateway.session import decode_session, encode_session, safe_next

SECRET = "s" * 40
BOB = IdentityUser("bob", "Bob", "bob@example.test", ("Viewer",), auth_time=1, idp="default", groups=("g",))


def test_round_trip() -> None:
    assert decode_session(encode_session(BOB, SECRET), SECRET, max_age=60) == BOB


def test_altered_foreign_or_expired_cookies_are_no_session(monkeypatch: pytest.MonkeyPatch) -> None:
    cookie = encode_session(BOB, SECRET)
    assert decode_session(cookie[:-2] + "xx", SECRET, max_age=60) is None
    assert decode_session(cookie, "t" * 40, max_age=60) is None
    assert decode_session(None, SECRET, max_age=60) is None
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    assert decode_session(cookie, SECRET, max_age=60) is None


def test_a_signed_cookie_of_another_shape_is_no_session() -> None:
    forged = URLSafeTimedSerializer(SECRET, salt="airflow-identity-provider.luigi-gateway.session").dumps({"x": 1})
    assert decode_session(forged, SECRET, max_age=60) is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/static/visualiser/index.html#tab=graph", "/static/visualiser/index.html#tab=graph"),
        ("/history?x=1", "/history?x=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/ok\r\nSet-Cookie: x", "/"),
        (None, "/"),
        ("relative", "/"),
    ],
)
def test_only_paths_of_the_gateway_are_followed_after_sign_in(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected
