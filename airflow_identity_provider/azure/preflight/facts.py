"""The ARM facts a preflight judges, and how they are gathered: behind the :class:`ArmFacts` protocol (the
reads), so the order, the fallbacks and the caching are independent of how ARM is reached."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_identity_provider.azure.preflight.report import PreflightRefused
from airflow_identity_provider.azure.rules.arm_json import error_summary
from airflow_identity_provider.azure.rules.overprivilege import RoleAssignment
from airflow_identity_provider.azure.rules.rbac import DenyAssignment, PermissionEntry
from airflow_identity_provider.azure.rules.scopes import ArmScope
from airflow_identity_provider.azure.rules.template_terms import LinkedAccess

__all__ = ["ArmFacts", "Counter", "Facts", "Forbidden", "NotFound", "gather", "linked_missing", "read_refusal"]

Counter = Callable[[Any], None]
"""A ``raw_response_hook``: called once per HTTP response (pages and retries included)."""


@dataclass
class Facts:
    """What ARM said, cached per check key. None = not read (mode off/ignore, or no principal)."""

    permission_scope: str | None = None
    entries: tuple[PermissionEntry, ...] | None = None
    deny_scope: str | None = None
    denies: tuple[DenyAssignment, ...] | None = None
    assignments: tuple[RoleAssignment, ...] | None = None
    subscription_entries: tuple[PermissionEntry, ...] | None = None
    """Permissions read at the subscription (the escalation fallback), when they were."""
    linked_entries: dict[str, tuple[PermissionEntry, ...]] = field(default_factory=dict)
    """Permissions read at linked resources outside the target, by resource id."""
    notes: list[str] = field(default_factory=list)
    arm_calls: int = 0


class NotFound(Exception):
    """A read answered 404: the scope (usually a resource group) does not exist (yet)."""

    def __init__(self, err: Exception) -> None:
        super().__init__(str(err))
        self.err = err


class Forbidden(Exception):
    """A read answered 403."""

    def __init__(self, err: Exception) -> None:
        super().__init__(str(err))
        self.err = err


def read_refusal(err: Exception, scope: str, what: str, conn_id: str) -> PreflightRefused:
    """A read ARM failed otherwise: ARM's own words, verbatim (they name the code, the principal, the fix)."""
    return PreflightRefused(
        f"ARM preflight could not read {what} at {scope} through connection {conn_id!r}; ARM answered:\n{err}"
    )


def subscription_scope(scope: ArmScope) -> str | None:
    return f"/subscriptions/{scope.subscription_id}" if scope.subscription_id else None


class ArmFacts(Protocol):
    """The reads a preflight makes. Each passes ``count`` to every request it sends and adds what the reader
    should know to ``facts.notes``; a 403 or an empty list is "nothing allowed"."""

    def principal(self) -> str | None:
        """The object id (``oid``) of the identity the reads run as; None when the token carries none."""
        ...

    def permissions(
        self, scope: str, count: Counter, facts: Facts, *, not_found: bool = False
    ) -> tuple[PermissionEntry, ...]:
        """Effective permissions at ``scope``; with ``not_found`` a 404 raises :class:`NotFound`."""
        ...

    def deny_assignments(self, scope: str, count: Counter, facts: Facts) -> tuple[DenyAssignment, ...] | None:
        """Deny assignments at and above ``scope``; None when they could not be read."""
        ...

    def role_assignments(
        self, target: ArmScope, principal: str | None, count: Counter, facts: Facts
    ) -> tuple[RoleAssignment, ...] | None:
        """Role assignments of ``principal`` (groups included) in the target's subscription; None if unreadable."""
        ...


def gather(
    reads: ArmFacts,
    target: ArmScope,
    operation: str,
    required: tuple[str, ...],
    principal: str | None,
    conn_id: str,
    *,
    least_privilege: str,
    overprivilege: str,
) -> Facts:
    """Read what ``least_privilege``/``overprivilege`` need (see the package doc for the fallbacks)."""
    facts = Facts()

    def count(_response: Any) -> None:
        # raw_response_hook runs once per HTTP response (pages and retries included).
        facts.arm_calls += 1

    sub_scope = subscription_scope(target)
    deny_scope: str | None = str(target)

    if least_privilege != "off":
        if operation == "resource_group_write" and target.kind == "resource_group" and sub_scope:
            # The group may not exist yet, so its own path would 404: read the subscription's
            # permissions first. They are inherited, i.e. a lower bound; only if they fall short is the
            # group itself asked (it may exist, with a group-scoped role granting the update).
            entries = reads.permissions(sub_scope, count, facts)
            facts.permission_scope = sub_scope
            facts.subscription_entries = entries
            deny_scope = sub_scope
            if not all(any(e.allows(a) for e in entries) for a in required):
                try:
                    entries = reads.permissions(str(target), count, facts, not_found=True)
                except NotFound:
                    facts.notes.append(f"resource group {target} does not exist yet; checked at {sub_scope}")
                else:
                    facts.permission_scope = str(target)
                    deny_scope = str(target)
            facts.entries = entries
        else:
            try:
                facts.entries = reads.permissions(
                    str(target), count, facts, not_found=target.kind not in ("subscription", "root")
                )
                facts.permission_scope = str(target)
                if target.kind == "subscription":
                    facts.subscription_entries = facts.entries
            except NotFound as missing:
                if sub_scope is None:  # a management group or tenant-level id: nothing to fall back to
                    raise read_refusal(missing.err, str(target), "permissions", conn_id) from missing.err
                facts.notes.append(
                    f"{target} does not exist ({error_summary(missing.err)}); permissions and deny "
                    f"assignments were read at {sub_scope} instead"
                )
                facts.entries = reads.permissions(sub_scope, count, facts)
                facts.subscription_entries = facts.entries
                facts.permission_scope = sub_scope
                deny_scope = sub_scope
        facts.deny_scope = deny_scope
        facts.denies = reads.deny_assignments(deny_scope or str(target), count, facts)

    if overprivilege != "ignore":
        facts.assignments = reads.role_assignments(target, principal, count, facts)
        if facts.assignments is None and facts.entries is None:
            # Role assignments could not be read and least_privilege='off' read no permissions: one
            # permissions read still lets escalation be detected (roleAssignments/write in the entries).
            scope = sub_scope or str(target)
            facts.subscription_entries = reads.permissions(scope, count, facts)
            facts.notes.append(f"over-privilege judged from the effective permissions at {scope}")
    return facts


def linked_missing(
    reads: ArmFacts, linked: Iterable[LinkedAccess], facts: Facts, target: ArmScope
) -> tuple[tuple[tuple[str, str], ...], int]:
    """Linked rights the identity lacks, and the ARM reads spent finding out.

    A right already granted at the target (inherited by everything in it) costs nothing more; any other
    is read where the resource lives, once per resource (roles on a single identity or vault are common).
    """
    spent = 0

    def count(_response: Any) -> None:
        nonlocal spent
        spent += 1

    missing: list[tuple[str, str]] = []
    for item in linked:
        granted_at_target = facts.entries and any(e.allows(item.action) for e in facts.entries)
        if granted_at_target and target.contains(item.resource_id):
            continue
        entries = facts.linked_entries.get(item.resource_id)
        if entries is None:
            try:
                entries = reads.permissions(item.resource_id, count, facts, not_found=True)
            except NotFound:
                facts.notes.append(f"linked resource {item.resource_id} was not found; ARM will say so too")
                entries = ()
            facts.linked_entries[item.resource_id] = entries
        if not any(e.allows(item.action) for e in entries):
            missing.append((item.action, item.resource_id))
    return tuple(dict.fromkeys(missing)), spent
