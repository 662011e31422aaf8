"""tests/luigi: the identity gateway in front of luigid. Skipped where luigi is not installed (the floor venv
installs only the dev extra; dev/lib/setup.sh installs the luigi extra into .venv)."""

from __future__ import annotations

import pytest

pytest.importorskip("luigi", reason="luigi is not installed (pip install -e '.[luigi]' -c constraints.txt)")
