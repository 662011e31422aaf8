"""Drive the Graph emulator process from tests and the demo.

with start_graph_emulator(tenant_id=TENANT, apps={CLIENT: SECRET}) as graph:
    os.environ.update(graph.ca_env)  # trust its CA as production trusts a private one (tests: monkeypatch.setenv)
    app = msal.ConfidentialClientApplication(CLIENT, client_credential=SECRET, authority=graph.authority,
                                             instance_discovery=False)
    token = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])["access_token"]
    requests.get(f"{graph.graph_url}/v1.0/users/delta?$select=id,accountEnabled",
                 headers={"Authorization": f"Bearer {token}"}, verify=graph.ca_path)
    graph.disable_user(oid); graph.add_member(group, oid, expires_in=2); graph.fail("429", seconds=3)
"""

from __future__ import annotations

from typing import Any, Unpack

from dev.emulator_kit.process import DirectoryEmulator, EmulatorError, ProcessOptions

from .__main__ import READY_PREFIX
from .app import DEFAULT_ROLES, DEFAULT_TENANT_ID
from .tokens import GRAPH_RESOURCE, service_principal_oid

GRAPH_SCOPE = GRAPH_RESOURCE + "/.default"


class GraphEmulator(DirectoryEmulator):
    module = "dev.graph_emulator"
    ready_prefix = READY_PREFIX
    label = "Graph emulator"

    def __init__(
        self,
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
        apps: dict[str, str] | None = None,
        **options: Unpack[ProcessOptions],
    ) -> None:
        args = ["--tenant", tenant_id]
        for client_id, secret in (apps or {}).items():
            args += ["--app", f"{client_id}={secret}"]
        super().__init__(args, **options)
        self.tenant_id = tenant_id

    @property
    def authority(self) -> str:
        """msal ``authority=`` (with ``instance_discovery=False``): ``https://127.0.0.1:P/{tenant}``."""
        return f"{self.url}/{self.tenant_id}"

    @property
    def graph_url(self) -> str:
        """Graph's base (the same origin): requests go to ``{graph_url}/v1.0/…``."""
        return self.url

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @staticmethod
    def app_oid(client_id: str) -> str:
        """The ``oid`` in the app tokens of that client id (its service principal's object id)."""
        return service_principal_oid(client_id)

    # -- users -----------------------------------------------------------------------------

    def put_user(
        self,
        oid: str,
        *,
        upn: str | None = None,
        mail: str | None = None,
        display_name: str | None = None,
        enabled: bool = True,
        **props: Any,
    ) -> dict[str, Any]:
        """Create (or update) a user; extra Graph properties by their Graph names (``givenName=…``)."""
        body: dict[str, Any] = {"accountEnabled": enabled, **props}
        for name, value in (("userPrincipalName", upn), ("mail", mail), ("displayName", display_name)):
            if value is not None:
                body[name] = value
        return self._object("PUT", "users", oid, body)

    def patch_user(self, oid: str, **props: Any) -> dict[str, Any]:
        """Update Graph properties (``accountEnabled=False``) and/or ``deleted=True|"permanent"|False``."""
        return self._object("PATCH", "users", oid, props)

    def disable_user(self, oid: str) -> dict[str, Any]:
        return self.patch_user(oid, accountEnabled=False)

    def enable_user(self, oid: str) -> dict[str, Any]:
        return self.patch_user(oid, accountEnabled=True)

    def delete_user(self, oid: str, *, permanent: bool = False) -> dict[str, Any]:
        """Soft delete (delta: ``@removed`` reason ``changed``) or permanent (reason ``deleted``)."""
        return self._object("DELETE", "users", oid, {"permanent": permanent})

    def restore_user(self, oid: str) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", f"users/{self.q(oid)}/restore", {})
        return result

    # -- service principals ----------------------------------------------------------------

    def put_service_principal(
        self,
        object_id: str,
        *,
        app_id: str | None = None,
        display_name: str | None = None,
        enabled: bool = True,
        app_roles: dict[str, str] | None = None,
        identifier_uris: list[str] | tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Create (or update) a service principal. ``app_roles``: value -> app role id (the roles a resource app
        defines, which ``assign_app_role`` gives); ``identifier_uris`` join the appId in servicePrincipalNames."""
        body: dict[str, Any] = {"accountEnabled": enabled}
        if app_id is not None:
            body["appId"] = app_id
        if display_name is not None:
            body["displayName"] = display_name
        if app_roles is not None:
            body["appRoles"] = [
                {"id": role_id, "value": value, "displayName": value, "isEnabled": True, "origin": "Application",
                 "allowedMemberTypes": ["User", "Application"], "description": value}
                for value, role_id in app_roles.items()
            ]  # fmt: skip
        if identifier_uris:
            body["servicePrincipalNames"] = [app_id or object_id, *identifier_uris]
        return self._object("PUT", "servicePrincipals", object_id, body)

    def assign_app_role(
        self, resource_id: str, principal_id: str, app_role_id: str, *, type: str | None = None
    ) -> dict[str, Any]:
        """Give ``principal_id`` (``type``: users|groups|servicePrincipals, default what the id is) the app role
        ``app_role_id`` of the resource service principal ``resource_id``; returns the assignment (its ``id``)."""
        body: dict[str, Any] = {"principalId": principal_id, "appRoleId": app_role_id}
        if type is not None:
            body["principalType"] = type
        result: dict[str, Any] = self.control(
            "POST", f"servicePrincipals/{self.q(resource_id)}/appRoleAssignedTo", body
        )
        return result

    def remove_app_role_assignment(self, resource_id: str, assignment_id: str) -> None:
        self.control("DELETE", f"servicePrincipals/{self.q(resource_id)}/appRoleAssignedTo/{self.q(assignment_id)}")

    def patch_service_principal(self, object_id: str, **props: Any) -> dict[str, Any]:
        return self._object("PATCH", "servicePrincipals", object_id, props)

    def disable_service_principal(self, object_id: str) -> dict[str, Any]:
        return self.patch_service_principal(object_id, accountEnabled=False)

    def delete_service_principal(self, object_id: str, *, permanent: bool = False) -> dict[str, Any]:
        return self._object("DELETE", "servicePrincipals", object_id, {"permanent": permanent})

    # -- groups ----------------------------------------------------------------------------

    def put_group(self, group_id: str, display_name: str | None = None, **props: Any) -> dict[str, Any]:
        body = dict(props)
        if display_name is not None:
            body["displayName"] = display_name
        return self._object("PUT", "groups", group_id, body)

    def delete_group(self, group_id: str, *, permanent: bool = False) -> dict[str, Any]:
        return self._object("DELETE", "groups", group_id, {"permanent": permanent})

    def add_member(
        self, group_id: str, member_id: str, *, expires_in: float | None = None, type: str | None = None
    ) -> dict[str, Any]:
        """Add a member (``type``: users|groups|servicePrincipals, default: what the id is, else users).
        ``expires_in`` seconds: a time-bound (PIM for Groups) membership, removed when it ends."""
        body: dict[str, Any] = {"id": member_id, "expires_in": expires_in}
        if type is not None:
            body["type"] = type
        result: dict[str, Any] = self.control("POST", f"groups/{self.q(group_id)}/members", body)
        return result

    def remove_member(self, group_id: str, member_id: str) -> None:
        self.control("DELETE", f"groups/{self.q(group_id)}/members/{self.q(member_id)}")

    # -- settings --------------------------------------------------------------------------

    def set_page_size(self, page_size: int, members_page_size: int | None = None) -> None:
        """Objects per delta page (default 100) and members per group object in a page (default 100)."""
        self.control("POST", "settings", {"page_size": page_size, "members_page_size": members_page_size})

    def set_filter_limit(self, ids: int) -> None:
        """The most ids a groups/delta ``$filter`` may name (Graph: 50); more is a 400 Request_UnsupportedQuery."""
        self.control("POST", "settings", {"filter_limit": ids})

    def set_token_lifetime(self, seconds: int) -> None:
        """``expires_in`` of new tokens (default 3599); Graph rejects them after it (401)."""
        self.control("POST", "settings", {"token_lifetime": seconds})

    def register_app(
        self, client_id: str, secret: str | None = None, roles: list[str] | tuple[str, ...] = DEFAULT_ROLES
    ) -> None:
        """Register an app (from then on only registered apps get tokens). ``secret=None`` accepts any
        secret; ``roles`` are its Graph application permissions (403 without the needed one)."""
        self.control("PUT", f"apps/{self.q(client_id)}", {"secret": secret, "roles": list(roles)})

    def expire_delta_tokens(self) -> int:
        """Invalidate every deltaLink/nextLink issued so far (next use: 400 syncStateNotFound)."""
        result: int = self.control("POST", "expire-delta-tokens", {})
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "state")
        return result

    def _object(self, method: str, kind: str, object_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.control(method, f"{kind}/{self.q(object_id)}", body)
        return result


def start_graph_emulator(**kwargs: Any) -> GraphEmulator:
    """Start a Graph emulator process and wait until it is ready (stop it with ``.stop()`` or ``with``)."""
    return GraphEmulator(**kwargs).start()


__all__ = ["GRAPH_SCOPE", "EmulatorError", "GraphEmulator", "start_graph_emulator"]
