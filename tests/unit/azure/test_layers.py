"""The azure wing's layers import one way: leaves -> rules -> adapters -> entry points (read from the source)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "airflow_identity_provider"
AZURE = PACKAGE / "azure"
LEAVES = {
    "airflow_identity_provider.errors",
    "airflow_identity_provider.clouds",
    "airflow_identity_provider.entra_ids",
    "airflow_identity_provider.audit",
}
RULES = "airflow_identity_provider.azure.rules"
ADAPTERS = tuple(
    f"airflow_identity_provider.azure.{name}"
    for name in ("credentials", "policies", "hooks", "preflight", "deployments")
)
ENTRY_POINTS = ("airflow_identity_provider.azure.operators", "airflow_identity_provider.azure.triggers")
MAX_LINES = 400


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every package module the file imports, at module level or inside functions (TYPE_CHECKING included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("airflow_identity_provider")}


def _under(module: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in prefixes)


FILES = sorted(AZURE.rglob("*.py"))


@pytest.mark.parametrize("path", [p for p in FILES if _under(_module(p), RULES)], ids=_module)
def test_rules_import_only_rules_and_leaves(path: Path) -> None:
    bad = sorted(m for m in _imports(path) if not (_under(m, RULES) or m in LEAVES))
    assert bad == [], f"{_module(path)} is a pure rule module but imports {bad}"


@pytest.mark.parametrize("path", [p for p in FILES if _under(_module(p), ADAPTERS)], ids=_module)
def test_adapters_do_not_import_entry_points(path: Path) -> None:
    bad = sorted(m for m in _imports(path) if _under(m, ENTRY_POINTS))
    assert bad == [], f"{_module(path)} is an adapter but imports entry points {bad}"


def test_every_azure_module_has_a_layer() -> None:
    layered = (RULES, *ADAPTERS, *ENTRY_POINTS, "airflow_identity_provider.azure")
    stray = [_module(p) for p in FILES if not _under(_module(p), layered[:-1]) and _module(p) != layered[-1]]
    assert stray == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=_module)
def test_no_module_over_400_lines(path: Path) -> None:
    """Every module of the package, both wings and the leaves: one job each, readable in one sitting."""
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES
