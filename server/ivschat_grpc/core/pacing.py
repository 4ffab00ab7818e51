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

Slots are spaced 1/rate apart, on a schedule: a slot granted a little late
(the event loop's timers are coarse, and busy) does not push every later
slot back with it, or a 200-a-second quota would be spent at 80 %. The
schedule forgives at most CATCH_UP_S of lateness, so two slots are never
closer than 1/rate minus that: a burst of less than one extra call, which
AWS's bucket allows, as it must allow a network's jitter.

With a shared slot source (shared.py: one bucket in Redis for every replica),
the time slots come from there instead, and the in-flight places and the
order of waiters stay this process's own.

A waiter that cannot have its slot in time is shed, not queued: a caller
with a deadline is better told at once, with when to come back, than left
to wait out its deadline. A waiter is refused at arrival when the slots
promised to those ahead of it leave none before its deadline, or when
max_waiting interactive callers already wait. One that falls behind while
it waits (interactive calls went ahead, AWS was slow to give places back) is
refused as soon as too little of its deadline is left to send; one that
other replicas drew a shared bucket's slots ahead of, as soon as the bucket
says when this process's next slot opens, which later arrivals are then
told from too. Batch items wait without a deadline: their stream's window
bounds them.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

# While bulk waiters wait, every BULK_SHARE-th slot granted goes to one of them.
BULK_SHARE: Final = 5
# The lateness of a slot that the schedule keeps to, at most one interval.
CATCH_UP_S: Final = 0.01
# A slot that opens with less than this left of the deadline is not taken: the
# request would be cut off mid-flight, and a create cut off leaves its caller
# not knowing whether it ran.
SEND_RESERVE_S: Final = 0.05


class Priority(enum.IntEnum):
    """Priority orders waiters: interactive calls before bulk ones."""

    INTERACTIVE = 0
    BULK = 1


class Shed(Exception):
    """Shed is a slot refused: it could not open in time, or too many already wait.

    retry_after_s is how long until a slot opens that nobody ahead holds.
    """

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"no slot in time; retry after {retry_after_s:.3f} s")
        self.retry_after_s = retry_after_s


def queue_bound(rate: float | None, wait_s: float) -> int | None:
    """How many interactive callers may wait for an operation's slots: wait_s of its rate."""
    return None if rate is None else max(1, math.ceil(rate * wait_s))


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
        max_waiting: int | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive, or None for no pacing")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if max_waiting is not None and max_waiting < 1:
            raise ValueError("max_waiting must be at least 1, or None for no bound")
        self.rate = rate
        self._interval = 0.0 if rate is None else 1.0 / rate
        self._max = max_in_flight
        self._clock = clock
        self._shared = shared
        self.max_waiting = max_waiting
        self._next = 0.0
        self.in_flight = 0
        self._queues: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())
        # Live waiters by priority: those queued whose future is not yet done.
        # Kept as counts, because arrivals read them and queues hold the dead.
        self._live = [0, 0]
        # When each queued waiter with a deadline gives up (this pacer's clock).
        self._give_up_at: dict[asyncio.Future[None], float] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self._freed = asyncio.Event()
        # Slots granted from the queues since a bulk waiter last got one.
        self._since_bulk = 0

    @property
    def waiting(self) -> int:
        """How many callers wait for a slot: the pacing queue's depth."""
        return self._live[0] + self._live[1]

    def waiting_count(self) -> float:
        """waiting, as a metric's callback reads it."""
        return float(self.waiting)

    def _take(self) -> None:
        self.in_flight += 1
        now = self._clock()
        on_schedule = now - self._next <= min(self._interval, CATCH_UP_S)
        self._next = (self._next if on_schedule else now) + self._interval

    def _opens_at(self, priority: Priority) -> float:
        """When a slot would open for a new waiter of priority, as far as this process knows.

        Interactive waiters are ahead of it, and bulk ones too if it is bulk;
        while bulk waiters wait, they take one slot in BULK_SHARE. Other
        replicas drawing from a shared bucket can only make it later.
        """
        interactive, bulk = self._live
        ahead = interactive if priority is Priority.INTERACTIVE else interactive + bulk
        interval = self._interval
        if priority is Priority.INTERACTIVE and bulk:
            interval *= BULK_SHARE / (BULK_SHARE - 1)
        return max(self._clock(), self._next) + ahead * interval

    def _refusal(self, priority: Priority) -> Shed:
        return Shed(max(0.0, self._opens_at(priority) - self._clock()))

    async def acquire(self, priority: Priority, within_s: float | None = None) -> None:
        """Wait for a send slot, or raise Shed if none can open within within_s seconds.

        A waiter cancelled or shed before it gets a slot takes none.
        """
        deadline = None if within_s is None else self._clock() + within_s
        if (
            self._shared is None
            and not self.waiting
            and self.in_flight < self._max
            and self._clock() >= self._next
        ):
            if deadline is not None and deadline - self._clock() < SEND_RESERVE_S:
                raise self._refusal(priority)
            self._take()
            return
        if deadline is not None and self._opens_at(priority) > deadline - SEND_RESERVE_S:
            raise self._refusal(priority)
        if (
            priority is Priority.INTERACTIVE
            and self.max_waiting is not None
            and self._live[priority] >= self.max_waiting
        ):
            raise self._refusal(priority)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queues[priority].append(future)
        self._live[priority] += 1
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch())
        timer = None
        if deadline is not None:
            self._give_up_at[future] = deadline - SEND_RESERVE_S
            late = deadline - SEND_RESERVE_S - self._clock()
            timer = loop.call_later(late, self._give_up, future, priority)
        try:
            await future
        except asyncio.CancelledError:
            if not future.done() or future.cancelled():
                future.cancel()  # the dispatcher skips it
                self._live[priority] -= 1
            elif future.exception() is None:
                self.release()  # granted in the same instant it was cancelled
            raise
        finally:
            if timer is not None:
                timer.cancel()
                del self._give_up_at[future]

    def _give_up(self, future: asyncio.Future[None], priority: Priority) -> None:
        """Shed a waiter whose deadline leaves too little time to send, were it granted now."""
        if future.done():
            return
        self._live[priority] -= 1
        future.set_exception(self._refusal(priority))

    def release(self) -> None:
        """Give back the in-flight place of an answered request."""
        self.in_flight -= 1
        self._freed.set()

    def _learn(self, opens: float) -> None:
        """Take in when the shared bucket's next slot for this process opens.

        Other replicas may have drawn the slots before it: arrivals are told
        from it, and waiters that would give up before it are shed now, not
        left to wait out their deadlines for it.
        """
        if opens <= self._next:
            return  # no later than this process counted on: nobody fell behind for it
        self._next = opens
        for priority, queue in zip(Priority, self._queues, strict=True):
            for future in queue:
                if self._give_up_at.get(future, opens) < opens:
                    self._give_up(future, priority)

    def _pop(self) -> asyncio.Future[None] | None:
        interactive, bulk = self._queues
        order = (bulk, interactive) if self._since_bulk >= BULK_SHARE - 1 else self._queues
        for queue in order:
            while queue:
                if not queue[0].done():
                    self._since_bulk = 0 if queue is bulk else self._since_bulk + 1
                    self._live[0 if queue is interactive else 1] -= 1
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
                    self._learn(self._clock() + delay)
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
