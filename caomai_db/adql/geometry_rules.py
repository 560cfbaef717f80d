"""ADQL geometry: queryparser's pg_sphere spellings become the ``caomai.adql_*`` SQL functions
(sql/0002/geometry.sql; pg_sphere-backed where the database has it). A mixin of
:class:`.rewrite.Rewriter`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pglast import ast

from .parse import ADQLError
from .sqltree import _deparse, _expr_template, _funcname, _number, _opname, _string

if TYPE_CHECKING:
    from .rewrite import Scope

GEOMETRY_FUNCTIONS = {
    "spoint",
    "scircle",
    "sbox",
    "spoly",
    "spoint_dwithin",
    "square_degrees",
    "area",
    "coord1",
    "coord2",
}
GEOMETRY_OPERATORS = {"@": ("adql_contains", 1), "!@": ("adql_contains", 0)}
GEOMETRY_OPERATORS |= {"&&": ("adql_intersects", 1), "!&&": ("adql_intersects", 0)}


class GeometryRules:
    """POINT, CIRCLE, BOX, POLYGON, CONTAINS, INTERSECTS, DISTANCE, COORD1/2, AREA."""

    # -- geometry --------------------------------------------------------------------------

    def geometry_predicate(self, node: ast.A_Expr, scope: Scope, as_value: bool = False):  # noqa: ANN201
        fn, want = GEOMETRY_OPERATORS[_opname(node)]
        a = self.geometry_value(node.lexpr, scope)
        b = self.geometry_value(node.rexpr, scope)
        if as_value:
            return _expr_template(f"caomai.{fn}($1, $2)", a, b)
        return _expr_template(f"caomai.{fn}($1, $2) = {want}", a, b)

    def geometry_value(self, node: ast.Node, scope: Scope) -> ast.Node:
        if isinstance(node, ast.FuncCall) and _funcname(node) in GEOMETRY_FUNCTIONS:
            geo = self.geometry_function(node, scope)
            if geo is not None:
                return geo
        return self.expr(node, scope)

    def _degrees(self, node: ast.Node, scope: Scope) -> ast.Node:
        """queryparser wrote RADIANS(x) around every coordinate: x, in degrees."""
        if isinstance(node, ast.FuncCall) and _funcname(node) == "radians" and len(node.args) == 1:
            return self.expr(node.args[0], scope)
        return _expr_template("degrees($1)", self.expr(node, scope))

    def geometry_function(self, node: ast.FuncCall, scope: Scope) -> ast.Node | None:
        name = _funcname(node)
        args = list(node.args or ())
        if name == "spoint" and len(args) == 2:
            return _expr_template(
                "caomai.adql_point($1, $2)",
                self._degrees(args[0], scope),
                self._degrees(args[1], scope),
            )
        if name == "scircle" and len(args) == 2:
            return _expr_template(
                "caomai.adql_circle($1, $2)",
                self.geometry_value(args[0], scope),
                self._degrees(args[1], scope),
            )
        if name == "sbox" and len(args) == 2:
            corners = [self._point_constants(a) for a in args]
            (ra1, de1), (ra2, de2) = corners
            return _expr_template(
                f"caomai.adql_box({(ra1 + ra2) / 2!r}, {(de1 + de2) / 2!r},"
                f" {ra2 - ra1!r}, {de2 - de1!r})"
            )
        if name == "spoly" and len(args) == 1 and _string(args[0]) is not None:
            pairs = re.findall(r"\(([^,()]+)d,([^,()]+)d\)", _string(args[0]))
            try:
                values = [float(v) for pair in pairs for v in pair]
            except ValueError:
                raise ADQLError(
                    "POLYGON vertices must be numbers here (columns or expressions are not"
                    " supported inside POLYGON)"
                ) from None
            if len(values) < 6:
                raise ADQLError("a POLYGON needs at least three vertices")
            array = ", ".join(repr(v) for v in values)
            return _expr_template(f"caomai.adql_polygon(ARRAY[{array}]::float8[])")
        if name == "spoint_dwithin" and len(args) == 3:
            return _expr_template(
                "caomai.adql_distance($1, $2) <= $3",
                self.geometry_value(args[0], scope),
                self.geometry_value(args[1], scope),
                self._degrees(args[2], scope),
            )
        if name == "square_degrees" and len(args) == 1:
            inner = args[0]
            if (
                isinstance(inner, ast.FuncCall)
                and _funcname(inner) == "area"
                and len(inner.args) == 1
            ):
                return _expr_template(
                    "caomai.adql_area($1)", self.geometry_value(inner.args[0], scope)
                )
        if name in ("coord1", "coord2") and len(args) == 1:
            return _expr_template(f"caomai.adql_{name}($1)", self.geometry_value(args[0], scope))
        if name == "degrees" and len(args) == 1:
            inner = args[0]
            if isinstance(inner, ast.A_Expr) and _opname(inner) == "<->":
                return _expr_template(
                    "caomai.adql_distance($1, $2)",
                    self.geometry_value(inner.lexpr, scope),
                    self.geometry_value(inner.rexpr, scope),
                )
            return None
        if name in GEOMETRY_FUNCTIONS:
            raise ADQLError(f"cannot translate the geometry expression {_deparse(node)}")
        return None

    @staticmethod
    def _point_constants(node: ast.Node) -> tuple[float, float]:
        if isinstance(node, ast.FuncCall) and _funcname(node) == "spoint" and len(node.args) == 2:
            vals = []
            for a in node.args:
                if isinstance(a, ast.FuncCall) and _funcname(a) == "radians" and len(a.args) == 1:
                    v = _number(a.args[0])
                    if v is not None:
                        vals.append(v)
            if len(vals) == 2:
                return vals[0], vals[1]
        raise ADQLError("BOX takes numbers for its centre and size")
