"""The page (``/``), its static files, the JSON API (``/api/...``) and the previews
(``/preview/...``), mounted on the TAP app by ``caomai serve`` (entry point ``caomai.web``).

Database reads run on the TAP service's cheap lane and read-only connections; fingerprinting an
upload runs on the query lane (it is CPU work as heavy as a query). A preview of a plane that is
not public answers exactly as one that does not exist."""

from __future__ import annotations

import csv
import functools
import io
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import UploadFile

from caomai_db import previews
from caomai_db.config import IMAGE_VEC_DIM, Settings
from caomai_db.errors import UploadError
from caomai_db.tap.service import Output

from . import mapdata

HERE = Path(__file__).parent
PNG = "image/png"
#: the similar images an upload lists
SIMILAR_TOP = 10
MAX_SIMILAR = 100
_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status)


def _not_found() -> Response:
    """The one answer for a preview that does not exist or is not public."""
    return _error("no such preview", 404)


def similar_adql(fp: list[float], top: int = SIMILAR_TOP) -> str:
    """The query that lists the archive images most similar to an explicit vector: an image
    vector (IMAGE_VEC_DIM values) is compared with f.image_vec, what makes images alike as
    images (issue 17); a 400-value fingerprint with f.fp."""
    ref = "[" + ",".join(f"{v:.6g}" for v in fp) + "]"
    column = "image_vec" if len(fp) == IMAGE_VEC_DIM else "fp"
    return (
        f"SELECT TOP {top} f.publisherID, f.planeID, fp_similar(f.{column}, '{ref}') AS sim\n"
        "FROM caomai.fingerprint AS f\nORDER BY sim DESC"
    )


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the page, the API and the previews to the TAP app."""

    @functools.cache
    def active_models():  # noqa: ANN202
        """The active maps, made on the first upload (torch is imported then, not at start)."""
        from .upload import ActiveModels

        return ActiveModels(settings)

    max_upload = settings.max_upload_bytes

    def lanes():  # noqa: ANN202
        return app.state.lanes

    def service():  # noqa: ANN202
        return app.state.tap_service()

    async def read(func, *args: Any) -> Any:  # noqa: ANN001
        """``func(conn, *args)`` on a cheap read-only connection, on the cheap lane."""

        def run() -> Any:
            with service().cheap_pool.connection(timeout=settings.queue_wait_s) as conn:
                try:
                    return func(conn, *args)
                finally:
                    conn.rollback()

        return await lanes().run(lanes().cheap, run)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(
            _templates.get_template("index.html").render(
                max_upload_mb=round(max_upload / 2**20, 1), similar_top=SIMILAR_TOP
            )
        )

    @app.get("/api/status")
    async def status() -> JSONResponse:
        return JSONResponse(await read(mapdata.progress))

    def no_map(kind: str) -> JSONResponse:
        return _error(f"no active {kind} (maps are map1 and map2)", 404)

    def prototype_url(kind: str, node: dict[str, Any]) -> str | None:
        has = node.pop("has_prototype")
        return f"/api/maps/{kind}/{node['node']}/prototype.png" if has else None

    @app.get("/api/maps/{kind}")
    async def map_nodes(kind: str) -> Response:
        model, nodes = await read(mapdata.map_view, kind)
        if model is None:
            return no_map(kind)
        for n in nodes:
            n["prototype"] = prototype_url(kind, n)
        return JSONResponse({"map": kind, "model": model, "nodes": nodes})

    @app.get("/api/maps/{kind}/{node_id}")
    async def map_node(kind: str, node_id: int) -> Response:
        model, found = await read(mapdata.node_view, kind, node_id)
        if model is None:
            return no_map(kind)
        if found is None:
            return _error(
                f"{kind} has no node {node_id} (0..{model['rows'] * model['cols'] - 1})", 404
            )
        found["prototype"] = prototype_url(kind, found)
        for s in found["samples"]:
            if kind == "map1":
                s["url"] = f"/preview/object/{model['id']}/{s['planeid']}/{node_id}.png"
            else:
                s["url"] = f"/preview/plane/{s['planeid']}.png" if s.get("has_preview") else None
        return JSONResponse(found)

    @app.get("/api/maps/{kind}/{node_id}/prototype.png")
    async def prototype(kind: str, node_id: int) -> Response:
        png = await read(mapdata.prototype_png, kind, node_id)
        return Response(png, media_type=PNG) if png else _not_found()

    @app.get("/preview/plane/{ref:path}")
    async def plane_preview(ref: str) -> Response:
        ref = ref.removesuffix(".png")
        png = await read(previews.plane_png, ref)
        return Response(png, media_type=PNG) if png else _not_found()

    @app.get("/preview/object/{model_id}/{planeid}/{node_id}.png")
    async def object_preview(model_id: int, planeid: str, node_id: int) -> Response:
        png = await read(previews.object_png, model_id, planeid, node_id)
        return Response(png, media_type=PNG) if png else _not_found()

    @app.post("/api/fingerprint")
    async def fingerprint(request: Request) -> Response:
        """multipart field ``file``; optional query parameter ``top`` (similar images, 1..100)."""
        raw_top = request.query_params.get("top", str(SIMILAR_TOP))
        if not raw_top.isdigit() or not 1 <= int(raw_top) <= MAX_SIMILAR:
            return _error(f"top must be an integer from 1 to {MAX_SIMILAR}", 400)
        top = int(raw_top)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload + 64 * 1024:
            return _error(f"the upload is larger than {max_upload} bytes", 413)
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception as exc:  # noqa: BLE001 - any unreadable body is the client's
            return _error(f"not a multipart form with a field 'file' ({exc})", 400)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return _error("send the image as the multipart field 'file'", 400)
        data = await upload.read(max_upload + 1)
        await form.close()
        if len(data) > max_upload:
            return _error(f"the upload is larger than {max_upload} bytes", 413)

        def work() -> dict[str, Any]:
            from .upload import fingerprint_upload

            with service().pool.connection(timeout=settings.queue_wait_s) as conn:
                got = fingerprint_upload(data, active_models(), conn)
                conn.rollback()
            # ranked by what makes images alike as images when the archive's Map 2 is
            adql = similar_adql(got.image_vec or got.fp, top)
            prepared = service().prepare(
                {"LANG": "ADQL", "QUERY": adql, "RESPONSEFORMAT": "csv"}, classify=False
            )
            out = (
                prepared
                if isinstance(prepared, Output)
                else service().execute(prepared, timeout_s=settings.query_timeout_s)
            )
            if out.status != 200:
                raise UploadError(f"the similarity query failed: {out.error}", 503)
            rows = list(csv.DictReader(io.StringIO(out.body.decode())))
            return {
                "fp": [float(f"{v:.6g}") for v in got.fp],
                "image_vec": (
                    None if got.image_vec is None else [float(f"{v:.6g}") for v in got.image_vec]
                ),
                "map2_node": got.map2_node,
                "n_objects": got.n_detected,
                "n_sampled": got.n_sampled,
                "objects": got.objects,
                "similar": [
                    {"publisherID": r["publisherID"], "sim": float(r["sim"])} for r in rows
                ],
                "adql": adql,
                "models": {"map1": got.map1_model, "map2": got.map2_model},
            }

        try:
            answer = await lanes().run(lanes().heavy, work)
        except UploadError as exc:
            return _error(str(exc), exc.status)
        return JSONResponse(answer)
