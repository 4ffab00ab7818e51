"""An attack on issue 19's work: shedding, and each operation's bucket.

Each test is a finding: sound where it passes as first written, or the test a
fix came with (the commit says which).
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from typing import Any

from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.aws import convert
from ivschat_grpc.aws.adapter import IvsChat
from ivschat_grpc.aws.connection import AwsConnection, StaticCredentials
from ivschat_grpc.core.creator import RESERVED_TAG, ROOMS, Creator
from ivschat_grpc.core.idempotency import MemoryStore
from ivschat_grpc.core.operations import OPERATIONS
from ivschat_grpc.core.pacing import Pacer, Priority
from ivschat_grpc.emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    Emulator,
    FaultRule,
)

from tests.support.facade import MakeFacade

# One slot every 1000 s: a bucket that has given one slot gives no other in any test.
SPENT = 0.001


def tagged_rooms(emu: Emulator, request_id: str) -> list[str]:
    """The rooms at the endpoint that carry request_id's tag."""
    return [r["arn"] for r in emu.state.rooms.values() if r["tags"].get(RESERVED_TAG) == request_id]


async def spent(rate: float | None = SPENT) -> Pacer:
    """A pacer whose one slot in the next 1000 s is gone."""
    pacer = Pacer(rate, 16)
    await pacer.acquire(Priority.INTERACTIVE)
    pacer.release()
    return pacer


async def adapter(
    emu: Emulator, stack: AsyncExitStack, pacers: dict[str, Pacer], **kwargs: Any
) -> IvsChat:
    settings = AwsConnection(
        region=DEFAULT_REGION, endpoint_url=emu.url, create_rate=None, **kwargs
    )
    every = {name: Pacer(None, settings.max_in_flight) for name in OPERATIONS} | pacers
    credentials = StaticCredentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)
    return await IvsChat.open(settings, stack, every, credentials)


# --- 1. exactly-once: a lookup shed after the create succeeded ----------------------


async def test_a_room_made_after_an_ambiguous_attempt_is_the_answer_when_its_last_look_is_shed(
    make_facade: MakeFacade, emulator: Emulator
) -> None:
    # The first create fails in a way AWS may have run (a 500, nothing made),
    # its lookup finds nothing, and the create sent again makes the room. The
    # look that converges on one room then finds ListRooms' bucket spent. The
    # caller was answered RESOURCE_EXHAUSTED "not sent, retry": for a room
    # that exists, and is recorded nowhere.
    request_id = str(uuid.uuid4())
    async with make_facade(operation_rates={"ListRooms": SPENT}) as facade:
        emulator.state.faults.add(
            FaultRule(operation="CreateRoom", error="InternalServerException", times=1)
        )
        request = pb.CreateRoomRequest(name="r", request_id=request_id)
        room = await facade.stub.CreateRoom(request, timeout=10)
        again = await facade.stub.CreateRoom(request, timeout=10)
    assert tagged_rooms(emulator, request_id) == [room.room.arn]
    assert again.room.arn == room.room.arn


async def test_a_duplicate_whose_delete_is_shed_leaves_the_kept_room_the_answer(
    emulator: Emulator,
) -> None:
    # The first create's answer is lost (the read times out at 0.5 s; AWS makes
    # the room at 2 s) and the lookup at 1.5 s misses it; the second create
    # makes a room and its connection drops. The next lookup, at 2.5 s, finds
    # both: the service keeps one and deletes the other, but DeleteRoom's
    # bucket is spent. The caller was answered "not sent" for two rooms; the
    # owed look for duplicates deletes the second later instead.
    req = pb.CreateRoomRequest(name="twice", request_id=str(uuid.uuid4()))
    emulator.state.faults.add(
        FaultRule(latency_ms=2000, times=1), FaultRule(create=True, drop=True, times=1)
    )
    async with AsyncExitStack() as stack:
        aws = await adapter(emulator, stack, {"DeleteRoom": await spent()}, read_timeout_s=0.5)
        creator = Creator(
            aws, MemoryStore(3600, 60), lease_s=60, settle_s=1.0, recheck_s=40, kind=ROOMS
        )
        out = await creator.create(req, convert.to_aws_params(req), 10)
        again = await creator.create(req, convert.to_aws_params(req), 10)
        await creator.close()
    assert out.resource.arn in tagged_rooms(emulator, req.request_id)
    assert again.resource.arn == out.resource.arn
