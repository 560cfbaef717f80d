"""Small helpers over pglast trees: build an expression from a SQL template, read literals,
name things in error messages. Shared by the rewriter and its rule sets."""

from __future__ import annotations

from pglast import ast, enums, parse_sql
from pglast.stream import RawStream

from ..config import N_NODES


def _deparse(node: ast.Node) -> str:
    return RawStream()(node)


def _expr_template(sql: str, *args: ast.Node) -> ast.Node:
    """An expression from SQL text in which $1..$n stand for the given nodes."""
    node = parse_sql(f"SELECT {sql}")[0].stmt.targetList[0].val
    return _substitute(node, args)


def _substitute(node, args):  # noqa: ANN001, ANN202 - any pglast value
    if isinstance(node, ast.ParamRef):
        return args[node.number - 1]
    if isinstance(node, tuple | list):
        return type(node)(_substitute(n, args) for n in node)
    if isinstance(node, ast.Node):
        for name in node.__slots__:
            value = getattr(node, name)
            if isinstance(value, ast.Node | tuple | list):
                setattr(node, name, _substitute(value, args))
    return node


def _string(node: ast.Node) -> str | None:
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return node.val.sval
    return None


def _number(node: ast.Node) -> float | None:
    """Value of a numeric literal (also a negated one)."""
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer | ast.Float):
        return float(node.val.ival if isinstance(node.val, ast.Integer) else node.val.fval)
    if (
        isinstance(node, ast.A_Expr)
        and node.kind == enums.A_Expr_Kind.AEXPR_OP
        and node.lexpr is None
        and _opname(node) in ("-", "+")
    ):
        v = _number(node.rexpr)
        if v is not None:
            return -v if _opname(node) == "-" else v
    return None


def _integer(node: ast.Node) -> int | None:
    v = _number(node)
    if v is None or not float(v).is_integer():
        return None
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Float):
        return None
    return int(v)


def _opname(node: ast.A_Expr) -> str:
    return node.name[-1].sval if node.name else ""


def _funcname(node: ast.FuncCall) -> str:
    return node.funcname[-1].sval.lower()


def _node_list(text: str) -> list[int] | None:
    """'12,13,40' or ranges '100-105' -> sorted distinct nodes 0..N_NODES-1; None when the list
    is not plainly valid (the database's parse_node_list then says what is wrong)."""
    out: set[int] = set()
    for item in text.split(","):
        lo, sep, hi = item.strip().partition("-")
        if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
            return None
        a, b = int(lo), int(hi) if sep else int(lo)
        if a > b or b >= N_NODES or b - a > N_NODES:
            return None
        out.update(range(a, b + 1))
    return sorted(out) or None


def _literal_sql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _describe(node: ast.Node) -> str:
    s = _string(node)
    if s is not None:
        return f"the string {_literal_sql(s)}"
    v = _number(node)
    if v is not None:
        return f"the number {int(v) if float(v).is_integer() else v}"
    try:
        return _deparse(node)
    except Exception:  # noqa: BLE001 - only for a message
        return type(node).__name__


def _and_list(node: ast.Node | None) -> list[ast.Node]:
    if node is None:
        return []
    if isinstance(node, ast.BoolExpr) and node.boolop == enums.BoolExprType.AND_EXPR:
        return list(node.args)
    return [node]
