"""Pacing every CreateRoom the process sends to AWS's per-account quota.

AWS allows 5 CreateRoom calls a second per account and region, and will not
raise it. One Pacer per process hands out send slots, to unary calls and
batch items alike. A slot is two things at once: a time slot at the
configured rate, and one of max_in_flight places for a request that is out
to AWS. Unary callers are waiting people, so they go ahead of queued batch
items for both. However many batch items wait, a unary call waits at most
for the next free slot, never behind the batch. That priority ages: while
batch items wait, at least one slot in BULK_SHARE goes to one of them, so
unary calls that saturate the quota slow a batch down but never stop it.

Slots are spaced 1/rate apart with no burst. AWS's bucket allows a burst, so
a steady stream at the rate can never be throttled for going too fast.

With a shared slot source (shared.py: one bucket in Redis for every replica),
the time slots come from there instead, and the in-flight places and the
order of waiters stay this process's own.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

# While bulk waiters wait, every BULK_SHARE-th slot granted goes to one of them.
BULK_SHARE: Final = 5


class Priority(enum.IntEnum):
    """Priority orders waiters: interactive calls before bulk ones."""

    INTERACTIVE = 0
    BULK = 1


class SlotSource(Protocol):
    """SlotSource hands out time slots that other processes draw from too."""

    async def reserve(self) -> float:
        """Reserve the next slot; seconds until it opens. Never raises."""


class Pacer:
    """Pacer grants send slots at rate per second, at most max_in_flight held at once.

    Every acquire() that returns must be matched by one release() once the
    request is answered.
    """

    def __init__(
        self,
        rate: float | None,
        max_in_flight: int,
        clock: Callable[[], float] = time.monotonic,
        shared: SlotSource | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive, or None for no pacing")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.rate = rate
        self._interval = 0.0 if rate is None else 1.0 / rate
        self._max = max_in_flight
        self._clock = clock
        self._shared = shared
        self._next = 0.0
        self.in_flight = 0
        self._queues: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())
        self._dispatcher: asyncio.Task[None] | None = None
        self._freed = asyncio.Event()
        # Slots granted from the queues since a bulk waiter last got one.
        self._since_bulk = 0

    @property
    def waiting(self) -> int:
        """How many callers wait for a slot: the pacing queue's depth."""
        return sum(1 for q in self._queues for f in q if not f.done())

    def waiting_count(self) -> float:
        """waiting, as a metric's callback reads it."""
        return float(self.waiting)

    def _take(self) -> None:
        self.in_flight += 1
        self._next = max(self._clock(), self._next) + self._interval

    async def acquire(self, priority: Priority) -> None:
        """Wait for a send slot. A waiter cancelled before it gets one takes none."""
        if (
            self._shared is None
            and not self.waiting
            and self.in_flight < self._max
            and self._clock() >= self._next
        ):
            self._take()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[priority].append(future)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch())
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted in the same instant it was cancelled
            raise

    def release(self) -> None:
        """Give back the in-flight place of an answered request."""
        self.in_flight -= 1
        self._freed.set()

    def _pop(self) -> asyncio.Future[None] | None:
        interactive, bulk = self._queues
        order = (bulk, interactive) if self._since_bulk >= BULK_SHARE - 1 else self._queues
        for queue in order:
            while queue:
                if not queue[0].done():
                    self._since_bulk = 0 if queue is bulk else self._since_bulk + 1
                    return queue.popleft()
                queue.popleft()
        return None

    def _has_waiter(self) -> bool:
        for queue in self._queues:
            while queue and queue[0].done():
                queue.popleft()
            if queue:
                return True
        return False

    async def _dispatch(self) -> None:
        # Exits as soon as nobody waits, so no task outlives the last waiter.
        while self._has_waiter():
            if self.in_flight >= self._max:
                self._freed.clear()
                await self._freed.wait()
                continue
            if self._shared is not None:
                # The slot is this process's once reserved: wait for it, then
                # grant it to whoever waits first by then (wasted if nobody).
                delay = await self._shared.reserve()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                delay = self._next - self._clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue  # look again: the waiter may be gone, or the slot taken
            future = self._pop()
            if future is None:
                return
            self._take()
            future.set_result(None)
