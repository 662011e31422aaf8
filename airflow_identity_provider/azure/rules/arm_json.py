"""ARM's JSON as the rules read it: SDK models to plain data, REST/SDK field spellings, ARM's error text.

Pure and SDK-free: an SDK model is recognised by its ``as_dict()`` method and an ``HttpResponseError`` by
its attributes, so every layer (rules, preflight, deployment session, operators, trigger) shares one copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "arm_error_text",
    "as_dict",
    "as_plain",
    "error_lines",
    "error_summary",
    "field_of",
    "require_mapping",
]


def as_plain(model: Any) -> Any:
    """SDK models to plain data: ``as_dict()`` (snake_case for msrest models, REST names for the hybrid
    models); anything without it is returned as is. The rules read both spellings."""
    to_dict = getattr(model, "as_dict", None)
    return to_dict() if callable(to_dict) else model


def as_dict(model: Any) -> dict[str, Any]:
    """:func:`as_plain` as a dict: ``{}`` for None or anything that is not a JSON object."""
    if model is None:
        return {}
    plain = as_plain(model)
    return dict(plain) if isinstance(plain, Mapping) else {}


def field_of(d: Mapping[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    """``d[camel]`` (REST) if present, else ``d[snake]`` (the SDK's ``as_dict()``), else ``default``."""
    if camel in d:
        return d[camel]
    return d.get(snake, default)


def require_mapping(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` if it is a JSON object; ValueError naming ``what`` otherwise."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}: {value!r}")
    return value


def error_lines(error: Mapping[str, Any] | None, indent: str = "") -> list[str]:
    """ARM's error object, verbatim, one ``(Code) message`` per line, details indented."""
    if not error:
        return []
    lines = [f"{indent}({error.get('code')}) {error.get('message')}"]
    for detail in error.get("details") or ():
        if isinstance(detail, Mapping):
            lines.extend(error_lines(detail, indent + "  "))
    return lines


def arm_error_text(err: BaseException) -> str:
    """ARM's own words for a failed request: ``(Code) message`` plus its details, never paraphrased.

    azure-core's ``str(HttpResponseError)`` already holds ``(Code) Message`` followed by a ``Code:``/
    ``Message:`` block; keep it verbatim and add the HTTP status, which ``str()`` leaves out.
    """
    status = getattr(err, "status_code", None)
    text = str(err).strip()
    return f"HTTP {status}: {text}" if status else text


def error_summary(err: BaseException) -> str:
    """``403 AuthorizationFailed: <ARM's message>``: one line, enough to act on, for a note in a report."""
    code = getattr(getattr(err, "error", None), "code", None) or ""
    message = getattr(getattr(err, "error", None), "message", None) or getattr(err, "message", None) or str(err)
    return f"{getattr(err, 'status_code', None)} {code}: {message}".replace("  ", " ")
