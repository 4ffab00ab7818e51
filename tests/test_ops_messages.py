"""What operators and people read: text logs, health, metrics and the CLI's connection errors.

Each test runs the real command in a process, as a person would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
import trustme
from ivschat.v1 import chat_service_pb2 as chat_pb
from ivschat.v1 import chat_service_pb2_grpc as chat_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.runtime.telemetry import JsonFormatter, TextFormatter

from tests.support.processes import (
    START_TIMEOUT_S,
    RedisServer,
    read_until,
    run_command,
    running,
    start_process,
)
from tests.support.waiting import until

LISTENING = r"listening on 127\.0\.0\.1:(\d+)"
ROOM_ARN = "arn:aws:ivschat:us-east-1:123456789012:room/abcdEFGH1234"


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


@asynccontextmanager
async def serving(*args: str) -> AsyncIterator[tuple[str, list[str]]]:
    """`ivschat-grpc serve --emulator ARGS` as a process: its address, and its stdout so far."""
    async with running("serve", "--emulator", "--port", "0", "--log-level", "WARNING", *args) as (
        svc,
        lines,
    ):
        port = (await read_until(svc, lines, LISTENING))[1]
        yield f"127.0.0.1:{port}", lines


def closed_port() -> str:
    """An address where nothing listens."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{closed.getsockname()[1]}"


async def healthcheck(*args: str) -> tuple[int, str, str]:
    """`python -m ivschat_grpc.healthcheck ARGS` run to its end: exit code, stdout, stderr."""
    proc = await start_process(
        sys.executable,
        "-m",
        "ivschat_grpc.healthcheck",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def scrape(metrics_url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(metrics_url) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_without_redis_there_is_no_redis_up_series_and_with_it_there_is(
    redis_url: str,
) -> None:
    metrics_at = r"metrics at (http://\S+)"
    args = ("serve", "--emulator", "--port", "0", "--metrics-port", "0")
    async with running(*args) as (svc, lines):
        alone = await scrape((await read_until(svc, lines, metrics_at))[1])
    assert "ivschat_grpc_rpcs_in_flight" in alone  # the scrape itself is whole
    assert "ivschat_grpc_redis_up" not in alone  # nothing to be down: no "Redis down" alert
    async with running(*args, "--redis-url", redis_url) as (svc, lines):
        shared = await scrape((await read_until(svc, lines, metrics_at))[1])
    assert "ivschat_grpc_redis_up 1.0" in shared


async def test_healthcheck_names_each_outcome_with_its_own_exit_code(
    redis_server: RedisServer,
) -> None:
    code, out, err = await healthcheck(closed_port())
    assert (code, out) == (4, "UNREACHABLE\n")
    assert "Connection refused" in err
    async with serving() as (address, _):
        assert (await healthcheck(address))[:2] == (0, "SERVING\n")
        code, out, err = await healthcheck(address, "ivschat-grpc.redis")  # no --redis-url
        assert (code, out) == (3, "UNKNOWN_SERVICE\n")
        assert "knows no service 'ivschat-grpc.redis'" in err
        code, out, _ = await healthcheck(address, "ivschat.v1.NoSuchService")
        assert (code, out) == (3, "UNKNOWN_SERVICE\n")
    async with serving("--redis-url", redis_server.url) as (address, _):
        assert (await healthcheck(address, "ivschat-grpc.redis"))[:2] == (0, "SERVING\n")
        await redis_server.kill()

        async def not_serving() -> bool:
            return (await healthcheck(address, "ivschat-grpc.redis"))[:2] == (1, "NOT_SERVING\n")

        await until(not_serving)
        assert (await healthcheck(address))[:2] == (0, "SERVING\n")  # degraded, not down
    assert (await healthcheck("127.0.0.1:50051", "a", "extra"))[0] == 2  # usage


@dataclass(frozen=True)
class Pki:
    """Pki is a test CA's files: its certificate, a server's for localhost, a client's."""

    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca, leaf, client = trustme.CA(), None, None
    leaf = ca.issue_cert("localhost")
    client = ca.issue_cert("cli.internal")
    files = Pki(*(tmp_path / n for n in ("ca", "other", "cert", "key", "ccert", "ckey")))
    ca.cert_pem.write_to_path(str(files.ca))
    trustme.CA().cert_pem.write_to_path(str(files.other_ca))
    files.server_cert.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(files.server_key))
    files.client_cert.write_bytes(b"".join(p.bytes() for p in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(files.client_key))
    return files


def one_line(err: str) -> str:
    """err, which must be a single line and none of gRPC core's."""
    assert "ssl_transport_security" not in err
    assert len(err.splitlines()) == 1, err
    return err


async def test_a_tls_mismatch_exits_9_with_one_line_that_names_the_flag_to_fix(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    named = ("--tls-server-name", "localhost")
    batch = tmp_path / "rooms.jsonl"
    batch.write_text(json.dumps({"correlation_id": "c1", "name": "one"}) + "\n")
    async with serving(*tls) as (secure, _), serving() as (plain, _):
        code, _, err = await run_command("get-room", ROOM_ARN, "--server", secure)
        assert code == 9
        assert "the server speaks TLS: pass --tls-ca FILE" in one_line(err)
        code, _, err = await run_command(
            "create-chat-token", ROOM_ARN, "--user-id", "u1", "--server", secure
        )
        assert code == 9
        assert "the server speaks TLS" in one_line(err)
        code, _, err = await run_command("batch-create", str(batch), "--server", secure)
        assert code == 9
        assert "the server speaks TLS" in one_line(err)
        # A TLS client whose CA did not sign the server's certificate: gRPC core
        # logs the failed handshake itself, which the user never sees.
        code, _, err = await run_command(
            "get-room", ROOM_ARN, "--server", secure, "--tls-ca", str(pki.other_ca), *named
        )
        assert code == 9
        assert "the server's certificate is not signed by --tls-ca" in one_line(err)
        code, _, err = await run_command(
            "get-room", ROOM_ARN, "--server", secure, "--tls-ca", str(pki.ca)
        )
        assert code == 9
        assert "does not name 127.0.0.1: pass --tls-server-name" in one_line(err)
        code, _, err = await run_command(
            "get-room",
            ROOM_ARN,
            "--server",
            secure,
            "--tls-ca",
            str(pki.ca),
            "--tls-server-name",
            "elsewhere.example",
        )
        assert code == 9
        assert "does not name elsewhere.example" in one_line(err)
        code, _, err = await run_command(
            "get-room", ROOM_ARN, "--server", plain, "--tls-ca", str(pki.ca), *named
        )
        assert code == 9
        assert "the server speaks plaintext, not TLS" in one_line(err)
        # With TLS that fits, the call reaches the service.
        code, _, err = await run_command(
            "get-room", ROOM_ARN, "--server", secure, "--tls-ca", str(pki.ca), *named
        )
        assert code == 6
        assert "NOT_FOUND" in err
        # gRPC core's own lines are there when asked for.
        monkeypatch.setenv("GRPC_VERBOSITY", "INFO")
        code, _, err = await run_command(
            "get-room", ROOM_ARN, "--server", plain, "--tls-ca", str(pki.ca), *named
        )
        assert code == 9
        assert "ssl_transport_security" in err
        # A plaintext probe at the TLS port cannot get through; it says why.
        code, out, err = await healthcheck(secure)
        assert (code, out) == (4, "UNREACHABLE\n")
        assert "the port speaks TLS: probe the server's plaintext --health-port" in err
    code, _, err = await run_command("get-room", ROOM_ARN, "--server", closed_port())
    assert code == 5  # nothing listens: a retry may help
    assert "UNAVAILABLE" in err


async def test_an_mtls_server_without_a_client_certificate_exits_9_with_its_hint(
    pki: Pki,
) -> None:
    tls = ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    ca, named = ("--tls-ca", str(pki.ca)), ("--tls-server-name", "localhost")
    async with serving(*tls, "--tls-client-ca", str(pki.ca)) as (mtls, _):
        code, _, err = await run_command("get-room", ROOM_ARN, "--server", mtls, *ca, *named)
        assert code == 9
        assert "asks for a client certificate (mTLS): pass --tls-cert and --tls-key" in one_line(
            err
        )
        code, _, err = await run_command("get-room", ROOM_ARN, "--server", mtls)
        assert code == 9
        assert "speaks TLS and asks for a client certificate" in one_line(err)
        client = ("--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key))
        code, _, err = await run_command(
            "get-room", ROOM_ARN, "--server", mtls, *ca, *named, *client
        )
        assert code == 6, err


def test_a_text_line_stays_one_line_and_keeps_only_the_known_fields() -> None:
    record = logging.LogRecord("ivschat_grpc.rpc", logging.WARNING, __file__, 1, "a\nb", (), None)
    record.__dict__ |= {"code": "OK", "peer": 'ipv4:1.2.3.4 "x"\nforged', "token": "sekret"}
    line = TextFormatter().format(record)
    assert "\n" not in line
    assert line.endswith(
        r' WARNING ivschat_grpc.rpc: a\nb code=OK peer="ipv4:1.2.3.4 \"x\"\nforged"'
    )
    assert "sekret" not in line  # not a known field: JSON drops it too
    assert "sekret" not in JsonFormatter().format(record)
