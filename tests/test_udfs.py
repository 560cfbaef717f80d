"""The SQL functions and the UDF registry (caomai_db/adql/udfs.py) cannot drift apart.

The SQL files are applied by migrations (sql/NNNN/ by migration NNNN, frozen with it), so they
stay hand-written SQL; this test reads every version in order (a later definition of a
function replaces an earlier one, as the migrations do) and
checks that every ADQL function and every ``caomai_`` alias there has exactly the signatures the
registry gives, that no alias exists without a registry entry, and that each alias only calls
its plain function.
"""

from __future__ import annotations

import re
from pathlib import Path

from caomai_db.adql import udfs

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = re.compile(
    r"CREATE OR REPLACE FUNCTION (\w+)\.(\w+)\((.*?)\)\s+RETURNS\s+(.+?)\s+LANGUAGE.*?"
    r"AS \$\$(.*?)\$\$",
    re.S,
)


def _declared() -> dict[str, list[tuple[str, str]]]:
    """{function name: [(signature as udfs.sql_signatures writes it, body), ...]}, as the
    migrations leave them (the latest version of each signature)."""
    latest: dict[tuple[str, str], tuple[str, str]] = {}
    for path in sorted(ROOT.glob("sql/[0-9][0-9][0-9][0-9]/*.sql")):
        for schema, name, args, returns, body in FUNCTION.findall(path.read_text()):
            sig = f"{schema}.{name}({' '.join(args.split())}) RETURNS {' '.join(returns.split())}"
            latest[(name, sig.split(" RETURNS ")[0])] = (sig, body.strip())
    out: dict[str, list[tuple[str, str]]] = {}
    for (name, _), entry in sorted(latest.items()):
        out.setdefault(name, []).append(entry)
    return out


def test_sql_functions_have_the_registry_signatures() -> None:
    declared = _declared()
    for u in udfs.UDFS:
        for name in u.names:
            got = sorted(sig for sig, _ in declared.get(name, []))
            assert got == sorted(u.sql_signatures(name)), name


def test_every_caomai_alias_is_in_the_registry_and_calls_its_function() -> None:
    declared = _declared()
    aliases = {n for n in declared if n.startswith(udfs.PREFIX)}
    assert aliases == {u.names[1] for u in udfs.UDFS}
    for u in udfs.UDFS:
        for _, body in declared[u.names[1]]:
            assert body.startswith(f"SELECT {u.sql_function}("), body


def test_usage_hint_reads_as_before() -> None:
    assert udfs.usage_hint() == (
        "fp_similar(fp, ref), in_node(node, ref [, radius]), has_object_node(planeID, nodes"
        " [, min_count]) -- ref and nodes are string literals"
    )
