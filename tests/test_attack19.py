"""An attack on issue 19's work: shedding, and each operation's bucket.

Each test is a finding: sound where it passes as first written, or the test a
fix came with (the commit says which).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import uuid
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import grpc
import pytest
from google.rpc import error_details_pb2
from ivschat.v1 import chat_service_pb2 as chat_pb
from ivschat.v1 import chat_service_pb2_grpc as chat_grpc
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as lc_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
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

from tests.support.env import use_emulator_credentials
from tests.support.facade import MakeFacade, facade_settings, serving
from tests.support.processes import LISTENING, QUIET, read_until, running
from tests.support.richstatus import detail, error_info, status_of
from tests.support.waiting import until

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


# --- 2. bookkeeping: a flood of short deadlines and cancels leaves every bucket idle ---

# Deadlines around the 50 ms kept for the request itself, and none at all.
DEADLINES = (0.0, 0.001, 0.049, 0.051, 0.08, 0.3, 1.0, 3.0, None)
# Slow buckets, so that callers queue: two in flight at once, each taking 0.2 s.
FLOOD_RATES = {"CreateChatToken": 20.0, "TagResource": 3.0, "CreateLoggingConfiguration": 2.0}
ANSWERS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}


async def test_a_flood_of_short_deadlines_and_cancels_leaves_every_bucket_idle_and_serving(
    make_facade: MakeFacade, emulator: Emulator
) -> None:
    rng = random.Random(19)  # noqa: S311 - the same flood every run, not cryptography
    async with make_facade(
        create_rate=3.0, operation_rates=FLOOD_RATES, aws_max_in_flight=2
    ) as facade:
        room = (await facade.stub.CreateRoom(pb.CreateRoomRequest(name="r"), timeout=10)).room
        emulator.state.faults.add(
            *(FaultRule(operation=op, latency_ms=200) for op in ("CreateRoom", *FLOOD_RATES))
        )
        chat = chat_grpc.ChatServiceStub(facade.channel)
        logging = lc_grpc.LoggingConfigurationServiceStub(facade.channel)

        def call(kind: int, timeout: float | None) -> Any:
            if kind == 0:
                return facade.stub.CreateRoom(pb.CreateRoomRequest(name="f"), timeout=timeout)
            if kind == 1:
                token = chat_pb.CreateChatTokenRequest(room_arn=room.arn, user_id="viewer")
                return chat.CreateChatToken(token, timeout=timeout)
            if kind == 2:
                tags = pb.Room(arn=room.arn, tags={"n": str(rng.random())})
                update = pb.UpdateRoomRequest(room=tags, update_mask={"paths": ["tags"]})
                return facade.stub.UpdateRoom(update, timeout=timeout)
            config = lc_pb.LoggingConfiguration(s3=lc_pb.S3Destination(bucket_name="chat-logs"))
            create = lc_pb.CreateLoggingConfigurationRequest(logging_configuration=config)
            return logging.CreateLoggingConfiguration(create, timeout=timeout)

        loop = asyncio.get_running_loop()
        calls = []
        for _ in range(160):
            made = call(rng.randrange(4), rng.choice(DEADLINES))
            if rng.random() < 0.3:
                loop.call_later(rng.uniform(0, 0.5), made.cancel)
            calls.append(made)
        codes = []
        for made in calls:
            try:
                await made
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as e:
                codes.append(e.code())
            except asyncio.CancelledError:
                codes.append(grpc.StatusCode.CANCELLED)
        pacers = facade.service.pacers
        await until(lambda: all(p.waiting == 0 and p.in_flight == 0 for p in pacers.values()))
        emulator.state.faults.clear()
        # Nothing is left wedged: each bucket serves a caller who can wait for its slot.
        for kind in range(4):
            await call(kind, 30)
    assert set(codes) <= ANSWERS, set(codes) - ANSWERS
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes


# --- 3. drain: callers queued for a slot when SIGTERM comes --------------------------


def queue_depth(scrape: str, operation: str) -> float:
    line = f'ivschat_grpc_bucket_queue_depth{{operation="{operation}"}} '
    return next((float(r.split()[-1]) for r in scrape.splitlines() if r.startswith(line)), 0.0)


async def test_sigterm_answers_every_caller_queued_for_a_slot_and_exits_clean(
    endpoint: Emulator,
) -> None:
    # One CreateRoom every 10 s, and room in its queue for all: the callers
    # wait for their slots, far from their deadlines, as the drain begins.
    rate = ("--create-rate", "0.1", "--redis-down-create-rate", "0.1")
    args = (*rate, "--max-queue-wait", "600", "--grace", "1", *QUIET)
    async with running("serve", "--port", "0", "--metrics-port", "0", *args) as (proc, lines):
        port = (await read_until(proc, lines, LISTENING))[1]
        metrics = (await read_until(proc, lines, r"metrics at (http://\S+)"))[1]
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.RoomServiceStub(channel)
        await stub.CreateRoom(pb.CreateRoomRequest(name="first"), timeout=10)
        requests = [pb.CreateRoomRequest(name=f"q{i}") for i in range(12)]
        calls = [asyncio.ensure_future(stub.CreateRoom(r, timeout=300)) for r in requests]

        async def items() -> Any:
            for i in range(4):
                yield pb.BatchCreateRoomsRequest(
                    correlation_id=f"b{i}", room=pb.CreateRoomRequest(name=f"b{i}")
                )
            await asyncio.Event().wait()  # the stream stays open

        batch = stub.BatchCreateRooms(items(), timeout=300)

        async def queued() -> bool:
            async with aiohttp.ClientSession() as http, http.get(metrics) as resp:
                return queue_depth(await resp.text(), "CreateRoom") == 16

        await until(queued)
        proc.send_signal(signal.SIGTERM)
        answers = await asyncio.gather(*calls, return_exceptions=True)
        items_answered = []
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for item in batch:
                items_answered.append(item)
        await channel.close()
        code = await asyncio.wait_for(proc.wait(), 30)
    made = {r["name"] for r in endpoint.state.rooms.values()}
    for answer in answers:
        if isinstance(answer, BaseException):
            assert isinstance(answer, grpc.aio.AioRpcError), answer
            # Not sent, so nothing to mind: UNAVAILABLE, retry elsewhere.
            assert answer.code() == grpc.StatusCode.UNAVAILABLE, (answer.code(), answer.details())
    served = {a.room.name for a in answers if not isinstance(a, BaseException)}
    served |= {i.room.name for i in items_answered if i.HasField("room")}
    # Every room made was answered as made; no caller lost its answer.
    assert made == {"first", *served}
    assert len(items_answered) == 4
    assert code == 0


# --- 4. a create with a request_id behind a backlog longer than its deadline -----------


async def test_a_create_with_a_request_id_that_cannot_have_its_slot_in_time_is_shed_at_once(
    make_facade: MakeFacade, emulator: Emulator
) -> None:
    # The owner of a request_id works on past its caller's deadline, so that
    # a create it sent is recorded. But it waited for its slot past it too:
    # the caller waited out its deadline and was told DEADLINE_EXCEEDED, room
    # may exist, and the owner sat in the queue for its slot, ahead of callers
    # still waiting, to make a room 20 s later that nobody waited for.
    async with make_facade(create_rate=0.1, max_queue_wait=60.0) as facade:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(name="first"), timeout=10)
        ahead = [
            asyncio.ensure_future(
                facade.stub.CreateRoom(pb.CreateRoomRequest(name="ahead"), timeout=120)
            )
            for _ in range(2)
        ]
        pacer = facade.service.pacers["CreateRoom"]
        await until(lambda: pacer.waiting == 2)
        request = pb.CreateRoomRequest(name="late", request_id=str(uuid.uuid4()))
        with pytest.raises(grpc.aio.AioRpcError) as shed:
            await facade.stub.CreateRoom(request, timeout=5)
        still_waiting = pacer.waiting
        for call in ahead:
            call.cancel()
        await asyncio.gather(*ahead, return_exceptions=True)
    assert shed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, shed.value.details()
    assert error_info(shed.value).reason == "RATE_LIMIT_EXCEEDED"
    assert still_waiting == 2  # those ahead, and not the late one's owner
    assert tagged_rooms(emulator, request.request_id) == []


# --- 5. a batch item with a request_id has its owner's budget --------------------------


async def test_a_batch_item_with_a_request_id_is_shed_unsent_past_its_owners_budget(
    make_facade: MakeFacade, emulator: Emulator
) -> None:
    # operations.md said batch items are never shed. One with a request_id
    # has its owner's budget (the lease, 5 s here), and its slot is 10 s away.
    settings = {"idempotency_lease_s": 5.0, "idempotency_claim_timeout_s": 1.0}
    async with make_facade(create_rate=0.1, **settings) as facade:

        async def items() -> Any:
            yield pb.BatchCreateRoomsRequest(
                correlation_id="plain", room=pb.CreateRoomRequest(name="plain")
            )
            yield pb.BatchCreateRoomsRequest(
                correlation_id="once",
                room=pb.CreateRoomRequest(name="once", request_id=str(uuid.uuid4())),
            )

        answers = {
            a.correlation_id: a async for a in facade.stub.BatchCreateRooms(items(), timeout=60)
        }
    assert answers["plain"].HasField("room")
    shed = answers["once"].error
    assert shed.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert detail(shed, error_details_pb2.ErrorInfo).reason == "RATE_LIMIT_EXCEEDED"
    assert [r["name"] for r in emulator.state.rooms.values()] == ["plain"]


# --- 6. replicas: a slot another replica took, seen by this one ------------------------


async def test_a_replica_sheds_at_once_with_the_shared_buckets_next_slot_not_its_own_guess(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    # Replica A takes the shared bucket's slot; B's next is 10 s away. B knew
    # only its own grants, so it let a caller with 5 s in: the caller waited
    # out nearly all of it and was then told to retry after 0 s, into the
    # same wait. B learns the slot's time from Redis before granting it.
    use_emulator_credentials(monkeypatch)
    shared = {"grace_s": 1.0, "create_rate": 0.1, "redis_url": redis_url}
    async with AsyncExitStack() as stack:
        stubs = []
        for _ in range(2):
            settings = facade_settings(emulator, **shared)
            service, channel = await stack.enter_async_context(serving(settings))
            stubs.append((service, pb_grpc.RoomServiceStub(channel)))
        (_, a), (b_service, b) = stubs
        await a.CreateRoom(pb.CreateRoomRequest(name="a"), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as shed:
            await b.CreateRoom(pb.CreateRoomRequest(name="b"), timeout=5)
        waiting = b_service.pacers["CreateRoom"].waiting
    assert shed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = detail(status_of(shed.value), error_details_pb2.RetryInfo).retry_delay
    assert retry.ToTimedelta().total_seconds() > 4  # A's slot's successor, 10 s after it
    assert waiting == 0
    assert [r["name"] for r in emulator.state.rooms.values()] == ["a"]


# --- 7. RetryInfo: a caller that honours it is served ---------------------------------


async def test_callers_that_sleep_retryinfos_delay_and_retry_are_all_served(
    make_facade: MakeFacade, emulator: Emulator
) -> None:
    # Twenty callers at once on a bucket of 4 a second, whose queue holds 8:
    # most are shed. Each sleeps what RetryInfo says and comes back; every delay is
    # sane (never negative, never past the queue's few seconds), and each is
    # served within a bounded number of tries.
    async with make_facade(create_rate=4.0) as facade:
        delays: list[float] = []
        codes: set[grpc.StatusCode] = set()

        async def caller(n: int) -> int:
            for attempt in range(1, 30):
                try:
                    await facade.stub.CreateRoom(pb.CreateRoomRequest(name=f"c{n}"), timeout=5)
                except grpc.aio.AioRpcError as e:
                    codes.add(e.code())
                    retry = detail(status_of(e), error_details_pb2.RetryInfo).retry_delay
                    delays.append(retry.ToTimedelta().total_seconds())
                    await asyncio.sleep(delays[-1])  # what RetryInfo asks of a client
                else:
                    return attempt
            raise AssertionError(f"caller {n} was never served")

        tries = await asyncio.gather(*(caller(n) for n in range(20)))
    assert sorted(r["name"] for r in emulator.state.rooms.values()) == sorted(
        f"c{n}" for n in range(20)
    )
    assert codes == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert delays
    assert all(0 <= d <= 3 for d in delays), delays
    assert max(tries) < 30
