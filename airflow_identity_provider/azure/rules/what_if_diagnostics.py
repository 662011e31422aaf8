"""What-if diagnostics: what-if says itself when its prediction is incomplete.

A what-if result's ``properties.diagnostics`` lists ``{level, code, message, target, additionalInfo}``
entries; a Warning or Error (for example ``NestedDeploymentShortCircuited``, or an expansion limit reached)
means some nested deployments were not expanded, so "no change outside the fence" proves nothing about
them. Such a deployment is refused unless the operator is told otherwise (``allow_what_if_diagnostics``).
Pure: no network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_identity_provider.azure.rules.preflight_rules import Violation

__all__ = ["ALLOW_WHAT_IF_DIAGNOSTICS_SETTING", "Diagnostic", "check_diagnostics", "parse_diagnostics"]

ALLOW_WHAT_IF_DIAGNOSTICS_SETTING = "allow_what_if_diagnostics"


@dataclass(frozen=True)
class Diagnostic:
    level: str
    code: str
    message: str
    target: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "code": self.code, "message": self.message, "target": self.target}

    def line(self) -> str:
        """ARM's own words, verbatim."""
        target = f" (target {self.target})" if self.target else ""
        return f"{self.level} {self.code}: {self.message}{target}"


def _text(value: Any) -> str:
    value = getattr(value, "value", value)  # an SDK enum
    return "" if value is None else str(value)


def parse_diagnostics(payload: Any) -> tuple[Diagnostic, ...]:
    """The diagnostics of a what-if result (REST body, its ``properties`` or the SDK's ``as_dict()``).
    An entry that is not an object is kept as an Error, so that an unreadable diagnostic still blocks."""
    if not isinstance(payload, Mapping):
        return ()
    body = payload.get("properties", payload)
    items = body.get("diagnostics") if isinstance(body, Mapping) else None
    if not isinstance(items, (list, tuple)):
        return ()
    out: list[Diagnostic] = []
    for item in items:
        if not isinstance(item, Mapping):
            out.append(Diagnostic("Error", "UnreadableDiagnostic", repr(item), ""))
            continue
        out.append(
            Diagnostic(
                level=_text(item.get("level")) or "Error",
                code=_text(item.get("code")),
                message=_text(item.get("message")),
                target=_text(item.get("target")),
            )
        )
    return tuple(out)


def check_diagnostics(diagnostics: Iterable[Diagnostic], *, allow: bool) -> list[Violation]:
    if allow:
        return []
    # Warning and Error block; so does a level ARM has not documented (fail closed). Info does not.
    blocking = [d for d in diagnostics if d.level.lower() != "info"]
    return [
        Violation(
            "what_if_diagnostic",
            d.target,
            f"what-if reported {d.line()}: its prediction may be incomplete (nested deployments it did not "
            "expand are still deployed), so the fence cannot be proven. Fix the template (fewer or inlined nested "
            f"deployments), or set {ALLOW_WHAT_IF_DIAGNOSTICS_SETTING}=True on the operator to accept it",
        )
        for d in blocking
    ]
