"""The signed-in user as Airflow sees it, and its (small) form inside the Airflow JWT."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

from airflow_identity_provider.auth.rules.roles import Role


@dataclass(frozen=True)
class IdentityUser(BaseUser):
    user_id: str
    name: str
    email: str
    role: Role
    # When the user last proved themselves at the IdP; carried in the Airflow JWT for revalidation.
    auth_time: int = 0
    # Which configured provider signed the user in (its revalidate_interval applies).
    idp: str = ""

    def get_id(self) -> str:
        return self.user_id

    def get_name(self) -> str:
        return self.name

    def to_claims(self) -> dict[str, Any]:
        # Only these few claims: the JWT travels in a cookie (4 KB limit), so no group lists or IdP tokens.
        return {
            "sub": self.user_id,
            "name": self.name,
            "email": self.email,
            "role": self.role.display_name,
            "auth_time": self.auth_time,
            "idp": self.idp,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> IdentityUser:
        """Rebuild from validated Airflow JWT claims; ``KeyError``/``ValueError`` make Airflow refuse the token."""
        subject = claims["sub"]
        role = claims["role"]
        if not isinstance(subject, str) or not subject or not isinstance(role, str):
            raise ValueError("the token's sub and role must be non-empty strings")
        return cls(
            user_id=subject,
            name=str(claims.get("name") or subject),
            email=str(claims.get("email") or ""),
            role=Role.parse(role),
            auth_time=int(claims.get("auth_time") or 0),
            idp=str(claims.get("idp") or ""),
        )
