"""The chat commands end to end, as a person runs them: real processes, a real server."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest
from ivschat.v1 import room_service_pb2 as room_pb
from ivschat_grpc.emulator import FaultRule

from tests.support.facade import Facade
from tests.support.processes import START_TIMEOUT_S, run_command, start_process

MISSING = "arn:aws:ivschat:us-east-1:123456789012:room/AbCdEfGhIjKl"


def at(facade: Facade) -> tuple[str, str]:
    return ("--server", f"127.0.0.1:{facade.service.port}")


async def room_of(facade: Facade) -> str:
    made = await facade.stub.CreateRoom(room_pb.CreateRoomRequest(name="cli"), timeout=10)
    return made.room.arn


async def run_with_stdin(stdin: bytes, *args: str) -> tuple[int, str, str]:
    """The ivschat-grpc command with stdin fed stdin, run to its end."""
    proc = await start_process(
        sys.executable,
        "-m",
        "ivschat_grpc",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), START_TIMEOUT_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def tokens_made(facade: Facade) -> list[dict[str, object]]:
    return [r.body for r in facade.emulator.state.recorded("CreateChatToken")]


# --- what each command does ------------------------------------------------------


async def test_create_chat_token_prints_the_token_for_a_user_id_from_a_file(
    facade: Facade, tmp_path: Path
) -> None:
    arn = await room_of(facade)
    user = tmp_path / "user"
    user.write_text("user-from-file\n")
    code, out, err = await run_command(
        "create-chat-token", arn, "--user-id-file", str(user), "--capability", "SEND_MESSAGE",
        *at(facade),
    )  # fmt: skip
    assert code == 0, err
    printed = json.loads(out)
    assert printed["token"]
    assert printed["token_expiration_time"]
    assert printed["session_expiration_time"]
    (sent,) = tokens_made(facade)
    assert sent["userId"] == "user-from-file"
    assert sent["capabilities"] == ["SEND_MESSAGE"]


async def test_create_chat_token_reads_the_user_id_from_stdin(facade: Facade) -> None:
    arn = await room_of(facade)
    code, out, err = await run_with_stdin(
        b"user-from-stdin\n", "create-chat-token", arn, "--user-id-file", "-", *at(facade)
    )
    assert code == 0, err
    assert json.loads(out)["token"]
    assert [b["userId"] for b in tokens_made(facade)] == ["user-from-stdin"]


async def test_send_event_twice_with_one_request_id_sends_once_and_prints_one_id(
    facade: Facade,
) -> None:
    arn = await room_of(facade)
    request_id = str(uuid.uuid4())
    ids = []
    for _ in range(2):
        code, out, err = await run_command(
            "send-event", arn, "greeting", "--request-id", request_id, *at(facade)
        )
        assert code == 0, err
        ids.append(json.loads(out)["id"])
    assert ids[0]
    assert ids[0] == ids[1]
    assert len(facade.emulator.state.recorded("SendEvent")) == 1


async def test_disconnect_user_prints_an_empty_object(facade: Facade) -> None:
    arn = await room_of(facade)
    code, out, err = await run_command(
        "disconnect-user", arn, "--user-id", "someone", "--reason", "bye", *at(facade)
    )
    assert code == 0, err
    assert json.loads(out) == {}
    (sent,) = [r.body for r in facade.emulator.state.recorded("DisconnectUser")]
    assert sent["userId"] == "someone"


async def test_delete_message_prints_the_deletion_event_id(facade: Facade) -> None:
    arn = await room_of(facade)
    code, out, err = await run_command("delete-message", arn, "AbCdEfGhIjKl", *at(facade))
    assert code == 0, err
    assert json.loads(out)["id"]


# --- how each fails --------------------------------------------------------------


async def test_an_event_that_may_have_been_sent_exits_7(facade: Facade) -> None:
    arn = await room_of(facade)
    facade.emulator.state.faults.add(
        FaultRule(operation="SendEvent", error="InternalServerException", create=True)
    )
    code, out, err = await run_command(
        "send-event", arn, "e", "--request-id", str(uuid.uuid4()), *at(facade)
    )
    assert (code, out) == (7, "")
    assert "retry only with the same --request-id" in err
    assert len(facade.emulator.state.recorded("SendEvent")) == 1  # never resent


@pytest.mark.parametrize(
    "argv",
    [
        ("create-chat-token", MISSING, "--user-id", "u"),
        ("send-event", MISSING, "e"),
        ("disconnect-user", MISSING, "--user-id", "u"),
        ("delete-message", MISSING, "AbCdEfGhIjKl"),
    ],
)
async def test_a_missing_room_exits_6(facade: Facade, argv: tuple[str, ...]) -> None:
    code, _, err = await run_command(*argv, *at(facade))
    assert code == 6, err
    assert "error: NOT_FOUND" in err


async def test_invalid_input_exits_3_naming_each_field(facade: Facade) -> None:
    arn = await room_of(facade)
    code, _, err = await run_command(
        "create-chat-token", arn, "--user-id", "u" * 129, "--session-duration-minutes", "999",
        *at(facade),
    )  # fmt: skip
    assert code == 3
    assert "  user_id: " in err
    assert "  session_duration_minutes: " in err
    assert "u" * 129 not in err
    assert tokens_made(facade) == []


# --- bad flags and files: exit 2, one line naming the flag -----------------------


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (("create-chat-token", MISSING, "--user-id", "u", "--capability", "FLY"), "--capability"),
        (
            ("create-chat-token", MISSING, "--user-id", "u", "--session-duration-minutes", "x"),
            "--session-duration-minutes",
        ),
        (("send-event", MISSING, "e", "--attribute", "novalue"), "--attribute"),
        (("send-event", MISSING, "e", "--timeout", "soon"), "--timeout"),
        (("disconnect-user", MISSING), "--user-id"),
        (("create-chat-token", MISSING, "--user-id", "u", "--user-id-file", "f"), "--user-id"),
    ],
)
async def test_a_bad_flag_exits_2_naming_it(
    facade: Facade, argv: tuple[str, ...], flag: str
) -> None:
    code, out, err = await run_command(*argv, *at(facade))
    assert (code, out) == (2, "")
    assert flag in err.strip().splitlines()[-1]
    assert facade.emulator.state.recorded() == []


@pytest.mark.parametrize("content", [None, "", "\n"])
async def test_a_user_id_file_missing_or_empty_exits_2_naming_the_flag(
    facade: Facade, tmp_path: Path, content: str | None
) -> None:
    user = tmp_path / "user"
    if content is not None:
        user.write_text(content)
    for command in ("create-chat-token", "disconnect-user"):
        code, out, err = await run_command(
            command, MISSING, "--user-id-file", str(user), *at(facade)
        )
        assert (code, out) == (2, ""), err
        (line,) = err.strip().splitlines()
        assert "--user-id-file" in line
    assert facade.emulator.state.recorded() == []


async def test_a_user_id_from_an_empty_stdin_exits_2_naming_the_flag(facade: Facade) -> None:
    code, out, err = await run_with_stdin(
        b"", "create-chat-token", MISSING, "--user-id-file", "-", *at(facade)
    )
    assert (code, out) == (2, ""), err
    (line,) = err.strip().splitlines()
    assert "--user-id-file" in line
    assert "stdin" in line


@pytest.mark.parametrize("content", [None, "not json", '["a"]', '{"k": 1}'])
async def test_a_bad_attributes_file_exits_2_naming_the_flag(
    facade: Facade, tmp_path: Path, content: str | None
) -> None:
    attributes = tmp_path / "attributes.json"
    if content is not None:
        attributes.write_text(content)
    code, out, err = await run_command(
        "send-event", MISSING, "e", "--attributes-file", str(attributes), *at(facade)
    )
    assert (code, out) == (2, ""), err
    (line,) = err.strip().splitlines()
    assert "--attributes-file" in line
    assert facade.emulator.state.recorded() == []
