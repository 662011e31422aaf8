"""Which directory each provider syncs with (services.directory.directory_sources), and what it tracks."""

from __future__ import annotations

from airflow_identity_provider.auth.directory.graph import GraphDirectory
from airflow_identity_provider.auth.directory.jumpcloud import JumpCloudDirectory
from airflow_identity_provider.auth.idp import make_provider
from airflow_identity_provider.auth.rules.settings import parse_settings
from airflow_identity_provider.auth.services.directory import directory_sources, tracked_values

TID, OTHER = "72f988bf-86f1-41af-91ab-2d7cd011db47", "0a1b2c3d-1111-2222-3333-444455556666"
ENTRA = {"idp": "entra", "tenant_id": TID, "client_id": "airflow", "client_secret": "s"}
OIDC = {"issuer": "https://idp.example.com/", "client_id": "airflow"}


def providers(**sections: dict[str, str]):
    return {name: make_provider(parse_settings(raw, name=name)) for name, raw in sections.items()}


def test_entra_jumpcloud_and_oidc() -> None:
    found = directory_sources(
        providers(
            staff=ENTRA,
            partners={**ENTRA, "tenant_id": "organizations", "allowed_tenants": f"{TID},{OTHER}"},
            jc={**OIDC, "idp": "jumpcloud", "jumpcloud_api_key": "k", "directory_sync_interval": "30"},
            plain=OIDC,
            off={**ENTRA, "directory_sync_interval": "0"},
            nokey={**OIDC, "idp": "jumpcloud"},
        )
    )
    assert set(found) == {"staff", "partners", "jc"}
    (staff, interval), = found["staff"]
    assert isinstance(staff, GraphDirectory) and interval == 60 and staff.scope == f"{TID}:"
    assert staff.id_prefix == "staff/"  # several providers: ids carry the provider's name
    assert [s.scope for s, _ in found["partners"]] == [f"{TID}:", f"{OTHER}:"]
    (jc, interval), = found["jc"]
    assert isinstance(jc, JumpCloudDirectory) and interval == 30


def test_one_provider_has_no_prefix_and_no_secret_no_sync() -> None:
    (graph, _), = directory_sources(providers(default=ENTRA))["default"]
    assert graph.id_prefix == ""
    assert directory_sources(providers(default={**ENTRA, "client_secret": ""})) == {}


def test_tracked_values_leave_role_names_out() -> None:
    settings = parse_settings({**OIDC, "role_mapping": '{"admins": "Admin"}', "team_mapping": '{"t-grp": "t"}'})
    assert tracked_values(settings, frozenset({"data-team", "Op", "viewer"})) == {"admins", "t-grp", "data-team"}
