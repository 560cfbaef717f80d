"""Small simulated archives for the tests, rendered once per test session and shared."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from caomai_loaders.simulate import simulate_archive

_ROOT: Path | None = None
_CACHE: dict[tuple, Path] = {}


def archive(name: str, **kwargs: object) -> Path:
    """Render (once per session) an archive under a session temp dir; return its directory."""
    global _ROOT
    key = (name, repr(sorted(kwargs.items())))
    if key not in _CACHE:
        if _ROOT is None:
            _ROOT = Path(tempfile.mkdtemp(prefix="caomai-sim-"))
            atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
        out = _ROOT / name
        simulate_archive(out, progress=False, **kwargs)  # type: ignore[arg-type]
        _CACHE[key] = out
    return _CACHE[key]


#: The archive most tests share: three exposures of each class, two small CCDs.
SMALL = dict(
    exposures=24,
    seed=7,
    ccds=2,
    ccd_size=(512, 512),
    classes={
        c: 1.0
        for c in (
            "good",
            "bad_tracking",
            "really_bad_tracking",
            "bad_seeing",
            "bad_focus",
            "background",
            "crowded",
            "low_exposure",
        )
    },
    workers=2,
)
