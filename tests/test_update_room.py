"""UpdateRoom end to end: a real server, aioboto3 and the local endpoint; masks and limits."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.emulator import FaultRule

from tests.support.facade import LOGGING_ARNS, Facade
from tests.support.richstatus import error_info, field_violations

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:review"
MISSING = "arn:aws:ivschat:us-east-1:123456789012:room/AbCdEfGhIjKl"


async def made(facade: Facade, **fields: Any) -> pb.Room:
    request = pb.CreateRoomRequest(name="before", **fields)
    return (await facade.stub.CreateRoom(request, timeout=10)).room


async def update(facade: Facade, room: pb.Room, *paths: str) -> pb.Room:
    mask = field_mask_pb2.FieldMask(paths=paths)
    return await facade.stub.UpdateRoom(
        pb.UpdateRoomRequest(room=room, update_mask=mask), timeout=10
    )


def sent(facade: Facade) -> dict[str, Any]:
    """The body of the last UpdateRoom the endpoint received."""
    body: dict[str, Any] = facade.emulator.state.recorded("UpdateRoom")[-1].body
    return body


async def refused(facade: Facade, room: pb.Room, *paths: str) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await update(facade, room, *paths)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert facade.emulator.state.recorded("UpdateRoom") == []
    return field_violations(caught.value)


@pytest.mark.parametrize(
    ("path", "value", "member"),
    [
        ("name", "after", "name"),
        ("maximum_message_length", 120, "maximumMessageLength"),
        ("maximum_message_rate_per_second", 7, "maximumMessageRatePerSecond"),
        ("logging_configuration_identifiers", [LOGGING_ARNS[2]], "loggingConfigurationIdentifiers"),
    ],
)
async def test_each_masked_field_alone_is_sent_and_changed(
    facade: Facade, path: str, value: Any, member: str
) -> None:
    room = await made(facade, logging_configuration_identifiers=[LOGGING_ARNS[0]])
    change = pb.Room(arn=room.arn, name="ignored", maximum_message_length=9)
    if isinstance(value, list):
        change.logging_configuration_identifiers[:] = value
    else:
        setattr(change, path, value)
    answer = await update(facade, change, path)
    assert sent(facade) == {"identifier": room.arn, member: value}
    got = await facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10)
    assert answer == got
    now = getattr(got, path)
    assert (list(now) if isinstance(value, list) else now) == value
    # What was not masked is as it was.
    unchanged = {"name", "maximum_message_length"} - {path}
    for field in unchanged:
        assert getattr(got, field) == getattr(room, field)


async def test_the_review_handler_is_set_then_detached(facade: Facade) -> None:
    room = await made(facade)
    handler = pb.MessageReviewHandler(uri=LAMBDA, fallback_result=pb.FALLBACK_RESULT_DENY)
    answer = await update(
        facade, pb.Room(arn=room.arn, message_review_handler=handler), "message_review_handler"
    )
    assert answer.message_review_handler == handler
    assert sent(facade)["messageReviewHandler"] == {"uri": LAMBDA, "fallbackResult": "DENY"}
    # Masked and unset: AWS's empty uri, which detaches it.
    await update(facade, pb.Room(arn=room.arn), "message_review_handler")
    assert sent(facade)["messageReviewHandler"] == {"uri": ""}
    got = await facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10)
    assert not got.HasField("message_review_handler")


async def test_the_handler_parts_together_are_the_handler(facade: Facade) -> None:
    room = await made(facade)
    handler = pb.MessageReviewHandler(uri=LAMBDA, fallback_result=pb.FALLBACK_RESULT_ALLOW)
    change = pb.Room(arn=room.arn, message_review_handler=handler)
    paths = ("message_review_handler.uri", "message_review_handler.fallback_result")
    assert (await update(facade, change, *paths)).message_review_handler == handler
    # An empty uri alone detaches.
    await update(facade, pb.Room(arn=room.arn), "message_review_handler.uri")
    got = await facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10)
    assert not got.HasField("message_review_handler")


@pytest.mark.parametrize(
    "path", ["message_review_handler.fallback_result", "message_review_handler.uri"]
)
async def test_one_handler_part_alone_is_refused(facade: Facade, path: str) -> None:
    handler = pb.MessageReviewHandler(uri=LAMBDA, fallback_result=pb.FALLBACK_RESULT_DENY)
    violations = await refused(facade, pb.Room(arn=MISSING, message_review_handler=handler), path)
    assert set(violations) == {"update_mask"}
    assert "whole" in violations["update_mask"]


async def test_an_empty_mask_sends_the_fields_set(facade: Facade) -> None:
    room = await made(facade)
    change = pb.Room(arn=room.arn, id="ignored", maximum_message_rate_per_second=3)
    change.create_time.GetCurrentTime()
    answer = await update(facade, change)
    assert sent(facade) == {"identifier": room.arn, "maximumMessageRatePerSecond": 3}
    assert (answer.name, answer.maximum_message_rate_per_second) == ("before", 3)


async def test_an_empty_mask_and_nothing_set_returns_the_room(facade: Facade) -> None:
    room = await made(facade)
    answer = await update(facade, pb.Room(arn=room.arn))
    assert sent(facade) == {"identifier": room.arn}
    assert (answer.arn, answer.name) == (room.arn, room.name)


async def test_star_sends_every_updatable_field(facade: Facade) -> None:
    room = await made(facade, message_review_handler=pb.MessageReviewHandler(uri=LAMBDA))
    change = pb.Room(
        arn=room.arn, name="", maximum_message_length=1, maximum_message_rate_per_second=1
    )
    answer = await update(facade, change, "*")
    assert sent(facade) == {
        "identifier": room.arn,
        "name": "",
        "maximumMessageLength": 1,
        "maximumMessageRatePerSecond": 1,
        "messageReviewHandler": {"uri": ""},
        "loggingConfigurationIdentifiers": [],
    }
    assert answer.name == ""
    assert not answer.HasField("message_review_handler")


async def test_star_with_a_zero_is_refused_naming_the_field(facade: Facade) -> None:
    violations = await refused(facade, pb.Room(arn=MISSING, name="x"), "*")
    assert set(violations) == {
        "room.maximum_message_length",
        "room.maximum_message_rate_per_second",
    }


@pytest.mark.parametrize("path", ["arn", "id", "create_time", "update_time", "tags.k", "nope", ""])
async def test_a_path_outside_the_updatable_fields_is_refused(facade: Facade, path: str) -> None:
    violations = await refused(facade, pb.Room(arn=MISSING, name="x"), "name", path)
    assert set(violations) == {"update_mask"}
    assert repr(path) in violations["update_mask"]
    assert "maximum_message_rate_per_second" in violations["update_mask"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("maximum_message_length", "room.maximum_message_length"),
        ("maximum_message_rate_per_second", "room.maximum_message_rate_per_second"),
    ],
)
async def test_a_masked_zero_is_refused_and_never_sent(
    facade: Facade, path: str, field: str
) -> None:
    assert set(await refused(facade, pb.Room(arn=MISSING), path)) == {field}


@pytest.mark.parametrize(
    ("path", "value", "ok"),
    [
        ("name", "n" * 128, True),
        ("name", "n" * 129, False),
        ("name", "no spaces", False),
        ("maximum_message_length", 1, True),
        ("maximum_message_length", 500, True),
        ("maximum_message_length", 501, False),
        ("maximum_message_length", -1, False),
        ("maximum_message_rate_per_second", 1, True),
        ("maximum_message_rate_per_second", 100, True),
        ("maximum_message_rate_per_second", 101, False),
        ("logging_configuration_identifiers", list(LOGGING_ARNS), True),
        ("logging_configuration_identifiers", [*LOGGING_ARNS, LOGGING_ARNS[0]], False),
        ("logging_configuration_identifiers", ["arn:aws:ivschat:us-east-1:1:room/a"], False),
    ],
)
async def test_each_constraint_at_its_boundaries(
    facade: Facade, path: str, value: Any, ok: bool
) -> None:
    room = await made(facade)
    change = pb.Room(arn=room.arn)
    if isinstance(value, list):
        change.logging_configuration_identifiers[:] = value
    else:
        setattr(change, path, value)
    if ok:
        answer = await update(facade, change, path)
        assert (list if isinstance(value, list) else type(value))(getattr(answer, path)) == value
        return
    violations = await refused(facade, change, path)
    assert {v.split("[")[0] for v in violations} == {f"room.{path}"}


async def test_a_bad_review_handler_is_named(facade: Facade) -> None:
    handler = pb.MessageReviewHandler(uri="arn:aws:sns:us-east-1:1:topic", fallback_result=7)  # type: ignore[arg-type] # an unknown enum number
    violations = await refused(
        facade, pb.Room(arn=MISSING, message_review_handler=handler), "message_review_handler"
    )
    assert set(violations) == {
        "room.message_review_handler.uri",
        "room.message_review_handler.fallback_result",
    }


@pytest.mark.parametrize(
    "arn", ["", "AbCdEfGhIjKl", MISSING + "a" * 100], ids=["empty", "bare-id", "too-long"]
)
async def test_a_bad_arn_is_named_room_arn(facade: Facade, arn: str) -> None:
    violations = await refused(facade, pb.Room(arn=arn, name="x"), "name")
    assert set(violations) == {"room.arn"}


async def test_every_violation_at_once(facade: Facade) -> None:
    change = pb.Room(arn="bad", maximum_message_length=501)
    violations = await refused(facade, change, "maximum_message_length", "nope")
    assert set(violations) == {"update_mask", "room.arn", "room.maximum_message_length"}


async def test_a_missing_room_is_not_found_naming_the_operation(facade: Facade) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await update(facade, pb.Room(arn=MISSING, name="x"), "name")
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert "UpdateRoom" in (caught.value.details() or "")
    assert error_info(caught.value).reason == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("AccessDeniedException", grpc.StatusCode.PERMISSION_DENIED),
        ("PendingVerification", grpc.StatusCode.FAILED_PRECONDITION),
        ("ValidationException", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_modeled_errors_go_through_the_table(
    facade: Facade, error: str, code: grpc.StatusCode
) -> None:
    room = await made(facade)
    facade.emulator.state.faults.add(FaultRule(operation="UpdateRoom", error=error))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await update(facade, pb.Room(arn=room.arn, name="x"), "name")
    assert caught.value.code() is code
    assert error_info(caught.value).reason == error
    assert "UpdateRoom" in (caught.value.details() or "")
    assert len(facade.emulator.state.recorded("UpdateRoom")) == 1


async def test_an_update_whose_answer_was_lost_is_resent_and_ok(facade: Facade) -> None:
    room = await made(facade)
    # AWS runs the update, but its answer is a 500: the resend sets the same value.
    facade.emulator.state.faults.add(
        FaultRule(operation="UpdateRoom", error="InternalServerException", create=True, times=1)
    )
    answer = await update(facade, pb.Room(arn=room.arn, name="after"), "name")
    assert answer.name == "after"
    assert [r.status for r in facade.emulator.state.recorded("UpdateRoom")] == [500, 200]
