"""Drive the JumpCloud emulator process from tests and the demo::

with start_jumpcloud_emulator(api_key="k") as jc:
    requests.get(f"{jc.api_url}/systemusers", params={"limit": 100, "fields": "username suspended"},
                 headers={"x-api-key": jc.api_key}, verify=jc.ca_path)
    jc.suspend_user(uid); jc.remove_member(group, uid); jc.fail("503", seconds=2)
"""

from __future__ import annotations

from typing import Any, Unpack

from dev.emulator_kit.process import DirectoryEmulator, EmulatorError, ProcessOptions

from .__main__ import READY_PREFIX
from .app import DEFAULT_API_KEY, new_id


class JumpCloudEmulator(DirectoryEmulator):
    module = "dev.jumpcloud_emulator"
    ready_prefix = READY_PREFIX
    label = "JumpCloud emulator"

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, **options: Unpack[ProcessOptions]) -> None:
        super().__init__(["--api-key", api_key], **options)
        self.api_key = api_key

    @property
    def api_url(self) -> str:
        """JumpCloud's ``https://console.jumpcloud.com/api`` here: v1 at ``{api_url}/…``, v2 at ``{api_url}/v2/…``."""
        return f"{self.url}/api"

    @staticmethod
    def new_id() -> str:
        return new_id()

    # -- users -----------------------------------------------------------------------------

    def put_user(
        self, user_id: str | None = None, *, username: str | None = None, email: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Create (or update) a system user; JumpCloud field names (``suspended=True``, ``state=…``).
        Without ``user_id`` a new id is made. Returns the user (``_id`` is its id)."""
        body = dict(fields)
        if username is not None:
            body["username"] = username
        if email is not None:
            body["email"] = email
        result: dict[str, Any] = self.control("PUT", f"users/{self.q(user_id or new_id())}", body)
        return result

    def patch_user(self, user_id: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("PATCH", f"users/{self.q(user_id)}", fields)
        return result

    def suspend_user(self, user_id: str) -> dict[str, Any]:
        """``suspended: true``, ``state: SUSPENDED``."""
        return self.patch_user(user_id, suspended=True)

    def unsuspend_user(self, user_id: str) -> dict[str, Any]:
        return self.patch_user(user_id, suspended=False)

    def lock_user(self, user_id: str) -> dict[str, Any]:
        """``account_locked: true`` (too many bad passwords)."""
        return self.patch_user(user_id, account_locked=True)

    def unlock_user(self, user_id: str) -> dict[str, Any]:
        return self.patch_user(user_id, account_locked=False)

    def deactivate_user(self, user_id: str) -> dict[str, Any]:
        """``activated: false`` (and ``state: STAGED`` unless suspended)."""
        return self.patch_user(user_id, activated=False)

    def delete_user(self, user_id: str) -> None:
        """Gone from every list and from its groups."""
        self.control("DELETE", f"users/{self.q(user_id)}")

    # -- groups ----------------------------------------------------------------------------

    def put_group(self, group_id: str | None = None, name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = dict(fields)
        if name is not None:
            body["name"] = name
        result: dict[str, Any] = self.control("PUT", f"groups/{self.q(group_id or new_id())}", body)
        return result

    def delete_group(self, group_id: str) -> None:
        self.control("DELETE", f"groups/{self.q(group_id)}")

    def add_member(self, group_id: str, user_id: str) -> None:
        self.control("POST", f"groups/{self.q(group_id)}/members", {"id": user_id})

    def remove_member(self, group_id: str, user_id: str) -> None:
        self.control("DELETE", f"groups/{self.q(group_id)}/members/{self.q(user_id)}")

    # -- keys ------------------------------------------------------------------------------

    def add_api_key(self, key: str) -> None:
        self.control("PUT", f"api-keys/{self.q(key)}", {})

    def revoke_api_key(self, key: str) -> None:
        """Requests with that key get 401 from now on (as after a key rotation)."""
        self.control("DELETE", f"api-keys/{self.q(key)}")

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "state")
        return result


def start_jumpcloud_emulator(**kwargs: Any) -> JumpCloudEmulator:
    """Start a JumpCloud emulator process and wait until it is ready (stop it with ``.stop()`` or ``with``)."""
    return JumpCloudEmulator(**kwargs).start()


__all__ = ["EmulatorError", "JumpCloudEmulator", "start_jumpcloud_emulator"]
