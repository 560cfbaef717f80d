"""The rewriting layer: queryparser's SQL, parsed by PostgreSQL's own parser (pglast), checked
and rewritten as a tree, deparsed again.

What happens to the tree, in one walk with name scopes:

- **whitelist** -- one SELECT (no INTO, locking, CTE or VALUES); only tables and views
  TAP_SCHEMA publishes; only ADQL's functions, ADQL's geometry and caomai's three UDFs;
  only the node types and operators ADQL can produce;
- **names** -- TAP names as written (``"planeID"``, ``"TAP_SCHEMA"``) become the relations'
  lower-case names; ``schema.table.column`` references become ``table.column``;
- **access** -- every published table carrying ``metaRelease`` becomes
  ``(SELECT * FROM t WHERE metarelease IS NULL OR metarelease <= now()) AS t``: proprietary
  rows are invisible to every query, join and subquery (PostgreSQL pulls the subquery up, so
  the indexes still work);
- **geometry** -- queryparser's pg_sphere output becomes the ``caomai.adql_*`` SQL functions
  (sql/0002/geometry.sql; pg_sphere-backed where the database has pg_sphere): ``geometry_rules.py``;
- **UDFs** -- each registered function gets the rule ``udfs.py`` names: ``similarity``,
  ``node_set``, ``object_nodes``: ``udf_rules.py``.

This module holds the walk itself (whitelist, names, access); tree helpers are in
``sqltree.py``.

The result keeps a handle on the top-level similarity sort so that :mod:`.plan` can give the
query the plan its filter's selectivity needs.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError

from ..access import public
from ..config import QueryLimits
from . import udfs
from .catalog import Catalog, Table
from .geometry_rules import GEOMETRY_FUNCTIONS, GEOMETRY_OPERATORS, GeometryRules
from .parse import ADQLError, adql_to_postgresql, check_size
from .sqltree import (
    _and_list,
    _deparse,
    _expr_template,
    _funcname,
    _integer,
    _opname,
)
from .udf_rules import UdfRules

#: ADQL 2.0/2.1 functions as queryparser writes them for PostgreSQL (lower case).
ADQL_FUNCTIONS = {
    "abs",
    "acos",
    "asin",
    "atan",
    "atan2",
    "ceiling",
    "cos",
    "cot",
    "degrees",
    "exp",
    "floor",
    "ln",
    "log",
    "mod",
    "pi",
    "power",
    "radians",
    "random",
    "round",
    "sin",
    "sqrt",
    "tan",
    "trunc",
    "count",
    "sum",
    "avg",
    "min",
    "max",
}
UNSUPPORTED_GEOMETRY = {"centroid", "region", "coordsys", "box", "point", "circle", "polygon"}
OPERATORS = {"+", "-", "*", "/", "%", "=", "<>", "!=", "<", ">", "<=", ">=", "||", "~~", "!~~"}
ALLOWED_NODES = (
    ast.SelectStmt,
    ast.ResTarget,
    ast.ColumnRef,
    ast.A_Star,
    ast.A_Const,
    ast.FuncCall,
    ast.A_Expr,
    ast.BoolExpr,
    ast.NullTest,
    ast.SubLink,
    ast.RangeVar,
    ast.RangeSubselect,
    ast.JoinExpr,
    ast.Alias,
    ast.SortBy,
    ast.String,
    ast.Integer,
    ast.Float,
)


@dataclass
class Ref:
    """A FROM item: a published table (maybe wrapped for access) or a subquery."""

    alias: str
    table: Table | None
    explicit_alias: bool


@dataclass
class Scope:
    refs: list[Ref] = field(default_factory=list)
    parent: Scope | None = None
    select_aliases: dict[str, ast.Node] = field(default_factory=dict)

    def find(self, alias: str) -> Ref | None:
        scope: Scope | None = self
        while scope is not None:
            for r in scope.refs:
                if r.alias == alias:
                    return r
            scope = scope.parent
        return None

    def all_refs(self):  # noqa: ANN201 - generator
        scope: Scope | None = self
        while scope is not None:
            yield from scope.refs
            scope = scope.parent


@dataclass
class SimilaritySort:
    """The top-level ``ORDER BY fp <=> ref`` a similarity query became."""

    sort: ast.SortBy
    fp_alias: str | None


@dataclass
class Translated:
    """An ADQL query checked and rewritten; ``sql()`` gives the text to run."""

    adql: str
    postgres: str  # queryparser's text, for the record
    tree: ast.SelectStmt
    limit: int
    similarity: SimilaritySort | None
    checks: list[tuple[str, tuple]]

    def sql(self, plan: str = "default") -> str:
        """The statement for a plan: 'default'/'index' (as rewritten) or 'exact' (the
        similarity sort key no longer matches the vector index, so PostgreSQL filters first
        and sorts the survivors)."""
        if plan == "exact" and self.similarity is not None:
            sort = self.similarity.sort
            original = sort.node
            sort.node = _expr_template("($1) + 0", copy.deepcopy(original))
            try:
                return _deparse(self.tree)
            finally:
                sort.node = original
        return _deparse(self.tree)

    def count_sql(self) -> str:
        """The rows the query's FROM and WHERE leave, for the planner's estimate."""
        t = copy.deepcopy(self.tree)
        t.targetList = (ast.ResTarget(val=ast.A_Const(val=ast.Integer(1))),)
        t.sortClause = None
        t.limitCount = None
        t.limitOffset = None
        t.limitOption = enums.LimitOption.LIMIT_OPTION_DEFAULT
        t.distinctClause = None
        return _deparse(t)


class Rewriter(UdfRules, GeometryRules):
    """One query's rewrite (state: the checks of literal references, the similarity sort)."""

    def __init__(self, catalog: Catalog, limits: QueryLimits | None = None) -> None:
        self.catalog = catalog
        self.limits = limits or QueryLimits()
        self.checks: list[tuple[str, tuple]] = []
        self.sorts: dict[int, SimilaritySort] = {}

    # -- statements ------------------------------------------------------------------------

    def select(self, stmt: ast.Node, parent: Scope | None) -> Scope:
        if not isinstance(stmt, ast.SelectStmt):
            raise ADQLError("only SELECT queries are allowed")
        for clause, what in (
            ("intoClause", "SELECT INTO"),
            ("lockingClause", "FOR UPDATE/SHARE"),
            ("withClause", "WITH"),
            ("valuesLists", "VALUES"),
            ("windowClause", "WINDOW"),
        ):
            if getattr(stmt, clause):
                raise ADQLError(f"{what} is not allowed in ADQL")
        if stmt.op != enums.SetOperation.SETOP_NONE:
            self.select(stmt.larg, parent)
            self.select(stmt.rarg, parent)
            scope = Scope(parent=parent)
            if stmt.sortClause:
                stmt.sortClause = tuple(self.sort_by(s, scope, []) for s in stmt.sortClause)
            return scope
        scope = Scope(parent=parent)
        if stmt.fromClause:
            stmt.fromClause = tuple(self.from_item(item, scope) for item in stmt.fromClause)
        originals: list[ast.Node] = []
        if stmt.targetList:
            targets = []
            for target in stmt.targetList:
                originals.append(target.val)
                if target.name:
                    scope.select_aliases[target.name] = target.val
                if isinstance(target.val, ast.FuncCall) and target.name is None:
                    name = _funcname(target.val)
                    if udfs.lookup(name):
                        target.name = name
                if isinstance(target.val, ast.A_Expr) and _opname(target.val) in (
                    GEOMETRY_OPERATORS
                ):
                    target.val = self.geometry_predicate(target.val, scope, as_value=True)
                    if target.name is None:
                        target.name = GEOMETRY_OPERATORS[_opname(originals[-1])][0][5:]
                else:
                    target.val = self.expr(target.val, scope)
                targets.append(target)
            stmt.targetList = tuple(targets)
        if stmt.distinctClause and any(d is not None for d in stmt.distinctClause):
            raise ADQLError("DISTINCT ON is not ADQL")
        if stmt.whereClause is not None:
            stmt.whereClause = self.condition(stmt.whereClause, scope)
        if stmt.groupClause:
            stmt.groupClause = tuple(self.expr(g, scope) for g in stmt.groupClause)
        if stmt.havingClause is not None:
            stmt.havingClause = self.condition(stmt.havingClause, scope)
        if stmt.sortClause:
            stmt.sortClause = tuple(self.sort_by(s, scope, originals) for s in stmt.sortClause)
        for clause in ("limitCount", "limitOffset"):
            value = getattr(stmt, clause)
            if value is not None and _integer(value) is None:
                raise ADQLError("TOP and OFFSET take an integer")
        return scope

    def from_item(self, item: ast.Node, scope: Scope) -> ast.Node:
        if isinstance(item, ast.RangeVar):
            return self.range_var(item, scope)
        if isinstance(item, ast.RangeSubselect):
            if item.lateral:
                raise ADQLError("LATERAL is not ADQL")
            self.select(item.subquery, scope.parent)
            alias = item.alias.aliasname if item.alias else ""
            scope.refs.append(Ref(alias, None, True))
            return item
        if isinstance(item, ast.JoinExpr):
            item.larg = self.from_item(item.larg, scope)
            item.rarg = self.from_item(item.rarg, scope)
            if item.usingClause:
                for u in item.usingClause:
                    u.sval = self._column_name_anywhere(u.sval, scope)
            if item.quals is not None:
                item.quals = self.condition(item.quals, scope)
            if item.alias is not None:
                raise ADQLError("an alias for a whole join is not ADQL")
            return item
        raise ADQLError(f"{type(item).__name__} is not allowed in FROM")

    def range_var(self, rv: ast.RangeVar, scope: Scope) -> ast.Node:
        if rv.catalogname:
            raise ADQLError(f"catalog-qualified table names are not supported: {rv.catalogname}")
        table = self.catalog.table(rv.schemaname, rv.relname)
        written = f"{rv.schemaname}.{rv.relname}" if rv.schemaname else rv.relname
        if table is None:
            hint = self.catalog.suggest(rv.relname)
            close = difflib.get_close_matches(
                written.lower(), [t.name.lower() for t in self.catalog.tables], n=1, cutoff=0.7
            )
            if hint:
                more = f"; did you mean {' or '.join(hint)}?"
            elif close:
                more = f"; did you mean {[t.name for t in self.catalog.tables if t.name.lower() == close[0]][0]}?"
            else:
                more = "; TAP_SCHEMA.tables lists what there is"
            raise ADQLError(f"table {written!r} is not published by this service{more}")
        explicit = rv.alias is not None
        alias = rv.alias.aliasname if explicit else table.db_name
        if explicit and rv.alias.colnames:
            raise ADQLError("column aliases in FROM are not ADQL")
        scope.refs.append(Ref(alias, table, explicit))
        if table.has_metarelease:
            sub = parse_sql(
                f'SELECT * FROM "{table.db_schema}"."{table.db_name}" WHERE {public()}'
            )[0].stmt
            return ast.RangeSubselect(lateral=False, subquery=sub, alias=ast.Alias(aliasname=alias))
        return ast.RangeVar(
            schemaname=table.db_schema,
            relname=table.db_name,
            inh=True,
            relpersistence="p",
            alias=ast.Alias(aliasname=alias) if explicit else None,
        )

    def sort_by(self, sort: ast.SortBy, scope: Scope, originals: list[ast.Node]) -> ast.SortBy:
        node = sort.node
        target = node
        if isinstance(node, ast.ColumnRef) and len(node.fields) == 1:
            name = node.fields[0]
            if isinstance(name, ast.String) and name.sval in scope.select_aliases:
                target = scope.select_aliases[name.sval]
        position = _integer(node)
        if position is not None and 1 <= position <= len(originals):
            target = originals[position - 1]
        if isinstance(target, ast.FuncCall):
            udf = udfs.lookup(_funcname(target))
            if udf is not None and udf.rewrite == "similarity":
                distance, fp_alias = self.distance(target, scope)
                if distance is not None:
                    desc = sort.sortby_dir == enums.SortByDir.SORTBY_DESC
                    new = ast.SortBy(
                        node=distance,
                        sortby_dir=(
                            enums.SortByDir.SORTBY_ASC if desc else enums.SortByDir.SORTBY_DESC
                        ),
                        sortby_nulls=enums.SortByNulls.SORTBY_NULLS_LAST,
                    )
                    self.sorts[id(new)] = SimilaritySort(new, fp_alias)
                    return new
        if position is None:
            sort.node = self.expr(node, scope)
        return sort

    # -- expressions -----------------------------------------------------------------------

    def condition(self, node: ast.Node, scope: Scope) -> ast.Node:
        """A WHERE/ON/HAVING condition: top-level AND terms may use predicate rewrites."""
        terms = [self.predicate(t, scope) for t in _and_list(node)]
        if len(terms) == 1:
            return terms[0]
        return ast.BoolExpr(boolop=enums.BoolExprType.AND_EXPR, args=tuple(terms))

    def predicate(self, node: ast.Node, scope: Scope) -> ast.Node:
        if isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_OP:
            op = _opname(node)
            if op in GEOMETRY_OPERATORS:
                return self.geometry_predicate(node, scope)
            if op == "=":
                for fn, other in ((node.lexpr, node.rexpr), (node.rexpr, node.lexpr)):
                    if isinstance(fn, ast.FuncCall):
                        udf = udfs.lookup(_funcname(fn))
                        value = _integer(other)
                        if udf is not None and udf.rewrite == "node_set" and value in (0, 1):
                            rewritten = self.node_set(fn, scope, predicate=value)
                            if rewritten is not None:
                                return rewritten
            if op in ("<", "<=", ">", ">="):
                rewritten = self.similarity_bound(node, scope)
                if rewritten is not None:
                    return rewritten
        return self.expr(node, scope)

    def expr(self, node: ast.Node, scope: Scope) -> ast.Node:
        if node is None:
            return None
        if isinstance(node, tuple | list):
            return type(node)(self.expr(n, scope) for n in node)
        if not isinstance(node, ALLOWED_NODES):
            raise ADQLError(f"{type(node).__name__} is not allowed in ADQL")
        if isinstance(node, ast.ColumnRef):
            return self.column_ref(node, scope)
        if isinstance(node, ast.FuncCall):
            return self.func_call(node, scope)
        if isinstance(node, ast.SubLink):
            self.select(node.subselect, scope)
            node.testexpr = self.expr(node.testexpr, scope)
            return node
        if isinstance(node, ast.A_Expr):
            op = _opname(node)
            if node.kind == enums.A_Expr_Kind.AEXPR_OP:
                if op in GEOMETRY_OPERATORS:
                    return self.geometry_predicate(node, scope)
                if op == "<->":
                    raise ADQLError("DISTANCE is only supported as DISTANCE(point, point)")
                if op not in OPERATORS:
                    raise ADQLError(f"operator {op} is not ADQL")
            node.lexpr = self.expr(node.lexpr, scope)
            node.rexpr = self.expr(node.rexpr, scope)
            return node
        if isinstance(node, ast.BoolExpr):
            node.args = tuple(self.expr(a, scope) for a in node.args)
            return node
        if isinstance(node, ast.NullTest):
            node.arg = self.expr(node.arg, scope)
            return node
        if isinstance(node, ast.ResTarget):
            node.val = self.expr(node.val, scope)
            return node
        return node  # constants, A_Star

    def column_ref(self, node: ast.ColumnRef, scope: Scope) -> ast.Node:
        fields = list(node.fields)
        names = [f.sval if isinstance(f, ast.String) else None for f in fields]
        if len(fields) == 3 and names[0] and names[1]:
            ref = self._ref_for_table(names[0], names[1], scope)
            fields = fields[1:]
            fields[0] = ast.String(sval=ref.alias)
            names = names[1:]
        if len(fields) == 2 and names[0]:
            ref = scope.find(names[0])
            if ref is None:
                ref = self._ref_for_table(None, names[0], scope, required=False)
                if ref is None:
                    raise ADQLError(
                        f"{names[0]!r} in {names[0]}.{names[1] or '*'} is not a table or alias of"
                        " this query"
                    )
                fields[0] = ast.String(sval=ref.alias)
            if names[1] is not None and ref.table is not None:
                col = ref.table.column(names[1])
                if col is None:
                    raise ADQLError(self._unknown_column(names[1], [ref.table]))
                fields[1] = ast.String(sval=col.db_name)
        elif len(fields) == 1 and names[0] is not None:
            name = names[0]
            tables = [r.table for r in scope.all_refs() if r.table is not None]
            for t in tables:
                col = t.column(name)
                if col is not None:
                    fields[0] = ast.String(sval=col.db_name)
                    break
            else:
                known = any(r.table is None for r in scope.all_refs())
                s: Scope | None = scope
                while s is not None and not known:
                    known = name in s.select_aliases
                    s = s.parent
                if not known:
                    raise ADQLError(self._unknown_column(name, tables))
        elif len(fields) > 3 or (len(fields) == 3):
            raise ADQLError(f"cannot read the column reference {_deparse(node)}")
        node.fields = tuple(fields)
        return node

    def _column_name_anywhere(self, name: str, scope: Scope) -> str:
        for r in scope.refs:
            if r.table is not None:
                col = r.table.column(name)
                if col is not None:
                    return col.db_name
        return name

    def _ref_for_table(
        self, schema: str | None, name: str, scope: Scope, required: bool = True
    ) -> Ref | None:
        table = self.catalog.table(schema, name)
        for r in scope.all_refs():
            if table is not None and r.table is table and not r.explicit_alias:
                return r
        if required:
            written = f"{schema}.{name}" if schema else name
            raise ADQLError(f"table {written!r} is not in the FROM clause (or has an alias)")
        return None

    def _unknown_column(self, name: str, tables: list[Table]) -> str:
        candidates = {c.name: t for t in tables for c in t.columns}
        close = difflib.get_close_matches(name.lower(), [c.lower() for c in candidates], n=3)
        names = [c for c in candidates if c.lower() in close]
        where = ", ".join(dict.fromkeys(t.name for t in tables)) or "the query"
        msg = f"column {name!r} does not exist in {where}"
        if names:
            msg += f"; did you mean {' or '.join(names)}?"
        return msg

    def func_call(self, node: ast.FuncCall, scope: Scope) -> ast.Node:
        if len(node.funcname) != 1:
            raise ADQLError(f"function {_deparse(node)} is not ADQL")
        name = _funcname(node)
        if node.over is not None or node.agg_filter is not None or node.agg_order:
            raise ADQLError(f"{name}: window functions, FILTER and ordered aggregates are not ADQL")
        udf = udfs.lookup(name)
        if udf is not None:
            return getattr(self, udf.rewrite)(node, scope)
        if name in GEOMETRY_FUNCTIONS or name == "degrees":
            geo = self.geometry_function(node, scope)
            if geo is not None:
                return geo
        if name in ADQL_FUNCTIONS:
            if node.args:
                node.args = tuple(self.expr(a, scope) for a in node.args)
            return node
        if name in UNSUPPORTED_GEOMETRY:
            raise ADQLError(f"{name.upper()} is not supported by this service")
        known = sorted(ADQL_FUNCTIONS | {a for u in udfs.UDFS for a in u.names})
        close = difflib.get_close_matches(name, known, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ADQLError(
            f"unknown function {name}(){hint} This service offers ADQL's functions and"
            f" {', '.join(u.usage() for u in udfs.UDFS)}"
        )

    # -- UDF rules (named in udfs.py) --------------------------------------------------------


def _top_limit(stmt: ast.SelectStmt, maxrec: int) -> int:
    """Apply MAXREC: the statement returns at most maxrec + 1 rows (one more tells overflow)."""
    current = _integer(stmt.limitCount) if stmt.limitCount is not None else None
    limit = maxrec + 1 if current is None else min(current, maxrec + 1)
    stmt.limitCount = ast.A_Const(val=ast.Integer(limit))
    stmt.limitOption = enums.LimitOption.LIMIT_OPTION_COUNT
    return limit


def translate(
    adql: str, catalog: Catalog, maxrec: int, limits: QueryLimits | None = None
) -> Translated:
    """Check and rewrite one ADQL query (raises :class:`ADQLError`); ``limits`` (default:
    :class:`QueryLimits`'s defaults) are checked before the parser sees the query."""
    limits = limits or QueryLimits()
    check_size(adql, limits)
    postgres = adql_to_postgresql(adql)
    try:
        statements = parse_sql(postgres)
    except ParseError as exc:
        raise ADQLError(f"this ADQL did not translate into valid SQL ({exc})") from None
    if len(statements) != 1:
        raise ADQLError("one query per request")
    stmt = statements[0].stmt
    rewriter = Rewriter(catalog, limits)
    rewriter.select(stmt, None)
    limit = _top_limit(stmt, maxrec)
    similarity = None
    if stmt.op == enums.SetOperation.SETOP_NONE and stmt.sortClause:
        similarity = rewriter.sorts.get(id(stmt.sortClause[0]))
        if stmt.groupClause or stmt.havingClause or stmt.distinctClause:
            similarity = None
    checks = list(dict.fromkeys(rewriter.checks))
    return Translated(adql, postgres, stmt, limit, similarity, checks)
