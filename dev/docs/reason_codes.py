"""Every refusal reason code the package can emit, collected from its source by walking the AST.

A reason reaches people in five shapes, and each is collected:

1. the first argument of a refusal whose constructor takes the reason first: ``Refusal`` itself and every
   subclass that keeps its ``__init__`` (``TokenRejected("invalid_aud", ...)``); the argument at the place of a
   ``reason`` or ``rule`` field of a dataclass (the ``Refused`` result, the ARM ``Violation``): found by
   looking at the classes, not by a list;
2. a literal passed to a parameter named ``reason`` or ``rule``, by keyword (``audit.emit(...,
   reason="not_permitted")``, ``PreflightRefused(msg, reason="outside_scope")``) or by position
   (``refuse("no_fence", ...)`` where ``refuse``'s first parameter is ``rule``);
3. the default of such a parameter (``reason: str = "preflight_refused"``);
4. a literal a refusal subclass hands to ``super().__init__`` or assigns to ``self.reason``;
5. a literal assigned to a local named ``reason`` (``reason = err.reason if ... else "directory_unavailable"``).

An f-string becomes a pattern with ``*`` for each placeholder (``f"idp_error_{error}"`` -> ``idp_error_*``);
the troubleshooting page writes it ``idp_error_<error>``. Only snake_case literals count as codes, so a
message that happens to sit in one of those places is not taken for one.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

__all__ = ["PACKAGE", "Code", "collect", "normalise_pattern"]

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_identity_provider"
_CODE = re.compile(r"^[a-z][a-z0-9_*]*$")
_NAMES = ("reason", "rule")


@dataclass(frozen=True, order=True)
class Code:
    """One reason code (or pattern) and the first place it was found (``path:line``)."""

    code: str
    where: str


def normalise_pattern(text: str) -> str:
    """``idp_error_<error>`` (as the docs write it) and ``idp_error_*`` (as collected) compare equal."""
    return re.sub(r"<[^>]+>", "*", text)


def _literal(node: ast.AST | None) -> str | None:
    """The code a constant or f-string stands for, or None when it is neither or not code-shaped."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(str(v.value) if isinstance(v, ast.Constant) else "*" for v in node.values)
    else:
        return None
    return text if _CODE.match(text) and text.strip("*_") else None


def _strings_in(node: ast.AST) -> Iterator[str]:
    """The literal codes an expression can evaluate to: itself, both arms of ``a if c else b``, the operands
    of ``x or "default"``. Not the arguments of calls in it (``d.get("key")``), nor the inside of f-strings."""
    if isinstance(node, ast.IfExp):
        yield from _strings_in(node.body)
        yield from _strings_in(node.orelse)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _strings_in(value)
    else:
        code = _literal(node)
        if code is not None:
            yield code


def _callee(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _is_super_init(node: ast.AST) -> TypeGuard[ast.Call]:
    """``super().__init__(...)``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "__init__"
        and isinstance(node.func.value, ast.Call)
        and _callee(node.func.value) == "super"
    )


def _base_names(cls: ast.ClassDef) -> list[str]:
    out = []
    for base in cls.bases:
        if isinstance(base, ast.Name):
            out.append(base.id)
        elif isinstance(base, ast.Attribute):
            out.append(base.attr)
    return out


def _own_init(cls: ast.ClassDef) -> ast.FunctionDef | None:
    return next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)


def _field_positions(cls: ast.ClassDef) -> list[int]:
    """Positions of the annotated fields named reason/rule of a dataclass-looking class (its constructor's
    positional arguments, in declaration order; ``ClassVar`` annotations are not fields)."""
    fields = [
        n.target.id
        for n in cls.body
        if isinstance(n, ast.AnnAssign)
        and isinstance(n.target, ast.Name)
        and "ClassVar" not in ast.unparse(n.annotation)
    ]
    return [index for index, name in enumerate(fields) if name in _NAMES]


class _Index:
    """What the whole package defines: refusal classes, and which callables take a reason where."""

    def __init__(self, trees: dict[Path, ast.Module]) -> None:
        classes = {n.name: n for tree in trees.values() for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        refusals = {"Refusal"}
        changed = True
        while changed:  # subclasses of subclasses, in any file order
            changed = False
            for name, cls in classes.items():
                if name not in refusals and any(b in refusals for b in _base_names(cls)):
                    refusals.add(name)
                    changed = True
        self.refusals = refusals
        # Callable name -> positions of a parameter named reason/rule (functions, methods, __init__s).
        self.positions: dict[str, set[int]] = {}
        for name in refusals:
            if self._reason_first(name, classes):
                self.positions.setdefault(name, set()).add(0)
        for name, cls in classes.items():
            init = _own_init(cls)
            if init is None:
                self.positions.setdefault(name, set()).update(_field_positions(cls))
            else:
                self._add(name, init, skip_self=True)
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "__init__":
                    is_method = bool(node.args.args) and node.args.args[0].arg in ("self", "cls")
                    self._add(node.name, node, skip_self=is_method)

    def _add(self, name: str, fn: ast.FunctionDef | ast.AsyncFunctionDef, *, skip_self: bool) -> None:
        params = fn.args.posonlyargs + fn.args.args
        if skip_self and params:
            params = params[1:]
        for index, param in enumerate(params):
            if param.arg in _NAMES:
                self.positions.setdefault(name, set()).add(index)

    @staticmethod
    def _reason_first(name: str, classes: dict[str, ast.ClassDef]) -> bool:
        """Whether the class inherits ``Refusal.__init__(reason, message)`` unchanged."""
        seen: set[str] = set()
        while name in classes and name not in seen and name != "Refusal":
            seen.add(name)
            cls = classes[name]
            if _own_init(cls) is not None:
                return False
            name = next((b for b in _base_names(cls) if b in classes or b == "Refusal"), "Refusal")
        return True


def _codes_in(tree: ast.Module, index: _Index) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = _callee(node)
            for position in index.positions.get(callee or "", ()):
                if position < len(node.args):
                    code = _literal(node.args[position])
                    if code is not None:
                        yield code, node.lineno
            for keyword in node.keywords:
                if keyword.arg in _NAMES:
                    for code in _strings_in(keyword.value):
                        yield code, node.lineno
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            defaults = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
            defaults += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
            for param, default in defaults:
                code = _literal(default) if param.arg in _NAMES else None
                if code is not None:
                    yield code, node.lineno
        elif isinstance(node, ast.ClassDef) and node.name in index.refusals:
            for sub in ast.walk(node):
                if _is_super_init(sub) and sub.args:
                    code = _literal(sub.args[0])
                    if code is not None:
                        yield code, sub.lineno
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = any(
                (isinstance(t, ast.Name) and t.id == "reason") or (isinstance(t, ast.Attribute) and t.attr == "reason")
                for t in targets
            )
            if named and node.value is not None:
                for code in _strings_in(node.value):
                    yield code, node.lineno


def collect(package: Path = PACKAGE) -> dict[str, Code]:
    """Every code (or ``*`` pattern) the package's source can emit, with where it was first seen."""
    trees = {path: ast.parse(path.read_text(), str(path)) for path in sorted(package.rglob("*.py"))}
    index = _Index(trees)
    found: dict[str, Code] = {}
    for path, tree in trees.items():
        where = path.relative_to(package.parent)
        for code, line in _codes_in(tree, index):
            found.setdefault(code, Code(code, f"{where}:{line}"))
    return found


if __name__ == "__main__":  # python -m dev.docs.reason_codes: the list, for writing the troubleshooting page
    for item in sorted(collect().values()):
        print(f"{item.code:45} {item.where}")
