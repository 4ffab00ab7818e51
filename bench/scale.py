"""Three replicas, one account: the aggregate CreateRoom rate against AWS's quota.

    .venv/bin/python -m bench.scale          # about 60 s; CI runs it

One redis-server (Debian's, on a unix socket), the local endpoint enforcing
5 CreateRoom calls a second, and three `ivschat-grpc serve` processes that
share pacing through Redis. Each replica gets one batch stream of 100 items.
Prints the wall time, the share of the quota used, and the throttles the
endpoint answered; exits 1 unless every item made a room, nothing was
throttled, and the replicas together used at least 95 % of the quota.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc

from bench.procs import clean_env, process, service_env, verdict

QUOTA = 5
REPLICAS = 3
ITEMS = 100
TARGET = 0.95
_DRAINING: set[asyncio.Task[bytes]] = set()  # held, so the loop cannot drop them


async def redis_server(sock: Path) -> asyncio.subprocess.Process:
    """redis-server on sock, once it says it accepts connections; its log goes to a file."""
    proc = await asyncio.create_subprocess_exec(
        *("redis-server", "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"),
        *("--save", "", "--appendonly", "no"),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    while (
        b"ready to accept connections"
        not in (line := await asyncio.wait_for(proc.stdout.readline(), 30)).lower()
    ):
        if not line:
            raise RuntimeError("redis-server exited before it was ready")
    _DRAINING.add(asyncio.get_running_loop().create_task(proc.stdout.read()))  # keep it drained
    return proc


async def stream(port: str, prefix: str) -> int:
    requests = [
        pb.BatchCreateRoomsRequest(correlation_id=f"{prefix}{i}", room=pb.CreateRoomRequest())
        for i in range(ITEMS)
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.RoomServiceStub(channel)
        return sum(
            [r.HasField("room") async for r in stub.BatchCreateRooms(iter(requests), timeout=600)]
        )


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        redis = await redis_server(Path(tmp) / "redis.sock")
        try:
            emulator = ("emulator", "--port", "0", "--create-room-rate", str(QUOTA))
            async with process(r"listening on (http://\S+)", *emulator, env=clean_env()) as (
                _,
                url,
            ):
                serve = ("serve", "--port", "0", "--log-level", "WARNING")
                shared = ("--create-rate", str(QUOTA), "--redis-url", f"unix://{tmp}/redis.sock")
                listening = r"listening on [\d.]+:(\d+)"
                env = service_env(url)
                async with (
                    process(listening, *serve, *shared, env=env) as (_, a),
                    process(listening, *serve, *shared, env=env) as (_, b),
                    process(listening, *serve, *shared, env=env) as (_, c),
                ):
                    start = time.perf_counter()
                    created = await asyncio.gather(*(stream(p, p) for p in (a, b, c)))
                    seconds = time.perf_counter() - start
                async with aiohttp.ClientSession() as http:
                    reply = await http.get(f"{url}/_emulator/requests?operation=CreateRoom")
                    record = await reply.json()
        finally:
            redis.terminate()
            await redis.wait()
    rooms = REPLICAS * ITEMS
    quota_used = (rooms - 1) / QUOTA / seconds
    throttled = sum(1 for r in record if r["status"] == 429)
    return {
        "replicas": REPLICAS,
        "rooms": rooms,
        "created": sum(created),
        "seconds": round(seconds, 2),
        "ideal_s": (rooms - 1) / QUOTA,
        "quota_used": round(quota_used, 4),
        "throttles": throttled,
        "ok": sum(created) == rooms and throttled == 0 and quota_used >= TARGET,
    }


def main() -> int:
    return verdict("scale", asyncio.run(run()), width=12)


if __name__ == "__main__":
    sys.exit(main())
