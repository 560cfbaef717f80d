"""A seeded fuzzer for the TAP service: valid and invalid ADQL over the tables the service
publishes, sent to ``/tap/sync``, with what every answer must satisfy.

Shared by ``tests/test_fuzz.py`` (about a thousand requests) and ``bench/fuzz.py`` (ten
thousand and more). Requests come in four kinds:

- ``valid``: queries from a small ADQL grammar over TAP_SCHEMA's tables and columns --
  columns, arithmetic, ADQL functions, aggregates, joins on the published keys, subqueries,
  geometry, and the three functions (fp_similar, in_node, has_object_node) with real,
  unknown and explicit references. Valid in form; some still fail in the database (a type
  mismatch, GROUP BY), which must then be a 400;
- ``invalid``: a valid query mutated (tokens dropped, repeated, swapped, cut off, junk,
  quotes, NUL and non-ASCII characters inserted, names misspelt, numbers made extreme);
- ``limit``: inputs past the service's limits (nesting, long IN/select/node lists, many
  references, huge literals and queries);
- ``request``: odd requests (GET, multipart, malformed bodies, bad MAXREC, RESPONSEFORMAT,
  LANG, REQUEST, a missing QUERY).

Every answer must be 200 or 400 (never a 500, never a 503 from a database that is up), a
VOTable error document when it is an error, and come back before the statement timeout.
"""

from __future__ import annotations

import csv
import io
import random
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field

import httpx
import psycopg

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
FORMATS = ("votable", "votable/b2", "votable/b", "csv", "tsv", "text/xml")
#: foreign keys the grammar joins on: (table, column) pairs holding the same values
JOINS = (
    (("caom2.Plane", "planeID"), ("caomai.fingerprint", "planeID")),
    (("caom2.Plane", "planeID"), ("ivoa.ObsCore", "planeID")),
    (("caom2.Plane", "obsID"), ("caom2.Observation", "obsID")),
    (("caomai.fingerprint", "planeID"), ("ivoa.ObsCore", "planeID")),
    (("caomai.fingerprint", "model_id"), ("caomai.model", "model_id")),
)
NUMERIC = {"short", "int", "long", "float", "double", "unsignedByte"}
FUNCTIONS_1 = ("ABS", "CEILING", "FLOOR", "SQRT", "EXP", "LOG", "LN", "SIN", "COS", "RADIANS")
JUNK = (
    "(", ")", ",", "'", '"', ";", "--", "/*", "*/", "SELECT", "FROM", "WHERE", "NULL", "AND",
    "OR", "NOT", "1e309", "-", "||", "\x00", "é", "\u2603", "\\", "$$", "%", "?", ":x", "[", "]",
    "DROP TABLE caom2.plane", "pg_sleep(10)", "'; DELETE FROM caom2.plane; --", "\t", "\n",
    "TOP", "ORDER BY", "GROUP BY", "UNION", "JOIN", "ON", ".", "*", "=", "<>", "9" * 40,
)  # fmt: skip
TOKEN = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|\w+|\S")


@dataclass
class Column:
    name: str
    datatype: str
    arraysize: str | None
    xtype: str | None

    @property
    def numeric(self) -> bool:
        return self.datatype in NUMERIC and not self.arraysize

    @property
    def text(self) -> bool:
        return self.datatype == "char" and self.xtype is None


@dataclass
class Schema:
    """What the generator knows of the service: tables, columns, some real references."""

    tables: dict[str, list[Column]]
    refs: list[str]
    plane_ids: list[str]

    @classmethod
    def from_service(cls, url: str) -> Schema:
        rows = _csv(
            url,
            "SELECT table_name, column_name, datatype, arraysize, xtype FROM TAP_SCHEMA.columns"
            " ORDER BY table_name, column_name",
        )
        tables: dict[str, list[Column]] = {}
        for t, c, d, a, x in rows:
            tables.setdefault(t, []).append(Column(c, d, a or None, x or None))
        refs = [r[0] for r in _csv(url, "SELECT TOP 5 publisherID FROM caomai.fingerprint")]
        planes = [r[0] for r in _csv(url, "SELECT TOP 5 planeID FROM caom2.Plane")]
        return cls(tables, refs, planes)


def _csv(url: str, query: str) -> list[list[str]]:
    reply = httpx.post(
        f"{url}/sync", data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv"}, timeout=60
    )
    reply.raise_for_status()
    return list(csv.reader(io.StringIO(reply.text)))[1:]


@dataclass
class Request:
    kind: str
    method: str = "POST"
    data: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[None, str]] | None = None
    content: bytes | None = None
    headers: dict[str, str] | None = None

    def describe(self, width: int = 160) -> str:
        text = self.data.get("QUERY") or (self.content or b"").decode("latin-1") or str(self.files)
        text = text if len(text) <= width else f"{text[:width]}... ({len(text)} chars)"
        extra = {k: v[:40] for k, v in self.data.items() if k not in ("QUERY", "LANG")}
        return f"[{self.kind} {self.method}{' ' + str(extra) if extra else ''}] {text!r}"


class Generator:
    """Seeded: the same seed and schema give the same requests."""

    def __init__(self, schema: Schema, seed: int) -> None:
        self.schema = schema
        self.rng = random.Random(seed)
        self.names = sorted(schema.tables)

    # -- valid ADQL --------------------------------------------------------------------------

    def query(self, depth: int = 0) -> str:
        r = self.rng
        if r.random() < 0.3:
            return self.udf_query()
        table = r.choice(self.names)
        alias = f"t{depth}"
        refs = [(table, alias)]
        from_ = f"{table} AS {alias}"
        joins = [j for j in JOINS if table in (j[0][0], j[1][0])]
        if joins and r.random() < 0.35:
            (ta, ca), (tb, cb) = r.choice(joins)
            if tb == table:
                (ta, ca), (tb, cb) = (tb, cb), (ta, ca)
            other = f"j{depth}"
            kind = r.choice(["JOIN", "LEFT OUTER JOIN", "INNER JOIN"])
            from_ += f" {kind} {tb} AS {other} ON {alias}.{ca} = {other}.{cb}"
            refs.append((tb, other))
        items = [self.item(refs) for _ in range(r.randint(1, 4))]
        if r.random() < 0.08:
            items = ["*"]
        top = f"TOP {r.choice([0, 1, 3, 10, 50, 200])} " if r.random() < 0.7 else ""
        distinct = "DISTINCT " if r.random() < 0.08 else ""
        q = f"SELECT {distinct}{top}{', '.join(items)} FROM {from_}"
        if r.random() < 0.7:
            q += " WHERE " + self.condition(refs, depth)
        if r.random() < 0.1:
            col = self.column(refs)
            q += f" GROUP BY {col}"
            q = q.replace(", ".join(items), f"{col}, COUNT(*) AS n", 1)
        elif r.random() < 0.4:
            q += f" ORDER BY {r.randint(1, len(items))}" + r.choice(["", " DESC", " ASC"])
        if r.random() < 0.05:
            q += f" OFFSET {r.randint(0, 20)}"
        return q

    def udf_query(self) -> str:
        r = self.rng
        ref = self.reference()
        k = r.choice([1, 5, 10, 50])
        where = []
        if r.random() < 0.5:
            where.append(f"in_node(f.map2_node, '{self.node_ref()}', {r.randint(0, 3)}) = 1")
        if r.random() < 0.4:
            where.append(f"has_object_node(p.planeID, '{self.node_list()}', {r.randint(0, 5)}) = 1")
        if r.random() < 0.4:
            where.append(f"p.time_bounds_lower < {r.uniform(55000, 60000):.1f}")
        if r.random() < 0.2:
            where.append(f"fp_similar(f.fp, '{ref}') > {r.choice(['0.5', '0.9', '0', '1'])}")
        name = r.choice(["fp_similar", "caomai_fp_similar"])
        q = (
            f"SELECT TOP {k} p.publisherID, f.map2_node, {name}(f.fp, '{ref}') AS sim"
            " FROM caom2.Plane AS p JOIN caomai.fingerprint AS f ON f.planeID = p.planeID"
        )
        if where:
            q += " WHERE " + " AND ".join(where)
        return q + r.choice([" ORDER BY sim DESC", " ORDER BY 3 DESC", ""])

    def reference(self) -> str:
        r = self.rng
        refs = self.schema.refs or ["ivo://nowhere/none?x"]
        choice = r.random()
        if choice < 0.6:
            return r.choice(refs)
        if choice < 0.75:
            return "|".join(r.sample(refs, min(len(refs), r.randint(2, 3))))
        if choice < 0.85:
            return (
                "[" + ", ".join(f"{r.random():.3f}" for _ in range(r.choice([400, 400, 3]))) + "]"
            )
        if choice < 0.95 and self.schema.plane_ids:
            return r.choice(self.schema.plane_ids)
        return r.choice(["ivo://nowhere/none?x", "caom:X/y/z", "", " ", "[", "|", "1,2"])

    def node_list(self) -> str:
        r = self.rng
        parts = []
        for _ in range(r.randint(1, 6)):
            a = r.randint(0, 399)
            parts.append(f"{a}-{min(399, a + r.randint(0, 5))}" if r.random() < 0.2 else str(a))
        return ",".join(parts)

    def node_ref(self) -> str:
        return self.node_list() if self.rng.random() < 0.6 else self.reference()

    def column(self, refs: list[tuple[str, str]], want: str | None = None) -> str:
        r = self.rng
        table, alias = r.choice(refs)
        cols = self.schema.tables[table]
        if want == "numeric":
            cols = [c for c in cols if c.numeric] or cols
        elif want == "text":
            cols = [c for c in cols if c.text] or cols
        return f"{alias}.{r.choice(cols).name}"

    def number(self) -> str:
        r = self.rng
        return r.choice([str(r.randint(-5, 1000)), f"{r.uniform(-100, 60000):.3f}", "0", "1"])

    def item(self, refs: list[tuple[str, str]]) -> str:
        r = self.rng
        choice = r.random()
        if choice < 0.45:
            return self.column(refs)
        if choice < 0.6:
            return f"{self.column(refs, 'numeric')} {r.choice('+-*/')} {self.number()} AS x{r.randint(0, 99)}"
        if choice < 0.7:
            return f"{r.choice(FUNCTIONS_1)}({self.column(refs, 'numeric')}) AS f{r.randint(0, 99)}"
        if choice < 0.8:
            agg = r.choice(
                ["COUNT(*)", f"MAX({self.column(refs)})", f"AVG({self.column(refs, 'numeric')})"]
            )
            return f"{agg} AS a{r.randint(0, 99)}"
        if choice < 0.9 and any(t == "ivoa.ObsCore" for t, _ in refs):
            alias = next(a for t, a in refs if t == "ivoa.ObsCore")
            return (
                f"DISTANCE(POINT('ICRS', {alias}.s_ra, {alias}.s_dec),"
                f" POINT('ICRS', {r.uniform(0, 360):.2f}, {r.uniform(-90, 90):.2f})) AS d"
            )
        return f"{self.column(refs, 'text')} || '{r.choice(['x', '', ' ', 'ab'])}' AS s{r.randint(0, 99)}"

    def condition(self, refs: list[tuple[str, str]], depth: int) -> str:
        r = self.rng
        terms = [self.predicate(refs, depth) for _ in range(r.randint(1, 3))]
        out = terms[0]
        for t in terms[1:]:
            out = f"{out} {r.choice(['AND', 'OR'])} {t}"
        if r.random() < 0.2:
            out = f"NOT ({out})"
        if r.random() < 0.2:
            out = f"({out})"
        return out

    def predicate(self, refs: list[tuple[str, str]], depth: int) -> str:
        r = self.rng
        choice = r.random()
        if choice < 0.3:
            return f"{self.column(refs, 'numeric')} {r.choice(['=', '<', '>', '<=', '>=', '<>'])} {self.number()}"
        if choice < 0.4:
            lo = r.uniform(0, 50000)
            return (
                f"{self.column(refs, 'numeric')} BETWEEN {lo:.1f} AND {lo + r.uniform(0, 9000):.1f}"
            )
        if choice < 0.5:
            values = ", ".join(self.number() for _ in range(r.randint(1, 8)))
            return f"{self.column(refs, 'numeric')} {r.choice(['IN', 'NOT IN'])} ({values})"
        if choice < 0.6:
            return f"{self.column(refs, 'text')} {r.choice(['LIKE', 'NOT LIKE'])} '{r.choice(['%', 'a%', '%x_', 'MegaPrime'])}'"
        if choice < 0.7:
            return f"{self.column(refs)} IS {r.choice(['', 'NOT '])}NULL"
        if choice < 0.78 and depth < 2:
            table = r.choice([t for t, _ in refs])
            col = r.choice(
                [c for c in self.schema.tables[table] if c.numeric] or self.schema.tables[table]
            )
            sub_alias = f"s{depth}"
            return (
                f"{self.column([(table, refs[0][1] if refs[0][0] == table else refs[-1][1])])}"
                f" IN (SELECT {sub_alias}.{col.name} FROM {table} AS {sub_alias}"
                f" WHERE {self.predicate([(table, sub_alias)], depth + 1)})"
            )
        if choice < 0.88 and any(t == "ivoa.ObsCore" for t, _ in refs):
            a = next(a for t, a in refs if t == "ivoa.ObsCore")
            shape = r.choice(
                [
                    f"CIRCLE('ICRS', {r.uniform(0, 360):.1f}, {r.uniform(-90, 90):.1f}, {r.uniform(0, 50):.1f})",
                    f"BOX('ICRS', {r.uniform(0, 360):.1f}, {r.uniform(-60, 60):.1f}, 20.0, 10.0)",
                    "POLYGON('ICRS', 130.0, 0.0, 170.0, 0.0, 170.0, 30.0)",
                ]
            )
            if r.random() < 0.5:
                return f"CONTAINS(POINT('ICRS', {a}.s_ra, {a}.s_dec), {shape}) = 1"
            return f"INTERSECTS({a}.s_region, {shape}) = 1"
        return f"{self.column(refs, 'numeric')} {r.choice(['=', '<', '>'])} {self.column(refs, 'numeric')}"

    # -- invalid ADQL ------------------------------------------------------------------------

    def mutate(self, query: str) -> str:
        r = self.rng
        tokens = TOKEN.findall(query)
        for _ in range(r.randint(1, 3)):
            if not tokens:
                break
            i = r.randrange(len(tokens))
            op = r.random()
            if op < 0.2:
                del tokens[i]
            elif op < 0.35:
                tokens.insert(i, tokens[i])
            elif op < 0.45:
                j = r.randrange(len(tokens))
                tokens[i], tokens[j] = tokens[j], tokens[i]
            elif op < 0.7:
                tokens.insert(i, r.choice(JUNK))
            elif op < 0.8:
                tokens = tokens[:i]
            elif op < 0.9:
                if re.fullmatch(r"\w+", tokens[i]):
                    tokens[i] = tokens[i][:-1] + r.choice("xz_9") if len(tokens[i]) > 1 else "q"
            else:
                numbers = [k for k, t in enumerate(tokens) if re.fullmatch(r"\d+", t)]
                if numbers:
                    tokens[r.choice(numbers)] = r.choice(
                        ["99999999999999999999999", "-1", "1e308", "0", "2147483648", "'x'"]
                    )
        return " ".join(tokens)

    def limit_buster(self) -> str:
        r = self.rng
        choice = r.random()
        big = r.random() < 0.1  # now and then far past the limit (the probe's sizes)
        head = "SELECT TOP 1 p.planeID FROM caom2.Plane AS p WHERE "
        if choice < 0.2:
            depth = r.randint(25, 3000 if big else 60)
            return head + "(" * depth + "1=1" + ")" * depth
        if choice < 0.35:
            n = r.randint(500, 150_000 if big else 1500)
            return head + "p.calibrationLevel IN (" + ",".join(["1"] * n) + ")"
        if choice < 0.5:
            n = r.randint(500, 30_000 if big else 1500)
            return "SELECT TOP 3 " + ", ".join(["p.planeID"] * n) + " FROM caom2.Plane AS p"
        if choice < 0.65:
            n = r.randint(100, 100_000 if big else 1000)
            nodes = ",".join(str(i % 400) for i in range(n))
            fn = r.choice(["has_object_node(p.planeID, '%s')", "in_node(p.planeID, '%s', 1)"])
            return head + (fn % nodes) + " = 1"
        if choice < 0.75:
            refs = "|".join(r.choice(self.schema.refs or ["x"]) for _ in range(r.randint(50, 300)))
            return (
                "SELECT TOP 3 f.publisherID FROM caomai.fingerprint AS f"
                f" ORDER BY fp_similar(f.fp, '{refs}') DESC"
            )
        if choice < 0.85:
            return head + "p.publisherID = '" + "x" * r.randint(1000, 70_000) + "'"
        if choice < 0.95:
            return head + " AND ".join(["p.calibrationLevel + 1 - 1 = 2"] * r.randint(100, 1500))
        return "SELECT " + "abs(" * r.randint(20, 200) + "1" + ")" * r.randint(0, 200)

    # -- requests ----------------------------------------------------------------------------

    def params(self, query: str) -> dict[str, str]:
        r = self.rng
        data = {"LANG": "ADQL", "QUERY": query}
        if r.random() < 0.5:
            data["RESPONSEFORMAT"] = r.choice(FORMATS)
        if r.random() < 0.2:
            data["MAXREC"] = str(r.choice([0, 1, 5, 100, 100000]))
        if r.random() < 0.1:
            data["REQUEST"] = "doQuery"
        return data

    def odd_request(self) -> Request:
        r = self.rng
        query = self.query()
        choice = r.random()
        if choice < 0.15:
            return Request("request", "GET", self.params(query))
        if choice < 0.3:
            data = self.params(query)
            return Request("request", files={k: (None, v) for k, v in data.items()})
        if choice < 0.45:
            bodies = [
                b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx",
                b"--xyz\r\ngarbage\r\n\r\n--xyz--\r\n",
                b"QUERY=SELECT",
                b"\xff\xfe\x00garbage",
                b'--xyz\r\nContent-Disposition: form-data; name="QUERY"\r\n\r\nSELECT 1',
            ]
            kind = r.choice(["multipart/form-data; boundary=xyz", "multipart/form-data",
                             "application/x-www-form-urlencoded", "text/plain"])  # fmt: skip
            return Request("request", content=r.choice(bodies), headers={"content-type": kind})
        data = self.params(query)
        key, value = r.choice(
            [
                ("MAXREC", r.choice(["-1", "x", "1e3", "", "99999999999999999999", " 5"])),
                ("RESPONSEFORMAT", r.choice(["fits", "votable/b3", "", "text/html", "\x00"])),
                ("LANG", r.choice(["SQL", "ADQL-3.0", "", "adql"])),
                ("REQUEST", r.choice(["getCapabilities", "", "doquery"])),
                ("QUERY", r.choice(["", " ", "\x00", "SELECT", ";"])),
                ("UPLOAD", "t,http://example.org/t.xml"),
                ("\x00", "x"),
            ]
        )
        data[key] = value
        if r.random() < 0.1:
            del data["QUERY"]
        return Request("request", data=data)

    def request(self) -> Request:
        r = self.rng
        choice = r.random()
        if choice < 0.5:
            return Request("valid", data=self.params(self.query()))
        if choice < 0.85:
            return Request("invalid", data=self.params(self.mutate(self.query())))
        if choice < 0.93:
            return Request("limit", data=self.params(self.limit_buster()))
        return self.odd_request()


# -- running ----------------------------------------------------------------------------------


@dataclass
class Answer:
    request: Request
    status: int
    elapsed_s: float
    problem: str | None = None


@dataclass
class Report:
    answers: list[Answer] = field(default_factory=list)
    checksums_before: dict[str, str] = field(default_factory=dict)
    checksums_after: dict[str, str] = field(default_factory=dict)

    @property
    def problems(self) -> list[Answer]:
        return [a for a in self.answers if a.problem]

    def summary(self, slowest: int = 10) -> dict:
        by_status = Counter(a.status for a in self.answers)
        by_kind = Counter(f"{a.request.kind} {a.status}" for a in self.answers)
        times = sorted(a.elapsed_s for a in self.answers)
        slow = sorted(self.answers, key=lambda a: -a.elapsed_s)[:slowest]
        return {
            "requests": len(self.answers),
            "by_status": {str(k): v for k, v in sorted(by_status.items())},
            "by_kind_and_status": dict(sorted(by_kind.items())),
            "seconds": {
                "total": round(sum(times), 1),
                "median": round(times[len(times) // 2], 4) if times else None,
                "p99": round(times[int(len(times) * 0.99)], 3) if times else None,
                "max": round(times[-1], 3) if times else None,
            },
            "slowest": [
                {"s": round(a.elapsed_s, 3), "status": a.status, "request": a.request.describe()}
                for a in slow
            ],
            "problems": [
                {"problem": a.problem, "status": a.status, "request": a.request.describe(400)}
                for a in self.problems[:50]
            ],
            "checksums_held": (
                self.checksums_before == self.checksums_after if self.checksums_before else None
            ),
        }


def check(reply: httpx.Response, elapsed_s: float, limit_s: float) -> str | None:
    """What is wrong with one answer, or None."""
    if reply.status_code not in (200, 400):
        return f"HTTP {reply.status_code}"
    if elapsed_s >= limit_s:
        return f"answered after {elapsed_s:.1f} s (limit {limit_s:g} s)"
    ctype = reply.headers.get("content-type", "")
    if reply.status_code == 400 or "xml" in ctype:
        if "votable" not in ctype and "xml" not in ctype:
            return f"error as {ctype}, not VOTable"
        try:
            root = ET.fromstring(reply.content)
        except ET.ParseError as exc:
            return f"not XML: {exc}"
        statuses = [
            i.get("value") for i in root.iter(f"{VOT}INFO") if i.get("name") == "QUERY_STATUS"
        ]
        want = "ERROR" if reply.status_code == 400 else "OK"
        if not statuses or statuses[0] != want:
            return f"QUERY_STATUS {statuses} with HTTP {reply.status_code}"
        if reply.status_code == 400 and "internal error" in reply.text:
            return "internal error"
    return None


def send(client: httpx.Client, url: str, req: Request) -> httpx.Response:
    if req.method == "GET":
        return client.get(f"{url}/sync", params=req.data)
    if req.content is not None:
        return client.post(f"{url}/sync", content=req.content, headers=req.headers)
    if req.files is not None:
        return client.post(f"{url}/sync", files=req.files)
    return client.post(f"{url}/sync", data=req.data)


def checksums(dsn: str) -> dict[str, str]:
    """md5 of every row of every table but the job table, read as the owner."""
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'caomai_uws')"
            " AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1"
        ).fetchall()
        for (name,) in tables:
            out[name] = conn.execute(
                f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                f" FROM {name} AS t"
            ).fetchone()[0]
    return out


def run(
    url: str,
    n: int,
    seed: int,
    limit_s: float,
    owner_dsn: str | None = None,
    progress: int = 0,
) -> Report:
    """Send ``n`` generated requests one after the other; checksums around them if a DSN of
    the owner is given."""
    report = Report()
    if owner_dsn:
        report.checksums_before = checksums(owner_dsn)
    gen = Generator(Schema.from_service(url), seed)
    with httpx.Client(timeout=limit_s + 30) as client:
        for i in range(n):
            req = gen.request()
            started = time.monotonic()
            try:
                reply = send(client, url, req)
            except httpx.HTTPError as exc:
                elapsed = time.monotonic() - started
                report.answers.append(Answer(req, 0, elapsed, f"no answer: {exc!r}"))
                continue
            elapsed = time.monotonic() - started
            report.answers.append(
                Answer(req, reply.status_code, elapsed, check(reply, elapsed, limit_s))
            )
            if progress and (i + 1) % progress == 0:
                print(f"{i + 1} requests, {len(report.problems)} problems", flush=True)
    if owner_dsn:
        report.checksums_after = checksums(owner_dsn)
    return report
