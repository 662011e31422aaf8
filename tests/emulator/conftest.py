"""Fixtures: one ARM emulator process per test module, reset before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dev.arm_emulator.client import ArmEmulator
from tests.emulator.support import Clients, make_clients


@pytest.fixture(scope="module")
def emu() -> Iterator[ArmEmulator]:
    with ArmEmulator() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _reset(emu: ArmEmulator) -> None:
    emu.reset()


@pytest.fixture
def clients(emu: ArmEmulator) -> Clients:
    return make_clients(emu)
