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
from typing import Any, TypeVar

import anyio

from ..config import Settings
from ..errors import Busy

T = TypeVar("T")


class Lanes:
    def __init__(self, settings: Settings) -> None:
        self.heavy = anyio.CapacityLimiter(settings.query_slots)
        self.cheap = anyio.CapacityLimiter(settings.cheap_slots)
        self.prepare = anyio.CapacityLimiter(max(2, settings.cheap_slots))
        self.wait_s = float(settings.queue_wait_s)
        # threads for admitted work only: admission already bounds them
        self._threads = anyio.CapacityLimiter(
            settings.query_slots + settings.cheap_slots + max(2, settings.cheap_slots)
        )
        self._names = {id(self.heavy): "query", id(self.cheap): "cheap", id(self.prepare): "parse"}

    async def run(
        self, lane: anyio.CapacityLimiter, func: Callable[..., T], *args: Any, **kw: Any
    ) -> T:
        """``func(*args, **kw)`` in a thread once ``lane`` has a slot; :class:`Busy` if none
        comes within the queue wait. Waiting holds no thread and no connection."""
        with anyio.move_on_after(self.wait_s) as scope:
            await lane.acquire()
        if scope.cancelled_caught:
            raise Busy(self._names.get(id(lane), "query"), self.wait_s)
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(func, *args, **kw), limiter=self._threads
            )
        finally:
            lane.release()
