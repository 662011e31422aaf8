"""Which directory each configured provider is synced with, built from its settings: the wiring between the
identity-provider adapters (Entra's app-only Graph token) and the directory clients (``auth.directory``).

* ``idp = entra`` with a client secret: Microsoft Graph, one source per tenant (``tenant_id``, or every
  ``allowed_tenants`` entry of a multi-tenant app), tracking app roles of the sign-in app (``client_id``) and of
  the ``api_audiences`` resources;
* ``idp = jumpcloud`` with ``jumpcloud_api_key``: the JumpCloud API;
* ``idp = oidc``: none (a generic provider has no standard directory API: ``revalidate_interval`` is its bound).

``directory_sync_interval = 0`` turns a provider's sync off. ``DirectoryGate`` is the request-path side: the
auth manager's ``check_user`` (every Airflow JWT, every direct IdP Bearer token) and ``refresh_user``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from airflow_identity_provider import version_compat
from airflow_identity_provider.auth.directory.graph import GraphDirectory
from airflow_identity_provider.auth.directory.jumpcloud import JumpCloudDirectory
from airflow_identity_provider.auth.directory.sync import DirectorySync, Source
from airflow_identity_provider.auth.idp.entra import EntraProvider
from airflow_identity_provider.auth.rules import audit
from airflow_identity_provider.auth.rules.directory import DirectoryRefusal, apply, upgrade_due
from airflow_identity_provider.auth.rules.token_age import token_age_refusal
from airflow_identity_provider.entra_ids import MULTI_TENANT, is_guid
from airflow_identity_provider.errors import Refusal

if TYPE_CHECKING:
    from airflow_identity_provider.auth.idp.oidc import OidcProvider
    from airflow_identity_provider.auth.rules.settings import AuthSettings
    from airflow_identity_provider.auth.rules.user import IdentityUser

log = logging.getLogger(__name__)


def directory_sources(providers: Mapping[str, OidcProvider]) -> dict[str, list[tuple[Source, float]]]:
    """Provider name -> (directory client, interval) pairs, for the providers that have a directory to ask."""
    several = len(providers) > 1
    sources: dict[str, list[tuple[Source, float]]] = {}
    for name, provider in providers.items():
        settings = provider.settings
        interval = float(settings.directory_sync_interval)
        if not interval:
            continue
        prefix = f"{name}/" if several else ""  # as services.results.user_id_for builds ids
        found: list[Source] = []
        if isinstance(provider, EntraProvider) and settings.client_secret:
            found = [_graph(provider, tid, prefix) for tid in _tenants(provider)]
        elif settings.idp == "jumpcloud" and settings.jumpcloud_api_key:
            found = [
                JumpCloudDirectory(
                    api_url=settings.jumpcloud_api_url,
                    api_key=settings.jumpcloud_api_key,
                    http=_http(settings),
                    id_prefix=prefix,
                )
            ]
        if found:
            sources[name] = [(source, interval) for source in found]
    return sources


def _graph(provider: EntraProvider, tid: str, prefix: str) -> GraphDirectory:
    settings = provider.settings
    return GraphDirectory(
        tenant_id=tid,
        graph_url=settings.graph_url,
        token=lambda: provider.graph_token(tid),
        http=_http(settings),
        resources=(settings.client_id, *settings.api_audiences),
        id_prefix=prefix,
    )


def _tenants(provider: EntraProvider) -> list[str]:
    """The tenant GUIDs whose users sign in; a tenant given by domain name is looked up in discovery."""
    settings = provider.settings
    if settings.tenant_id.lower() in MULTI_TENANT:
        return list(settings.allowed_tenants)
    if is_guid(settings.tenant_id):
        return [settings.tenant_id.lower()]
    try:
        issuer = provider.metadata().issuer
    except Refusal as err:
        log.error(
            "airflow-identity-provider: no directory sync for provider %s: the tenant %s could not be resolved "
            "(%s); configure tenant_id as the directory's GUID",
            settings.name,
            settings.tenant_id,
            err,
        )
        return []
    tid = issuer.removeprefix(provider.login_base + "/").split("/", 1)[0]
    return [tid.lower()] if is_guid(tid) else []


def _http(settings: AuthSettings) -> Callable[[], httpx.Client]:
    return lambda: httpx.Client(timeout=settings.http_timeout, follow_redirects=False)


def tracked_values(settings: AuthSettings, access_control_names: frozenset[str]) -> frozenset[str]:
    """The group and app-role values whose holders the sync follows: those a setting names (role_mapping,
    dag_grants, team_mapping) and the groups a DAG's access_control names today (its keys that are role names
    mean the role, never a group: see AccessPolicy.access_control_key_matches)."""
    policy = settings.access
    return policy.named_groups | {name for name in access_control_names if policy.canonical_role(name) is None}


def start_sync(sync: DirectorySync) -> str | None:
    """Starts ``sync`` and waits for its first round (bounded): None, or why the api-server must not start.
    Wrong credentials or missing Graph permissions do not fix themselves; an outage does, so it only logs."""
    from airflow_identity_provider.auth.directory import DirectoryForbidden

    sync.start()
    if isinstance(sync.first_error, DirectoryForbidden):
        sync.stop()
        return sync.first_error.message
    return None


SESSION_CAP_SLACK = 120  # seconds past revalidate_interval before a session token is refused outright


# Deprovisioning events: one per user, cause and minute (a refused token usually retries at once, and a lowered
# role is seen on every request until the next sign-in).
DEPROVISIONED = audit.RateLimiter(window=60.0, max_keys=10_000)


class DirectoryGate:
    """The per-request side: every token's user through the directory's last view (in memory, no I/O)."""

    def __init__(self, providers: Mapping[str, OidcProvider], sync: DirectorySync, *, clock: Callable[[], float]):
        self._providers = providers
        self._sync = sync
        self._clock = clock

    def check(self, user: IdentityUser) -> IdentityUser:
        """``user`` as the directory leaves them; raises :class:`DirectoryRefusal` (the manager answers 401)."""
        provider = self._providers.get(user.idp)
        view = self._sync.view(user.idp, user.user_id) if provider is not None else None
        if view is None:
            return user
        assert provider is not None
        result = apply(user, view, provider.settings.access, self._clock())
        if isinstance(result, DirectoryRefusal):
            _report(user, result.reason.removeprefix("account_"), view.source)
            raise result
        if result is not user:
            _report(user, "membership_removed", view.source, roles=list(result.roles), before=list(user.roles))
        return result

    def token_refusal(self, claims: Mapping[str, Any], idp: str) -> Refusal | None:
        """``api_token_max_age`` for API tokens (not the browser session)."""
        provider = self._providers.get(idp)
        if provider is None:
            return None
        settings = provider.settings
        # A session past revalidate_interval is ended by refresh_user; the slack lets that happen first, so this
        # only stops the cookie's value replayed as a Bearer header (which refresh_user never sees).
        session_cap = settings.revalidate_interval + SESSION_CAP_SLACK if settings.revalidate_interval else 0
        if not version_compat.CAN_END_SESSION_ON_REFRESH:
            session_cap = 0  # sessions last jwt_expiration_time on Airflow < 3.1.7 (warned at start)
        return token_age_refusal(
            claims, max_age=settings.api_token_max_age, now=self._clock(), session_max_age=int(session_cap)
        )

    def upgrade_due(self, user: IdentityUser) -> bool:
        """The directory gave the account more since this session signed in (PIM activation, a new group)."""
        provider = self._providers.get(user.idp)
        if provider is None:
            return False
        return upgrade_due(user, self._sync.view(user.idp, user.user_id), provider.settings.access)


def _report(user: IdentityUser, cause: str, source: str, **fields: Any) -> None:
    held_back = DEPROVISIONED.admit((user.idp, user.user_id, cause))
    if held_back is None:
        return
    audit.emit(
        "deprovisioning",
        outcome="success",
        **audit.user_fields(user),
        cause=cause,
        source=source,
        tokens_revoked=0,
        sessions_ended=None,
        repeated=held_back or None,
        **fields,
    )
