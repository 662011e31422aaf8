"""Airflow's four built-in roles, ordered so that the highest mapped role can win."""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    VIEWER = 1
    USER = 2
    OP = 3
    ADMIN = 4

    @property
    def display_name(self) -> str:
        """The name users write in role_mapping and see in Airflow: Viewer, User, Op, Admin."""
        return self.name.capitalize()

    @classmethod
    def parse(cls, name: str) -> Role:
        """Parse a role name as written in configuration or carried in the Airflow JWT (case-insensitive)."""
        for role in cls:
            if role.name == name.strip().upper():
                return role
        choices = ", ".join(r.display_name for r in cls)
        raise ValueError(f"{name!r} is not an Airflow role; expected one of {choices}")
