"""Heavy use does not take the service down (issue 14, part 3): slow queries wait in line while
cheap requests keep answering, results are bounded in bytes, a full line is a clear 503."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET

import httpx
import pytest

from .tapserver import running_service, synthetic_database

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
#: legal and slow: 400^3 rows to count
SLOW = "SELECT COUNT(*) AS n FROM caom2.Plane AS a, caom2.Plane AS b, caom2.Plane AS c"
#: one more join: 400^4 rows, always past a 5 s query limit (on an idle machine SLOW's 400^3
#: can finish in under a second, before the query meant to find the line full arrives)
SLOWER = SLOW + ", caom2.Plane AS d"


@pytest.fixture(scope="module")
def archive(cluster_dsn: str):
    with synthetic_database(cluster_dsn, 400, seed=21) as dsn:
        yield dsn


def _sync(base: str, query: str, timeout: float = 60, **extra: str) -> httpx.Response:
    return httpx.post(f"{base}/sync", data={"QUERY": query, **extra}, timeout=timeout)


def _timed(func, *args, **kw) -> tuple[float, httpx.Response]:  # noqa: ANN001
    t0 = time.perf_counter()
    r = func(*args, **kw)
    return time.perf_counter() - t0, r


def test_cheap_requests_answer_while_slow_queries_fill_every_slot(archive: str) -> None:
    with running_service(archive, query_slots=2, query_timeout_s=6, queue_wait_s=20) as base:
        answers: list[int] = []
        slow = [
            threading.Thread(target=lambda: answers.append(_sync(base, SLOW).status_code))
            for _ in range(8)  # the probe's eight, on two slots: six wait in line
        ]
        for t in slow:
            t.start()
        time.sleep(1.5)
        took, r = _timed(httpx.get, f"{base}/availability", timeout=30)
        assert r.status_code == 200 and "available>true<" in r.text and took < 1.0, (took, r.text)
        took, r = _timed(
            _sync, base, "SELECT TOP 5 table_name FROM TAP_SCHEMA.tables", RESPONSEFORMAT="csv"
        )
        assert r.status_code == 200 and took < 1.0, (took, r.text)
        took, r = _timed(
            _sync,
            base,
            "SELECT p.publisherID FROM caom2.Plane AS p WHERE p.publisherID = 'x'",
        )
        assert r.status_code == 200 and took < 1.0, (took, r.text)
        took, r = _timed(httpx.get, f"{base}/tables", timeout=30)
        assert r.status_code == 200 and took < 1.0
        for t in slow:
            t.join(120)
        # each slow query ran to its own limit (400, the timeout) or finished: none was lost
        assert len(answers) == 8 and set(answers) <= {200, 400}, answers


def test_a_full_line_is_a_503_with_retry_after(archive: str) -> None:
    with running_service(archive, query_slots=1, query_timeout_s=5, queue_wait_s=1) as base:
        first = threading.Thread(target=_sync, args=(base, SLOWER))
        first.start()
        time.sleep(1.0)
        # a query that would run (and answer 200) if it got the slot
        took, r = _timed(_sync, base, SLOW.replace("COUNT(*) AS n", "COUNT(*) AS m"))
        first.join(60)
        assert r.status_code == 503 and took < 4, (took, r.status_code, r.text[:300])
        assert "busy" in r.text and int(r.headers["Retry-After"]) >= 1
        assert 'name="QUERY_STATUS" value="ERROR"' in r.text


def test_a_result_is_bounded_in_bytes_and_marked_as_overflow(archive: str) -> None:
    """The probe's cross join of fingerprints with MAXREC=40000 was a 380 MB body in 160 s."""
    limit = 2 << 20
    with running_service(archive, max_response_bytes=limit) as base:
        took, r = _timed(
            _sync,
            base,
            "SELECT a.fp, b.fp FROM caomai.fingerprint AS a, caomai.fingerprint AS b",
            MAXREC="40000",
        )
        assert r.status_code == 200, r.text[:300]
        assert len(r.content) < 3 * limit and took < 20, (len(r.content), took)
        root = ET.fromstring(r.content)
        status = [
            i.get("value") for i in root.iter(f"{VOT}INFO") if i.get("name") == "QUERY_STATUS"
        ]
        assert "OVERFLOW" in status
        rows = list(root.iter(f"{VOT}TR"))
        assert 0 < len(rows) < 40000
        # a result under the limit is whole and not marked
        r = _sync(base, "SELECT TOP 10 f.fp FROM caomai.fingerprint AS f")
        status = [
            i.get("value")
            for i in ET.fromstring(r.content).iter(f"{VOT}INFO")
            if i.get("name") == "QUERY_STATUS"
        ]
        assert (
            "OVERFLOW" not in status and len(list(ET.fromstring(r.content).iter(f"{VOT}TR"))) == 10
        )
