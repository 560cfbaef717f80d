"""The JSON API under the web page, against a real archive with both maps trained: maps and
nodes, previews that keep proprietary planes hidden, and uploads fingerprinted with the active
models whose ADQL gives the same list through TAP."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import psycopg
import pytest
import pyvo
from PIL import Image

from .tapserver import running_service
from .webarchive import WebArchive, web_archive

pytestmark = pytest.mark.slow
WEB = Path(__file__).resolve().parents[1] / "web"


@pytest.fixture(scope="module")
def archive(cluster_dsn: str) -> WebArchive:
    return web_archive(cluster_dsn)


@pytest.fixture(scope="module")
def site(archive: WebArchive):
    with running_service(archive.dsn) as tap:
        yield tap.removesuffix("/tap")


def png_size(body: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(body)) as img:
        assert img.format == "PNG"
        return img.size


def public_planes(archive: WebArchive) -> dict[str, str]:
    with psycopg.connect(archive.dsn) as conn:
        return dict(
            conn.execute(
                "SELECT planeid::text, publisherid FROM caom2.plane"
                " WHERE metarelease IS NULL OR metarelease <= now()"
            ).fetchall()
        )


def test_both_maps_list_400_nodes_on_their_grid(site: str, archive: WebArchive) -> None:
    for kind in ("map1", "map2"):
        reply = httpx.get(f"{site}/api/maps/{kind}", timeout=60)
        assert reply.status_code == 200, reply.text
        data = reply.json()
        model = data["model"]
        assert data["map"] == kind and len(data["nodes"]) == model["rows"] * model["cols"] == 400
        for n in data["nodes"]:
            assert n["node"] == n["row"] * model["cols"] + n["col"]
            assert n["members"] >= 0
        with_proto = [n for n in data["nodes"] if n["prototype"]]
        assert with_proto, f"{kind}: no node has a prototype picture"
        png_size(httpx.get(site + with_proto[0]["prototype"]).content)
    # Map 2's members are the public fingerprinted planes, nothing more
    nodes = httpx.get(f"{site}/api/maps/map2").json()["nodes"]
    with psycopg.connect(archive.dsn) as conn:
        public = conn.execute(
            "SELECT count(*) FROM caomai.fingerprint"
            " WHERE map2_node IS NOT NULL AND (metarelease IS NULL OR metarelease <= now())"
        ).fetchone()[0]
    assert (
        sum(n["members"] for n in nodes) == public == len(archive.truth) - len(archive.proprietary)
    )


def test_a_node_shows_up_to_9_public_samples_that_are_pictures(
    site: str, archive: WebArchive
) -> None:
    public = public_planes(archive)
    for kind in ("map1", "map2"):
        nodes = httpx.get(f"{site}/api/maps/{kind}").json()["nodes"]
        busiest = max(nodes, key=lambda n: n["members"])
        info = httpx.get(f"{site}/api/maps/{kind}/{busiest['node']}").json()
        assert info["node"] == busiest["node"] and info["members"] == busiest["members"]
        assert 1 <= len(info["samples"]) <= 9
        for s in info["samples"]:
            assert s["planeid"] in public, "a sample names a proprietary plane"
            reply = httpx.get(site + s["url"])
            assert reply.status_code == 200
            w, h = png_size(reply.content)
            assert min(w, h) >= 16
        distances = [s["distance"] for s in info["samples"]]
        assert distances == sorted(distances)
    info = httpx.get(f"{site}/api/maps/map2/{busiest['node']}").json()
    assert abs(sum(info["shares"]["filter"].values()) - 1) < 1e-3


def test_a_proprietary_preview_answers_as_a_missing_one(site: str, archive: WebArchive) -> None:
    assert archive.proprietary, "the archive must hold proprietary planes"
    with psycopg.connect(archive.dsn) as conn:
        private = conn.execute(
            "SELECT planeid::text, publisherid FROM caom2.plane WHERE metarelease > now() LIMIT 1"
        ).fetchone()
        stored = conn.execute(
            "SELECT count(*) FROM caomai.preview WHERE planeid = %s", (private[0],)
        ).fetchone()[0]
    assert stored == 1, "the loader writes a preview for every plane; the service hides it"
    missing = httpx.get(f"{site}/preview/plane/00000000-0000-0000-0000-000000000000.png")
    for ref in private:
        reply = httpx.get(f"{site}/preview/plane/{ref}.png")
        assert (reply.status_code, reply.content) == (missing.status_code, missing.content)
    assert missing.status_code == 404
    public_id = next(iter(public_planes(archive)))
    assert httpx.get(f"{site}/preview/plane/{public_id}.png").status_code == 200


def test_an_upload_is_fingerprinted_and_its_adql_gives_the_same_list(
    site: str, archive: WebArchive
) -> None:
    path, cls = next(iter(archive.uploads.items()))
    with psycopg.connect(archive.dsn) as conn:
        before = conn.execute(
            "SELECT (SELECT count(*) FROM caomai.fingerprint), (SELECT count(*) FROM caom2.plane),"
            " (SELECT count(*) FROM caomai.object_annotation)"
        ).fetchone()
    reply = httpx.post(
        f"{site}/api/fingerprint", files={"file": (path.name, path.read_bytes())}, timeout=120
    )
    assert reply.status_code == 200, reply.text
    got = reply.json()
    assert len(got["fp"]) == 400 and min(got["fp"]) >= 0 and sum(got["fp"]) > 0
    assert 0 <= got["map2_node"] < 400
    assert got["n_objects"] >= len(got["objects"]) > 0
    assert all(0 <= o["map1_node"] < 400 for o in got["objects"])
    assert len(got["similar"]) == 10
    # "similar" is ranked by the image vector, which this archive's Map 2 is trained on
    assert len(got["image_vec"]) == 416
    assert "fp_similar(f.image_vec, '[" in got["adql"]
    assert httpx.get(f"{site}/api/maps/map2").json()["model"]["input"] == "image_vec"
    assert not set(s["publisherID"] for s in got["similar"]) & archive.proprietary
    table = pyvo.dal.TAPService(f"{site}/tap").run_sync(got["adql"]).to_table()
    assert [str(v) for v in table["publisherID"]] == [s["publisherID"] for s in got["similar"]]
    assert [round(float(v), 4) for v in table["sim"]] == [
        round(s["sim"], 4) for s in got["similar"]
    ]
    with psycopg.connect(archive.dsn) as conn:
        after = conn.execute(
            "SELECT (SELECT count(*) FROM caomai.fingerprint), (SELECT count(*) FROM caom2.plane),"
            " (SELECT count(*) FROM caomai.object_annotation)"
        ).fetchone()
    assert after == before, "an upload must not be stored"


def test_an_image_with_nothing_to_detect_is_refused_with_a_reason(site: str) -> None:
    buf = io.BytesIO()
    Image.new("L", (300, 300), 20).save(buf, "PNG")  # flat: no object to fingerprint
    reply = httpx.post(f"{site}/api/fingerprint", files={"file": ("flat.png", buf.getvalue())})
    assert reply.status_code == 400 and reply.json()["error"]


@pytest.mark.parametrize(
    ("name", "body", "status", "says"),
    [
        ("empty.fits", b"", 400, "empty"),
        ("notes.txt", b"hello, this is not an image", 400, "not an image"),
        (
            "cut.fits",
            b"SIMPLE  =                    T" + b" " * 50 + b"BITPIX  =  -32",
            400,
            "the upload",
        ),
    ],
)
def test_bad_uploads_are_4xx_with_a_reason(
    site: str, name: str, body: bytes, status: int, says: str
) -> None:
    reply = httpx.post(f"{site}/api/fingerprint", files={"file": (name, body)})
    assert reply.status_code == status, reply.text
    assert says in reply.json()["error"]


def test_a_truncated_fits_file_is_refused_with_a_reason(site: str, archive: WebArchive) -> None:
    path = next(iter(archive.uploads))
    data = path.read_bytes()
    reply = httpx.post(
        f"{site}/api/fingerprint", files={"file": ("t.fits", data[: len(data) // 3])}
    )
    assert 400 <= reply.status_code < 500 and reply.json()["error"]


def test_requests_the_api_cannot_serve_are_json_errors(site: str) -> None:
    assert httpx.get(f"{site}/api/maps/map3").status_code == 404
    reply = httpx.get(f"{site}/api/maps/map2/400")
    assert reply.status_code == 404 and "0..399" in reply.json()["error"]
    reply = httpx.post(f"{site}/api/fingerprint", data={"other": "x"})
    assert reply.status_code == 400 and "file" in reply.json()["error"]
    reply = httpx.get(f"{site}/api/nowhere")
    assert reply.status_code == 404 and reply.json()["error"]


def test_the_page_and_its_files_need_no_network(site: str) -> None:
    page = httpx.get(site + "/")
    assert page.status_code == 200 and "Map 1" in page.text and "Map 2" in page.text
    texts = [page.text]
    for path in sorted((WEB / "static").iterdir()):
        reply = httpx.get(f"{site}/static/{path.name}")
        assert reply.status_code == 200
        texts.append(reply.text)
    for text in texts:
        # the only absolute URL allowed is the SAMP hub on the user's own machine
        external = [u for u in re.findall(r"https?://[^\s\"'`<>)]+", text) if "localhost" not in u]
        assert not external, external


def test_an_upload_over_the_limit_is_a_413(archive: WebArchive) -> None:
    path = next(iter(archive.uploads))
    with running_service(archive.dsn, max_upload_bytes=100_000) as tap:
        reply = httpx.post(
            tap.removesuffix("/tap") + "/api/fingerprint",
            files={"file": (path.name, path.read_bytes())},
        )
    assert reply.status_code == 413 and "100000 bytes" in reply.json()["error"]
