"""The one registry of work in flight that the drain refuses by and waits on."""

from __future__ import annotations

import asyncio

from ivschat_grpc.core.lifecycle import Lifecycle


async def test_work_leaves_the_registry_when_it_ends() -> None:
    life = Lifecycle()
    gate = asyncio.Event()
    task = life.track(asyncio.create_task(gate.wait()))
    assert life.pending == {task}
    gate.set()
    await life.work_done()
    assert life.pending == frozenset()


async def test_the_drain_waits_for_work_registered_while_it_waits() -> None:
    life = Lifecycle()
    done: list[str] = []

    async def first() -> None:
        await asyncio.sleep(0)
        # An owner's release, say, started by work the drain already waits for.
        life.track(asyncio.create_task(second()))
        done.append("first")

    async def second() -> None:
        await asyncio.sleep(0.01)
        done.append("second")

    life.track(asyncio.create_task(first()))
    await life.work_done()
    assert done == ["first", "second"]


async def test_waiting_for_work_stops_at_its_timeout() -> None:
    life = Lifecycle()
    never = life.track(asyncio.create_task(asyncio.Event().wait()))
    await life.work_done(0.01)
    assert life.pending == {never}
    never.cancel()


async def test_calls_are_counted_and_the_drain_refuses_new_ones() -> None:
    life = Lifecycle()
    life.call_started()
    waiting = asyncio.create_task(life.calls_done())
    await asyncio.sleep(0)
    assert not waiting.done()
    life.begin_drain()
    assert life.draining
    life.call_ended()
    await asyncio.wait_for(waiting, 1)
