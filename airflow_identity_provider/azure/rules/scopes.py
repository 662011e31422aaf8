"""ARM scopes: ASCII case folding, parsing and containment, and the connection's fence grammar.

The one ARM scope module: the connection, the fence, RBAC and the operators all parse scopes here. Two
grammars, both pure and dependency-free:

- :func:`parse_scope` / :class:`ArmScope` / :func:`is_within`: any ARM scope or resource id, as ARM and
  what-if return them (see the rbac module doc for containment rules).
- :func:`normalize_scope` / :func:`parse_allowed_scopes`: the narrower grammar of the connection extras
  ``allowed_scopes`` and ``allowed_reference_scopes``, giving one canonical spelling.

ARM compares resource ids, action names and GUIDs case-insensitively in ASCII only. Python's
``str.lower()`` / ``casefold()`` and ``re.IGNORECASE`` apply Unicode rules, under which ``\\u212a`` (KELVIN
SIGN) equals ``k`` and ``\\u017f`` (LONG S) equals ``s``: a resource group ``\\u212a-rg`` is a different group
from ``k-rg`` in ARM, yet would pass a fence on ``k-rg``. Every comparison key in these modules is built
with :func:`ascii_fold` instead; everything outside A-Z compares exactly.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from airflow_identity_provider.entra_ids import is_guid
from airflow_identity_provider.errors import Refusal

__all__ = [
    "EXPECTED_SHAPES",
    "ArmScope",
    "ScopeError",
    "ScopeKind",
    "ascii_fold",
    "canonical_subscription_id",
    "dedupe_folded",
    "first_containing",
    "is_within",
    "lookalike_fold",
    "normalize_scope",
    "parse_allowed_scopes",
    "parse_scope",
    "resource_type_of",
]

ScopeKind = Literal["root", "management_group", "subscription", "resource_group", "resource"]

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

# fullmatch everywhere below: "$" would also accept a trailing newline.
# \w is Unicode on purpose: ARM allows Unicode letters in resource group names.
_RG_NAME = re.compile(r"[-\w.()]{1,90}")
_MG_NAME = re.compile(r"[-\w.()]{1,90}")
_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)+")
# Control characters would let a checked scope mean another path once it is put in a URL or a log line.
_NAME_SEGMENT = re.compile(r"[^\s/?#%&\\\x00-\x1f\x7f]+")


def ascii_fold(text: str) -> str:
    """``text`` with A-Z lowered and every other character unchanged: ARM's case-insensitive key."""
    return text.translate(_ASCII_FOLD)


def lookalike_fold(text: str) -> str:
    """A deliberately loose key for *deny* lists (governance types, deployment scripts, nested deployments):
    compatibility-normalised and case-folded, so a lookalike spelling is caught rather than let through.
    Never use it to *admit* anything: allow decisions use :func:`ascii_fold`."""
    return unicodedata.normalize("NFKC", text).casefold()


def dedupe_folded(items: Iterable[str]) -> tuple[str, ...]:
    """``items`` without repeats by :func:`ascii_fold` (ARM's comparison); the first spelling is kept."""
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = ascii_fold(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return tuple(out)


# ------------------------------------------------------------------------------- any ARM scope or id

EXPECTED_SHAPES = (
    "'/', '/subscriptions/<subscriptionId>', '/subscriptions/<subscriptionId>/resourceGroups/<name>', "
    "'/subscriptions/<subscriptionId>[/resourceGroups/<name>]/providers/<Namespace>/<type>/<name>[/<type>/<name>...]' "
    "or '/providers/Microsoft.Management/managementGroups/<id>'"
)

_TYPE_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_MG_PROVIDER = ("microsoft.management", "managementgroups")
_BAD_IN_NAME = re.compile(r"[?#%\\\x00-\x1f\x7f]")


class ScopeError(Refusal, ValueError):
    """A string that is not an ARM scope or resource id."""

    def __init__(self, message: str, reason: str = "invalid_scope") -> None:
        super().__init__(reason, message)


@dataclass(frozen=True, repr=False)
class ArmScope:
    """A parsed ARM scope or resource id (build it with :func:`parse_scope`). Equality and hashing ignore
    ASCII case only (:func:`ascii_fold`, ARM's rule: ``\u212a-rg`` is not ``k-rg``); ``str()`` is canonical.

    Canonical spelling: fixed segments as ARM documents them (``subscriptions``, ``resourceGroups``,
    ``providers``, ``Microsoft.Management/managementGroups``), a GUID subscription id lower-cased,
    everything else as given.
    """

    segments: tuple[str, ...] = field(compare=False)
    kind: ScopeKind = field(compare=False)
    subscription_id: str | None = field(default=None, compare=False)
    resource_group: str | None = field(default=None, compare=False)
    management_group: str | None = field(default=None, compare=False)
    resource_type: str | None = field(default=None, compare=False)
    """ARM type of what the id names, e.g. ``Microsoft.Network/virtualNetworks/subnets``;
    ``Microsoft.Resources/resourceGroups`` for a resource group, ``Microsoft.Resources/subscriptions`` for a
    subscription, ``Microsoft.Management/managementGroups`` for a management group, None for the root."""
    key: tuple[str, ...] = field(init=False, compare=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", tuple(ascii_fold(s) for s in self.segments))

    def __str__(self) -> str:
        return "/" + "/".join(self.segments)

    def __repr__(self) -> str:
        return f"ArmScope({str(self)!r})"

    def contains(self, target: ArmScope | str) -> bool:
        return is_within(target, self)


def _scope_error(text: object, reason: str) -> ScopeError:
    return ScopeError(f"{text!r} is not a valid ARM scope: {reason}. Expected {EXPECTED_SHAPES}.")


@lru_cache(maxsize=4096)
def _parse_scope_cached(text: str) -> ArmScope:
    original = text
    text = text.strip()
    if text == "/":
        return ArmScope(segments=(), kind="root")
    if not text:
        raise _scope_error(original, "it is empty")
    if not text.startswith("/"):
        hint = " (give the path only, not a URL)" if "://" in text else ""
        raise _scope_error(original, f"it must start with '/'{hint}")
    if text.endswith("/"):
        text = text[:-1]
    raw = text[1:].split("/")
    for seg in raw:
        if not seg:
            raise _scope_error(original, "it has an empty segment ('//')")
        if seg in (".", ".."):
            raise _scope_error(original, f"segment {seg!r} is not allowed")
        if _BAD_IN_NAME.search(seg) or seg != seg.strip():
            raise _scope_error(original, f"segment {seg!r} contains a character ARM ids do not allow")
    low = [ascii_fold(s) for s in raw]
    n = len(raw)
    out: list[str] = []
    sub: str | None = None
    rg: str | None = None
    i = 0
    if low[0] == "subscriptions":
        if n < 2:
            raise _scope_error(original, "the subscription id is missing")
        sub = ascii_fold(raw[1]) if is_guid(raw[1]) else raw[1]
        out += ["subscriptions", sub]
        i = 2
        if i < n and low[i] == "resourcegroups":
            if i + 1 >= n:
                raise _scope_error(original, "the resource group name is missing")
            rg = raw[i + 1]
            if not _RG_NAME.fullmatch(rg) or rg.endswith("."):
                raise _scope_error(original, f"{rg!r} is not a valid resource group name")
            out += ["resourceGroups", rg]
            i += 2
    elif low[0] != "providers":
        raise _scope_error(original, f"it must start with /subscriptions or /providers, not /{raw[0]}")

    resource_type: str | None = None
    blocks = 0
    mg: str | None = None
    while i < n:
        if low[i] != "providers":
            raise _scope_error(original, f"expected 'providers' at segment {i + 1}, found {raw[i]!r}")
        if n - i < 4:
            raise _scope_error(original, "a 'providers' segment must be followed by <Namespace>/<type>/<name>")
        ns, typ, name = raw[i + 1], raw[i + 2], raw[i + 3]
        if not _NAMESPACE.fullmatch(ns):
            raise _scope_error(original, f"{ns!r} is not a resource provider namespace like Microsoft.Storage")
        if not _TYPE_SEGMENT.fullmatch(typ):
            raise _scope_error(original, f"{typ!r} is not a resource type")
        if blocks == 0 and sub is None and (ascii_fold(ns), ascii_fold(typ)) == _MG_PROVIDER:
            ns, typ, mg = "Microsoft.Management", "managementGroups", name
        out += ["providers", ns, typ, name]
        types = [ns, typ]
        i += 4
        blocks += 1
        while i < n and low[i] != "providers":
            if i + 1 >= n:
                raise _scope_error(original, f"child type {raw[i]!r} has no name")
            if not _TYPE_SEGMENT.fullmatch(raw[i]):
                raise _scope_error(original, f"{raw[i]!r} is not a resource type")
            out += [raw[i], raw[i + 1]]
            types.append(raw[i])
            i += 2
        resource_type = "/".join(types)

    kind: ScopeKind
    if blocks == 0:
        if rg is not None:
            kind, resource_type = "resource_group", "Microsoft.Resources/resourceGroups"
        else:  # a /providers/... path always yields a block or raises, so this is /subscriptions/<id>
            kind, resource_type = "subscription", "Microsoft.Resources/subscriptions"
    elif mg is not None and len(out) == 4:
        kind = "management_group"
    else:
        kind = "resource"
    return ArmScope(
        segments=tuple(out),
        kind=kind,
        subscription_id=sub,
        resource_group=rg,
        management_group=mg,
        resource_type=resource_type,
    )


def parse_scope(s: ArmScope | str) -> ArmScope:
    """Parse a scope or resource id; raise :class:`ScopeError` naming the input and the accepted shapes."""
    if isinstance(s, ArmScope):
        return s
    if not isinstance(s, str):
        raise ScopeError(f"{s!r} is not a valid ARM scope: expected a string. Expected {EXPECTED_SHAPES}.")
    return _parse_scope_cached(s)


def resource_type_of(resource_id: str) -> str | None:
    """The ARM type an id names (:attr:`ArmScope.resource_type`), or None when it is not an ARM id."""
    try:
        return parse_scope(resource_id).resource_type
    except ScopeError:
        return None


def is_within(target: ArmScope | str, allowed: ArmScope | str) -> bool:
    """True when ``target`` equals ``allowed`` or lies below it, compared segment by segment ignoring ASCII case.

    A management-group ``allowed`` admits only itself and ids under its own path (see the module doc).
    """
    t, a = parse_scope(target).key, parse_scope(allowed).key
    return t[: len(a)] == a


def first_containing(target: ArmScope | str, allowed: Iterable[ArmScope | str]) -> ArmScope | None:
    """The first scope of ``allowed`` that contains ``target``, or None."""
    t = parse_scope(target)
    for scope in allowed:
        a = parse_scope(scope)
        if t.key[: len(a.key)] == a.key:
            return a
    return None


# ----------------------------------------------------------------- the connection's fence grammar


def canonical_subscription_id(value: str) -> str:
    """A subscription id (a GUID, surrounding whitespace ignored) in canonical lower case; ValueError if not."""
    text = value.strip()
    if not is_guid(text):
        raise ValueError(f"subscription id {value!r} is not a GUID")
    return ascii_fold(text)


def parse_allowed_scopes(value: Any) -> tuple[str, ...]:
    """A JSON list string, a real list, or a comma-separated string -> normalized, de-duplicated scopes.

    Duplicates are found by their ASCII-folded spelling (ARM's own comparison); the first spelling is kept.
    """
    items: Any
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                raise ValueError("not a valid JSON list") from None
        else:
            items = [part for part in text.split(",") if part.strip()]
    else:
        items = value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a list of strings")
    scopes: dict[str, str] = {}
    for item in items:
        scope = normalize_scope(item)
        scopes.setdefault(ascii_fold(scope), scope)
    return tuple(scopes.values())


def normalize_scope(scope: str) -> str:
    """Check one ARM scope and return its canonical spelling.

    Accepted: ``/``; ``/subscriptions/<guid>[/resourceGroups/<rg>][/providers/<ns>/<type>/<name>...]``;
    ``/providers/Microsoft.Management/managementGroups/<id>``. Fixed segments get their canonical case
    and the subscription GUID is lower-cased (ARM ids are case-insensitive); names keep their case.
    Fixed segments are recognised in ASCII only, so ``/\\u017fubscriptions/...`` is refused.

    The connection grammar is a strict subset of :func:`parse_scope`'s: whatever it accepts, ``parse_scope``
    accepts too and spells the same way, so a fence declared here compares with ARM's ids by the same key.
    It is narrower on purpose: a subscription must be a GUID, a management group stands alone, and names
    with ``&`` or whitespace are refused (ARM ids from what-if may carry them; a fence should not).
    """
    return str(parse_scope(_narrow_scope(scope)))


def _narrow_scope(scope: str) -> str:
    text = scope.strip()
    if text == "/":
        return "/"
    if not text.startswith("/"):
        raise ValueError(f"{scope!r} does not start with '/'")
    segments = (text[:-1] if text.endswith("/") else text).split("/")[1:]  # one trailing "/", as parse_scope
    if any(not s for s in segments):
        raise ValueError(f"{scope!r} has an empty segment ('//')")
    head = ascii_fold(segments[0])
    if head == "subscriptions":
        return _normalize_subscription_scope(scope, segments)
    if head == "providers":
        if (
            len(segments) == 4
            and ascii_fold(segments[1]) == "microsoft.management"
            and ascii_fold(segments[2]) == "managementgroups"
            and _MG_NAME.fullmatch(segments[3])
        ):
            return f"/providers/Microsoft.Management/managementGroups/{segments[3]}"
        raise ValueError(f"{scope!r} is not /providers/Microsoft.Management/managementGroups/<id>")
    raise ValueError(f"{scope!r} must start with /subscriptions/<id> or /providers/Microsoft.Management/...")


def _normalize_subscription_scope(scope: str, segments: list[str]) -> str:
    if len(segments) < 2 or not is_guid(segments[1]):
        raise ValueError(f"{scope!r}: the subscription id must be a GUID")
    out = ["subscriptions", ascii_fold(segments[1])]
    rest = segments[2:]
    if rest and ascii_fold(rest[0]) == "resourcegroups":
        if len(rest) < 2 or not _RG_NAME.fullmatch(rest[1]) or rest[1].endswith("."):
            raise ValueError(f"{scope!r}: invalid resource group name")
        out += ["resourceGroups", rest[1]]
        rest = rest[2:]
    if rest:
        # providers/<namespace>/<type>/<name>[/<type>/<name>...]
        if ascii_fold(rest[0]) != "providers" or len(rest) < 4 or (len(rest) - 2) % 2:
            raise ValueError(f"{scope!r}: expected .../providers/<namespace>/<type>/<name>")
        if not _NAMESPACE.fullmatch(rest[1]) or not all(_NAME_SEGMENT.fullmatch(s) for s in rest[2:]):
            raise ValueError(f"{scope!r}: invalid resource provider segment")
        out += ["providers", *rest[1:]]
    return "/" + "/".join(out)
