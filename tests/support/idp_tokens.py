"""Tokens straight from the real local IdP, as a client of it gets them (no Airflow in between)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from dev.idp.local_idp import API_AUDIENCE, LocalIdp, login_through_idp


def authorization_code_grant(
    idp: LocalIdp, username: str, *, redirect_uri: str, scope: str, resource: str | None = None, nonce: bool = True
) -> httpx.Response:
    """Act as the Airflow client (its id and secret): sign ``username`` in with PKCE S256 and redeem the code at
    the token endpoint; returns the token endpoint's answer. ``resource`` goes to both requests (RFC 8707);
    ``nonce=False`` leaves the nonce out of the authorization request, so the ID token carries none."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    with_resource = {"resource": resource} if resource is not None else {}
    query = {
        "response_type": "code",
        "client_id": idp.client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        **with_resource,
        "state": secrets.token_urlsafe(16),
        **({"nonce": secrets.token_urlsafe(16)} if nonce else {}),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with httpx.Client(timeout=30) as browser:
        back = login_through_idp(browser, f"{idp.authorization_endpoint}?{urlencode(query)}", username)
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    return redeem_code(idp, code, redirect_uri=redirect_uri, verifier=verifier, resource=resource)


def redeem_code(
    idp: LocalIdp, code: str, *, redirect_uri: str, verifier: str, resource: str | None = None
) -> httpx.Response:
    """The authorization-code grant at the token endpoint, authenticated as the Airflow client (HTTP Basic)."""
    with_resource = {"resource": resource} if resource is not None else {}
    return httpx.post(
        idp.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            **with_resource,
        },
        auth=(idp.client_id, idp.client_secret),
        timeout=10,
    )


def refresh_grant(idp: LocalIdp, refresh_token: str) -> httpx.Response:
    """The refresh-token grant at the token endpoint, authenticated as the Airflow client (HTTP Basic)."""
    return httpx.post(
        idp.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(idp.client_id, idp.client_secret),
        timeout=10,
    )


def client_credentials_token(idp: LocalIdp, client_id: str, secret: str, *, scope: str | None = "airflow.api") -> str:
    """A client-credentials access token of ``client_id`` for the Airflow API (``resource`` api://airflow);
    ``scope=None`` asks for no scope (the luigi workers' request)."""
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {}), "resource": API_AUDIENCE}
    response = httpx.post(idp.token_endpoint, data=data, auth=(client_id, secret), timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
