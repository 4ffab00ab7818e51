"""What operators and people read: text logs, health, metrics and the CLI's connection errors.

Each test runs the real command in a process, as a person would.
"""

from __future__ import annotations

import asyncio
import re
import signal

import grpc
import pytest
from ivschat.v1 import chat_service_pb2 as chat_pb
from ivschat.v1 import chat_service_pb2_grpc as chat_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc

from tests.support.processes import read_until, running

LISTENING = r"listening on 127\.0\.0\.1:(\d+)"


async def test_text_log_lines_carry_the_json_fields_on_one_line_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IVSCHAT_GRPC_AUTH_TOKENS", "tok-alpha-123")
    args = ("serve", "--emulator", "--port", "0", "--log-format", "text", "--log-level", "DEBUG")
    token = (("authorization", "Bearer tok-alpha-123"),)
    async with running(*args) as (svc, lines):
        port = (await read_until(svc, lines, LISTENING))[1]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            rooms = pb_grpc.RoomServiceStub(channel)
            created = await rooms.CreateRoom(
                pb.CreateRoomRequest(name="texted"), timeout=10, metadata=token
            )
            await chat_grpc.ChatServiceStub(channel).CreateChatToken(
                chat_pb.CreateChatTokenRequest(
                    room_arn=created.room.arn,
                    user_id="user-secret-42",
                    attributes={"nick": "attr-secret-43"},
                ),
                timeout=10,
                metadata=token,
            )
        svc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(svc.wait(), 30) == 0
        assert svc.stderr is not None
        stderr = (await svc.stderr.read()).decode()
    rpcs = [line for line in stderr.splitlines() if "ivschat_grpc.rpc: rpc " in line]
    fields = [dict(re.findall(r" (\w+)=(\S+)", line)) for line in rpcs]
    by_method = {f.get("method"): f for f in fields}
    assert set(by_method) >= {
        "/ivschat.v1.RoomService/CreateRoom",
        "/ivschat.v1.ChatService/CreateChatToken",
    }, stderr
    create = by_method["/ivschat.v1.RoomService/CreateRoom"]
    assert create["code"] == "OK"
    assert float(create["duration_ms"]) > 0
    assert re.fullmatch(r"[0-9a-f-]{36}", create["aws_request_id"])
    token_rpc = by_method["/ivschat.v1.ChatService/CreateChatToken"]
    assert token_rpc["code"] == "OK"
    assert token_rpc["aws_request_id"]
    # The JSON line's leading fields, readable: time, level, logger.
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"
    assert re.match(stamp + r" INFO ivschat_grpc\.rpc: rpc ", rpcs[0])
    for secret in ("tok-alpha-123", "Bearer", "user-secret-42", "attr-secret-43", "Signature="):
        assert secret not in stderr
