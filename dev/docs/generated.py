"""The generated parts of the documentation: a page says ``<!-- generated: NAME -->`` where one goes.

Kept apart from the mkdocs hook so the tests render exactly what the site shows without running mkdocs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dev.docs import arm_roles, config_reference

__all__ = ["GENERATORS", "MARKER", "expand"]

GENERATORS: dict[str, Callable[[], str]] = {
    "configuration-reference": config_reference.render,
    "arm-custom-roles": arm_roles.render,
}
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


def expand(markdown: str) -> str:
    """``markdown`` with every marker replaced by its generator's output; an unknown name is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise KeyError(f"unknown generated section {name!r}; known: {', '.join(sorted(GENERATORS))}")
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)
