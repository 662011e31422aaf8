"""``IdentityAuthManager``: Airflow's auth-manager contract, delegating to small pure modules.

Every ``is_authorized_*`` answer comes from the roles, groups and teams in the Airflow JWT, the role
tables compiled at start and the in-memory DAG index (``auth.services.authorizer``): no network, no
database on the request path, so list pages stay fast however many DAGs there are.
"""

from __future__ import annotations

import contextvars
import logging
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.configuration import conf

from airflow_identity_provider import version_compat
from airflow_identity_provider.auth.lifecycle import ConfigurationFailure, fail_at_start, warn_about_this_airflow
from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.rules.settings import SettingsError, load_all_settings, load_trusted_proxies
from airflow_identity_provider.auth.rules.token_age import SESSION_CLAIM
from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.errors import Refusal
from airflow_identity_provider.version_compat import AuthManagerRefreshTokenExpiredException

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        AccessView,
        AssetAliasDetails,
        AssetDetails,
        ConfigurationDetails,
        ConnectionDetails,
        DagAccessEntity,
        DagDetails,
        PoolDetails,
        TeamDetails,
        VariableDetails,
    )
    from airflow.api_fastapi.common.types import ExtraMenuItem, MenuItem
    from airflow.cli.cli_config import CLICommand
    from fastapi import FastAPI

    from airflow_identity_provider.auth.catalog.dag_index import DagIndex
    from airflow_identity_provider.auth.directory.sync import DirectorySync
    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.rules.client_ip import IPNetwork
    from airflow_identity_provider.auth.services.authorizer import Authorizer
    from airflow_identity_provider.auth.services.directory import DirectoryGate

log = logging.getLogger(__name__)

# Set while generate_session_jwt mints the browser session's token (serialize_user then adds SESSION_CLAIM).
_MINTING_SESSION: contextvars.ContextVar[bool] = contextvars.ContextVar("identity_minting_session", default=False)


class IdentityAuthManager(BaseAuthManager[IdentityUser]):
    def init(self) -> None:
        try:
            # With [core] multi_team, the core checks that every team of team_mapping exists in the DB.
            super().init()
        except ValueError as err:
            self._fail(f"team_mapping: {err} Create them with `airflow teams create <name>`, or fix the team names.")
        self.dag_index.start()
        self._start_directory()
        warn_about_this_airflow(
            self.providers, teams=self._get_teams(), can_revoke=version_compat.token_revoker(self) is not None
        )
        if not conf.get("api", "base_url", fallback=""):
            self._fail(
                "[api] base_url: is empty; set it to the public URL of Airflow, e.g. https://airflow.example.com/"
            )
        self._init_audit()

    def _init_audit(self) -> None:
        _ = self.trusted_proxies  # a bad trusted_proxies stops the api-server here, with one line
        secrets = [(p.settings.client_secret, p.settings.jumpcloud_api_key) for p in self.providers.values()]
        audit.register_secret(*(value for pair in secrets for value in pair))  # defence in depth

    def _start_directory(self) -> None:
        """The first directory sync finishes (or times out) before this process takes any request."""
        from airflow_identity_provider.auth.services.directory import start_sync

        refusal = start_sync(self.directory)
        if refusal is not None:
            self._fail(f"directory_sync_interval: {refusal}")

    @cached_property
    def directory(self) -> DirectorySync:
        """Each provider's directory views, refreshed by a background thread (``auth.directory.sync``)."""
        from airflow_identity_provider.auth.directory.sync import DirectorySync
        from airflow_identity_provider.auth.services.directory import directory_sources, tracked_values

        return DirectorySync(
            directory_sources(self.providers),
            tracked=lambda name: tracked_values(self.providers[name].settings, self.access_control_names()),
        )

    @cached_property
    def directory_gate(self) -> DirectoryGate:
        from airflow_identity_provider.auth.services.directory import DirectoryGate

        return DirectoryGate(self.providers, self.directory, clock=time.time)

    @cached_property
    def trusted_proxies(self) -> tuple[IPNetwork, ...]:
        """The reverse proxies whose X-Forwarded-For the audit events believe (``trusted_proxies``)."""
        try:
            return load_trusted_proxies()
        except SettingsError as err:
            self._fail(str(err))

    @cached_property
    def providers(self) -> dict[str, OidcProvider]:
        """Every configured identity provider by name; several only when ``providers`` is set."""
        from airflow_identity_provider.auth.idp import make_provider

        try:
            return {name: make_provider(settings) for name, settings in load_all_settings().items()}
        except SettingsError as err:
            self._fail(str(err))

    @property
    def provider(self) -> OidcProvider:
        """The first (usually the only) provider."""
        return next(iter(self.providers.values()))

    @staticmethod
    def _fail(message: str) -> NoReturn:
        fail_at_start(message)

    @property
    def state_secret(self) -> str:
        return str(conf.get("api", "secret_key"))

    # --- users and tokens ----------------------------------------------------------------------------

    def deserialize_user(self, token: dict[str, Any]) -> IdentityUser:
        user = IdentityUser.from_claims(token)
        # Same jwt_secret, other issuer: e.g. a SimpleAuthManager token {"sub": "admin", "role": "admin"} left
        # from before the switch. Only tokens minted after a sign-in through a configured provider count.
        if user.idp not in self.providers:
            raise ValueError(f"the token was not issued through a configured identity provider ({user.idp!r})")
        # Both refusals below are 401s (a new sign-in or token helps), not the core's 403 "Invalid JWT token":
        # an HTTPException is neither ValueError nor KeyError, so get_user_from_token lets it through, and
        # JWTRefreshMiddleware clears the session cookie on it.
        from airflow_identity_provider.auth.routes.common import unauthorized

        too_old = self.directory_gate.token_refusal(token, user.idp)
        if too_old is not None:
            raise unauthorized(too_old)
        try:
            return self.check_user(user)
        except Refusal as err:
            raise unauthorized(err) from None

    def check_user(self, user: IdentityUser) -> IdentityUser:
        """The one per-request check of a user, whatever carried them: an Airflow JWT (``deserialize_user``:
        browser cookie, UI-generated, CLI and exchanged tokens) or an IdP access token sent straight to /api/v2
        (``routes.bearer``, which caches validation, never this). Returns the user as the directory leaves them
        (lower roles at once); raises a ``DirectoryRefusal`` (a Refusal and a ValueError) when the account is
        disabled or deleted: ``deserialize_user`` answers it with 401, the Bearer middleware with its reason.
        In memory only (``services.directory.DirectoryGate``): it runs on every API request."""
        return self.directory_gate.check(user)

    def serialize_user(self, user: IdentityUser) -> dict[str, Any]:
        claims = user.to_claims()
        if _MINTING_SESSION.get():  # only our sign-in callback's token is a browser session (rules.token_age)
            claims[SESSION_CLAIM] = True
        return claims

    def generate_session_jwt(self, user: IdentityUser) -> str:
        """The browser session's token (the ``_token`` cookie): ``generate_jwt`` with the session claim. Any
        token minted otherwise (the UI's "Generate token", /auth/token) is an API token for api_token_max_age."""
        marker = _MINTING_SESSION.set(True)
        try:
            return self.generate_jwt(user)
        finally:
            _MINTING_SESSION.reset(marker)

    def refresh_user(self, *, user: IdentityUser) -> IdentityUser | None:
        """Runs on every browser request: a clock comparison and a directory lookup, never I/O
        (``services.session``). A reason ends the session, so the UI sends the user through the IdP again."""
        from airflow_identity_provider.auth.services.session import revalidation_reason

        if not version_compat.CAN_END_SESSION_ON_REFRESH:
            return None  # Airflow < 3.1.7 has no way to end the session here (warned once at init)
        interval = (self.providers.get(user.idp) or self.provider).settings.revalidate_interval
        reason = revalidation_reason(user, revalidate_interval=interval, gate=self.directory_gate, now=time.time())
        if reason is not None:
            raise AuthManagerRefreshTokenExpiredException(reason)
        return None

    def get_url_login(self, **kwargs: Any) -> str:
        from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX

        # No query string: Airflow's /api/v2/auth/login appends "?next=..." itself.
        return f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/login"

    def get_url_logout(self) -> str | None:
        from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX

        return f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/logout"

    @staticmethod
    def get_cli_commands() -> list[CLICommand]:
        """``airflow identity-auth-manager ...``. Airflow 3.1 registers auth-manager commands only this way;
        3.2+ reads the provider's "cli" entry and then skips this for our provider (no duplicate). Remove when
        the floor is 3.2."""
        from airflow_identity_provider.auth.cli import get_identity_cli_commands

        return get_identity_cli_commands()

    def get_fastapi_app(self) -> FastAPI | None:
        from airflow_identity_provider.auth.routes import create_auth_app

        return create_auth_app(self)

    def get_fastapi_middlewares(self) -> list[tuple[Any, dict[str, Any]]]:
        """IdP access tokens as ``Authorization: Bearer`` on /api/v2 and the audit events' request context
        (``routes.api_middlewares``). Airflow 3.3+ calls this; older versions never do (warned at init)."""
        from airflow_identity_provider.auth.routes import api_middlewares

        return api_middlewares(self, version_compat.trusted_user_marker(BaseAuthManager))

    # --- authorization: from the token and in-memory tables (services.authorizer) ------------------------

    @cached_property
    def dag_index(self) -> DagIndex:
        from airflow_identity_provider.auth.catalog.dag_index import DagIndex

        return DagIndex()

    @cached_property
    def authorizer(self) -> Authorizer:
        from airflow_identity_provider.auth.services.authorizer import Authorizer

        return Authorizer({name: p.settings.access for name, p in self.providers.items()}, self.dag_index)

    def access_control_names(self) -> frozenset[str]:
        return self.authorizer.access_control_names()

    def _get_teams(self) -> set[str]:
        return {
            team for p in self.providers.values() for teams in p.settings.access.team_mapping.values() for team in teams
        }

    def is_authorized_configuration(
        self, *, method: ResourceMethod, user: IdentityUser, details: ConfigurationDetails | None = None, **kwargs: Any
    ) -> bool:
        return _decided(self.authorizer.allows(user, "configuration", method), user, "configuration", method)

    def is_authorized_connection(
        self, *, method: ResourceMethod, user: IdentityUser, details: ConnectionDetails | None = None, **kwargs: Any
    ) -> bool:
        team = _team(details)
        allowed = self.authorizer.allows(user, "connection", method, team_name=team)
        return _decided(allowed, user, "connection", method, team=team)

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        dag_id, team = (details.id if details else None), _team(details)
        allowed = self.authorizer.allows_dag(user, method, access_entity=access_entity, dag_id=dag_id, team_name=team)
        return _decided(allowed, user, audit.resource_key("dag", access_entity), method, dag_id=dag_id, team=team)

    def is_authorized_asset(
        self, *, method: ResourceMethod, user: IdentityUser, details: AssetDetails | None = None, **kwargs: Any
    ) -> bool:
        return _decided(self.authorizer.allows(user, "asset", method), user, "asset", method)

    def is_authorized_asset_alias(
        self, *, method: ResourceMethod, user: IdentityUser, details: AssetAliasDetails | None = None, **kwargs: Any
    ) -> bool:
        return _decided(self.authorizer.allows(user, "asset_alias", method), user, "asset_alias", method)

    def is_authorized_pool(
        self, *, method: ResourceMethod, user: IdentityUser, details: PoolDetails | None = None, **kwargs: Any
    ) -> bool:
        team = _team(details)
        return _decided(self.authorizer.allows(user, "pool", method, team_name=team), user, "pool", method, team=team)

    def is_authorized_variable(
        self, *, method: ResourceMethod, user: IdentityUser, details: VariableDetails | None = None, **kwargs: Any
    ) -> bool:
        team = _team(details)
        allowed = self.authorizer.allows(user, "variable", method, team_name=team)
        return _decided(allowed, user, "variable", method, team=team)

    def is_authorized_backfill(self, *, method: ResourceMethod, user: IdentityUser, **kwargs: Any) -> bool:
        # Airflow 3.0 still calls this; 3.1+ checks backfills as DAG runs, which is what this does too.
        return _decided(self.authorizer.allows(user, "backfill", method), user, "backfill", method)

    def is_authorized_view(self, *, access_view: AccessView, user: IdentityUser, **kwargs: Any) -> bool:
        allowed = self.authorizer.allows_view(user, access_view)
        return _decided(allowed, user, audit.resource_key("view", access_view), "GET")

    def is_authorized_custom_view(
        self, *, method: ResourceMethod | str, resource_name: str, user: IdentityUser, **kwargs: Any
    ) -> bool:
        allowed = self.authorizer.allows_custom_view(user, method, resource_name)
        return _decided(allowed, user, f"custom_view.{resource_name}", method)

    def is_authorized_team(
        self, *, method: ResourceMethod, user: IdentityUser, details: TeamDetails | None = None, **kwargs: Any
    ) -> bool:
        # A team question without a team name is answered no (in_team reads None as "no team").
        name = details.name if details is not None else None
        allowed = bool(name) and self.authorizer.in_team(user, name, method)
        return _decided(allowed, user, "team", method, team=name or None)

    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: IdentityUser) -> bool:
        return self.authorizer.is_hitl_assignee(user, assigned_users)

    def filter_authorized_menu_items(self, menu_items: list[MenuItem], *, user: IdentityUser) -> list[MenuItem]:
        return self.authorizer.menu_items(user, menu_items)

    def get_extra_menu_items(self, *, user: IdentityUser) -> list[ExtraMenuItem]:
        """Adds "My access" for everyone signed in: their roles, grants and DAGs, and why (``routes.my_access``)."""
        from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX
        from airflow.api_fastapi.common.types import ExtraMenuItem

        return [ExtraMenuItem(text="My access", href=f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/my-access")]

    # The defaults check ids one at a time through is_authorized_*; these answer a whole set at once.

    def filter_authorized_dag_ids(
        self, *, dag_ids: set[str], user: IdentityUser, method: ResourceMethod = "GET", team_name: str | None = None
    ) -> set[str]:
        return self.authorizer.filter_dags(user, dag_ids, method, team_name=team_name)

    def filter_authorized_connections(
        self, *, conn_ids: set[str], user: IdentityUser, method: ResourceMethod = "GET", team_name: str | None = None
    ) -> set[str]:
        return self.authorizer.filter_named(user, "connection", conn_ids, method, team_name=team_name)

    def filter_authorized_pools(
        self, *, pool_names: set[str], user: IdentityUser, method: ResourceMethod = "GET", team_name: str | None = None
    ) -> set[str]:
        return self.authorizer.filter_named(user, "pool", pool_names, method, team_name=team_name)

    def filter_authorized_variables(
        self,
        *,
        variable_keys: set[str],
        user: IdentityUser,
        method: ResourceMethod = "GET",
        team_name: str | None = None,
    ) -> set[str]:
        return self.authorizer.filter_named(user, "variable", variable_keys, method, team_name=team_name)


def _decided(
    allowed: bool,
    user: IdentityUser,
    resource: str,
    method: object,
    *,
    dag_id: str | None = None,
    team: str | None = None,
) -> bool:
    """The answer; a no is also an audit event (at most one per user, resource, method, DAG and minute)."""
    if not allowed:
        audit.denied(user, resource, method, dag_id=dag_id, team=team)
    return allowed


def _team(details: object) -> str | None:
    """The owning team the core passes in the details (Airflow 3.2+ with [core] multi_team), else None."""
    team = getattr(details, "team_name", None)
    return team if isinstance(team, str) and team else None


__all__ = ["ConfigurationFailure", "IdentityAuthManager"]
