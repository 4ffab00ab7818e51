"""Shedding: a call that cannot have its operation's slot in time is told so at once.

Each test holds a bucket full (a slow rate, or its one in-flight place taken)
and reads the pacer's queue to know when it is, then checks what a caller
beyond it is answered, and that the calls waiting are left as they were.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from ivschat.v1 import chat_service_pb2 as chat_pb
from ivschat.v1 import chat_service_pb2_grpc as chat_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.emulator import FaultRule

from tests.support.facade import Facade, MakeFacade
from tests.support.richstatus import detail, error_info, status_of
from tests.support.waiting import until

# One slot every 10 s: a caller behind two others waits 20 s or more.
SLOW = 0.1


def shed_details(error: grpc.aio.AioRpcError) -> tuple[float, error_details_pb2.QuotaFailure]:
    """RetryInfo's delay in seconds and the QuotaFailure of a shed call."""
    status = status_of(error)
    retry = detail(status, error_details_pb2.RetryInfo)
    return retry.retry_delay.ToTimedelta().total_seconds(), detail(
        status, error_details_pb2.QuotaFailure
    )


def shed_count(facade: Facade, operation: str) -> float:
    line = f'ivschat_grpc_shed_total{{operation="{operation}"}} '
    scrape = facade.service.metrics.scrape().decode()
    return next((float(r.split()[-1]) for r in scrape.splitlines() if r.startswith(line)), 0.0)


async def fill(facade: Facade, waiters: int) -> list[asyncio.Task[pb.CreateRoomResponse]]:
    """One CreateRoom sent and waiters more queued behind it, each with a long deadline."""
    await facade.stub.CreateRoom(pb.CreateRoomRequest(name="first"), timeout=10)
    queued = [
        asyncio.ensure_future(facade.stub.CreateRoom(pb.CreateRoomRequest(name="q"), timeout=120))
        for _ in range(waiters)
    ]
    await until(lambda: facade.service.pacers["CreateRoom"].waiting == waiters)
    return queued


async def cancel(calls: list[asyncio.Task[pb.CreateRoomResponse]]) -> None:
    for call in calls:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)


async def test_a_call_whose_slot_opens_after_its_deadline_is_refused_at_once_with_when(
    make_facade: MakeFacade,
) -> None:
    # Room in the queue for many (60 s of the quota): only the deadline refuses.
    async with make_facade(create_rate=SLOW, max_queue_wait=60.0) as facade:
        queued = await fill(facade, 2)
        with pytest.raises(grpc.aio.AioRpcError) as shed:
            # Its slot is 30 s away; before, it waited out its 5 s, then DEADLINE_EXCEEDED.
            await facade.stub.CreateRoom(pb.CreateRoomRequest(name="late"), timeout=5)
        # Answered while those ahead of it still wait: it did not wait for them.
        still_waiting = facade.service.pacers["CreateRoom"].waiting
        await cancel(queued)
        recorded = [r.body.get("name") for r in facade.emulator.state.recorded("CreateRoom")]
    assert shed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert still_waiting == 2
    info = error_info(shed.value)
    assert (info.reason, info.domain) == ("RATE_LIMIT_EXCEEDED", "ivschat-grpc")
    assert dict(info.metadata) == {"operation": "CreateRoom"}
    retry_after, quota = shed_details(shed.value)
    # The next slot nobody holds: behind the sent one and the two queued.
    assert 10 < retry_after <= 30
    [violation] = quota.violations
    assert violation.subject == "operation:CreateRoom"
    assert "5 calls a second" in violation.description
    assert "late" not in recorded  # never sent
    assert shed_count(facade, "CreateRoom") == 1


async def test_a_full_queue_refuses_interactive_callers_whatever_their_deadline(
    make_facade: MakeFacade,
) -> None:
    # 10 s of a 0.1/s quota: one caller may queue.
    async with make_facade(create_rate=SLOW, max_queue_wait=10.0) as facade:
        queued = await fill(facade, 1)
        with pytest.raises(grpc.aio.AioRpcError) as shed:
            await facade.stub.CreateRoom(pb.CreateRoomRequest(name="third"), timeout=120)
        await cancel(queued)
    assert shed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(shed.value).reason == "RATE_LIMIT_EXCEEDED"
    retry_after, _ = shed_details(shed.value)
    assert 10 < retry_after <= 20


async def test_a_waiter_that_falls_behind_is_refused_before_its_deadline_not_at_it(
    make_facade: MakeFacade,
) -> None:
    # Unpaced, so it is let in; but the one in-flight place stays taken past its deadline.
    async with make_facade(create_rate=None, aws_max_in_flight=1) as facade:
        facade.emulator.state.faults.add(
            FaultRule(operation="CreateRoom", latency_ms=2000, times=1)
        )
        slow = asyncio.ensure_future(
            facade.stub.CreateRoom(pb.CreateRoomRequest(name="slow"), timeout=30)
        )
        await until(lambda: facade.service.pacers["CreateRoom"].in_flight == 1)
        with pytest.raises(grpc.aio.AioRpcError) as shed:
            # Before, DEADLINE_EXCEEDED when its deadline came.
            await facade.stub.CreateRoom(pb.CreateRoomRequest(name="behind"), timeout=1)
        await slow
        recorded = [r.body.get("name") for r in facade.emulator.state.recorded("CreateRoom")]
    assert shed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(shed.value).reason == "RATE_LIMIT_EXCEEDED"
    assert recorded == ["slow"]


async def test_a_resend_that_is_shed_after_an_attempt_that_may_have_run_says_so(
    make_facade: MakeFacade,
) -> None:
    async with make_facade(operation_rates={"UpdateRoom": SLOW}) as facade:
        room = (await facade.stub.CreateRoom(pb.CreateRoomRequest(name="r"), timeout=10)).room
        facade.emulator.state.faults.add(
            FaultRule(operation="UpdateRoom", error="InternalServerException", times=1)
        )
        update = pb.UpdateRoomRequest(
            room=pb.Room(arn=room.arn, name="renamed"), update_mask={"paths": ["name"]}
        )
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            # The first attempt fails in a way AWS may have run; its resend's slot is 10 s away.
            await facade.stub.UpdateRoom(update, timeout=3)
    assert failed.value.code() == grpc.StatusCode.INTERNAL  # not "not sent"
    assert error_info(failed.value).metadata["room_may_exist"] == "true"
    assert shed_count(facade, "UpdateRoom") == 0


async def test_a_saturated_create_room_batch_delays_no_get_room_nor_chat_token(
    make_facade: MakeFacade,
) -> None:
    async with make_facade(create_rate=SLOW) as facade:
        room = (await facade.stub.CreateRoom(pb.CreateRoomRequest(name="r"), timeout=10)).room

        async def items() -> Any:
            for i in range(5):
                yield pb.BatchCreateRoomsRequest(
                    correlation_id=f"b{i}", room=pb.CreateRoomRequest(name=f"b{i}")
                )
            await asyncio.Event().wait()  # the stream stays open

        batch = facade.stub.BatchCreateRooms(items(), timeout=120)
        await until(lambda: facade.service.pacers["CreateRoom"].waiting == 5)
        got = await facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10)
        token = await chat_grpc.ChatServiceStub(facade.channel).CreateChatToken(
            chat_pb.CreateChatTokenRequest(room_arn=room.arn, user_id="viewer"), timeout=10
        )
        # Both answered while every batch item still waits for its CreateRoom slot.
        still_waiting = facade.service.pacers["CreateRoom"].waiting
        batch.cancel()
    assert got.arn == room.arn
    assert token.token
    assert still_waiting == 5


async def test_callers_queued_for_one_saturated_quota_take_no_places_from_another(
    make_facade: MakeFacade,
) -> None:
    # 300 callers may queue for CreateChatToken, more than the old default of
    # 256 RPCs at once: they held every place, and GetRoom was refused.
    rates = {"CreateChatToken": 1.0}
    async with make_facade(operation_rates=rates, max_queue_wait=300.0) as facade:
        room = (await facade.stub.CreateRoom(pb.CreateRoomRequest(name="r"), timeout=10)).room
        chat = chat_grpc.ChatServiceStub(facade.channel)
        request = chat_pb.CreateChatTokenRequest(room_arn=room.arn, user_id="viewer")
        await chat.CreateChatToken(request, timeout=10)  # the slot now; the next in 1 s
        queued = [
            asyncio.ensure_future(chat.CreateChatToken(request, timeout=400)) for _ in range(300)
        ]
        # A slot a second goes to one of them while they arrive: past 256 is what counts.
        await until(lambda: facade.service.pacers["CreateChatToken"].waiting >= 290)
        got = await facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10)
        for call in queued:
            call.cancel()
        await asyncio.gather(*queued, return_exceptions=True)
    assert got.arn == room.arn
