"""Deployment request bodies: template sources, parameters, names, tags and outputs. Pure; no SDK, no network.

Template sources (exactly one): an inline ``template`` dict, a ``template_file`` (JSON), a
``template_link`` URI (ARM fetches it) or a ``template_spec_id`` (``templateLink.id``). Parameters: a
dict and/or a ``parameters_file`` (a ``*.parameters.json`` with ``$schema``/``parameters``, or a plain
object); the dict wins per key, like the overrides of the ARM deployment tasks of other tools.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from airflow_identity_provider.azure.rules.scopes import ascii_fold
from airflow_identity_provider.errors import Refusal

__all__ = [
    "CONTENT_HASH_TAG",
    "RUN_KEY_TAG",
    "SECURE_TYPES",
    "content_hash",
    "declared_secure_names",
    "default_deployment_name",
    "deployment_tags",
    "hide_secret_parameters",
    "load_parameters",
    "mask_secure_parameters",
    "outputs_for_xcom",
    "read_json",
    "restore_secret_parameters",
    "run_key",
    "template_properties",
]

RUN_KEY_TAG = "airflow_run_key"
CONTENT_HASH_TAG = "airflow_content_hash"
SECURE_TYPES = frozenset({"securestring", "secureobject"})
MASK = "***"
_NAME_MAX = 64  # ARM deployment names: 1-64 of letters, digits, '-', '_', '.', '(', ')'
_NOT_NAME_CHAR = re.compile(r"[^-\w.()]")


class TemplateSourceError(Refusal, ValueError):
    """The operator was given no template, several, or one that cannot be read."""

    def __init__(self, message: str) -> None:
        super().__init__("template_source", message)


def _digest(*parts: str, length: int) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:length]


def run_key(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    """The same for every try of one task instance, different across runs: tags a deployment so that a
    retry recognises the deployment its previous try started."""
    return _digest(dag_id, task_id, run_id, str(map_index), length=20)


def default_deployment_name(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    """``<task_id>-<hash of dag/task/run/map index>``: stable across retries, so a retry finds the
    deployment of its previous try instead of starting a second one; readable in the portal."""
    suffix = _digest(dag_id, task_id, run_id, str(map_index), length=12)
    stem = _NOT_NAME_CHAR.sub("-", task_id).strip(".") or "airflow"
    return f"{stem[: _NAME_MAX - len(suffix) - 1]}-{suffix}"


def read_json(path: str, base_dir: Path | None, what: str) -> Any:
    file = Path(path)
    if not file.is_absolute() and base_dir is not None:
        file = base_dir / file
    try:
        return json.loads(file.read_text(encoding="utf-8-sig"))  # utf-8-sig: files saved by Windows editors
    except OSError as err:
        raise TemplateSourceError(f"cannot read {what} {str(file)!r}: {err.strerror or err}") from None
    except ValueError as err:
        raise TemplateSourceError(f"{what} {str(file)!r} is not valid JSON: {err}") from None


def template_properties(
    *,
    template: Mapping[str, Any] | None,
    template_file: str | None,
    template_link: str | None,
    template_spec_id: str | None,
    base_dir: Path | None = None,
) -> dict[str, Any]:
    """``{"template": {...}}`` or ``{"templateLink": {...}}`` for the deployment's properties."""
    given = {
        name: value
        for name, value in (
            ("template", template),
            ("template_file", template_file),
            ("template_link", template_link),
            ("template_spec_id", template_spec_id),
        )
        if value
    }
    if len(given) != 1:
        named = ", ".join(given) or "none"
        raise TemplateSourceError(
            f"give exactly one of template, template_file, template_link, template_spec_id (got: {named})"
        )
    if template:
        if not isinstance(template, Mapping):
            raise TemplateSourceError(f"template must be a dict (an ARM JSON template), got {type(template).__name__}")
        return {"template": dict(template)}
    if template_file:
        loaded = read_json(template_file, base_dir, "template_file")
        if not isinstance(loaded, dict):
            raise TemplateSourceError(f"template_file {template_file!r} must hold a JSON object")
        return {"template": loaded}
    if template_link:
        return {"templateLink": {"uri": template_link}}
    return {"templateLink": {"id": template_spec_id}}


def _wrap(value: Any) -> dict[str, Any]:
    """ARM wants ``{"value": v}`` (or ``{"reference": ...}`` for Key Vault). A dict whose only key is
    ``value``, or that has ``reference``, is taken as already wrapped; anything else is a plain value."""
    if isinstance(value, Mapping) and (set(value) == {"value"} or "reference" in value):
        return dict(value)
    return {"value": value}


def load_parameters(
    parameters: Mapping[str, Any] | None, parameters_file: str | None, base_dir: Path | None = None
) -> dict[str, Any]:
    """File parameters overridden by the dict, each in ARM's ``{"value": ...}`` shape."""
    merged: dict[str, Any] = {}
    if parameters_file:
        loaded = read_json(parameters_file, base_dir, "parameters_file")
        if isinstance(loaded, dict) and isinstance(loaded.get("parameters"), dict) and "$schema" in loaded:
            loaded = loaded["parameters"]
        if not isinstance(loaded, dict):
            raise TemplateSourceError(f"parameters_file {parameters_file!r} must hold a JSON object")
        merged.update({str(k): _wrap(v) for k, v in loaded.items()})
    if parameters:
        if not isinstance(parameters, Mapping):
            raise TemplateSourceError(f"parameters must be a dict, got {type(parameters).__name__}")
        merged.update({str(k): _wrap(v) for k, v in parameters.items()})
    return merged


def mask_secure_parameters(
    template: Any, parameters: Mapping[str, Any], mask: Callable[[Any], None], extra: Iterable[str] = ()
) -> None:
    """Register the values of parameters the template declares secure (and of those named in ``extra``) with
    the secrets masker, before anything (an ARM error echoing the request, a debug log) can print them."""
    names = {n.lower() for n in [*declared_secure_names(template), *extra]}
    for name, wrapped in parameters.items():
        if name.lower() not in names or not isinstance(wrapped, Mapping):
            continue
        value = wrapped.get("value")
        if value not in (None, ""):
            mask(value)


def content_hash(scope: str, properties: Mapping[str, Any], *, secret_parameters: Iterable[str] = ()) -> str:
    """What the deployment would do: scope, template (or link), parameters and mode. Two runs with the same
    hash deploy the same thing. Unlike ARM's ``templateHash`` it covers the parameters too, except the values
    of ``secret_parameters``: the hash is a tag any Azure Reader sees, and an unsalted hash of a weak
    password can be guessed offline."""
    secret = {n.lower() for n in secret_parameters}
    params = properties.get("parameters")
    if secret and isinstance(params, Mapping):
        params = {k: (MASK if k.lower() in secret else v) for k, v in params.items()}
        properties = {**properties, "parameters": params}
    canonical = json.dumps({"scope": ascii_fold(scope), "properties": properties}, sort_keys=True, default=str)
    return _digest(canonical, length=32)


def deployment_tags(
    user_tags: Mapping[str, str] | None, *, dag_id: str, task_id: str, run_key_value: str, content: str
) -> dict[str, str]:
    """User tags plus where the deployment came from (searchable in the portal) and the retry markers."""
    tags = {str(k): str(v) for k, v in (user_tags or {}).items()}
    tags.update(
        {
            "airflow_dag_id": dag_id[:256],
            "airflow_task_id": task_id[:256],
            RUN_KEY_TAG: run_key_value,
            CONTENT_HASH_TAG: content,
        }
    )
    return tags


def outputs_for_xcom(outputs: Mapping[str, Any] | None, mask: Callable[[Any], None]) -> dict[str, Any]:
    """Deployment outputs as ``{name: value}``.

    Secure outputs (``SecureString``/``SecureObject``) never reach XCom: their value, if ARM returned one,
    is registered with the secrets masker and the XCom gets ``"***"``. (ARM itself omits their values;
    this holds even if an API version or a proxy does not.)
    """
    result: dict[str, Any] = {}
    for name, spec in (outputs or {}).items():
        if not isinstance(spec, Mapping):
            result[name] = spec
            continue
        kind = str(spec.get("type", "")).lower()
        value = spec.get("value")
        if kind in SECURE_TYPES:
            if value not in (None, "", {}):
                mask(value)
            result[name] = MASK
        else:
            result[name] = value
    return result


def hide_secret_parameters(
    parameters: Mapping[str, Any] | None, secret_names: Iterable[str] | None
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Split rendered ``parameters`` into what may be shown and the secret values kept aside.

    Airflow stores and shows rendered template fields (to Viewers too) right after rendering, before
    ``execute()`` runs, and its masker skips values shorter than ``[logging] min_length_masked_secret``.
    So secret values are taken out of the field itself: the field keeps ``"***"`` and the real values
    come back only in the request (:func:`restore_secret_parameters`). ``secret_names`` None means
    "unknown" (a template ARM would fetch): every value is hidden. A Key Vault reference is a pointer,
    not a secret, and stays visible.
    """
    if not parameters or not isinstance(parameters, Mapping):
        return (dict(parameters) if isinstance(parameters, Mapping) else parameters), {}
    wanted = None if secret_names is None else {n.lower() for n in secret_names}
    shown: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for name, value in parameters.items():
        is_reference = isinstance(value, Mapping) and "reference" in value
        if is_reference or (wanted is not None and str(name).lower() not in wanted):
            shown[name] = value
            continue
        kept[name] = value
        wrapped = isinstance(value, Mapping) and set(value) == {"value"}
        shown[name] = {"value": MASK} if wrapped else MASK
    return shown, kept


def restore_secret_parameters(shown: Mapping[str, Any] | None, kept: Mapping[str, Any]) -> dict[str, Any] | None:
    if shown is None and not kept:
        return None
    return {**(shown or {}), **kept}


def declared_secure_names(template: Any) -> list[str]:
    declared = template.get("parameters") if isinstance(template, Mapping) else None
    if not isinstance(declared, Mapping):
        return []
    return [
        str(n)
        for n, spec in declared.items()
        if isinstance(spec, Mapping) and str(spec.get("type", "")).lower() in SECURE_TYPES
    ]
