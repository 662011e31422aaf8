"""What the directory says now about the holder of an Airflow token, and what that leaves them. Pure.

A background sync (``auth.directory``) keeps, per identity provider (per Entra tenant), a ``DirectoryView``:
the state of every account (user or service principal) and who holds each tracked group or app role, as of
``synced_at``. :func:`apply` runs on every request for every kind of Airflow token (browser cookie,
UI-generated, CLI, exchanged machine token) and for IdP Bearer tokens: dictionary lookups, no I/O.

Whichever is newer wins. A token whose holder proved themselves at the IdP (``auth_time``) after the view's
last sync carries newer news than the view: it is taken as it is (a user re-enabled, or given a PIM membership,
a second ago). Otherwise the view decides: a disabled, suspended, locked or deleted account is refused; kept
groups are cut to those the account still holds; roles and teams are cut to what those groups give. Nothing is
ever added (a higher role comes with the next sign-in: :func:`upgrade_due` tells a browser session when).
A refusal is returned (not raised), as a value the manager turns into a 401.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from airflow_identity_provider.auth.rules.access import AccessPolicy
from airflow_identity_provider.auth.rules.user import IdentityUser
from airflow_identity_provider.errors import Refusal

ENABLED = "enabled"
# Account states that refuse, with the words people read ("deleted" is also what absence means, see apply).
REFUSED_STATES = frozenset({"disabled", "deleted", "suspended", "locked", "deactivated"})
USER = "user"
SERVICE_PRINCIPAL = "service_principal"

_EMPTY: Mapping[str, object] = MappingProxyType({})


class DirectoryRefusal(Refusal, ValueError):
    """The directory says this token's holder may no longer use Airflow (the manager answers 401)."""


@dataclass(frozen=True)
class Account:
    state: str = ENABLED  # ENABLED or one of REFUSED_STATES
    kind: str = USER  # USER or SERVICE_PRINCIPAL (for messages)


@dataclass(frozen=True, eq=False)
class DirectoryView:
    """One directory's state as of ``synced_at``. Shared between threads: never mutated once published.

    Keys are principal ids as Airflow user ids carry them, without the provider prefix that several providers
    add (``id_prefix``): ``tid:oid`` for Entra (users and service principals alike), the system user id for
    JumpCloud. ``scope`` is the start every covered key has (``"<tid>:"`` for one Entra tenant): users of other
    tenants are not this view's business and pass untouched.
    """

    source: str  # "graph" or "jumpcloud": named in refusals and audit events
    accounts: Mapping[str, Account] = field(default_factory=dict)
    # Other names a token may carry for an account (JumpCloud: lower-cased e-mail and username) -> its key.
    aliases: Mapping[str, str] = field(default_factory=dict)
    # Tracked group or app-role value (as tokens carry it) -> keys of the accounts that hold it now.
    # A value that is not a key here is not tracked (unknown to the sync) and is left as the token says.
    holders: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Key -> when an incremental sync last saw the account gain a tracked value (not set by a full sync).
    gained: Mapping[str, float] = field(default_factory=dict)
    synced_at: float = 0.0
    scope: str = ""
    id_prefix: str = ""
    generation: int = 0
    # Whether the view lists every account, so that one absent was deleted (Graph: users and service principals
    # by delta). False where a token's subject may be something the directory does not list (JumpCloud): such a
    # subject is left alone, and deletions are known from tombstones the sync keeps in ``accounts``.
    absent_means_deleted: bool = True

    def key_of(self, user_id: str) -> str | None:
        """The account key of an Airflow user id, or None when the id is outside this view."""
        key = user_id
        if self.id_prefix:
            if not key.startswith(self.id_prefix):
                return None
            key = key[len(self.id_prefix) :]
        if not key.startswith(self.scope):
            return None
        if key in self.accounts:
            return key
        return self.aliases.get(key.lower(), key)

    def held_by(self, key: str) -> frozenset[str]:
        """The tracked values ``key`` holds now (a few dozen tracked values: a scan is cheap)."""
        return frozenset(value for value, keys in self.holders.items() if key in keys)


def apply(
    user: IdentityUser, view: DirectoryView | None, policy: AccessPolicy, now: float
) -> IdentityUser | DirectoryRefusal:
    """``user`` as the directory leaves them: the same object when nothing changed, a reduced copy when
    memberships were lost, or the refusal when the account may not be used any more.

    A sign-in later than ``now`` (a clock ahead of ours) is no evidence of being newer than the view.
    """
    if view is None:
        return user
    key = view.key_of(user.user_id)
    if key is None:
        return user  # not this directory's account (another provider or tenant)
    if view.synced_at < user.auth_time <= now:
        return user  # signed in at the IdP after the view was taken: the token is the newer news
    account = view.accounts.get(key)
    if account is None and not view.absent_means_deleted:
        return user  # a subject this directory does not know: nothing to say about it, not even its groups
    if account is None:
        # Every account of the directory is in a complete view, so one that is absent was deleted (a full sync
        # never lists deleted objects; an incremental one reports them as removed).
        return DirectoryRefusal(
            "account_deleted",
            f"{user.user_id} no longer exists in the {_source(view)} directory; Airflow refuses its tokens.",
        )
    if account.state != ENABLED:
        what = "service principal" if account.kind == SERVICE_PRINCIPAL else "account"
        return DirectoryRefusal(
            f"account_{account.state}",
            f"The {what} {user.user_id} is {account.state} in the {_source(view)} directory; Airflow refuses "
            "its tokens.",
        )
    kept = tuple(group for group in user.groups if group not in view.holders or key in view.holders[group])
    if kept == user.groups:
        return user
    return reduce(user, kept, policy, source=_source(view))


def reduce(
    user: IdentityUser, kept: tuple[str, ...], policy: AccessPolicy, *, source: str
) -> IdentityUser | DirectoryRefusal:
    """Keep only ``kept`` groups, and of the token's roles and teams only those ``kept`` still gives.

    ``default_role`` counts only for a token whose roles were the default already: a machine token is minted
    without it (``POST /auth/token``), and a principal that lost its mapped group must not keep the default in
    its place (a managed identity's removed app-role assignment would otherwise leave it Viewer)."""
    had_default_only = not policy.roles_for(user.groups, use_default=False)
    recomputed = {policy.canonical_role(name) for name in policy.roles_for(kept, use_default=had_default_only)}
    roles = tuple(name for name in user.roles if policy.canonical_role(name) in recomputed)
    teams_now = set(policy.teams_for(kept))
    teams = tuple(team for team in user.teams if team in teams_now)
    if not roles and not kept:
        return DirectoryRefusal(
            "no_access_left",
            f"{user.user_id} no longer holds any group or app role that gives access to Airflow in the {source} "
            "directory.",
        )
    return replace(user, roles=roles, groups=kept, teams=teams)


def upgrade_due(user: IdentityUser, view: DirectoryView | None, policy: AccessPolicy) -> bool:
    """Whether the account gained, after this token's sign-in, a tracked value that would give it more
    (a role, a grant, a team): a browser session is then sent through the IdP once to pick it up. The
    ``gained`` time is after the gain was seen, so the next sign-in is newer and this answers False again."""
    if view is None:
        return False
    key = view.key_of(user.user_id)
    if key is None or view.gained.get(key, 0.0) <= user.auth_time:
        return False
    untracked = tuple(group for group in user.groups if group not in view.holders)
    held = (*untracked, *sorted(view.held_by(key)))
    assignment = policy.assign(held, use_default=False)
    if assignment is None:
        return False
    current = {policy.canonical_role(name) for name in user.roles}
    return (
        any(policy.canonical_role(name) not in current for name in assignment.roles)
        or not set(assignment.groups) <= set(user.groups)
        or not set(assignment.teams) <= set(user.teams)
    )


def _source(view: DirectoryView) -> str:
    return {"graph": "Microsoft Entra (Graph)", "jumpcloud": "JumpCloud"}.get(view.source, view.source)


__all__ = [
    "ENABLED",
    "REFUSED_STATES",
    "SERVICE_PRINCIPAL",
    "USER",
    "Account",
    "DirectoryRefusal",
    "DirectoryView",
    "apply",
    "reduce",
    "upgrade_due",
]
