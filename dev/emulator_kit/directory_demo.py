"""The directory emulators in the demo: a JumpCloud and a Graph (Entra) emulator holding the demo's users.

Each demo user (its IdP user id, e.g. ``alice``) becomes a JumpCloud system user with that username and an
Entra user with that object id; each of its groups becomes a group (Entra: id = name) it is a member of.

The demo's Airflow syncs with the JumpCloud emulator: its provider is ``idp = jumpcloud`` over the local IdP (a
JumpCloud-shaped OpenID provider: ``sub`` is the username, ``groups`` the group names), with
``jumpcloud_api_url`` pointing at the emulator (``airflow_settings``). So suspending a user or taking them out of
a group there is seen by every token of theirs within ``DEMO_SYNC_INTERVAL`` seconds. The Entra side needs
Entra-shaped tokens (``tid``/``oid``, group object ids), which the demo's IdP does not issue: the Graph emulator
runs for exploring its API, and tests/integration/test_deprovisioning.py drives that path end to end.

``save`` writes what ``python -m dev.emulator_kit.directory_cli`` (``dev/directory``) needs to change them live.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi

from dev.graph_emulator.client import GraphEmulator
from dev.jumpcloud_emulator.client import JumpCloudEmulator

DEMO_GRAPH_CLIENT = "44444444-4444-4444-4444-444444444444"
DEMO_GRAPH_SECRET = "demo-graph-secret"
DEMO_JUMPCLOUD_KEY = "demo-jumpcloud-key"
DEMO_SYNC_INTERVAL = 10  # seconds: short, so that a change shows while one watches


@dataclass
class DirectoryEmulators:
    graph: GraphEmulator
    jumpcloud: JumpCloudEmulator
    jumpcloud_ids: dict[str, str]  # username -> JumpCloud user id
    jumpcloud_groups: dict[str, str]  # group name -> JumpCloud group id

    def stop(self) -> None:
        self.jumpcloud.stop()
        self.graph.stop()

    def info(self) -> dict[str, Any]:
        """What a client needs to reach both (URLs, CA bundles, credentials) and the demo's ids."""
        return {
            "graph": {"url": self.graph.url, "authority": self.graph.authority, "graph_url": self.graph.graph_url,
                      "tenant_id": self.graph.tenant_id, "client_id": DEMO_GRAPH_CLIENT,
                      "client_secret": DEMO_GRAPH_SECRET, "ca": self.graph.ca_path},
            "jumpcloud": {"url": self.jumpcloud.url, "api_url": self.jumpcloud.api_url, "api_key": DEMO_JUMPCLOUD_KEY,
                          "ca": self.jumpcloud.ca_path, "users": self.jumpcloud_ids, "groups": self.jumpcloud_groups},
        }  # fmt: skip

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.info(), indent=2))

    def airflow_settings(self, ca_bundle: Path) -> dict[str, str]:
        """The api-server's environment for syncing with the JumpCloud emulator. ``ca_bundle`` gets the public CAs
        plus both emulators', for httpx (the sync's client) through SSL_CERT_FILE: the standard way a deployment
        trusts a private CA. REQUESTS_CA_BUNDLE stays unset: nothing here needs msal, and requests would let it
        override the ARM connection's own ``connection_verify`` where that is a session default."""
        ca_bundle.parent.mkdir(parents=True, exist_ok=True)
        pems = [Path(certifi.where()), Path(self.jumpcloud.ca_path), Path(self.graph.ca_path)]
        ca_bundle.write_text("\n".join(p.read_text().strip() for p in pems) + "\n")
        prefix = "AIRFLOW__IDENTITY_AUTH_MANAGER__"
        return {
            f"{prefix}IDP": "jumpcloud",
            f"{prefix}GROUPS_CLAIM": "groups",  # the local IdP's claim (JumpCloud's own default is memberOf)
            f"{prefix}JUMPCLOUD_API_URL": self.jumpcloud.url,
            f"{prefix}JUMPCLOUD_API_KEY": DEMO_JUMPCLOUD_KEY,
            f"{prefix}DIRECTORY_SYNC_INTERVAL": str(DEMO_SYNC_INTERVAL),
            "SSL_CERT_FILE": str(ca_bundle),
        }

    def hints(self, user: str = "bob", group: str = "airflow-viewers") -> list[str]:
        jc_id, every = self.jumpcloud_ids.get(user, "<id>"), DEMO_SYNC_INTERVAL
        curl = (
            f"curl -s --cacert {self.jumpcloud.ca_path} -X PATCH {self.jumpcloud.url}/_control/users/{jc_id} "
            """-d '{"suspended": true}'"""
        )
        return [
            f"JumpCloud emulator {self.jumpcloud.url}: this Airflow's directory, synced every {every} s",
            *(
                f"  {command:<38} {effect}"
                for command, effect in (
                    (f"dev/directory suspend {user}", f"every token of {user} is refused (401) within {every} s"),
                    (f"dev/directory unsuspend {user}", "and back (sign in again)"),
                    (f"dev/directory leave {user} {group}", f"{user} loses what that group gave"),
                    ("dev/directory status", "who is in which state and group"),
                )
            ),
            f"  (the same by hand: {curl})",
            f"Graph emulator {self.graph.url} (tenant {self.graph.tenant_id}): the same users, for exploring its API;",
            "  the Entra sync needs Entra-shaped tokens: tests/integration/test_deprovisioning.py drives it",
        ]


def start_directory_emulators(users: Mapping[str, Sequence[str]]) -> DirectoryEmulators:
    """Start both emulators and load ``{user id: [group names]}`` into them."""
    graph = GraphEmulator(apps={DEMO_GRAPH_CLIENT: DEMO_GRAPH_SECRET}).start()
    try:
        jumpcloud = JumpCloudEmulator(api_key=DEMO_JUMPCLOUD_KEY).start()
    except BaseException:
        graph.stop()
        raise
    ids: dict[str, str] = {}
    jc_groups: dict[str, str] = {}
    for user, groups in users.items():
        graph.put_user(user, upn=f"{user}@example.test", mail=f"{user}@example.test", display_name=user.title())
        ids[user] = jumpcloud.put_user(username=user, email=f"{user}@example.test")["_id"]
        for group in groups:
            graph.put_group(group, group)
            graph.add_member(group, user)
            if group not in jc_groups:
                jc_groups[group] = jumpcloud.put_group(name=group)["id"]
            jumpcloud.add_member(jc_groups[group], ids[user])
    for group in ("airflow-admins", "airflow-ops", "airflow-users", "airflow-viewers"):  # joinable while it runs
        graph.put_group(group, group)
        if group not in jc_groups:
            jc_groups[group] = jumpcloud.put_group(name=group)["id"]
    return DirectoryEmulators(graph, jumpcloud, ids, jc_groups)
