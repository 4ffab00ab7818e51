"""The ivschat-grpc command as a user runs it: real processes, real signals."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.cli import healthcheck
from ivschat_grpc.core.operations import OPERATIONS
from ivschat_grpc.emulator import DEFAULT_SECRET_ACCESS_KEY

from tests.support.env import direct_client, point_env_at
from tests.support.processes import (
    START_TIMEOUT_S,
    read_until,
    run_to_end,
    running,
    start_process,
    stop,
)


async def test_serve_without_region_says_what_to_set() -> None:
    code, output = await run_to_end("serve", "--port", "0")
    assert code == 2
    assert "AWS_REGION" in output
    assert "--emulator" in output


async def test_serve_without_credentials_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    code, output = await run_to_end("serve", "--port", "0")
    assert code == 2
    assert "no AWS credentials" in output
    assert "AWS_ACCESS_KEY_ID" in output


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"AWS_PROFILE": "chat-admin"}, "AWS_PROFILE: no profile 'chat-admin'"),
        ({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"}, "lack"),
    ],
    ids=["profile-nobody-has", "half-a-key-pair"],
)
async def test_serve_with_an_aws_chain_it_cannot_read_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    # README's real-AWS command with a profile nobody made: a traceback, exit 1, before.
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    code, output = await run_to_end("serve", "--port", "0")
    assert code == 2, output
    assert named in output
    assert "Traceback" not in output
    said = [line for line in output.splitlines() if line.startswith("ivschat-grpc:")]
    assert len(said) == 1, output


async def test_serve_emulator_creates_a_room_and_stops_on_sigterm() -> None:
    async with running("serve", "--emulator", "--port", "0") as (proc, lines):
        m = await read_until(proc, lines, r"listening on 127\.0\.0\.1:(\d+)")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{m[1]}") as channel:
            status = await healthcheck.check(channel)
            assert status == health_pb2.HealthCheckResponse.SERVING
            reply = await pb_grpc.RoomServiceStub(channel).CreateRoom(
                pb.CreateRoomRequest(name="quickstart"), timeout=10
            )
            assert reply.room.name == "quickstart"
            assert reply.room.arn.startswith("arn:aws:ivschat:us-east-1:")
        assert await stop(proc) == 0
    assert not any("secret" in line.lower() for line in lines)


async def test_standalone_emulator_with_env_chain_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running("emulator", "--port", "0", "--create-room-rate", "off") as (emu, lines):
        url = (await read_until(emu, lines, r"listening on (http://127\.0\.0\.1:\d+)"))[1]
        async with direct_client(url) as client:
            assert (await client.create_room(name="direct"))["name"] == "direct"

        # The service reads AWS's own variables: endpoint, region, credentials.
        point_env_at(monkeypatch, url)
        monkeypatch.setenv("AWS_SESSION_TOKEN", "FAKE-SESSION-TOKEN-123")
        monkeypatch.setenv("IVSCHAT_GRPC_PORT", "1")  # the flag below must win
        async with running("serve", "--port", "0", "--log-level", "DEBUG") as (svc, svc_lines):
            port = (await read_until(svc, svc_lines, r"listening on 127\.0\.0\.1:(\d+)"))[1]
            assert url in svc_lines[-1]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = await pb_grpc.RoomServiceStub(channel).CreateRoom(
                    pb.CreateRoomRequest(name="via-facade"), timeout=10
                )
            assert reply.room.name == "via-facade"
            assert await stop(svc) == 0
            stderr = (await svc.stderr.read()).decode() if svc.stderr else ""
            logged = stderr + "\n".join(svc_lines)
            assert "DEBUG" in logged  # the level took effect ...
            for secret in (DEFAULT_SECRET_ACCESS_KEY, "FAKE-SESSION-TOKEN-123", "Signature="):
                assert secret not in logged  # ... and no credential was logged
        assert await stop(emu) == 0


async def test_readme_python_example_runs_against_the_quick_start() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.S)
    assert example is not None
    async with running("serve", "--emulator", "--port", "0") as (proc, lines):
        port = (await read_until(proc, lines, r"listening on 127\.0\.0\.1:(\d+)"))[1]
        # The README shows the default port; the test must use the one it got.
        code = example[1].replace("127.0.0.1:50051", f"127.0.0.1:{port}")
        client = await start_process(
            sys.executable,
            "-c",
            code,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(client.communicate(), START_TIMEOUT_S)
        assert client.returncode == 0, err.decode()
        assert 'name: "match-42"' in out.decode()
        assert re.search(r"^[0-9a-f-]{36}$", out.decode(), re.M)  # the AWS request id
        assert await stop(proc) == 0


async def test_emulator_flags_set_faults_and_logging_configurations_at_start() -> None:
    arn = "arn:aws:ivschat:us-east-1:123456789012:logging-configuration/FromFlag"
    fault = '{"error": "ConflictException", "name": "doomed", "times": 1}'
    args = ("emulator", "--port", "0", "--logging-configuration", arn, "--fault", fault)
    async with running(*args) as (emu, lines):
        url = (await read_until(emu, lines, r"listening on (http://127\.0\.0\.1:\d+)"))[1]
        async with direct_client(url) as client:
            with pytest.raises(client.exceptions.ConflictException):
                await client.create_room(name="doomed")
            room = await client.create_room(name="doomed", loggingConfigurationIdentifiers=[arn])
            assert room["loggingConfigurationIdentifiers"] == [arn]
        assert await stop(emu) == 0


async def test_emulator_flags_set_the_logging_configuration_quota_and_delay() -> None:
    args = ("--logging-configuration-quota", "1", "--logging-configuration-delay", "600")
    async with running("emulator", "--port", "0", *args) as (emu, lines):
        url = (await read_until(emu, lines, r"listening on (http://127\.0\.0\.1:\d+)"))[1]
        async with direct_client(url) as client:
            logs = {"cloudWatchLogs": {"logGroupName": "logs"}}
            made = await client.create_logging_configuration(destinationConfiguration=logs)
            assert made["state"] == "CREATING"
            with pytest.raises(client.exceptions.ServiceQuotaExceededException) as caught:
                await client.create_logging_configuration(destinationConfiguration=logs)
            assert caught.value.response["limit"] == 1
        assert await stop(emu) == 0


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--logging-configuration-quota", "ten"), "--logging-configuration-quota ten"),
        (("--logging-configuration-quota", "-1"), "--logging-configuration-quota -1"),
        (("--logging-configuration-quota", "1.5"), "--logging-configuration-quota 1.5"),
        (("--logging-configuration-delay", "soon"), "--logging-configuration-delay soon"),
        (("--logging-configuration-delay", "-1"), "--logging-configuration-delay -1"),
        (("--logging-configuration-delay", "nan"), "--logging-configuration-delay nan"),
        (("--logging-configuration-delay", "3601"), "--logging-configuration-delay 3601"),
        (("--logging-configuration", "Logs1"), "--logging-configuration Logs1"),
    ],
)
async def test_emulator_refuses_a_bad_logging_configuration_flag_in_one_line(
    flags: tuple[str, ...], named: str
) -> None:
    code, output = await run_to_end("emulator", "--port", "0", *flags)
    assert code == 2
    [line] = output.strip().splitlines()
    assert line.startswith(f"ivschat-grpc: {named}: ")


async def test_emulator_refuses_a_bad_fault_flag() -> None:
    code, output = await run_to_end("emulator", "--fault", '{"error": "NoSuchError"}')
    assert code == 2
    assert "unknown error 'NoSuchError'" in output


async def test_emulator_quota_flags_set_each_operation_and_keep_the_old_alias() -> None:
    args = ("emulator", "--port", "0", "--quota", "GetRoom=off", "--quota", "SendEvent=2.5")
    async with running(*args, "--create-room-rate", "3") as (emu, lines):
        url = (await read_until(emu, lines, r"listening on (http://127\.0\.0\.1:\d+)"))[1]
        async with aiohttp.ClientSession() as http:
            resp = await http.get(f"{url}/_emulator/operations")
            quotas = {row["operation"]: row["quota"] for row in await resp.json()}
        assert await stop(emu) == 0
    # The ones not named keep AWS's quota.
    assert quotas == {
        **{op: OPERATIONS[op].rate for op in quotas},
        "CreateRoom": 3,
        "GetRoom": None,
        "SendEvent": 2.5,
    }


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--quota", "GetRoom=fast"), "--quota GetRoom=fast"),
        (("--quota", "GetRoom=0"), "--quota GetRoom=0"),
        (("--quota", "GetRoom=-1"), "--quota GetRoom=-1"),
        (("--quota", "GetRoom=nan"), "--quota GetRoom=nan"),
        (("--quota", "GetRoom"), "--quota GetRoom"),
        (("--quota", "TagRoom=1"), "--quota TagRoom=1"),
        (("--quota", "GetRoom=1", "--quota", "GetRoom=2"), "--quota GetRoom=2"),
        (("--create-room-rate", "0"), "--create-room-rate 0"),
        (("--create-room-rate", "2", "--quota", "CreateRoom=1"), "--quota CreateRoom=1"),
    ],
)
async def test_emulator_refuses_a_bad_quota_in_one_line(flags: tuple[str, ...], named: str) -> None:
    code, output = await run_to_end("emulator", "--port", "0", *flags)
    assert code == 2
    [line] = output.strip().splitlines()
    assert line.startswith(f"ivschat-grpc: {named}: ")


@pytest.mark.parametrize(
    "argv", [("get-room", "--id", "x"), ("send-event", "arn", "goal", "--name", "n")]
)
async def test_a_flag_the_command_does_not_take_shows_that_commands_usage(
    argv: tuple[str, ...],
) -> None:
    # argparse showed the top-level usage, which lists no command's flags.
    code, output = await run_to_end(*argv)
    assert code == 2
    assert f"usage: ivschat-grpc {argv[0]} " in output
    assert f"ivschat-grpc {argv[0]}: error: unrecognized arguments:" in output
