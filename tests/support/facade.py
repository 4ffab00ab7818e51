"""A real facade in the test's process: its settings, a server on port 0, and a stub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import grpc
import pytest
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.app import Service, build_server
from ivschat_grpc.config import Settings
from ivschat_grpc.emulator import DEFAULT_REGION, Emulator

from tests.support.env import use_emulator_credentials

LOGGING_ARNS = tuple(
    f"arn:aws:ivschat:us-east-1:123456789012:logging-configuration/LogCfg{i}" for i in range(3)
)


@dataclass
class Facade:
    """Facade is a running server, a client stub for it, and the endpoint behind it."""

    service: Service
    stub: pb_grpc.RoomServiceAsyncStub
    channel: grpc.aio.Channel
    emulator: Emulator


def facade_settings(emu: Emulator, **overrides: object) -> Settings:
    """Settings for a facade on a free loopback port, pointed at emu."""
    # A short settle keeps ambiguity tests quick; the default (2 s) suits AWS.
    base = Settings(
        region=DEFAULT_REGION,
        endpoint_url=emu.url,
        host="127.0.0.1",
        port=0,
        idempotency_settle_s=0.3,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]  # overrides are Settings fields


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Service, grpc.aio.Channel]]:
    """A real server built from settings, and a channel to it; both closed after."""
    async with AsyncExitStack() as stack:
        service = await build_server(settings, stack)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
        stack.push_async_callback(channel.close)
        yield service, channel


@asynccontextmanager
async def server(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> AsyncIterator[Service]:
    use_emulator_credentials(monkeypatch)
    overrides.setdefault("create_rate", None)
    async with serving(facade_settings(emulator, grace_s=1.0, **overrides)) as (service, _):
        yield service
