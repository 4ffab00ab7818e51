"""ivschat-grpc get-room and delete-room, end to end, as a person runs them."""

from __future__ import annotations

import json

from ivschat.v1 import room_service_pb2 as pb

from tests.support.facade import Facade
from tests.support.processes import run_command

MISSING = "arn:aws:ivschat:us-east-1:123456789012:room/AbCdEfGhIjKl"


def at(facade: Facade) -> tuple[str, str]:
    return ("--server", f"127.0.0.1:{facade.service.port}")


async def test_get_room_prints_the_room_and_delete_room_deletes_it(facade: Facade) -> None:
    room = (await facade.stub.CreateRoom(pb.CreateRoomRequest(name="cli"), timeout=10)).room
    code, out, err = await run_command("get-room", room.arn, *at(facade))
    assert code == 0, err
    assert json.loads(out)["id"] == room.id
    code, out, err = await run_command("delete-room", room.arn, *at(facade))
    assert (code, out) == (0, ""), err
    assert room.id not in facade.emulator.state.rooms


async def test_a_missing_room_exits_6_unless_allowed(facade: Facade) -> None:
    code, _, err = await run_command("get-room", MISSING, *at(facade))
    assert code == 6
    assert "error: NOT_FOUND" in err
    code, _, err = await run_command("delete-room", MISSING, *at(facade))
    assert code == 6
    code, _, err = await run_command("delete-room", MISSING, "--allow-missing", *at(facade))
    assert code == 0, err


async def test_a_bad_arn_exits_3_naming_the_field(facade: Facade) -> None:
    code, _, err = await run_command("get-room", "not-an-arn", *at(facade))
    assert code == 3
    assert "  arn: " in err
