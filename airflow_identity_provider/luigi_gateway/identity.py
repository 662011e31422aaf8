"""Who is calling: a worker's access token (through the auth wing's ``BearerAdmission``, the same validation
and role mapping as Bearer tokens on Airflow's ``/api/v2``) or a person's session cookie.

``GatewayContext`` is what the auth wing's services need (``AuthContext``): the providers and the secret of
the login-state cookie. The gateway mints no Airflow tokens and keeps no directory, so those parts refuse.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_identity_provider.auth.services.bearer import BearerAdmission
from airflow_identity_provider.auth.services.results import Refused
from airflow_identity_provider.luigi_gateway.credentials import Malformed, presented
from airflow_identity_provider.luigi_gateway.session import SESSION_COOKIE, decode_session
from airflow_identity_provider.luigi_gateway.worker_identity import principal_key

if TYPE_CHECKING:
    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.rules.user import IdentityUser
    from airflow_identity_provider.luigi_gateway.settings import GatewaySettings


class GatewayContext:
    """The auth wing's ``AuthContext`` for the gateway."""

    def __init__(self, providers: dict[str, OidcProvider], *, state_secret: str) -> None:
        self._providers = providers
        self._state_secret = state_secret

    @property
    def providers(self) -> dict[str, OidcProvider]:
        return self._providers

    @property
    def provider(self) -> OidcProvider:
        return next(iter(self._providers.values()))

    @property
    def state_secret(self) -> str:
        return self._state_secret

    def generate_jwt(self, user: IdentityUser, *, expiration_time_in_seconds: int = 0) -> str:
        raise NotImplementedError("the luigi gateway issues no Airflow tokens")

    def generate_session_jwt(self, user: IdentityUser) -> str:
        raise NotImplementedError("the luigi gateway issues no Airflow tokens")

    def revoke_token(self, token: str) -> None:
        raise NotImplementedError("the luigi gateway issues no Airflow tokens")

    def check_user(self, user: IdentityUser) -> IdentityUser:
        # No directory sync here: access tokens are short-lived, and sessions end after session_lifetime.
        return user

    def access_control_names(self) -> frozenset[str]:
        return frozenset()  # no DAGs: only role_mapping gives access


@dataclass(frozen=True)
class Caller:
    user: IdentityUser
    via: str  # "session", "bearer" or "basic"

    @property
    def principal(self) -> str:
        return principal_key(self.user.idp, self.user.user_id)


class Authenticator:
    def __init__(self, settings: GatewaySettings, admission: BearerAdmission) -> None:
        self._settings = settings
        self._admission = admission

    async def caller(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Caller | Refused | None:
        """None: the request presents nothing at all (no Authorization header, no valid session)."""
        found = presented(headers.get("authorization"))
        if isinstance(found, Malformed):
            return Refused(found.reason, found.message, 401)
        if found is not None:
            admitted = await self._admission.admit(found.token)
            if isinstance(admitted, Refused):
                return admitted
            return Caller(admitted, found.scheme)
        user = decode_session(
            cookies.get(SESSION_COOKIE), self._settings.session_secret, max_age=self._settings.session_lifetime
        )
        if user is None or user.idp not in self._settings.providers:
            return None
        return Caller(user, "session")


def make_admission(ctx: GatewayContext) -> BearerAdmission:
    return BearerAdmission(ctx, clock=time.time)
