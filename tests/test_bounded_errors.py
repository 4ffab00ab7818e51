"""Validation's cost and answer are bounded: a hostile request cannot blow up its own status."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from ivschat.v1 import room_service_pb2 as pb

from tests.support.facade import Facade
from tests.support.richstatus import detail, error_info, field_violations, status_of

# A default gRPC client refuses response headers past 8 KiB (soft) to 16 KiB.
HEADER_BUDGET = 4096


def details_size(error: grpc.aio.AioRpcError) -> int:
    trailers = error.trailing_metadata() or ()
    return sum(len(v) for k, v in trailers if k == "grpc-status-details-bin")


async def refused(facade: Facade, request: pb.CreateRoomRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert 0 < details_size(info.value) < HEADER_BUDGET
    assert facade.emulator.state.recorded() == []
    return info.value


async def test_an_oversized_list_is_one_violation_not_one_per_item(facade: Facade) -> None:
    error = await refused(
        facade, pb.CreateRoomRequest(logging_configuration_identifiers=[""] * 38000)
    )
    assert list(field_violations(error)) == ["logging_configuration_identifiers"]


async def test_an_oversized_map_is_one_violation_not_one_per_entry(facade: Facade) -> None:
    tags = {f"aws:{i}": "\0" for i in range(5000)}
    error = await refused(facade, pb.CreateRoomRequest(tags=tags))
    assert list(field_violations(error)) == ["tags"]


async def test_many_violations_are_a_subset_and_the_count(facade: Facade) -> None:
    tags = {f"aws:{i}": "\0" for i in range(50)}  # each entry breaks two rules
    error = await refused(facade, pb.CreateRoomRequest(tags=tags))
    bad = detail(status_of(error), error_details_pb2.BadRequest)
    assert len(bad.field_violations) == 10
    info = error_info(error)
    assert info.metadata["violations"] == "100"
    assert info.metadata["violations_shown"] == "10"
    assert "the first 10" in (error.details() or "")


async def test_a_huge_map_key_is_cut_in_the_field_path(facade: Facade) -> None:
    error = await refused(facade, pb.CreateRoomRequest(tags={"k" * 30000: "v"}))
    (path,) = field_violations(error)
    assert path == 'tags["' + "k" * 256 + '…"]'


async def test_a_hostile_batch_item_does_not_end_the_stream(facade: Facade) -> None:
    items = [
        pb.BatchCreateRoomsRequest(
            correlation_id="hostile",
            room=pb.CreateRoomRequest(logging_configuration_identifiers=[""] * 38000),
        ),
        pb.BatchCreateRoomsRequest(correlation_id="fine", room=pb.CreateRoomRequest(name="fine")),
    ]
    answers = {
        a.correlation_id: a async for a in facade.stub.BatchCreateRooms(iter(items), timeout=30)
    }
    assert answers["hostile"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert len(answers["hostile"].error.SerializeToString()) < HEADER_BUDGET
    assert isinstance(answers["hostile"].error, status_pb2.Status)
    assert answers["fine"].room.name == "fine"
