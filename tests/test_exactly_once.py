"""Exactly-once room creation with request_id: duplicates, concurrency, ambiguity, Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.core.creator import RESERVED_TAG, decode_record, encode_record
from ivschat_grpc.core.idempotency import MemoryStore, Verdict
from ivschat_grpc.emulator import Emulator, EmulatorSettings, FaultRule
from ivschat_grpc.runtime.assembly import Service

from tests.support.env import use_emulator_credentials
from tests.support.facade import Facade, facade_settings, facade_with, serving
from tests.support.richstatus import error_info, field_violations


def rid() -> str:
    return str(uuid.uuid4())


def creates(emu: Emulator) -> int:
    return len(emu.state.recorded("CreateRoom"))


# Attempts the adapter makes of an operation safe to resend (AwsConnection.max_attempts).
LOOKUP_ATTEMPTS = 4


async def unary(stub: Any, request_id: str | None, **room: Any) -> pb.Room:
    request = pb.CreateRoomRequest(request_id=request_id, **room)
    reply = await stub.CreateRoom(request, timeout=20)
    return reply.room  # type: ignore[no-any-return]  # the async stub is typed loosely


async def batch(stub: Any, items: Iterable[tuple[str, pb.CreateRoomRequest]]) -> list[Any]:
    requests = [pb.BatchCreateRoomsRequest(correlation_id=c, room=r) for c, r in items]
    return [r async for r in stub.BatchCreateRooms(iter(requests), timeout=30)]


async def test_a_repeated_request_id_returns_the_first_room(facade: Facade) -> None:
    request_id = rid()
    first = await unary(facade.stub, request_id, name="once", tags={"team": "red"})
    again = await unary(facade.stub, request_id, name="once", tags={"team": "red"})
    assert again == first
    assert first.tags[RESERVED_TAG] == request_id
    assert len(facade.emulator.state.rooms) == 1
    assert creates(facade.emulator) == 1


async def test_concurrent_duplicates_wait_for_the_first(facade: Facade) -> None:
    facade.emulator.state.faults.add(FaultRule(latency_ms=400))
    request_id = rid()
    rooms = await asyncio.gather(*(unary(facade.stub, request_id, name="race") for _ in range(5)))
    assert len({r.id for r in rooms}) == 1
    assert len(facade.emulator.state.rooms) == 1
    assert creates(facade.emulator) == 1


async def test_same_request_id_with_another_body_is_invalid(facade: Facade) -> None:
    request_id = rid()
    await unary(facade.stub, request_id, name="original")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await unary(facade.stub, request_id, name="different")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(info.value).reason == "REQUEST_ID_REUSED"
    assert set(field_violations(info.value)) == {"request_id"}
    assert creates(facade.emulator) == 1


@pytest.mark.parametrize(
    ("room", "field"),
    [
        ({"request_id": "not-a-uuid"}, "request_id"),
        ({"request_id": ""}, "request_id"),
        ({"request_id": "{3f2b9a4e-6c1d-4e8a-9b7f-2d5c8e1a0b3c}"}, "request_id"),
        ({"tags": {RESERVED_TAG: "x"}}, f'tags["{RESERVED_TAG}"]'),
        ({"request_id": str(uuid.uuid4()), "tags": {f"k{i}": "v" for i in range(50)}}, "tags"),
    ],
    ids=["not-uuid", "empty", "braced", "reserved-tag", "no-room-for-the-tag"],
)
async def test_request_id_rules(facade: Facade, room: dict[str, Any], field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(**room), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(info.value)
    assert creates(facade.emulator) == 0


async def test_request_id_holds_across_batch_streams_and_unary(facade: Facade) -> None:
    request_id = rid()
    room = pb.CreateRoomRequest(request_id=request_id, name="shared")
    first = await batch(facade.stub, [("a", room)])
    second = await batch(facade.stub, [("b", room)])
    third = await unary(facade.stub, request_id, name="shared")
    assert first[0].room.id == second[0].room.id == third.id
    assert creates(facade.emulator) == 1


@pytest.mark.parametrize(
    ("fault", "expected_creates"),
    [
        (FaultRule(error="InternalServerException", create=True, times=1), 1),
        (FaultRule(drop=True, create=True, times=1), 1),
        (FaultRule(error="InternalServerException", create=False, times=1), 2),
        (FaultRule(drop=True, create=False, times=1), 2),
    ],
    ids=["500-created", "dropped-after", "500-not-created", "dropped-before"],
)
async def test_ambiguity_is_resolved_before_any_retry(
    facade: Facade, fault: FaultRule, expected_creates: int
) -> None:
    facade.emulator.state.faults.add(fault)
    room = await unary(facade.stub, rid(), name="ambiguous")
    assert list(facade.emulator.state.rooms) == [room.id]
    assert creates(facade.emulator) == expected_creates  # a retry only when it was not created
    assert len(facade.emulator.state.recorded("ListRooms")) >= 1  # it looked first


async def test_unresolved_ambiguity_is_clear_and_a_later_retry_finds_the_room(
    facade: Facade,
) -> None:
    request_id = rid()
    facade.emulator.state.faults.add(
        FaultRule(error="InternalServerException", create=True, times=1),
        # ListRooms is safe to resend, so the lookup tries it on every attempt.
        FaultRule(operation="ListRooms", error="InternalServerException", times=LOOKUP_ATTEMPTS),
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await unary(facade.stub, request_id, name="unclear")
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert error_info(info.value).metadata["room_may_exist"] == "true"
    room = await unary(facade.stub, request_id, name="unclear")
    assert list(facade.emulator.state.rooms) == [room.id]
    assert creates(facade.emulator) == 1


async def test_a_lookup_that_fails_once_is_sent_again_and_finds_the_room(
    facade: Facade,
) -> None:
    facade.emulator.state.faults.add(
        FaultRule(error="InternalServerException", create=True, times=1),
        FaultRule(operation="ListRooms", error="InternalServerException", times=1),
    )
    room = await unary(facade.stub, rid(), name="found-on-second-look")
    assert list(facade.emulator.state.rooms) == [room.id]
    assert creates(facade.emulator) == 1
    assert len(facade.emulator.state.recorded("ListRooms")) == 2  # the 500, then the answer


async def test_a_deadline_mid_create_then_a_retry_gets_the_same_room(facade: Facade) -> None:
    request_id = rid()
    facade.emulator.state.faults.add(FaultRule(latency_ms=1500, times=1))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(
            pb.CreateRoomRequest(request_id=request_id, name="slow"), timeout=0.5
        )
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The retry waits for the first call's work, which records the room.
    room = await unary(facade.stub, request_id, name="slow")
    assert list(facade.emulator.state.rooms) == [room.id]
    assert creates(facade.emulator) == 1


async def test_without_request_id_ambiguity_is_never_retried(facade: Facade) -> None:
    facade.emulator.state.faults.add(FaultRule(drop=True, create=False, times=1))
    with pytest.raises(grpc.aio.AioRpcError):
        await unary(facade.stub, None, name="blind")
    assert creates(facade.emulator) == 1
    assert facade.emulator.state.recorded("ListRooms") == []


async def test_lease_lets_another_caller_take_over_and_look_first() -> None:
    store = MemoryStore(retention_s=60, lease_s=0.05)
    first = await store.claim("id", "fp")
    assert first.verdict is Verdict.OWNER
    assert (await store.claim("id", "fp")).verdict is Verdict.WAIT
    await store.wait("id", 5)  # returns when the lease runs out
    takeover = await store.claim("id", "fp")
    assert takeover.verdict is Verdict.OWNER
    assert takeover.resolve_first
    await store.finish("id", first.token, b"stale")  # the old owner's token no longer counts
    await store.finish("id", takeover.token, b"room")
    assert (await store.claim("id", "fp")).room == b"room"


@asynccontextmanager
async def replica(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> AsyncIterator[tuple[Service, Any]]:
    use_emulator_credentials(monkeypatch)
    settings = facade_settings(emulator, grace_s=1.0, create_rate=None, redis_url=redis_url)
    async with serving(settings) as (service, channel):
        yield service, pb_grpc.RoomServiceStub(channel)


async def test_redis_records_hold_across_replicas_and_restarts(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    request_id = rid()
    emulator.state.faults.add(FaultRule(latency_ms=300))
    async with (
        replica(emulator, monkeypatch, redis_url) as (_, a),
        replica(emulator, monkeypatch, redis_url) as (_, b),
    ):
        rooms = await asyncio.gather(
            unary(a, request_id, name="shared"), unary(b, request_id, name="shared")
        )
        assert rooms[0].id == rooms[1].id
    async with replica(emulator, monkeypatch, redis_url) as (_, restarted):
        again = await unary(restarted, request_id, name="shared")
        assert again.id == rooms[0].id
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await unary(restarted, request_id, name="changed")
        assert error_info(info.value).reason == "REQUEST_ID_REUSED"
    assert len(emulator.state.rooms) == 1
    assert creates(emulator) == 1


async def test_records_expire_after_the_retention_window() -> None:
    store = MemoryStore(retention_s=0.05, lease_s=5)
    claim = await store.claim("id", "fp")
    await store.finish("id", claim.token, b"room")
    assert (await store.claim("id", "fp")).verdict is Verdict.DONE
    await asyncio.sleep(0.1)  # past the retention window
    fresh = await store.claim("id", "other body")
    assert fresh.verdict is Verdict.OWNER  # forgotten: a new request, not a mismatch
    assert not fresh.resolve_first


def test_a_record_says_whether_a_look_is_owed_and_old_records_read_as_settled() -> None:
    room = pb.Room(arn="arn:aws:ivschat:us-west-2:123456789012:room/abc", id="abc", name="n")
    assert decode_record(room.SerializeToString(), pb.Room) == (room, None)  # before the flag
    assert decode_record(encode_record(room, None), pb.Room) == (room, None)
    assert decode_record(encode_record(room, 1_800_000_000.5), pb.Room) == (room, 1_800_000_000.5)
    assert decode_record(encode_record(pb.Room(), 1.0), pb.Room) == (pb.Room(), 1.0)
    # A replica on an older version reads the new form as the room itself.
    older = pb.Room.FromString(encode_record(room, 1.0))
    older.DiscardUnknownFields()
    assert older == room


async def test_a_burst_of_lookups_holds_each_operations_quota(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The endpoint enforces AWS's 5/s on the lookups' operations, as AWS does.
    quotas = {"ListRooms": 5.0, "GetRoom": 5.0}
    async with Emulator(EmulatorSettings(create_room_rate=None, quotas=quotas)) as emu:
        # Every create answers 500 after making its room, so each call looks it up.
        emu.state.faults.add(FaultRule(error="InternalServerException", create=True, times=12))
        async with facade_with(emu, monkeypatch) as facade:
            rooms = await asyncio.gather(
                *(unary(facade.stub, rid(), name=f"burst-{i}") for i in range(12))
            )
        lookups = emu.state.recorded("ListRooms") + emu.state.recorded("GetRoom")
    assert len({room.id for room in rooms}) == 12
    assert len(emu.state.rooms) == 12
    assert [r.operation for r in lookups if r.status == 429] == []
