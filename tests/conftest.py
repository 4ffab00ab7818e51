"""Fixtures and hooks only: a clean AWS environment, the local endpoint, and a real server.

The helpers they use, and that tests import, live in tests/support/.

Every test runs with AWS_* stripped, AWS's config files pointed at empty files
and the instance metadata service disabled, so nothing can reach real AWS or
read a developer's profile.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from ivschat_grpc.cli.command import loop_factory
from ivschat_grpc.emulator import Emulator, EmulatorSettings
from ivschat_grpc.runtime.settings import Settings

from tests.support.endpoint import UNCHECKED, unthrottled_settings
from tests.support.env import clean_environment, direct_client, point_env_at
from tests.support.facade import LOGGING_ARNS, Facade, MakeFacade, facade_with
from tests.support.faultmatrix import FAULT_MATRIX
from tests.support.processes import RedisServer

# The service runs on uvloop by default, so the tests do too; set this to
# "asyncio" to run them all on the standard library's loop instead.
EVENT_LOOP = os.environ.get("IVSCHAT_TEST_EVENT_LOOP", Settings().event_loop)


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    """Every async test and fixture runs on the loop the service runs on."""
    return {EVENT_LOOP: loop_factory(EVENT_LOOP)}


def pytest_report_header() -> str:
    """Say which event loop the run uses."""
    return f"event loop: {EVENT_LOOP}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault matrix, when it ran, as a Markdown table."""
    if not FAULT_MATRIX:
        return
    write = terminalreporter.write_line
    write("")
    write("fault matrix: the status / rooms (or logging configurations) made afterwards")
    styles = ("unary", "batch", "logging")
    write("| fault | " + " | ".join(f"{s} | {s} + request_id" for s in styles) + " |")
    write("|---|" + "---|---|" * len(styles))
    cells: dict[tuple[str, str, bool], str] = {
        (f, s, i): f"{status} / {rooms}" for f, s, i, status, rooms, _ in FAULT_MATRIX
    }
    for fault in dict.fromkeys(row[0] for row in FAULT_MATRIX):
        row = [cells.get((fault, s, i), "-") for s in styles for i in (False, True)]
        write(f"| {fault} | " + " | ".join(row) + " |")


@pytest.fixture(autouse=True)
def clean_aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strip AWS_*, point AWS's config files at empty ones, and give state a test folder."""
    clean_environment(tmp_path, monkeypatch)
    return


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
async def endpoint(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Emulator]:
    """An endpoint with no quota that the service's processes reach through AWS's variables."""
    async with Emulator(EmulatorSettings(create_room_rate=None)) as emu:
        point_env_at(monkeypatch, emu.url)
        yield emu


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """A local endpoint with its quota off and three logging configurations."""
    settings = EmulatorSettings(
        create_room_rate=None, logging_configurations=frozenset(LOGGING_ARNS)
    )
    async with Emulator(settings) as emu:
        yield emu


@pytest.fixture
async def unthrottled() -> AsyncIterator[Emulator]:
    """A local endpoint with no quota on any operation and one logging configuration."""
    async with Emulator(unthrottled_settings()) as emu:
        yield emu


@pytest.fixture
async def unchecked(unthrottled: Emulator) -> AsyncIterator[Any]:
    """An aioboto3 client for unthrottled that tries once and checks nothing itself."""
    async with direct_client(unthrottled.url, UNCHECKED) as client:
        yield client


@pytest.fixture
def make_facade(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> MakeFacade:
    """make_facade(**overrides): facade_with on this test's endpoint and environment."""
    return partial(facade_with, emulator, monkeypatch)


@pytest.fixture
async def facade(make_facade: MakeFacade) -> AsyncIterator[Facade]:
    """A real server on port 0 with the defaults make_facade gives."""
    async with make_facade() as made:
        yield made
