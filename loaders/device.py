"""Which torch device a job runs on, and how many CPU threads it may use.

``auto`` takes the GPU when torch sees one and the CPU otherwise, so the same command works
on a laptop, a 2-core CI machine and a GPU node. Asking for ``cuda`` where there is none is an
error that says so, not a silent fallback: an operator who booked a GPU node wants to know.
"""

from __future__ import annotations

import os

from caomai_db.errors import SetupError, UsageError

DEVICES = ("auto", "cpu", "cuda")


def pick_device(preference: str = "auto"):
    """torch.device for 'auto' | 'cpu' | 'cuda' | 'cuda:N'."""
    import torch

    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref == "cuda" or pref.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no visible GPU"
            raise SetupError(
                f"--device {preference}: CUDA is not available here ({build}); "
                "use --device cpu or auto, or install caomai with the gpu extra on a GPU node"
            )
        device = torch.device(pref)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SetupError(
                f"--device {preference}: only {torch.cuda.device_count()} GPU(s) are visible"
            )
        return device
    raise UsageError(f"--device must be one of auto, cpu, cuda or cuda:N, not {preference!r}")


def cpu_threads(requested: int | None = None) -> int:
    """Threads torch may use on the CPU: the request, else the cores this process may run on."""
    if requested and requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
