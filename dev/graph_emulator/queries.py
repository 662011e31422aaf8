"""OData query options as Microsoft Graph's directory endpoints take them: ``$filter`` clauses, ``$select`` and
``$top``, and ``$skiptoken`` paging of plain (non-delta) collections.

What Graph documents, and so what the emulator accepts:

- delta on users, groups and service principals: ``$filter`` only as ``id eq '…'``, several joined with ``or``;
  groups allow at most 50 ids (https://learn.microsoft.com/graph/api/group-delta). Anything else is a 400.
- ``GET /servicePrincipals``: ``appId``, ``id``, ``displayName`` with ``eq`` and
  ``servicePrincipalNames/any(x:x eq '…')``, joined with ``or``; another property is a 400
  ``Request_UnsupportedQuery`` naming it, as Graph answers.
- ``$top``: 1 to 999 on directory collections.

Errors are raised as :class:`QueryError` (status, Graph error code, message) and answered in Graph's envelope.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

MAX_TOP = 999
DEFAULT_PAGE = 100
_STRING = r"'((?:[^']|'')*)'"
_EQ = re.compile(rf"\s*\(?\s*([A-Za-z][\w.]*)\s+eq\s+{_STRING}\s*\)?\s*", re.I)
_ANY = re.compile(rf"\s*\(?\s*([A-Za-z][\w.]*)/any\(\s*(\w+)\s*:\s*(\w+)\s+eq\s+{_STRING}\s*\)\s*\)?\s*", re.I)
_OR = re.compile(r"or\b", re.I)
_PROPERTY = re.compile(r"\s*\(?\s*([A-Za-z][\w.]*)")


class QueryError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Clause:
    prop: str  # as written (compare case-insensitively)
    value: str
    any: bool = False  # ``prop/any(x:x eq value)`` on a multi-valued property


def unsupported_clause(prop: str, entity: str) -> QueryError:
    return QueryError(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{prop}' of resource '{entity}'.",
    )


def parse_filter(expr: str, entity: str) -> list[Clause]:
    """``a eq 'x' or b/any(c:c eq 'y') or …`` -> clauses; another shape is a 400 naming its property."""
    clauses: list[Clause] = []
    pos = 0
    while True:
        if m := _ANY.match(expr, pos):
            if m.group(2) != m.group(3):
                raise unsupported_clause(m.group(1), entity)
            clauses.append(Clause(m.group(1), m.group(4).replace("''", "'"), any=True))
        elif m := _EQ.match(expr, pos):
            clauses.append(Clause(m.group(1), m.group(2).replace("''", "'")))
        else:
            found = _PROPERTY.match(expr, pos)
            raise unsupported_clause(found.group(1) if found else expr.strip(), entity)
        pos = m.end()
        if pos >= len(expr):
            return clauses
        if not (joined := _OR.match(expr, pos)):
            found = _PROPERTY.match(expr, pos)
            raise unsupported_clause(found.group(1) if found else expr[pos:].strip(), entity)
        pos = joined.end()


def delta_ids(expr: str | None, kind: str, entity: str, limit: int) -> frozenset[str] | None:
    """The object ids a delta ``$filter`` tracks (None: no filter, every object). Lower-cased: GUIDs."""
    if expr is None:
        return None
    clauses = parse_filter(expr, entity)
    for clause in clauses:
        if clause.any or clause.prop.lower() != "id":
            raise QueryError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported query: {kind}/delta takes only $filter=id eq '{{id}}' (joined with 'or').",
            )
    ids = frozenset(clause.value.lower() for clause in clauses)
    if kind == "groups" and len(ids) > limit:
        raise QueryError(
            400,
            "Request_UnsupportedQuery",
            f"Unsupported query: the $filter names {len(ids)} groups; groups/delta tracks at most {limit} ids.",
        )
    return ids


def page_size(top: str | None, default: int = DEFAULT_PAGE) -> int:
    if top is None:
        return default
    if not top.isdigit() or not 1 <= int(top) <= MAX_TOP:
        raise QueryError(
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_TOP} inclusive.",
        )
    return int(top)


def select_names(select: str | None, known: tuple[str, ...], entity: str) -> tuple[str, ...] | None:
    """``$select`` in the canonical spelling (case-insensitive, as Graph); None: every property."""
    if not select:
        return None
    lookup = {name.lower(): name for name in known}
    names: list[str] = []
    for raw in select.split(","):
        name = raw.strip()
        if not name:
            continue
        if name.lower() not in lookup:
            raise QueryError(400, "BadRequest", f"Could not find a property named '{name}' on type '{entity}'.")
        names.append(lookup[name.lower()])
    return tuple(dict.fromkeys(["id", *names]))


@dataclass
class Pages:
    """``$skiptoken`` state of plain collections: the rest of a result computed when its first page was asked."""

    pending: dict[str, tuple[str, list[dict[str, Any]], int, int]] = field(default_factory=dict)

    def page(self, url: str, context: str, items: list[dict[str, Any]], position: int, size: int) -> dict[str, Any]:
        body: dict[str, Any] = {"@odata.context": context, "value": items[position : position + size]}
        if position + size < len(items):
            token = secrets.token_urlsafe(24)
            self.pending[token] = (context, items, position + size, size)
            body["@odata.nextLink"] = f"{url}?$skiptoken={token}"
        return body

    def resume(self, url: str, token: str) -> dict[str, Any]:
        found = self.pending.get(token)
        if found is None:
            raise QueryError(400, "Request_BadRequest", "The specified page token value has expired.")
        context, items, position, size = found
        return self.page(url, context, items, position, size)

    def clear(self) -> int:
        count = len(self.pending)
        self.pending.clear()
        return count
