"""The configuration reference page holds every key of ``get_provider_info()``: the ``[identity_auth_manager]``
options and the ``azure_resource_manager`` connection's fields, as the site renders it (the mkdocs hook's own
expansion of docs/reference/configuration.md)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from airflow_identity_provider.get_provider_info import get_provider_info
from dev.docs import config_reference
from dev.docs.generated import expand

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "configuration.md"


def rendered() -> str:
    return expand(PAGE.read_text())


def missing(page: str, info: dict[str, Any]) -> list[str]:
    """Every config key and connection field of ``info`` that has no entry on ``page``."""
    headings = set(re.findall(r"^### `([^`]+)`$", page, re.MULTILINE))
    rows = set(re.findall(r"^\| `([^`]+)` \|", page, re.MULTILINE))
    out = [
        f"[{section}] {key}"
        for section, options in config_reference.config_options(info).items()
        for key in options
        if key not in headings
    ]
    out += [
        f"{conn_type} extra {key}"
        for conn_type, form in config_reference.connection_fields(info).items()
        for key in form["conn-fields"]
        if key not in rows
    ]
    return out


def test_every_config_key_and_connection_field_is_on_the_page() -> None:
    page = rendered()
    assert missing(page, get_provider_info()) == []
    # And with what the code says about it: the (escaped) description and the environment variable.
    for section, options in config_reference.config_options().items():
        for key, option in options.items():
            assert config_reference.escape(option["description"]) in page, key
            assert f"`AIRFLOW__{section.upper()}__{key.upper()}`" in page, key


def test_a_key_the_page_lacks_is_reported() -> None:
    info = copy.deepcopy(get_provider_info())
    section = next(iter(info["config"]))
    info["config"][section]["options"]["brand_new_key"] = {"description": "new", "type": "string", "default": ""}
    info["connection-types"][0]["conn-fields"]["brand_new_field"] = {"label": "New", "schema": {"type": "string"}}
    assert missing(rendered(), info) == [f"[{section}] brand_new_key", "azure_resource_manager extra brand_new_field"]


def test_the_page_without_its_marker_lacks_every_key() -> None:
    text = PAGE.read_text().replace("<!-- generated: configuration-reference -->", "")
    assert len(missing(expand(text), get_provider_info())) > 30


def test_descriptions_cannot_inject_markup() -> None:
    assert config_reference.escape("<base_url>auth/callback, dag.*, __KEY") == (
        "\\<base\\_url\\>auth/callback, dag.\\*, \\_\\_KEY"
    )
