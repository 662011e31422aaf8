"""A keyring backend in one JSON file, for airflowctl in tests: CI machines have no desktop keyring (Secret
Service over D-Bus), and airflowctl stores its token only in a keyring. Selected in the subprocess's
environment, as a user would select any backend::

    PYTHON_KEYRING_BACKEND=tests.support.file_keyring.FileKeyring  FILE_KEYRING_PATH=/tmp/x/keyring.json
    (with the repository root on PYTHONPATH)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

ENV_PATH = "FILE_KEYRING_PATH"


def read_keyring(path: Path) -> dict[str, str]:
    """Every stored secret as ``"<service> <username>" -> secret``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()}


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def _path(self) -> Path:
        return Path(os.environ[ENV_PATH])

    def get_password(self, service: str, username: str) -> str | None:
        return read_keyring(self._path).get(f"{service} {username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = read_keyring(self._path)
        data[f"{service} {username}"] = password
        self._path.write_text(json.dumps(data), encoding="utf-8")

    def delete_password(self, service: str, username: str) -> None:
        data = read_keyring(self._path)
        if data.pop(f"{service} {username}", None) is None:
            raise PasswordDeleteError(username)
        self._path.write_text(json.dumps(data), encoding="utf-8")
