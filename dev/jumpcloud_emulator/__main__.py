"""``python -m dev.jumpcloud_emulator --port 0 [--api-key KEY …] [--state-dir DIR] [--verbose]``

Prints one line ``JUMPCLOUD_EMULATOR_READY {"url": …, "ca": …}`` once it is listening; SIGTERM/SIGINT
(or stdin EOF with ``--exit-on-stdin-eof``) stop it.
"""

from __future__ import annotations

import argparse
import sys

from dev.emulator_kit.main import main_for

from .app import DEFAULT_API_KEY, JumpCloudApp

READY_PREFIX = "JUMPCLOUD_EMULATOR_READY "


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key", action="append", default=[], help=f"an accepted x-api-key (repeatable; default {DEFAULT_API_KEY})"
    )


def _build(args: argparse.Namespace) -> tuple[JumpCloudApp, dict[str, str]]:
    return JumpCloudApp(api_keys=args.api_key or None), {}


def main(argv: list[str] | None = None) -> int:
    return main_for(
        "python -m dev.jumpcloud_emulator", "JumpCloud API emulator (systemusers, user groups)", _arguments,
        _build, READY_PREFIX, argv,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
