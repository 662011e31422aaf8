"""mkdocs hook (``hooks:`` in mkdocs.yml): fills each page's ``<!-- generated: NAME -->`` markers.

mkdocs loads this file by path, so the repository root is put on ``sys.path`` for ``dev.docs``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from dev.docs.generated import expand  # noqa: E402


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    return expand(markdown)
