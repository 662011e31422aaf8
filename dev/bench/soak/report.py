"""What every soak part hands back, and the table it is printed as. Pure: no processes, no network."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Expectation:
    """One promise of the issue, checked against what was observed (``observed`` is printed beside it)."""

    promise: str
    met: bool
    observed: str


@dataclass
class Section:
    """One soak part: figures (label, value) in the order they are printed, then its expectations."""

    title: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(e.met for e in self.expectations)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of a non-empty sample: the value a share of samples reach."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def spread_ms(seconds: Sequence[float]) -> str:
    """``p50 / p95 / max`` of durations in seconds, printed in milliseconds."""
    if not seconds:
        return "n/a"
    p50, p95, top = (percentile(seconds, s) * 1000 for s in (0.5, 0.95, 1.0))
    return f"{p50:.0f} / {p95:.0f} / {top:.0f} ms"


def render(sections: Sequence[Section], *, header: str) -> str:
    """The printed table: a block per section, ``PASS``/``FAIL`` per expectation, a total line last."""
    lines = [header, ""]
    label_width = max([len(label) for s in sections for label, _ in s.figures] + [10])
    promise_width = max([len(e.promise) for s in sections for e in s.expectations] + [10])
    for section in sections:
        lines.append(f"== {section.title}")
        lines.extend(f"  {label:<{label_width}}  {value}" for label, value in section.figures)
        for expectation in section.expectations:
            verdict = "PASS" if expectation.met else "FAIL"
            lines.append(f"  [{verdict}] {expectation.promise:<{promise_width}}  {expectation.observed}")
        lines.append("")
    met = sum(e.met for s in sections for e in s.expectations)
    total = sum(len(s.expectations) for s in sections)
    lines.append(f"{met}/{total} expectations met")
    return "\n".join(lines)


def first_line(exc: BaseException) -> str:
    """What a table cell shows of an error: its first non-empty line (at most 200 characters), or its type."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]
