"""Who may see a plane: the one access rule, as SQL.

A plane is public when its ``metaRelease`` is NULL or has passed; before that it is hidden from
every TAP user, whatever its ``metaReadGroups`` (the service has no authenticated groups). The
TAP layer wraps every published table carrying ``metaRelease`` in it, and every figure a map
publishes is computed from planes it admits. (The SQL functions and migration 0004 spell the
same rule in SQL, where Python cannot reach.)
"""

from __future__ import annotations


def public(alias: str | None = None) -> str:
    """The condition, for rows of ``alias`` (a table or subquery carrying ``metarelease``)."""
    column = f"{alias}.metarelease" if alias else "metarelease"
    return f"({column} IS NULL OR {column} <= now())"
