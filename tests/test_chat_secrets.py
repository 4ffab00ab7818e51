"""No chat token, user_id or attribute value in anything the service emits.

The service runs as a real process at --log-level DEBUG, driven by the real
commands; its logs, its /metrics page and the failing commands' messages are
then searched for every secret. Traces are searched in process, through an
in-memory exporter on the same interceptor --tracing uses.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import AsyncExitStack

import aiohttp
import grpc
import pytest
from ivschat.v1 import chat_service_pb2 as pb
from ivschat.v1 import chat_service_pb2_grpc as pb_grpc
from ivschat.v1 import room_service_pb2 as room_pb
from ivschat.v1 import room_service_pb2_grpc as room_pb_grpc
from ivschat_grpc.emulator import Emulator
from ivschat_grpc.runtime.assembly import build_server
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.env import use_emulator_credentials
from tests.support.facade import facade_settings
from tests.support.processes import LISTENING, read_until, run_command, spawn, stop

USER = "secret-user-7f3a9c"
VALUE = "secret-value-b41e02"
KEY = "secret-key-c9d8e7"


async def test_logs_metrics_and_errors_hold_no_secret() -> None:
    proc = await spawn(
        "serve", "--emulator", "--port", "0", "--metrics-port", "0", "--log-level", "DEBUG"
    )
    lines: list[str] = []
    assert proc.stderr is not None
    logged = asyncio.ensure_future(proc.stderr.read())  # read on, so DEBUG never fills the pipe
    try:
        port = (await read_until(proc, lines, LISTENING))[1]
        metrics = (await read_until(proc, lines, r"metrics at (http://\S+)"))[1]
        server = ("--server", f"127.0.0.1:{port}")
        code, out, err = await run_command("create-room", "--name", "secrets", *server)
        assert code == 0, err
        arn = json.loads(out)["arn"]
        code, out, err = await run_command(
            "create-chat-token",
            arn,
            "--user-id",
            USER,
            "--attribute",
            f"{KEY}={VALUE}",
            "--capability",
            "SEND_MESSAGE",
            *server,
        )
        assert code == 0, err
        token = json.loads(out)["token"]
        assert token
        secrets = [token, USER, VALUE, KEY]
        runs = [
            await run_command(
                "send-event",
                arn,
                "goal",
                "--attribute",
                f"{KEY}={VALUE}",
                "--request-id",
                str(uuid.uuid4()),
                *server,
            ),
            await run_command("disconnect-user", arn, "--user-id", USER, *server),
            # Failing calls: a user_id one past the limit, attributes over 1 KB.
            await run_command("create-chat-token", arn, "--user-id", USER * 20, *server),
            await run_command(
                "send-event", arn, "goal", "--attribute", f"{KEY}={VALUE * 60}", *server
            ),
            await run_command(
                "create-chat-token",
                "AbCdEfGhIjKl",
                "--user-id",
                USER,
                "--attribute",
                f"{KEY}={VALUE}",
                *server,
            ),
        ]
        assert [r[0] for r in runs] == [0, 0, 3, 3, 3]
        async with aiohttp.ClientSession() as http, http.get(f"{metrics}") as page:
            scraped = await page.text()
    finally:
        if proc.returncode is None:
            await stop(proc)
        stderr = (await logged).decode()
    assert '"method": "/ivschat.v1.ChatService/CreateChatToken"' in stderr  # it did log
    assert "ChatService" in scraped
    emitted = {
        "log": stderr,
        "stdout": "\n".join(lines),
        "metrics": scraped,
        "errors": "\n".join(out + err for _, out, err in runs[2:]),
        "outputs": "\n".join(err for _, _, err in runs[:2]),
    }
    for where, text in emitted.items():
        for secret in secrets:
            assert secret not in text, f"a secret in the {where}"


async def test_traces_hold_no_secret(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    use_emulator_credentials(monkeypatch)
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    async with AsyncExitStack() as stack:
        service = await build_server(
            facade_settings(emulator, grace_s=1.0), stack, tracer_provider=provider
        )
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
        stack.push_async_callback(channel.close)
        rooms, chat = room_pb_grpc.RoomServiceStub(channel), pb_grpc.ChatServiceStub(channel)
        arn = (await rooms.CreateRoom(room_pb.CreateRoomRequest(), timeout=10)).room.arn
        token = await chat.CreateChatToken(
            pb.CreateChatTokenRequest(room_arn=arn, user_id=USER, attributes={KEY: VALUE}),
            timeout=10,
        )
        await chat.SendEvent(
            pb.SendEventRequest(room_arn=arn, event_name="e", attributes={KEY: VALUE}), timeout=10
        )
        await chat.DisconnectUser(pb.DisconnectUserRequest(room_arn=arn, user_id=USER), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await chat.CreateChatToken(
                pb.CreateChatTokenRequest(
                    room_arn=arn, user_id=USER * 20, attributes={KEY: VALUE * 60}
                ),
                timeout=10,
            )
        failure = f"{caught.value.details()} {caught.value.trailing_metadata()}"
    finished = spans.get_finished_spans()
    assert any("CreateChatToken" in s.name for s in finished)
    traced = "\n".join(s.to_json() for s in finished)
    for secret in (token.token, USER, VALUE, KEY):
        assert secret not in traced
        assert secret not in failure
