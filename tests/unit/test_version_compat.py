"""airflow_identity_provider.version_compat: every shim resolves on the installed Airflow, nothing heavy loads."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

from airflow_identity_provider import version_compat


@pytest.mark.parametrize(
    ("version", "release"),
    [
        ("3.1.8", (3, 1, 8)),
        ("3.2.0rc1", (3, 2, 0)),
        ("3.3.0.dev0", (3, 3, 0)),
        ("3.2", (3, 2, 0)),
        ("3.3.2+x", (3, 3, 2)),
    ],
)
def test_release_parsing(version: str, release: tuple[int, int, int]) -> None:
    assert version_compat._release(version) == release


def test_flags_follow_the_installed_airflow() -> None:
    assert version_compat.AIRFLOW_VERSION >= (3, 1, 0)
    assert (version_compat.AIRFLOW_VERSION >= (3, 2, 0)) == version_compat.AIRFLOW_V_3_2_PLUS
    if version_compat.AIRFLOW_VERSION >= (3, 1, 7):
        assert version_compat.CAN_END_SESSION_ON_REFRESH


def test_menu_item_is_none_for_an_entry_this_airflow_lacks() -> None:
    from airflow.api_fastapi.common.types import MenuItem

    assert version_compat.menu_item("DAGS") is MenuItem.DAGS
    assert version_compat.menu_item("NO_SUCH_PAGE") is None
    assert (version_compat.menu_item("JOBS") is None) == (not version_compat.AIRFLOW_V_3_2_PLUS)
    assert (version_compat.menu_item("DEADLINES") is None) == (not version_compat.AIRFLOW_V_3_3_PLUS)


def test_task_sdk_names_are_the_ones_the_task_runner_catches() -> None:
    if version_compat.AIRFLOW_V_3_2_PLUS:
        from airflow.sdk import exceptions
    else:
        from airflow import exceptions  # type: ignore[no-redef]
    assert version_compat.TaskDeferred is exceptions.TaskDeferred
    assert version_compat.AirflowFailException is exceptions.AirflowFailException
    assert issubclass(version_compat.AirflowFailException, version_compat.AirflowException)
    assert version_compat.conf.getboolean("operators", "default_deferrable", fallback=False) in (True, False)


def test_amask_secret_masks_in_this_process() -> None:
    from airflow.sdk.log import mask_secret  # noqa: F401  (the sync one exists on every supported version)

    asyncio.run(version_compat.amask_secret("s3cr3t-value-for-amask"))
    try:
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:
        pytest.skip("no importable redact() on this Airflow")
    assert "s3cr3t-value-for-amask" not in str(redact("x s3cr3t-value-for-amask y"))


def test_is_token_revoked_is_false_without_revocation_support() -> None:
    from tests.support.versions import HAS_TOKEN_REVOCATION

    if HAS_TOKEN_REVOCATION:
        pytest.skip("this Airflow has revoked_token (tests/app checks it against a real table)")
    assert version_compat.is_token_revoked("a" * 32) is False


def test_warn_missing_logs_one_line_per_feature(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(version_compat, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="airflow_identity_provider.version_compat"):
        for _ in range(3):
            version_compat.warn_missing("revoke_token")
            version_compat.warn_missing("end_session_on_refresh")
    assert len(caplog.records) == 2


def test_import_is_cheap_and_a_leaf() -> None:
    # Airflow itself imports get_provider_info (and its provider_info tables) to read provider config.
    ours_allowed = (
        "airflow_identity_provider.version_compat",
        "airflow_identity_provider.get_provider_info",
        "airflow_identity_provider.provider_info",
    )
    check = f"""
import sys
import airflow_identity_provider.version_compat
base = "airflow.api_fastapi.auth.managers.base_auth_manager"
heavy = [m for m in sys.modules if m.split(".")[0] in ("fastapi", "azure", "msal") or m == base]
ours = [m for m in sys.modules if m.startswith("airflow_identity_provider.") and not m.startswith({ours_allowed!r})]
loaded = heavy + ours
print("LOADED=" + ",".join(sorted(loaded)))
"""
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("LOADED=")] == ["LOADED="]


UNSAFE_NEXT = [
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "\\/evil.example/",
    "/%2F/evil.example/",
    "%2F%2Fevil.example/",
    "https:\\\\evil.example/",
    "https:/\\evil.example/",
    " //evil.example/",
    "javascript:alert(1)",
    "data:text/html,x",
    "http://airflow.example.com.evil.example/",
]
SAFE_NEXT = ["/", "/dags", "/dags?x=1#y", "https://airflow.example.com/dags", "dags/x", "http://testserver/dags"]


class _Req:
    base_url = "http://testserver/"


@pytest.mark.parametrize("use_airflows", [False, True], ids=["copy", "installed"])
@pytest.mark.parametrize(("target", "safe"), [(t, False) for t in UNSAFE_NEXT] + [(t, True) for t in SAFE_NEXT])
def test_is_safe_url_is_3_3s_on_every_version(monkeypatch, use_airflows: bool, target: str, safe: bool) -> None:
    """The copy (used before 3.3) and, on 3.3+, Airflow's own agree on every vector."""
    if use_airflows and not version_compat.AIRFLOW_V_3_3_PLUS:
        pytest.skip("before 3.3 the copy is what runs")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    monkeypatch.setattr(version_compat, "AIRFLOW_V_3_3_PLUS", use_airflows)
    assert version_compat.is_safe_url(target, request=_Req()) is safe  # type: ignore[arg-type]
