"""Client authentication at the real IdP's token endpoint with a secret that needs form-encoding."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from airflow_identity_provider.auth.idp.oidc import OidcProvider
from airflow_identity_provider.auth.rules.settings import parse_settings
from airflow_identity_provider.auth.rules.state import LoginState
from dev.idp.local_idp import GROUPS_SCOPES, login_through_idp, start_local_idp

pytestmark = pytest.mark.integration

CALLBACK = "http://127.0.0.1:8080/auth/callback"


def test_basic_auth_secret_with_reserved_characters() -> None:
    secret = "s3:cr%t+/&="  # RFC 6749 2.3.1: form-encoded inside HTTP Basic
    with start_local_idp(
        redirect_uris=[CALLBACK],
        client_secret=secret,
        client_auth_method="client_secret_basic",
        strict_client_auth=True,
    ) as idp:
        settings = parse_settings(
            {
                "issuer": idp.issuer,
                "client_id": idp.client_id,
                "client_secret": secret,
                "scopes": " ".join(GROUPS_SCOPES),
            }
        )
        provider = OidcProvider(settings)
        login = LoginState.new(next_url="/", idp="default")
        with httpx.Client(timeout=30) as browser:
            back = login_through_idp(browser, provider.authorization_url(redirect_uri=CALLBACK, login=login), "alice")
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
        identity, _ = provider.sign_in(code=code, redirect_uri=CALLBACK, login=login)
        assert identity.user_id == "alice" and "airflow-admins" in identity.groups
