"""The mutants of one Python module: small edits a broken check would look like.

Each mutant replaces the source text of one AST node and leaves every other byte of the file
as it was (line numbers, comments), so a mutated file reads like the original with one edit.

Operators, each named in the report:

- `compare`: a comparison operator flipped to its negation and to its boundary neighbour
  (`<` → `>=`, `<` → `<=`; `==` ↔ `!=`; `in` ↔ `not in`; `is` ↔ `is not`);
- `negate`: `not` put in front of an `if` / `while` / `assert` / conditional-expression /
  comprehension condition or a boolean `return`, or taken away where it is already there;
- `boolop`: `and` ↔ `or`;
- `raise`: a `raise` statement replaced by `pass`;
- `return`: `return X` replaced by `return None` (`True` ↔ `False` for constant booleans);
- `constant`: an integer constant plus one, a boolean constant flipped;
- `member`: one member taken out of a set, list, tuple or dict literal (the tables: allowed
  methods, scope sets, exception tuples).

A negation is not added where another operator already yields the same program (a single
comparison, whose operator flip is its negation), so no program is counted twice.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

__all__ = ["Mutant", "apply", "mutants_of"]

_FLIPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.GtE, ast.LtE),
    ast.LtE: (ast.Gt, ast.Lt),
    ast.Gt: (ast.LtE, ast.GtE),
    ast.GtE: (ast.Lt, ast.Gt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
_MAX_SHOWN = 90
_SHORT = 12


@dataclass(frozen=True)
class Mutant:
    """One edit: bytes [start, end) of the source become `replacement`."""

    operator: str
    line: int
    start: int
    end: int
    original: str
    replacement: str
    # For a short edit (a constant, a bare name), the whole line before and after: `1 -> 2`
    # alone does not say which 1.
    shown: tuple[str, str] | None = None

    def describe(self) -> str:
        before, after = self.shown or (self.original, self.replacement)
        return f"{_short(before)} -> {_short(after)}"


def apply(source: str, mutant: Mutant) -> str:
    data = source.encode("utf-8")
    return (data[: mutant.start] + mutant.replacement.encode("utf-8") + data[mutant.end :]).decode("utf-8")


def mutants_of(source: str) -> list[Mutant]:
    """Every mutant of `source` that compiles, in source order, without duplicate programs."""
    tree = ast.parse(source)
    finder = _Finder(source)
    finder.visit(tree)
    seen: set[str] = set()
    out: list[Mutant] = []
    for mutant in sorted(finder.found, key=lambda m: (m.start, m.end, m.operator, m.replacement)):
        mutated = apply(source, mutant)
        try:
            program = ast.dump(ast.parse(mutated))
        except SyntaxError:
            continue
        if program not in seen:
            seen.add(program)
            out.append(mutant)
    return out


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_SHOWN else flat[: _MAX_SHOWN - 1] + "…"


class _Finder(ast.NodeVisitor):
    def __init__(self, source: str) -> None:
        data = source.encode("utf-8")
        self._line_starts = [0]
        for index, byte in enumerate(data):
            if byte == 0x0A:
                self._line_starts.append(index + 1)
        self._data = data
        self.found: list[Mutant] = []

    # --- spans -----------------------------------------------------------------------------

    def _span(self, node: ast.expr | ast.stmt) -> tuple[int, int]:
        assert node.end_lineno is not None
        assert node.end_col_offset is not None
        start = self._line_starts[node.lineno - 1] + node.col_offset
        end = self._line_starts[node.end_lineno - 1] + node.end_col_offset
        return start, end

    def _text(self, start: int, end: int) -> str:
        return self._data[start:end].decode("utf-8")

    def _add(self, operator: str, node: ast.expr | ast.stmt, replacement: str) -> None:
        start, end = self._span(node)
        original = self._text(start, end)
        shown = None
        if len(original) < _SHORT and node.end_lineno == node.lineno:
            line_start = self._line_starts[node.lineno - 1]
            line_end = self._data.find(b"\n", line_start)
            line_end = len(self._data) if line_end < 0 else line_end
            before, after = self._text(line_start, start), self._text(end, line_end).split("  #")[0]
            shown = ((before + original + after).strip(), (before + replacement + after).strip())
        self.found.append(Mutant(operator, node.lineno, start, end, original, replacement, shown))

    def _add_expr(self, operator: str, node: ast.expr, new: ast.expr) -> None:
        # Parenthesized: the replacement binds as the original did, wherever it stands.
        self._add(operator, node, f"({ast.unparse(new)})")

    # --- what is never mutated -------------------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_function(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # Annotations and decorators (`@dataclass(frozen=True)`, `@lru_cache(maxsize=…)`) are
        # declarations, not checks; default values are behaviour.
        for default in [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]:
            self.visit(default)
        for statement in node.body:
            self.visit(statement)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for statement in node.body:
            self.visit(statement)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "field":
            return  # a dataclass field's options (`init=False`, `repr=False`): declarations too
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._visit_value(node.target, node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1:
            self._visit_value(node.targets[0], node.value)
            return
        self.generic_visit(node)

    def _visit_value(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name) and target.id == "__all__":
            return  # the export list: no program behaviour
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            for element in value.elts:  # `a, b = x, y`: an arity change, not a mutant
                self.visit(element)
            return
        self.visit(value)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.visit(node.value)
        if not _is_type_expression(node):
            self.visit(node.slice)

    # --- operators --------------------------------------------------------------------------

    def visit_Compare(self, node: ast.Compare) -> None:
        for index, op in enumerate(node.ops):
            for new_op in _FLIPS.get(type(op), ()):
                ops = list(node.ops)
                ops[index] = new_op()
                self._add_expr("compare", node, ast.Compare(node.left, ops, node.comparators))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add_expr("boolop", node, ast.BoolOp(other, node.values))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self._add_expr("negate", node, node.operand)
        operand = node.operand
        if isinstance(node.op, ast.USub) and isinstance(operand, ast.Constant) and type(operand.value) is int:
            self._add("constant", node, repr(1 - operand.value))  # `-1` is one constant: -1 -> 0
            return
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        self._negate(node.test)
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        self._negate(node.test)
        self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> None:
        self._negate(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._negate(node.test)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        for condition in node.ifs:
            self._negate(condition)
        self.generic_visit(node)

    def _negate(self, test: ast.expr) -> None:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return  # taking the `not` away is visit_UnaryOp's mutant
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            return  # the operator flip is this negation
        self._add_expr("negate", test, ast.UnaryOp(ast.Not(), test))

    def visit_Raise(self, node: ast.Raise) -> None:
        self._add("raise", node, "pass")
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        if value is None or (isinstance(value, ast.Constant) and value.value is None):
            return
        if isinstance(value, ast.Constant) and isinstance(value.value, bool):
            self.visit(value)  # flipped by visit_Constant
            return
        self._add("return", node, "return None")
        if _is_boolean(value):
            self._negate(value)
        self.visit(value)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self._add("constant", node, str(not value))
        elif isinstance(value, int):
            self._add("constant", node, repr(value + 1))

    def visit_Set(self, node: ast.Set) -> None:
        self._members(node, node.elts)
        self.generic_visit(node)

    def visit_List(self, node: ast.List) -> None:
        if isinstance(node.ctx, ast.Load):
            self._members(node, node.elts)
        self.generic_visit(node)

    def visit_Tuple(self, node: ast.Tuple) -> None:
        if isinstance(node.ctx, ast.Load):
            self._members(node, node.elts)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        if len(node.keys) >= 2:
            for index in range(len(node.keys)):
                keys = node.keys[:index] + node.keys[index + 1 :]
                values = node.values[:index] + node.values[index + 1 :]
                self._add_expr("member", node, ast.Dict(keys, values))
        self.generic_visit(node)

    def _members(self, node: ast.Set | ast.List | ast.Tuple, elements: list[ast.expr]) -> None:
        if len(elements) < 2 or any(isinstance(e, ast.Starred) for e in elements):
            return
        for index in range(len(elements)):
            rest = elements[:index] + elements[index + 1 :]
            if isinstance(node, ast.Set):
                new: ast.expr = ast.Set(rest)
            elif isinstance(node, ast.List):
                new = ast.List(rest, ast.Load())
            else:
                new = ast.Tuple(rest, ast.Load())
            self._add_expr("member", node, new)


def _is_boolean(value: ast.expr) -> bool:
    if isinstance(value, (ast.Compare, ast.BoolOp)):
        return True
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not):
        return True
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id in ("bool", "isinstance", "any", "all", "callable", "hasattr")
    )


def _is_type_expression(node: ast.Subscript) -> bool:
    # `dict[str, int]`, `tuple[str, ...]`, `Callable[[bytes], X]` outside annotations.
    return isinstance(node.value, ast.Name) and node.value.id in {
        "dict",
        "list",
        "set",
        "frozenset",
        "tuple",
        "type",
        "Callable",
        "Final",
        "Mapping",
        "Iterable",
        "Awaitable",
        "Literal",
        "Optional",
        "Union",
    }
