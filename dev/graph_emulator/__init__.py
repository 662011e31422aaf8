"""Microsoft Graph emulator (tests and demos only): users, groups with time-bound (PIM) memberships,
service principals, delta queries, and the Entra client-credentials token endpoint. See README.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import GraphEmulator


def start_graph_emulator(**kwargs: Any) -> GraphEmulator:
    """Start the emulator process (see ``client.GraphEmulator`` for the arguments) and wait until ready."""
    from .client import start_graph_emulator as start

    return start(**kwargs)
