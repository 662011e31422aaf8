"""The configuration reference, rendered from ``get_provider_info()``: the ``[identity_auth_manager]`` keys
(what ``airflow config list`` shows) and the ``azure_resource_manager`` connection's fields (what the UI form
shows). The page holds no copy of either, so it cannot fall behind the code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow_identity_provider.get_provider_info import get_provider_info

__all__ = ["config_options", "connection_fields", "escape", "render"]

# Characters Markdown would read as markup in a description ("<base_url>", "dag.*", "__KEY").
_MARKUP = re.compile(r"([\\`*_\[\]<>|])")


def escape(text: str) -> str:
    return _MARKUP.sub(r"\\\1", text)


def _code(value: object) -> str:
    text = str(value)
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if text else "(empty)"


def config_options(info: Mapping[str, Any] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Section -> key -> option, as Airflow reads them from the provider."""
    config = (info or get_provider_info())["config"]
    return {section: dict(body["options"]) for section, body in config.items()}


def connection_fields(info: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Connection type -> its form: ``conn-fields`` and ``ui-field-behaviour``."""
    return {c["connection-type"]: c for c in (info or get_provider_info())["connection-types"]}


def _option(section: str, key: str, option: Mapping[str, Any]) -> list[str]:
    env = f"AIRFLOW__{section.upper()}__{key.upper()}"
    facts = [f"type {option.get('type', 'string')}", f"default {_code(option.get('default') or '')}"]
    if option.get("example") not in (None, ""):
        facts.append(f"example {_code(option['example'])}")
    if option.get("sensitive"):
        facts.append("sensitive: set it through the environment variable or a secrets backend, not airflow.cfg")
    return [
        f"### `{key}`",
        "",
        escape(str(option["description"])),
        "",
        f"{'; '.join(facts)}. Environment: `{env}`.",
        "",
    ]


def _connection(conn_type: str, form: Mapping[str, Any]) -> list[str]:
    behaviour = form.get("ui-field-behaviour", {})
    relabel = behaviour.get("relabeling", {})
    lines = [
        f"## Connection `{conn_type}`",
        "",
        f"Hook `{form['hook-class-name']}`. The standard fields: "
        + ", ".join(f"`{name}` ({escape(label)})" for name, label in relabel.items())
        + "; hidden: "
        + ", ".join(f"`{name}`" for name in behaviour.get("hidden-fields", []))
        + ". The rest are keys of the connection's extra:",
        "",
        "| extra key | label | type | default | choices |",
        "|---|---|---|---|---|",
    ]
    for key, field in form["conn-fields"].items():
        schema = field.get("schema", {})
        types = [t for t in schema.get("type", []) if t != "null"] if isinstance(schema.get("type"), list) else []
        kind = "/".join(types) or str(schema.get("type", "string"))
        if field.get("sensitive"):
            kind += ", sensitive"
        choices = ", ".join(f"`{c}`" for c in schema.get("enum", []))
        default = _code(schema["default"]) if "default" in schema else ""
        label = escape(field.get("label", key))
        if field.get("description"):
            label += f": {escape(field['description'])}"
        lines.append(f"| `{key}` | {label} | {kind} | {default} | {choices} |")
    lines.append("")
    return lines


def render(_context: Mapping[str, Any] | None = None) -> str:
    info = get_provider_info()
    lines: list[str] = []
    for section, body in info["config"].items():
        lines += [
            f"## `[{section}]`",
            "",
            escape(str(body["description"])),
            "",
            f"With `providers` set, each provider's section `[{section}_<name>]` takes the same keys "
            f"(environment: `AIRFLOW__{section.upper()}_<NAME>__<KEY>`), except `providers` and "
            "`trusted_proxies`, which stay here.",
            "",
        ]
        for key, option in body["options"].items():
            lines += _option(section, key, option)
    for conn_type, form in connection_fields(info).items():
        lines += _connection(conn_type, form)
    return "\n".join(lines)
