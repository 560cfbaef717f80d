"""The TAP 1.1 service over HTTP (FastAPI/Starlette): sync, async (UWS 1.1), VOSI, examples.

Every route reads its parameters from the query string and, for POST, the form body; TAP
parameter names are case-insensitive. Query errors are VOTable error documents with HTTP 400
(503 when the database is away); UWS errors are plain text with the UWS status codes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message

from ..adql import udfs
from ..config import Settings
from . import examples, uws, vosi
from .service import Cancellable, TapService, error_output

log = logging.getLogger(__name__)
XML = "text/xml; charset=utf-8"
#: how often a running sync query checks that its client is still there, seconds
DISCONNECT_POLL_S = 0.5


class BadRequest(Exception):
    """A request the service cannot read (body too large or malformed, NUL characters): a 400
    VOTable error on every route."""


async def _form(request: Request, max_bytes: int) -> FormData:
    """The form of a POST, read only up to ``max_bytes`` of body.

    Starlette reads a whole urlencoded body into memory and reports its own limits and
    malformed multipart bodies as HTTP exceptions that FastAPI renders as JSON: here both are
    a :class:`BadRequest`."""
    too_big = f"the request body is larger than {max_bytes} bytes, this service's limit"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BadRequest(too_big)
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await request.receive()
        seen += len(message.get("body", b""))
        if seen > max_bytes:
            raise BadRequest(too_big)
        return message

    try:
        return await Request(request.scope, receive).form(max_part_size=max_bytes)
    except (BadRequest, ClientDisconnect):
        raise
    except HTTPException as exc:
        raise BadRequest(f"cannot read the request body: {exc.detail}") from None
    except Exception as exc:  # noqa: BLE001 - whatever the form parser makes of the client's bytes
        raise BadRequest(f"cannot read the request body ({type(exc).__name__}: {exc})") from None


async def _params(request: Request) -> dict[str, str]:
    """TAP/UWS parameters: names upper-cased, the last value of each wins."""
    params: dict[str, str] = {}
    for k, v in request.query_params.multi_items():
        params[k.upper()] = v
    if request.method == "POST":
        form = await _form(request, request.app.state.limits.max_body_bytes)
        try:
            for k, v in form.multi_items():
                if not isinstance(v, str):
                    params["UPLOAD"] = params.get("UPLOAD") or k
                    continue
                params[k.upper()] = v
        finally:
            await form.close()
    for k, v in params.items():
        if "\x00" in k or "\x00" in v:
            # PostgreSQL text cannot hold NUL, and no ADQL needs one
            raise BadRequest(f"the parameter {k.replace(chr(0), '')!r} contains a NUL character")
    return params


def _base(request: Request, settings_base: str | None) -> str:
    if settings_base:
        return settings_base.rstrip("/")
    return str(request.base_url).rstrip("/") + "/tap"


def create_app(settings: Settings, *, base_url: str | None = None, workers: int = 2) -> FastAPI:
    """The ASGI app; the service (pools, job threads) starts with it and stops with it."""
    state: dict[str, object] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await run_in_threadpool(TapService, settings)
        jobs = uws.JobStore(service, workers=workers)
        await run_in_threadpool(jobs.start)
        state["service"], state["jobs"] = service, jobs
        try:
            yield
        finally:
            await run_in_threadpool(jobs.stop)
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="caomai TAP",
        description="TAP 1.1 with content search: fp_similar, in_node, has_object_node",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.limits = settings.limits

    def service() -> TapService:
        return state["service"]  # type: ignore[return-value]

    def jobs() -> uws.JobStore:
        return state["jobs"]  # type: ignore[return-value]

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        out = error_output(f"internal error ({type(exc).__name__}): {exc}", 500)
        return Response(out.body, out.status, media_type=out.content_type)

    @app.exception_handler(BadRequest)
    @app.exception_handler(ClientDisconnect)
    async def _bad_request(request: Request, exc: Exception) -> Response:
        """Bad input; also a client gone while it sent its body (nobody reads the answer, and
        it is no server error to log)."""
        message = str(exc) if isinstance(exc, BadRequest) else "the client went away"
        out = error_output(message, 400)
        return Response(out.body, out.status, media_type=out.content_type)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        """Starlette's own errors (no such path, method not allowed) as VOTable, not JSON."""
        out = error_output(str(exc.detail), exc.status_code)
        return Response(out.body, out.status, headers=exc.headers, media_type=out.content_type)

    @app.exception_handler(uws.JobError)
    async def _job_error(request: Request, exc: uws.JobError) -> Response:
        return PlainTextResponse(str(exc) + "\n", exc.status)

    # -- TAP ---------------------------------------------------------------------------------

    @app.get("/tap", response_class=HTMLResponse)
    async def home(request: Request) -> HTMLResponse:
        base = _base(request, base_url)
        items = "".join(
            f'<li><a href="{base}/{p}">{p}</a></li>'
            for p in ("capabilities", "availability", "tables", "examples", "async")
        )
        funcs = "".join(f"<li><code>{u.usage()}</code>: {u.description}</li>" for u in udfs.UDFS)
        return HTMLResponse(
            f"<html><head><title>caomai TAP</title></head><body><h1>caomai TAP service</h1>"
            f"<p>TAP 1.1 at <code>{base}</code> (sync: <code>{base}/sync</code>)."
            f" Use TOPCAT, pyvo or any TAP client.</p><ul>{items}</ul>"
            f"<h2>ADQL functions</h2><ul>{funcs}</ul></body></html>"
        )

    @app.api_route("/tap/sync", methods=["GET", "POST"])
    async def sync(request: Request) -> Response:
        params = await _params(request)
        query = Cancellable()
        task = asyncio.ensure_future(
            run_in_threadpool(
                service().run_query,
                params,
                timeout_s=settings.query_timeout_s,
                cancel_hook=query.hook,
            )
        )
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if not task.done() and await request.is_disconnected():
                # nobody will read the answer: stop the work in the database now
                await run_in_threadpool(query.cancel)
        out = task.result()
        return Response(out.body, out.status, media_type=out.content_type)

    @app.get("/tap/availability")
    async def availability() -> Response:
        ok, note = await run_in_threadpool(service().available)
        return Response(vosi.availability(ok, note), media_type=XML)

    @app.get("/tap/capabilities")
    async def capabilities(request: Request) -> Response:
        text = vosi.capabilities(
            _base(request, base_url),
            default_maxrec=min(settings.default_maxrec, settings.max_rows),
            max_rows=settings.max_rows,
            default_duration=min(uws.DEFAULT_DURATION_S, settings.async_max_duration_s),
            max_duration=settings.async_max_duration_s,
            retention=settings.job_retention_s,
            limits=settings.limits,
        )
        return Response(text, media_type=XML)

    @app.get("/tap/tables")
    async def tables(request: Request) -> Response:
        cat = await run_in_threadpool(service().catalog)
        detail = request.query_params.get("detail", "max") != "min"
        return Response(vosi.tableset(cat, detail), media_type=XML)

    @app.get("/tap/tables/{name}")
    async def one_table(name: str) -> Response:
        cat = await run_in_threadpool(service().catalog)
        for t in cat.tables:
            if t.name == name:
                return Response(vosi.table(cat, t), media_type=XML)
        return PlainTextResponse(f"no table {name!r}; /tables lists them\n", 404)

    @app.get("/tap/examples", response_class=HTMLResponse)
    async def examples_page(request: Request) -> HTMLResponse:
        refs = await run_in_threadpool(service().example_references)
        return HTMLResponse(examples.document(_base(request, base_url), refs))

    # -- UWS ---------------------------------------------------------------------------------

    def job_url(request: Request, job_id: str) -> str:
        return f"{_base(request, base_url)}/async/{job_id}"

    @app.get("/tap/async")
    async def job_list(request: Request) -> Response:
        phases = [v.upper() for k, v in request.query_params.multi_items() if k.upper() == "PHASE"]
        params = {k.upper(): v for k, v in request.query_params.items()}
        after = uws.parse_time(params["AFTER"]) if params.get("AFTER") else None
        last = None
        if params.get("LAST"):
            try:
                last = int(params["LAST"])
            except ValueError:
                raise uws.JobError("LAST must be a positive integer") from None
            if last <= 0:
                raise uws.JobError("LAST must be a positive integer")
        found = await run_in_threadpool(jobs().list, phases, after, last)
        return Response(uws.jobs_xml(found, _base(request, base_url)), media_type=XML)

    @app.post("/tap/async")
    async def job_create(request: Request) -> Response:
        params = await _params(request)
        job = await run_in_threadpool(jobs().create, params)
        return RedirectResponse(job_url(request, job.job_id), status_code=303)

    @app.get("/tap/async/{job_id}")
    async def job_get(request: Request, job_id: str) -> Response:
        params = {k.upper(): v for k, v in request.query_params.items()}
        if params.get("WAIT"):
            try:
                wait = min(float(params["WAIT"]), 60.0)
            except ValueError:
                raise uws.JobError("WAIT must be a number of seconds") from None
            if wait < 0:
                wait = 60.0  # WAIT=-1: as long as the service allows
            phase = params.get("PHASE", "").upper() or None
            job = await run_in_threadpool(jobs().wait, job_id, wait, phase)
        else:
            job = await run_in_threadpool(jobs().get, job_id)
        return Response(uws.job_xml(job, _base(request, base_url)), media_type=XML)

    @app.post("/tap/async/{job_id}")
    async def job_post(request: Request, job_id: str) -> Response:
        params = await _params(request)
        if params.get("ACTION", "").upper() == "DELETE":
            await run_in_threadpool(jobs().delete, job_id)
            return RedirectResponse(f"{_base(request, base_url)}/async", status_code=303)
        if "PHASE" in params:
            await run_in_threadpool(jobs().phase, job_id, params.pop("PHASE"))
        if params:
            await run_in_threadpool(jobs().set_parameters, job_id, params)
        return RedirectResponse(job_url(request, job_id), status_code=303)

    @app.delete("/tap/async/{job_id}")
    async def job_delete(request: Request, job_id: str) -> Response:
        await run_in_threadpool(jobs().delete, job_id)
        return RedirectResponse(f"{_base(request, base_url)}/async", status_code=303)

    @app.get("/tap/async/{job_id}/phase")
    async def job_phase(job_id: str) -> Response:
        job = await run_in_threadpool(jobs().get, job_id)
        return PlainTextResponse(job.phase)

    @app.post("/tap/async/{job_id}/phase")
    async def job_phase_post(request: Request, job_id: str) -> Response:
        params = await _params(request)
        if "PHASE" not in params:
            raise uws.JobError("POST PHASE=RUN or PHASE=ABORT")
        await run_in_threadpool(jobs().phase, job_id, params["PHASE"])
        return RedirectResponse(job_url(request, job_id), status_code=303)

    @app.get("/tap/async/{job_id}/executionduration")
    async def job_duration(job_id: str) -> Response:
        job = await run_in_threadpool(jobs().get, job_id)
        return PlainTextResponse(str(job.execution_duration))

    @app.post("/tap/async/{job_id}/executionduration")
    async def job_duration_post(request: Request, job_id: str) -> Response:
        params = await _params(request)
        if "EXECUTIONDURATION" not in params:
            raise uws.JobError("POST EXECUTIONDURATION=<seconds>")
        await run_in_threadpool(jobs().set_duration, job_id, params["EXECUTIONDURATION"])
        return RedirectResponse(job_url(request, job_id), status_code=303)

    @app.get("/tap/async/{job_id}/destruction")
    async def job_destruction(job_id: str) -> Response:
        job = await run_in_threadpool(jobs().get, job_id)
        return PlainTextResponse(uws._iso(job.destruction_time) or "")

    @app.post("/tap/async/{job_id}/destruction")
    async def job_destruction_post(request: Request, job_id: str) -> Response:
        params = await _params(request)
        if "DESTRUCTION" not in params:
            raise uws.JobError("POST DESTRUCTION=<ISO 8601 time>")
        await run_in_threadpool(jobs().set_destruction, job_id, params["DESTRUCTION"])
        return RedirectResponse(job_url(request, job_id), status_code=303)

    @app.get("/tap/async/{job_id}/quote")
    async def job_quote(job_id: str) -> Response:
        await run_in_threadpool(jobs().get, job_id)
        return PlainTextResponse("")

    @app.get("/tap/async/{job_id}/owner")
    async def job_owner(job_id: str) -> Response:
        job = await run_in_threadpool(jobs().get, job_id)
        return PlainTextResponse(job.owner_id or "")

    @app.get("/tap/async/{job_id}/parameters")
    async def job_parameters(job_id: str) -> Response:
        job = await run_in_threadpool(jobs().get, job_id)
        return Response(uws.parameters_xml(job), media_type=XML)

    @app.post("/tap/async/{job_id}/parameters")
    async def job_parameters_post(request: Request, job_id: str) -> Response:
        params = await _params(request)
        await run_in_threadpool(jobs().set_parameters, job_id, params)
        return RedirectResponse(job_url(request, job_id), status_code=303)

    @app.get("/tap/async/{job_id}/error")
    async def job_error(job_id: str) -> Response:
        job = await run_in_threadpool(jobs().get, job_id)
        if job.phase != "ERROR":
            return PlainTextResponse(f"job {job_id} is {job.phase}: no error\n", 404)
        out = error_output(job.error_summary or "unknown error", 200)
        return Response(out.body, media_type=out.content_type)

    @app.get("/tap/async/{job_id}/results")
    async def job_results(request: Request, job_id: str) -> Response:
        job = await run_in_threadpool(jobs().get, job_id)
        return Response(uws.results_xml(job, _base(request, base_url)), media_type=XML)

    @app.get("/tap/async/{job_id}/results/result")
    async def job_result(job_id: str) -> Response:
        body, mime = await run_in_threadpool(jobs().result, job_id)
        return Response(body, media_type=mime)

    return app
