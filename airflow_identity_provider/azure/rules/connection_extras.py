"""Connection extras of type ``azure_resource_manager`` -> a frozen, validated :class:`ArmConnectionSettings`.

Pure: no Airflow and no azure SDK imports, so it is cheap to import and trivially testable.

The rules follow the project's "fail closed" principle. The existing Azure provider silently drops
``managed_identity_client_id`` unless a tenant is also set, and then runs as whatever identity the
machine defaults to (apache/airflow#35051, azure-sdk-for-net#34436: a read-only identity silently ran
read/write). Here a connection names exactly one identity, and anything given that the chosen
``auth_type`` would not use is refused with a message naming the key and the fix.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from airflow_identity_provider.azure.rules.connection_settings import (
    CONN_TYPE,
    DEFAULT_AUTH_TYPE,
    DEFAULT_POLLING_INTERVAL,
    KNOWN_EXTRAS,
    LEGACY_PREFIX,
    ArmConnectionSettings,
    AuthType,
    ConnectionConfigError,
    ManagedIdentityId,
    check_auth_requirements,
)
from airflow_identity_provider.azure.rules.scopes import ascii_fold, parse_allowed_scopes
from airflow_identity_provider.clouds import CLOUDS, CUSTOM, Cloud, CloudConfigError, custom_cloud, get_cloud
from airflow_identity_provider.entra_ids import MULTI_TENANT_NAMES, is_guid

__all__ = ["parse_connection_settings", "settings_from_connection"]

# Names people bring from the Azure provider's ``azure`` connection type; suggested in the error.
_ALIASES = {
    "tenantid": "tenant_id",
    "subscriptionid": "subscription_id",
    "cloud_environment": "cloud",
    "workload_identity_tenant_id": "tenant_id",
    "key_path": "certificate_path",
    "scopes": "allowed_scopes",
    "reference_scopes": "allowed_reference_scopes",
    "verify": "connection_verify",
}

_MI_KEYS: dict[str, Literal["client_id", "object_id", "resource_id"]] = {
    "managed_identity_client_id": "client_id",
    "managed_identity_object_id": "object_id",
    "managed_identity_resource_id": "resource_id",
}
_CUSTOM_CLOUD_KEYS = ("authority", "resource_manager_url", "credential_scope")
# custom_cloud() argument -> the extra it came from.
_CLOUD_FIELD_TO_EXTRA = {
    "authority": "authority",
    "arm_endpoint": "resource_manager_url",
    "credential_scope": "credential_scope",
}

_TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,253}")
# Matched against the ASCII-folded id: re.IGNORECASE would let U+017F (long s) stand for "s".
_MI_RESOURCE_ID = re.compile(
    r"/subscriptions/[^/\s]+/resourcegroups/[^/\s]+/providers/microsoft\.managedidentity/"
    r"userassignedidentities/[^/\s]+"
)
# login and client_id sit next to the secret fields in the form: a secret pasted one box off ends up there.
_UNECHOED_KEYS = frozenset({"login", "password", "client_id", "certificate_data"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class _ConnectionLike(Protocol):
    """The parts of ``airflow.sdk.Connection`` used here (duck-typed to keep this module Airflow-free)."""

    conn_id: str
    conn_type: str | None
    login: str | None
    password: str | None
    extra: str | None


def settings_from_connection(conn: _ConnectionLike) -> ArmConnectionSettings:
    """Validate an Airflow connection object.

    Reads ``conn.extra`` itself rather than ``extra_dejson``: Airflow logs and returns ``{}`` for
    malformed JSON, which would silently turn a broken service-principal connection into the default
    managed identity.
    """
    conn_id = conn.conn_id
    if conn.conn_type and conn.conn_type != CONN_TYPE:
        raise ConnectionConfigError(
            conn_id,
            "conn_type",
            f"is {conn.conn_type!r}",
            f"This hook reads connections of type {CONN_TYPE!r}; create one of that type.",
        )
    extras: Any = {}
    if conn.extra:
        try:
            extras = json.loads(conn.extra)
        except ValueError:
            raise ConnectionConfigError(
                conn_id, "extra", "is not valid JSON", "Fix the JSON object in the connection's Extra field."
            ) from None
    if not isinstance(extras, dict):
        raise ConnectionConfigError(
            conn_id, "extra", f"is a JSON {type(extras).__name__}", "Extra must be a JSON object."
        )
    return parse_connection_settings(conn_id, extras, login=conn.login, password=conn.password)


def parse_connection_settings(
    conn_id: str,
    extras: Mapping[str, Any],
    *,
    login: str | None = None,
    password: str | None = None,
) -> ArmConnectionSettings:
    """Validate connection extras plus login/password into settings; raises :class:`ConnectionConfigError`."""
    p = _Parser(conn_id, _normalize_extras(conn_id, extras))
    auth_type = p.auth_type()
    cloud = p.cloud()
    login = _blank_to_none(login)
    password = password if password else None  # a password may legitimately contain only spaces

    managed_identity = p.managed_identity_id()
    if managed_identity is not None and auth_type is not AuthType.MANAGED_IDENTITY:
        raise p.error(
            f"managed_identity_{managed_identity.kind}",
            f"is set but auth_type is {auth_type.value!r}",
            "A managed-identity id only selects an identity for auth_type managed_identity; "
            "remove it or set auth_type to managed_identity.",
        )

    settings = ArmConnectionSettings(
        conn_id=conn_id,
        auth_type=auth_type,
        cloud=cloud,
        tenant_id=p.tenant_id(),
        subscription_id=p.guid("subscription_id", "subscription id"),
        client_id=p.client_id(login),
        client_secret=password if auth_type is AuthType.CLIENT_SECRET else None,
        managed_identity=managed_identity,
        certificate_path=p.string("certificate_path"),
        certificate_data=p.certificate_data(),
        certificate_password=password if auth_type is AuthType.CERTIFICATE else None,
        federated_token_file=p.string("federated_token_file"),
        allowed_scopes=p.scopes("allowed_scopes"),
        allowed_reference_scopes=p.scopes("allowed_reference_scopes"),
        disable_instance_discovery=p.boolean("disable_instance_discovery"),
        connection_verify=p.string("connection_verify"),
        polling_interval=p.polling_interval(),
    )
    check_auth_requirements(settings, login=login, password=password, given=p.present)
    return settings


def _normalize_extras(conn_id: str, extras: Mapping[str, Any]) -> dict[str, Any]:
    """Strip the legacy prefix, drop empty values, refuse unknown keys (typos must not be ignored)."""
    out: dict[str, Any] = {}
    for raw_key, value in extras.items():
        key = str(raw_key)
        if key.startswith(LEGACY_PREFIX):
            key = key[len(LEGACY_PREFIX) :]
        if key not in KNOWN_EXTRAS:
            suggestion = _ALIASES.get(ascii_fold(key)) or next(
                iter(difflib.get_close_matches(key, sorted(KNOWN_EXTRAS), n=1)), None
            )
            fix = f"Did you mean {suggestion!r}?" if suggestion else "Remove it."
            raise ConnectionConfigError(
                conn_id,
                key,
                "is not a setting of this connection type",
                f"{fix} Known extras: " + ", ".join(sorted(KNOWN_EXTRAS)) + ".",
            )
        if _is_blank(value):
            continue  # the UI form stores empty fields as "" or null
        if key in out and out[key] != value:
            raise ConnectionConfigError(
                conn_id,
                key,
                f"is given twice with different values (with and without the {LEGACY_PREFIX!r} prefix)",
                "Keep one of them.",
            )
        out[key] = value
    return out


class _Parser:
    """Typed accessors over normalized extras; each raises ConnectionConfigError naming its key."""

    def __init__(self, conn_id: str, extras: dict[str, Any]) -> None:
        self.conn_id = conn_id
        self.extras = extras

    def error(self, key: str, problem: str, fix: str) -> ConnectionConfigError:
        return ConnectionConfigError(self.conn_id, key, problem, fix)

    def present(self, key: str) -> bool:
        return key in self.extras

    def string(self, key: str) -> str | None:
        value = self.extras.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {type(value).__name__}", "Quote the value.")
        return value.strip()

    def boolean(self, key: str) -> bool:
        value = self.extras.get(key)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and ascii_fold(value.strip()) in _TRUE | _FALSE:
            return ascii_fold(value.strip()) in _TRUE
        raise self.error(key, f"is {value!r}", "Use true or false.")

    def guid(self, key: str, what: str) -> str | None:
        value = self.string(key)
        if value is None:
            return None
        if not is_guid(value):
            raise self.error(key, _not_a_guid(key, value), f"Set it to the {what} (a GUID).")
        return ascii_fold(value)

    def auth_type(self) -> AuthType:
        value = self.string("auth_type")
        if value is None:
            return DEFAULT_AUTH_TYPE
        try:
            return AuthType(ascii_fold(value))
        except ValueError:
            choices = ", ".join(a.value for a in AuthType)
            raise self.error("auth_type", f"is {value!r}", f"Set it to one of: {choices}.") from None

    def cloud(self) -> Cloud:
        name = ascii_fold(self.string("cloud") or "public")
        custom_keys = [k for k in _CUSTOM_CLOUD_KEYS if self.present(k)]
        if name != CUSTOM:
            if custom_keys:
                raise self.error(
                    custom_keys[0],
                    f"is set but cloud is {name!r}",
                    "Set cloud to 'custom' to use your own authority and ARM endpoint, or remove it.",
                )
            try:
                return get_cloud(name)
            except ValueError:
                choices = ", ".join([*CLOUDS, CUSTOM])
                raise self.error("cloud", f"is {name!r}", f"Set it to one of: {choices}.") from None
        for key in ("authority", "resource_manager_url"):
            if not self.present(key):
                raise self.error(key, "is required when cloud is 'custom'", "Set it to an https:// URL.")
        try:
            return custom_cloud(
                authority=self.string("authority") or "",
                arm_endpoint=self.string("resource_manager_url") or "",
                credential_scope=self.string("credential_scope"),
            )
        except CloudConfigError as err:
            key = _CLOUD_FIELD_TO_EXTRA.get(err.field, err.field)
            raise self.error(key, f"is invalid ({err})", "Use https://host[:port] (no http, no path).") from None

    def tenant_id(self) -> str | None:
        value = self.string("tenant_id")
        if value is None:
            return None
        if ascii_fold(value) in MULTI_TENANT_NAMES:
            raise self.error(
                "tenant_id",
                f"is {value!r}",
                "An app or identity authenticates in one directory: set the tenant GUID or domain.",
            )
        if is_guid(value):
            return ascii_fold(value)
        if not _TENANT_NAME.fullmatch(value):
            raise self.error("tenant_id", f"is {value!r}", "Set the directory (tenant) GUID or its domain name.")
        return value

    def client_id(self, login: str | None) -> str | None:
        extra = self.guid("client_id", "application (client) id")
        if login is not None and not is_guid(login):
            raise self.error(
                "login",
                _not_a_guid("login", login),
                "Put the application (client) id (a GUID) in login; a client secret belongs in password.",
            )
        login_id = ascii_fold(login) if login else None
        if extra and login_id and extra != login_id:
            raise self.error(
                "client_id",
                "differs from the connection login",
                "Give the client id once: in login or in the client_id extra.",
            )
        return extra or login_id

    def managed_identity_id(self) -> ManagedIdentityId | None:
        given = [key for key in _MI_KEYS if self.present(key)]
        if len(given) > 1:
            raise self.error(
                given[1],
                f"is set together with {given[0]!r}",
                "Name the managed identity by exactly one id (client id, object id or resource id).",
            )
        if not given:
            return None
        key = given[0]
        kind = _MI_KEYS[key]
        if kind == "resource_id":
            value = self.string(key) or ""
            if not _MI_RESOURCE_ID.fullmatch(ascii_fold(value)):
                raise self.error(
                    key,
                    f"is {value!r}",
                    "Use the identity's ARM id: /subscriptions/<id>/resourceGroups/<rg>/providers/"
                    "Microsoft.ManagedIdentity/userAssignedIdentities/<name>.",
                )
            return ManagedIdentityId(kind, value)
        return ManagedIdentityId(kind, self.guid(key, f"managed identity's {kind.replace('_', ' ')}") or "")

    def certificate_data(self) -> str | None:
        value = self.string("certificate_data")
        if value is None:
            return None
        # Connections made from a URI or a shell often carry the PEM with literal "\n".
        value = value.replace("\\n", "\n")
        if "-----BEGIN" not in value:
            raise self.error(
                "certificate_data",
                "is not PEM",
                "Paste the PEM text (private key and certificate, '-----BEGIN ...' blocks).",
            )
        return value

    def scopes(self, key: str) -> tuple[str, ...]:
        """``allowed_scopes`` or ``allowed_reference_scopes``: one grammar, one canonical spelling."""
        if not self.present(key):
            return ()
        try:
            return parse_allowed_scopes(self.extras[key])
        except ValueError as err:
            raise self.error(
                key,
                f"is invalid: {err}",
                "Give a JSON list or comma-separated ARM scopes such as "
                "/subscriptions/<id>/resourceGroups/<rg> or /providers/Microsoft.Management/"
                "managementGroups/<id>.",
            ) from None

    def polling_interval(self) -> float:
        value = self.extras.get("polling_interval")
        if value is None:
            return DEFAULT_POLLING_INTERVAL
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not 0 < number <= 3600:
            raise self.error("polling_interval", f"is {value!r}", "Set the seconds between LRO polls (0 < n <= 3600).")
        return number


def _not_a_guid(key: str, value: str) -> str:
    """The problem text for a non-GUID; the value is left out where a pasted secret would land."""
    if key in _UNECHOED_KEYS:
        return "is not a GUID (its value is not shown, in case a secret was pasted there)"
    return f"is {value!r}, not a GUID"


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None
