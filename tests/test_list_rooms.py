"""ListRooms end to end: a real server, aioboto3 and the local endpoint; paging and its tokens."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.emulator import FaultRule

from tests.support.facade import LOGGING_ARNS, Facade, MakeFacade
from tests.support.richstatus import error_info, field_violations

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:review"


async def make_rooms(facade: Facade, names: list[str], **fields: object) -> list[pb.Room]:
    out = []
    for name in names:
        request = pb.CreateRoomRequest(name=name, **fields)  # type: ignore[arg-type] # test fields
        out.append((await facade.stub.CreateRoom(request, timeout=10)).room)
    return out


async def list_invalid(facade: Facade, request: pb.ListRoomsRequest) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await facade.stub.ListRooms(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    return field_violations(caught.value)


async def test_three_pages_newest_update_first_then_an_empty_token(facade: Facade) -> None:
    rooms = await make_rooms(facade, [f"room-{i}" for i in range(6)])
    seen: list[pb.RoomSummary] = []
    token = ""
    tokens = []
    for _ in range(3):
        page = await facade.stub.ListRooms(
            pb.ListRoomsRequest(page_size=2, page_token=token), timeout=10
        )
        assert len(page.rooms) == 2
        seen += page.rooms
        token = page.next_page_token
        tokens.append(token)
    assert tokens[-1] == ""
    assert all(tokens[:2])
    # Newest update first: the last made comes first.
    assert [s.name for s in seen] == [r.name for r in reversed(rooms)]
    # Every field of AWS's RoomSummary is carried.
    first = seen[0]
    made = rooms[-1]
    assert (first.arn, first.id, first.create_time, first.update_time) == (
        made.arn,
        made.id,
        made.create_time,
        made.update_time,
    )


async def test_an_update_moves_a_room_to_the_front(facade: Facade) -> None:
    rooms = await make_rooms(facade, ["older", "newer"])
    await facade.stub.UpdateRoom(
        pb.UpdateRoomRequest(room=pb.Room(arn=rooms[0].arn, name="older-renamed")), timeout=10
    )
    page = await facade.stub.ListRooms(pb.ListRoomsRequest(), timeout=10)
    assert [s.name for s in page.rooms] == ["older-renamed", "newer"]


async def test_the_summary_carries_the_handler_tags_and_logging_configurations(
    facade: Facade,
) -> None:
    handler = pb.MessageReviewHandler(uri=LAMBDA, fallback_result=pb.FALLBACK_RESULT_DENY)
    request = pb.CreateRoomRequest(
        name="full",
        message_review_handler=handler,
        tags={"team": "chat"},
        logging_configuration_identifiers=LOGGING_ARNS[:2],
    )
    await facade.stub.CreateRoom(request, timeout=10)
    (summary,) = (await facade.stub.ListRooms(pb.ListRoomsRequest(), timeout=10)).rooms
    assert summary.message_review_handler == handler
    assert dict(summary.tags) == {"team": "chat"}
    assert list(summary.logging_configuration_identifiers) == list(LOGGING_ARNS[:2])


async def test_each_filter_keeps_only_its_rooms(facade: Facade) -> None:
    await make_rooms(facade, ["plain", "same", "same"])
    handled = await make_rooms(
        facade, ["handled"], message_review_handler=pb.MessageReviewHandler(uri=LAMBDA)
    )
    logged = await make_rooms(
        facade, ["logged"], logging_configuration_identifiers=[LOGGING_ARNS[1]]
    )

    async def names(**filters: str) -> list[str]:
        page = await facade.stub.ListRooms(pb.ListRoomsRequest(**filters), timeout=10)  # type: ignore[arg-type] # filters
        return [s.name for s in page.rooms]

    assert await names(name="same") == ["same", "same"]
    assert await names(message_review_handler_uri=LAMBDA) == [handled[0].name]
    assert await names(logging_configuration_identifier=LOGGING_ARNS[1]) == [logged[0].name]
    assert len(await names()) == 5  # empty filters are no filters
    sent = facade.emulator.state.recorded("ListRooms")[-1].body
    assert set(sent) == {"maxResults"}


@pytest.mark.parametrize(("size", "sent"), [(0, 50), (1, 1), (50, 50), (51, 50), (1000, 50)])
async def test_page_size_is_coerced_to_at_most_50(facade: Facade, size: int, sent: int) -> None:
    await facade.stub.ListRooms(pb.ListRoomsRequest(page_size=size), timeout=10)
    assert facade.emulator.state.recorded("ListRooms")[-1].body["maxResults"] == sent


async def test_a_negative_page_size_is_named_and_never_sent(facade: Facade) -> None:
    violations = await list_invalid(facade, pb.ListRoomsRequest(page_size=-1))
    assert set(violations) == {"page_size"}
    assert facade.emulator.state.recorded("ListRooms") == []


HANDLER_URI = "message_review_handler_uri"
LOGGING_ID = "logging_configuration_identifier"


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"name": "n" * 129}, "name"),
        ({"name": "has space"}, "name"),
        ({HANDLER_URI: "arn:aws:sns:us-east-1:1:topic"}, HANDLER_URI),
        ({HANDLER_URI: LAMBDA + "x" * 200}, HANDLER_URI),
        ({LOGGING_ID: "arn:aws:ivschat:us-east-1:1:room/a"}, LOGGING_ID),
        ({LOGGING_ID: LOGGING_ARNS[0] + "a" * 100}, LOGGING_ID),
    ],
    ids=["name-129", "name-space", "not-lambda", "lambda-171", "not-logging", "logging-129"],
)
async def test_a_bad_filter_is_named_and_never_sent(
    facade: Facade, filters: dict[str, str], field: str
) -> None:
    violations = await list_invalid(facade, pb.ListRoomsRequest(**filters))  # type: ignore[arg-type] # filters
    assert set(violations) == {field}
    assert facade.emulator.state.recorded("ListRooms") == []


async def test_filters_at_their_limits_are_sent(facade: Facade) -> None:
    request = pb.ListRoomsRequest(
        name="n" * 128,
        message_review_handler_uri=LAMBDA + "x" * (170 - len(LAMBDA)),
        logging_configuration_identifier=LOGGING_ARNS[0],
    )
    page = await facade.stub.ListRooms(request, timeout=10)
    assert list(page.rooms) == []
    assert len(facade.emulator.state.recorded("ListRooms")) == 1


async def second_page_token(facade: Facade, **filters: str) -> str:
    page = await facade.stub.ListRooms(pb.ListRoomsRequest(page_size=1, **filters), timeout=10)
    assert page.next_page_token
    return page.next_page_token


@pytest.mark.parametrize(
    "other",
    [
        {"name": "other"},
        {},
        {"name": "same", "logging_configuration_identifier": LOGGING_ARNS[0]},
        {"name": "same", "message_review_handler_uri": LAMBDA},
    ],
    ids=["other-name", "no-filter", "added-logging", "added-handler"],
)
async def test_a_token_with_other_filters_is_refused_and_never_sent(
    facade: Facade, other: dict[str, str]
) -> None:
    await make_rooms(facade, ["same", "same"])
    token = await second_page_token(facade, name="same")
    before = len(facade.emulator.state.recorded("ListRooms"))
    request = pb.ListRoomsRequest(page_size=1, page_token=token, **other)
    violations = await list_invalid(facade, request)
    assert set(violations) == {"page_token"}
    assert "other filters" in violations["page_token"]
    assert len(facade.emulator.state.recorded("ListRooms")) == before


async def test_a_token_may_change_page_size(facade: Facade) -> None:
    await make_rooms(facade, ["a", "b", "c", "d"])
    token = await second_page_token(facade)
    page = await facade.stub.ListRooms(
        pb.ListRoomsRequest(page_size=3, page_token=token), timeout=10
    )
    assert [s.name for s in page.rooms] == ["c", "b", "a"]
    assert page.next_page_token == ""


@pytest.mark.parametrize(
    "token",
    ["garbage", "MQ==", "LTE=", "A" * 5000, "AQ" + "A" * 60, "!!!"],
    ids=["word", "endpoint-token", "minus-one", "huge", "version-only", "not-base64"],
)
async def test_a_token_not_issued_here_is_refused_and_never_sent(
    facade: Facade, token: str
) -> None:
    violations = await list_invalid(facade, pb.ListRoomsRequest(page_token=token))
    assert set(violations) == {"page_token"}
    assert "start again from the first page" in violations["page_token"]
    assert facade.emulator.state.recorded("ListRooms") == []


async def test_a_tampered_token_is_refused(facade: Facade) -> None:
    await make_rooms(facade, ["a", "b"])
    token = await second_page_token(facade)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    violations = await list_invalid(facade, pb.ListRoomsRequest(page_token=flipped))
    assert set(violations) == {"page_token"}


async def test_a_token_from_another_replica_on_the_same_redis_works(
    make_facade: MakeFacade, redis_url: str
) -> None:
    async with make_facade(redis_url=redis_url) as one, make_facade(redis_url=redis_url) as two:
        await make_rooms(one, ["a", "b", "c"])
        token = await second_page_token(one)
        page = await two.stub.ListRooms(
            pb.ListRoomsRequest(page_size=5, page_token=token), timeout=10
        )
        assert [s.name for s in page.rooms] == ["b", "a"]


async def test_a_token_from_a_process_with_another_key_is_refused(
    make_facade: MakeFacade,
) -> None:
    # Without Redis each process has a key of its own.
    alone = {"idempotency_store": "memory"}
    async with make_facade(**alone) as one, make_facade(**alone) as two:
        await make_rooms(one, ["a", "b"])
        token = await second_page_token(one)
        violations = await list_invalid(two, pb.ListRoomsRequest(page_token=token))
        assert "another service instance" in violations["page_token"]


async def test_list_rooms_is_resent_after_a_500(facade: Facade) -> None:
    await make_rooms(facade, ["a"])
    facade.emulator.state.faults.add(
        FaultRule(operation="ListRooms", error="InternalServerException", times=1)
    )
    page = await facade.stub.ListRooms(pb.ListRoomsRequest(), timeout=10)
    assert [s.name for s in page.rooms] == ["a"]
    assert [r.status for r in facade.emulator.state.recorded("ListRooms")] == [500, 200]


async def test_access_denied_on_list_rooms_names_the_operation(facade: Facade) -> None:
    facade.emulator.state.faults.add(
        FaultRule(operation="ListRooms", error="AccessDeniedException")
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await facade.stub.ListRooms(pb.ListRoomsRequest(), timeout=10)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "ListRooms" in (caught.value.details() or "")
    assert error_info(caught.value).reason == "AccessDeniedException"


async def test_replicas_that_found_redis_down_at_start_keep_keys_of_their_own(
    make_facade: MakeFacade, tmp_path: Path
) -> None:
    gone = f"unix://{tmp_path / 'no-redis.sock'}"
    async with make_facade(redis_url=gone) as one, make_facade(redis_url=gone) as two:
        await make_rooms(one, ["a", "b"])
        token = await second_page_token(one)
        page = await one.stub.ListRooms(pb.ListRoomsRequest(page_token=token), timeout=10)
        assert [s.name for s in page.rooms] == ["a"]
        violations = await list_invalid(two, pb.ListRoomsRequest(page_token=token))
        assert "another service instance" in violations["page_token"]
