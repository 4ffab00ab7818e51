"""A real facade in the test's process: its settings, a server on port 0, and a stub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import grpc
import pytest
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.emulator import DEFAULT_REGION, Emulator
from ivschat_grpc.runtime import settings as config
from ivschat_grpc.runtime.assembly import Service, build_server
from ivschat_grpc.runtime.settings import Settings

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


def with_overrides(base: Settings, overrides: Mapping[str, object]) -> Settings:
    """base with flat overrides, each named by its option's field (grace_s, redis_url).

    A setting with no flag is named by its group and its name: aws_max_attempts.
    """
    flags = {o.field for o in config.OPTIONS}
    for key, value in overrides.items():
        if key not in flags:
            group, _, name = key.partition("_")
            base = replace(base, **{group: replace(getattr(base, group), **{name: value})})
    return config.replace_options(base, {k: v for k, v in overrides.items() if k in flags})


def facade_settings(emu: Emulator, **overrides: object) -> Settings:
    """Settings for a facade on a free loopback port, pointed at emu."""
    # A short settle keeps ambiguity tests quick; the default (2 s) suits AWS.
    base = with_overrides(
        Settings(),
        {
            "region": DEFAULT_REGION,
            "endpoint_url": emu.url,
            "host": "127.0.0.1",
            "port": 0,
            "idempotency_settle_s": 0.3,
        },
    )
    return with_overrides(base, overrides)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Service, grpc.aio.Channel]]:
    """A real server built from settings, and a channel to it; both closed after."""
    async with AsyncExitStack() as stack:
        service = await build_server(settings, stack)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
        stack.push_async_callback(channel.close)
        yield service, channel


# make_facade's type: called with Settings overrides, it gives a running Facade.
MakeFacade = Callable[..., AbstractAsyncContextManager[Facade]]


@asynccontextmanager
async def facade_with(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> AsyncIterator[Facade]:
    """A real server on port 0 whose Settings take overrides, and a stub for it.

    Credentials come from the standard chain (the environment); the grace is
    1 s and pacing is off unless overridden.
    """
    use_emulator_credentials(monkeypatch)
    overrides = {"grace_s": 1.0, "create_rate": None, **overrides}
    async with serving(facade_settings(emulator, **overrides)) as (service, channel):
        yield Facade(service, pb_grpc.RoomServiceStub(channel), channel, emulator)


@asynccontextmanager
async def server(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, **overrides: Any
) -> AsyncIterator[Service]:
    """facade_with's server alone, for tests that make their own channels (TLS, say)."""
    async with facade_with(emulator, monkeypatch, **overrides) as made:
        yield made.service
