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
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.emulator import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY

RESULTS = Path(__file__).parent / "results"
START_TIMEOUT_S = 60


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without AWS settings, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


@asynccontextmanager
async def process(
    pattern: str, *args: str, env: dict[str, str]
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """Run `ivschat-grpc ARGS` until its stdout matches pattern; yield the match."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ivschat_grpc",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)).decode()
            if not line:
                raise RuntimeError(f"ivschat-grpc {args[0]} exited before it was ready")
            m = re.search(pattern, line)
            if m:
                break
        yield proc, m[1]
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident set (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert m is not None
    return int(m[1]) / 1024


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
    emu_args = ("emulator", "--port", "0", "--create-room-rate", "off")
    rows = []
    async with process(r"listening on (http://\S+)", *emu_args, env=clean_env()) as (_, url):
        env = clean_env(
            AWS_ENDPOINT_URL_IVSCHAT=url,
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID=DEFAULT_ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=DEFAULT_SECRET_ACCESS_KEY,
        )
        for n in sizes:
            serve = ("serve", "--port", "0", "--create-rate", "off", "--log-level", "WARNING")
            async with process(r"listening on [\d.]+:(\d+)", *serve, env=env) as (svc, port):
                idle = peak_rss_mb(svc.pid)
                seconds, created = await stream(int(port), n)
                rows.append(
                    {
                        "items": n,
                        "created": created,
                        "seconds": round(seconds, 2),
                        "items_per_s": round(n / seconds, 1),
                        "service_peak_rss_mb_at_start": round(idle, 1),
                        "service_peak_rss_mb": round(peak_rss_mb(svc.pid), 1),
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
