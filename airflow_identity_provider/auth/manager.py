"""``IdentityAuthManager``: Airflow's auth-manager contract, delegating to small pure modules.

Every ``is_authorized_*`` answer comes from the roles, groups and teams in the Airflow JWT, the role
tables compiled at start and the in-memory DAG index (``auth.services.authorizer``): no network, no
database on the request path, so list pages stay fast however many DAGs there are.
"""

from __future__ import annotations

import logging
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.configuration import conf

from airflow_identity_provider import version_compat
from airflow_identity_provider.auth.lifecycle import ConfigurationFailure, fail_at_start
from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.rules.settings import (
    SettingsError,
    load_all_settings,
    settings_warnings,
)
from airflow_identity_provider.auth.rules.user import IdentityUser
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
    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.services.authorizer import Authorizer

log = logging.getLogger(__name__)


class IdentityAuthManager(BaseAuthManager[IdentityUser]):
    def init(self) -> None:
        try:
            # With [core] multi_team, the core checks that every team of team_mapping exists in the DB.
            super().init()
        except ValueError as err:
            self._fail(f"team_mapping: {err} Create them with `airflow teams create <name>`, or fix the team names.")
        if self._get_teams() and not conf.getboolean("core", "multi_team", fallback=False):
            if version_compat.AIRFLOW_V_3_2_PLUS:
                log.warning("airflow-identity-provider: team_mapping is set but [core] multi_team is off; ignored")
            else:
                version_compat.warn_missing("teams")
        if not version_compat.AIRFLOW_V_3_2_PLUS and any(p.settings.access.grants for p in self.providers.values()):
            version_compat.warn_missing("per_dag_lists")
        self.dag_index.start()
        for provider in self.providers.values():
            for warning in settings_warnings(provider.settings):
                log.warning("airflow-identity-provider: %s", warning)
        if not version_compat.CAN_END_SESSION_ON_REFRESH and any(
            p.settings.revalidate_interval for p in self.providers.values()
        ):
            version_compat.warn_missing("end_session_on_refresh")
        if version_compat.token_revoker(self) is None:
            version_compat.warn_missing("revoke_token")
        if not conf.get("api", "base_url", fallback=""):
            self._fail(
                "[api] base_url: is empty; set it to the public URL of Airflow, e.g. https://airflow.example.com/"
            )

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
        return user

    def serialize_user(self, user: IdentityUser) -> dict[str, Any]:
        return user.to_claims()

    def refresh_user(self, *, user: IdentityUser) -> IdentityUser | None:
        """Runs on every browser request: only a clock comparison, never I/O.

        Past ``revalidate_interval`` the session is ended, so the UI sends the user through the IdP again:
        silent while the IdP session lasts, refused once the directory removed them, and the role is
        recomputed from the groups they have now.
        """
        provider = self.providers.get(user.idp) or self.provider
        interval = provider.settings.revalidate_interval
        if not version_compat.CAN_END_SESSION_ON_REFRESH:
            return None  # Airflow < 3.1.7 has no way to end the session here (warned once at init)
        if interval and time.time() - user.auth_time > interval:
            audit.emit("revalidation_required", user=user.user_id, signed_in_at=user.auth_time)
            raise AuthManagerRefreshTokenExpiredException(f"session of {user.user_id} is due for revalidation")
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
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: ConfigurationDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return self.authorizer.allows(user, "configuration", method)

    def is_authorized_connection(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: ConnectionDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return self.authorizer.allows(user, "connection", method, team_name=_team(details))

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return self.authorizer.allows_dag(
            user,
            method,
            access_entity=access_entity,
            dag_id=details.id if details else None,
            team_name=_team(details),
        )

    def is_authorized_asset(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: AssetDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return self.authorizer.allows(user, "asset", method)

    def is_authorized_asset_alias(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: AssetAliasDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return self.authorizer.allows(user, "asset_alias", method)

    def is_authorized_pool(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: PoolDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return self.authorizer.allows(user, "pool", method, team_name=_team(details))

    def is_authorized_variable(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: VariableDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return self.authorizer.allows(user, "variable", method, team_name=_team(details))

    def is_authorized_backfill(self, *, method: ResourceMethod, user: IdentityUser, **kwargs: Any) -> bool:
        # Airflow 3.0 still calls this; 3.1+ checks backfills as DAG runs, which is what this does too.
        return self.authorizer.allows(user, "backfill", method)

    def is_authorized_view(self, *, access_view: AccessView, user: IdentityUser, **kwargs: Any) -> bool:
        return self.authorizer.allows_view(user, access_view)

    def is_authorized_custom_view(
        self, *, method: ResourceMethod | str, resource_name: str, user: IdentityUser, **kwargs: Any
    ) -> bool:
        return self.authorizer.allows_custom_view(user, method, resource_name)

    def is_authorized_team(
        self, *, method: ResourceMethod, user: IdentityUser, details: TeamDetails | None = None, **kwargs: Any
    ) -> bool:
        # A team question without a team name is answered no (in_team reads None as "no team").
        return details is not None and bool(details.name) and self.authorizer.in_team(user, details.name, method)

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
        self,
        *,
        dag_ids: set[str],
        user: IdentityUser,
        method: ResourceMethod = "GET",
        team_name: str | None = None,
    ) -> set[str]:
        return self.authorizer.filter_dags(user, dag_ids, method, team_name=team_name)

    def filter_authorized_connections(
        self,
        *,
        conn_ids: set[str],
        user: IdentityUser,
        method: ResourceMethod = "GET",
        team_name: str | None = None,
    ) -> set[str]:
        return self.authorizer.filter_named(user, "connection", conn_ids, method, team_name=team_name)

    def filter_authorized_pools(
        self,
        *,
        pool_names: set[str],
        user: IdentityUser,
        method: ResourceMethod = "GET",
        team_name: str | None = None,
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


def _team(details: object) -> str | None:
    """The owning team the core passes in the details (Airflow 3.2+ with [core] multi_team), else None."""
    team = getattr(details, "team_name", None)
    return team if isinstance(team, str) and team else None


__all__ = ["ConfigurationFailure", "IdentityAuthManager"]
