"""``caomai serve``: run the TAP service (uvicorn, one process)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Settings
from ..paths import TAP_SCHEMA_DIR

#: where the generated DaCHS files are committed
DACHS_DIR = TAP_SCHEMA_DIR / "dachs"


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from .app import create_app

    app = create_app(settings, base_url=args.base_url, workers=args.job_workers)
    base = args.base_url or f"http://{args.host}:{args.port}/tap"
    print(f"caomai TAP service at {base}  (stop with Ctrl-C)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, workers=1)
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
