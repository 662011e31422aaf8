"""Fixtures: one ARM emulator process per test module, reset before every test; the Graph emulator for the modules
that ask for it (they replace ``_reset`` with their own: tests/emulator/graph_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dev.arm_emulator.client import ArmEmulator
from dev.graph_emulator.client import GraphEmulator
from tests.emulator.graph_support import CLIENT, SECRET, TENANT
from tests.emulator.support import Clients, make_clients


@pytest.fixture(scope="module")
def emu() -> Iterator[ArmEmulator]:
    with ArmEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphEmulator]:
    with GraphEmulator(tenant_id=TENANT, apps={CLIENT: SECRET}) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _reset(emu: ArmEmulator) -> None:
    emu.reset()


@pytest.fixture
def clients(emu: ArmEmulator) -> Clients:
    return make_clients(emu)
