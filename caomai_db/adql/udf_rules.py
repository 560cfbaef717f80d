"""The rewrite rules of caomai's three functions (``udfs.py`` names each one's rule):
``similarity`` (fp_similar, index-friendly), ``node_set`` (in_node), ``object_nodes``
(has_object_node). A mixin of :class:`.rewrite.Rewriter`, whose walk calls them."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from pglast import ast

from ..access import public
from . import udfs
from .parse import ADQLError
from .sqltree import (
    _describe,
    _expr_template,
    _funcname,
    _integer,
    _literal_sql,
    _node_list,
    _number,
    _opname,
    _string,
)

if TYPE_CHECKING:
    from .rewrite import Ref, Scope


class UdfRules:
    """fp_similar, in_node and has_object_node as SQL the indexes can answer."""

    def _args(self, node: ast.FuncCall, udf: udfs.UDF) -> list[ast.Node]:
        args = list(node.args or ())
        if node.agg_star or node.agg_distinct:
            raise ADQLError(f"{udf.name}: * and DISTINCT make no sense here; use {udf.usage()}")
        if not udf.required <= len(args) <= len(udf.params):
            raise ADQLError(
                f"{_funcname(node)} takes {udf.required}"
                + (f" to {len(udf.params)}" if len(udf.params) > udf.required else "")
                + f" arguments, {len(args)} given: {udf.usage()}"
            )
        return args

    def _text_arg(self, node: ast.Node, udf: udfs.UDF, param: udfs.Param) -> str | None:
        """A string literal's value; None for another text expression; errors for numbers."""
        s = _string(node)
        if s is not None:
            return s
        if _number(node) is not None:
            raise ADQLError(
                f"{udf.name}: {param.name} must be a string ({param.description}), got"
                f" {_describe(node)}; quote it: {_literal_sql(_describe(node).split()[-1])}"
            )
        return None

    def _int_arg(self, node: ast.Node, udf: udfs.UDF, param: udfs.Param) -> int | None:
        v = _integer(node)
        if v is not None:
            if v < 0:
                raise ADQLError(f"{udf.name}: {param.name} cannot be negative, got {v}")
            return v
        if _string(node) is not None or _number(node) is not None:
            raise ADQLError(
                f"{udf.name}: {param.name} must be a whole number ({param.description}),"
                f" got {_describe(node)}"
            )
        return None

    def _check_ref(self, udf: udfs.UDF, value: str, node_list: bool) -> None:
        """Bound the work a literal reference or node list gives the database (parsed once per
        query, and by has_object_node once per row)."""
        refs = value.count("|") + 1
        if refs > self.limits.max_refs:
            raise ADQLError(
                f"{udf.name}: the reference names {refs} images; this service accepts at most"
                f" {self.limits.max_refs} reference images separated by |"
            )
        items = value.count(",") + 1
        if node_list and items > self.limits.max_node_list_items:
            raise ADQLError(
                f"{udf.name}: the node list has {items} items; this service accepts node lists"
                f" of at most {self.limits.max_node_list_items} items (ranges such as"
                " '100-105' count as one)"
            )

    def _fp_column(
        self, node: ast.Node, udf: udfs.UDF, scope: Scope
    ) -> tuple[str | None, str | None]:
        """Check the first argument of fp_similar; returns the alias of its table and which
        vector column it is ('fp' or 'image_vec'; None when the name cannot tell, e.g. a
        subquery's column under another name: then the SQL function tells it by length)."""
        if not isinstance(node, ast.ColumnRef):
            raise ADQLError(
                f"{udf.name}: the first argument must be a fingerprint column of"
                f" caomai.fingerprint ({udfs.VECTOR_COLUMNS_DOC}), got {_describe(node)}"
            )
        names = [f.sval if isinstance(f, ast.String) else None for f in node.fields]
        named = (names[-1] or "").lower()
        which = named if named in udfs.VECTOR_COLUMNS else None
        candidates: list[Ref] = []
        if len(names) == 1:
            candidates = [
                r for r in scope.all_refs() if r.table is not None and r.table.column(names[0])
            ]
        elif len(names) >= 2:
            ref = scope.find(names[-2]) or self._ref_for_table(
                names[0] if len(names) == 3 else None, names[-2], scope, required=False
            )
            candidates = [ref] if ref is not None else []
        for ref in candidates:
            if ref.table is None:
                return ref.alias, which
            col = ref.table.column(names[-1])
            if col is not None:
                if col.type_oid != self.catalog.vector_oid:
                    raise ADQLError(
                        f"{udf.name}: the first argument must be a fingerprint column of"
                        f" caomai.fingerprint ({udfs.VECTOR_COLUMNS_DOC});"
                        f" {ref.table.name}.{col.name} is not one"
                    )
                return ref.alias, which
        return None, which

    def similarity(self, node: ast.FuncCall, scope: Scope) -> ast.Node:
        """fp_similar as a value: 1 - cosine distance to the reference computed once."""
        udf = udfs.BY_NAME["fp_similar"]
        fp, ref = self._args(node, udf)
        _, column = self._fp_column(fp, udf, scope)
        ref_value = self._text_arg(ref, udf, udf.params[1])
        if ref_value is not None:
            self._check_ref(udf, ref_value, node_list=False)
        fp = self.expr(fp, scope)
        if ref_value is None or column is None:
            return _expr_template("caomai.fp_similar($1, $2)", fp, self.expr(ref, scope))
        self.checks.append(("SELECT caomai.ref_vector(%s, %s) IS NOT NULL", (ref_value, column)))
        return _expr_template(
            "greatest(0.0::float8, least(1.0::float8, 1.0::float8 - ($1 <=> "
            f"(SELECT caomai.ref_vector({_literal_sql(ref_value)}, '{column}')))))",
            fp,
        )

    def distance(self, node: ast.FuncCall, scope: Scope) -> tuple[ast.Node | None, str | None]:
        """``col <=> (SELECT caomai.ref_vector(ref, col))`` for a literal reference on a named
        vector column (fp or image_vec), else None."""
        udf = udfs.BY_NAME["fp_similar"]
        fp, ref = self._args(node, udf)
        alias, column = self._fp_column(fp, udf, scope)
        ref_value = self._text_arg(ref, udf, udf.params[1])
        if ref_value is None or column is None:
            return None, None
        self._check_ref(udf, ref_value, node_list=False)
        self.checks.append(("SELECT caomai.ref_vector(%s, %s) IS NOT NULL", (ref_value, column)))
        fp = self.expr(copy.deepcopy(fp), scope)
        return (
            _expr_template(
                f"$1 <=> (SELECT caomai.ref_vector({_literal_sql(ref_value)}, '{column}'))", fp
            ),
            alias,
        )

    def similarity_bound(self, node: ast.A_Expr, scope: Scope) -> ast.Node | None:
        """``fp_similar(fp, ref) > t`` -> ``fp <=> ref < 1 - t`` (and the other three)."""
        flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
        op = _opname(node)
        fn, other = node.lexpr, node.rexpr
        if not isinstance(fn, ast.FuncCall):
            fn, other, op = node.rexpr, node.lexpr, flip[op]
        if not isinstance(fn, ast.FuncCall):
            return None
        udf = udfs.lookup(_funcname(fn))
        t = _number(other)
        if udf is None or udf.rewrite != "similarity" or t is None or not 0.0 <= t <= 1.0:
            return None
        if t == 0.0 and op in (">=", "<"):
            # sim is clamped at 0 and an image vector's cosine distance can pass 1: sim >= 0
            # holds for every row, d <= 1 does not; leave these two to the value itself
            return None
        distance, _ = self.distance(fn, scope)
        if distance is None:
            return None
        # sim = max(0, 1 - d) with d in [0, 2]: for 0 <= t <= 1, sim > t <=> d < 1 - t
        return _expr_template(f"$1 {flip[op]} {1.0 - t!r}::float8", distance)

    def node_set(
        self, node: ast.FuncCall, scope: Scope, predicate: int | None = None
    ) -> ast.Node | None:
        """in_node: the reference's node set once; ``in_node(...) = 1`` as ``col = ANY(set)``."""
        udf = udfs.BY_NAME["in_node"]
        args = self._args(node, udf)
        ref = self._text_arg(args[1], udf, udf.params[1])
        radius = self._int_arg(args[2], udf, udf.params[2]) if len(args) == 3 else 0
        if ref is not None:
            self._check_ref(udf, ref, node_list=True)
        column = self.expr(args[0], scope)
        if ref is None or radius is None:
            if predicate is not None:
                return None
            rest = tuple(self.expr(a, scope) for a in args[1:])
            return _expr_template(
                "caomai.in_node(" + ", ".join(f"${i + 1}" for i in range(len(args))) + ")",
                column,
                *rest,
            )
        self.checks.append(("SELECT caomai.ref_nodes(%s, %s) IS NOT NULL", (ref, radius)))
        nodes = f"(SELECT caomai.ref_nodes({_literal_sql(ref)}, {radius}))::integer[]"
        if predicate == 1:
            return _expr_template(f"$1 = ANY({nodes})", column)
        if predicate == 0:
            return _expr_template(f"NOT coalesce($1 = ANY({nodes}), false)", column)
        return _expr_template(f"coalesce(($1 = ANY({nodes}))::integer, 0)", column)

    def object_nodes(self, node: ast.FuncCall, scope: Scope) -> ast.Node:
        """has_object_node: with a literal node list (and count), the sum of the listed counts
        in plain SQL over the list parsed once here, read from the plane's fingerprint row (a
        primary-key lookup); the SQL function re-parses the list in PL/pgSQL for every row.
        Otherwise the function itself. Same answers either way (tests/test_tap_service.py)."""
        udf = udfs.BY_NAME["has_object_node"]
        args = self._args(node, udf)
        nodes = self._text_arg(args[1], udf, udf.params[1])
        min_count = self._int_arg(args[2], udf, udf.params[2]) if len(args) == 3 else 1
        if nodes is not None:
            self._check_ref(udf, nodes, node_list=True)
            self.checks.append(("SELECT caomai.parse_node_list(%s) IS NOT NULL", (nodes,)))
        wanted = _node_list(nodes) if nodes is not None else None
        if wanted is not None and min_count is not None:
            plane = self.expr(args[0], scope)
            # one flat array, not a sum of 400 terms (a 400-deep expression tree)
            index = "{" + ",".join(str(n + 1) for n in wanted) + "}"
            total = f"SELECT sum(f.counts[i]) FROM unnest('{index}'::integer[]) AS i"
            return _expr_template(
                f"(coalesce((SELECT ({total})::float8 * f.n_detected / nullif(f.n_sampled, 0)"
                " FROM caomai.fingerprint AS f WHERE f.planeid = $1"
                " AND f.model_id = (SELECT caomai.active_model('map1'))"
                f" AND {public('f')}), 0)"
                f" >= {min_count})::integer",
                plane,
            )
        rest = tuple(self.expr(a, scope) for a in args)
        return _expr_template(
            "caomai.has_object_node(" + ", ".join(f"${i + 1}" for i in range(len(args))) + ")",
            *rest,
        )
