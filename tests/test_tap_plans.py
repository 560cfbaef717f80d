"""Similarity queries use the HNSW index, and stay exact (recall@k) under metadata filters of
any selectivity, whichever plan the selectivity picks."""

from __future__ import annotations

import numpy as np
import pytest

from caomai_db.adql import plan as plan_mod
from caomai_db.adql.rewrite import translate
from caomai_db.config import Settings
from caomai_db.tap.service import TapService
from caomai_loaders import synthetic

from .tapserver import Truth, synthetic_database

N = 5000
K = 50


@pytest.fixture(scope="module")
def service(cluster_dsn: str):
    with synthetic_database(cluster_dsn, N, seed=5) as dsn:
        svc = TapService(Settings.from_env(dsn), pool_size=2)
        try:
            yield svc, Truth.load(dsn)
        finally:
            svc.close()


def query(ref: str, fraction: float | None) -> str:
    where = (
        "" if fraction is None else f" WHERE p.time_bounds_lower < {synthetic.time_cut(fraction)}"
    )
    return (
        f"SELECT TOP {K} p.publisherID, fp_similar(f.fp, '{ref}') AS sim"
        " FROM caom2.Plane AS p JOIN caomai.fingerprint AS f ON f.planeID = p.planeID"
        f"{where} ORDER BY sim DESC"
    )


def explain(svc: TapService, sql: str) -> str:
    with svc.pool.connection() as conn:
        rows = conn.execute("EXPLAIN " + sql, prepare=False).fetchall()
        conn.rollback()
    return "\n".join(r[0] for r in rows)


def test_unfiltered_similarity_uses_the_hnsw_index(service) -> None:
    svc, truth = service
    ref = truth.publisherid[~truth.proprietary][0]
    t = translate(
        f"SELECT TOP 10 publisherID FROM caomai.fingerprint ORDER BY fp_similar(fp, '{ref}') DESC",
        svc.catalog(),
        1000,
    )
    plan = explain(svc, t.sql("default"))
    assert "Index Scan using ix_fingerprint_fp_hnsw" in plan, plan
    # the reference vector is computed once (an InitPlan), not per row
    assert "InitPlan" in plan and "SubPlan" not in plan, plan
    # the join with the metadata keeps the index too
    t = translate(query(ref, None), svc.catalog(), 1000)
    plan = explain(svc, t.sql("default"))
    assert "ix_fingerprint_fp_hnsw" in plan, plan
    # the exact plan of a selective filter sorts the survivors instead
    t = translate(query(ref, 0.01), svc.catalog(), 1000)
    plan = explain(svc, t.sql("exact"))
    assert "ix_fingerprint_fp_hnsw" not in plan and "Sort" in plan, plan


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.2, 1.0])
@pytest.mark.parametrize("exact_max_rows", [0, 15_000], ids=["index-plan", "default-choice"])
def test_top_k_recall_under_filters(service, fraction: float, exact_max_rows: int) -> None:
    """recall@50 against numpy over the stored counts; exact_max_rows=0 forces the index plan."""
    svc, truth = service
    public = np.flatnonzero(~truth.proprietary)
    ps = plan_mod.PlanSettings(exact_max_rows=exact_max_rows)
    cut = synthetic.time_cut(fraction)
    keep = ~truth.proprietary & (truth.time_lo < cut)
    recalls = []
    for ref in truth.publisherid[public[[7, 77, 777]]]:
        sim = truth.similarity([ref])
        order = [j for j in np.argsort(-sim) if keep[j]]
        want = set(truth.publisherid[order[:K]])
        t = translate(query(ref, fraction), svc.catalog(), 1000)
        with svc.pool.connection() as conn:
            res = plan_mod.run(conn, t, svc.catalog(), maxrec=1000, timeout_s=30, plan_settings=ps)
        got = [r[0] for r in res.rows]
        assert len(got) == min(K, len(order))
        recalls.append(len(want & set(got)) / len(want))
        expected = "index" if exact_max_rows == 0 else "exact"
        assert res.plan.name == expected
    assert min(recalls) >= 0.99, recalls
