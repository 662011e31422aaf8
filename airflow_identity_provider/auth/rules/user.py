"""The signed-in user as Airflow sees it, and its (small) form inside the Airflow JWT."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

from airflow_identity_provider.auth.rules.access import Principal
from airflow_identity_provider.auth.rules.roles import Role


def _names(value: object) -> tuple[str, ...]:
    if isinstance(value, Role):
        return (value.display_name,)
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, (list, tuple, frozenset, set)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected a list of names, got {value!r}")


@dataclass(frozen=True)
class IdentityUser(BaseUser):
    user_id: str
    name: str
    email: str
    # Role names, built-in (Viewer, User, Op, Admin) or custom; a Role or one name is accepted too.
    roles: tuple[str, ...]
    # When the user last proved themselves at the IdP; carried in the Airflow JWT for revalidation.
    auth_time: int = 0
    # Which configured provider signed the user in (its settings apply).
    idp: str = ""
    # Only the groups some role_mapping, dag_grants, team_mapping or access_control entry names.
    groups: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    # Other names DAG authors may assign human-in-the-loop tasks to (UPN, preferred_username).
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", _names(self.roles))
        object.__setattr__(self, "groups", _names(self.groups))
        object.__setattr__(self, "teams", _names(self.teams))
        object.__setattr__(self, "aliases", _names(self.aliases))

    def get_id(self) -> str:
        return self.user_id

    def get_name(self) -> str:
        return self.name

    @property
    def role(self) -> Role | None:
        """The highest built-in role held, for people and logs; custom roles are in ``roles``."""
        builtin = [r for r in Role if r.display_name in self.roles]
        return max(builtin) if builtin else None

    @cached_property  # asked once per DAG id when filtering lists: build (and hash) it once per request
    def principal(self) -> Principal:
        return Principal(roles=self.roles, groups=frozenset(self.groups), teams=frozenset(self.teams))

    def to_claims(self) -> dict[str, Any]:
        # The JWT travels in a cookie (4 KB limit): role names, the few groups settings name, no IdP tokens.
        claims: dict[str, Any] = {
            "sub": self.user_id,
            "name": self.name,
            "email": self.email,
            "roles": list(self.roles),
            "auth_time": self.auth_time,
            "idp": self.idp,
        }
        if self.role is not None:
            # The highest built-in role, as tokens carried before roles existed: an api-server replica
            # still on the previous release reads it during a rolling upgrade (custom roles: fail closed).
            claims["role"] = self.role.display_name
        for key in ("groups", "teams", "aliases"):
            if getattr(self, key):
                claims[key] = list(getattr(self, key))
        return claims

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> IdentityUser:
        """Rebuild from validated Airflow JWT claims; ``KeyError``/``ValueError`` make Airflow refuse the token."""
        subject = claims["sub"]
        # "role" (one name) is what tokens minted before several roles per user carry.
        roles = claims["roles"] if "roles" in claims else claims["role"]
        if not isinstance(subject, str) or not subject:
            raise ValueError("the token's sub must be a non-empty string")
        return cls(
            user_id=subject,
            name=str(claims.get("name") or subject),
            email=str(claims.get("email") or ""),
            roles=_names(roles),
            auth_time=int(claims.get("auth_time") or 0),
            idp=str(claims.get("idp") or ""),
            groups=_names(claims.get("groups", ())),
            teams=_names(claims.get("teams", ())),
            aliases=_names(claims.get("aliases", ())),
        )
