"""A load worker, run as its own process so its CPU time is its own.

    python -m bench.worker direct ENDPOINT_URL CONCURRENCY CALLS [EVENT_LOOP]
    python -m bench.worker direct-chat-token ENDPOINT_URL CONCURRENCY CALLS [EVENT_LOOP]
    python -m bench.worker grpc HOST:PORT CONCURRENCY CALLS [EVENT_LOOP]
    python -m bench.worker grpc-chat-token HOST:PORT CONCURRENCY CALLS [EVENT_LOOP]
    python -m bench.worker grpc-request-id HOST:PORT CONCURRENCY CALLS [EVENT_LOOP]
    python -m bench.worker grpc-chat-token-shed HOST:PORT CONCURRENCY CALLS [EVENT_LOOP]

Makes CALLS CreateRoom calls at CONCURRENCY, after a warm-up, and prints one
JSON line: latencies (ms) and this process's CPU seconds for the measured calls.
The chat-token modes make CreateChatToken calls instead, all to one room that
the worker creates first through the same target.
grpc-request-id gives every call a new request_id, so the service claims and
records each one in its idempotency store. grpc-chat-token-shed expects every
call to be shed (RESOURCE_EXHAUSTED), after the one slot the server has.

"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from ivschat_grpc.cli.command import loop_factory

WARM_UP_CALLS = 100


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(call: Callable[[], Awaitable[Any]], concurrency: int, calls: int) -> dict[str, Any]:
    for _ in range(WARM_UP_CALLS):
        await call()
    latencies: list[float] = []
    left = calls

    async def loop() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    cpu0, wall0 = cpu_s(), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return {
        "latencies_ms": latencies,
        "cpu_s": cpu_s() - cpu0,
        "wall_s": time.perf_counter() - wall0,
    }


# The one user every chat-token call is for: a benchmark's, not anyone's.
USER_ID = "bench-user"


@asynccontextmanager
async def aws_client(url: str) -> AsyncIterator[Any]:
    """The direct client: the one bench/floor.py makes its calls with."""
    import aioboto3
    from aiobotocore.config import AioConfig
    from ivschat_grpc.emulator import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY

    session = aioboto3.Session(
        aws_access_key_id=DEFAULT_ACCESS_KEY_ID,
        aws_secret_access_key=DEFAULT_SECRET_ACCESS_KEY,
        region_name="us-east-1",
    )
    config = AioConfig(retries={"total_max_attempts": 1}, max_pool_connections=64)
    async with session.client("ivschat", endpoint_url=url, config=config) as client:
        yield client


async def direct(url: str, concurrency: int, calls: int) -> dict[str, Any]:
    async with aws_client(url) as client:
        return await drive(
            lambda: client.create_room(name="bench", tags={"k": "v"}), concurrency, calls
        )


async def direct_chat_token(url: str, concurrency: int, calls: int) -> dict[str, Any]:
    async with aws_client(url) as client:
        arn = (await client.create_room(name="bench"))["arn"]
        return await drive(
            lambda: client.create_chat_token(roomIdentifier=arn, userId=USER_ID),
            concurrency,
            calls,
        )


async def via_grpc(target: str, concurrency: int, calls: int) -> dict[str, Any]:
    import grpc
    from ivschat.v1 import room_service_pb2 as pb
    from ivschat.v1 import room_service_pb2_grpc as pb_grpc

    request = pb.CreateRoomRequest(name="bench", tags={"k": "v"})
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.RoomServiceStub(channel)
        return await drive(lambda: stub.CreateRoom(request, timeout=30), concurrency, calls)


async def chat_token_call(channel: Any) -> Callable[[], Awaitable[Any]]:
    """One CreateChatToken call, again and again, to a room made first through channel."""
    from ivschat.v1 import chat_service_pb2 as chat_pb
    from ivschat.v1 import chat_service_pb2_grpc as chat_grpc
    from ivschat.v1 import room_service_pb2 as pb
    from ivschat.v1 import room_service_pb2_grpc as pb_grpc

    room = await pb_grpc.RoomServiceStub(channel).CreateRoom(
        pb.CreateRoomRequest(name="bench"), timeout=30
    )
    request = chat_pb.CreateChatTokenRequest(room_arn=room.room.arn, user_id=USER_ID)
    stub = chat_grpc.ChatServiceStub(channel)
    return lambda: stub.CreateChatToken(request, timeout=30)


async def via_grpc_chat_token(target: str, concurrency: int, calls: int) -> dict[str, Any]:
    import grpc

    async with grpc.aio.insecure_channel(target) as channel:
        return await drive(await chat_token_call(channel), concurrency, calls)


async def via_grpc_chat_token_shed(target: str, concurrency: int, calls: int) -> dict[str, Any]:
    """CreateChatToken calls that the server sheds: each must end RESOURCE_EXHAUSTED."""
    import grpc

    async with grpc.aio.insecure_channel(target) as channel:
        token = await chat_token_call(channel)

        async def shed() -> None:
            try:
                await token()
            except grpc.aio.AioRpcError as e:
                if e.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                return
            raise AssertionError("a call that should have been shed was served")

        with contextlib.suppress(grpc.aio.AioRpcError):
            await token()  # the one slot there is, if any
        return await drive(shed, concurrency, calls)


async def via_grpc_with_request_ids(target: str, concurrency: int, calls: int) -> dict[str, Any]:
    import grpc
    from ivschat.v1 import room_service_pb2 as pb
    from ivschat.v1 import room_service_pb2_grpc as pb_grpc

    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.RoomServiceStub(channel)

        def call() -> Awaitable[Any]:
            request = pb.CreateRoomRequest(
                name="bench", tags={"k": "v"}, request_id=str(uuid.uuid4())
            )
            return stub.CreateRoom(request, timeout=30)

        return await drive(call, concurrency, calls)


MODES = {
    "direct": direct,
    "direct-chat-token": direct_chat_token,
    "grpc": via_grpc,
    "grpc-chat-token": via_grpc_chat_token,
    "grpc-chat-token-shed": via_grpc_chat_token_shed,
    "grpc-request-id": via_grpc_with_request_ids,
}


def main() -> int:
    mode, target, concurrency, calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    event_loop = sys.argv[5] if len(sys.argv) > 5 else "asyncio"
    run = MODES[mode]
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        print(json.dumps(runner.run(run(target, concurrency, calls))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
