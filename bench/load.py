"""Load that stops by itself: unary callers and batch streams against the real service.

    .venv/bin/python -m bench.load              # 60 s, 200 unary callers, 20 batch streams
    .venv/bin/python -m bench.load --seconds 10

The local endpoint (quota off) and the service (pacing off) run as separate
processes. The only errors allowed are the documented load-shedding statuses
(RESOURCE_EXHAUSTED from the RPC and stream limits), judged by what the server
itself answered (its metrics). Every batch item must be answered, and the
service's memory at the end must be within a small margin of its memory after
warm-up. Exits 1 if any of that fails. CI runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc

from bench.procs import (
    UNPACED_SERVE,
    endpoint,
    memory_mb,
    metric_by,
    process,
    service_env,
    verdict,
)

SHED = frozenset({"RESOURCE_EXHAUSTED"})
# grpc/grpc#36066: an aio client can report a server's early end of a stream
# (here: a stream shed at its start) as INTERNAL with this text.
KNOWN_CLIENT_BUG = "INTERNAL: Internal error from Core"
MEMORY_MARGIN_MB = 30.0
ITEMS_PER_STREAM = 50


@dataclass
class Tally:
    """Tally counts what the load saw from the client side."""

    unary: Counter[str] = field(default_factory=Counter)
    streams: Counter[str] = field(default_factory=Counter)
    details: Counter[str] = field(default_factory=Counter)
    items_sent: int = 0
    items_answered: int = 0
    unanswered: int = 0


async def unary_caller(stub: Any, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        request = pb.CreateRoomRequest(name="load", tags={"kind": "unary"})
        if tally.unary.total() % 3 == 0:
            request.request_id = str(uuid.uuid4())
        try:
            await stub.CreateRoom(request, timeout=30)
            tally.unary["OK"] += 1
        except grpc.aio.AioRpcError as e:
            tally.unary[e.code().name] += 1
            tally.details[f"{e.code().name}: {e.details()}"] += 1


async def batch_streamer(stub: Any, n: int, until: float, tally: Tally) -> None:
    round_ = 0
    while time.monotonic() < until:
        round_ += 1
        ids = [f"s{n}-r{round_}-{i}" for i in range(ITEMS_PER_STREAM)]

        async def items(ids: list[str] = ids) -> AsyncIterator[pb.BatchCreateRoomsRequest]:
            for cid in ids:
                yield pb.BatchCreateRoomsRequest(
                    correlation_id=cid, room=pb.CreateRoomRequest(name="load")
                )

        answered: set[str] = set()
        try:
            async for response in stub.BatchCreateRooms(items(), timeout=120):
                answered.add(response.correlation_id)
        except grpc.aio.AioRpcError as e:
            # A shed stream is refused before it reads anything; back off as RetryInfo asks.
            tally.streams[e.code().name] += 1
            tally.details[f"{e.code().name}: {e.details()}"] += 1
            await asyncio.sleep(0.2)
            continue
        tally.streams["OK"] += 1
        tally.items_sent += len(ids)
        tally.items_answered += len(answered)
        tally.unanswered += len(set(ids) - answered)


def answered_by_server(scrape: str) -> Counter[str]:
    """RPCs the server finished, by code, from its Prometheus metrics."""
    return metric_by(scrape, "ivschat_grpc_rpcs_total", "code")


async def run(seconds: float, callers: int, streams: int) -> dict[str, Any]:
    serve = (*UNPACED_SERVE, "--metrics-port", "0")
    lines: list[str] = []
    async with (
        endpoint() as url,
        process(r"metrics at (http://\S+)", *serve, env=service_env(url), lines=lines) as (
            svc,
            metrics_url,
        ),
    ):
        port = re.findall(r"listening on [\d.]+:(\d+)", "".join(lines))[0]
        tally = Tally()
        start = time.monotonic()
        until = start + seconds
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.RoomServiceStub(channel)
            work = [asyncio.ensure_future(unary_caller(stub, until, tally)) for _ in range(callers)]
            work += [
                asyncio.ensure_future(batch_streamer(stub, i, until, tally)) for i in range(streams)
            ]
            await asyncio.sleep(min(10.0, seconds / 4))  # warm-up: a measurement point, not a wait
            after_warm_up = memory_mb(svc.pid)
            await asyncio.gather(*work)
        at_end = memory_mb(svc.pid)
        elapsed = time.monotonic() - start
        async with aiohttp.ClientSession() as http:
            scrape = await (await http.get(metrics_url)).text()
    server = answered_by_server(scrape)
    server_errors = {k: v for k, v in server.items() if k != "OK" and k not in SHED}
    client = tally.unary + tally.streams
    client_errors = {k: v for k, v in client.items() if k != "OK" and k not in SHED}
    if not server_errors and "INTERNAL" in client_errors:
        client_errors["INTERNAL"] -= tally.details[KNOWN_CLIENT_BUG]
        client_errors = {k: v for k, v in client_errors.items() if v > 0}
    report: dict[str, Any] = {
        "seconds": round(elapsed, 1),
        "unary_callers": callers,
        "batch_streams": streams,
        "client_saw_unary": dict(tally.unary),
        "client_saw_streams": dict(tally.streams),
        "server_answered": dict(server),
        "batch_items_sent": tally.items_sent,
        "batch_items_answered": tally.items_answered,
        "unanswered_items": tally.unanswered,
        "unary_per_s": round(tally.unary["OK"] / elapsed, 1),
        "batch_items_per_s": round(tally.items_answered / elapsed, 1),
        "memory_after_warm_up_mb": round(after_warm_up, 1),
        "memory_at_end_mb": round(at_end, 1),
        "memory_ok": at_end - after_warm_up <= MEMORY_MARGIN_MB,
        "unexpected_errors": {**server_errors, **client_errors},
        "client_error_details": dict(tally.details.most_common(5)),
    }
    report["ok"] = not report["unexpected_errors"] and tally.unanswered == 0 and report["memory_ok"]
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description="Load that stops by itself.")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--callers", type=int, default=200)
    parser.add_argument("--streams", type=int, default=20)
    args = parser.parse_args()
    return verdict("load", asyncio.run(run(args.seconds, args.callers, args.streams)))


if __name__ == "__main__":
    sys.exit(main())
