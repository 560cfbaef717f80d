"""Admission control: cheap requests keep answering while heavy queries wait in line.

The probe saw 8 slow queries hold every reader connection (availability said false, a
TAP_SCHEMA read waited 30 s) and 45 long WAITs hold every worker thread. Here every piece of
work takes a slot of its lane *before* it takes a thread or a connection, and waits for one in
the event loop, holding neither:

- ``heavy``: queries (``Settings.query_slots`` at once; on 2 cores more only thrash);
- ``cheap``: availability, the table set, TAP_SCHEMA reads and queries PostgreSQL plans under
  ``cheap_cost`` (``cheap_slots``), on connections of their own (``TapService.cheap_pool``);
- ``prepare``: parsing and translating ADQL (CPU only).

A request that finds no slot within ``queue_wait_s`` gets a 503 with Retry-After.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from ..config import Settings
from ..errors import Busy

T = TypeVar("T")


@dataclass(frozen=True)
class Lane:
    """A named number of slots (the name is what a Busy answer says was full)."""

    name: str
    slots: anyio.CapacityLimiter


class Lanes:
    def __init__(self, settings: Settings) -> None:
        parse_slots = max(2, settings.cheap_slots)
        self.heavy = Lane("query", anyio.CapacityLimiter(settings.query_slots))
        self.cheap = Lane("cheap", anyio.CapacityLimiter(settings.cheap_slots))
        self.prepare = Lane("parse", anyio.CapacityLimiter(parse_slots))
        self.wait_s = float(settings.queue_wait_s)
        # threads for admitted work only: admission already bounds them
        self._threads = anyio.CapacityLimiter(
            settings.query_slots + settings.cheap_slots + parse_slots
        )

    async def run(self, lane: Lane, func: Callable[..., T], *args: Any, **kw: Any) -> T:
        """``func(*args, **kw)`` in a thread once ``lane`` has a slot; :class:`Busy` if none
        comes within the queue wait. Waiting holds no thread and no connection."""
        with anyio.move_on_after(self.wait_s) as scope:
            await lane.slots.acquire()
        if scope.cancelled_caught:
            raise Busy(lane.name, self.wait_s)
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(func, *args, **kw), limiter=self._threads
            )
        finally:
            lane.slots.release()
