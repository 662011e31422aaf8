"""Whether a browser session must go back through the IdP: a clock comparison and a directory lookup, no I/O.

``IdentityAuthManager.refresh_user`` runs this on every browser request; a reason ends the session, so the UI
sends the user through the IdP again (silent while the IdP session lasts, refused once the directory removed
them, and the roles recomputed from the groups they have now).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_identity_provider.auth.rules import audit

if TYPE_CHECKING:
    from airflow_identity_provider.auth.rules.user import IdentityUser
    from airflow_identity_provider.auth.services.directory import DirectoryGate


def revalidation_reason(
    user: IdentityUser, *, revalidate_interval: float, gate: DirectoryGate, now: float
) -> str | None:
    """The reason this session is over (also an audit event), or None while it may go on."""
    if revalidate_interval and now - user.auth_time > revalidate_interval:
        audit.emit(
            "revalidation",
            outcome="failure",
            reason="revalidation_due",
            **audit.user_fields(user),
            signed_in_at=user.auth_time,
            revalidate_interval=revalidate_interval,
        )
        return f"session of {user.user_id} is due for revalidation"
    if gate.upgrade_due(user):
        # The directory gave more since this sign-in (a PIM activation, a new group): one silent trip through
        # the IdP picks it up; the new session is newer than the gain, so this does not repeat.
        audit.emit(
            "revalidation",
            outcome="failure",
            reason="directory_membership_gained",
            **audit.user_fields(user),
            signed_in_at=user.auth_time,
        )
        return f"{user.user_id} gained access in the directory"
    return None


__all__ = ["revalidation_reason"]
