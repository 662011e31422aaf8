"""get_provider_info() against Airflow's own schema, and the per-wing tables it is assembled from."""

from __future__ import annotations

import json
from pathlib import Path

import airflow
import jsonschema

from airflow_identity_provider.get_provider_info import get_provider_info
from airflow_identity_provider.provider_info.arm_connection import ARM_CONNECTION_TYPE
from airflow_identity_provider.provider_info.auth_config import AUTH_MANAGER_CONFIG, SECTION


def test_provider_info_validates_against_airflows_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_provider_info_is_assembled_from_the_wing_tables() -> None:
    info = get_provider_info()
    assert info["config"] == {SECTION: AUTH_MANAGER_CONFIG}
    assert info["connection-types"] == [ARM_CONNECTION_TYPE]


def test_every_config_option_is_documented() -> None:
    for key, option in AUTH_MANAGER_CONFIG["options"].items():
        assert option["description"] and option["type"] in ("string", "boolean", "integer"), key
        assert "{" not in str(option["default"] or ""), key  # Airflow str.format()s provider defaults


def test_secrets_are_marked_sensitive() -> None:
    assert AUTH_MANAGER_CONFIG["options"]["client_secret"].get("sensitive") is True
    assert ARM_CONNECTION_TYPE["conn-fields"]["certificate_data"].get("sensitive") is True


def test_the_schema_check_has_teeth() -> None:
    """A config option without a description or a connection type without its hook class is refused."""
    import copy

    import pytest

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    broken = copy.deepcopy(get_provider_info())
    del broken["config"][SECTION]["options"]["idp"]["description"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = copy.deepcopy(get_provider_info())
    del broken["connection-types"][0]["hook-class-name"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
