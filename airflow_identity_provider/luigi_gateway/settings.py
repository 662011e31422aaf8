"""The gateway's settings: a plain ini file, section ``[luigi_gateway]``, read without Airflow's ``conf``.

The identity keys are exactly those of ``[identity_auth_manager]`` (idp, issuer, client_id, role_mapping,
api_audiences, providers...) and go through the same pure ``parse_settings``, so a value refused for
Airflow is refused here with the same words. The gateway's own keys (``upstream``, ``public_url``...) are
split off first. Several providers work as in Airflow: ``providers = staff,k8s`` and one section
``[luigi_gateway_<name>]`` each. ``LUIGI_GATEWAY__<KEY>`` (``LUIGI_GATEWAY_<NAME>__<KEY>``) environment
variables override the file, for secrets mounted by Kubernetes.

``parse_gateway`` is pure (sections of raw strings in, a frozen object out); ``load_gateway`` reads the
file and the environment. Every problem is one ``SettingsError`` whose message names section and key.
"""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from airflow_identity_provider.auth.rules.client_ip import IPNetwork
from airflow_identity_provider.auth.rules.settings import (
    DEFAULT_NAME,
    LOOPBACK_HOSTS,
    AuthSettings,
    SettingsError,
    check_https_url,
    parse_provider_names,
    parse_settings,
    parse_trusted_proxies_setting,
)

_T = TypeVar("_T")
SECTION = "luigi_gateway"
ENV_PREFIX = "LUIGI_GATEWAY"
# Machine identities that run luigi workers map to this role (role_mapping); the gateway adds it to the
# custom roles so that role_mapping validates it as it validates Viewer or Op.
WORKER_ROLE = "Worker"
MIN_SECRET_LENGTH = 32
GATEWAY_DEFAULTS: Mapping[str, str] = {
    "upstream": "",
    "public_url": "",
    "host": "127.0.0.1",
    "port": "8083",
    "session_secret": "",
    "session_lifetime": "28800",
    "upstream_timeout": "60",
    "worker_binding_ttl": "86400",
}
GATEWAY_KEYS = frozenset(GATEWAY_DEFAULTS)


@dataclass(frozen=True)
class Upstream:
    """Where luigid listens: ``http://127.0.0.1:8082`` or a unix socket (``unix:/run/luigid.sock``)."""

    base_url: str  # what httpx requests go to (``http://luigid`` for a socket)
    unix_socket: str | None = None

    @property
    def description(self) -> str:
        return f"unix:{self.unix_socket}" if self.unix_socket else self.base_url


@dataclass(frozen=True)
class GatewaySettings:
    upstream: Upstream
    public_url: str  # ends with "/"; redirect URIs are built from it, never from the Host header
    host: str
    port: int
    session_secret: str = field(repr=False)
    session_lifetime: int
    upstream_timeout: float
    worker_binding_ttl: int
    providers: Mapping[str, AuthSettings]
    trusted_proxies: tuple[IPNetwork, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def callback_url(self, name: str = DEFAULT_NAME) -> str:
        return self.public_url + ("auth/callback" if name == DEFAULT_NAME else f"auth/callback/{name}")

    @property
    def logged_out_url(self) -> str:
        return self.public_url + "auth/logged-out"


def parse_gateway(sections: Mapping[str, Mapping[str, str]]) -> GatewaySettings:
    """``sections``: section name -> raw key/values (file and environment merged)."""
    main = {k: v.strip() for k, v in sections.get(SECTION, {}).items()}
    own = {**GATEWAY_DEFAULTS, **{k: v for k, v in main.items() if k in GATEWAY_KEYS}}
    identity = {k: v for k, v in main.items() if k not in GATEWAY_KEYS}

    upstream = _upstream(own["upstream"])
    public_url = _public_url(own["public_url"])
    secret = own["session_secret"]
    if len(secret) < MIN_SECRET_LENGTH:
        raise SettingsError(
            "session_secret",
            f"needs at least {MIN_SECRET_LENGTH} characters (it signs the session cookies); generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'",
            section=SECTION,
        )
    names = parse_provider_names_in(identity.pop("providers", ""))
    trusted = _in_section(SECTION, lambda: parse_trusted_proxies_setting(identity.pop("trusted_proxies", "")))
    if not names:
        providers = {DEFAULT_NAME: _provider(SECTION, identity, DEFAULT_NAME)}
    else:
        providers = {}
        for name in names:
            section = f"{SECTION}_{name}"
            raw = {k: v.strip() for k, v in sections.get(section, {}).items()}
            providers[name] = _provider(section, raw, name)
    return GatewaySettings(
        upstream=upstream,
        public_url=public_url,
        host=own["host"] or "127.0.0.1",
        port=_int("port", own["port"], minimum=1, maximum=65535),
        session_secret=secret,
        session_lifetime=_int("session_lifetime", own["session_lifetime"], minimum=60),
        upstream_timeout=float(_int("upstream_timeout", own["upstream_timeout"], minimum=1)),
        worker_binding_ttl=_int("worker_binding_ttl", own["worker_binding_ttl"], minimum=60),
        providers=providers,
        trusted_proxies=trusted,
        warnings=tuple(_warnings(upstream, providers)),
    )


def parse_provider_names_in(text: str) -> tuple[str, ...]:
    return _in_section(SECTION, lambda: parse_provider_names(text))


def _provider(section: str, raw: Mapping[str, str], name: str) -> AuthSettings:
    values = dict(raw)
    values["roles"] = _with_worker_role(section, values.get("roles", ""))
    return _in_section(section, lambda: parse_settings(values, name=name))


def _with_worker_role(section: str, text: str) -> str:
    """``roles`` with a ``Worker`` role added unless the file defines one (it holds no Airflow permission)."""
    try:
        roles = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return text  # parse_settings reports it in its own words
    if not isinstance(roles, dict):
        return text
    if not any(isinstance(key, str) and key.lower() == WORKER_ROLE.lower() for key in roles):
        roles[WORKER_ROLE] = {}
    return json.dumps(roles)


def _in_section(section: str, parse: Callable[[], _T]) -> _T:
    """Run ``parse`` and report its SettingsError under ``section`` (parse_settings names Airflow's)."""
    try:
        return parse()
    except SettingsError as err:
        raise SettingsError(err.key, err.problem, section=section) from None


def _upstream(value: str) -> Upstream:
    if not value:
        raise SettingsError(
            "upstream", "is empty; set it to luigid's address, e.g. http://127.0.0.1:8082", section=SECTION
        )
    if value.startswith("unix:"):
        path = value.removeprefix("unix:")
        if not path.startswith("/"):
            raise SettingsError("upstream", f"expected unix:/absolute/path, got {value!r}", section=SECTION)
        return Upstream("http://luigid", path)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
        raise SettingsError(
            "upstream", f"expected http://host:port or unix:/path of luigid, got {value!r}", section=SECTION
        )
    return Upstream(f"{parts.scheme}://{parts.netloc}")


def _public_url(value: str) -> str:
    if not value:
        raise SettingsError(
            "public_url",
            "is empty; set it to the URL people open, e.g. https://luigi.example.com/ (redirect URIs are built "
            "from it)",
            section=SECTION,
        )
    _in_section(SECTION, lambda: check_https_url("public_url", value))
    if urlsplit(value).query or urlsplit(value).fragment:
        raise SettingsError("public_url", f"must not carry a query or fragment, got {value!r}", section=SECTION)
    return value.rstrip("/") + "/"


def _int(key: str, value: str, *, minimum: int, maximum: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(key, f"expected a whole number, got {value!r}", section=SECTION) from None
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise SettingsError(key, f"expected a number {bounds}, got {number}", section=SECTION)
    return number


def _warnings(upstream: Upstream, providers: Mapping[str, AuthSettings]) -> list[str]:
    found: list[str] = []
    host = urlsplit(upstream.base_url).hostname
    if upstream.unix_socket is None and host not in LOOPBACK_HOSTS:
        found.append(
            f"[{SECTION}] upstream: {upstream.base_url} is not a loopback address; luigid itself checks nobody, "
            "so make sure only the gateway can reach it (a network policy, or a unix socket)"
        )
    if not any(p.api_audiences for p in providers.values()):
        found.append(
            f"[{SECTION}] api_audiences: is empty, so workers cannot present access tokens (only people can "
            "sign in); set it to the audience of the tokens your workers request"
        )
    for name, settings in providers.items():
        if settings.access.grants or settings.access.team_mapping:
            section = SECTION if name == DEFAULT_NAME else f"{SECTION}_{name}"
            found.append(f"[{section}] dag_grants, team_mapping: have no meaning for luigid and are ignored")
    return found


# --- reading the file ------------------------------------------------------------------------------------


def read_sections(path: Path | None, environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The ini file's sections, then ``LUIGI_GATEWAY[_<NAME>]__<KEY>`` variables over them."""
    sections: dict[str, dict[str, str]] = {}
    if path is not None:
        # No interpolation: JSON values (role_mapping) and secrets may contain '%'.
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with path.open(encoding="utf-8") as handle:
                parser.read_file(handle)
        except OSError as err:
            raise SettingsError("config", f"cannot read {path}: {err.strerror}", section=SECTION) from None
        except configparser.Error as err:
            first_line = str(err).splitlines()[0]
            raise SettingsError("config", f"{path} is not an ini file: {first_line}", section=SECTION) from None
        for name in parser.sections():
            sections[name] = dict(parser.items(name))
    for variable, value in environ.items():
        prefix, sep, key = variable.partition("__")
        if not sep or not key or not (prefix == ENV_PREFIX or prefix.startswith(ENV_PREFIX + "_")):
            continue
        section = SECTION + prefix[len(ENV_PREFIX) :].lower()
        sections.setdefault(section, {})[key.lower()] = value
    return sections


def load_gateway(path: Path | None, environ: Mapping[str, str] | None = None) -> GatewaySettings:
    return parse_gateway(read_sections(path, os.environ if environ is None else environ))
