"""Run by Debian's /usr/bin/python3 (python3-gavo, psycopg2), not by the project's venv.

    /usr/bin/python3 tests/dachs/translate_examples.py DSN INPUT.json tap_schema/dachs

Imports caomai's DaCHS UDF module, widens DaCHS's UDF prefix, then for each query of the input
(tests/test_dachs.py writes it: the README's examples from caomai_db/tap/examples.py, and the
field types from the one type map, caomai_db/datatypes.py): parses, annotates and translates
it with DaCHS's own gavo.adql (morphPG, flatten) and runs the SQL on the database. Prints one
JSON object per query: adql, sql, rows. Field infos come from the database's catalogue (what
DaCHS would read from its RDs).
"""

import json
import sys

import psycopg2

dsn, input_file, module_dir = sys.argv[1:4]
sys.path.insert(0, module_dir)

import caomai_udfs  # noqa: E402

caomai_udfs.widen_prefix()

from gavo import adql  # noqa: E402

conn = psycopg2.connect(dsn)
conn.set_session(readonly=True)

with open(input_file, encoding="utf-8") as fh:
    given = json.load(fh)
TYPES = given["types"]


class Infos(adql.FieldInfoGetter):
    def getInfosFor(self, table):
        schema, name = str(table).lower().split(".")
        with conn.cursor() as cur:
            cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schema, name),
            )
            rows = cur.fetchall()
        if not rows:
            return None
        return [(c, adql.FieldInfo(TYPES.get(t, "text"), "", "")) for c, t in rows]


queries = given["queries"]
assert queries, "no queries given"
for query in queries:
    query = " ".join(query.split())
    _, tree = adql.parseAnnotating(query, Infos())
    _, tree = adql.morphPG(tree)
    sql = adql.flatten(tree)
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = [[str(v) for v in r] for r in cur.fetchall()]
    conn.rollback()
    print(json.dumps({"adql": query, "sql": sql, "rows": rows}))
