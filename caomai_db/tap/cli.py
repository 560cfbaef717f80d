"""``caomai serve``: run the TAP service (uvicorn, one process)."""

from __future__ import annotations

import argparse

from ..config import Settings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from .app import create_app

    app = create_app(settings, base_url=args.base_url, workers=args.job_workers)
    base = args.base_url or f"http://{args.host}:{args.port}/tap"
    print(f"caomai TAP service at {base}  (stop with Ctrl-C)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, workers=1)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the TAP 1.1 service (sync, async, VOSI) over the database",
        description="TAP 1.1 service with caomai's ADQL functions. Queries run as the read-only "
        "role caomai_reader; asynchronous jobs are stored in caomai_uws.job.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument(
        "--base-url",
        help="public URL of the service behind a proxy, e.g. https://archive.example/tap "
        "(default http://HOST:PORT/tap)",
    )
    p.add_argument(
        "--job-workers", type=int, default=2, help="asynchronous jobs run at once (default 2)"
    )
    p.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    p.set_defaults(handler=cmd_serve)
