"""Every refusal of the azure wing is a :class:`~airflow_identity_provider.errors.Refusal` and keeps its old base."""

from __future__ import annotations

import pytest

from airflow_identity_provider.azure.operators._template import TemplateSourceError
from airflow_identity_provider.azure.preflight import PreflightRefused
from airflow_identity_provider.azure.rules.connection_settings import ConnectionConfigError
from airflow_identity_provider.azure.rules.scopes import ScopeError
from airflow_identity_provider.clouds import CloudConfigError
from airflow_identity_provider.errors import Refusal
from airflow_identity_provider.version_compat import AirflowFailException


@pytest.mark.parametrize(
    ("error", "base", "reason"),
    [
        (PreflightRefused("refused", None), AirflowFailException, "preflight_refused"),
        (PreflightRefused("refused", None, reason="outside_scope"), AirflowFailException, "outside_scope"),
        (ConnectionConfigError("c", "tenant_id", "is missing", "Set it."), ValueError, "connection_config"),
        (ScopeError("bad scope"), ValueError, "invalid_scope"),
        (TemplateSourceError("no template"), ValueError, "template_source"),
        (CloudConfigError("authority", "not https"), ValueError, "cloud_config"),
    ],
)
def test_refusal_vocabulary(error: Exception, base: type[Exception], reason: str) -> None:
    assert isinstance(error, Refusal) and isinstance(error, base)
    assert error.reason == reason
    assert str(error) == error.message


def test_messages_unchanged() -> None:
    err = ConnectionConfigError("c", "tenant_id", "is missing", "Set it.")
    assert str(err) == "Azure Resource Manager connection 'c': extra 'tenant_id' is missing. Set it."
    assert (err.conn_id, err.key) == ("c", "tenant_id")
    assert CloudConfigError("authority", "not https").field == "authority"
    assert PreflightRefused("why", None).report is None
