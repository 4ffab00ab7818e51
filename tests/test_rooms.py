"""GetRoom and DeleteRoom end to end: a real server, aioboto3 and the local endpoint."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.emulator import FaultRule

from tests.support.facade import Facade
from tests.support.richstatus import detail, error_info, field_violations, status_of

MISSING = "arn:aws:ivschat:us-east-1:123456789012:room/AbCdEfGhIjKl"


async def made(facade: Facade, name: str = "kept") -> pb.Room:
    return (await facade.stub.CreateRoom(pb.CreateRoomRequest(name=name), timeout=10)).room


async def test_get_room_returns_the_room_as_create_room_did(facade: Facade) -> None:
    room = await made(facade)
    call = facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10)
    got = await call
    assert got == room
    trailers = dict(await call.trailing_metadata() or ())
    assert trailers["aws-request-id"]


async def test_get_room_of_a_missing_room_is_not_found_naming_the_operation(
    facade: Facade,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await facade.stub.GetRoom(pb.GetRoomRequest(arn=MISSING), timeout=10)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert error_info(caught.value).reason == "ResourceNotFoundException"
    assert detail(status_of(caught.value), error_details_pb2.ResourceInfo).resource_type


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "AbCdEfGhIjKl",  # a bare id: AWS takes only the ARN
        "arn:aws:ivschat:us-east-1:123456789012:room/" + "a" * 100,  # over 128 characters
        "arn:aws:ivschat:us-east-1:123456789012:room/AbCd\n",
    ],
    ids=["empty", "bare-id", "too-long", "trailing-newline"],
)
@pytest.mark.parametrize("method", ["GetRoom", "DeleteRoom"])
async def test_a_bad_arn_is_named_and_never_reaches_aws(
    facade: Facade, method: str, arn: str
) -> None:
    request = pb.GetRoomRequest(arn=arn) if method == "GetRoom" else pb.DeleteRoomRequest(arn=arn)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(facade.stub, method)(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {"arn"}
    assert facade.emulator.state.recorded(method) == []


async def test_get_room_is_sent_again_after_a_500(facade: Facade) -> None:
    room = await made(facade)
    facade.emulator.state.faults.add(
        FaultRule(operation="GetRoom", error="InternalServerException", times=1)
    )
    assert await facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10) == room
    assert len(facade.emulator.state.recorded("GetRoom")) == 2


async def test_delete_room_deletes_then_a_second_delete_is_not_found(facade: Facade) -> None:
    room = await made(facade)
    await facade.stub.DeleteRoom(pb.DeleteRoomRequest(arn=room.arn), timeout=10)
    assert room.id not in facade.emulator.state.rooms
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await facade.stub.DeleteRoom(pb.DeleteRoomRequest(arn=room.arn), timeout=10)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert "DeleteRoom" in (caught.value.details() or "")


async def test_delete_room_of_a_missing_room_is_ok_with_allow_missing(facade: Facade) -> None:
    await facade.stub.DeleteRoom(pb.DeleteRoomRequest(arn=MISSING, allow_missing=True), timeout=10)
    assert len(facade.emulator.state.recorded("DeleteRoom")) == 1


async def test_a_delete_whose_answer_was_lost_is_resent_and_succeeds(facade: Facade) -> None:
    room = await made(facade)
    # AWS deletes the room, but its answer is a 500: the resend finds no room.
    facade.emulator.state.faults.add(
        FaultRule(operation="DeleteRoom", error="InternalServerException", create=True, times=1)
    )
    await facade.stub.DeleteRoom(pb.DeleteRoomRequest(arn=room.arn), timeout=10)
    assert room.id not in facade.emulator.state.rooms
    assert [r.status for r in facade.emulator.state.recorded("DeleteRoom")] == [500, 404]


async def test_access_denied_on_get_room_names_the_operation(facade: Facade) -> None:
    facade.emulator.state.faults.add(FaultRule(operation="GetRoom", error="AccessDeniedException"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await facade.stub.GetRoom(pb.GetRoomRequest(arn=MISSING), timeout=10)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "GetRoom" in (caught.value.details() or "")
    assert len(facade.emulator.state.recorded("GetRoom")) == 1  # not resent: AWS answered


async def get_missing_after_500s(facade: Facade, times: int) -> grpc.aio.AioRpcError:
    """The failure of a GetRoom of a missing room whose first attempts answer 500."""
    facade.emulator.state.faults.add(
        FaultRule(operation="GetRoom", error="InternalServerException", times=times)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await facade.stub.GetRoom(pb.GetRoomRequest(arn=MISSING), timeout=10)
    return caught.value


async def test_a_resent_get_room_that_finds_nothing_is_not_found(facade: Facade) -> None:
    # The 500 makes the first attempt ambiguous; a read changed nothing all the same.
    failed = await get_missing_after_500s(facade, 1)
    assert failed.code() is grpc.StatusCode.NOT_FOUND
    assert "GetRoom" in (failed.details() or "")


async def test_a_read_that_fails_never_says_the_room_may_exist(facade: Facade) -> None:
    failed = await get_missing_after_500s(facade, 4)
    assert failed.code() is grpc.StatusCode.INTERNAL
    assert "room_may_exist" not in error_info(failed).metadata
    assert "changed nothing" in (failed.details() or "")


async def test_a_delete_that_ran_then_ran_out_of_time_is_not_called_unsent(
    facade: Facade,
) -> None:
    room = await made(facade)
    # AWS deletes the room and answers 500; DeleteRoom's next slot (5 a second)
    # opens too late for the resend, with nothing out to AWS. The resend is shed
    # at once, or the deadline passes in its backoff: either way the caller is
    # told the first attempt may have run.
    facade.emulator.state.faults.add(
        FaultRule(operation="DeleteRoom", error="InternalServerException", create=True, times=1),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await facade.stub.DeleteRoom(pb.DeleteRoomRequest(arn=room.arn), timeout=0.15)
    info = error_info(caught.value)
    assert (caught.value.code(), info.reason) in {
        (grpc.StatusCode.INTERNAL, "InternalServerException"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"),
    }  # not DEADLINE_EXCEEDED_NOT_SENT, nor RATE_LIMIT_EXCEEDED
    assert info.metadata["room_may_exist"] == "true"
    assert room.id not in facade.emulator.state.rooms
