"""``dev/directory``: change the running demo's directory, as an administrator would in JumpCloud or Entra.

    dev/directory suspend bob | unsuspend bob | leave bob airflow-viewers | join bob airflow-admins | status

Each change goes to both emulators (JumpCloud: ``suspended``; Entra: ``accountEnabled``), through their control
API (``/_control/``), so they keep telling the same story. The demo's Airflow syncs with the JumpCloud one
(``directory_demo``): a suspended user's tokens are refused within the sync interval. Reads what the demo wrote
to ``.demo/directory.json``.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE = REPO_ROOT / ".demo" / "directory.json"


class DemoDirectory:
    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    def _control(self, side: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        emulator = self.info[side]
        context = ssl.create_default_context(cafile=emulator["ca"])
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{emulator['url']}/_control/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return json.loads(response.read() or b"null").get("result")

    def _jc_user(self, user: str) -> str:
        users: dict[str, str] = self.info["jumpcloud"]["users"]
        if user not in users:
            raise SystemExit(f"no demo user {user!r} (one of {', '.join(users)})")
        return users[user]

    def _jc_group(self, group: str) -> str:
        groups: dict[str, str] = self.info["jumpcloud"]["groups"]
        if group not in groups:
            raise SystemExit(f"no demo group {group!r} (one of {', '.join(groups)})")
        return groups[group]

    def suspend(self, user: str, suspended: bool) -> None:
        self._control("jumpcloud", "PATCH", f"users/{quote(self._jc_user(user))}", {"suspended": suspended})
        self._control("graph", "PATCH", f"users/{quote(user)}", {"accountEnabled": not suspended})

    def membership(self, user: str, group: str, member: bool) -> None:
        jc_user, jc_group = self._jc_user(user), self._jc_group(group)
        if member:
            self._control("jumpcloud", "POST", f"groups/{quote(jc_group)}/members", {"id": jc_user})
            self._control("graph", "POST", f"groups/{quote(group)}/members", {"id": user})
        else:
            self._control("jumpcloud", "DELETE", f"groups/{quote(jc_group)}/members/{quote(jc_user)}")
            self._control("graph", "DELETE", f"groups/{quote(group)}/members/{quote(user)}")

    def status(self) -> list[str]:
        state = self._control("jumpcloud", "GET", "state")
        names = {gid: group["name"] for gid, group in state["groups"].items()}
        lines = []
        for uid, user in state["users"].items():
            groups = sorted(names[gid] for gid, members in state["members"].items() if uid in members)
            condition = "suspended" if user.get("suspended") else "locked" if user.get("account_locked") else "active"
            lines.append(f"{user['username']:<7} {condition:<9} {', '.join(groups) or '(no group)'}")
        return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev/directory", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("suspend", "unsuspend"):
        commands.add_parser(name).add_argument("user")
    for name in ("leave", "join"):
        command = commands.add_parser(name)
        command.add_argument("user")
        command.add_argument("group")
    commands.add_parser("status")
    args = parser.parse_args(argv)
    if not STATE.exists():
        print(f"{STATE} is missing: start the demo first (dev/demo)", file=sys.stderr)
        return 1
    directory = DemoDirectory(json.loads(STATE.read_text()))
    try:
        if args.command in ("suspend", "unsuspend"):
            directory.suspend(args.user, args.command == "suspend")
        elif args.command in ("leave", "join"):
            directory.membership(args.user, args.group, args.command == "join")
        for line in directory.status():
            print(line)
    except urllib.error.HTTPError as err:
        print(f"refused: {err.code} {err.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, ConnectionError) as err:
        print(f"the demo's emulators did not answer ({err}): is dev/demo running?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
