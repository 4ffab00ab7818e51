"""Shared fixtures: a clean AWS environment, the local endpoint, and a real server.

Every test runs with AWS_* stripped, AWS's config files pointed at empty files
and the instance metadata service disabled, so nothing can reach real AWS or
read a developer's profile.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aioboto3
import grpc
import pytest
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.app import Service, build_server
from ivschat_grpc.cli import loop_factory
from ivschat_grpc.config import Settings
from ivschat_grpc.emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    Emulator,
    EmulatorSettings,
)

# The service runs on uvloop by default, so the tests do too; set this to
# "asyncio" to run them all on the standard library's loop instead.
EVENT_LOOP = os.environ.get("IVSCHAT_TEST_EVENT_LOOP", Settings().event_loop)


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    """Every async test and fixture runs on the loop the service runs on."""
    return {EVENT_LOOP: loop_factory(EVENT_LOOP)}


def pytest_report_header() -> str:
    """Say which event loop the run uses."""
    return f"event loop: {EVENT_LOOP}"


# Rows of the fault matrix (tests/test_fault_matrix.py), printed at the end of the run:
# (fault, style, with request_id, status, rooms afterwards, seconds).
FAULT_MATRIX: list[tuple[str, str, bool, str, int, float]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault matrix, when it ran, as a Markdown table."""
    if not FAULT_MATRIX:
        return
    write = terminalreporter.write_line
    write("")
    write("fault matrix: the status / rooms at the endpoint afterwards")
    write("| fault | unary | unary + request_id | batch | batch + request_id |")
    write("|---|---|---|---|---|")
    cells: dict[tuple[str, str, bool], str] = {
        (f, s, i): f"{status} / {rooms}" for f, s, i, status, rooms, _ in FAULT_MATRIX
    }
    for fault in dict.fromkeys(row[0] for row in FAULT_MATRIX):
        row = [cells.get((fault, s, i), "-") for s in ("unary", "batch") for i in (False, True)]
        write(f"| {fault} | " + " | ".join(row) + " |")


LOGGING_ARNS = tuple(
    f"arn:aws:ivschat:us-east-1:123456789012:logging-configuration/LogCfg{i}" for i in range(3)
)


@pytest.fixture(autouse=True)
def clean_aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strip AWS_*, point AWS's config files at empty ones, and give state a test folder."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    empty_config = tmp_path / "aws-config"
    empty_credentials = tmp_path / "aws-credentials"
    empty_config.write_text("")
    empty_credentials.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty_config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty_credentials))
    # The metadata service lives off loopback; tests never talk to it.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Each test's services keep their request_id records in its own folder.
    monkeypatch.delenv("IVSCHAT_GRPC_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return


def use_emulator_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give AWS's standard chain the local endpoint's credentials, through the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DEFAULT_SECRET_ACCESS_KEY)


def point_env_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Point AWS's own variables (endpoint, region, credentials) at a local endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_IVSCHAT", url)
    monkeypatch.setenv("AWS_REGION", DEFAULT_REGION)
    use_emulator_credentials(monkeypatch)


def direct_client(url: str) -> Any:
    """An aioboto3 IVS Chat client for a local endpoint, as a direct caller would make it."""
    session = aioboto3.Session(
        aws_access_key_id=DEFAULT_ACCESS_KEY_ID,
        aws_secret_access_key=DEFAULT_SECRET_ACCESS_KEY,
        region_name=DEFAULT_REGION,
    )
    return session.client("ivschat", endpoint_url=url)


async def start_process(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """asyncio.create_subprocess_exec, with the garbage collector off while it forks.

    uvloop forks, then runs Python in the child (threading's after-fork hook)
    before it execs. If a collection runs there and finalizes a dead grpc
    object, the finalizer joins a thread that the child does not have, and
    the child spins for ever while the test waits for it. py-spy caught one
    doing just that. With collection off, the child has nothing to finalize.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return await asyncio.create_subprocess_exec(*argv, **kwargs)
    finally:
        if collecting:
            gc.enable()


class RedisServer:
    """RedisServer is a real redis-server (Debian's) on a unix socket: no TCP port, no disk.

    It is ready when it says so on stdout, which is read to the end so it never blocks.
    """

    def __init__(self, sock: Path) -> None:
        self.sock = sock
        self.url = f"unix://{sock}"
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start it and return once it accepts connections.

        A restart in a busy test process once saw redis-server end before it
        printed anything; its exit code was not kept. Such a start is tried
        again (twice at most), and a third failure names the codes.
        """
        codes = []
        for _ in range(3):
            if await self._start_once():
                return
            assert self._proc is not None
            codes.append(await self._proc.wait())
        raise AssertionError(f"redis-server exited before it was ready, with codes {codes}")

    async def _start_once(self) -> bool:
        self._proc = await start_process(
            "redis-server",
            *("--port", "0", "--unixsocket", str(self.sock), "--unixsocketperm", "700"),
            *("--save", "", "--appendonly", "no"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self._proc.stdout is not None
        while (
            b"ready to accept connections"
            not in (line := await asyncio.wait_for(self._proc.stdout.readline(), 30)).lower()
        ):
            if not line:
                return False
        self._drain = asyncio.get_running_loop().create_task(self._read_rest())
        return True

    async def _read_rest(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while await self._proc.stdout.readline():
            pass

    async def kill(self) -> None:
        """SIGKILL it, as a crash would."""
        assert self._proc is not None
        self._proc.kill()
        await self._proc.wait()
        if self._drain is not None:
            await self._drain
        self.sock.unlink(missing_ok=True)  # a killed server leaves its socket file

    async def stop(self) -> None:
        """Stop it if it runs."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        if self._drain is not None:
            await self._drain


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A running RedisServer, stopped after the test."""
    server = RedisServer(tmp_path / "redis.sock")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> str:
    """The URL of a running RedisServer."""
    return redis_server.url


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """A local endpoint with its quota off and three logging configurations."""
    settings = EmulatorSettings(
        create_room_rate=None, logging_configurations=frozenset(LOGGING_ARNS)
    )
    async with Emulator(settings) as emu:
        yield emu


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


@pytest.fixture
async def facade(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Facade]:
    """A real server on port 0, with credentials from the standard chain (env)."""
    use_emulator_credentials(monkeypatch)
    settings = facade_settings(emulator, grace_s=1.0, create_rate=None)
    async with serving(settings) as (service, channel):
        yield Facade(service, pb_grpc.RoomServiceStub(channel), channel, emulator)
