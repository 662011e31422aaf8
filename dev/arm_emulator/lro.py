"""Helpers for ARM long-running operations (``Location`` and ``Azure-AsyncOperation`` styles)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .state import LocationOperation, State
from .web import Request, Response, arm_error


def lro_url(state: State, req: Request, path: str) -> str:
    """Absolute polling URL (host = the request's own, or the configured ``async_base``)."""
    base = (state.async_base or req.base_url).rstrip("/")
    api_version = quote(req.api_version or "2025-04-01", safe="")
    return f"{base}{quote(path)}?api-version={api_version}"


def retry_after(state: State) -> dict[str, str]:
    return {"Retry-After": str(state.lro_retry_after)}


def operation_result(state: State, op_id: str) -> Response:
    """``Location`` polling endpoint: 202 while pending, then the stored final response."""
    op = state.location_operations.get(op_id)
    if op is None:
        return arm_error(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
    if op.pending_polls > 0:
        op.pending_polls -= 1
        return Response(202, None, {"Location": op.url, **retry_after(state)})
    return Response(op.final_status, op.final_body)


def start_location_operation(
    state: State, req: Request, path: str, final_status: int, final_body: Any, pending_polls: int = 1
) -> Response:
    """Register a ``Location`` LRO and answer the initial 202."""
    op_id = state.new_id()
    url = lro_url(state, req, f"{path}/{op_id}")
    state.location_operations[op_id] = LocationOperation(op_id, pending_polls, final_status, final_body, url)
    return Response(202, None, {"Location": url, **retry_after(state)})
