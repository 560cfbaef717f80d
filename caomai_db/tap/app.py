"""The TAP 1.1 service over HTTP (FastAPI/Starlette): sync, async (UWS 1.1), VOSI, examples.

Every route reads its parameters from the query string and, for POST, the form body; TAP
parameter names are case-insensitive. Query errors are VOTable error documents with HTTP 400
(503 when the database is away); UWS errors are plain text with the UWS status codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import entry_points

from fastapi import FastAPI, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..adql import udfs
from ..config import Settings
from ..errors import BadRequest
from . import examples, uws, vosi
from .lanes import Busy, Lanes
from .service import Cancellable, Output, TapService, error_output

log = logging.getLogger(__name__)
XML = "text/xml; charset=utf-8"
#: how often a running sync query checks that its client is still there, seconds
DISCONNECT_POLL_S = 0.5
#: packages that add pages to the app (the web maps): each entry is ``mount(app, settings)``;
#: they find the running service and the admission lanes on ``app.state`` (``tap_service()``,
#: ``lanes``). The TAP layer never imports them.
WEB_GROUP = "caomai.web"


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


class InternalErrors:
    """An unexpected exception becomes a 500 error VOTable, and the request ends there.

    Starlette's catch-all handler (``exception_handler(Exception)``) sends its response and
    then raises the exception again, and uvicorn closes the connection: a client's next
    request on the same keep-alive connection was reset.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:  # too late for an error document: let the server close the connection
                raise
            log.exception("unexpected error on %s", scope.get("path"))
            out = error_output(f"internal error ({type(exc).__name__}): {exc}", 500)
            await Response(out.body, out.status, media_type=out.content_type)(scope, receive, send)


def create_app(settings: Settings, *, base_url: str | None = None, workers: int = 2) -> FastAPI:
    """The ASGI app; the service (pools, job threads) starts with it and stops with it."""
    state: dict[str, object] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await run_in_threadpool(lambda: TapService(settings, job_workers=workers))
        jobs = uws.JobStore(service, workers=workers)
        jobs.changed.bind(asyncio.get_running_loop())
        await run_in_threadpool(jobs.start)
        state["service"], state["jobs"] = service, jobs
        try:
            yield
        finally:
            await run_in_threadpool(jobs.stop)
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="caomai TAP",
        description=f"TAP 1.1 with content search: {udfs.names_text()}",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.limits = settings.limits
    lanes = Lanes(settings)

    def service() -> TapService:
        return state["service"]  # type: ignore[return-value]

    app.state.lanes = lanes
    app.state.tap_service = service

    def jobs() -> uws.JobStore:
        return state["jobs"]  # type: ignore[return-value]

    app.add_middleware(InternalErrors)

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
        """Starlette's own errors (no such path, method not allowed): VOTable for TAP clients,
        JSON ``{"error": ...}`` under the web API."""
        if request.url.path.startswith(("/api/", "/preview/")):
            return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)
        out = error_output(str(exc.detail), exc.status_code)
        return Response(out.body, out.status, headers=exc.headers, media_type=out.content_type)

    @app.exception_handler(Busy)
    async def _busy(request: Request, exc: Busy) -> Response:
        out = error_output(str(exc), 503)
        return Response(
            out.body,
            out.status,
            headers={"Retry-After": str(exc.retry_after_s)},
            media_type=out.content_type,
        )

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
        prepared = await lanes.run(lanes.prepare, service().prepare, params)
        if isinstance(prepared, Output):
            return Response(prepared.body, prepared.status, media_type=prepared.content_type)
        query = Cancellable()
        task = asyncio.ensure_future(
            lanes.run(
                lanes.cheap if prepared.cheap else lanes.heavy,
                service().execute,
                prepared,
                timeout_s=settings.query_timeout_s,
                cancel_hook=query.hook,
            )
        )
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if not task.done() and await request.is_disconnected():
                # nobody will read the answer: stop the work in the database now (or leave
                # the line, if it is still waiting for a slot)
                await run_in_threadpool(query.cancel)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                return Response(status_code=499)
        out = task.result()
        return Response(out.body, out.status, media_type=out.content_type)

    @app.get("/tap/availability")
    async def availability() -> Response:
        try:
            ok, note = await lanes.run(lanes.cheap, service().available)
        except Busy as exc:
            ok, note = True, f"the service is up and busy: {exc}"
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
        cat = await lanes.run(lanes.cheap, service().catalog)
        detail = request.query_params.get("detail", "max") != "min"
        return Response(vosi.tableset(cat, detail), media_type=XML)

    @app.get("/tap/tables/{name}")
    async def one_table(name: str) -> Response:
        cat = await lanes.run(lanes.cheap, service().catalog)
        for t in cat.tables:
            if t.name == name:
                return Response(vosi.table(cat, t), media_type=XML)
        return PlainTextResponse(f"no table {name!r}; /tables lists them\n", 404)

    @app.get("/tap/examples", response_class=HTMLResponse)
    async def examples_page(request: Request) -> HTMLResponse:
        refs = await lanes.run(lanes.cheap, service().example_references)
        return HTMLResponse(examples.document(_base(request, base_url), refs))

    # -- UWS ---------------------------------------------------------------------------------

    def job_url(request: Request, job_id: str) -> str:
        return f"{_base(request, base_url)}/async/{job_id}"

    def requester(request: Request) -> str | None:
        """Who asks: the user the authenticating proxy names (when the operator enabled its
        header), else the anonymous client of the owner cookie, else nobody (None)."""
        header = settings.uws_owner_header
        if header:
            value = request.headers.get(header, "")
            if value.strip():
                return uws.user_owner(value, header)
        token = request.cookies.get(uws.OWNER_COOKIE)
        return uws.anonymous_owner(token) if token else None

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
                last = 0
            if not 0 < last <= uws.MAX_LAST:
                raise uws.JobError(f"LAST must be a whole number from 1 to {uws.MAX_LAST}")
        found = await run_in_threadpool(jobs().list, requester(request), phases, after, last)
        return Response(uws.jobs_xml(found, _base(request, base_url)), media_type=XML)

    @app.post("/tap/async")
    async def job_create(request: Request) -> Response:
        params = await _params(request)
        who, token = requester(request), None
        if who is None:  # a first job: the client gets an owner cookie
            token = uws.new_owner_token()
            who = uws.anonymous_owner(token)
        job_id = await run_in_threadpool(jobs().create, params, who, url_access=token is not None)
        reply = RedirectResponse(job_url(request, job_id), status_code=303)
        if token is not None:
            reply.set_cookie(
                uws.OWNER_COOKIE,
                token,
                max_age=settings.job_retention_s,
                httponly=True,
                samesite="lax",
                secure=_base(request, base_url).startswith("https:"),
            )
        return reply

    @app.get("/tap/async/{job_id}")
    async def job_get(request: Request, job_id: str) -> Response:
        params = {k.upper(): v for k, v in request.query_params.items()}
        who = requester(request)
        if params.get("WAIT"):
            try:
                wait = float(params["WAIT"])
            except ValueError:
                wait = math.nan
            if math.isnan(wait):
                raise uws.JobError("WAIT must be a number of seconds (-1: as long as allowed)")
            if wait < 0:
                wait = uws.MAX_WAIT_S  # WAIT=-1: as long as the service allows
            phase = params.get("PHASE", "").upper() or None
            job = await jobs().wait(job_id, who, wait, phase)
        else:
            job = await run_in_threadpool(jobs().get, job_id, who)
        return Response(uws.job_xml(job, _base(request, base_url)), media_type=XML)

    @app.post("/tap/async/{job_id}")
    async def job_post(request: Request, job_id: str) -> Response:
        params = await _params(request)
        who = requester(request)
        if params.get("ACTION", "").upper() == "DELETE":
            await run_in_threadpool(jobs().delete, job_id, who)
            return RedirectResponse(f"{_base(request, base_url)}/async", status_code=303)
        if "PHASE" in params:
            await run_in_threadpool(jobs().phase, job_id, who, params.pop("PHASE"))
        if params:
            await run_in_threadpool(jobs().set_parameters, job_id, who, params)
        await run_in_threadpool(jobs().get, job_id, who)
        return RedirectResponse(job_url(request, job_id), status_code=303)

    @app.delete("/tap/async/{job_id}")
    async def job_delete(request: Request, job_id: str) -> Response:
        await run_in_threadpool(jobs().delete, job_id, requester(request))
        return RedirectResponse(f"{_base(request, base_url)}/async", status_code=303)

    async def one_job(request: Request, job_id: str) -> uws.Job:
        return await run_in_threadpool(jobs().get, job_id, requester(request))

    async def set_one(request: Request, job_id: str, key: str, setter, usage: str) -> Response:  # noqa: ANN001
        """POST of one job attribute (phase, executionduration, destruction): UWS answers a
        missing value with a 400 - after the 404 of a job that is not the requester's."""
        params = await _params(request)
        who = requester(request)
        if key not in params:
            await run_in_threadpool(jobs().get, job_id, who)
            raise uws.JobError(f"POST {key}={usage}")
        await run_in_threadpool(setter, job_id, who, params[key])
        return RedirectResponse(job_url(request, job_id), status_code=303)

    @app.get("/tap/async/{job_id}/phase")
    async def job_phase(request: Request, job_id: str) -> Response:
        return PlainTextResponse((await one_job(request, job_id)).phase)

    @app.post("/tap/async/{job_id}/phase")
    async def job_phase_post(request: Request, job_id: str) -> Response:
        return await set_one(request, job_id, "PHASE", jobs().phase, "RUN or PHASE=ABORT")

    @app.get("/tap/async/{job_id}/executionduration")
    async def job_duration(request: Request, job_id: str) -> Response:
        return PlainTextResponse(str((await one_job(request, job_id)).execution_duration))

    @app.post("/tap/async/{job_id}/executionduration")
    async def job_duration_post(request: Request, job_id: str) -> Response:
        return await set_one(request, job_id, "EXECUTIONDURATION", jobs().set_duration, "<seconds>")

    @app.get("/tap/async/{job_id}/destruction")
    async def job_destruction(request: Request, job_id: str) -> Response:
        job = await one_job(request, job_id)
        return PlainTextResponse(uws._iso(job.destruction_time) or "")

    @app.post("/tap/async/{job_id}/destruction")
    async def job_destruction_post(request: Request, job_id: str) -> Response:
        return await set_one(
            request, job_id, "DESTRUCTION", jobs().set_destruction, "<ISO 8601 time>"
        )

    @app.get("/tap/async/{job_id}/quote")
    async def job_quote(request: Request, job_id: str) -> Response:
        await one_job(request, job_id)
        return PlainTextResponse("")

    @app.get("/tap/async/{job_id}/owner")
    async def job_owner(request: Request, job_id: str) -> Response:
        return PlainTextResponse((await one_job(request, job_id)).owner_id or "")

    @app.get("/tap/async/{job_id}/parameters")
    async def job_parameters(request: Request, job_id: str) -> Response:
        return Response(uws.parameters_xml(await one_job(request, job_id)), media_type=XML)

    @app.post("/tap/async/{job_id}/parameters")
    async def job_parameters_post(request: Request, job_id: str) -> Response:
        params = await _params(request)
        await run_in_threadpool(jobs().set_parameters, job_id, requester(request), params)
        return RedirectResponse(job_url(request, job_id), status_code=303)

    @app.get("/tap/async/{job_id}/error")
    async def job_error(request: Request, job_id: str) -> Response:
        job = await one_job(request, job_id)
        if job.phase != "ERROR":
            return PlainTextResponse(f"job {job_id} is {job.phase}: no error\n", 404)
        out = error_output(job.error_summary or "unknown error", 200)
        return Response(out.body, media_type=out.content_type)

    @app.get("/tap/async/{job_id}/results")
    async def job_results(request: Request, job_id: str) -> Response:
        job = await one_job(request, job_id)
        return Response(uws.results_xml(job, _base(request, base_url)), media_type=XML)

    @app.get("/tap/async/{job_id}/results/result")
    async def job_result(request: Request, job_id: str) -> Response:
        body, mime = await run_in_threadpool(jobs().result, job_id, requester(request))
        return Response(body, media_type=mime)

    for entry in sorted(entry_points(group=WEB_GROUP), key=lambda e: e.name):
        entry.load()(app, settings)
    return app
