"""The ARM reads of a preflight, through one hook's authorization client: effective permissions, deny
assignments, role assignments and the principal of the hook's token. :class:`HookArmFacts` is the
:class:`~.facts.ArmFacts` the preflight uses unless it is given another."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from airflow_identity_provider.azure.preflight.facts import (
    Counter,
    Facts,
    Forbidden,
    NotFound,
    read_refusal,
    subscription_scope,
)
from airflow_identity_provider.azure.preflight.report import PreflightRefused
from airflow_identity_provider.azure.rules.arm_json import as_plain, error_summary
from airflow_identity_provider.azure.rules.overprivilege import RoleAssignment
from airflow_identity_provider.azure.rules.rbac import DenyAssignment, PermissionEntry, parse_permissions
from airflow_identity_provider.azure.rules.scopes import ArmScope, ScopeError, ascii_fold, parse_scope

if TYPE_CHECKING:
    from azure.mgmt.authorization import AuthorizationManagementClient

    from airflow_identity_provider.azure.hooks.arm import AzureResourceManagerHook

__all__ = ["AUTHORIZATION_API_VERSION", "HookArmFacts", "principal_from_token"]

AUTHORIZATION_API_VERSION = "2022-04-01"
_MAX_PAGES = 20  # a permissions list has one entry per role; more pages than this means something is wrong


def principal_from_token(token: str) -> str | None:
    """The ``oid`` claim of a JWT access token, or None for an opaque token.

    The token is decoded WITHOUT verifying its signature, on purpose: it came straight from our own
    credential, and the oid is used only to choose which role/deny assignments to look at. Nothing is
    authorised on its strength; ARM verifies the token on every request.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    oid = claims.get("oid") if isinstance(claims, dict) else None
    return ascii_fold(oid) if isinstance(oid, str) and oid else None


class HookArmFacts:
    """:class:`~.facts.ArmFacts` read through ``hook`` (its credential's token and its authorization client)."""

    def __init__(self, hook: AzureResourceManagerHook) -> None:
        self.hook = hook

    @property
    def conn_id(self) -> str:
        return self.hook.settings.conn_id

    def principal(self) -> str | None:
        token = self.hook.get_credential().get_token(self.hook.settings.cloud.arm_scope)
        return principal_from_token(token.token)

    def permissions(
        self, scope: str, count: Counter, facts: Facts, *, not_found: bool = False
    ) -> tuple[PermissionEntry, ...]:
        return self._read_permissions(self.hook.get_authorization_client(), scope, count, facts, not_found=not_found)

    def deny_assignments(self, scope: str, count: Counter, facts: Facts) -> tuple[DenyAssignment, ...] | None:
        return self._read_denies(self.hook.get_authorization_client(), scope, count, facts, self.conn_id)

    def role_assignments(
        self, target: ArmScope, principal: str | None, count: Counter, facts: Facts
    ) -> tuple[RoleAssignment, ...] | None:
        client = self.hook.get_authorization_client()
        return self._read_assignments(client, target, principal, count, facts, self.conn_id)

    def _drain(self, read: Callable[[], Iterable[Any]], where: str, what: str, conn_id: str) -> list[Any]:
        """Run a read to the last page; map 403/404 to the internal signals, any other ARM error to a refusal."""
        try:
            return [as_plain(item) for item in read()]
        except HttpResponseError as err:
            if err.status_code == 403:
                raise Forbidden(err) from err
            if err.status_code == 404:
                raise NotFound(err) from err
            self._arm_error(err, where, what, conn_id)

    def _read_permissions(
        self,
        client: AuthorizationManagementClient,
        scope: str,
        count: Counter,
        facts: Facts,
        *,
        not_found: bool = False,
    ) -> tuple[PermissionEntry, ...]:
        """Effective permissions of the caller at ``scope``. A 403 or an empty list means nothing is allowed
        (the permissions API needs no action of its own). With ``not_found`` a 404 raises
        :class:`~.facts.NotFound` for the caller's fallback; otherwise any 404 is ARM's error, surfaced verbatim."""
        parsed = parse_scope(scope)
        conn_id = self.hook.settings.conn_id
        read: Callable[[], Iterable[Any]]
        rg = parsed.resource_group
        if parsed.kind == "resource_group" and rg and parsed.subscription_id == self._client_subscription():
            read = lambda: client.permissions.list_for_resource_group(rg, raw_response_hook=count)  # noqa: E731
        else:
            # The subscription path is not in azure-mgmt-authorization 4.0's stable API, and extension or
            # nested resources have no list_for_resource shape: send the same REST call directly.
            path = f"{parsed}/providers/Microsoft.Authorization/permissions"
            read = lambda: self._send_paged(client, path, count)  # noqa: E731
        try:
            items = self._drain(read, scope, "permissions", conn_id)
        except Forbidden as denied:
            facts.notes.append(
                f"ARM refused to list this identity's permissions at {scope} ({error_summary(denied.err)}); "
                "treated as nothing allowed"
            )
            return ()
        except NotFound as missing:
            if not_found:
                raise
            self._arm_error(missing.err, scope, "permissions", conn_id)
        try:
            entries = parse_permissions(items)
        except ValueError as err:
            raise PreflightRefused(f"ARM returned unreadable permissions at {scope}: {err}") from err
        if not entries:
            facts.notes.append(f"ARM lists no permissions for this identity at {scope}; treated as nothing allowed")
        return entries

    @staticmethod
    def _send_paged(client: AuthorizationManagementClient, path: str, count: Counter) -> list[Any]:
        """GET a list through the authorization client's own pipeline (host pin, correlation id, retries,
        token) and follow ``nextLink``. Raises HttpResponseError as the SDK would."""
        pipeline = client._client  # the generated client's ARMPipelineClient
        items: list[Any] = []
        request = HttpRequest("GET", path, params={"api-version": AUTHORIZATION_API_VERSION})
        # PipelineClient.send_request does not resolve a relative URL against base_url; the SDK's does.
        request.url = pipeline.format_url(request.url)
        for _ in range(_MAX_PAGES):
            response = pipeline.send_request(request, raw_response_hook=count)
            if response.status_code != 200:
                from azure.mgmt.core.exceptions import ARMErrorFormat

                raise HttpResponseError(response=response, error_format=ARMErrorFormat)
            body = response.json()
            if not isinstance(body, Mapping) or not isinstance(body.get("value", []), list):
                raise HttpResponseError(message=f"GET {path}: unexpected response body", response=response)
            items.extend(body.get("value") or [])
            next_link = body.get("nextLink")
            if not next_link:
                return items
            # nextLink is absolute; the hook's host-pin policy refuses it if it points off the ARM host.
            request = HttpRequest("GET", str(next_link))
        raise HttpResponseError(message=f"GET {path}: more than {_MAX_PAGES} pages of nextLink")

    def _read_denies(
        self,
        client: AuthorizationManagementClient,
        scope: str,
        count: Counter,
        facts: Facts,
        conn_id: str,
    ) -> tuple[DenyAssignment, ...] | None:
        try:
            items = self._drain(
                lambda: client.deny_assignments.list_for_scope(scope, filter="atScope()", raw_response_hook=count),
                scope,
                "deny assignments",
                conn_id,
            )
        except (Forbidden, NotFound) as err:
            # Least-privileged custom roles often lack Microsoft.Authorization/denyAssignments/read; refusing
            # here would punish exactly the identities this feature recommends. ARM still enforces denies.
            facts.notes.append(
                f"deny assignments at {scope} could not be read ({error_summary(err.err)}); they were not "
                "checked (ARM still enforces them). Grant Microsoft.Authorization/denyAssignments/read to "
                "include them"
            )
            return None
        try:
            return tuple(DenyAssignment.from_api(d) for d in items)
        except (ValueError, ScopeError) as err:
            raise PreflightRefused(f"ARM returned an unreadable deny assignment at {scope}: {err}") from err

    def _read_assignments(
        self,
        client: AuthorizationManagementClient,
        target: ArmScope,
        principal: str | None,
        count: Counter,
        facts: Facts,
        conn_id: str,
    ) -> tuple[RoleAssignment, ...] | None:
        if principal is None:
            facts.notes.append(
                "the ARM token carries no oid claim, so this identity's role assignments cannot be looked up"
            )
            return None
        flt = f"assignedTo('{principal}')"
        scope = subscription_scope(target) or str(target)
        read: Callable[[], Iterable[Any]]
        if target.subscription_id and target.subscription_id == self._client_subscription():
            read = lambda: client.role_assignments.list_for_subscription(filter=flt, raw_response_hook=count)  # noqa: E731
        else:
            read = lambda: client.role_assignments.list_for_scope(scope, filter=flt, raw_response_hook=count)  # noqa: E731
        try:
            items = self._drain(read, scope, "role assignments", conn_id)
        except (Forbidden, NotFound) as err:
            facts.notes.append(
                f"role assignments at {scope} could not be read ({error_summary(err.err)}); over-privilege was "
                "judged from the effective permissions only"
            )
            return None
        assignments: list[RoleAssignment] = []
        for item in items:
            try:
                assignments.append(RoleAssignment.from_api(item))
            except ValueError as err:
                raise PreflightRefused(f"ARM returned an unreadable role assignment at {scope}: {err}") from err
        return tuple(assignments)

    def _client_subscription(self) -> str | None:
        sub = self.hook.settings.subscription_id
        return ascii_fold(sub) if sub else None

    @staticmethod
    def _arm_error(err: Exception, scope: str, what: str, conn_id: str) -> NoReturn:
        raise read_refusal(err, scope, what, conn_id) from err
