"""Delta queries (``GET /v1.0/{users|groups|servicePrincipals}/delta``) as Microsoft documents them.

A *round* starts with a request without a token (the full state) or with a ``$deltatoken`` (the
changes since that token). Its result is computed once, when it starts, and served in pages: each
page but the last has an ``@odata.nextLink`` (``$skiptoken``), the last has an ``@odata.deltaLink``
(``$deltatoken``) for the next round. A token may be replayed (a retry after a 429/503 gets the same
page). Changes made while a round is paged show up in the next round.

- Only ``$select``-ed properties are tracked: a change of another property does not report the object.
- Changes come with every selected property (``Prefer: return=minimal``: only the changed ones).
- A deleted object is ``{"id", "@removed": {"reason": "changed"}}`` (soft-deleted, restorable) or
  ``"deleted"`` (permanently); one created and deleted within the window is not reported.
- Groups with ``members`` selected (``$select=…,members``, or no ``$select``) carry ``members@delta``:
  all members in the first round, then the added ones and the removed ones (``"@removed":
  {"reason": "deleted"}``; removed, expired, or the member object deleted). A group with more members
  than ``members_page_size`` comes back several times in the round, each with a part of them.
- ``$filter=id eq '…' or id eq '…'``: only those objects (groups: at most ``filter_limit``, 50 as in Graph);
  the ids are kept in the round's links, as Graph encodes query options into its state tokens. Another
  ``$filter``, and ``$expand``, ``$top``, ``$orderby``, … (not supported on users/groups delta): 400.
- ``$deltatoken=latest``: no data, only a deltaLink for changes from now on.
- An unknown (or expired, see ``expire_tokens``) token: 400 ``syncStateNotFound``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from .directory import DEFAULT_SELECT, ENTITY_NAMES, NAVIGATION, ODATA_TYPES, Directory, Entry, canonical
from .queries import QueryError, delta_ids

UNSUPPORTED_OPTIONS = ("$expand", "$top", "$orderby", "$search", "$count", "$skip", "$format")
GROUP_FILTER_LIMIT = 50
Ids = frozenset[str] | None  # the $filter's object ids (lower-case); None: every object


@dataclass
class Round:
    kind: str
    select: tuple[str, ...]
    items: list[dict[str, Any]]
    final_seq: int
    ids: Ids = None


@dataclass
class DeltaTokens:
    # token -> kind, select, seq, ids
    delta: dict[str, tuple[str, tuple[str, ...], int, Ids]] = field(default_factory=dict)
    skip: dict[str, tuple[Round, int]] = field(default_factory=dict)  # token -> round, position

    def new_delta(self, kind: str, select: tuple[str, ...], seq: int, ids: Ids = None) -> str:
        token = secrets.token_urlsafe(24)
        self.delta[token] = (kind, select, seq, ids)
        return token

    def new_skip(self, rnd: Round, position: int) -> str:
        token = secrets.token_urlsafe(24)
        self.skip[token] = (rnd, position)
        return token

    def expire(self) -> int:
        """Forget every token (as Graph does after 7 days): clients must resync from scratch."""
        count = len(self.delta) + len(self.skip)
        self.delta.clear()
        self.skip.clear()
        return count


def parse_select(kind: str, select: str | None) -> tuple[str, ...]:
    names = [canonical(kind, n) for n in select.split(",") if n.strip()] if select else list(DEFAULT_SELECT[kind])
    if "members" in names and kind != "groups":
        raise ValueError(f"Could not find a property named 'members' on type '{kind}'.")
    ordered = ["id", *(n for n in names if n != "id")]
    return tuple(dict.fromkeys(ordered))


def _project(entry: Entry, select: tuple[str, ...], only: set[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in select:
        if name in NAVIGATION:
            continue
        if name == "id":
            out["id"] = entry.id
        elif name in entry.props and (only is None or name in only):
            out[name] = entry.props[name]
    return out


def _member_ref(member_id: str, kind: str, removed: bool) -> dict[str, Any]:
    ref: dict[str, Any] = {"@odata.type": ODATA_TYPES[kind], "id": member_id}
    if removed:
        ref["@removed"] = {"reason": "deleted"}
    return ref


def _with_members(base: dict[str, Any], refs: list[dict[str, Any]], chunk: int) -> list[dict[str, Any]]:
    if not refs:
        return [base]
    return [{**base, "members@delta": refs[i : i + chunk]} for i in range(0, len(refs), max(chunk, 1))]


def compute(
    directory: Directory,
    kind: str,
    select: tuple[str, ...],
    since: int | None,
    *,
    minimal: bool = False,
    members_page_size: int = 100,
    ids: Ids = None,
) -> list[dict[str, Any]]:
    """The items of a round: the full state (``since=None``) or the changes after sequence ``since``."""
    items: list[dict[str, Any]] = []
    track_members = kind == "groups" and "members" in select
    for entry in directory.objects[kind].values():
        if ids is not None and entry.id.lower() not in ids:
            continue
        if since is None:
            if entry.deleted is not None:
                continue
            refs = [_member_ref(m, mk, False) for m, mk in directory.present_members(entry.id)] if track_members else []
            items.extend(_with_members(_project(entry, select), refs, members_page_size))
            continue
        state_changed = entry.state_seq > since
        if entry.deleted is not None:
            if state_changed and entry.created_seq <= since:
                items.append({"id": entry.id, "@removed": {"reason": entry.deleted}})
            continue
        changed = {p for p in select if p != "id" and entry.prop_seq.get(p, 0) > since}
        refs = []
        if track_members:
            for member_id, (seq, member_kind) in directory.member_changes.get(entry.id, {}).items():
                if seq > since:
                    refs.append(_member_ref(member_id, member_kind, not directory.is_member(entry.id, member_id)))
        if not (state_changed or changed or refs):
            continue
        base = _project(entry, select, changed if minimal and not state_changed else None)
        items.extend(_with_members(base, refs, members_page_size))
    return items


def page(tokens: DeltaTokens, rnd: Round, position: int, size: int, base_url: str, first: bool) -> dict[str, Any]:
    """One response body of a round, from ``position``."""
    size = max(1, size)
    chunk = rnd.items[position : position + size]
    collection = f"{base_url}/v1.0/{rnd.kind}/delta"
    context = f"{base_url}/v1.0/$metadata#{rnd.kind}"
    body: dict[str, Any] = {"@odata.context": f"{context}({','.join(rnd.select)})" if first else context}
    if position + size < len(rnd.items):
        body["@odata.nextLink"] = f"{collection}?$skiptoken={tokens.new_skip(rnd, position + size)}"
    else:
        token = tokens.new_delta(rnd.kind, rnd.select, rnd.final_seq, rnd.ids)
        body["@odata.deltaLink"] = f"{collection}?$deltatoken={token}"
    body["value"] = chunk
    return body


def start_or_continue(
    directory: Directory,
    tokens: DeltaTokens,
    kind: str,
    params: dict[str, str | None],
    *,
    minimal: bool,
    page_size: int,
    members_page_size: int,
    base_url: str,
    filter_limit: int = GROUP_FILTER_LIMIT,
) -> dict[str, Any]:
    """Answer one delta request; ``params`` holds $select, $filter, $deltatoken, $skiptoken, and any
    unsupported option given (raises QueryError)."""
    for option in UNSUPPORTED_OPTIONS:
        if params.get(option) is not None:
            raise QueryError(400, "Request_UnsupportedQuery", f"Unsupported query: {option} on {kind}/delta.")
    skiptoken, deltatoken = params.get("$skiptoken"), params.get("$deltatoken")
    if skiptoken is not None:
        found = tokens.skip.get(skiptoken)
        if found is None or found[0].kind != kind:
            raise QueryError(400, "syncStateNotFound", "The sync state generation is not found.")
        rnd, position = found
        return page(tokens, rnd, position, page_size, base_url, first=False)
    if deltatoken is not None and deltatoken != "latest":
        found_delta = tokens.delta.get(deltatoken)
        if found_delta is None or found_delta[0] != kind:
            raise QueryError(
                400,
                "syncStateNotFound",
                "The sync state generation is not found. The delta token is expired and data must be "
                "synchronized again.",
            )
        _, select, since, ids = found_delta
        items = compute(directory, kind, select, since, minimal=minimal, members_page_size=members_page_size, ids=ids)
    else:
        select = _select(kind, params)
        ids = delta_ids(params.get("$filter"), kind, f"microsoft.graph.{ENTITY_NAMES[kind]}", filter_limit)
        latest = deltatoken == "latest"
        items = [] if latest else compute(directory, kind, select, None, members_page_size=members_page_size, ids=ids)
    rnd = Round(kind, select, items, directory.seq, ids)
    return page(tokens, rnd, 0, page_size, base_url, first=True)


def _select(kind: str, params: dict[str, str | None]) -> tuple[str, ...]:
    try:
        return parse_select(kind, params.get("$select"))
    except ValueError as exc:
        raise QueryError(400, "BadRequest", str(exc)) from None
