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
  (sql/geometry.sql; pg_sphere-backed where the database has pg_sphere);
- **UDFs** -- each registered function gets the rule ``udfs.py`` names: ``similarity``,
  ``node_set``, ``object_nodes`` (see :class:`Rewriter`).

The result keeps a handle on the top-level similarity sort so that :mod:`.plan` can give the
query the plan its filter's selectivity needs.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

from ..config import N_NODES, QueryLimits
from . import udfs
from .catalog import Catalog, Table
from .parse import ADQLError, adql_to_postgresql, check_size

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
#: queryparser's pg_sphere spellings of ADQL geometry, rewritten below.
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
UNSUPPORTED_GEOMETRY = {"centroid", "region", "coordsys", "box", "point", "circle", "polygon"}
OPERATORS = {"+", "-", "*", "/", "%", "=", "<>", "!=", "<", ">", "<=", ">=", "||", "~~", "!~~"}
GEOMETRY_OPERATORS = {"@": ("adql_contains", 1), "!@": ("adql_contains", 0)}
GEOMETRY_OPERATORS |= {"&&": ("adql_intersects", 1), "!&&": ("adql_intersects", 0)}
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


class Rewriter:
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
                f'SELECT * FROM "{table.db_schema}"."{table.db_name}"'
                " WHERE metarelease IS NULL OR metarelease <= now()"
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

    def _fp_column(self, node: ast.Node, udf: udfs.UDF, scope: Scope) -> str | None:
        """Check the first argument of fp_similar; returns the alias of its table."""
        if not isinstance(node, ast.ColumnRef):
            raise ADQLError(
                f"{udf.name}: the first argument must be a fingerprint column such as f.fp"
                f" (caomai.fingerprint.fp), got {_describe(node)}"
            )
        names = [f.sval if isinstance(f, ast.String) else None for f in node.fields]
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
                return ref.alias
            col = ref.table.column(names[-1])
            if col is not None:
                if col.type_oid != self.catalog.vector_oid:
                    raise ADQLError(
                        f"{udf.name}: the first argument must be a fingerprint column such as"
                        f" f.fp (caomai.fingerprint.fp); {ref.table.name}.{col.name} is not one"
                    )
                return ref.alias
        return None

    def similarity(self, node: ast.FuncCall, scope: Scope) -> ast.Node:
        """fp_similar as a value: 1 - cosine distance to the reference computed once."""
        udf = udfs.BY_NAME["fp_similar"]
        fp, ref = self._args(node, udf)
        self._fp_column(fp, udf, scope)
        ref_value = self._text_arg(ref, udf, udf.params[1])
        if ref_value is not None:
            self._check_ref(udf, ref_value, node_list=False)
        fp = self.expr(fp, scope)
        if ref_value is None:
            return _expr_template("caomai.fp_similar($1, $2)", fp, self.expr(ref, scope))
        self.checks.append(("SELECT caomai.ref_vector(%s) IS NOT NULL", (ref_value,)))
        return _expr_template(
            "greatest(0.0::float8, least(1.0::float8, 1.0::float8 - ($1 <=> "
            f"(SELECT caomai.ref_vector({_literal_sql(ref_value)})))))",
            fp,
        )

    def distance(self, node: ast.FuncCall, scope: Scope) -> tuple[ast.Node | None, str | None]:
        """``fp <=> (SELECT caomai.ref_vector(ref))`` for a literal reference, else None."""
        udf = udfs.BY_NAME["fp_similar"]
        fp, ref = self._args(node, udf)
        alias = self._fp_column(fp, udf, scope)
        ref_value = self._text_arg(ref, udf, udf.params[1])
        if ref_value is None:
            return None, None
        self._check_ref(udf, ref_value, node_list=False)
        self.checks.append(("SELECT caomai.ref_vector(%s) IS NOT NULL", (ref_value,)))
        fp = self.expr(copy.deepcopy(fp), scope)
        return (
            _expr_template(f"$1 <=> (SELECT caomai.ref_vector({_literal_sql(ref_value)}))", fp),
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
        distance, _ = self.distance(fn, scope)
        if distance is None:
            return None
        # sim = 1 - d on [0, 1] for the non-negative fingerprints: sim > t <=> d < 1 - t
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
                " AND (f.metarelease IS NULL OR f.metarelease <= now())), 0)"
                f" >= {min_count})::integer",
                plane,
            )
        rest = tuple(self.expr(a, scope) for a in args)
        return _expr_template(
            "caomai.has_object_node(" + ", ".join(f"${i + 1}" for i in range(len(args))) + ")",
            *rest,
        )

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
