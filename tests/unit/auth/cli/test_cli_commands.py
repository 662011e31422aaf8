"""``airflow identity-auth-manager check-config`` / ``explain`` see what the api-server and the sign-in see:
the same provider factory (Entra multi-tenant), every provider of ``providers = a,b``, Entra's ``tid:oid``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from airflow_identity_provider.auth.cli import commands, explain
from tests.support.stub_op import StubOp

BASE = "http://127.0.0.1:8080"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OID = "00000000-0000-0000-66f3-3332eca7ea81"


@pytest.fixture
def stub_op() -> Iterator[StubOp]:
    with StubOp() as op:
        yield op


@pytest.fixture(autouse=True)
def base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", f"{BASE}/")


def configure(monkeypatch: pytest.MonkeyPatch, section: str = "", **values: str) -> None:
    prefix = f"AIRFLOW__IDENTITY_AUTH_MANAGER{'_' + section.upper() if section else ''}__"
    for key, value in values.items():
        monkeypatch.setenv(prefix + key.upper(), value)


def two_providers(monkeypatch: pytest.MonkeyPatch, staff: StubOp, contractors: StubOp) -> None:
    configure(monkeypatch, providers="staff,contractors")
    for name, op, mapping in (
        ("staff", staff, '{"airflow-admins": "Admin"}'),
        ("contractors", contractors, '{"contractors": "Viewer"}'),
    ):
        configure(monkeypatch, name, issuer=op.issuer, client_id="airflow", role_mapping=mapping)


def test_check_config_accepts_an_entra_multi_tenant_setup_like_the_api_server(
    stub_op: StubOp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Multi-tenant Entra discovery names the issuer template, which only EntraProvider accepts.
    stub_op.discovery_issuer = f"{stub_op.issuer}/{{tenantid}}/v2.0"
    configure(
        monkeypatch,
        idp="entra",
        tenant_id="organizations",
        allowed_tenants=TENANT,
        issuer=f"{stub_op.issuer}/organizations/v2.0",
        client_id="airflow",
    )
    commands.check_config(argparse.Namespace())
    assert "discovery:     ok" in capsys.readouterr().out


def test_check_config_covers_every_provider(
    stub_op: StubOp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with StubOp() as contractors:
        two_providers(monkeypatch, stub_op, contractors)
        commands.check_config(argparse.Namespace())
    out = capsys.readouterr().out
    assert f"redirect URI:  {BASE}/auth/callback/staff " in out
    assert f"redirect URI:  {BASE}/auth/callback/contractors " in out
    assert f"issuer:        {contractors.issuer}" in out
    assert out.count("discovery:     ok") == 2


def test_check_config_fails_when_a_later_provider_is_unreachable(
    stub_op: StubOp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with StubOp() as contractors:
        two_providers(monkeypatch, stub_op, contractors)
    configure(monkeypatch, "contractors", issuer="http://127.0.0.1:9", http_timeout="1")
    with pytest.raises(SystemExit) as exit_info:
        commands.check_config(argparse.Namespace())
    assert "provider contractors: discovery failed" in str(exit_info.value.code)
    assert capsys.readouterr().out.count("discovery:     ok") == 1


def test_explain_covers_every_provider_or_the_one_named(
    stub_op: StubOp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with StubOp() as contractors:
        two_providers(monkeypatch, stub_op, contractors)
    claims = '{"sub": "u1", "name": "Una", "groups": ["contractors"]}'
    explain.explain(argparse.Namespace(claims=claims, provider=None))
    out = capsys.readouterr().out
    assert "provider: staff" in out and "provider: contractors" in out
    assert "role:    none: sign-in refused" in out and "role:    Viewer" in out

    explain.explain(argparse.Namespace(claims=claims, provider="contractors"))
    out = capsys.readouterr().out
    assert "staff" not in out
    assert "matched: contractors" in out and "role:    Viewer" in out

    with pytest.raises(SystemExit) as exit_info:
        explain.explain(argparse.Namespace(claims=claims, provider="nobody"))
    assert "no provider is named 'nobody'" in str(exit_info.value.code)


def test_explain_uses_entra_tid_oid_identity(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(
        monkeypatch, idp="entra", tenant_id=TENANT, client_id="airflow", role_mapping='{"Airflow.Admin": "Admin"}'
    )
    claims = f'{{"sub": "pairwise", "tid": "{TENANT}", "oid": "{OID}", "name": "Ada", "roles": ["Airflow.Admin"]}}'
    explain.explain(argparse.Namespace(claims=claims, provider=None))
    out = capsys.readouterr().out
    assert f"user:    {TENANT}:{OID} (Ada)" in out and "role:    Admin" in out


def test_explain_refuses_entra_claims_the_sign_in_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, idp="entra", tenant_id=TENANT, client_id="airflow", groups_claim="groups")
    with pytest.raises(SystemExit) as exit_info:
        explain.explain(argparse.Namespace(claims='{"sub": "pairwise", "tid": "' + TENANT + '"}', provider=None))
    assert "refused: " in str(exit_info.value.code) and "'oid'" in str(exit_info.value.code)
    overage = f'{{"sub": "s", "tid": "{TENANT}", "oid": "{OID}", "hasgroups": true}}'
    with pytest.raises(SystemExit) as exit_info:
        explain.explain(argparse.Namespace(claims=overage, provider=None))
    assert "group overage" in str(exit_info.value.code)
