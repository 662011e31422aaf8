"""Audit events for a SIEM: one JSON object per line on the ``airflow_identity_provider.audit`` logger.

A leaf shared by both wings (imports nothing of the package, only the standard library): the auth wing
reports sign-ins, tokens and denials from the api-server, the azure wing every ARM preflight decision from
the workers, so "who did what in Azure, as whom" is one search. ``docs/audit.md`` shows how to route the
logger to a file that the Azure Monitor agent or the Splunk Universal Forwarder reads.

Every event carries ``time`` (ISO 8601 UTC, milliseconds), ``event``, ``outcome`` (``success``,
``failure`` or ``unknown``, as ECS ``event.outcome``) and, unless it succeeded, ``reason`` (a stable code).
Inside an api-server request the edge middleware binds ``client_ip``, ``user_agent`` and ``request_id``
(:func:`bind_request`); every event emitted in that request carries them. Before anything is written,
:func:`redact` masks any field whose name is a secret's (``token``, ``client_secret``, ``cookie``...) and
any value that looks like one (a JWT, a long random string, ``Bearer ...``, ``?code=...``, a registered
secret): an audit log is read by more people than the secrets it could leak.

The events (names and fields are a contract with SIEM searches: add fields, never rename them):

``login``
    success: ``user_id, user_name, idp, tenant, roles, role_sources`` ({role: [claim values]} or
    ``["default_role"]``), ``groups`` (the claim values some setting names), ``groups_claim``, ``teams``,
    ``dag_grants``. failure: ``reason`` (``no_mapped_role``, ``state_mismatch``, ``idp_unavailable``,
    ``token_too_large``, ``unsafe_next``...), ``detail``; with ``no_mapped_role`` also ``user_id, user_name,
    idp, groups_claim, groups, groups_total``.
``token``
    An Airflow token was issued (success) or refused (failure). ``kind``: ``browser`` (sign-in cookie),
    ``cli`` (``/auth/token/cli``, CLI browser sign-in), ``machine`` (``/auth/token``), ``exchange`` (an IdP
    access token accepted as ``Bearer`` on the API); ``lifetime`` (seconds); the user fields and
    ``roles, role_sources, groups, groups_claim`` as for ``login``. failure: ``reason, detail``.
``logout``
    ``idp, idp_session_ended, revoked`` (Airflow tokens revoked).
``revalidation``
    failure, reason ``revalidation_due`` (or ``directory_membership_gained``): a browser session was ended so
    the user signs in again.
    ``user_id, user_name, idp, tenant, signed_in_at, revalidate_interval``.
``authorization``
    failure, reason ``not_permitted``: the auth manager answered no. ``user_id, user_name, idp, tenant,
    roles, resource`` (``dag.run``, ``variable``, ``view.plugins``...), ``method``, ``dag_id``, ``team``,
    ``repeated`` (identical denials left out since the last one: at most one per user, resource, method,
    DAG and minute, see :class:`RateLimiter`).
``directory_sync``
    A sync round with the directory (Microsoft Graph, JumpCloud). ``idp, source, users`` (seen),
    ``disabled, changed`` (counts), ``duration_ms``; failure: ``reason, detail, outage_s``.
``deprovisioning``
    Access taken away because the directory says so. ``user_id, user_name, idp, tenant, cause, source``,
    ``repeated``.
``arm_preflight``
    An operator's decision before an ARM write: success (``verdict`` ``allowed``) or failure (``refused``).
    ``dag_id, task_id, run_id, try_number, map_index, conn_id, auth_type, client_id, principal_id`` (object
    id), ``tenant, scope, operation, check`` (``fence``, ``full``, ``template_spec``, ``contents``),
    ``reasons``, ``warnings``, ``required_actions, least_privilege, overprivilege, correlation_id`` (the
    ``x-ms-correlation-request-id`` ARM's activity log records for the task's requests).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = [
    "AUDIT_LOGGER",
    "OUTCOMES",
    "REDACTED",
    "RateLimiter",
    "RequestContext",
    "audit_log",
    "bind_request",
    "current_request",
    "emit",
    "redact",
    "register_secret",
    "request_id_from",
    "request_scope",
    "reset_request",
]

AUDIT_LOGGER = "airflow_identity_provider.audit"
audit_log = logging.getLogger(AUDIT_LOGGER)
OUTCOMES = ("success", "failure", "unknown")
_LEVELS = {"success": logging.INFO, "failure": logging.WARNING, "unknown": logging.INFO}
_RESERVED = frozenset({"time", "event", "outcome", "reason"})
REDACTED = "[redacted]"

# Bounds, so one event stays one readable line whatever a header or a directory sends.
MAX_TEXT = 2000
MAX_ITEMS = 200


# --- the request an event belongs to ----------------------------------------------------------------


@dataclass(frozen=True)
class RequestContext:
    """Who is on the other end of the api-server request being handled (set by the edge middleware)."""

    client_ip: str
    user_agent: str
    request_id: str


_request: ContextVar[RequestContext | None] = ContextVar("airflow_identity_provider_audit_request", default=None)


def current_request() -> RequestContext | None:
    return _request.get()


def bind_request(context: RequestContext) -> Token[RequestContext | None]:
    return _request.set(context)


def reset_request(token: Token[RequestContext | None]) -> None:
    _request.reset(token)


@contextmanager
def request_scope(context: RequestContext) -> Iterator[RequestContext]:
    token = bind_request(context)
    try:
        yield context
    finally:
        reset_request(token)


# Letters, digits and the few separators request ids use (uuid, ULID, Azure's x-ms-* ids, W3C trace ids).
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$")


def request_id_from(header: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is a sane id (so the proxy's and our logs share it), else a
    fresh uuid4 hex: a header with spaces, quotes or kilobytes would otherwise land in every event."""
    value = (header or "").strip()
    return value if _SANE_REQUEST_ID.match(value) else uuid.uuid4().hex


# --- redaction -------------------------------------------------------------------------------------------

_SECRET_KEYS = frozenset(
    {
        "token", "id_token", "access_token", "refresh_token", "airflow_token", "jwt", "bearer",
        "secret", "client_secret", "password", "passwd", "assertion", "client_assertion", "code",
        "code_verifier", "api_key", "apikey", "authorization", "cookie", "cookies", "set_cookie",
        "private_key", "certificate_data", "credential", "credentials", "sas", "sig", "signature",
    }
)  # fmt: skip
_SECRET_SUFFIXES = (
    "_token", "_secret", "_password", "_api_key", "_assertion", "_cookie", "_verifier", "_private_key",
    "_credential", "_jwt",
)  # fmt: skip
_QUERY_SECRET = re.compile(
    r"(?i)(\b(?:code|token|id_token|access_token|refresh_token|client_secret|code_verifier|assertion|"
    r"client_assertion|password|api_key|apikey|secret|sig|key)=)[^&#\s\"']+"
)
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
# A JWS/JWE (three or five base64url parts; the header is JSON, so it starts with "eyJ"), or any three
# long base64url parts.
_JWT = re.compile(
    r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?"
    r"|\b[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\b"
)
_OPAQUE_RUN = re.compile(r"[A-Za-z0-9+/_~.=-]{32,}")
_registered: set[str] = set()
_MAX_REGISTERED = 256
_MIN_REGISTERED = 8  # shorter values would mask ordinary words


def register_secret(*values: str | None) -> None:
    """Mask these exact values wherever they appear (client secrets, API keys the process holds).

    Defence in depth: no caller passes a secret, but a refusal message quoting one must not leak it."""
    for value in values:
        if value and len(value) >= _MIN_REGISTERED and len(_registered) < _MAX_REGISTERED:
            _registered.add(value)


def _secret_key(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name in _SECRET_KEYS or name.endswith(_SECRET_SUFFIXES)


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _looks_random(run: str) -> bool:
    """A long run of upper, lower case and digits as random as base64 (hex ids and uuids stay: they are
    identifiers, and at most 4 bits per character). Paths (ARM scopes, URLs) are never masked whole."""
    if run.startswith("/") or len(run) < 32:
        return False
    has = (any(c.isupper() for c in run), any(c.islower() for c in run), any(c.isdigit() for c in run))
    return all(has) and _entropy(run) >= 4.2


def _redact_text(text: str) -> str:
    for secret in tuple(_registered):  # a snapshot: another thread may register a secret meanwhile
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _JWT.sub(REDACTED, text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    text = _OPAQUE_RUN.sub(lambda m: REDACTED if _looks_random(m.group(0)) else m.group(0), text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f"...({len(text) - MAX_TEXT} more characters)"
    return text


def _clean(value: object, depth: int = 0) -> object:
    """JSON-ready, bounded and redacted: str/int/float/bool/None, lists and string-keyed objects."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _redact_text(value)
    if depth >= 4:
        return _redact_text(str(value))
    if isinstance(value, Mapping):
        return {str(k): (REDACTED if _secret_key(str(k)) else _clean(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        cleaned = [_clean(v, depth + 1) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            cleaned.append(f"...({len(items) - MAX_ITEMS} more)")
        return cleaned
    return _redact_text(str(value))


def redact(fields: Mapping[str, object]) -> dict[str, object]:
    """``fields`` with secret-named keys masked and secret-looking values masked, at every depth."""
    return {key: (REDACTED if _secret_key(key) else _clean(value)) for key, value in fields.items()}


# --- writing an event ------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_REASON_CODE = re.compile(r"[^a-z0-9_.:-]")
MAX_REASON = 64


def _reason_code(reason: str) -> str:
    """A reason is a code a SIEM rule matches on. Some embed what a caller sent (``idp_error_<error>`` from the
    callback's query), so keep only code characters, bounded: never free text from outside in this field."""
    return _REASON_CODE.sub("_", reason.lower())[:MAX_REASON]


def emit(event: str, *, outcome: str, reason: str | None = None, level: int | None = None, **fields: object) -> str:
    """Write one audit event and return its JSON line (tests and error pages use it).

    ``level`` defaults from the outcome (failure: WARNING). Fields that are None are left out, so callers
    pass what they know without branching. Never raises for a field value: anything is made text.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    clash = _RESERVED & fields.keys()
    if clash:
        raise TypeError(f"audit field names {sorted(clash)} are reserved")
    record: dict[str, object] = {"time": _now(), "event": event, "outcome": outcome}
    if reason:
        record["reason"] = _reason_code(reason)
    context = _request.get()
    if context is not None:  # the caller may know better (a CLI on loopback): its fields win
        fields = {"client_ip": context.client_ip, "user_agent": context.user_agent,
                  "request_id": context.request_id, **fields}  # fmt: skip
    record.update(redact({k: v for k, v in fields.items() if v is not None}))
    # sort_keys: the same event always reads the same; ensure_ascii: no control or bidi characters survive.
    line = json.dumps(record, sort_keys=True, default=str)
    audit_log.log(level if level is not None else _LEVELS[outcome], line)
    return line


# --- at most one of a kind per window ---------------------------------------------------------------------


class RateLimiter:
    """At most one event per key and window (a calendar minute by default), counting what it held back.

    In memory and bounded: past ``max_keys`` the keys of earlier windows are dropped (and if all are
    current, everything: a burst of distinct denials then costs a few repeated events, never memory).
    Thread-safe: the api-server answers authorization questions on many threads.
    """

    def __init__(self, *, window: float = 60.0, max_keys: int = 10_000) -> None:
        self.window = window
        self.max_keys = max_keys
        self._seen: dict[Hashable, list[int]] = {}  # key -> [window number, held back since the last event]
        self._lock = threading.Lock()

    def admit(self, key: Hashable, *, now: float | None = None) -> int | None:
        """None: hold this one back. Otherwise let it through; the int is how many were held back before."""
        slot = int((time.time() if now is None else now) // self.window)
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and entry[0] == slot:
                entry[1] += 1
                return None
            if entry is None and len(self._seen) >= self.max_keys:
                self._seen = {k: v for k, v in self._seen.items() if v[0] == slot}
                if len(self._seen) >= self.max_keys:
                    self._seen.clear()
            self._seen[key] = [slot, 0]
            return entry[1] if entry is not None else 0

    def __len__(self) -> int:
        return len(self._seen)
