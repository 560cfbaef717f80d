"""``caomai serve``: run the TAP service (uvicorn, one process)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Settings
from ..paths import TAP_SCHEMA_DIR

#: where the generated DaCHS files are committed
DACHS_DIR = TAP_SCHEMA_DIR / "dachs"


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    base_url: str | None = None,
    job_workers: int = 2,
    log_level: str = "info",
) -> None:
    """Serve the TAP service and the web page until Ctrl-C or SIGTERM; `caomai serve` and
    `caomai demo` both end here. uvicorn shuts down gracefully, then raises the signal again:
    Ctrl-C comes back as KeyboardInterrupt, for the caller to end as it likes."""
    import uvicorn

    from .app import create_app

    app = create_app(settings, base_url=base_url, workers=job_workers)
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    base = args.base_url or f"http://{args.host}:{args.port}/tap"
    print(f"caomai TAP service at {base}  (stop with Ctrl-C)", flush=True)
    serve(
        settings,
        host=args.host,
        port=args.port,
        base_url=args.base_url,
        job_workers=args.job_workers,
        log_level=args.log_level,
    )
    return 0


def cmd_dachs(args: argparse.Namespace, settings: Settings) -> int:
    from ..adql import dachs

    root = Path(args.out)
    for rel, text in dachs.files().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
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

    p = subparsers.add_parser(
        "tap-dachs",
        help="write the DaCHS UDF module and resource descriptors (tap_schema/dachs/)",
        description="Generate tap_schema/dachs/: caomai_udfs.py (the ADQL functions for DaCHS "
        "2.7) and caom2/q.rd, caomai/q.rd (the tables, from models.py).",
    )
    p.add_argument("--out", default=str(DACHS_DIR), help=f"folder (default {DACHS_DIR})")
    p.set_defaults(handler=cmd_dachs)
