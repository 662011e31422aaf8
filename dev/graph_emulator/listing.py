"""Plain (non-delta) collections of the Graph emulator: the service principals (to find a resource app by its
``appId`` or identifier URI, with its ``appRoles``) and their ``appRoleAssignedTo`` (who holds which app role).

``GET /v1.0/servicePrincipals?$filter=appId eq '…'&$select=id,appId,appRoles`` and
``GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo?$select=appRoleId,principalId,principalType&$top=999``:
the two calls behind app-role tracking (https://learn.microsoft.com/graph/api/serviceprincipal-list-approleassignedto).
Pages of ``$top`` (default 100, at most 999) linked by ``@odata.nextLink``; the result is fixed when its first page
is served. Raises :class:`QueryError` for what Graph refuses (and for options the emulator does not answer).
"""

from __future__ import annotations

from typing import Any

from .directory import ASSIGNMENT_PROPERTIES, PRINCIPAL_TYPES, PROPERTIES, Directory, Entry, NotFound
from .queries import Clause, Pages, QueryError, page_size, parse_filter, select_names, unsupported_clause

SP_ENTITY = "microsoft.graph.servicePrincipal"
ASSIGNMENT_ENTITY = "microsoft.graph.appRoleAssignment"
_SP_EQ = {"id", "appid", "displayname"}
_SP_ANY = {"serviceprincipalnames"}
_NOT_EMULATED = ("$orderby", "$search", "$count", "$expand", "$skip")


def _refuse_not_emulated(params: dict[str, str | None], what: str) -> None:
    for option in _NOT_EMULATED:
        if params.get(option) is not None:
            raise QueryError(400, "Request_UnsupportedQuery", f"{option} on {what} is not emulated.")


def _sp_matches(entry: Entry, clauses: list[Clause]) -> bool:
    for clause in clauses:
        if clause.any:
            if clause.value.lower() in (str(n).lower() for n in entry.props.get("servicePrincipalNames") or ()):
                return True
        elif clause.prop.lower() == "id":
            if entry.id.lower() == clause.value.lower():
                return True
        else:
            name = "appId" if clause.prop.lower() == "appid" else "displayName"
            if str(entry.props.get(name, "")).lower() == clause.value.lower():
                return True
    return False


def service_principals(
    directory: Directory, pages: Pages, params: dict[str, str | None], base_url: str
) -> dict[str, Any]:
    """``GET /v1.0/servicePrincipals``: live service principals, filtered and projected."""
    url = f"{base_url}/v1.0/servicePrincipals"
    if params.get("$skiptoken") is not None:
        return pages.resume(url, str(params["$skiptoken"]))
    _refuse_not_emulated(params, "servicePrincipals")
    clauses: list[Clause] | None = None
    if params.get("$filter") is not None:
        clauses = parse_filter(str(params["$filter"]), "ServicePrincipal")
        for clause in clauses:
            if clause.prop.lower() not in (_SP_ANY if clause.any else _SP_EQ):
                raise unsupported_clause(clause.prop, "ServicePrincipal")
    select = select_names(params.get("$select"), PROPERTIES["servicePrincipals"], SP_ENTITY)
    items = []
    for entry in directory.objects["servicePrincipals"].values():
        if entry.deleted is None and (clauses is None or _sp_matches(entry, clauses)):
            props = {"id": entry.id, **entry.props}
            items.append({k: props[k] for k in select if k in props} if select else props)
    context = f"{base_url}/v1.0/$metadata#servicePrincipals" + (f"({','.join(select)})" if select else "")
    return pages.page(url, context, items, 0, page_size(params.get("$top")))


def app_role_assigned_to(
    directory: Directory, pages: Pages, resource_id: str, params: dict[str, str | None], base_url: str
) -> dict[str, Any]:
    """``GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo``: the app roles given on that resource."""
    url = f"{base_url}/v1.0/servicePrincipals/{resource_id}/appRoleAssignedTo"
    if params.get("$skiptoken") is not None:
        return pages.resume(url, str(params["$skiptoken"]))
    _refuse_not_emulated(params, "appRoleAssignedTo")
    if params.get("$filter") is not None:
        raise QueryError(400, "Request_UnsupportedQuery", "$filter on appRoleAssignedTo is not emulated.")
    resource = directory.live("servicePrincipals", resource_id)
    if resource is None:
        raise NotFound(resource_id)
    select = select_names(params.get("$select"), ASSIGNMENT_PROPERTIES, ASSIGNMENT_ENTITY)
    items = []
    for assignment in directory.assigned_to(resource_id):
        principal = directory.live(assignment.principal_kind, assignment.principal_id)
        full = {
            "id": assignment.id,
            "deletedDateTime": None,
            "appRoleId": assignment.app_role_id,
            "createdDateTime": assignment.created,
            "principalDisplayName": principal.props.get("displayName") if principal else None,
            "principalId": assignment.principal_id,
            "principalType": PRINCIPAL_TYPES[assignment.principal_kind],
            "resourceDisplayName": resource.props.get("displayName"),
            "resourceId": resource_id,
        }
        items.append({k: full[k] for k in select} if select else full)
    context = f"{base_url}/v1.0/$metadata#servicePrincipals('{resource_id}')/appRoleAssignedTo"
    return pages.page(url, context, items, 0, page_size(params.get("$top")))
