"""JumpCloud API emulator (tests and demos only): v1 system users (suspended / locked / activated /
state) and v2 user groups with their members. See README.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import JumpCloudEmulator


def start_jumpcloud_emulator(**kwargs: Any) -> JumpCloudEmulator:
    """Start the emulator process (see ``client.JumpCloudEmulator`` for the arguments) and wait until ready."""
    from .client import start_jumpcloud_emulator as start

    return start(**kwargs)
