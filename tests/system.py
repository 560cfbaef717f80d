"""Tests that need a Debian package: skipped on a developer's machine without it, but run (and
fail, saying what is missing) under CI, so a CI that lost an install step is never green."""

from __future__ import annotations

import os

import pytest

#: CI=true (set by .ci/run, and by most CI systems): a missing package fails, never skips
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def needs(present: bool, package: str) -> pytest.MarkDecorator:
    """Skip when ``package`` is missing, except under CI."""
    return pytest.mark.skipif(
        not present and not IN_CI,
        reason=f"Debian's {package} is missing (`make test` installs it; under CI=true this fails)",
    )


def require(present: bool, package: str) -> None:
    """Inside a test marked with :func:`needs`: fail with the reason under CI."""
    if not present:
        pytest.fail(f"Debian's {package} is not installed; `make test` (system-deps) installs it")
