"""Fence membership for the deployment content checks: is an id inside the write fence, inside the
reference scopes, or neither. Pure; shared by :mod:`.template_scan` and :mod:`.references`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from airflow_identity_provider.azure.rules.scopes import ArmScope, ScopeError, first_containing, parse_scope

__all__ = ["ALLOWED_REFERENCE_SCOPES_SETTING", "Fence", "Where"]

ALLOWED_REFERENCE_SCOPES_SETTING = "allowed_reference_scopes"
Where = Literal["inside", "reference", "outside", "invalid"]


@dataclass(frozen=True)
class Fence:
    """The connection's write fence (``allowed_scopes``) and the scopes it may only reference."""

    write: tuple[ArmScope, ...]
    reference: tuple[ArmScope, ...] = ()

    @classmethod
    def of(cls, write: Sequence[ArmScope | str], reference: Sequence[ArmScope | str] = ()) -> Fence:
        return cls(tuple(parse_scope(s) for s in write), tuple(parse_scope(s) for s in reference))

    def where(self, resource_id: ArmScope | str) -> Where:
        try:
            scope = parse_scope(resource_id)
        except ScopeError:
            return "invalid"
        if first_containing(scope, self.write) is not None:
            return "inside"
        if first_containing(scope, self.reference) is not None:
            return "reference"
        return "outside"

    def describe(self) -> str:
        write = ", ".join(map(str, self.write)) or "(empty)"
        ref = ", ".join(map(str, self.reference)) or "(none)"
        return f"allowed_scopes: {write}; {ALLOWED_REFERENCE_SCOPES_SETTING}: {ref}"
