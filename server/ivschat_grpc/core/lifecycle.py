"""The work in flight, in one registry: what the drain refuses, and what it waits for.

Whoever starts work that must outlive its caller (a batch item out to AWS, an
owner recording a request_id's room) registers its task here, and the drain
waits on this one object instead of on sets kept by several classes. Calls are
counted here too, so the drain knows when the last one has ended.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

T = TypeVar("T", bound="asyncio.Future[Any]")


class Lifecycle:
    """Lifecycle is the process's one registry of running calls and background work."""

    def __init__(self) -> None:
        self._draining = False
        self._calls = 0
        self._no_calls = asyncio.Event()
        self._no_calls.set()
        self._work: set[asyncio.Future[Any]] = set()

    @property
    def draining(self) -> bool:
        """Whether the drain has begun: new calls are refused from then on."""
        return self._draining

    def begin_drain(self) -> None:
        """Refuse new calls from now on; running ones go on."""
        self._draining = True

    def call_started(self) -> None:
        """Count a call that was let in; call_ended must follow."""
        self._calls += 1
        self._no_calls.clear()

    def call_ended(self) -> None:
        """Count a call out."""
        self._calls -= 1
        if self._calls == 0:
            self._no_calls.set()

    async def calls_done(self) -> None:
        """Return once no counted call is running."""
        await self._no_calls.wait()

    def track(self, work: T) -> T:
        """Register work that the drain must wait for; it leaves the registry when done."""
        self._work.add(work)
        work.add_done_callback(self._work.discard)
        return work

    @property
    def pending(self) -> frozenset[asyncio.Future[Any]]:
        """The registered work that has not finished."""
        return frozenset(self._work)

    async def work_done(self, timeout_s: float | None = None) -> None:
        """Return once every registered work has finished, or timeout_s has passed.

        Work registered while waiting is waited for too.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while self._work:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return
            await asyncio.wait(set(self._work), timeout=left)
