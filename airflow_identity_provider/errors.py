"""The one refusal vocabulary both wings share: a stable ``reason`` for code, logs and audit events, and a
``message`` for the administrator that says what happened and what to change.

A leaf: imports nothing from the package. Each wing subclasses :class:`Refusal` (an ID token refused, a
bad setting, a connection extra, an ARM preflight), so a handler catches ``Refusal`` and reads
``reason``/``message`` instead of branching on a dozen classes.
"""

from __future__ import annotations

__all__ = ["Refusal"]


class Refusal(Exception):
    """Something was refused on purpose (never a bug): ``reason`` is stable, ``message`` is for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message
