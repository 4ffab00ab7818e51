"""Pieces of batching in isolation: the pacer's priorities and a batch's answers under drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.api.batch_stream import Batch, BatchLimits
from ivschat_grpc.cli import batch_create
from ivschat_grpc.core.calls import CallControl
from ivschat_grpc.core.creator import Result
from ivschat_grpc.core.lifecycle import Lifecycle
from ivschat_grpc.core.pacing import Pacer, Priority
from ivschat_grpc.runtime.telemetry import Metrics


async def test_interactive_waiters_go_first_when_in_flight_is_full() -> None:
    pacer = Pacer(rate=None, max_in_flight=1)
    await pacer.acquire(Priority.BULK)  # the one place is taken
    order: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await pacer.acquire(priority)
        order.append(name)

    bulk = [asyncio.ensure_future(take(f"bulk{i}", Priority.BULK)) for i in range(3)]
    await asyncio.sleep(0)  # let the bulk waiters queue first
    unary = asyncio.ensure_future(take("unary", Priority.INTERACTIVE))
    await asyncio.sleep(0)
    for _ in range(4):
        pacer.release()
        while len(order) < _ + 1:  # noqa: ASYNC110 - scheduler turns, not a timed wait
            await asyncio.sleep(0)
    await asyncio.gather(*bulk, unary)
    assert order == ["unary", "bulk0", "bulk1", "bulk2"]


async def test_bulk_waiters_get_one_slot_in_five_while_interactive_ones_wait() -> None:
    pacer = Pacer(rate=None, max_in_flight=1)
    await pacer.acquire(Priority.BULK)
    order: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await pacer.acquire(priority)
        order.append(name)

    waiters = [asyncio.ensure_future(take(f"bulk{i}", Priority.BULK)) for i in range(2)]
    waiters += [asyncio.ensure_future(take(f"unary{i}", Priority.INTERACTIVE)) for i in range(10)]
    await asyncio.sleep(0)
    for granted in range(12):
        pacer.release()
        while len(order) < granted + 1:  # noqa: ASYNC110 - scheduler turns, not a timed wait
            await asyncio.sleep(0)
    await asyncio.gather(*waiters)
    kinds = "".join(name[0] for name in order)
    assert kinds == "uuuubuuuubuu"


async def test_no_two_slots_at_once_after_a_cancelled_waiter() -> None:
    now = [0.0]
    pacer = Pacer(rate=4, max_in_flight=10, clock=lambda: now[0])
    granted: list[float] = []
    await pacer.acquire(Priority.BULK)
    granted.append(now[0])
    lost = asyncio.ensure_future(pacer.acquire(Priority.BULK))
    await asyncio.sleep(0)
    lost.cancel()
    now[0] = 0.25  # the slot time passes while the dispatcher sleeps
    await pacer.acquire(Priority.BULK)  # takes the free slot at once
    granted.append(now[0])
    late = asyncio.ensure_future(pacer.acquire(Priority.BULK))
    await asyncio.sleep(0.3)  # the dispatcher wakes; the next slot is at 0.5
    assert not late.done()
    now[0] = 0.5
    await asyncio.wait_for(late, 5)
    assert granted == [0.0, 0.25]


async def test_dispatcher_ends_when_nobody_waits() -> None:
    pacer = Pacer(rate=1000, max_in_flight=1)
    await pacer.acquire(Priority.BULK)
    waiter = asyncio.ensure_future(pacer.acquire(Priority.BULK))
    await asyncio.sleep(0)
    waiter.cancel()
    pacer.release()
    dispatcher = pacer._dispatcher
    assert dispatcher is not None
    await asyncio.wait_for(dispatcher, 5)
    assert pacer.waiting == 0
    assert pacer.in_flight == 0


class _NeverSends:
    """A stand-in for the creator whose calls wait forever before sending."""

    async def create(
        self,
        request: pb.CreateRoomRequest,
        params: Mapping[str, Any],
        timeout_s: float | None,
        **kwargs: Any,
    ) -> Result[pb.Room]:
        control: CallControl = kwargs["control"]
        assert not control.sending
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def _endless(n: int) -> AsyncIterator[pb.BatchCreateRoomsRequest]:
    for i in range(n):
        yield pb.BatchCreateRoomsRequest(correlation_id=f"c{i}", room=pb.CreateRoomRequest())
    await asyncio.Event().wait()  # the client never half-closes


class _DrainsAfterSecondItem(Batch):
    def _accept(self, request: object) -> None:
        super()._accept(request)
        if self.items_read == 2:
            self.begin_drain()  # before the second item's task has taken a step


@pytest.mark.parametrize("cls", [Batch, _DrainsAfterSecondItem])
async def test_drain_answers_every_item_read(cls: type[Batch]) -> None:
    lifecycle = Lifecycle()
    batch = cls(_NeverSends(), _endless(5), BatchLimits(8, None), lifecycle, Metrics())  # type: ignore[arg-type]  # a stand-in creator
    answers: list[pb.BatchCreateRoomsResponse] = []

    async def consume() -> None:
        async for r in batch.responses():
            answers.append(r)

    consumer = asyncio.ensure_future(consume())
    wanted = 2 if cls is _DrainsAfterSecondItem else 5
    while batch.items_read < wanted:  # noqa: ASYNC110 - scheduler turns, not a timed wait
        await asyncio.sleep(0)
    batch.begin_drain()
    await asyncio.wait_for(consumer, 5)
    assert len(answers) == batch.items_read
    assert {a.correlation_id for a in answers} == {f"c{i}" for i in range(batch.items_read)}
    assert all(a.error.code == 14 for a in answers)  # UNAVAILABLE: not sent
    assert lifecycle.pending == frozenset()


def test_a_null_correlation_id_gets_the_line_number_and_a_number_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rooms.jsonl"
    path.write_text('{"correlation_id": null, "name": "a"}\n{"correlation_id": 7, "name": "b"}\n')
    first, second = batch_create.read_requests(path)
    assert not isinstance(first, batch_create.InputError)
    assert first.correlation_id == "line-1"  # not "None", which two such lines would share
    assert isinstance(second, batch_create.InputError)
    assert second.correlation_id == "line-2"
