"""Where a deployment lives and what ARM says about it: the target scope, ``provisioningState`` and ARM's
failure details. No network and no SDK import (models are read by attribute or as JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowException

from airflow_identity_provider.azure.rules.arm_json import error_lines
from airflow_identity_provider.azure.rules.scopes import normalize_scope

__all__ = [
    "TERMINAL_STATES",
    "TRIGGER_STATUS",
    "DeploymentTarget",
    "deployment_scope",
    "operation_failure",
    "poll_pause",
    "provisioning_state",
    "target_of",
    "throttled_out_message",
    "throttled_pause",
    "timeout_message",
]

TERMINAL_STATES = frozenset({"Succeeded", "Failed", "Canceled"})
TRIGGER_STATUS = {"Succeeded": "success", "Failed": "failed", "Canceled": "canceled"}
"""The trigger event's ``status`` for each terminal state."""
_CANONICAL = {s.lower(): s for s in TERMINAL_STATES}
MAX_THROTTLED_POLLS = 30
"""Status reads in a row ARM may throttle before the wait gives up (each already retried by azure-core)."""
_LONGEST_PAUSE = 60.0


@dataclass(frozen=True)
class DeploymentTarget:
    """Where a deployment lives: a resource group, or a subscription (``resource_group`` None)."""

    scope: str
    subscription_id: str
    resource_group: str | None


def target_of(scope: str) -> DeploymentTarget:
    """A subscription or resource-group scope as a deployment target; anything else is refused."""
    try:
        scope = normalize_scope(scope)
    except ValueError as err:
        raise AirflowException(f"Invalid deployment scope {scope!r}: {err}") from None
    parts = scope.split("/")
    if len(parts) == 3 and parts[1] == "subscriptions":
        return DeploymentTarget(scope, parts[2], None)
    if len(parts) == 5 and parts[3] == "resourceGroups":
        return DeploymentTarget(scope, parts[2], parts[4])
    raise AirflowException(
        f"Deployment scope {scope!r} is not supported: use /subscriptions/<id> or a resource group "
        "(management-group and tenant deployments are not supported by these operators yet)"
    )


def deployment_scope(subscription_id: str | None, resource_group_name: str | None, scope: str | None) -> str:
    """The ARM scope a deployment lives at: ``scope`` when given, else the resource group's."""
    if scope:
        return scope.rstrip("/")
    if not (subscription_id and resource_group_name):
        raise ValueError("give scope, or subscription_id and resource_group_name")
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group_name}"


def provisioning_state(deployment: Any) -> str:
    """``properties.provisioningState`` as ARM spells it (the SDK gives an enum; ``str()`` of it is not
    the value). Terminal states get their canonical case; anything else is returned as sent."""
    props = getattr(deployment, "properties", None)
    if props is None and isinstance(deployment, Mapping):
        props = deployment.get("properties")
    raw = getattr(props, "provisioning_state", None)
    if raw is None and isinstance(props, Mapping):
        raw = props.get("provisioningState")
    text = str(getattr(raw, "value", raw) or "")
    return _CANONICAL.get(text.lower(), text)


def operation_failure(op: Mapping[str, Any]) -> str | None:
    """One failed deployment operation: target resource and ARM's ``statusMessage``, verbatim."""
    props = op.get("properties") or {}
    if str(props.get("provisioningState", "")).lower() != "failed":
        return None
    target = props.get("targetResource") or {}
    what = f"{target.get('resourceType', '?')} '{target.get('resourceName', '?')}'" if target else "(no target)"
    message = props.get("statusMessage")
    error = message.get("error") if isinstance(message, Mapping) else None
    if isinstance(error, Mapping):
        text = " ".join(error_lines(error)).strip()
    else:
        text = message if isinstance(message, str) else json.dumps(message, default=str)
    return f"{what} ({props.get('statusCode', 'no status code')}): {text}"


def timeout_message(name: str, scope: str, state: Any, *, throttled: bool = False) -> str:
    """Why a wait ended at the operator's timeout. ``state``: the last ``provisioningState`` read (None when no
    status read got through); ``throttled``: ARM was throttling the status reads when the timeout passed."""
    seen = f"is still {state} after" if state else "was not read before"
    why = " (ARM throttled its status reads)" if throttled or not state else ""
    return (
        f"Deployment {name} at {scope} {seen} the operator's timeout{why}. It keeps running in "
        "Azure; a retry of this task re-attaches to it (same deployment name), or cancel it in the portal."
    )


def throttled_out_message(name: str, throttled_in_a_row: int) -> str:
    """Why a wait gave up on a deployment whose status reads ARM kept throttling, and what the user can do."""
    return (
        f"ARM kept throttling the status reads ({throttled_in_a_row} waited out in a row). Deployment {name} keeps "
        "running in Azure; a retry of this task re-attaches to it (same deployment name)."
    )


def poll_pause(poll_interval: float, left: float | None) -> float:
    """Seconds to sleep before the next status read: the poll interval, cut to the time left before the timeout
    (so a 30 s interval never carries a wait 29 s past a 60 s timeout)."""
    return poll_interval if left is None else max(0.0, min(poll_interval, left))


def throttled_pause(err: BaseException, *, default: float, throttled_in_a_row: int) -> float | None:
    """Seconds to wait before reading a running deployment again after ``err``, or None when ``err`` must fail the
    task. Only ARM's 429 qualifies: a throttled *read* changes nothing, and the deployment keeps running whatever
    its poller does, so failing the task would orphan it. azure-core's retry policy has already waited out three
    429s in a row (its ``retry_status`` default) by the time one reaches here. The pause honours ``Retry-After``
    (seconds), at least ``default`` and at most a minute; after ``MAX_THROTTLED_POLLS`` in a row it gives up."""
    response = getattr(err, "response", None)
    if getattr(err, "status_code", None) != 429 or throttled_in_a_row >= MAX_THROTTLED_POLLS:
        return None
    retry_after = getattr(response, "headers", {}).get("Retry-After", "") if response is not None else ""
    try:
        asked = float(retry_after)
    except (TypeError, ValueError):  # an HTTP date, or no header at all
        asked = 0.0
    return min(max(asked, default), _LONGEST_PAUSE)
