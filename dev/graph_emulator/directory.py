"""The emulated Entra directory: users, groups (with time-bound memberships), service principals and the
app-role assignments made on them (``appRoleAssignedTo``).

Every change gets the next sequence number, per property and per (group, member), so that a delta
query started at sequence ``q`` can report exactly what changed after it: a property change, a
deletion (``@removed``), an added or removed member. Time-bound memberships (PIM for Groups) are
removed, with a fresh sequence number, by the first request after they expire.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

KINDS = ("users", "groups", "servicePrincipals")
ODATA_TYPES = {
    "users": "#microsoft.graph.user",
    "groups": "#microsoft.graph.group",
    "servicePrincipals": "#microsoft.graph.servicePrincipal",
}
ENTITY_NAMES = {"users": "user", "groups": "group", "servicePrincipals": "servicePrincipal"}
# The properties the emulator knows (a $select of another one is a 400, as in Graph).
PROPERTIES: dict[str, tuple[str, ...]] = {
    "users": (
        "id", "accountEnabled", "userPrincipalName", "mail", "displayName", "givenName", "surname",
        "jobTitle", "department", "employeeId", "userType", "otherMails", "businessPhones", "mobilePhone",
        "officeLocation", "preferredLanguage", "onPremisesSyncEnabled",
    ),
    "groups": (
        "id", "displayName", "description", "mail", "mailEnabled", "mailNickname", "securityEnabled",
        "groupTypes", "members",
    ),
    "servicePrincipals": (
        "id", "accountEnabled", "appId", "displayName", "servicePrincipalType", "appOwnerOrganizationId", "tags",
        "appRoles", "servicePrincipalNames", "appRoleAssignmentRequired",
    ),
}  # fmt: skip
# appRoleAssignment's properties (GET /servicePrincipals/{id}/appRoleAssignedTo?$select=…).
ASSIGNMENT_PROPERTIES = (
    "id", "appRoleId", "createdDateTime", "deletedDateTime", "principalDisplayName", "principalId", "principalType",
    "resourceDisplayName", "resourceId",
)  # fmt: skip
PRINCIPAL_TYPES = {"users": "User", "groups": "Group", "servicePrincipals": "ServicePrincipal"}
# Graph's defaults without $select: note that a user's accountEnabled is NOT among them.
DEFAULT_SELECT: dict[str, tuple[str, ...]] = {
    "users": (
        "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
        "preferredLanguage", "surname", "userPrincipalName", "id",
    ),
    "groups": PROPERTIES["groups"],
    "servicePrincipals": PROPERTIES["servicePrincipals"],
}  # fmt: skip
NAVIGATION = {"members"}
DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"  # "default access": an assignment without a role


class NotFound(KeyError):
    pass


def canonical(kind: str, name: str) -> str:
    """The property's canonical spelling ($select is case-insensitive); ValueError if unknown."""
    for known in PROPERTIES[kind]:
        if known.lower() == name.strip().lower():
            return known
    raise ValueError(
        f"Could not find a property named '{name.strip()}' on type 'microsoft.graph.{ENTITY_NAMES[kind]}'."
    )


@dataclass
class Entry:
    kind: str
    id: str
    props: dict[str, Any]
    prop_seq: dict[str, int]
    created_seq: int
    state_seq: int  # creation, deletion or restore
    deleted: str | None = None  # None | "changed" (soft-deleted, restorable) | "deleted" (permanently)


@dataclass
class Membership:
    member_kind: str
    expires_at: float | None = None  # epoch seconds (PIM for Groups: an activated, time-bound membership)


@dataclass
class Assignment:
    """An app role (``app_role_id`` of the resource's ``appRoles``) given to a user, group or service principal."""

    id: str
    resource_id: str
    principal_id: str
    principal_kind: str  # a KINDS entry
    app_role_id: str
    created: str  # ISO 8601, as Graph's createdDateTime


@dataclass
class Directory:
    seq: int = 0
    objects: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    members: dict[str, dict[str, Membership]] = field(default_factory=dict)  # group -> member -> membership
    # group -> member -> (seq of the last change, member kind); kept after a removal so deltas can report it
    member_changes: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict)
    assignments: dict[str, Assignment] = field(default_factory=dict)  # assignment id -> assignment

    def tick(self) -> int:
        self.seq += 1
        return self.seq

    # -- objects ---------------------------------------------------------------------------

    def get(self, kind: str, object_id: str) -> Entry:
        entry = self.objects[kind].get(object_id)
        if entry is None or entry.deleted == "deleted":
            raise NotFound(object_id)
        return entry

    def live(self, kind: str, object_id: str) -> Entry | None:
        entry = self.objects[kind].get(object_id)
        return entry if entry is not None and entry.deleted is None else None

    def put(self, kind: str, object_id: str, props: dict[str, Any]) -> Entry:
        """Create the object, or update the given properties (a permanently deleted id starts afresh)."""
        props = {canonical(kind, k): v for k, v in props.items()}
        props.pop("id", None)
        if "members" in props:
            raise ValueError("members are managed with the group member endpoints")
        entry = self.objects[kind].get(object_id)
        if entry is None or entry.deleted == "deleted":
            seq = self.tick()
            full = {**self._defaults(kind, object_id), **props}
            if kind == "servicePrincipals" and "servicePrincipalNames" not in props:
                full["servicePrincipalNames"] = [full["appId"]]  # Entra lists the appId there (and identifier URIs)
            entry = Entry(kind, object_id, full, dict.fromkeys(full, seq), created_seq=seq, state_seq=seq)
            self.objects[kind][object_id] = entry
            return entry
        for name, value in props.items():
            if entry.props.get(name, object()) != value:
                entry.props[name] = value
                entry.prop_seq[name] = self.tick()
        return entry

    def patch(self, kind: str, object_id: str, props: dict[str, Any]) -> Entry:
        self.get(kind, object_id)
        return self.put(kind, object_id, props)

    @staticmethod
    def _defaults(kind: str, object_id: str) -> dict[str, Any]:
        short = object_id.split("-")[0]
        if kind == "users":
            upn = f"user-{short}@emulator.test"
            return {"accountEnabled": True, "userPrincipalName": upn, "displayName": f"user-{short}", "mail": None}
        if kind == "groups":
            return {"displayName": f"group-{short}", "securityEnabled": True, "mailEnabled": False, "groupTypes": []}
        return {
            "accountEnabled": True,
            "appId": object_id,
            "displayName": f"app-{short}",
            "servicePrincipalType": "Application",
            "appRoles": [],
            "appRoleAssignmentRequired": False,
        }

    def delete(self, kind: str, object_id: str, *, permanent: bool) -> Entry:
        entry = self.get(kind, object_id)
        if entry.deleted == "changed" and not permanent:
            return entry
        entry.deleted = "deleted" if permanent else "changed"
        entry.state_seq = self.tick()
        self._touch_memberships_of(object_id, drop=permanent)
        if permanent and kind == "groups":
            self.members.pop(object_id, None)
        if permanent:  # Entra removes the assignments of (and on) an object deleted for good
            for aid in [a.id for a in self.assignments.values() if object_id in (a.principal_id, a.resource_id)]:
                del self.assignments[aid]
        return entry

    def restore(self, kind: str, object_id: str) -> Entry:
        entry = self.get(kind, object_id)
        if entry.deleted is None:
            return entry
        entry.deleted = None
        entry.state_seq = self.tick()
        self._touch_memberships_of(object_id, drop=False)
        return entry

    def _touch_memberships_of(self, member_id: str, *, drop: bool) -> None:
        """A deleted (or restored) member leaves (or rejoins) its groups: the groups' deltas say so."""
        for group_id, members in self.members.items():
            membership = members.get(member_id)
            if membership is None:
                continue
            self.member_changes.setdefault(group_id, {})[member_id] = (self.tick(), membership.member_kind)
            if drop:
                del members[member_id]

    # -- memberships -----------------------------------------------------------------------

    def member_kind(self, member_id: str) -> str:
        for kind in KINDS:
            if member_id in self.objects[kind]:
                return kind
        return "users"

    def add_member(
        self, group_id: str, member_id: str, *, expires_in: float | None = None, member_kind: str | None = None
    ) -> Membership:
        if self.live("groups", group_id) is None:
            raise NotFound(group_id)
        kind = member_kind or self.member_kind(member_id)
        if kind not in KINDS:
            raise ValueError(f"member type must be one of {KINDS}")
        expires_at = None if expires_in is None else time.time() + float(expires_in)
        members = self.members.setdefault(group_id, {})
        existing = members.get(member_id)
        if existing is not None:  # re-activation or a permanent assignment: no membership change
            existing.expires_at = expires_at
            return existing
        members[member_id] = membership = Membership(kind, expires_at)
        self.member_changes.setdefault(group_id, {})[member_id] = (self.tick(), kind)
        return membership

    def remove_member(self, group_id: str, member_id: str) -> None:
        membership = self.members.get(group_id, {}).pop(member_id, None)
        if membership is None:
            raise NotFound(member_id)
        self.member_changes.setdefault(group_id, {})[member_id] = (self.tick(), membership.member_kind)

    def expire(self, now: float | None = None) -> list[tuple[str, str]]:
        """Remove the time-bound memberships that have ended; returns (group, member) pairs."""
        now = time.time() if now is None else now
        ended = [
            (group_id, member_id)
            for group_id, members in self.members.items()
            for member_id, m in members.items()
            if m.expires_at is not None and m.expires_at <= now
        ]
        for group_id, member_id in ended:
            self.remove_member(group_id, member_id)
        return ended

    def is_member(self, group_id: str, member_id: str) -> bool:
        """A member counts while its membership exists and its own object is not deleted."""
        membership = self.members.get(group_id, {}).get(member_id)
        if membership is None:
            return False
        entry = self.objects[membership.member_kind].get(member_id)
        return entry is None or entry.deleted is None

    def present_members(self, group_id: str) -> list[tuple[str, str]]:
        return [(m, ms.member_kind) for m, ms in self.members.get(group_id, {}).items() if self.is_member(group_id, m)]

    def groups_of(self, member_id: str) -> list[Entry]:
        return [
            entry
            for group_id in self.members
            if (entry := self.live("groups", group_id)) is not None and self.is_member(group_id, member_id)
        ]

    # -- app-role assignments --------------------------------------------------------------

    def assign(
        self,
        resource_id: str,
        principal_id: str,
        app_role_id: str,
        *,
        principal_kind: str | None = None,
        assignment_id: str | None = None,
    ) -> Assignment:
        """Give ``principal_id`` the app role ``app_role_id`` of the resource service principal (which must
        define it, as Entra requires, unless it is the default-access role 00000000-…)."""
        resource = self.live("servicePrincipals", resource_id)
        if resource is None:
            raise NotFound(resource_id)
        kind = principal_kind or self.member_kind(principal_id)
        if kind not in KINDS:
            raise ValueError(f"principal type must be one of {KINDS}")
        if self.live(kind, principal_id) is None:
            raise NotFound(principal_id)
        role_ids = {str(r.get("id", "")).lower() for r in resource.props.get("appRoles") or () if isinstance(r, dict)}
        if app_role_id.lower() not in role_ids | {DEFAULT_ACCESS_ROLE}:
            raise ValueError(f"the resource {resource_id} defines no app role {app_role_id}")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        aid = assignment_id or f"{principal_id}-{resource_id}-{app_role_id}"  # Graph's ids are opaque strings
        self.assignments[aid] = Assignment(aid, resource_id, principal_id, kind, app_role_id, created)
        return self.assignments[aid]

    def unassign(self, resource_id: str, assignment_id: str) -> None:
        found = self.assignments.get(assignment_id)
        if found is None or found.resource_id != resource_id:
            raise NotFound(assignment_id)
        del self.assignments[assignment_id]

    def assigned_to(self, resource_id: str) -> list[Assignment]:
        """The resource's assignments whose principal exists now (a soft-deleted one's come back on restore)."""
        return [
            a
            for a in self.assignments.values()
            if a.resource_id == resource_id and self.live(a.principal_kind, a.principal_id) is not None
        ]

    def snapshot(self) -> dict[str, Any]:
        """Everything, for debugging (GET /_control/state)."""
        return {
            "seq": self.seq,
            **{
                kind: {i: {**e.props, "id": i, "deleted": e.deleted} for i, e in self.objects[kind].items()}
                for kind in KINDS
            },
            "members": {
                g: {m: {"type": ms.member_kind, "expires_at": ms.expires_at} for m, ms in members.items()}
                for g, members in self.members.items()
            },
            "appRoleAssignments": {a.id: vars(a).copy() for a in self.assignments.values()},
        }
