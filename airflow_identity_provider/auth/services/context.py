"""What the services need from the auth manager, as a protocol: the manager imports the routes, so the
routes and services must not import the manager back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.rules.user import IdentityUser


class AuthContext(Protocol):
    @property
    def providers(self) -> dict[str, OidcProvider]: ...

    @property
    def provider(self) -> OidcProvider: ...

    @property
    def state_secret(self) -> str: ...

    def generate_jwt(self, user: IdentityUser, *, expiration_time_in_seconds: int = ...) -> str: ...

    def generate_session_jwt(self, user: IdentityUser) -> str:
        """The browser session's token (marked as such: api_token_max_age does not apply to it)."""
        ...

    def revoke_token(self, token: str) -> None: ...

    def check_user(self, user: IdentityUser) -> IdentityUser:
        """The user as they may act now (the directory's word on them); raises ValueError (a Refusal that is
        also a ValueError gives its reason) when they may not. Every request of an Airflow JWT and of a direct
        IdP Bearer token goes through it."""
        ...

    def access_control_names(self) -> frozenset[str]:
        """Groups and roles that some DAG's access_control names today (from the in-memory DAG index)."""
        ...
