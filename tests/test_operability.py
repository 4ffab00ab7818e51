"""The service as operators run it: real processes, SIGTERM, JSON logs."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.cli import healthcheck

from tests.support.env import point_env_at
from tests.support.processes import read_until, run_to_end, running
from tests.support.waiting import until


async def items(n: int) -> AsyncIterator[pb.BatchCreateRoomsRequest]:
    for i in range(n):
        yield pb.BatchCreateRoomsRequest(correlation_id=f"b{i}", room=pb.CreateRoomRequest())


async def test_non_loopback_bind_without_insecure_is_refused() -> None:
    code, output = await run_to_end("serve", "--emulator", "--host", "0.0.0.0", "--port", "0")  # noqa: S104 - refused before any bind
    assert code == 2
    assert "refusing to listen on 0.0.0.0 without TLS and caller authentication" in output
    assert "--insecure" in output


async def test_sigterm_drains_in_flight_work_and_exits_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu_args = ("emulator", "--port", "0", "--create-room-rate", "off")
    async with running(*emu_args) as (emu, emu_lines), aiohttp.ClientSession() as http:
        url = (await read_until(emu, emu_lines, r"listening on (http://127\.0\.0\.1:\d+)"))[1]
        resp = await http.post(f"{url}/_emulator/faults", json={"latency_ms": 800})
        assert resp.status == 200

        async def recorded() -> list[dict[str, Any]]:
            r = await http.get(f"{url}/_emulator/requests?operation=CreateRoom")
            return list(await r.json())

        point_env_at(monkeypatch, url)
        serve_args = ("serve", "--port", "0", "--grace", "20", "--create-rate", "20")
        async with running(*serve_args) as (svc, lines):
            port = (await read_until(svc, lines, r"listening on 127\.0\.0\.1:(\d+)"))[1]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pb_grpc.RoomServiceStub(channel)
                unary = [
                    asyncio.ensure_future(
                        stub.CreateRoom(pb.CreateRoomRequest(name=f"u{i}"), timeout=30)
                    )
                    for i in range(3)
                ]
                batch_responses: list[pb.BatchCreateRoomsResponse] = []

                async def consume() -> grpc.StatusCode:
                    try:
                        async for r in stub.BatchCreateRooms(items(200), timeout=30):
                            batch_responses.append(r)
                    except grpc.aio.AioRpcError as e:
                        return e.code()
                    return grpc.StatusCode.OK

                batch = asyncio.ensure_future(consume())
                await until(lambda: len(batch_responses) >= 2)
                svc.send_signal(signal.SIGTERM)

                async def not_serving() -> bool:
                    status = await healthcheck.check(channel)
                    return status == health_pb2.HealthCheckResponse.NOT_SERVING

                await until(not_serving)
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.CreateRoom(pb.CreateRoomRequest(name="late"), timeout=10)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

                unary_rooms = [r.room.id for r in await asyncio.gather(*unary)]
                assert await batch == grpc.StatusCode.UNAVAILABLE
            assert await asyncio.wait_for(svc.wait(), 30) == 0

        sent = await recorded()
        answered = set(unary_rooms) | {r.room.id for r in batch_responses if r.HasField("room")}
        # Every CreateRoom that reached AWS was answered with its room; none was lost.
        assert {r["roomId"] for r in sent} == answered
        assert len(sent) == len(answered)
        assert "late" not in {r["body"].get("name") for r in sent}
        assert len(batch_responses) < 200  # it stopped reading
        unsent = [r for r in batch_responses if r.HasField("error")]
        assert all(r.error.code == grpc.StatusCode.UNAVAILABLE.value[0] for r in unsent)
        emu.send_signal(signal.SIGTERM)


async def test_log_lines_are_json_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVSCHAT_GRPC_AUTH_TOKENS", "tok-alpha-123,tok-beta-456")
    args = ("serve", "--emulator", "--port", "0", "--log-level", "DEBUG")
    async with running(*args) as (svc, lines):
        port = (await read_until(svc, lines, r"listening on 127\.0\.0\.1:(\d+)"))[1]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.RoomServiceStub(channel)
            good = (("authorization", "Bearer tok-beta-456"),)
            bad = (("authorization", "Bearer tok-wrong-789"),)
            await stub.CreateRoom(pb.CreateRoomRequest(name="logged"), timeout=10, metadata=good)
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.CreateRoom(pb.CreateRoomRequest(), timeout=10, metadata=bad)
            call = stub.BatchCreateRooms(items(2), timeout=10, metadata=good)
            assert len([r async for r in call]) == 2
        svc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(svc.wait(), 30) == 0
        assert svc.stderr is not None
        stderr = (await svc.stderr.read()).decode()
    records = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON
    assert {"ts", "level", "logger", "msg"} <= set(records[0])
    rpcs = [r for r in records if r["msg"] == "rpc"]
    create = "/ivschat.v1.RoomService/CreateRoom"
    assert {(r["method"], r["code"]) for r in rpcs} >= {
        (create, "OK"),
        (create, "PERMISSION_DENIED"),
        ("/ivschat.v1.RoomService/BatchCreateRooms", "OK"),
    }
    ok = next(r for r in rpcs if r["method"] == create and r["code"] == "OK")
    assert ok["aws_request_id"]
    assert ok["duration_ms"] > 0
    batch_items = [r for r in records if r["msg"] == "batch item"]
    assert sorted(r["correlation_id"] for r in batch_items) == ["b0", "b1"]
    assert all(r["aws_request_id"] for r in batch_items)
    for secret in ("tok-alpha-123", "tok-beta-456", "tok-wrong-789", "Signature=", "Bearer"):
        assert secret not in stderr
