"""The ``[identity_auth_manager]`` section, read and validated once when the api-server starts.

``parse_settings`` is pure (a mapping of raw strings in, a frozen object out) so every bad value is
tested in milliseconds; ``load_all_settings`` is the thin adapter over Airflow's ``conf``.
A bad value raises ``SettingsError`` whose message names the key and what it expects, because the
alternative, a stack trace at the first login, is what users of other auth managers complain about.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from airflow_identity_provider.auth.rules.access import AccessPolicy, TeamMappingError, parse_team_mapping
from airflow_identity_provider.auth.rules.client_ip import IPNetwork, TrustedProxyError, parse_trusted_proxies
from airflow_identity_provider.auth.rules.custom_roles import BUILTIN_NAMES, RoleError, RoleTable, parse_custom_roles
from airflow_identity_provider.auth.rules.dag_grants import GrantError, parse_dag_grants
from airflow_identity_provider.clouds import get_cloud
from airflow_identity_provider.entra_ids import CONSUMERS, MULTI_TENANT, is_guid
from airflow_identity_provider.errors import Refusal
from airflow_identity_provider.provider_info.auth_config import AUTH_MANAGER_CONFIG, SECTION

IDPS = ("oidc", "entra", "jumpcloud")
JUMPCLOUD_ISSUER = "https://oauth.id.jumpcloud.com/"
DEFAULT_GROUPS_CLAIM = {"oidc": "groups", "entra": "roles", "jumpcloud": "memberOf"}
# Asymmetric algorithms only: an HMAC-signed ID token would be verifiable with the client secret, which
# the whole relying party knows, and "none" is no signature at all.
ASYMMETRIC_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
KNOWN_KEYS = frozenset(AUTH_MANAGER_CONFIG["options"])
DEFAULT_NAME = "default"
_PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class SettingsError(Refusal, ValueError):
    """A setting of ``[identity_auth_manager]`` is missing or malformed (``reason`` is ``bad_setting``)."""

    def __init__(self, key: str, problem: str, *, section: str = SECTION) -> None:
        self.key = key
        self.problem = problem
        self.section = section
        super().__init__("bad_setting", f"[{section}] {key}: {problem}")


@dataclass(frozen=True)
class AuthSettings:
    name: str
    display_name: str
    idp: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    groups_claim: str
    # Group or app role -> the canonical names of the roles it maps to (built-in or from ``roles``).
    role_mapping: Mapping[str, tuple[str, ...]]
    default_role: str | None
    id_token_signing_algs: tuple[str, ...]
    leeway: int
    http_timeout: float
    jwks_cache_ttl: int
    tenant_id: str = ""
    cloud: str = "public"
    allowed_tenants: tuple[str, ...] = ()
    revalidate_interval: int = 3600
    api_audiences: tuple[str, ...] = ()
    api_client_ids: tuple[str, ...] = ()
    resolve_group_overage: bool = False
    graph_url: str = ""
    # Directory sync (auth.directory): 0 is off; jumpcloud needs the API key.
    directory_sync_interval: int = 60
    api_token_max_age: int = 86400
    jumpcloud_api_key: str = field(default="", repr=False)
    jumpcloud_api_url: str = "https://console.jumpcloud.com"
    # role_mapping, roles, dag_grants, team_mapping and honour_dag_access_control compiled together.
    access: AccessPolicy = field(default_factory=AccessPolicy, repr=False)


def default_values() -> dict[str, str]:
    return {key: str(option["default"] or "") for key, option in AUTH_MANAGER_CONFIG["options"].items()}


def parse_settings(raw: Mapping[str, str], *, name: str = DEFAULT_NAME) -> AuthSettings:
    """Validate raw option strings (defaults already applied) into ``AuthSettings``."""
    for key in ("providers", "trusted_proxies"):  # about the deployment, not one provider
        if name != DEFAULT_NAME and raw.get(key):
            raise SettingsError(key, f"belongs in [{SECTION}], not in the section of provider {name!r}")
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise SettingsError(
            unknown[0], f"unknown key; the section knows {', '.join(sorted(KNOWN_KEYS))} (check the spelling)"
        )
    values = {**default_values(), **{k: v.strip() for k, v in raw.items()}}

    parse_trusted_proxies_setting(values["trusted_proxies"])  # checked here too, so check-config reports it

    idp = values["idp"].lower()
    if idp not in IDPS:
        raise SettingsError("idp", f"expected one of {', '.join(IDPS)}, got {values['idp']!r}")

    client_id = values["client_id"]
    if not client_id:
        raise SettingsError("client_id", "is empty; set it to the client (application) ID of the app registration")

    issuer = _issuer(idp, values)
    scopes = tuple(values["scopes"].split())
    if "openid" not in scopes:
        raise SettingsError("scopes", f"must include openid for sign-in, got {values['scopes']!r}")

    algs = tuple(a.strip() for a in values["id_token_signing_algs"].split(",") if a.strip())
    bad_algs = [a for a in algs if a not in ASYMMETRIC_ALGS]
    if not algs or bad_algs:
        raise SettingsError(
            "id_token_signing_algs",
            f"expected a comma-separated subset of {', '.join(sorted(ASYMMETRIC_ALGS))}, got "
            f"{values['id_token_signing_algs']!r}",
        )

    allowed_tenants = tuple(t.strip().lower() for t in values["allowed_tenants"].split(",") if t.strip())
    if idp == "entra":
        _check_entra(values["tenant_id"], values["cloud"] or "public", allowed_tenants)

    roles = _section_value("roles", values["roles"], parse_custom_roles, RoleError)
    role_mapping = parse_role_mapping(values["role_mapping"], roles)
    default_role = _optional_role("default_role", values["default_role"], roles)
    access = AccessPolicy(
        role_mapping=role_mapping,
        default_roles=(default_role,) if default_role else (),
        roles=roles,
        grants=_section_value(
            "dag_grants", values["dag_grants"], lambda text: parse_dag_grants(text, roles), GrantError
        ),
        team_mapping=_section_value("team_mapping", values["team_mapping"], parse_team_mapping, TeamMappingError),
        honour_dag_access_control=_bool("honour_dag_access_control", values["honour_dag_access_control"]),
    )

    return AuthSettings(
        name=name,
        display_name=values["display_name"] or name,
        idp=idp,
        issuer=issuer,
        client_id=client_id,
        client_secret=values["client_secret"],
        scopes=scopes,
        groups_claim=values["groups_claim"] or DEFAULT_GROUPS_CLAIM[idp],
        role_mapping=role_mapping,
        default_role=default_role,
        id_token_signing_algs=algs,
        leeway=_int("leeway", values["leeway"], minimum=0),
        http_timeout=float(_int("http_timeout", values["http_timeout"], minimum=1)),
        jwks_cache_ttl=_int("jwks_cache_ttl", values["jwks_cache_ttl"], minimum=0),
        tenant_id=values["tenant_id"],
        cloud=values["cloud"].lower() or "public",
        allowed_tenants=allowed_tenants,
        api_audiences=tuple(a.strip() for a in values["api_audiences"].split(",") if a.strip()),
        api_client_ids=tuple(c.strip() for c in values["api_client_ids"].split(",") if c.strip()),
        revalidate_interval=_int("revalidate_interval", values["revalidate_interval"], minimum=0),
        resolve_group_overage=_bool("resolve_group_overage", values["resolve_group_overage"]),
        graph_url=_graph_url(idp, values),
        directory_sync_interval=_int("directory_sync_interval", values["directory_sync_interval"], minimum=0),
        api_token_max_age=_int("api_token_max_age", values["api_token_max_age"], minimum=0),
        jumpcloud_api_key=values["jumpcloud_api_key"],
        jumpcloud_api_url=_jumpcloud_url(values["jumpcloud_api_url"]),
        access=access,
    )


_T = TypeVar("_T")


def _section_value(key: str, text: str, parse: Callable[[str], _T], error: type[ValueError]) -> _T:
    try:
        return parse(text)
    except error as err:
        raise SettingsError(key, str(err)) from None


def settings_warnings(settings: AuthSettings) -> list[str]:
    """Allowed but risky combinations, logged once when the api-server starts (and by check-config)."""
    warnings: list[str] = []
    if settings.idp != "entra" and settings.client_id in settings.api_audiences:
        section = SECTION if settings.name == DEFAULT_NAME else f"{SECTION}_{settings.name}"
        warnings.append(
            f"[{section}] api_audiences: includes the sign-in client_id {settings.client_id!r}. ID tokens of "
            "signed-in users are addressed to that client too, so /auth/token accepts a token for it only when "
            "its JOSE typ is at+jwt (RFC 9068) or it names another client in azp / client_id, and refuses the "
            "rest (reason ambiguous_id_token). Prefer an audience of the API's own (e.g. api://airflow)."
        )
    if settings.directory_sync_interval and settings.idp == "jumpcloud" and not settings.jumpcloud_api_key:
        warnings.append(
            f"[{_section_of(settings)}] jumpcloud_api_key: is empty, so the directory sync is off: a user "
            "suspended or removed in JumpCloud keeps their Airflow tokens until they expire (browser sessions: "
            "until revalidate_interval). Set an API key, or directory_sync_interval = 0 to silence this."
        )
    if settings.directory_sync_interval and settings.idp == "entra" and not settings.client_secret:
        warnings.append(
            f"[{_section_of(settings)}] client_secret: is empty, so the directory sync (Microsoft Graph, app-only "
            "token of this app registration) is off. Set directory_sync_interval = 0 to silence this."
        )
    return warnings


def _section_of(settings: AuthSettings) -> str:
    return SECTION if settings.name == DEFAULT_NAME else f"{SECTION}_{settings.name}"


def _bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off", ""):
        return False
    raise SettingsError(key, f"expected True or False, got {value!r}")


def _graph_url(idp: str, values: Mapping[str, str]) -> str:
    if values["graph_url"]:
        check_https_url("graph_url", values["graph_url"])
        return values["graph_url"].rstrip("/")
    if idp != "entra":
        return ""
    try:
        return get_cloud(values["cloud"] or "public").graph_endpoint or ""
    except ValueError:
        return ""  # the cloud itself is reported by _check_entra


def _jumpcloud_url(value: str) -> str:
    url = value or "https://console.jumpcloud.com"
    check_https_url("jumpcloud_api_url", url)
    return url.rstrip("/")


def _check_entra(tenant_id: str, cloud: str, allowed_tenants: tuple[str, ...]) -> None:
    try:
        get_cloud(cloud)
    except ValueError as err:
        raise SettingsError("cloud", str(err)) from None
    if tenant_id.lower() == CONSUMERS:
        raise SettingsError("tenant_id", "consumers (personal Microsoft accounts) is not supported; use a tenant GUID")
    if tenant_id.lower() in MULTI_TENANT and not allowed_tenants:
        raise SettingsError(
            "allowed_tenants",
            f"is required with tenant_id = {tenant_id}: list the tenant GUIDs whose users may sign in",
        )
    bad = [t for t in allowed_tenants if not is_guid(t)]
    if bad:
        raise SettingsError("allowed_tenants", f"expected tenant GUIDs, got {', '.join(bad)}")


def parse_role_mapping(text: str, roles: RoleTable | None = None) -> dict[str, tuple[str, ...]]:
    """Group -> role names; a value may be one role or a list (the user holds every role, as in FAB)."""
    lookup = {name.lower(): name for name in (roles or dict.fromkeys(BUILTIN_NAMES))}
    try:
        mapping = json.loads(text or "{}")
    except json.JSONDecodeError as err:
        raise SettingsError(
            "role_mapping",
            f"is not valid JSON ({err.msg} at character {err.pos}); expected an object such as "
            '{"airflow-admins": "Admin", "airflow-viewers": "Viewer"}',
        ) from None
    if not isinstance(mapping, dict):
        raise SettingsError("role_mapping", f"expected a JSON object of group -> role, got a {type(mapping).__name__}")
    result: dict[str, tuple[str, ...]] = {}
    for group, value in mapping.items():
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise SettingsError(
                "role_mapping", f"the role for {group!r} must be a role name or a list of them, got {value!r}"
            )
        result[group] = tuple(_role_name("role_mapping", n, lookup, f"group {group!r}: ") for n in names)
    return result


def _role_name(key: str, name: str, lookup: Mapping[str, str], prefix: str = "") -> str:
    canonical = lookup.get(name.strip().lower())
    if canonical is None:
        custom = [n for n in lookup.values() if n not in BUILTIN_NAMES]
        known = ", ".join(BUILTIN_NAMES) + (f" or a role of roles ({', '.join(custom)})" if custom else "")
        raise SettingsError(key, f"{prefix}{name!r} is not an Airflow role; expected one of {known}")
    return canonical


def _optional_role(key: str, value: str, roles: RoleTable) -> str | None:
    if not value:
        return None
    lookup = {name.lower(): name for name in roles}
    try:
        return _role_name(key, value, lookup)
    except SettingsError as err:
        raise SettingsError(key, f"{err.problem}, or empty to refuse users with no mapped group") from None


def _int(key: str, value: str, *, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(key, f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise SettingsError(key, f"expected a number >= {minimum}, got {number}")
    return number


def _issuer(idp: str, values: Mapping[str, str]) -> str:
    issuer = values["issuer"]
    if not issuer and idp == "jumpcloud":
        issuer = JUMPCLOUD_ISSUER
    if not issuer and idp == "entra":
        tenant = values["tenant_id"]
        if not tenant:
            raise SettingsError("tenant_id", "is required for idp = entra (the directory ID GUID)")
        issuer = _entra_issuer(values["cloud"] or "public", tenant)
    if not issuer:
        raise SettingsError("issuer", "is empty; set it to the OpenID issuer URL of your identity provider")
    check_https_url("issuer", issuer)
    return issuer


def _entra_issuer(cloud: str, tenant: str) -> str:
    try:
        login_host = get_cloud(cloud).login_host
    except ValueError as err:
        raise SettingsError("cloud", str(err)) from None
    return f"https://{login_host}/{tenant}/v2.0"


def check_https_url(key: str, url: str) -> None:
    """Require https, except on loopback where a local test provider runs over plain http."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise SettingsError(key, f"expected an https:// URL, got {url!r}")


def parse_provider_names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    bad = [n for n in names if not _PROVIDER_NAME.match(n) or n == DEFAULT_NAME]
    if bad:
        raise SettingsError(
            "providers", f"names must be lower-case letters, digits, - or _ (and not 'default'); got {bad[0]!r}"
        )
    if len(set(names)) != len(names):
        raise SettingsError("providers", "lists a name twice")
    return names


def parse_trusted_proxies_setting(text: str) -> tuple[IPNetwork, ...]:
    try:
        return parse_trusted_proxies(text)
    except TrustedProxyError as err:
        raise SettingsError("trusted_proxies", str(err)) from None


def load_trusted_proxies() -> tuple[IPNetwork, ...]:
    """``[identity_auth_manager] trusted_proxies``: whose X-Forwarded-For the audit events believe."""
    return parse_trusted_proxies_setting(_read_section(SECTION).get("trusted_proxies", ""))


def load_all_settings() -> dict[str, AuthSettings]:
    """Every configured provider by name, in configured order (one, named 'default', unless ``providers``)."""
    main = _read_section(SECTION)
    names = parse_provider_names(main.pop("providers", ""))
    if not names:
        return {DEFAULT_NAME: parse_settings(main)}
    parse_trusted_proxies_setting(main.get("trusted_proxies", ""))
    providers: dict[str, AuthSettings] = {}
    for name in names:
        section = f"{SECTION}_{name}"
        try:
            providers[name] = parse_settings(_read_section(section), name=name)
        except SettingsError as err:
            raise SettingsError(err.key, err.problem, section=section) from None
    return providers


def _read_section(section: str) -> dict[str, str]:
    """Keys from airflow.cfg and from AIRFLOW__<SECTION>__<KEY> (getsection misses env-only sections)."""
    from airflow.configuration import conf

    values = {str(k): str(v) for k, v in (conf.getsection(section) or {}).items() if v is not None}
    for key in KNOWN_KEYS - set(values):
        value = conf.get(section, key, fallback=None)
        if value is not None:
            values[key] = str(value)
    return values
