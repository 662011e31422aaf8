"""Which Bearer tokens on /api/v2 are Airflow's own JWTs (left to the core) and which are IdP tokens."""

from __future__ import annotations

import jwt as pyjwt
import pytest

from airflow_identity_provider.auth.rules.bearer import is_airflow_token, unverified_jwt

SECRET = "unit-tests-only-" + "0123456789" * 5


def hs512(claims: dict) -> str:
    return pyjwt.encode(claims, SECRET, algorithm="HS512", headers={"kid": "not-used"})


def classify(token: str, airflow_issuers: tuple[str, ...] = ()) -> bool | None:
    parts = unverified_jwt(token)
    return None if parts is None else is_airflow_token(*parts, airflow_issuers=airflow_issuers)


def test_airflow_tokens_by_default_have_no_issuer_and_hmac() -> None:
    assert classify(hs512({"sub": "alice", "aud": "apache-airflow"})) is True


def test_with_jwt_issuer_set_the_issuer_decides() -> None:
    token = pyjwt.encode({"iss": "airflow-dev", "sub": "a"}, "k" * 64, algorithm="HS256")
    assert classify(token, ("airflow-dev",)) is True
    rs = "eyJhbGciOiJSUzI1NiJ9." + pyjwt.utils.base64url_encode(b'{"iss":"airflow-dev"}').decode() + ".sig"
    assert classify(rs, ("airflow-dev",)) is True
    idp = "eyJhbGciOiJSUzI1NiJ9." + pyjwt.utils.base64url_encode(b'{"iss":"https://idp"}').decode() + ".sig"
    assert classify(idp, ("airflow-dev",)) is False


def test_idp_tokens_name_their_issuer_and_are_signed_asymmetrically() -> None:
    idp = "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0." + pyjwt.utils.base64url_encode(b'{"iss":"https://idp"}').decode()
    assert classify(idp + ".sig") is False


@pytest.mark.parametrize("token", ["opaque", "a.b", "a.b.c", "e30.W10.sig", "bm90IGpzb24.e30.sig", "a.b.c.d.e"])
def test_not_a_jws_is_none(token: str) -> None:
    assert unverified_jwt(token) is None
