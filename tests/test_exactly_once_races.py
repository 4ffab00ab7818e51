"""Races a review found in exactly-once creation, each now a test that holds."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from typing import Any

import pytest
import redis.asyncio as aioredis
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.aws import convert
from ivschat_grpc.aws.adapter import IvsChat
from ivschat_grpc.aws.connection import AwsConnection, StaticCredentials
from ivschat_grpc.core.calls import AwsCallError
from ivschat_grpc.core.creator import RESERVED_TAG, ROOMS, Creator, fingerprint
from ivschat_grpc.core.idempotency import MemoryStore, Verdict
from ivschat_grpc.core.operations import OPERATIONS
from ivschat_grpc.core.pacing import Pacer
from ivschat_grpc.emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    Emulator,
    FaultRule,
)
from ivschat_grpc.replicas.redis_store import RedisStore
from ivschat_grpc.runtime import settings as config

CREDENTIALS = StaticCredentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)


def tagged(emu: Emulator, request_id: str) -> list[str]:
    return [r["id"] for r in emu.state.rooms.values() if r["tags"].get(RESERVED_TAG) == request_id]


async def adapter(emu: Emulator, stack: AsyncExitStack, **kwargs: Any) -> IvsChat:
    settings = AwsConnection(
        region=DEFAULT_REGION, endpoint_url=emu.url, create_rate=None, **kwargs
    )
    pacers = {name: Pacer(None, settings.max_in_flight) for name in OPERATIONS}
    return await IvsChat.open(settings, stack, pacers, CREDENTIALS)


def request(name: str) -> pb.CreateRoomRequest:
    return pb.CreateRoomRequest(request_id=str(uuid.uuid4()), name=name)


async def test_a_create_still_at_work_is_found_after_the_settle_time(emulator: Emulator) -> None:
    # The read times out at 0.3 s; AWS finishes the create at 0.8 s.
    async with AsyncExitStack() as stack:
        aws = await adapter(emulator, stack, read_timeout_s=0.3)
        creator = Creator(aws, MemoryStore(3600, 60), lease_s=60, settle_s=1.0, kind=ROOMS)
        req = request("slow")
        emulator.state.faults.add(FaultRule(latency_ms=800, times=1))
        out = await creator.create(req, convert.to_aws_params(req), 10)
        again = await creator.create(req, convert.to_aws_params(req), 10)
    assert tagged(emulator, req.request_id) == [out.resource.id]
    assert again.resource.id == out.resource.id


async def test_an_unrecognised_failure_counts_as_maybe_created(emulator: Emulator) -> None:
    class CreatesThenFails:
        def __init__(self, real: IvsChat) -> None:
            self.real, self.calls = real, 0

        async def create(self, operation: str, params: Any, timeout_s: Any, **kwargs: Any) -> Any:
            self.calls += 1
            created = await self.real.create(operation, params, timeout_s, **kwargs)
            if self.calls == 1:  # AWS ran it; the answer could not be read
                raise AwsCallError("HTTPClientError")
            return created

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    async with AsyncExitStack() as stack:
        aws = CreatesThenFails(await adapter(emulator, stack))
        creator = Creator(aws, MemoryStore(3600, 60), lease_s=60, settle_s=0.1, kind=ROOMS)
        req = request("unreadable")
        out = await creator.create(req, convert.to_aws_params(req), 10)
    assert tagged(emulator, req.request_id) == [out.resource.id]
    assert aws.calls == 1  # found by the lookup, not created again
    assert emulator.state.recorded("ListRooms")


async def test_a_cancel_during_the_claim_leaves_nothing_pending(emulator: Emulator) -> None:
    class SlowClaim(MemoryStore):
        async def claim(self, request_id: str, fingerprint: str) -> Any:
            claim = await super().claim(request_id, fingerprint)
            await asyncio.sleep(0.2)  # the reply's way back
            return claim

    async with AsyncExitStack() as stack:
        aws = await adapter(emulator, stack)
        store = SlowClaim(3600, 60)
        creator = Creator(aws, store, lease_s=60, kind=ROOMS)
        req = request("cancelled")
        call = asyncio.ensure_future(creator.create(req, convert.to_aws_params(req), 10))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await creator.lifecycle.work_done()  # the claim is given back
        # Not REQUEST_IN_PROGRESS for a whole lease: the id is free again.
        retry = await creator.create(req, convert.to_aws_params(req), 2)
    assert tagged(emulator, req.request_id) == [retry.resource.id]


async def test_two_owners_converge_on_one_room(emulator: Emulator) -> None:
    # Two rooms tagged with one id (a create AWS ran after its caller gave up):
    # the next lookup keeps the earliest and deletes the other.
    async with AsyncExitStack() as stack:
        aws = await adapter(emulator, stack)
        req = request("twice")
        tags = {RESERVED_TAG: req.request_id}
        first = await aws.create("CreateRoom", {"name": "twice", "tags": tags}, 5)
        await aws.create("CreateRoom", {"name": "twice", "tags": tags}, 5)
        store = MemoryStore(3600, 60)
        claim = await store.claim(req.request_id, fingerprint(req))
        await store.release(req.request_id, claim.token, unknown=True)
        creator = Creator(aws, store, lease_s=60, settle_s=0.1, kind=ROOMS)
        out = await creator.create(req, convert.to_aws_params(req), 10)
    assert out.resource.id == first.result["id"]
    assert tagged(emulator, req.request_id) == [first.result["id"]]


def test_unknown_fields_do_not_change_the_fingerprint() -> None:
    req = pb.CreateRoomRequest(request_id=str(uuid.uuid4()), name="n", tags={"a": "1"})
    extended = pb.CreateRoomRequest.FromString(req.SerializeToString() + b"\xf8\x06\x01")
    assert fingerprint(extended) == fingerprint(req)


async def test_redis_with_decoded_responses(redis_url: str) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        store = RedisStore(client, 3600, 60)
        claim = await store.claim("id", "fp")
        assert claim.verdict is Verdict.OWNER
        assert await store.finish("id", claim.token, b"room")
        assert (await store.claim("id", "fp")).room == b"room"
    finally:
        await client.aclose()


async def test_redis_takeover_outlives_its_lease(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        store = RedisStore(client, retention_s=1.0, lease_s=0.4)
        first = await store.claim("k", "fp")
        await store.release("k", first.token, unknown=True)
        await asyncio.sleep(0.7)  # most of the retention is gone
        take = await store.claim("k", "fp")
        assert take.verdict is Verdict.OWNER
        assert await client.pttl(store.key("k")) >= 400  # at least the lease again
        assert not await store.finish("k", first.token, b"stale")  # a lost token says so
    finally:
        await client.aclose()


def test_retention_must_outlast_the_lease() -> None:
    import argparse

    with pytest.raises(config.ConfigError, match="twice --idempotency-lease"):
        config.load(argparse.Namespace(idempotency_retention_s="60"), {})
