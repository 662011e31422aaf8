"""The auth wing's table for ``get_provider_info()["config"]``: every ``[identity_auth_manager]`` key with its
description, type, example and default, so ``airflow config list`` shows them. Data only, no imports:
``auth.settings`` reads the same table for its defaults and the set of known keys."""

from __future__ import annotations

from typing import Any

__all__ = ["AUTH_MANAGER_CONFIG", "SECTION"]

SECTION = "identity_auth_manager"


def _option(
    description: str,
    *,
    example: str | None,
    default: str | None,
    type_: str = "string",
    sensitive: bool = False,
) -> dict[str, Any]:
    option: dict[str, Any] = {
        "description": description,
        "version_added": "0.1.0",
        "type": type_,
        "example": example,
        "default": default,
    }
    if sensitive:
        option["sensitive"] = True
    return option


AUTH_MANAGER_CONFIG: dict[str, Any] = {
    "description": (
        "Sign-in through Microsoft Entra ID, JumpCloud or any OpenID Connect provider, with Airflow roles "
        "(Viewer, User, Op, Admin) taken from the directory's groups or app roles. Used when "
        "[core] auth_manager = airflow_identity_provider.auth.manager.IdentityAuthManager."
    ),
    "options": {
        "providers": _option(
            "Several identity providers at once: comma-separated names, each configured in its own section "
            "[identity_auth_manager_<name>] with the keys of this section (env: "
            "AIRFLOW__IDENTITY_AUTH_MANAGER_<NAME>__<KEY>). /auth/login then shows a chooser, and each "
            "provider gets its own redirect URI <base_url>auth/callback/<name>. Empty: the one provider "
            "configured in this section.",
            example="staff,contractors",
            default="",
        ),
        "display_name": _option(
            "The label of this provider's button on the sign-in chooser (several providers only).",
            example="Staff (Entra ID)",
            default="",
        ),
        "idp": _option(
            "Which identity provider signs people in: entra, jumpcloud, or oidc (any standards-compliant "
            "OpenID provider).",
            example="entra",
            default="oidc",
        ),
        "issuer": _option(
            "The OpenID issuer URL, exactly as the provider's discovery document states it. For entra it is "
            "derived from tenant_id and cloud when left empty; for jumpcloud it defaults to "
            "https://oauth.id.jumpcloud.com/ (note the trailing slash).",
            example="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0",
            default="",
        ),
        "tenant_id": _option(
            "Entra only: the directory (tenant) ID GUID, or common / organizations for a multi-tenant app "
            "(then allowed_tenants is required).",
            example="00000000-0000-0000-0000-000000000000",
            default="",
        ),
        "cloud": _option(
            "Entra only: public, usgov or china. Picks the login and Microsoft Graph hosts.",
            example="public",
            default="public",
        ),
        "allowed_tenants": _option(
            "Entra multi-tenant only: comma-separated tenant GUIDs whose users may sign in.",
            example="00000000-0000-0000-0000-000000000000,11111111-1111-1111-1111-111111111111",
            default="",
        ),
        "resolve_group_overage": _option(
            "Entra only, with groups_claim = groups: when a user is in more groups than fit in a token "
            "(group overage), look their groups up in Microsoft Graph (getMemberObjects) with the app's own "
            "credentials (needs the GroupMember.Read.All or User.Read.All application permission). False "
            "refuses such users with a message naming the fixes.",
            example="True",
            default="False",
            type_="boolean",
        ),
        "graph_url": _option(
            "Entra only: the Microsoft Graph endpoint used for group overage. Empty: the cloud's own "
            "(https://graph.microsoft.com, https://graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn).",
            example="https://graph.microsoft.com",
            default="",
        ),
        "client_id": _option(
            "The application (client) ID of the app registration at the identity provider.",
            example="airflow",
            default="",
        ),
        "client_secret": _option(
            "The client secret of the app registration.",
            example=None,
            default="",
            sensitive=True,
        ),
        "scopes": _option(
            "Space-separated scopes requested at sign-in.",
            example="openid profile email",
            default="openid profile email",
        ),
        "groups_claim": _option(
            "The ID-token claim that holds the user's groups or app roles. Empty means the provider's default: "
            "roles for entra, memberOf for jumpcloud, groups for oidc.",
            example="groups",
            default="",
        ),
        "role_mapping": _option(
            "JSON object from a group or app-role value (Entra: app-role value or group object id) to a role "
            "name or a list of them: Viewer, User, Op, Admin or a role defined in roles. A user holds every "
            "role their groups map to (the union of their permissions, as in FAB).",
            example='{"airflow-admins": "Admin", "airflow-viewers": ["Viewer", "VariableEditor"]}',
            # Not "{}": Airflow str.format()s provider defaults, so braces here would break every CLI start.
            default="",
        ),
        "default_role": _option(
            "Role for a signed-in user who matches no entry of role_mapping. Empty refuses sign-in (unless a "
            "dag_grants entry or a DAG's access_control names one of their groups).",
            example="Viewer",
            default="",
        ),
        "roles": _option(
            "JSON object of custom roles: name -> {extends: role or list, allow: [permissions], deny: "
            "[permissions]}. A permission is <resource>:<method>, e.g. variable:* or dag.audit_log:GET; "
            "deny wins. A name outside the vocabulary stops the api-server at start.",
            example='{"VariableEditor": {"extends": "Viewer", "allow": ["variable:*"]}}',
            default="",
        ),
        "dag_grants": _option(
            "JSON list of per-DAG grants: {groups, dags (globs), tags, bundles, role}. Members of any listed "
            "group hold the role's dag and dag.* permissions on every DAG that matches a glob, carries a tag "
            "or lives in a bundle; global permissions come only from role_mapping.",
            example='[{"groups": ["analytics-operators"], "dags": ["analytics_*"], "role": "Op"}]',
            default="",
        ),
        "honour_dag_access_control": _option(
            "Whether a DAG file's access_control (Airflow's format, keyed by directory group or role name) "
            "grants permissions on that DAG.",
            example="True",
            default="True",
            type_="boolean",
        ),
        "team_mapping": _option(
            "With [core] multi_team: JSON object from a group to a team name or a list of them. Team-owned "
            "DAGs, connections, variables and pools are visible only to their team's members (and Admin).",
            example='{"grp-analytics": "analytics", "grp-finance": ["finance"]}',
            default="",
        ),
        "api_audiences": _option(
            "Machine access: comma-separated audiences (the Airflow API's application ID URI and/or client ID) "
            "of IdP access tokens that POST /auth/token exchanges for Airflow API tokens, mapped to roles by "
            "role_mapping from their roles claim (default_role never applies to them). Empty disables it.",
            example="api://airflow,00000000-0000-0000-0000-000000000000",
            default="",
        ),
        "api_client_ids": _option(
            "Machine access: comma-separated client (application) IDs allowed to present tokens at "
            "/auth/token (the token's azp, appid or client_id). Empty: any client that can obtain a token for "
            "the Airflow API.",
            example="00000000-0000-0000-0000-000000000000",
            default="",
        ),
        "trusted_proxies": _option(
            "Comma-separated addresses or CIDR ranges of the reverse proxies in front of the api-server (load "
            "balancer, Application Gateway, ingress). Only from these peers is X-Forwarded-For believed, read "
            "from the right, for the client address in audit events; from any other peer the header is "
            "ignored, so a client cannot pass for another address. Empty: the peer's own address. "
            "[identity_auth_manager] only (not per provider).",
            example="10.0.0.0/8,192.168.1.10",
            default="",
        ),
        "revalidate_interval": _option(
            "Seconds after which a signed-in browser session is sent back through the identity provider, so "
            "that someone removed from a group or from the directory loses access without anyone touching "
            "Airflow. With an active IdP session the round trip is silent. 0 disables it (the session then "
            "lasts [api_auth] jwt_expiration_time).",
            example="900",
            default="3600",
            type_="integer",
        ),
        "directory_sync_interval": _option(
            "Seconds between two syncs of each api-server process with the directory: Microsoft Graph for "
            "entra (delta queries with the app's own credentials; application permissions User.Read.All, "
            "GroupMember.Read.All and Application.Read.All, with admin consent), the JumpCloud API for "
            "jumpcloud (needs jumpcloud_api_key). Every request then refuses (401) a token whose user or "
            "service principal the directory disabled or deleted, and lowers roles, grants and teams at once "
            "when the groups or app roles that gave them were removed (a higher role comes with the next "
            "sign-in). oidc has no directory to ask: revalidate_interval is its bound. 0 turns the sync off. "
            "See docs/deprovisioning.md.",
            example="60",
            default="60",
            type_="integer",
        ),
        "api_token_max_age": _option(
            "Seconds after the user last proved themselves at the identity provider (the token's auth_time) "
            "beyond which Airflow API tokens are refused, whatever their own expiry ([api_auth] "
            "jwt_expiration_time, jwt_cli_expiration_time): tokens from the UI's \"Generate token\", "
            "/auth/token/cli, /auth/token and the CLI's browser sign-in. The browser session is not one of them "
            "(revalidate_interval bounds it). 0: no cap.",
            example="28800",
            default="86400",
            type_="integer",
        ),
        "jumpcloud_api_key": _option(
            "JumpCloud only: an API key of a JumpCloud administrator (read-only role suffices) for the directory "
            "sync: user states (suspended, locked, deactivated) and user-group members. Empty: no sync.",
            example=None,
            default="",
            sensitive=True,
        ),
        "jumpcloud_api_url": _option(
            "JumpCloud only: the API host of the organisation's region.",
            example="https://console.eu.jumpcloud.com",
            default="https://console.jumpcloud.com",
        ),
        "id_token_signing_algs": _option(
            "Comma-separated allow-list of JWS algorithms accepted on ID tokens. 'none' and HMAC algorithms "
            "are never accepted.",
            example="RS256,ES256",
            default="RS256",
        ),
        "leeway": _option(
            "Clock skew, in seconds, allowed when checking exp, nbf and iat of ID tokens.",
            example="120",
            default="120",
            type_="integer",
        ),
        "http_timeout": _option(
            "Timeout, in seconds, of each call to the identity provider (discovery, keys, token exchange).",
            example="10",
            default="10",
            type_="integer",
        ),
        "jwks_cache_ttl": _option(
            "Seconds the provider's discovery document and signing keys are cached in each api-server "
            "process. An unknown key id triggers a refetch at most once per minute.",
            example="86400",
            default="86400",
            type_="integer",
        ),
    },
}
