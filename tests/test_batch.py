"""BatchCreateRooms end to end: pacing, backpressure, endings, and nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.emulator import Emulator, EmulatorSettings, FaultRule
from ivschat_grpc.runtime.assembly import Service

from tests.support.env import use_emulator_credentials
from tests.support.facade import facade_settings, serving
from tests.support.richstatus import error_info

Item = pb.BatchCreateRoomsRequest


def item(cid: str, **room: Any) -> Item:
    return Item(correlation_id=cid, room=pb.CreateRoomRequest(**room))


def reason(status: status_pb2.Status) -> str:
    for d in status.details:
        info = error_details_pb2.ErrorInfo()
        if d.Unpack(info):
            return info.reason
    raise AssertionError("no ErrorInfo")


def violations(status: status_pb2.Status) -> set[str]:
    for d in status.details:
        bad = error_details_pb2.BadRequest()
        if d.Unpack(bad):
            return {v.field for v in bad.field_violations}
    return set()


async def items_of(requests: Iterable[Item]) -> AsyncIterator[Item]:
    for r in requests:
        yield r


@asynccontextmanager
async def batch_facade(
    monkeypatch: pytest.MonkeyPatch,
    emu_settings: EmulatorSettings | None = None,
    **overrides: Any,
) -> AsyncIterator[tuple[Service, pb_grpc.RoomServiceAsyncStub, Emulator]]:
    """A server whose settings are overridden, on its own endpoint."""
    use_emulator_credentials(monkeypatch)
    overrides.setdefault("create_rate", None)
    async with AsyncExitStack() as stack:
        emu = await stack.enter_async_context(
            Emulator(emu_settings or EmulatorSettings(create_room_rate=None))
        )
        settings = facade_settings(emu, grace_s=5.0, **overrides)
        service, channel = await stack.enter_async_context(serving(settings))
        yield service, pb_grpc.RoomServiceStub(channel), emu


async def collect(
    stub: pb_grpc.RoomServiceAsyncStub, requests: Iterable[Item]
) -> list[pb.BatchCreateRoomsResponse]:
    return [r async for r in stub.BatchCreateRooms(items_of(requests), timeout=120)]


def throttles(emu: Emulator) -> int:
    return sum(1 for r in emu.state.recorded("CreateRoom") if r.status == 429)


async def test_a_thousand_items_get_a_thousand_matching_rooms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with batch_facade(monkeypatch) as (_, stub, emu):
        responses = await collect(stub, (item(f"c{i}", name=f"room-{i}") for i in range(1000)))
    assert len(responses) == 1000
    by_cid = {r.correlation_id: r for r in responses}
    assert set(by_cid) == {f"c{i}" for i in range(1000)}
    assert all(r.WhichOneof("result") == "room" for r in responses)
    assert {by_cid[f"c{i}"].room.name for i in range(1000)} == {f"room-{i}" for i in range(1000)}
    for i in range(1000):
        r = by_cid[f"c{i}"]
        assert r.room.name == f"room-{i}"
        assert emu.state.rooms[r.room.id]["name"] == f"room-{i}"
        assert r.aws_request_id
    assert len(emu.state.rooms) == 1000
    assert len(emu.state.recorded("CreateRoom")) == 1000


async def test_invalid_items_are_answered_and_never_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with batch_facade(monkeypatch) as (_, stub, emu):
        emu.state.faults.add(FaultRule(name="slow", latency_ms=1000))
        requests = [
            item("ok-1", name="fine"),
            item("bad-name", name="not fine!"),
            item("bad-many", maximum_message_length=0, tags={"aws:x": "y"}),
            item("", name="no-cid"),
            Item(correlation_id="no-room"),
            item("dup", name="slow"),
            item("dup", name="second"),
            item("ok-2"),
        ]
        responses = await collect(stub, requests)
    assert len(responses) == len(requests)
    errors = {(r.correlation_id, r.room.name if r.HasField("room") else None): r for r in responses}
    ok = {cid for (cid, _), r in errors.items() if r.HasField("room")}
    assert ok == {"ok-1", "ok-2", "dup"}
    failed = {cid: r.error for (cid, _), r in errors.items() if r.HasField("error")}
    for status in failed.values():
        assert status.code == code_pb2.INVALID_ARGUMENT
        assert reason(status) == "INVALID_REQUEST"
    assert violations(failed["bad-name"]) == {"room.name"}
    assert violations(failed["bad-many"]) == {'room.tags["aws:x"]', "room.maximum_message_length"}
    assert violations(failed[""]) == {"correlation_id"}
    assert violations(failed["no-room"]) == {"room"}
    assert violations(failed["dup"]) == {"correlation_id"}
    sent = sorted(r.body.get("name", "") for r in emu.state.recorded("CreateRoom"))
    assert sent == ["", "fine", "slow"]


async def test_undecodable_item_is_answered_in_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        batch_facade(monkeypatch) as (service, _, emu),
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
    ):
        call = channel.stream_stream(
            "/ivschat.v1.RoomService/BatchCreateRooms",
            request_serializer=lambda b: b,
            response_deserializer=pb.BatchCreateRoomsResponse.FromString,
        )
        good = item("good", name="ok").SerializeToString()
        responses = [r async for r in call(iter([b"\xff\xff", good]), timeout=30)]
    assert len(responses) == 2
    bad = next(r for r in responses if r.HasField("error"))
    assert bad.correlation_id == ""
    assert bad.error.code == code_pb2.INVALID_ARGUMENT
    assert reason(bad.error) == "MALFORMED_REQUEST"
    assert len(emu.state.rooms) == 1


async def test_paced_at_the_quota_there_are_no_throttles(monkeypatch: pytest.MonkeyPatch) -> None:
    emu_settings = EmulatorSettings(create_room_rate=5)
    async with batch_facade(monkeypatch, emu_settings, create_rate=5.0) as (_, stub, emu):
        responses = await collect(stub, (item(f"p{i}") for i in range(25)))
    assert [r.WhichOneof("result") for r in responses] == ["room"] * 25
    assert throttles(emu) == 0
    assert len(emu.state.recorded("CreateRoom")) == 25


async def test_unpaced_against_the_quota_throttles_are_retried_and_succeed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu_settings = EmulatorSettings(create_room_rate=20)
    async with batch_facade(monkeypatch, emu_settings, aws_max_attempts=20) as (_, stub, emu):
        responses = await collect(stub, (item(f"t{i}") for i in range(40)))
    assert [r.WhichOneof("result") for r in responses] == ["room"] * 40
    assert throttles(emu) > 0  # the endpoint really throttled ...
    assert len(emu.state.rooms) == 40  # ... and every item still got exactly one room


async def test_throttling_past_the_budget_is_resource_exhausted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with batch_facade(monkeypatch) as (_, stub, emu):
        emu.state.faults.add(FaultRule(name="hopeless", error="ThrottlingException"))
        responses = await collect(stub, [item("h", name="hopeless"), item("f", name="fine")])
    by_cid = {r.correlation_id: r for r in responses}
    assert by_cid["f"].HasField("room")
    status = by_cid["h"].error
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert reason(status) == "ThrottlingException"
    assert any(d.TypeName() == "google.rpc.RetryInfo" for d in status.details)
    assert sum(1 for r in emu.state.recorded("CreateRoom") if r.body.get("name") == "hopeless") == 4


async def test_aws_errors_use_the_unary_table(monkeypatch: pytest.MonkeyPatch) -> None:
    async with batch_facade(monkeypatch) as (_, stub, emu):
        emu.state.faults.add(
            FaultRule(name="conflict", error="ConflictException"),
            FaultRule(name="boom", error="InternalServerException", create=True),
        )
        responses = await collect(stub, [item("a", name="conflict"), item("b", name="boom")])
    by_cid = {r.correlation_id: r.error for r in responses}
    assert by_cid["a"].code == code_pb2.ABORTED
    assert by_cid["b"].code == code_pb2.INTERNAL
    info = error_details_pb2.ErrorInfo()
    assert by_cid["b"].details[0].Unpack(info)
    assert info.metadata["room_may_exist"] == "true"
    assert info.metadata["aws_request_id"]
    assert len(emu.state.recorded("CreateRoom")) == 2  # the 500 was not retried


async def test_client_cancel_sends_nothing_more(monkeypatch: pytest.MonkeyPatch) -> None:
    async with batch_facade(monkeypatch, create_rate=20.0) as (service, stub, emu):
        call = stub.BatchCreateRooms(items_of(item(f"x{i}") for i in range(200)), timeout=60)
        received = 0
        async for _ in call:
            received += 1
            if received == 5:
                break
        call.cancel()
        await service.lifecycle.calls_done()
        await service.lifecycle.work_done()
        assert service.lifecycle.pending == frozenset()
        assert service.pacer.waiting == 0
        sent_after_cancel = len(emu.state.recorded("CreateRoom")) - received
    # Only what was already out to AWS when the cancel landed may still finish.
    assert 0 <= sent_after_cancel <= 2


async def test_stream_deadline_ends_the_stream_and_sends_nothing_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with batch_facade(monkeypatch, create_rate=10.0) as (service, stub, emu):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.BatchCreateRooms(
                items_of(item(f"d{i}") for i in range(100)), timeout=1.0
            ):
                pass
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await service.lifecycle.calls_done()
        await service.lifecycle.work_done()
        sent = len(emu.state.recorded("CreateRoom"))
    assert sent <= 12  # about 1 s at 10/s, never the whole batch


async def test_a_client_that_does_not_read_stalls_only_its_own_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    total = 3000
    async with batch_facade(monkeypatch, batch_window=4) as (service, _, emu):
        # Without BDP probing the client's receive window stays small, so the
        # server's writes block as soon as the client stops reading.
        options = [("grpc.http2.bdp_probe", 0)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}", options=options) as ch:
            stub = pb_grpc.RoomServiceStub(ch)
            call = stub.BatchCreateRooms(items_of(item(f"s{i}") for i in range(total)), timeout=120)
            stalled_at = await settled(lambda: len(emu.state.recorded("CreateRoom")))
            assert stalled_at < total  # the server stopped reading requests
            # Meanwhile the server still answers everyone else.
            other = await pb_grpc.RoomServiceStub(ch).CreateRoom(
                pb.CreateRoomRequest(name="other"), timeout=10
            )
            assert other.room.name == "other"
            responses = [r async for r in call]
    assert len(responses) == total
    assert len({r.correlation_id for r in responses}) == total
    assert len(emu.state.rooms) == total + 1


async def settled(count: Any, quiet_s: float = 1.0, limit_s: float = 30.0) -> int:
    """A count once it has stopped changing for quiet_s: an observation, not a readiness wait."""
    loop = asyncio.get_running_loop()
    last, since, start = count(), loop.time(), loop.time()
    while loop.time() - since < quiet_s:
        assert loop.time() - start < limit_s, "count never settled"
        await asyncio.sleep(0.05)
        now = count()
        if now != last:
            last, since = now, loop.time()
    return int(last)


async def until(condition: Any, limit_s: float = 30.0) -> None:
    """Wait for condition() to hold, checking often; fail after limit_s."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        assert loop.time() - start < limit_s, "condition never held"
        await asyncio.sleep(0.01)


async def test_stream_limit_is_resource_exhausted(monkeypatch: pytest.MonkeyPatch) -> None:
    async with batch_facade(monkeypatch, max_streams=1) as (_, stub, emu):
        emu.state.faults.add(FaultRule(name="hold", latency_ms=2000))
        first = stub.BatchCreateRooms(items_of([item("h", name="hold")]), timeout=30)
        # The first stream is open once its item has reached the endpoint.
        await until(lambda: len(emu.state.recorded("CreateRoom")) == 1)
        second = stub.BatchCreateRooms(items_of([item("x")]), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in second:
                pass
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert [r.correlation_id async for r in first] == ["h"]


async def test_item_limit_answers_extra_items(monkeypatch: pytest.MonkeyPatch) -> None:
    async with batch_facade(monkeypatch, max_items_per_stream=3) as (_, stub, emu):
        responses = await collect(stub, (item(f"i{i}") for i in range(5)))
    results = sorted((r.correlation_id, r.WhichOneof("result")) for r in responses)
    assert results == [
        ("i0", "room"),
        ("i1", "room"),
        ("i2", "room"),
        ("i3", "error"),
        ("i4", "error"),
    ]
    extra = next(r.error for r in responses if r.correlation_id == "i4")
    assert extra.code == code_pb2.RESOURCE_EXHAUSTED
    assert reason(extra) == "BATCH_ITEMS_EXCEEDED"
    assert len(emu.state.rooms) == 3


async def test_unary_calls_go_ahead_of_a_batch_and_nobody_is_throttled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu_settings = EmulatorSettings(create_room_rate=5)
    async with batch_facade(monkeypatch, emu_settings, create_rate=5.0) as (_, stub, emu):
        batch = asyncio.ensure_future(collect(stub, (item(f"b{i}") for i in range(15))))
        await until(lambda: len(emu.state.recorded("CreateRoom")) >= 1)
        unary = await asyncio.gather(
            *(stub.CreateRoom(pb.CreateRoomRequest(name=f"u{i}"), timeout=30) for i in range(3))
        )
        unary_done_at = len(emu.state.recorded("CreateRoom"))
        responses = await batch
    assert [u.room.name for u in unary] == ["u0", "u1", "u2"]
    assert len(responses) == 15
    assert unary_done_at < 18  # the unary calls did not wait for the whole batch
    assert throttles(emu) == 0


async def test_server_drain_answers_every_item_read_then_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with batch_facade(monkeypatch, create_rate=10.0) as (service, stub, emu):
        emu.state.faults.add(FaultRule(latency_ms=300))
        call = stub.BatchCreateRooms(items_of(item(f"z{i}") for i in range(200)), timeout=60)
        responses: list[pb.BatchCreateRoomsResponse] = []
        with pytest.raises(grpc.aio.AioRpcError) as info:  # noqa: PT012 - the stream is the subject
            async for response in call:
                responses.append(response)
                if len(responses) == 3:
                    drain = asyncio.ensure_future(service.drain(5.0))
        await drain
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    created = {r.correlation_id for r in responses if r.HasField("room")}
    not_sent = [r for r in responses if r.HasField("error")]
    assert all(r.error.code == code_pb2.UNAVAILABLE for r in not_sent)
    assert all(reason(r.error) == "NOT_SENT" for r in not_sent)
    # Every item that reached AWS was answered with its room; none was lost.
    assert len(emu.state.rooms) == len(created)
    assert len(emu.state.recorded("CreateRoom")) == len(created)
    assert len(responses) < 200


async def test_unary_goes_ahead_of_more_batch_items_than_fit_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with batch_facade(monkeypatch, create_rate=10.0, aws_max_in_flight=4) as (_, stub, emu):
        batch = asyncio.ensure_future(collect(stub, (item(f"q{i}") for i in range(40))))
        await until(lambda: len(emu.state.recorded("CreateRoom")) >= 2)
        sent_before = len(emu.state.recorded("CreateRoom"))
        reply = await stub.CreateRoom(pb.CreateRoomRequest(name="urgent"), timeout=30)
        order = [r.body.get("name") for r in emu.state.recorded("CreateRoom")]
        await batch
    assert reply.room.name == "urgent"
    # Dozens of batch items were waiting; the unary call waited for one slot, not for them.
    assert order.index("urgent") <= sent_before + 1


async def test_drain_after_half_close_ends_with_details(monkeypatch: pytest.MonkeyPatch) -> None:
    async with batch_facade(monkeypatch, create_rate=None) as (service, stub, emu):
        emu.state.faults.add(FaultRule(latency_ms=500))
        call = stub.BatchCreateRooms(items_of(item(f"h{i}") for i in range(4)), timeout=30)
        await until(lambda: len(emu.state.recorded("CreateRoom")) == 4)  # all read and sent
        drain = asyncio.ensure_future(service.drain(20.0))
        responses: list[pb.BatchCreateRoomsResponse] = []
        with pytest.raises(grpc.aio.AioRpcError) as info:  # noqa: PT012 - the stream is the subject
            async for r in call:
                responses.append(r)
        await drain
    assert [r.WhichOneof("result") for r in responses] == ["room"] * 4
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(info.value).reason == "SHUTTING_DOWN"
