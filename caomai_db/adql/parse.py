"""ADQL to PostgreSQL text through queryparser-python3, with its unsafe corners closed.

queryparser (the maintained ADQL grammar we build on; ANTLR-generated) is used as it is, with
three defects fixed around it rather than in it:

1. **Code execution.** queryparser 0.8.0 reads the arguments of POINT, CIRCLE, BOX, POLYGON and
   DISTANCE with Python's ``eval()``: ``CIRCLE('ICRS', 1, 2, exec('import os;...'))`` runs
   arbitrary Python in the server. The two ``_convert_values`` helpers are replaced (module
   function and visitor method) by one that accepts numbers and constant arithmetic through
   ``ast`` and passes everything else on as text, which is what queryparser does after a
   failed ``eval`` anyway.
2. **Ignored input.** ANTLR's ``query`` rule stops at the first ``;``: ``SELECT a FROM t;
   DROP TABLE t`` came back as ``SELECT a FROM t``. Anything left after the query is now a
   syntax error.
3. **Lexer errors.** Characters the lexer cannot read were dropped with a message on stderr
   and the rest of the query parsed anyway. They are now syntax errors too.

And one limit around it: the parser's time grows with the tokens of a query and steeply with
nested parentheses (400 levels: 43 s and 262 MB), and it cannot be interrupted.
:func:`check_size` measures a query with queryparser's own lexer (fast, and exactly the tokens
the parser would see: string literals and comments are single tokens) before it is parsed.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass

import antlr4
from antlr4.atn.PredictionMode import PredictionMode
from antlr4.error.ErrorListener import ErrorListener
from queryparser.adql import adqltranslator as _qp
from queryparser.adql.ADQLLexer import ADQLLexer
from queryparser.adql.ADQLParser import ADQLParser
from queryparser.exceptions import QueryError, QuerySyntaxError

from ..config import QueryLimits
from ..errors import ADQLError

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _constant(node: ast.AST) -> float:
    """Value of a constant arithmetic expression; ValueError for anything else."""
    if isinstance(node, ast.Expression):
        return _constant(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_constant(node.left), _constant(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_constant(node.operand))
    raise ValueError("not a constant")


def _value(text: str) -> float | str:
    """What queryparser's eval() was for, without eval: a number, or the SQL text unchanged."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return _constant(ast.parse(text, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        pass
    # ANTLR's getText() glues tokens together: 'ra - -1' becomes 'ra--1', an SQL comment.
    if "--" in text or "/*" in text:
        raise ADQLError(
            f"cannot read the geometry argument {text!r}; write it without a double minus"
        )
    return text


def _safe_convert_values(ctx, cidx, output_sql="postgresql"):  # noqa: ANN001 - queryparser API
    return [_value(part) for part in ctx.children[cidx].getText().split(",")]


def _safe_convert_method(self, ctx, cidx):  # noqa: ANN001 - queryparser API
    return _safe_convert_values(ctx, cidx, self.output_sql)


# Installed once, at import: every use of queryparser in this process goes through them.
_qp._convert_values = _safe_convert_values
_qp.ADQLGeometryTranslationVisitor._convert_values = _safe_convert_method


@dataclass
class _Error:
    line: int
    column: int
    text: str


class _Collect(ErrorListener):
    def __init__(self) -> None:
        super().__init__()
        self.errors: list[_Error] = []

    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):  # noqa: N802, N803
        if offendingSymbol is not None:
            text = offendingSymbol.text
        else:  # the lexer: msg is "token recognition error at: 'x'"
            text = msg.split("at:", 1)[-1].strip().strip("'")
        self.errors.append(_Error(line, column, text))


class _Translator(_qp.ADQLQueryTranslator):
    """queryparser's translator with lexer errors and trailing input reported."""

    def parse(self) -> None:
        # queryparser parses in set_query() and again in to_postgresql(): once is enough
        if getattr(self, "_parsed", None) == self.query:
            return
        listener = self._parse(PredictionMode.SLL, quiet=True)
        if listener is None:
            listener = self._parse(PredictionMode.LL, quiet=False)
        self._parsed = self.query
        rest = self.stream.LT(1)
        if not listener.errors and rest is not None and rest.type != antlr4.Token.EOF:
            raise ADQLError(
                f"ADQL syntax error at line {rest.line}, column {rest.column + 1} near"
                f" {rest.text!r}: one query per request, nothing may follow the first ';'"
            )
        if listener.errors:
            raise QuerySyntaxError([(e.line, e.column, e.text) for e in listener.errors])
        self.walker = antlr4.ParseTreeWalker()

    def _parse(self, mode: int, quiet: bool) -> _Collect | None:
        """One parse; in SLL mode (``quiet``) None on any error, to retry in full LL mode.

        ANTLR's two-stage strategy: SLL prediction is several times faster than LL in the
        Python runtime and gives the same tree whenever it succeeds.
        """
        listener = _Collect()
        lexer = ADQLLexer(antlr4.InputStream(self.query))
        lexer.removeErrorListeners()
        lexer.addErrorListener(listener)
        self.stream = antlr4.CommonTokenStream(lexer)
        self.parser = ADQLParser(self.stream)
        self.parser._interp.predictionMode = mode
        self.parser.removeErrorListeners()
        self.parser.addErrorListener(listener)
        self.tree = self.parser.query()
        if quiet and listener.errors:
            return None
        return listener


def _syntax_message(query: str, errors: list[tuple[int, int, str]]) -> str:
    line, column, text = errors[0]
    where = f"line {line}, column {column + 1}"
    lines = query.split("\n")
    offset = sum(len(x) + 1 for x in lines[: line - 1]) + column
    at_end = offset >= len(query.rstrip().rstrip(";").rstrip())  # queryparser appends ';'
    if text in (None, "<EOF>") or (text == ";" and at_end):
        return f"ADQL syntax error at {where}: the query ends too early"
    hint = ""
    if text and not text.isascii():
        hint = " (this ADQL parser reads ASCII only, also inside string literals)"
    elif text and text[:1] in "eE" and text[1:].lstrip("+-").isdigit():
        hint = " (exponent notation is not supported here: write the number out)"
    elif text and text.upper() in {"CAST", "CASE", "ILIKE", "LOWER", "UPPER", "WITH", "ESCAPE"}:
        hint = f" ({text.upper()} is not supported by this service's ADQL parser)"
    return f"ADQL syntax error at {where} near {text!r}{hint}"


#: keywords that start a clause, and with it a new list
_CLAUSES = {ADQLLexer.FROM, ADQLLexer.WHERE, ADQLLexer.GROUP, ADQLLexer.HAVING, ADQLLexer.ORDER}


def check_size(query: str, limits: QueryLimits) -> None:
    """Refuse a query over one of ``limits`` (:class:`ADQLError`), before any parsing.

    Counts, with the lexer, the tokens, the depth of parentheses, and the comma-separated items
    of each select list and of each other parenthesised list (IN lists, function arguments);
    stops at the first limit passed.
    """
    size = len(query.encode("utf-8", "surrogatepass"))
    if size > limits.max_query_bytes:
        raise ADQLError(
            f"the query has {size} bytes; this service accepts queries of at most"
            f" {limits.max_query_bytes} bytes"
        )
    lexer = ADQLLexer(antlr4.InputStream(query))
    lexer.removeErrorListeners()  # unreadable characters are reported by the parse
    # one frame per open parenthesis: [items so far, in a select list]
    frames: list[list] = [[1, False]]
    tokens = 0
    while (token := lexer.nextToken()).type != antlr4.Token.EOF:
        if token.channel != antlr4.Token.DEFAULT_CHANNEL:
            continue
        tokens += 1
        if tokens > limits.max_query_tokens:
            raise ADQLError(
                f"the query has more than {limits.max_query_tokens} tokens (words, numbers,"
                " strings, symbols); this service accepts at most"
                f" {limits.max_query_tokens}"
            )
        frame = frames[-1]
        kind = token.type
        if kind == ADQLLexer.LPAREN:
            frames.append([1, False])
            if len(frames) - 1 > limits.max_nesting:
                raise ADQLError(
                    f"the query nests parentheses more than {limits.max_nesting} levels deep;"
                    f" this service accepts at most {limits.max_nesting} levels"
                )
        elif kind == ADQLLexer.RPAREN:
            if len(frames) > 1:
                frames.pop()
        elif kind == ADQLLexer.SELECT:
            frame[:] = [1, True]
        elif kind in _CLAUSES:
            frame[:] = [1, False]
        elif kind == ADQLLexer.COMMA:
            frame[0] += 1
            if frame[1] and frame[0] > limits.max_select_items:
                raise ADQLError(
                    f"a select list has more than {limits.max_select_items} select items;"
                    f" this service accepts at most {limits.max_select_items}"
                )
            if not frame[1] and frame[0] > limits.max_list_items:
                raise ADQLError(
                    f"a list (IN list, arguments, FROM, GROUP BY, ORDER BY) has more than"
                    f" {limits.max_list_items} items; this service accepts at most"
                    f" {limits.max_list_items} items"
                )


def adql_to_postgresql(query: str) -> str:
    """queryparser's PostgreSQL (pg_sphere flavoured) text for an ADQL query.

    Raises :class:`ADQLError` with a message naming the place of a syntax error.
    """
    if not query or not query.strip():
        raise ADQLError("the QUERY parameter is empty")
    try:
        return _Translator(query).to_postgresql()
    except QuerySyntaxError as exc:
        raise ADQLError(_syntax_message(query, exc.syntax_errors)) from None
    except QueryError as exc:
        raise ADQLError(f"ADQL not supported: {exc}") from None
    except ADQLError:
        raise
    except Exception as exc:  # queryparser's visitors fail on some odd but valid inputs
        raise ADQLError(f"cannot translate this ADQL ({type(exc).__name__}: {exc})") from None
