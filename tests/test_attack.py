"""Attacks on issue 16's RPCs, each a finding: a hostile or careless caller, or AWS echoing input.

Each test here failed before the fix it came with (or pins a behaviour the
attack found sound, said so in its docstring).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from ivschat.v1 import chat_service_pb2 as pb
from ivschat.v1 import chat_service_pb2_grpc as pb_grpc
from ivschat.v1 import room_service_pb2 as room_pb
from ivschat_grpc.emulator import Emulator, EmulatorSettings, FaultRule

from tests.support.facade import Facade, MakeFacade, facade_with
from tests.support.richstatus import error_info, field_violations, status_of

MARKER = "MARKER-5e1f"
# A default gRPC client refuses response headers past 8 KiB (soft) to 16 KiB.
HEADER_BUDGET = 4096


def chat(facade: Facade) -> pb_grpc.ChatServiceAsyncStub:
    return pb_grpc.ChatServiceStub(facade.channel)


async def room_of(facade: Facade) -> str:
    made = await facade.stub.CreateRoom(room_pb.CreateRoomRequest(name="attack"), timeout=10)
    return made.room.arn


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def details_bytes(error: grpc.aio.AioRpcError) -> int:
    trailers = error.trailing_metadata() or ()
    return sum(len(v) for k, v in trailers if k == "grpc-status-details-bin")


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


# --- AWS's messages can echo the request: never passed through for chat ------------


async def test_a_fault_rule_may_set_the_message_aws_answers(facade: Facade) -> None:
    """The endpoint's rules can carry AWS's message; before, a 'message' field made it 500."""
    arn = await room_of(facade)
    facade.emulator.state.faults.add(
        FaultRule(operation="GetRoom", error="AccessDeniedException", fields={"message": "no"})
    )
    failed = await refused(facade.stub.GetRoom(room_pb.GetRoomRequest(arn=arn), timeout=10))
    assert failed.code() is grpc.StatusCode.PERMISSION_DENIED
    assert [r.status for r in facade.emulator.state.recorded("GetRoom")] == [403]


ECHOING_FIELDS = {
    "user_id": [{"name": "userId", "message": f"userId {MARKER} is not allowed"}],
    "attribute_key": [{"name": f"attributes.{MARKER}", "message": f"value of {MARKER} is bad"}],
    "attributes": [{"name": "attributes", "message": f"{MARKER}={MARKER} is bad"}],
}


@pytest.mark.parametrize("method", ["CreateChatToken", "SendEvent", "DisconnectUser"])
@pytest.mark.parametrize("echo", sorted(ECHOING_FIELDS))
async def test_an_aws_validation_message_that_may_echo_a_secret_is_not_passed_through(
    facade: Facade, method: str, echo: str
) -> None:
    arn = await room_of(facade)
    facade.emulator.state.faults.add(
        FaultRule(
            operation=method,
            error="ValidationException",
            fields={"message": f"bad {MARKER}", "fieldList": ECHOING_FIELDS[echo]},
        )
    )
    requests: dict[str, Any] = {
        "CreateChatToken": pb.CreateChatTokenRequest(
            room_arn=arn, user_id=MARKER, attributes={MARKER: MARKER}
        ),
        "SendEvent": pb.SendEventRequest(room_arn=arn, event_name="e", attributes={MARKER: MARKER}),
        "DisconnectUser": pb.DisconnectUserRequest(room_arn=arn, user_id=MARKER),
    }
    failed = await refused(getattr(chat(facade), method)(requests[method], timeout=10))
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = status_of(failed)
    assert MARKER.lower() not in str(status).lower().replace("_", "-")
    assert MARKER.lower() not in (failed.details() or "").lower()
    violations = field_violations(failed)
    assert violations, "the field AWS named is still named"
    assert set(violations) <= {"user_id", "attributes"}


async def test_a_room_operation_still_passes_aws_field_messages_through(facade: Facade) -> None:
    """A room's fields are not secret: AWS's own words about them stay useful to the caller."""
    arn = await room_of(facade)
    facade.emulator.state.faults.add(
        FaultRule(
            operation="UpdateRoom",
            error="ValidationException",
            fields={"fieldList": [{"name": "name", "message": "name is taken by policy"}]},
        )
    )
    failed = await refused(
        facade.stub.UpdateRoom(
            room_pb.UpdateRoomRequest(
                room=room_pb.Room(arn=arn, name="x"), update_mask=mask("name")
            ),
            timeout=10,
        )
    )
    assert field_violations(failed) == {"room.name": "name is taken by policy"}


@pytest.mark.parametrize(
    ("aws_name", "proto"),
    [("identifier", "room.arn"), ("maximumMessageLength", "room.maximum_message_length")],
)
async def test_update_room_names_aws_fields_as_its_proto_does(
    facade: Facade, aws_name: str, proto: str
) -> None:
    """AWS's members sit in UpdateRoomRequest.room; before, they came back as top-level names."""
    arn = await room_of(facade)
    facade.emulator.state.faults.add(
        FaultRule(
            operation="UpdateRoom",
            error="ValidationException",
            fields={"fieldList": [{"name": aws_name, "message": "no"}]},
        )
    )
    failed = await refused(
        facade.stub.UpdateRoom(
            room_pb.UpdateRoomRequest(
                room=room_pb.Room(arn=arn, name="x"), update_mask=mask("name")
            ),
            timeout=10,
        )
    )
    assert field_violations(failed) == {proto: "no"}


@pytest.mark.parametrize(
    ("aws_name", "proto"),
    [("roomIdentifier", "room_arn"), ("sessionDurationInMinutes", "session_duration_minutes")],
)
async def test_create_chat_token_names_aws_fields_as_its_proto_does(
    facade: Facade, aws_name: str, proto: str
) -> None:
    arn = await room_of(facade)
    facade.emulator.state.faults.add(
        FaultRule(
            operation="CreateChatToken",
            error="ValidationException",
            fields={"fieldList": [{"name": aws_name, "message": "no"}]},
        )
    )
    request = pb.CreateChatTokenRequest(room_arn=arn, user_id="u")
    failed = await refused(chat(facade).CreateChatToken(request, timeout=10))
    assert list(field_violations(failed)) == [proto]


async def test_get_room_names_aws_identifier_as_arn(facade: Facade) -> None:
    """Old code too: GetRoom's AWS member identifier is the proto's arn."""
    arn = await room_of(facade)
    facade.emulator.state.faults.add(
        FaultRule(
            operation="GetRoom",
            error="ValidationException",
            fields={"fieldList": [{"name": "identifier", "message": "no"}]},
        )
    )
    failed = await refused(facade.stub.GetRoom(room_pb.GetRoomRequest(arn=arn), timeout=10))
    assert field_violations(failed) == {"arn": "no"}


# --- UpdateRoom's mask -----------------------------------------------------------


async def test_long_unknown_mask_paths_keep_the_status_within_a_header(facade: Facade) -> None:
    """Each unknown path was echoed whole: ten of 7000 characters overflowed the 16 KiB header."""
    arn = await room_of(facade)
    paths = [f"{MARKER}{i}" * 500 for i in range(10)]  # 6000 characters each
    request = room_pb.UpdateRoomRequest(room=room_pb.Room(arn=arn), update_mask=mask(*paths))
    failed = await refused(facade.stub.UpdateRoom(request, timeout=10))
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert 0 < details_bytes(failed) < HEADER_BUDGET
    assert list(field_violations(failed)) == ["update_mask"]
    assert facade.emulator.state.recorded("UpdateRoom") == []


async def test_tags_outside_a_mask_that_names_fields_are_ignored(facade: Facade) -> None:
    """AIP-134: a field the mask does not name is not changed, whatever it holds."""
    arn = await room_of(facade)
    room = room_pb.Room(arn=arn, name="renamed")
    room.tags["team"] = "a"
    updated = await facade.stub.UpdateRoom(
        room_pb.UpdateRoomRequest(room=room, update_mask=mask("name")), timeout=10
    )
    assert updated.name == "renamed"
    assert dict(updated.tags) == {}


# --- SendEvent's request_id under contention, and page tokens across keys ----------


async def _send_twenty(stubs: list[pb_grpc.ChatServiceAsyncStub], request: Any) -> list[Any]:
    calls = [stubs[i % len(stubs)].SendEvent(request, timeout=20) for i in range(20)]
    return await asyncio.gather(*calls, return_exceptions=True)


def _one_event_for_all(answers: list[Any]) -> None:
    ids = {a.id for a in answers if not isinstance(a, BaseException)}
    failures = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(ids) == 1, (ids, failures)
    for failure in failures:  # a caller may be told to wait, never that nothing ran
        assert failure.code() is not grpc.StatusCode.UNKNOWN
        assert failure.code() is not grpc.StatusCode.UNAVAILABLE
        assert error_info(failure).reason == "REQUEST_IN_PROGRESS"
    assert not [a for a in answers if isinstance(a, BaseException) and a not in failures]


async def test_twenty_callers_of_one_request_id_make_one_event(facade: Facade) -> None:
    """Sound: the first sends, the other nineteen wait for its answer and get its id."""
    arn = await room_of(facade)
    facade.emulator.state.faults.add(FaultRule(operation="SendEvent", latency_ms=500, times=1))
    request = pb.SendEventRequest(room_arn=arn, event_name="e", request_id=str(uuid.uuid4()))
    _one_event_for_all(await _send_twenty([chat(facade)], request))
    assert len(facade.emulator.state.chat_actions("SendEvent")) == 1


async def test_twenty_callers_across_two_replicas_on_one_redis_make_one_event(
    make_facade: MakeFacade, redis_url: str
) -> None:
    """Sound: the request_id store in Redis is shared, so one replica sends and both answer."""
    async with make_facade(redis_url=redis_url) as one, make_facade(redis_url=redis_url) as two:
        arn = await room_of(one)
        one.emulator.state.faults.add(FaultRule(operation="SendEvent", latency_ms=500, times=1))
        request = pb.SendEventRequest(room_arn=arn, event_name="e", request_id=str(uuid.uuid4()))
        _one_event_for_all(await _send_twenty([chat(one), chat(two)], request))
        assert len(one.emulator.state.chat_actions("SendEvent")) == 1


async def test_a_page_token_from_another_regions_key_is_refused(
    make_facade: MakeFacade, redis_url: str
) -> None:
    """Sound: the key in Redis is per region, as AWS's tokens are per account and region."""
    async with (
        make_facade(redis_url=redis_url) as here,
        make_facade(redis_url=redis_url, region="eu-west-1") as there,
    ):
        for name in ("a", "b"):
            await here.stub.CreateRoom(room_pb.CreateRoomRequest(name=name), timeout=10)
        first = await here.stub.ListRooms(room_pb.ListRoomsRequest(page_size=1), timeout=10)
        assert first.next_page_token
        before = len(here.emulator.state.recorded("ListRooms"))
        request = room_pb.ListRoomsRequest(page_size=1, page_token=first.next_page_token)
        failed = await refused(there.stub.ListRooms(request, timeout=10))
        assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "another service instance" in field_violations(failed)["page_token"]
        assert len(here.emulator.state.recorded("ListRooms")) == before


async def test_the_largest_page_size_is_taken_as_50_and_the_last_page_has_no_token(
    facade: Facade,
) -> None:
    await room_of(facade)
    page = await facade.stub.ListRooms(room_pb.ListRoomsRequest(page_size=2**31 - 1), timeout=10)
    assert len(page.rooms) == 1
    assert page.next_page_token == ""
    (sent,) = facade.emulator.state.recorded("ListRooms")
    assert sent.body == {"maxResults": 50}


async def test_update_room_of_a_deleted_room_is_not_found(facade: Facade) -> None:
    arn = await room_of(facade)
    await facade.stub.DeleteRoom(room_pb.DeleteRoomRequest(arn=arn), timeout=10)
    request = room_pb.UpdateRoomRequest(
        room=room_pb.Room(arn=arn, name="x"), update_mask=mask("name")
    )
    failed = await refused(facade.stub.UpdateRoom(request, timeout=10))
    assert failed.code() is grpc.StatusCode.NOT_FOUND
    assert "UpdateRoom" in (failed.details() or "")


# --- floods --------------------------------------------------------------------


# gRPC core cancelled about a tenth of these (CANCELLED, no status) before the
# service saw them, past its own pending-call backlog of 1000: see
# assembly.pending_limit.
async def test_a_flood_of_chat_tokens_is_answered_each_with_a_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quotas = {"CreateChatToken": 200.0}
    settings = EmulatorSettings(create_room_rate=None, quotas=quotas)
    async with Emulator(settings) as emu, facade_with(emu, monkeypatch) as facade:
        arn = await room_of(facade)
        stub = chat(facade)
        calls = [
            stub.CreateChatToken(
                pb.CreateChatTokenRequest(room_arn=arn, user_id=f"u{i}"), timeout=60
            )
            for i in range(2000)
        ]
        answers = await asyncio.gather(*calls, return_exceptions=True)
        throttled = [r for r in emu.state.requests if r.status == 429]
    assert throttled == []
    failures = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(failures) + sum(isinstance(a, pb.CreateChatTokenResponse) for a in answers) == 2000
    # Past its bucket's queue (400 callers) or --max-concurrent-rpcs, a call is refused
    # at once, with a status saying so.
    assert {f.code() for f in failures} <= {grpc.StatusCode.RESOURCE_EXHAUSTED}
