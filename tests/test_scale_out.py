"""Several replicas, one AWS account: the shared bucket, shared records, and Redis going away.

Replicas are separate servers (each its own AWS client, pacer, store and Redis
connection) in this process, in front of one endpoint that enforces AWS's
quota, with one real redis-server between them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as lc_pb_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.core.creator import RESERVED_TAG
from ivschat_grpc.core.idempotency import MemoryStore, Verdict
from ivschat_grpc.emulator import Emulator, EmulatorSettings, FaultRule
from ivschat_grpc.replicas import shared_state
from ivschat_grpc.replicas.redis_store import RedisStore
from ivschat_grpc.replicas.shared_state import FallbackStore, LocalSlots, SharedSlots, SharedState
from ivschat_grpc.runtime.assembly import Service

from tests.support.env import use_emulator_credentials
from tests.support.facade import facade_settings, serving
from tests.support.processes import RedisServer

QUOTA = 5.0  # AWS's CreateRoom quota, per account and region


@asynccontextmanager
async def replicas(
    emulator: Emulator,
    redis_url: str,
    count: int,
    stub: Callable[[Any], Any] = pb_grpc.RoomServiceStub,
    **overrides: Any,
) -> AsyncIterator[list[tuple[Service, Any, Any]]]:
    """count servers sharing redis_url: (service, a stub of stub's service, Health stub) each."""
    async with AsyncExitStack() as stack:
        out = []
        for _ in range(count):
            settings = facade_settings(
                emulator,
                **{"grace_s": 1.0, "create_rate": QUOTA, "redis_url": redis_url, **overrides},
            )
            service, channel = await stack.enter_async_context(serving(settings))
            out.append((service, stub(channel), health_pb2_grpc.HealthStub(channel)))
        yield out


def quota_endpoint() -> Emulator:
    """An endpoint that throttles past AWS's quota, as AWS does."""
    return Emulator(EmulatorSettings(create_room_rate=QUOTA))


def throttles(emu: Emulator) -> int:
    return sum(1 for r in emu.state.recorded("CreateRoom") if r.status == 429)


async def stream(
    stub: Any,
    items: list[pb.BatchCreateRoomsRequest],
    on_answer: Callable[[int], Awaitable[None]] | None = None,
) -> list[pb.BatchCreateRoomsResponse]:
    answers = []
    async for answer in stub.BatchCreateRooms(iter(items), timeout=300):
        answers.append(answer)
        if on_answer is not None:
            await on_answer(len(answers))
    return answers


def items(prefix: str, count: int, *, request_ids: bool) -> list[pb.BatchCreateRoomsRequest]:
    return [
        pb.BatchCreateRoomsRequest(
            correlation_id=f"{prefix}{i}",
            room=pb.CreateRoomRequest(
                name=f"{prefix}{i}", request_id=str(uuid.uuid4()) if request_ids else None
            ),
        )
        for i in range(count)
    ]


def assert_each_answered_once_with_a_room(
    sent: list[pb.BatchCreateRoomsRequest], answers: list[pb.BatchCreateRoomsResponse]
) -> None:
    assert sorted(a.correlation_id for a in answers) == sorted(i.correlation_id for i in sent)
    failed = [(a.correlation_id, a.error.code) for a in answers if not a.HasField("room")]
    assert failed == []
    for answer in answers:
        assert answer.room.name == answer.correlation_id


async def test_three_replicas_share_the_quota_with_no_throttles(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    use_emulator_credentials(monkeypatch)
    async with quota_endpoint() as emu, replicas(emu, redis_url, 3) as three:
        sent = [items(f"r{n}-", 100, request_ids=False) for n in range(3)]
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(stream(stub, batch) for (_, stub, _), batch in zip(three, sent, strict=True))
        )
        seconds = time.perf_counter() - started
    for batch, answered in zip(sent, answers, strict=True):
        assert_each_answered_once_with_a_room(batch, answered)
    assert len(emu.state.rooms) == 300
    assert throttles(emu) == 0
    # Reported, not asserted: bench/scale.py prints it against the 95 % target.
    print(f"3 replicas, 300 rooms in {seconds:.1f} s: {299 / seconds / QUOTA:.1%} of the quota")


async def test_a_request_id_sent_to_two_replicas_makes_one_room(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    use_emulator_credentials(monkeypatch)
    async with quota_endpoint() as emu, replicas(emu, redis_url, 2) as ((_, a, _), (_, b, _)):
        request_id = str(uuid.uuid4())
        request = pb.CreateRoomRequest(name="once", request_id=request_id)
        first = (await a.CreateRoom(request, timeout=20)).room
        again = (await b.CreateRoom(request, timeout=20)).room
        assert again == first
        # And at the same time, while the endpoint is slow to answer.
        emu.state.faults.add(FaultRule(latency_ms=300))
        racing = pb.CreateRoomRequest(name="race", request_id=str(uuid.uuid4()))
        both = await asyncio.gather(
            a.CreateRoom(racing, timeout=20), b.CreateRoom(racing, timeout=20)
        )
        assert both[0].room == both[1].room
    assert sorted(r["name"] for r in emu.state.rooms.values()) == ["once", "race"]
    assert len(emu.state.recorded("CreateRoom")) == 2


async def health_of(health: Any, service: str, status: int) -> None:
    """Return once health reports status for service (a Watch stream: no polling)."""
    request = health_pb2.HealthCheckRequest(service=service)
    async for reply in health.Watch(request, timeout=30):
        if reply.status == status:
            return


async def test_killing_redis_mid_run_loses_and_duplicates_nothing(
    monkeypatch: pytest.MonkeyPatch,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    use_emulator_credentials(monkeypatch)
    caplog.set_level(logging.WARNING, logger="ivschat_grpc.replicas.shared_state")
    # Three replicas alone at 1.5/s each stay under the endpoint's 5/s.
    async with (
        quota_endpoint() as emu,
        replicas(emu, redis_server.url, 3, redis_down_create_rate=1.5) as three,
    ):
        sent = [items(f"k{n}-", 20, request_ids=True) for n in range(3)]
        killed = asyncio.Event()

        async def kill_after_three(answered: int) -> None:
            if answered == 3 and not killed.is_set():
                killed.set()
                await redis_server.kill()

        answers = await asyncio.gather(
            stream(three[0][1], sent[0], kill_after_three),
            *(stream(stub, batch) for (_, stub, _), batch in zip(three[1:], sent[1:], strict=True)),
        )
        assert killed.is_set()
        for service, _, health in three:
            await health_of(
                health, shared_state.REDIS_HEALTH, health_pb2.HealthCheckResponse.NOT_SERVING
            )
            assert b"ivschat_grpc_redis_up 0.0" in service.metrics.scrape()
            assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == (
                health_pb2.HealthCheckResponse.SERVING  # degraded, not down
            )
        assert any("Redis unreachable" in r.getMessage() for r in caplog.records)

        for batch, answered in zip(sent, answers, strict=True):
            assert_each_answered_once_with_a_room(batch, answered)
        tags = [room["tags"][RESERVED_TAG] for room in emu.state.rooms.values()]
        assert sorted(tags) == sorted(i.room.request_id for batch in sent for i in batch)
        assert throttles(emu) == 0

        # Redis comes back (empty: it kept nothing on disk). Each replica goes back
        # to it, and writes there what it finished while Redis was gone.
        await redis_server.start()
        for service, _, health in three:
            await health_of(
                health, shared_state.REDIS_HEALTH, health_pb2.HealthCheckResponse.SERVING
            )
            assert b"ivschat_grpc_redis_up 1.0" in service.metrics.scrape()
        assert any("Redis reachable again" in r.getMessage() for r in caplog.records)
        last = sent[0][-1].room  # finished on replica 0 after the kill
        replayed = (await three[1][1].CreateRoom(last, timeout=20)).room
        assert replayed.name == last.name
        assert replayed.tags[RESERVED_TAG] == last.request_id
        assert len(emu.state.rooms) == 60
        assert len(emu.state.recorded("CreateRoom")) == 60


async def test_the_bucket_hands_out_slots_in_order_and_all_to_one_when_alone(
    redis_url: str,
) -> None:
    client = aioredis.from_url(redis_url)

    async def changed(up: bool) -> None:
        pass

    state = SharedState(client, changed, 1.0)
    key = shared_state.bucket_key("us-east-1")
    a, b = (SharedSlots(state, client, key, QUOTA, LocalSlots(1.0)) for _ in range(2))
    try:
        # Alone, one replica gets every slot: 0, 0.2, 0.4 ... seconds from now.
        alone = [await a.reserve() for _ in range(3)]
        assert alone == pytest.approx([0.0, 0.2, 0.4], abs=0.05)
        # Together, each gets the next slot in the order it asks.
        together = [await s.reserve() for s in (a, b, a, b)]
        assert together == pytest.approx([0.6, 0.8, 1.0, 1.2], abs=0.05)
    finally:
        await client.aclose()


async def test_local_slots_start_after_the_shared_slots_this_replica_holds(
    redis_server: RedisServer,
) -> None:
    # Calls that took a shared slot still send after Redis goes: the local
    # slots come after them, not on top of them, or AWS sees both at once.
    client = shared_state.connect(redis_server.url)

    async def changed(up: bool) -> None:
        return None

    state = SharedState(client, changed, 2.0)
    slots = SharedSlots(state, client, shared_state.bucket_key("us-east-1"), QUOTA, LocalSlots(2.0))
    try:
        shared_waits = [await slots.reserve() for _ in range(5)]  # 0, .2, .4, .6, .8
        assert shared_waits[-1] == pytest.approx(0.8, abs=0.05)
        await redis_server.kill()
        local = await slots.reserve()
        assert local == pytest.approx(0.8 + 0.5, abs=0.1)  # the last shared slot, then 1/2 s
    finally:
        await client.aclose()


async def test_without_redis_slots_come_from_the_local_fallback_rate(
    redis_server: RedisServer,
) -> None:
    client = shared_state.connect(redis_server.url)
    seen: list[bool] = []

    async def changed(up: bool) -> None:
        seen.append(up)

    state = SharedState(client, changed, 2.0)
    slots = SharedSlots(state, client, shared_state.bucket_key("us-east-1"), QUOTA, LocalSlots(2.0))
    try:
        await redis_server.kill()
        # The first reserve finds Redis gone and falls back: 2/s, so 0.5 s apart.
        delays = [await slots.reserve() for _ in range(3)]
        assert delays == pytest.approx([0.0, 0.5, 1.0], abs=0.05)
        assert not state.up
        await asyncio.sleep(0)  # let the change callback run
        assert seen == [False]
    finally:
        await client.aclose()


async def test_stopping_the_probe_ends_it_even_when_the_cancel_lands_mid_ping(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # redis-py (8.1) can swallow a cancel that lands inside a command and
    # finish the command as if nothing happened: a cancel alone then leaves
    # the probe pinging for ever, and the drain waiting on it.
    monkeypatch.setattr(shared_state, "PROBE_INTERVAL_S", 0.0)  # ping back to back
    client = shared_state.connect(redis_server.url)

    async def changed(up: bool) -> None:
        return None

    try:
        for attempt in range(30):
            state = SharedState(client, changed, 1.0)
            probe = asyncio.get_running_loop().create_task(state.probe())
            await asyncio.sleep(random.uniform(0, 0.002))  # noqa: S311 - timing, not secrets
            state.stop_probing()
            probe.cancel()
            done, _ = await asyncio.wait({probe}, timeout=2)
            assert done, f"attempt {attempt}: the probe kept running after it was stopped"
    finally:
        await client.aclose()


async def test_a_record_made_while_redis_was_gone_is_not_handed_out_again_once_it_returns(
    redis_server: RedisServer,
) -> None:
    client = aioredis.from_url(redis_server.url)

    async def changed(up: bool) -> None:
        pass

    state = shared_state.SharedState(client, changed, 1.0)
    store = FallbackStore(state, RedisStore(client, 60, 5), MemoryStore(60, 5))
    try:
        await redis_server.kill()
        claim = await store.claim("id", "fp")  # in this process: Redis is gone
        assert claim.verdict is Verdict.OWNER
        assert await store.finish("id", claim.token, b"room")
        await redis_server.start()  # empty: it kept nothing
        state.answered()  # seen back, before anything wrote the record there
        again = await store.claim("id", "fp")
        assert (again.verdict, again.room) == (Verdict.DONE, b"room")
        # And it is in Redis now, for every replica.
        assert await RedisStore(client, 60, 5).peek("id") == b"room"
    finally:
        await client.aclose()


async def test_two_replicas_share_each_lookup_bucket_with_no_throttles(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    use_emulator_credentials(monkeypatch)
    quotas = {"ListRooms": QUOTA, "GetRoom": QUOTA}
    async with Emulator(EmulatorSettings(create_room_rate=None, quotas=quotas)) as emu:
        # Every create answers 500 after making its room, so each call looks it up.
        emu.state.faults.add(FaultRule(error="InternalServerException", create=True, times=16))
        # CreateRoom unpaced, so that all 16 lookups come at once.
        async with replicas(emu, redis_url, 2, create_rate=None) as two:
            rooms = await asyncio.gather(
                *(
                    stub.CreateRoom(
                        pb.CreateRoomRequest(name=f"r{i}", request_id=str(uuid.uuid4())),
                        timeout=30,
                    )
                    for i in range(16)
                    for stub in [two[i % 2][1]]
                )
            )
        lookups = emu.state.recorded("ListRooms") + emu.state.recorded("GetRoom")
    assert len({r.room.id for r in rooms}) == 16
    assert [r.operation for r in lookups if r.status == 429] == []


@dataclass(frozen=True)
class Buckets:
    """Buckets is a family of operations to drive at their quota: how to make and call each."""

    quota: float
    # The operations whose buckets are checked; each is sent `2 x quota` times,
    # or, for the create (if checked), `4 x quota` times.
    operations: tuple[str, ...]
    stub: Callable[[Any], Any]
    # One create's call, and the four calls on the resources two creates made.
    create: Callable[[Any, int], Awaitable[str]]
    calls: Callable[[Sequence[Any], int, str, str], Sequence[Awaitable[Any]]]
    endpoint: Mapping[str, Any] = field(default_factory=dict)
    # Operations the replicas do not pace, so that the ones checked come all
    # at once rather than at the pace of a call that precedes them.
    unpaced: tuple[str, ...] = ()


async def _create_room(stub: Any, i: int) -> str:
    made = await stub.CreateRoom(pb.CreateRoomRequest(name=f"bucket-{i}"), timeout=30)
    return str(made.room.arn)


def _room_calls(stubs: Sequence[Any], i: int, arn: str, doomed: str) -> Sequence[Awaitable[Any]]:
    return (
        stubs[i % 3].GetRoom(pb.GetRoomRequest(arn=arn), timeout=60),
        stubs[(i + 1) % 3].ListRooms(pb.ListRoomsRequest(page_size=5), timeout=60),
        stubs[(i + 2) % 3].UpdateRoom(
            pb.UpdateRoomRequest(room=pb.Room(arn=arn, name=f"updated-{i}")), timeout=60
        ),
        stubs[i % 3].DeleteRoom(pb.DeleteRoomRequest(arn=doomed), timeout=60),
    )


async def _create_logging(stub: Any, i: int) -> str:
    config = lc_pb.LoggingConfiguration(
        name=f"bucket-{i}", s3=lc_pb.S3Destination(bucket_name="b-1")
    )
    request = lc_pb.CreateLoggingConfigurationRequest(logging_configuration=config)
    return str((await stub.CreateLoggingConfiguration(request, timeout=60)).arn)


def _logging_calls(stubs: Sequence[Any], i: int, arn: str, doomed: str) -> Sequence[Awaitable[Any]]:
    renamed = lc_pb.UpdateLoggingConfigurationRequest(
        logging_configuration=lc_pb.LoggingConfiguration(arn=arn, name=f"updated-{i}")
    )
    return (
        stubs[i % 3].GetLoggingConfiguration(
            lc_pb.GetLoggingConfigurationRequest(arn=arn), timeout=60
        ),
        stubs[(i + 1) % 3].ListLoggingConfigurations(
            lc_pb.ListLoggingConfigurationsRequest(page_size=5), timeout=60
        ),
        stubs[(i + 2) % 3].UpdateLoggingConfiguration(renamed, timeout=60),
        stubs[i % 3].DeleteLoggingConfiguration(
            lc_pb.DeleteLoggingConfigurationRequest(arn=doomed), timeout=60
        ),
    )


def _request_id(i: int) -> str:
    """The request_id of the room a tag family's create i makes: its calls name its tag."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bucket-{i}"))


async def _create_tagged_room(stub: Any, i: int) -> str:
    request = pb.CreateRoomRequest(name=f"bucket-{i}", tags={"old": "x"}, request_id=_request_id(i))
    return str((await stub.CreateRoom(request, timeout=30)).room.arn)


def _tag_calls(stubs: Sequence[Any], i: int, arn: str, doomed: str) -> Sequence[Awaitable[Any]]:
    """An UpdateRoom of name and tags, which makes one call of every tag operation.

    It names the reserved tag it keeps, so its tags are read first
    (ListTagsForResource); then one tag goes (UntagResource), one comes
    (TagResource).
    """
    del doomed  # nothing is deleted here
    tags = {RESERVED_TAG: _request_id(i), "new": str(i)}
    change = pb.Room(arn=arn, name=f"tagged-{i}", tags=tags)
    mask = field_mask_pb2.FieldMask(paths=["name", "tags"])
    return (
        stubs[i % 3].UpdateRoom(pb.UpdateRoomRequest(room=change, update_mask=mask), timeout=60),
    )


BUCKETS = {
    # CreateRoom's own bucket has tests of its own above; here it is off.
    "rooms": Buckets(
        QUOTA, ("GetRoom", "ListRooms", "UpdateRoom", "DeleteRoom"), pb_grpc.RoomServiceStub,
        _create_room, _room_calls,
    ),
    # Every logging configuration operation at 3/s, the create's included; the
    # account's limit of 10 is off, so that there are enough to delete.
    "logging-configurations": Buckets(
        3.0,
        (
            "CreateLoggingConfiguration",
            "GetLoggingConfiguration",
            "ListLoggingConfigurations",
            "UpdateLoggingConfiguration",
            "DeleteLoggingConfiguration",
        ),
        lc_pb_grpc.LoggingConfigurationServiceStub,
        _create_logging,
        _logging_calls,
        {"logging_configuration_quota": None},
    ),
    # The tag operations at 10/s each, through UpdateRoom's tags mask; UpdateRoom
    # itself is unpaced, or its 5/s would hold the tag calls below their quota.
    "tags": Buckets(
        10.0, ("ListTagsForResource", "UntagResource", "TagResource"), pb_grpc.RoomServiceStub,
        _create_tagged_room, _tag_calls, unpaced=("UpdateRoom",),
    ),
}  # fmt: skip


@pytest.mark.parametrize("family", list(BUCKETS))
async def test_three_replicas_share_each_bucket_with_no_throttles(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, family: str
) -> None:
    """Callers ask each operation for twice its quota at once, spread over three replicas."""
    use_emulator_credentials(monkeypatch)
    buckets = BUCKETS[family]
    quotas = dict.fromkeys(buckets.operations, buckets.quota)
    each = int(2 * buckets.quota)
    settings = EmulatorSettings(create_room_rate=None, quotas=quotas, **buckets.endpoint)
    async with (
        Emulator(settings) as emu,
        replicas(
            emu,
            redis_url,
            3,
            buckets.stub,
            create_rate=None,
            operation_rates=dict.fromkeys(buckets.unpaced),
        ) as three,
    ):
        stubs = [stub for _, stub, _ in three]
        arns = await asyncio.gather(*(buckets.create(stubs[i % 3], i) for i in range(2 * each)))
        await asyncio.gather(
            *(
                call
                for i in range(each)
                for call in buckets.calls(stubs, i, arns[i], arns[each + i])
            )
        )
    for operation in buckets.operations:
        sent = emu.state.recorded(operation)
        assert len(sent) == (2 * each if operation.startswith("Create") else each), operation
        assert [r for r in sent if r.status == 429] == [], operation
