"""ivschat-grpc's room commands, end to end, as a person runs them."""

from __future__ import annotations

import json

from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.core.creator import RESERVED_TAG

from tests.support.facade import Facade
from tests.support.processes import run_command

MISSING = "arn:aws:ivschat:us-east-1:123456789012:room/AbCdEfGhIjKl"
REQUEST_ID = "3f2b9a4e-6c1d-4e8a-9b7f-2d5c8e1a0b3c"


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


async def test_list_rooms_pages_by_token_and_all_follows_every_page(facade: Facade) -> None:
    for name in ("a", "b", "c", "other"):
        await facade.stub.CreateRoom(pb.CreateRoomRequest(name=name), timeout=10)
    seen: list[str] = []
    token = ""
    for _ in range(3):
        flags = ("--page-token", token) if token else ()
        code, out, err = await run_command("list-rooms", "--page-size", "1", *flags, *at(facade))
        assert code == 0, err
        printed = json.loads(out)
        seen += [room["name"] for room in printed["rooms"]]
        token = printed["next_page_token"]
    assert seen == ["other", "c", "b"]
    assert token
    code, out, err = await run_command("list-rooms", "--all", "--page-size", "1", *at(facade))
    assert code == 0, err
    printed = json.loads(out)
    assert [room["name"] for room in printed["rooms"]] == ["other", "c", "b", "a"]
    assert printed["next_page_token"] == ""
    code, out, err = await run_command("list-rooms", "--name", "b", *at(facade))
    assert code == 0, err
    assert [room["name"] for room in json.loads(out)["rooms"]] == ["b"]


async def test_list_rooms_with_a_foreign_token_exits_3_naming_it(facade: Facade) -> None:
    code, _, err = await run_command("list-rooms", "--page-token", "forged", *at(facade))
    assert code == 3
    assert "  page_token: " in err


async def test_update_room_changes_only_the_flags_given(facade: Facade) -> None:
    handler = pb.MessageReviewHandler(uri="arn:aws:lambda:us-east-1:123456789012:function:f")
    request = pb.CreateRoomRequest(name="cli", message_review_handler=handler)
    room = (await facade.stub.CreateRoom(request, timeout=10)).room
    code, out, err = await run_command(
        "update-room", room.arn, "--max-message-length", "42", "--detach-review-handler",
        *at(facade),
    )  # fmt: skip
    assert code == 0, err
    printed = json.loads(out)
    assert (printed["name"], printed["maximum_message_length"]) == ("cli", 42)
    assert "message_review_handler" not in printed
    body = facade.emulator.state.recorded("UpdateRoom")[-1].body
    assert body == {
        "identifier": room.arn,
        "maximumMessageLength": 42,
        "messageReviewHandler": {"uri": ""},
    }


async def test_update_room_exits_3_on_a_bad_value_and_6_on_a_missing_room(
    facade: Facade,
) -> None:
    code, _, err = await run_command("update-room", MISSING, "--max-message-rate", "0", *at(facade))
    assert code == 3
    assert "  room.maximum_message_rate_per_second: " in err
    code, _, err = await run_command("update-room", MISSING, "--name", "x", *at(facade))
    assert code == 6
    assert "error: NOT_FOUND" in err


async def test_update_room_tags_replace_the_map_and_clear_tags_empties_it(
    facade: Facade,
) -> None:
    request = pb.CreateRoomRequest(name="cli", tags={"a": "1", "b": "2"}, request_id=REQUEST_ID)
    room = (await facade.stub.CreateRoom(request, timeout=10)).room
    code, out, err = await run_command(
        "update-room", room.arn, "--tag", "a=9", "--tag", "c=3", *at(facade)
    )
    assert code == 0, err
    assert json.loads(out)["tags"] == {"a": "9", "c": "3", RESERVED_TAG: REQUEST_ID}
    assert facade.emulator.state.recorded("UpdateRoom") == []  # tags alone: no UpdateRoom
    code, out, err = await run_command(
        "update-room", room.arn, "--name", "renamed", "--clear-tags", *at(facade)
    )
    assert code == 0, err
    printed = json.loads(out)
    assert (printed["name"], printed["tags"]) == ("renamed", {RESERVED_TAG: REQUEST_ID})


async def test_update_room_exits_3_naming_a_bad_tag_and_2_on_a_bare_one(facade: Facade) -> None:
    code, _, err = await run_command("update-room", MISSING, "--tag", "a;x=1", *at(facade))
    assert code == 3
    assert '  room.tags["a;x"]: key may hold only' in err
    code, _, err = await run_command("update-room", MISSING, "--tag", "novalue", *at(facade))
    assert code == 2
    assert "KEY=VALUE" in err
    code, _, err = await run_command(
        "update-room", MISSING, "--tag", "a=1", "--clear-tags", *at(facade)
    )
    assert code == 2
