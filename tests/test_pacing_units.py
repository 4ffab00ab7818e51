"""The pacer's shedding alone, on a clock the test moves: who is refused, and when to return."""

from __future__ import annotations

import asyncio

import pytest
from ivschat_grpc.core.pacing import SEND_RESERVE_S, Pacer, Priority, Shed, queue_bound


def paced(rate: float, max_waiting: int | None = None) -> tuple[Pacer, list[float]]:
    now = [0.0]
    return Pacer(rate, max_in_flight=100, clock=lambda: now[0], max_waiting=max_waiting), now


async def queued(pacer: Pacer, priority: Priority, count: int) -> list[asyncio.Task[None]]:
    waiters = [asyncio.ensure_future(pacer.acquire(priority)) for _ in range(count)]
    await asyncio.sleep(0)
    return waiters


async def test_a_waiter_is_refused_when_the_slots_ahead_leave_none_before_its_deadline() -> None:
    pacer, _ = paced(rate=4)  # a slot every 0.25 s
    await pacer.acquire(Priority.INTERACTIVE)  # the slot at 0; the next opens at 0.25
    ahead = await queued(pacer, Priority.INTERACTIVE, 2)  # they hold 0.25 and 0.5
    with pytest.raises(Shed) as shed:
        await pacer.acquire(Priority.INTERACTIVE, within_s=0.7)  # its own, 0.75, is too late
    assert shed.value.retry_after_s == pytest.approx(0.75)
    # Given time to spare beyond the reserve, it waits instead.
    waiting = asyncio.ensure_future(
        pacer.acquire(Priority.INTERACTIVE, within_s=0.8 + SEND_RESERVE_S)
    )
    await asyncio.sleep(0)
    assert pacer.waiting == 3
    for waiter in (*ahead, waiting):
        waiter.cancel()
    await asyncio.gather(*ahead, waiting, return_exceptions=True)
    assert pacer.waiting == 0


async def test_bulk_waiters_delay_an_interactive_one_by_their_share_only() -> None:
    pacer, _ = paced(rate=4)
    await pacer.acquire(Priority.INTERACTIVE)
    bulk = await queued(pacer, Priority.BULK, 8)
    # No interactive caller ahead: its slot is the next, stretched by bulk's one in five.
    with pytest.raises(Shed) as shed:
        await pacer.acquire(Priority.INTERACTIVE, within_s=0.25)
    assert shed.value.retry_after_s == pytest.approx(0.25)
    # A bulk caller waits behind all of them.
    with pytest.raises(Shed) as behind:
        await pacer.acquire(Priority.BULK, within_s=1.0)
    assert behind.value.retry_after_s == pytest.approx(0.25 + 8 * 0.25)
    for waiter in bulk:
        waiter.cancel()
    await asyncio.gather(*bulk, return_exceptions=True)


async def test_the_queue_bound_counts_interactive_callers_only() -> None:
    pacer, _ = paced(rate=4, max_waiting=2)
    await pacer.acquire(Priority.INTERACTIVE)
    waiters = await queued(pacer, Priority.INTERACTIVE, 2)
    with pytest.raises(Shed):
        await pacer.acquire(Priority.INTERACTIVE)  # no deadline, but no room
    waiters += await queued(pacer, Priority.BULK, 5)  # batch items are bounded by their window
    assert pacer.waiting == 7
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert pacer.waiting == 0


async def test_a_waiter_left_behind_is_refused_before_its_deadline_and_leaves_no_trace() -> None:
    pacer = Pacer(rate=None, max_in_flight=1)
    await pacer.acquire(Priority.INTERACTIVE)  # the one in-flight place, kept
    with pytest.raises(Shed):
        await asyncio.wait_for(pacer.acquire(Priority.INTERACTIVE, within_s=0.1), 5)
    assert pacer.waiting == 0
    pacer.release()
    await asyncio.wait_for(pacer.acquire(Priority.INTERACTIVE, within_s=1.0), 5)  # served
    assert pacer.in_flight == 1


def test_queue_bounds_are_seconds_of_each_quota() -> None:
    assert queue_bound(5, 2.0) == 10
    assert queue_bound(200, 2.0) == 400
    assert queue_bound(3, 0.1) == 1  # never none
    assert queue_bound(None, 2.0) is None  # unpaced: nothing queues for a rate


async def test_a_slot_granted_a_little_late_does_not_push_the_schedule_back() -> None:
    pacer, now = paced(rate=100)  # a slot every 10 ms, the most the schedule forgives
    await pacer.acquire(Priority.INTERACTIVE)  # at 0
    now[0] = 0.0105  # the timer fired half a millisecond late
    await pacer.acquire(Priority.INTERACTIVE)
    now[0] = 0.02  # the next slot is still at 20 ms, not at 20.5
    await asyncio.wait_for(pacer.acquire(Priority.INTERACTIVE), 5)
    # After an idle spell the schedule starts again from now: no burst to catch up.
    now[0] = 5.0
    await pacer.acquire(Priority.INTERACTIVE)
    with pytest.raises(Shed) as shed:
        await pacer.acquire(Priority.INTERACTIVE, within_s=0.001)
    assert shed.value.retry_after_s == pytest.approx(0.01)
