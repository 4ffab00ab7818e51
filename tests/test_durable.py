"""Exactly-once that survives a crash: the SQLite store, heartbeats, and resumable batches.

The service runs as its own process and dies by SIGKILL, as an OOM kill or a
lost node would end it; the endpoint lives in the test, so it outlives the
service and goes on creating the room the dead service asked for.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf.message import Message
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as lc_pb_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.core.creator import RESERVED_TAG
from ivschat_grpc.core.idempotency import MemoryStore, Verdict
from ivschat_grpc.core.sqlite_store import DATABASE, SqliteStore, StateDirError
from ivschat_grpc.emulator import Emulator, FaultRule

from tests.support.env import use_emulator_credentials
from tests.support.facade import facade_settings, serving
from tests.support.processes import RedisServer, run_command, service, spawn, start_process
from tests.support.richstatus import error_info
from tests.support.waiting import until


@dataclass(frozen=True)
class Kind:
    """Kind is what a create makes: a room, or a logging configuration, each made exactly once."""

    create: str
    delete: str
    # The resources of this kind at the endpoint, by id.
    existing: Callable[[Emulator], Mapping[str, Any]]
    # One create's request, and the call that sends it.
    request: Callable[[str], Message]
    send: Callable[[grpc.aio.Channel, Message, float], Awaitable[Any]]


async def _create_room(channel: grpc.aio.Channel, request: Any, deadline_s: float) -> Any:
    return (await pb_grpc.RoomServiceStub(channel).CreateRoom(request, timeout=deadline_s)).room


async def _create_logging(channel: grpc.aio.Channel, request: Any, deadline_s: float) -> Any:
    stub = lc_pb_grpc.LoggingConfigurationServiceStub(channel)
    return await stub.CreateLoggingConfiguration(request, timeout=deadline_s)


KINDS = {
    "room": Kind(
        "CreateRoom",
        "DeleteRoom",
        lambda emu: emu.state.rooms,
        lambda request_id: pb.CreateRoomRequest(name="crash", request_id=request_id),
        _create_room,
    ),
    "logging-configuration": Kind(
        "CreateLoggingConfiguration",
        "DeleteLoggingConfiguration",
        lambda emu: {c["id"]: c for c in emu.state.logging_configurations.values()},
        lambda request_id: lc_pb.CreateLoggingConfigurationRequest(
            logging_configuration=lc_pb.LoggingConfiguration(
                name="crash", s3=lc_pb.S3Destination(bucket_name="crash")
            ),
            request_id=request_id,
        ),
        _create_logging,
    ),
}


def tagged(emu: Emulator, request_id: str, kind: Kind = KINDS["room"]) -> list[str]:
    """The rooms (or resources of kind) at the endpoint that carry request_id's tag."""
    found = kind.existing(emu).values()
    return [r["id"] for r in found if r["tags"].get(RESERVED_TAG) == request_id]


async def killed_mid_create(
    emu: Emulator, kind: Kind, *serve_args: str, latency_ms: float = 3000
) -> tuple[str, Any]:
    """Kill the service while AWS creates one of kind; restart; retry: what it gets back."""
    request_id = str(uuid.uuid4())
    request = kind.request(request_id)
    emu.state.faults.add(FaultRule(operation=kind.create, latency_ms=latency_ms, times=1))
    async with service(*serve_args) as (proc, address):
        channel = grpc.aio.insecure_channel(address)
        call = asyncio.ensure_future(kind.send(channel, request, 30))
        await until(lambda: len(emu.state.recorded(kind.create)) == 1)
        proc.send_signal(signal.SIGKILL)
        with pytest.raises(grpc.aio.AioRpcError):
            await call
        await channel.close()
    if latency_ms <= 3000:
        # AWS goes on and makes what the dead service asked for.
        await until(lambda: len(kind.existing(emu)) == 1)
    async with service(*serve_args) as (_, address):
        channel = grpc.aio.insecure_channel(address)
        # Within 15 s of the restart, or the deadline fails the test.
        reply = await kind.send(channel, request, 15)
        await channel.close()
        if latency_ms > 3000:
            # The dead owner's create lands after the retry's lookup made one;
            # the second look deletes it, and keeps the caller's.
            await until(lambda: len(kind.existing(emu)) == 2)
            await until(lambda: len(kind.existing(emu)) == 1)
    return request_id, reply


@pytest.mark.parametrize("kind", list(KINDS))
async def test_sqlite_a_request_id_survives_a_sigkill_mid_create(
    endpoint: Emulator, tmp_path: Path, kind: str
) -> None:
    made = KINDS[kind]
    request_id, reply = await killed_mid_create(endpoint, made, "--state-dir", str(tmp_path / "st"))
    assert tagged(endpoint, request_id, made) == [reply.id]
    assert len(endpoint.state.recorded(made.create)) == 1  # looked up, never sent again


@pytest.mark.parametrize("kind", list(KINDS))
async def test_redis_a_request_id_survives_a_sigkill_mid_create(
    endpoint: Emulator, redis_server: RedisServer, kind: str
) -> None:
    # The dead owner's claim lapses after its heartbeat stops, not after its budget.
    made = KINDS[kind]
    request_id, reply = await killed_mid_create(endpoint, made, "--redis-url", redis_server.url)
    assert tagged(endpoint, request_id, made) == [reply.id]
    assert len(endpoint.state.recorded(made.create)) == 1


@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_create_landing_after_the_takeover_is_deleted_later(
    endpoint: Emulator, tmp_path: Path, kind: str
) -> None:
    made = KINDS[kind]
    state = ("--state-dir", str(tmp_path / "st"), "--idempotency-recheck", "8")
    request_id, reply = await killed_mid_create(endpoint, made, *state, latency_ms=6000)
    assert tagged(endpoint, request_id, made) == [reply.id]  # the one the caller was given
    assert len(endpoint.state.recorded(made.delete)) == 1


def results(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        with suppress(ValueError):
            out.append(json.loads(line))
    return out


async def test_batch_create_killed_with_the_service_resumes_exactly_once(
    endpoint: Emulator, tmp_path: Path
) -> None:
    lines = [json.dumps({"correlation_id": f"c{i}", "name": f"room-{i}"}) for i in range(50)]
    requests = tmp_path / "rooms.jsonl"
    requests.write_text("\n".join(lines) + "\n")
    output = tmp_path / "results.jsonl"
    state = ("--state-dir", str(tmp_path / "st"))
    # Paced at 10/s with slow creates, so the kill lands with items at AWS.
    endpoint.state.faults.add(FaultRule(latency_ms=400))
    serve_args = (*state, "--create-rate", "10")
    async with service(*serve_args) as (svc, address):
        cli = await spawn(
            "batch-create", str(requests), "--server", address, "--output", str(output)
        )
        try:
            await until(lambda: output.exists() and len(results(output)) >= 15, 60)
            svc.send_signal(signal.SIGKILL)
            cli.send_signal(signal.SIGKILL)
        finally:
            if cli.returncode is None:
                cli.kill()
            await cli.communicate()
    first_run = len(endpoint.state.recorded("CreateRoom"))
    assert 0 < first_run < 50
    endpoint.state.faults.clear()
    async with service(*serve_args) as (_, address):
        code, _, err = await run_command(
            "batch-create", str(requests), "--server", address, "--output", str(output)
        )
    assert code == 0, err
    names = sorted(r["name"] for r in endpoint.state.rooms.values())
    assert names == sorted(f"room-{i}" for i in range(50))  # exactly 50, one per line
    created = {r["correlation_id"] for r in results(output) if "room" in r}
    assert created == {f"c{i}" for i in range(50)}


async def test_batch_create_without_request_ids_sends_none(
    endpoint: Emulator, tmp_path: Path
) -> None:
    requests = tmp_path / "rooms.jsonl"
    requests.write_text(json.dumps({"name": "plain"}) + "\n")
    async with service("--state-dir", str(tmp_path / "st")) as (_, address):
        code, _, err = await run_command(
            "batch-create", str(requests), "--server", address, "--no-request-ids"
        )
    assert code == 0, err
    (room,) = endpoint.state.rooms.values()
    assert RESERVED_TAG not in room["tags"]


async def test_create_room_with_the_printed_request_id_returns_the_same_room(
    endpoint: Emulator, tmp_path: Path
) -> None:
    async with service("--state-dir", str(tmp_path / "st")) as (_, address):
        code, out, err = await run_command("create-room", "--name", "byhand", "--server", address)
        assert code == 0, err
        request_id = err.split()[1]
        code, again, err = await run_command(
            "create-room", "--name", "byhand", "--server", address, "--request-id", request_id
        )
        assert code == 0, err
    assert json.loads(again)["id"] == json.loads(out)["id"]
    assert "request_id" not in err  # given, so not printed
    code, _, err = await run_command(
        "create-room", "--server", address, "--request-id", request_id, "--no-request-id"
    )
    assert code == 2
    assert "not allowed with argument" in err
    assert len(endpoint.state.rooms) == 1


# A writer that claims and finishes request_ids in a loop, printing each one
# once its finish has committed, until it is killed.
WRITER = """
import asyncio, sys, uuid
from pathlib import Path
from ivschat_grpc.core.sqlite_store import SqliteStore

async def main() -> None:
    store = SqliteStore.open(Path(sys.argv[1]), 3600, 5)
    while True:
        request_id = str(uuid.uuid4())
        claim = await store.claim(request_id, "fp")
        await store.finish(request_id, claim.token, b"room-" + request_id.encode())
        pending = str(uuid.uuid4())
        await store.claim(pending, "fp")
        print(request_id, pending, flush=True)

asyncio.run(main())
"""


async def test_the_sqlite_file_survives_a_sigkill_during_writes(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    writer = await start_process(
        sys.executable, "-c", WRITER, str(folder), stdout=asyncio.subprocess.PIPE
    )
    assert writer.stdout is not None
    committed: list[tuple[str, str]] = []
    try:
        while len(committed) < 300:
            line = await asyncio.wait_for(writer.stdout.readline(), 30)
            assert line, "the writer died on its own"
            done, pending = line.decode().split()
            committed.append((done, pending))
    finally:
        writer.kill()  # mid-write: it never stops between transactions
        await writer.wait()
    check = sqlite3.connect(folder / DATABASE)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    store = SqliteStore.open(folder, 3600, 5)
    try:
        for done, pending in committed:
            assert (await store.claim(done, "fp")).room == b"room-" + done.encode()
            # The dead writer's pending claims are taken over at once, to be looked up.
            takeover = await store.claim(pending, "fp")
            assert takeover.verdict is Verdict.OWNER
            assert takeover.resolve_first
    finally:
        store.close()


async def test_an_output_without_its_namespace_is_not_resumed_with_new_ids(
    tmp_path: Path,
) -> None:
    requests = tmp_path / "rooms.jsonl"
    requests.write_text(json.dumps({"correlation_id": "a", "name": "a"}) + "\n")
    output = tmp_path / "results.jsonl"
    output.write_text(
        '{"request_id_namespace": "not-a-uuid"}\n{"correlation_id": "b", "error": {}}\n'
    )
    code, _, err = await run_command(
        "batch-create", str(requests), "--server", "127.0.0.1:1", "--output", str(output)
    )
    assert code == 2
    assert "no readable request_id_namespace line" in err
    assert "--no-request-ids" in err


async def test_a_second_process_on_one_state_dir_is_refused(
    endpoint: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "st"
    async with service("--state-dir", str(folder)):
        code, _, err = await run_command("serve", "--port", "0", "--state-dir", str(folder))
    assert code == 2
    assert f"--state-dir {folder}: another ivschat-grpc process uses this folder" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("kind", ["under-a-file", "corrupt-database"])
async def test_an_unusable_state_dir_stops_the_service_with_its_path(
    endpoint: Emulator, tmp_path: Path, kind: str
) -> None:
    if kind == "under-a-file":
        (tmp_path / "file").write_text("not a folder")
        folder = tmp_path / "file" / "st"
    else:
        folder = tmp_path / "st"
        folder.mkdir()
        (folder / DATABASE).write_bytes(b"this is not an SQLite database, " * 100)
    code, _, err = await run_command("serve", "--port", "0", "--state-dir", str(folder))
    assert code == 2
    assert str(folder) in err
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if line.startswith("ivschat-grpc: ")]
    assert len(said) == 1
    assert said[0] == err.strip().splitlines()[-1]


@contextmanager
def small_disk(path: Path) -> Iterator[Path]:
    """A real 1 MiB disk (tmpfs) at path, unmounted after; mounting it needs root, as CI is."""
    path.mkdir()
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("no mount command")
    args = [mount, "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)]
    if subprocess.run(args, capture_output=True, check=False).returncode != 0:  # noqa: S603 - fixed arguments
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run([umount, "-l", str(path)], check=False)  # noqa: S603 - fixed arguments


def fill(folder: Path) -> Path:
    """Write a file into folder until its disk is full."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as f, suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return filler


async def test_a_full_disk_answers_state_unavailable_and_sends_nothing(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        use_emulator_credentials(monkeypatch)
        settings = facade_settings(emulator, idempotency_store="sqlite", state_dir=disk / "st")
        async with serving(settings) as (_, channel):
            stub = pb_grpc.RoomServiceStub(channel)
            filler = fill(disk)
            request = pb.CreateRoomRequest(name="full", request_id=str(uuid.uuid4()))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.CreateRoom(request, timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_info(info.value).reason == "STATE_UNAVAILABLE"
            assert emulator.state.recorded("CreateRoom") == []
            # Room on the disk again: the same call goes through, without a restart.
            filler.unlink()
            reply = await stub.CreateRoom(request, timeout=10)
            assert reply.room.tags[RESERVED_TAG] == request.request_id
            assert len(emulator.state.recorded("CreateRoom")) == 1


async def test_a_slow_owner_keeps_its_claim_past_the_claim_timeout(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_emulator_credentials(monkeypatch)
    # The owner's create takes 2 s, more than three claim timeouts: only its
    # heartbeat keeps the duplicate from taking over.
    settings = facade_settings(emulator, create_rate=None, idempotency_claim_timeout_s=0.6)
    emulator.state.faults.add(FaultRule(latency_ms=2000, times=1))
    request = pb.CreateRoomRequest(name="slow", request_id=str(uuid.uuid4()))
    async with serving(settings) as (_, channel):
        stub = pb_grpc.RoomServiceStub(channel)
        first = asyncio.ensure_future(stub.CreateRoom(request, timeout=20))
        await until(lambda: len(emulator.state.recorded("CreateRoom")) == 1)
        second = await stub.CreateRoom(request, timeout=20)
        assert (await first).room.id == second.room.id
    assert len(emulator.state.recorded("CreateRoom")) == 1
    assert emulator.state.recorded("ListRooms") == []  # nobody took over to look it up


@asynccontextmanager
async def store_of(
    kind: str, folder: Path, retention_s: float, lease_s: float
) -> AsyncIterator[Any]:
    if kind == "memory":
        yield MemoryStore(retention_s, lease_s)
        return
    store = SqliteStore.open(folder, retention_s, lease_s)
    try:
        yield store
    finally:
        store.close()


STORES = pytest.mark.parametrize("kind", ["memory", "sqlite"])


@STORES
async def test_a_lapsed_claim_is_taken_over_and_a_renewed_one_is_not(
    kind: str, tmp_path: Path
) -> None:
    async with store_of(kind, tmp_path / "st", 60, 0.2) as store:
        owner = await store.claim("id", "fp")
        assert owner.verdict is Verdict.OWNER
        for _ in range(3):  # renewed past the lease: still the owner's
            await store.wait("id", 0.1)
            assert await store.renew("id", owner.token)
            assert (await store.claim("id", "fp")).verdict is Verdict.WAIT
        await store.wait("id", 5)  # returns when the lease lapses
        takeover = await store.claim("id", "fp")
        assert takeover.verdict is Verdict.OWNER
        assert takeover.resolve_first
        assert not await store.renew("id", owner.token)  # the old owner lost it
        assert not await store.finish("id", owner.token, b"stale")
        assert await store.finish("id", takeover.token, b"room")
        assert (await store.claim("id", "fp")).room == b"room"
        assert (await store.claim("id", "other")).verdict is Verdict.MISMATCH


@STORES
async def test_records_are_released_and_expire(kind: str, tmp_path: Path) -> None:
    async with store_of(kind, tmp_path / "st", 0.3, 0.1) as store:
        gone = await store.claim("gone", "fp")
        await store.release("gone", gone.token, unknown=False)
        assert not (await store.claim("gone", "fp")).resolve_first  # forgotten: created nothing
        maybe = await store.claim("maybe", "fp")
        await store.release("maybe", maybe.token, unknown=True)
        assert (await store.claim("maybe", "fp")).resolve_first  # the room may exist
        done = await store.claim("done", "fp")
        await store.finish("done", done.token, b"room")
        assert await store.peek("done") == b"room"
        await asyncio.sleep(0.4)  # past the retention window: the behaviour under test
        fresh = await store.claim("done", "another body")
        assert fresh.verdict is Verdict.OWNER
        assert not fresh.resolve_first


async def test_sqlite_records_outlive_the_process_and_pending_ones_are_taken_over(
    tmp_path: Path,
) -> None:
    async with store_of("sqlite", tmp_path / "st", 3600, 30) as store:
        done = await store.claim("done", "fp")
        await store.finish("done", done.token, b"room")
        await store.claim("pending", "fp")  # its owner "dies" with the store
    async with store_of("sqlite", tmp_path / "st", 3600, 30) as store:
        assert (await store.claim("done", "fp")).room == b"room"
        # Not after the 30 s lease: at once, since this process holds the folder.
        takeover = await store.claim("pending", "fp")
        assert takeover.verdict is Verdict.OWNER
        assert takeover.resolve_first


async def test_a_full_disk_at_start_keeps_the_database_and_says_why(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        async with store_of("sqlite", disk / "st", 3600, 30) as store:
            await store.claim("pending", "fp")  # taken over, so written, at the next open
        filler = fill(disk)
        with pytest.raises(StateDirError) as info:
            SqliteStore.open(disk / "st", 3600, 30)
        assert "cannot use" in str(info.value)
        assert "move it aside" not in str(info.value)  # which would forget every request_id
        filler.unlink()
        async with store_of("sqlite", disk / "st", 3600, 30) as store:
            assert (await store.claim("pending", "fp")).resolve_first


async def test_redis_that_cannot_write_answers_state_unavailable(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    use_emulator_credentials(monkeypatch)
    settings = facade_settings(emulator, create_rate=None, redis_url=redis_server.url)
    async with serving(settings) as (_, channel):
        client = aioredis.from_url(redis_server.url)
        await client.config_set("maxmemory", "1")  # every write now fails: out of memory
        try:
            request = pb.CreateRoomRequest(name="oom", request_id=str(uuid.uuid4()))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pb_grpc.RoomServiceStub(channel).CreateRoom(request, timeout=10)
        finally:
            await client.config_set("maxmemory", "0")
            await client.aclose()
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(info.value).reason == "STATE_UNAVAILABLE"
    assert emulator.state.recorded("CreateRoom") == []


async def test_a_late_duplicate_is_deleted_on_the_next_use_after_the_owner_died(
    endpoint: Emulator, tmp_path: Path
) -> None:
    # AWS makes the room but answers 500: the owner finds it, records it, and
    # owes a second look, then dies before making it.
    endpoint.state.faults.add(FaultRule(error="InternalServerException", create=True, times=1))
    state = ("--state-dir", str(tmp_path / "st"), "--idempotency-recheck", "3")
    settle = ("--idempotency-settle", "0.1")
    request_id = str(uuid.uuid4())
    request = pb.CreateRoomRequest(name="late", request_id=request_id)
    async with service(*state, *settle) as (proc, address):
        async with grpc.aio.insecure_channel(address) as channel:
            first = await pb_grpc.RoomServiceStub(channel).CreateRoom(request, timeout=15)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    # The very late create of an attempt the dead owner never saw answered.
    late = endpoint.state.create_room({"name": "late", "tags": {RESERVED_TAG: request_id}})
    assert sorted(tagged(endpoint, request_id)) == sorted([first.room.id, late["id"]])
    async with service(*state, *settle) as (_, address):
        async with grpc.aio.insecure_channel(address) as channel:
            again = await pb_grpc.RoomServiceStub(channel).CreateRoom(request, timeout=15)
        assert again.room.id == first.room.id  # the room the caller was given is kept
        await until(lambda: tagged(endpoint, request_id) == [first.room.id])
    assert len(endpoint.state.recorded("CreateRoom")) == 1
