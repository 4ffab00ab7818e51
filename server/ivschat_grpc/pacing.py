"""Pacing every CreateRoom the process sends to AWS's per-account quota.

AWS allows 5 CreateRoom calls a second per account and region, and will not
raise it. One Pacer per process hands out send slots at that rate, to unary
calls and batch items alike, so the service as a whole stays under the quota.
Unary callers are waiting people, so they go ahead of queued batch items; a
batch then costs a unary caller at most one slot's wait, never a throttle.

Slots are spaced 1/rate apart with no burst: AWS's bucket allows a burst, so
a steady stream at the rate can never be throttled for going too fast.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import Callable


class Priority(enum.IntEnum):
    """Priority orders waiters: interactive calls before bulk ones."""

    INTERACTIVE = 0
    BULK = 1


class Pacer:
    """Pacer grants send slots at rate per second, interactive waiters first."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive, or None for no pacing")
        self.rate = rate
        self._interval = 0.0 if rate is None else 1.0 / rate
        self._clock = clock
        self._next = 0.0
        self._queues: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """How many callers wait for a slot: the pacing queue's depth."""
        return sum(1 for q in self._queues for f in q if not f.done())

    async def acquire(self, priority: Priority) -> None:
        """Wait for a send slot; cancelling the wait gives the slot to the next waiter."""
        if self.rate is None:
            return
        now = self._clock()
        if now >= self._next and not self.waiting:
            self._next = now + self._interval
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[priority].append(future)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch())
        await future

    def _pop(self) -> asyncio.Future[None] | None:
        for queue in self._queues:
            while queue:
                future = queue.popleft()
                if not future.done():
                    return future
        return None

    async def _dispatch(self) -> None:
        while True:
            delay = self._next - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            future = self._pop()
            if future is None:
                return
            future.set_result(None)
            self._next = max(self._clock(), self._next) + self._interval
