"""``IdentityAuthManager``: Airflow's auth-manager contract, delegating to small pure modules.

Every ``is_authorized_*`` answer comes from the role in the Airflow JWT and the in-memory table in
``auth.rules.policy``: no network, no database, so list pages stay fast however many DAGs there are.
"""

from __future__ import annotations

import logging
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.configuration import conf

from airflow_identity_provider import version_compat
from airflow_identity_provider.auth.rules import audit, policy
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
        VariableDetails,
    )
    from airflow.api_fastapi.common.types import MenuItem
    from airflow.cli.cli_config import CLICommand
    from fastapi import FastAPI

    from airflow_identity_provider.auth.idp.oidc import OidcProvider

log = logging.getLogger(__name__)


class ConfigurationFailure(SystemExit):
    """Stops the api-server at start with one line naming the setting, instead of a trace at first login."""


def _stop_api_server_supervisor() -> None:
    """With [api] workers > 1, uvicorn's supervisor restarts a worker that exits, forever; a bad setting
    would then loop instead of stopping the api-server. Stop the supervisor too, but only when it really
    is the api-server that spawned this worker."""
    import multiprocessing
    import os
    import signal

    if multiprocessing.parent_process() is None:
        return
    try:
        import psutil

        cmdline = " ".join(psutil.Process(os.getppid()).cmdline())
    except Exception:
        return
    if "api_server" in cmdline or "api-server" in cmdline:
        os.kill(os.getppid(), signal.SIGTERM)


class IdentityAuthManager(BaseAuthManager[IdentityUser]):
    def init(self) -> None:
        super().init()
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
        log.error("airflow-identity-provider: %s", message)
        _stop_api_server_supervisor()
        raise ConfigurationFailure(f"airflow-identity-provider: {message}")

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

    # --- authorization: all answered from the role in the token ------------------------------------

    def is_authorized_configuration(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: ConfigurationDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return policy.is_allowed(user.role, "configuration", method)

    def is_authorized_connection(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: ConnectionDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return policy.is_allowed(user.role, "connection", method)

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return policy.is_allowed(user.role, "dag", method, access_entity)

    def is_authorized_asset(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: AssetDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return policy.is_allowed(user.role, "asset", method)

    def is_authorized_asset_alias(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: AssetAliasDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return policy.is_allowed(user.role, "asset_alias", method)

    def is_authorized_pool(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: PoolDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return policy.is_allowed(user.role, "pool", method)

    def is_authorized_variable(
        self,
        *,
        method: ResourceMethod,
        user: IdentityUser,
        details: VariableDetails | None = None,
        **kwargs: Any,
    ) -> bool:
        return policy.is_allowed(user.role, "variable", method)

    def is_authorized_backfill(self, *, method: ResourceMethod, user: IdentityUser, **kwargs: Any) -> bool:
        # Airflow 3.0 still calls this; 3.1+ checks backfills as DAG runs, which is what this does too.
        return policy.is_allowed(user.role, "backfill", method)

    def is_authorized_view(self, *, access_view: AccessView, user: IdentityUser, **kwargs: Any) -> bool:
        return policy.is_view_allowed(user.role, access_view)

    def is_authorized_custom_view(
        self, *, method: ResourceMethod | str, resource_name: str, user: IdentityUser, **kwargs: Any
    ) -> bool:
        return policy.is_custom_view_allowed(user.role, str(method), resource_name)

    def filter_authorized_menu_items(self, menu_items: list[MenuItem], *, user: IdentityUser) -> list[MenuItem]:
        return policy.allowed_menu_items(user.role, menu_items)

    # The defaults check ids one at a time; the answer depends only on the role, so check once.

    def filter_authorized_dag_ids(
        self,
        *,
        dag_ids: set[str],
        user: IdentityUser,
        method: ResourceMethod = "GET",
        team_name: str | None = None,
    ) -> set[str]:
        return set(dag_ids) if policy.is_allowed(user.role, "dag", method) else set()

    def filter_authorized_connections(
        self,
        *,
        conn_ids: set[str],
        user: IdentityUser,
        method: ResourceMethod = "GET",
        team_name: str | None = None,
    ) -> set[str]:
        return set(conn_ids) if policy.is_allowed(user.role, "connection", method) else set()

    def filter_authorized_pools(
        self,
        *,
        pool_names: set[str],
        user: IdentityUser,
        method: ResourceMethod = "GET",
        team_name: str | None = None,
    ) -> set[str]:
        return set(pool_names) if policy.is_allowed(user.role, "pool", method) else set()

    def filter_authorized_variables(
        self,
        *,
        variable_keys: set[str],
        user: IdentityUser,
        method: ResourceMethod = "GET",
        team_name: str | None = None,
    ) -> set[str]:
        return set(variable_keys) if policy.is_allowed(user.role, "variable", method) else set()


__all__ = ["ConfigurationFailure", "IdentityAuthManager"]
