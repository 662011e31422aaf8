"""A small ARM template-expression evaluator (whole-string ``[...]`` expressions only).

Supported: string literals (``'it''s'``), integers, property access (``.name``) and indexing
(``[0]``, ``['key']``), and the functions ``parameters``, ``variables``, ``resourceGroup``,
``subscription``, ``deployment``, ``resourceId``, ``subscriptionResourceId``, ``tenantResourceId``,
``format``, ``concat`` and ``copyIndex``, nested to any depth. Anything else (another function, a
parameter that is not declared, a property the emulator does not know) makes the whole string come
back verbatim, as before. ``[[...]`` is the escaped literal ``[...]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_MAX_DEPTH = 32  # variables referencing variables …


class Unsupported(Exception):
    """The expression uses something the emulator does not evaluate."""


@dataclass
class Context:
    deployment_name: str
    subscription: str | None
    resource_group: str | None
    location: str
    parameters: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    copy_indexes: dict[str, int] = field(default_factory=dict)  # loop name (lower-case) -> index
    copy_loop: str | None = None  # the innermost loop (what copyIndex() without a name refers to)
    depth: int = 0

    @property
    def scope_id(self) -> str:
        if self.subscription and self.resource_group:
            return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
        if self.subscription:
            return f"/subscriptions/{self.subscription}"
        return ""


def resource_id(scope_id: str, rtype: str, name: str) -> str:
    """The id of a resource of type ``rtype`` named ``name`` (``a/b`` for child types) under ``scope_id``."""
    if rtype.lower() == "microsoft.resources/resourcegroups" and scope_id.startswith("/subscriptions/"):
        sub = scope_id.split("/")[2]
        return f"/subscriptions/{sub}/resourceGroups/{name}"
    namespace, *types = rtype.split("/")
    names = name.split("/")
    segments: list[str] = []
    for i, t in enumerate(types):
        segments += [t, names[i] if i < len(names) else "unknown"]
    return f"{scope_id}/providers/{namespace}/" + "/".join(segments)


# -- evaluation entry points -------------------------------------------------------------------


def expression(value: Any, ctx: Context) -> Any:
    """Evaluate one value if it is a whole-string expression; anything unsupported is returned as is."""
    if not (isinstance(value, str) and value.startswith("[") and value.endswith("]")):
        return value
    if value.startswith("[["):  # escaped literal
        return value[1:]
    if ctx.depth > _MAX_DEPTH:
        return value
    ctx.depth += 1
    try:
        return _Parser(value[1:-1], ctx).parse()
    except Unsupported:
        return value
    finally:
        ctx.depth -= 1


def _key(key: str, ctx: Context) -> str:
    result = expression(key, ctx)
    return result if isinstance(result, str) else key


def evaluate(value: Any, ctx: Context) -> Any:
    """Evaluate supported expressions anywhere inside ``value`` (property names included, as ARM does
    for e.g. ``identity.userAssignedIdentities`` keys)."""
    if isinstance(value, dict):
        return {_key(k, ctx): evaluate(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, ctx) for v in value]
    return expression(value, ctx)


# -- parser --------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[(),.\[\]]))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise Unsupported(text[pos:])
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, ctx: Context) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.ctx = ctx

    def parse(self) -> Any:
        value = self._expr()
        if self.pos != len(self.tokens):
            raise Unsupported("trailing tokens")
        return value

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, punct: str | None = None) -> tuple[str, str]:
        tok = self._peek()
        if tok is None or (punct is not None and tok != ("punct", punct)):
            raise Unsupported(f"expected {punct!r}")
        self.pos += 1
        return tok

    def _expr(self) -> Any:
        value = self._primary()
        while (tok := self._peek()) in (("punct", "."), ("punct", "[")):
            self.pos += 1
            if tok == ("punct", "."):
                kind, name = self._take()
                if kind != "ident":
                    raise Unsupported("property name")
                value = _member(value, name)
            else:
                value = _member(value, self._expr())
                self._take("]")
        return value

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return int(text)
        if kind != "ident":
            raise Unsupported(text)
        self._take("(")
        args: list[Any] = []
        if self._peek() != ("punct", ")"):
            args.append(self._expr())
            while self._peek() == ("punct", ","):
                self.pos += 1
                args.append(self._expr())
        self._take(")")
        function = _FUNCTIONS.get(text.lower())
        if function is None:
            raise Unsupported(text)
        return function(self.ctx, args)


def _member(value: Any, key: Any) -> Any:
    if isinstance(value, dict) and isinstance(key, str):
        for k, v in value.items():
            if k.lower() == key.lower():
                return v
    if (
        isinstance(value, list)
        and isinstance(key, int)
        and not isinstance(key, bool)
        and -len(value) <= key < len(value)
    ):
        return value[key]
    raise Unsupported(f"member {key!r}")


# -- functions -----------------------------------------------------------------------------------


def _one_string(args: list[Any]) -> str:
    if len(args) != 1 or not isinstance(args[0], str):
        raise Unsupported("one string argument expected")
    return args[0]


def _lookup(source: dict[str, Any], name: str) -> tuple[bool, Any]:
    if name in source:
        return True, source[name]
    for k, v in source.items():
        if k.lower() == name.lower():
            return True, v
    return False, None


def _parameters(ctx: Context, args: list[Any]) -> Any:
    found, value = _lookup(ctx.parameters, _one_string(args))
    if not found:
        raise Unsupported("parameter")
    return expression(value, ctx)


def _variables(ctx: Context, args: list[Any]) -> Any:
    found, value = _lookup(ctx.variables, _one_string(args))
    if not found:
        raise Unsupported("variable")
    return evaluate(value, ctx)


def _resource_group(ctx: Context, args: list[Any]) -> Any:
    if args or not ctx.resource_group:
        raise Unsupported("resourceGroup()")
    return {
        "id": ctx.scope_id,
        "name": ctx.resource_group,
        "type": "Microsoft.Resources/resourceGroups",
        "location": ctx.location,
        "properties": {"provisioningState": "Succeeded"},
    }


def _subscription(ctx: Context, args: list[Any]) -> Any:
    if args or not ctx.subscription:
        raise Unsupported("subscription()")
    return {"id": f"/subscriptions/{ctx.subscription}", "subscriptionId": ctx.subscription}


def _deployment(ctx: Context, args: list[Any]) -> Any:
    if args:
        raise Unsupported("deployment()")
    return {"name": ctx.deployment_name}


def _split_id_args(args: list[Any], max_leading: int) -> tuple[list[str], str, list[str]]:
    if not args or not all(isinstance(a, str) for a in args):
        raise Unsupported("resourceId arguments must be strings")
    first = next((i for i, a in enumerate(args) if "/" in a), None)
    if first is None or first > max_leading:
        raise Unsupported("resource type")
    leading, rtype, names = args[:first], args[first], args[first + 1 :]
    if not names or len(names) != rtype.count("/"):
        raise Unsupported("resource names")
    return leading, rtype, names


def _resource_id(ctx: Context, args: list[Any]) -> str:
    """``resourceId([subscriptionId], [resourceGroupName], resourceType, name1, [name2], …)``."""
    leading, rtype, names = _split_id_args(args, 2)
    sub = leading[0] if len(leading) == 2 else ctx.subscription
    group = leading[-1] if leading else ctx.resource_group
    if leading and not sub:
        raise Unsupported("no subscription")
    scope = f"/subscriptions/{sub}" if sub else ""
    if sub and group:
        scope += f"/resourceGroups/{group}"
    return resource_id(scope, rtype, "/".join(names))


def _subscription_resource_id(ctx: Context, args: list[Any]) -> str:
    leading, rtype, names = _split_id_args(args, 1)
    sub = leading[0] if leading else ctx.subscription
    if not sub:
        raise Unsupported("no subscription")
    return resource_id(f"/subscriptions/{sub}", rtype, "/".join(names))


def _tenant_resource_id(ctx: Context, args: list[Any]) -> str:
    _, rtype, names = _split_id_args(args, 0)
    return resource_id("", rtype, "/".join(names))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"))


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(\d+)(?:,-?\d+)?(?::([^}]*))?\}")


def _format(ctx: Context, args: list[Any]) -> str:
    """.NET composite formatting: ``{0}``, ``{0:D3}`` (zero-padded ints), ``{{``/``}}``."""
    if not args or not isinstance(args[0], str):
        raise Unsupported("format string")
    values = args[1:]

    def one(m: re.Match[str]) -> str:
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        index = int(m.group(1))
        if index >= len(values):
            raise Unsupported("format index")
        value, spec = values[index], m.group(2) or ""
        if spec[:1] in ("D", "d") and isinstance(value, int) and not isinstance(value, bool):
            return str(value).zfill(int(spec[1:] or 0))
        return _text(value)

    return _PLACEHOLDER.sub(one, args[0])


def _concat(ctx: Context, args: list[Any]) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [item for a in args for item in a]
    if any(isinstance(a, (list, dict)) for a in args):
        raise Unsupported("concat of mixed values")
    return "".join(_text(a) for a in args)


def _copy_index(ctx: Context, args: list[Any]) -> int:
    loop = ctx.copy_loop
    offset = 0
    rest = list(args)
    if rest and isinstance(rest[0], str):
        loop = rest.pop(0).lower()
    if rest:
        if len(rest) != 1 or not isinstance(rest[0], int) or isinstance(rest[0], bool):
            raise Unsupported("copyIndex offset")
        offset = rest[0]
    if loop is None or loop not in ctx.copy_indexes:
        raise Unsupported("copyIndex outside a copy loop")
    return ctx.copy_indexes[loop] + offset


_FUNCTIONS: dict[str, Callable[[Context, list[Any]], Any]] = {
    "parameters": _parameters,
    "variables": _variables,
    "resourcegroup": _resource_group,
    "subscription": _subscription,
    "deployment": _deployment,
    "resourceid": _resource_id,
    "subscriptionresourceid": _subscription_resource_id,
    "tenantresourceid": _tenant_resource_id,
    "format": _format,
    "concat": _concat,
    "copyindex": _copy_index,
}
