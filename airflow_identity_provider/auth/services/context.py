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

    def revoke_token(self, token: str) -> None: ...

    def access_control_names(self) -> frozenset[str]:
        """Groups and roles that some DAG's access_control names today (from the in-memory DAG index)."""
        ...
