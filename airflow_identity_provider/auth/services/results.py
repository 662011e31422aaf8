"""The refusal result every service returns instead of raising: reason, message and the HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airflow_identity_provider.auth.idp.errors import IdpUnavailable
from airflow_identity_provider.auth.rules.claims import Identity
from airflow_identity_provider.errors import Refusal


@dataclass(frozen=True)
class Refused:
    """A refused step. ``unavailable`` is set when the cause is an unreachable IdP (it has its own page)."""

    reason: str
    message: str
    status_code: int
    unavailable: IdpUnavailable | None = None

    @classmethod
    def of(cls, err: Refusal, status_code: int) -> Refused:
        """``err`` answered with ``status_code``; an unreachable IdP always answers 503."""
        if isinstance(err, IdpUnavailable):
            return cls(err.reason, err.message, 503, err)
        return cls(err.reason, err.message, status_code)


def user_id_for(providers: Mapping[str, object], provider_name: str, identity: Identity) -> str:
    """With several providers, ids are prefixed by the provider: the same ``sub`` in two directories is two
    people (Airflow compares ids for HITL assignees and records them on runs)."""
    return identity.user_id if len(providers) == 1 else f"{provider_name}/{identity.user_id}"
