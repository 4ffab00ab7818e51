"""A load worker, run as its own process so its CPU time is its own.

    python -m bench.worker direct ENDPOINT_URL CONCURRENCY CALLS [EVENT_LOOP]
    python -m bench.worker grpc HOST:PORT CONCURRENCY CALLS [EVENT_LOOP]
    python -m bench.worker grpc-request-id HOST:PORT CONCURRENCY CALLS [EVENT_LOOP]

Makes CALLS CreateRoom calls at CONCURRENCY, after a warm-up, and prints one
JSON line: latencies (ms) and this process's CPU seconds for the measured calls.
grpc-request-id gives every call a new request_id, so the service claims and
records each one in its idempotency store.

"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
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


async def direct(url: str, concurrency: int, calls: int) -> dict[str, Any]:
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
        return await drive(
            lambda: client.create_room(name="bench", tags={"k": "v"}), concurrency, calls
        )


async def via_grpc(target: str, concurrency: int, calls: int) -> dict[str, Any]:
    import grpc
    from ivschat.v1 import room_service_pb2 as pb
    from ivschat.v1 import room_service_pb2_grpc as pb_grpc

    request = pb.CreateRoomRequest(name="bench", tags={"k": "v"})
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.RoomServiceStub(channel)
        return await drive(lambda: stub.CreateRoom(request, timeout=30), concurrency, calls)


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


MODES = {"direct": direct, "grpc": via_grpc, "grpc-request-id": via_grpc_with_request_ids}


def main() -> int:
    mode, target, concurrency, calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    event_loop = sys.argv[5] if len(sys.argv) > 5 else "asyncio"
    run = MODES[mode]
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        print(json.dumps(runner.run(run(target, concurrency, calls))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
