"""Benchmark: one BatchCreateRooms stream of N items, quota and pacing off.

Runs the local endpoint and the service as separate processes on loopback,
streams N items from this process, and reports throughput and the service's
peak RSS (VmHWM). A fresh service process per N makes the peaks comparable:
if memory is flat, 100k items peak where 10k do.

    .venv/bin/python -m bench.batch            # 10,000 and 100,000 items
    .venv/bin/python -m bench.batch 2000 5000  # other sizes
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc

from bench.procs import UNPACED_SERVE, endpoint, memory_mb, process, service_env

RESULTS = Path(__file__).parent / "results"


async def stream(port: int, n: int) -> tuple[float, int]:
    """Stream n items; return the seconds taken and the rooms created."""

    async def items() -> AsyncIterator[pb.BatchCreateRoomsRequest]:
        for i in range(n):
            yield pb.BatchCreateRoomsRequest(
                correlation_id=f"i{i}", room=pb.CreateRoomRequest(name=f"bench-{i}")
            )

    created = 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.RoomServiceStub(channel)
        start = time.perf_counter()
        async for response in stub.BatchCreateRooms(items()):
            created += response.HasField("room")
        return time.perf_counter() - start, created


async def run(sizes: list[int]) -> dict[str, Any]:
    rows = []
    async with endpoint() as url:
        env = service_env(url)
        for n in sizes:
            serve = UNPACED_SERVE
            async with process(r"listening on [\d.]+:(\d+)", *serve, env=env) as (svc, port):
                idle = memory_mb(svc.pid, "VmHWM")
                seconds, created = await stream(int(port), n)
                rows.append(
                    {
                        "items": n,
                        "created": created,
                        "seconds": round(seconds, 2),
                        "items_per_s": round(n / seconds, 1),
                        "service_peak_rss_mb_at_start": round(idle, 1),
                        "service_peak_rss_mb": round(memory_mb(svc.pid, "VmHWM"), 1),
                    }
                )
    return {
        "benchmark": "BatchCreateRooms, quota and pacing off",
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "rows": rows,
    }


def main() -> int:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    report = asyncio.run(run(sizes))
    print(f"{report['benchmark']} ({report['machine']})")
    print(f"{'items':>8} {'created':>8} {'seconds':>8} {'items/s':>8} {'peak RSS MB':>12}")
    for r in report["rows"]:
        print(
            f"{r['items']:>8} {r['created']:>8} {r['seconds']:>8} {r['items_per_s']:>8} "
            f"{r['service_peak_rss_mb']:>12}"
        )
    rows = report["rows"]
    if len(rows) >= 2:
        growth = rows[-1]["service_peak_rss_mb"] - rows[0]["service_peak_rss_mb"]
        report["peak_rss_growth_mb"] = round(growth, 1)
        print(
            f"peak RSS growth from {rows[0]['items']} to {rows[-1]['items']} items: "
            f"{growth:+.1f} MB (target: at most +30 MB) -> "
            f"{'met' if growth <= 30 else 'NOT met'}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "batch.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS / 'batch.json'}")
    return 0 if all(r["created"] == r["items"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
