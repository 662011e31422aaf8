"""A small reader of ARM template expressions (``"[concat('rg-', parameters('env'))]"``), for the offline checks.

Pure: no network, no SDK. It evaluates only what can be known before ARM sees the request: literals,
``parameters()``, ``variables()``, ``resourceGroup()``/``subscription()`` of the deployment's own scope,
``concat``, ``format``, ``toLower``/``toUpper`` and the ``resourceId`` family. Anything else
(``reference()``, ``copyIndex()``, ``uniqueString()``, ``if()``...) evaluates to :data:`UNRESOLVED`, so a
caller that needs a value to prove containment refuses rather than guesses.

Syntax per Microsoft's "Syntax and expressions in ARM templates": a string whose first character is
``[`` and last is ``]`` is an expression, ``[[`` escapes a literal ``[``, strings are single-quoted with
``''`` for a quote, and results can be followed by ``.property`` or ``[index]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "UNPARSEABLE",
    "UNRESOLVED",
    "Call",
    "ExprContext",
    "Unresolved",
    "calls_in",
    "eval_arg",
    "evaluate",
    "is_expression",
]

UNPARSEABLE = "<unparseable>"
"""The name of the :class:`Call` that :func:`calls_in` reports for an expression it cannot read: calls
hidden in it cannot be seen, so callers refuse it."""


class Unresolved:
    """The value cannot be known offline."""

    _instance: Unresolved | None = None

    def __new__(cls) -> Unresolved:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNRESOLVED"


UNRESOLVED = Unresolved()


@dataclass(frozen=True)
class ExprContext:
    """What the functions of one (nested) template see."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Parameter values (already unwrapped from ``{"value": ...}``; defaults filled in)."""
    variables: Mapping[str, Any] = field(default_factory=dict)
    subscription_id: str | None = None
    resource_group: str | None = None


@dataclass(frozen=True)
class Call:
    """A function call found in an expression: ``name`` as written, ``args`` as parsed trees."""

    name: str
    args: tuple[Any, ...]


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[[")


# --------------------------------------------------------------------------------------------- parsing

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<p>[(),.\[\]]))")


@dataclass(frozen=True)
class _Lit:
    value: Any


@dataclass(frozen=True)
class _Fn:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _Prop:
    base: Any
    key: Any  # a str (.name) or a tree ([expr])


class _ParseError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _ParseError(f"unexpected {text[pos:pos + 10]!r}")
        kind = m.lastgroup or "p"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise _ParseError(f"expected {value or 'more'}")
        self.i += 1
        return tok

    def parse(self) -> Any:
        tree = self.expr()
        if self.peek() is not None:
            raise _ParseError("trailing text")
        return tree

    def expr(self) -> Any:
        kind, text = self.take()
        node: Any
        if kind == "str":
            node = _Lit(text[1:-1].replace("''", "'"))
        elif kind == "num":
            node = _Lit(int(text))
        elif kind == "id":
            if text.lower() in ("true", "false") and (self.peek() or ("", ""))[1] != "(":
                node = _Lit(text.lower() == "true")
            else:
                # User-defined functions are called as namespace.name(...)
                namespaced = self.i + 2 < len(self.toks) and self.toks[self.i + 2][1] == "("
                if namespaced and (self.peek() or ("", ""))[1] == ".":
                    self.take(".")
                    text = f"{text}.{self.take()[1]}"
                self.take("(")
                args: list[Any] = []
                if (self.peek() or ("", ""))[1] != ")":
                    args.append(self.expr())
                    while (self.peek() or ("", ""))[1] == ",":
                        self.take(",")
                        args.append(self.expr())
                self.take(")")
                node = _Fn(text, tuple(args))
        else:
            raise _ParseError(f"unexpected {text!r}")
        while (tok := self.peek()) is not None and tok[1] in (".", "["):
            self.take()
            if tok[1] == ".":
                node = _Prop(node, self.take()[1])
            else:
                node = _Prop(node, self.expr())
                self.take("]")
        return node


def _parse(value: str) -> Any:
    """The tree of an expression string, or None when it is not valid ARM syntax."""
    try:
        return _Parser(value[1:-1]).parse()
    except _ParseError:
        return None


# ------------------------------------------------------------------------------------------ evaluation

_MAX_DEPTH = 32  # variables that refer to variables: deep enough for real templates, bounded for cycles


def evaluate(value: Any, ctx: ExprContext, _depth: int = 0) -> Any:
    """The value of a template value: expressions evaluated, literals as they are, UNRESOLVED when unknowable."""
    if _depth > _MAX_DEPTH:
        return UNRESOLVED
    if isinstance(value, str):
        if value.startswith("[["):
            return value[1:]
        if not is_expression(value):
            return value
        tree = _parse(value)
        return UNRESOLVED if tree is None else _eval(tree, ctx, _depth)
    if isinstance(value, Mapping):
        items = {k: evaluate(v, ctx, _depth + 1) for k, v in value.items()}
        return UNRESOLVED if any(v is UNRESOLVED for v in items.values()) else items
    if isinstance(value, list):
        values = [evaluate(v, ctx, _depth + 1) for v in value]
        return UNRESOLVED if any(v is UNRESOLVED for v in values) else values
    return value


def _scope_id(ctx: ExprContext) -> str | None:
    if ctx.subscription_id and ctx.resource_group:
        return f"/subscriptions/{ctx.subscription_id}/resourceGroups/{ctx.resource_group}"
    return f"/subscriptions/{ctx.subscription_id}" if ctx.subscription_id else None


def _resource_id(args: list[Any], ctx: ExprContext, *, level: str) -> Any:
    """``resourceId([subscriptionId], [resourceGroupName], type, name...)`` and its subscription / tenant
    variants. The first argument holding a '/' is the type; one argument before it is a resource group
    name, two are subscription and group (ARM's rule)."""
    if not all(isinstance(a, str) for a in args):
        return UNRESOLVED
    type_at = next((i for i, a in enumerate(args) if "/" in a), None)
    most = {"group": 2, "subscription": 1, "tenant": 0}[level]
    if type_at is None or type_at > most:
        return UNRESOLVED
    head, rtype, names = args[:type_at], args[type_at], args[type_at + 1 :]
    namespace, *types = rtype.split("/")
    if len(types) != len(names) or not names:
        return UNRESOLVED
    tail = f"providers/{namespace}/" + "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
    if level == "tenant":
        return f"/{tail}"
    if level == "subscription":
        sub = head[0] if head else ctx.subscription_id
        return UNRESOLVED if sub is None else f"/subscriptions/{sub}/{tail}"
    sub = head[0] if len(head) == 2 else ctx.subscription_id
    rg = head[-1] if head else ctx.resource_group
    if sub is None or rg is None:
        return UNRESOLVED
    return f"/subscriptions/{sub}/resourceGroups/{rg}/{tail}"


def _format(fmt: Any, args: list[Any]) -> Any:
    if not isinstance(fmt, str):
        return UNRESOLVED
    # Only plain {n}: .NET format specifiers ({0:D2}...) are not reproduced, so they stay unresolved.
    if re.search(r"\{\d+[:,][^}]*\}", fmt):
        return UNRESOLVED

    def one(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return str(args[index]) if index < len(args) else match.group(0)

    return re.sub(r"\{(\d+)\}", one, fmt)


def _extension_resource_id(args: list[Any]) -> Any:
    """``extensionResourceId(scopeId, type, name...)``."""
    if len(args) < 3 or not all(isinstance(a, str) for a in args):
        return UNRESOLVED
    namespace, *types = args[1].split("/")
    if len(types) != len(args) - 2:
        return UNRESOLVED
    pairs = "/".join(f"{t}/{n}" for t, n in zip(types, args[2:], strict=True))
    return f"{args[0]}/providers/{namespace}/{pairs}"


_FUNCTIONS: dict[str, Callable[[list[Any], ExprContext], Any]] = {
    "concat": lambda a, _c: "".join(map(str, a)) if all(isinstance(x, (str, int)) for x in a) else UNRESOLVED,
    "format": lambda a, _c: _format(a[0], a[1:]) if a else UNRESOLVED,
    # ASCII only: Python's Unicode case mapping differs from .NET's invariant one that ARM uses.
    "tolower": lambda a, _c: a[0].lower() if len(a) == 1 and isinstance(a[0], str) and a[0].isascii() else UNRESOLVED,
    "toupper": lambda a, _c: a[0].upper() if len(a) == 1 and isinstance(a[0], str) and a[0].isascii() else UNRESOLVED,
    "string": lambda a, _c: str(a[0]) if len(a) == 1 and isinstance(a[0], (str, int)) else UNRESOLVED,
    "resourceid": lambda a, c: _resource_id(a, c, level="group"),
    "subscriptionresourceid": lambda a, c: _resource_id(a, c, level="subscription"),
    "tenantresourceid": lambda a, c: _resource_id(a, c, level="tenant"),
    "extensionresourceid": lambda a, _c: _extension_resource_id(a),
}


def _eval(node: Any, ctx: ExprContext, depth: int) -> Any:
    if isinstance(node, _Lit):
        return node.value
    if isinstance(node, _Prop):
        base = _eval(node.base, ctx, depth)
        key = node.key if isinstance(node.key, str) else _eval(node.key, ctx, depth)
        if isinstance(base, Mapping) and isinstance(key, str):
            return base.get(key, UNRESOLVED)
        if isinstance(base, list) and isinstance(key, int) and -len(base) <= key < len(base):
            return base[key]
        return UNRESOLVED
    assert isinstance(node, _Fn)
    name = node.name.lower()
    if name in ("parameters", "variables") and len(node.args) == 1:
        key = _eval(node.args[0], ctx, depth)
        source = ctx.parameters if name == "parameters" else ctx.variables
        if not isinstance(key, str) or key not in source:
            return UNRESOLVED
        return evaluate(source[key], ctx, depth + 1) if name == "variables" else source[key]
    if name == "resourcegroup" and not node.args:
        if ctx.resource_group is None:
            return UNRESOLVED
        return {"name": ctx.resource_group, "id": _scope_id(ctx), "location": UNRESOLVED}
    if name == "subscription" and not node.args:
        if ctx.subscription_id is None:
            return UNRESOLVED
        return {"subscriptionId": ctx.subscription_id, "id": f"/subscriptions/{ctx.subscription_id}"}
    fn = _FUNCTIONS.get(name)
    if fn is None:
        return UNRESOLVED
    args = [_eval(a, ctx, depth) for a in node.args]
    if any(a is UNRESOLVED for a in args):
        return UNRESOLVED
    try:
        return fn(args, ctx)
    except (IndexError, ValueError, TypeError):
        return UNRESOLVED


# --------------------------------------------------------------------------------------------- calls


def _walk_calls(node: Any, ctx: ExprContext, depth: int, seen: set[str]) -> Iterator[tuple[Call, ExprContext]]:
    if isinstance(node, _Prop):
        yield from _walk_calls(node.base, ctx, depth, seen)
        if not isinstance(node.key, str):
            yield from _walk_calls(node.key, ctx, depth, seen)
    elif isinstance(node, _Fn):
        yield Call(node.name, node.args), ctx
        for a in node.args:
            yield from _walk_calls(a, ctx, depth, seen)
        if node.name.lower() == "variables" and len(node.args) == 1:
            key = _eval(node.args[0], ctx, depth)
            # A function hidden in a variable is still called where the variable is used.
            if isinstance(key, str) and key in ctx.variables and key not in seen and depth < _MAX_DEPTH:
                yield from calls_in(ctx.variables[key], ctx, _depth=depth + 1, _seen=seen | {key})


def calls_in(
    value: Any, ctx: ExprContext, *, _depth: int = 0, _seen: frozenset[str] | set[str] = frozenset()
) -> Iterator[tuple[Call, ExprContext]]:
    """Every function call in ``value`` (any depth of objects and lists), following ``variables()``."""
    if isinstance(value, str):
        if is_expression(value):
            tree = _parse(value)
            if tree is None:
                yield Call(UNPARSEABLE, (_Lit(value),)), ctx
            else:
                yield from _walk_calls(tree, ctx, _depth, set(_seen))
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from calls_in(v, ctx, _depth=_depth, _seen=_seen)
    elif isinstance(value, list):
        for v in value:
            yield from calls_in(v, ctx, _depth=_depth, _seen=_seen)


def eval_arg(call: Call, index: int, ctx: ExprContext) -> Any:
    """The value of one argument of a found call (UNRESOLVED when absent or unknowable)."""
    if index >= len(call.args):
        return UNRESOLVED
    return _eval(call.args[index], ctx, 0)
