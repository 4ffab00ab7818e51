"""A room's tags through UpdateRoom (AIP-134), end to end: diffs, the reserved tag, partial updates.

A real server, the real aioboto3 client and the local endpoint over HTTP; the
AWS calls each update made are read from the endpoint's /_emulator/requests.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import field_mask_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.core.creator import RESERVED_TAG
from ivschat_grpc.core.tag_sync import REPORT_KEYS, Part, Progress, TagDiff, diff
from ivschat_grpc.emulator import FaultRule

from tests.support.facade import Facade, MakeFacade
from tests.support.richstatus import error_info, field_violations
from tests.support.waiting import until

RESERVED = f'room.tags["{RESERVED_TAG}"]'
TAGS_MAX = 50


async def made(facade: Facade, tags: dict[str, str], *, request_id: bool = False) -> pb.Room:
    request = pb.CreateRoomRequest(name="tagged", tags=tags)
    if request_id:
        request.request_id = str(uuid.uuid4())
    room = (await facade.stub.CreateRoom(request, timeout=10)).room
    facade.emulator.state.requests.clear()
    return room


async def update(facade: Facade, room: pb.Room, *paths: str, deadline_s: float = 10) -> pb.Room:
    mask = field_mask_pb2.FieldMask(paths=paths)
    return await facade.stub.UpdateRoom(
        pb.UpdateRoomRequest(room=room, update_mask=mask), timeout=deadline_s
    )


async def refused(
    facade: Facade, room: pb.Room, *paths: str, deadline_s: float = 10
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await update(facade, room, *paths, deadline_s=deadline_s)
    return caught.value


async def calls(facade: Facade) -> list[str]:
    """The operations the endpoint received since the last clear, as its admin route lists them."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{facade.emulator.url}/_emulator/requests") as answer,
    ):
        return [r["operation"] for r in await answer.json()]


async def tags_now(facade: Facade, arn: str) -> dict[str, str]:
    return dict((await facade.stub.GetRoom(pb.GetRoomRequest(arn=arn), timeout=10)).tags)


def tagged(arn: str, tags: dict[str, str], **fields: Any) -> pb.Room:
    return pb.Room(arn=arn, tags=tags, **fields)


def report_of(failed: grpc.aio.AioRpcError) -> dict[str, str]:
    """What the failure says of each part of the update: its ErrorInfo's report keys."""
    keys = set(REPORT_KEYS.values())
    return {k: v for k, v in error_info(failed).metadata.items() if k in keys}


# --- GetRoom -------------------------------------------------------------------------


async def test_get_room_returns_the_tags_and_the_reserved_one(facade: Facade) -> None:
    room = await made(facade, {"team": "red"}, request_id=True)
    got = await facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10)
    assert dict(got.tags) == {"team": "red", RESERVED_TAG: room.tags[RESERVED_TAG]}
    assert await calls(facade) == ["GetRoom"]  # GetRoom carries them: nothing else is read


# --- diffs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "sent"),
    [
        ({}, {"a": "1"}, ["TagResource"]),
        ({"a": "1"}, {"a": "2"}, ["TagResource"]),
        ({"a": "1", "b": "2"}, {"a": "1"}, ["UntagResource"]),
        ({"a": "1", "b": "2"}, {"a": "9", "c": "3"}, ["UntagResource", "TagResource"]),
        ({"a": "1", "b": "2"}, {}, ["UntagResource"]),
        ({"a": "1"}, {"a": "1"}, []),
        ({}, {}, []),
    ],
    ids=["add", "change", "remove", "mix", "clear", "same", "none"],
)
async def test_a_tags_mask_sends_only_the_diff_and_no_update_room(
    facade: Facade, before: dict[str, str], after: dict[str, str], sent: list[str]
) -> None:
    room = await made(facade, before)
    answer = await update(facade, tagged(room.arn, after, name="ignored"), "tags")
    # The read that gives the room and its tags, then only the calls the diff needs.
    assert await calls(facade) == ["GetRoom", *sent]
    assert dict(answer.tags) == after
    assert (answer.name, answer.arn) == ("tagged", room.arn)
    assert await tags_now(facade, room.arn) == after
    if "UntagResource" in sent:
        assert facade.emulator.state.recorded("UntagResource")[0].status == 200
    if "TagResource" in sent:
        body = facade.emulator.state.recorded("TagResource")[0].body
        assert body["tags"] == {k: v for k, v in after.items() if before.get(k) != v}


async def test_fields_and_tags_send_update_room_first_and_answer_the_tags_after(
    facade: Facade,
) -> None:
    room = await made(facade, {"a": "1", "b": "2"})
    answer = await update(
        facade, tagged(room.arn, {"a": "1", "c": "3"}, name="renamed"), "name", "tags"
    )
    assert await calls(facade) == ["UpdateRoom", "UntagResource", "TagResource"]
    # UpdateRoom's answer holds the tags before the tag calls; the answer, after.
    assert (answer.name, dict(answer.tags)) == ("renamed", {"a": "1", "c": "3"})
    got = await facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10)
    assert answer == got


async def test_an_empty_mask_takes_tags_when_set_and_a_room_sent_back_changes_nothing(
    facade: Facade,
) -> None:
    room = await made(facade, {"a": "1"}, request_id=True)
    got = await facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10)
    facade.emulator.state.requests.clear()
    again = await update(facade, got)
    # The reserved tag, named, is checked against the room before UpdateRoom; no tag call.
    assert await calls(facade) == ["ListTagsForResource", "UpdateRoom"]
    assert dict(again.tags) == dict(got.tags)
    # An empty mask with tags set: they become the room's.
    facade.emulator.state.requests.clear()
    answer = await update(facade, tagged(room.arn, {"b": "2"}))
    assert await calls(facade) == ["GetRoom", "UntagResource", "TagResource"]
    assert dict(answer.tags) == {"b": "2", RESERVED_TAG: room.tags[RESERVED_TAG]}


async def test_star_with_no_tags_removes_every_tag_but_the_reserved_one(facade: Facade) -> None:
    room = await made(facade, {"a": "1", "b": "2"}, request_id=True)
    change = pb.Room(
        arn=room.arn, name="all", maximum_message_length=100, maximum_message_rate_per_second=5
    )
    answer = await update(facade, change, "*")
    assert await calls(facade) == ["UpdateRoom", "UntagResource"]
    assert facade.emulator.state.recorded("UntagResource")[0].status == 200
    assert dict(answer.tags) == {RESERVED_TAG: room.tags[RESERVED_TAG]}
    assert await tags_now(facade, room.arn) == {RESERVED_TAG: room.tags[RESERVED_TAG]}


async def test_tags_outside_a_mask_are_not_touched(facade: Facade) -> None:
    room = await made(facade, {"a": "1"})
    answer = await update(facade, tagged(room.arn, {}, name="renamed"), "name")
    assert await calls(facade) == ["UpdateRoom"]
    assert dict(answer.tags) == {"a": "1"}


# --- the reserved tag ----------------------------------------------------------------


async def test_a_map_that_omits_the_reserved_tag_keeps_it(facade: Facade) -> None:
    room = await made(facade, {"a": "1"}, request_id=True)
    answer = await update(facade, tagged(room.arn, {}), "tags")
    assert await calls(facade) == ["GetRoom", "UntagResource"]
    assert dict(answer.tags) == {RESERVED_TAG: room.tags[RESERVED_TAG]}
    assert await tags_now(facade, room.arn) == {RESERVED_TAG: room.tags[RESERVED_TAG]}


@pytest.mark.parametrize("with_fields", [False, True])
@pytest.mark.parametrize("has_reserved", [False, True], ids=["set", "change"])
async def test_setting_or_changing_the_reserved_tag_is_refused_before_anything_changes(
    facade: Facade, with_fields: bool, has_reserved: bool
) -> None:
    room = await made(facade, {"a": "1"}, request_id=has_reserved)
    change = tagged(room.arn, {"a": "2", RESERVED_TAG: str(uuid.uuid4())}, name="renamed")
    failed = await refused(facade, change, *(["name"] if with_fields else []), "tags")
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(failed)
    assert list(violations) == [RESERVED]
    assert "cannot be set or changed" in violations[RESERVED]
    # Only a read was sent: the room's fields and tags are as they were.
    assert await calls(facade) == ["ListTagsForResource" if with_fields else "GetRoom"]
    after = await facade.stub.GetRoom(pb.GetRoomRequest(arn=room.arn), timeout=10)
    assert (after.name, dict(after.tags)) == ("tagged", dict(room.tags))


# --- the 50-tag limit and the tag rules ------------------------------------------------


def many(count: int, prefix: str = "k") -> dict[str, str]:
    return {f"{prefix}{i:02}": "v" for i in range(count)}


@pytest.mark.parametrize(
    ("has_reserved", "names_reserved", "own", "ok"),
    [
        (False, False, TAGS_MAX, True),
        (False, False, TAGS_MAX + 1, False),
        (True, False, TAGS_MAX - 1, True),
        (True, False, TAGS_MAX, False),
        (True, True, TAGS_MAX - 1, True),
        (True, True, TAGS_MAX, False),
    ],
    ids=["50", "51", "49+reserved", "50+reserved", "49+reserved-named", "50+reserved-named"],
)
async def test_the_50_tag_limit_counts_the_reserved_tag(
    facade: Facade, has_reserved: bool, names_reserved: bool, own: int, ok: bool
) -> None:
    room = await made(facade, {}, request_id=has_reserved)
    desired = many(own)
    if names_reserved:
        desired[RESERVED_TAG] = room.tags[RESERVED_TAG]
    if ok:
        answer = await update(facade, tagged(room.arn, desired, name="n"), "name", "tags")
        assert dict(answer.tags) == {**desired, **dict(room.tags)}
        assert await tags_now(facade, room.arn) == dict(answer.tags)
        return
    failed = await refused(facade, tagged(room.arn, desired, name="n"), "name", "tags")
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(failed)) == ["room.tags"]
    # 51 entries are the model's limit, refused before any call; the reserved tag's, after a read.
    after_a_read = has_reserved and not names_reserved
    assert await calls(facade) == (["ListTagsForResource"] if after_a_read else [])
    assert (await tags_now(facade, room.arn)) == dict(room.tags)


async def test_replacing_tags_at_the_limit_removes_before_it_sets(facade: Facade) -> None:
    room = await made(facade, many(TAGS_MAX - 1), request_id=True)
    desired = many(TAGS_MAX - 1, prefix="new")
    answer = await update(facade, tagged(room.arn, desired), "tags")
    assert await calls(facade) == ["GetRoom", "UntagResource", "TagResource"]
    assert dict(answer.tags) == {**desired, RESERVED_TAG: room.tags[RESERVED_TAG]}
    assert await tags_now(facade, room.arn) == dict(answer.tags)


async def test_bad_keys_and_values_are_all_named_and_nothing_is_sent(facade: Facade) -> None:
    room = await made(facade, {"a": "1"})
    # (An aws: key is checked against the room's own: test_attack18.py.)
    bad = {"k" * 129: "v", "ok": "v" * 257, "semi;colon": "v", "": "v"}
    failed = await refused(facade, tagged(room.arn, bad, name="x"), "name", "tags")
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(failed)
    assert set(violations) == {
        f'room.tags["{"k" * 129}"]',
        'room.tags["ok"]',
        'room.tags["semi;colon"]',
        'room.tags[""]',
    }
    assert await calls(facade) == []


async def test_a_tags_path_with_a_bad_field_is_refused_whole(facade: Facade) -> None:
    failed = await refused(facade, pb.Room(arn="bad", tags={"a;x": "v"}), "tags", "nope")
    assert set(field_violations(failed)) == {"update_mask", "room.arn", 'room.tags["a;x"]'}
    assert await calls(facade) == []


# --- partial updates -------------------------------------------------------------------

INTERNAL, DROP, THROTTLE = "InternalServerException", "drop", "ThrottlingException"


def fault(operation: str, kind: str, **more: Any) -> FaultRule:
    if kind == DROP:
        return FaultRule(operation=operation, drop=True, **more)
    return FaultRule(operation=operation, error=kind, **more)


@pytest.mark.parametrize(
    ("operation", "kind", "code", "reason", "report"),
    [
        (
            "TagResource",
            INTERNAL,
            grpc.StatusCode.INTERNAL,
            INTERNAL,
            {"applied": "fields,tags_removed", "maybe_applied": "tags_set"},
        ),
        (
            "TagResource",
            DROP,
            grpc.StatusCode.INTERNAL,
            "AWS_CONNECTION_LOST",
            {"applied": "fields,tags_removed", "maybe_applied": "tags_set"},
        ),
        (
            "TagResource",
            THROTTLE,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            THROTTLE,
            {"applied": "fields,tags_removed", "not_applied": "tags_set"},
        ),
        (
            "TagResource",
            "ResourceNotFoundException",
            grpc.StatusCode.NOT_FOUND,
            "ResourceNotFoundException",
            {"applied": "fields,tags_removed", "not_applied": "tags_set"},
        ),
        (
            "UntagResource",
            INTERNAL,
            grpc.StatusCode.INTERNAL,
            INTERNAL,
            {"applied": "fields", "maybe_applied": "tags_removed", "not_applied": "tags_set"},
        ),
        (
            "UntagResource",
            DROP,
            grpc.StatusCode.INTERNAL,
            "AWS_CONNECTION_LOST",
            {"applied": "fields", "maybe_applied": "tags_removed", "not_applied": "tags_set"},
        ),
        (
            "UntagResource",
            THROTTLE,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            THROTTLE,
            {"applied": "fields", "not_applied": "tags"},
        ),
        (
            "UpdateRoom",
            INTERNAL,
            grpc.StatusCode.INTERNAL,
            INTERNAL,
            {"maybe_applied": "fields", "not_applied": "tags"},
        ),
        (
            "UpdateRoom",
            "AccessDeniedException",
            grpc.StatusCode.PERMISSION_DENIED,
            "AccessDeniedException",
            {"not_applied": "fields,tags"},
        ),
    ],
)
async def test_a_failed_call_says_which_parts_were_applied_and_a_repeat_converges(
    facade: Facade, operation: str, kind: str, code: grpc.StatusCode, reason: str, report: Any
) -> None:
    room = await made(facade, {"a": "1", "b": "2"})
    change = tagged(room.arn, {"a": "9", "c": "3"}, name="renamed")
    facade.emulator.state.faults.add(fault(operation, kind))
    failed = await refused(facade, change, "name", "tags")
    assert failed.code() is code
    assert error_info(failed).reason == reason
    assert report_of(failed) == report
    message = failed.details() or ""
    assert operation in message
    assert "of this update, " in message
    assert message.endswith("the same request sent again converges")
    # Resendable outcomes were resent, within the attempts; the rest were not.
    # (A dropped DELETE, UntagResource's, aiohttp itself sends once more.)
    sent = facade.emulator.state.recorded(operation)
    assert (len(sent) > 1) is (kind in (INTERNAL, DROP, THROTTLE))
    # The same request again, once AWS is well, ends where it should have.
    facade.emulator.state.faults.clear()
    answer = await update(facade, change, "name", "tags")
    assert (answer.name, dict(answer.tags)) == ("renamed", {"a": "9", "c": "3"})
    assert await tags_now(facade, room.arn) == {"a": "9", "c": "3"}


async def test_a_repeat_after_tags_applied_unseen_sends_no_tag_call(facade: Facade) -> None:
    room = await made(facade, {"a": "1"})
    change = tagged(room.arn, {"a": "2"}, name="renamed")
    # TagResource runs every time and answers 500: AWS did it, the service cannot know.
    facade.emulator.state.faults.add(fault("TagResource", INTERNAL, create=True))
    failed = await refused(facade, change, "name", "tags")
    assert error_info(failed).metadata["maybe_applied"] == "tags"
    assert error_info(failed).metadata["tags_may_be_changed"] == "true"
    facade.emulator.state.faults.clear()
    facade.emulator.state.requests.clear()
    answer = await update(facade, change, "name", "tags")
    assert dict(answer.tags) == {"a": "2"}
    assert await calls(facade) == ["UpdateRoom"]  # the diff, taken afresh, is empty


async def test_an_ambiguous_tag_call_is_resent_and_the_update_succeeds(facade: Facade) -> None:
    room = await made(facade, {"a": "1"})
    facade.emulator.state.faults.add(fault("UntagResource", INTERNAL, create=True, times=1))
    facade.emulator.state.faults.add(fault("TagResource", DROP, times=1))
    answer = await update(facade, tagged(room.arn, {"b": "2"}), "tags")
    assert dict(answer.tags) == {"b": "2"}
    assert [r.status for r in facade.emulator.state.recorded("UntagResource")] == [500, 200]
    assert len(facade.emulator.state.recorded("TagResource")) == 2


async def test_a_tags_only_update_whose_read_fails_applied_nothing(facade: Facade) -> None:
    room = await made(facade, {"a": "1"})
    facade.emulator.state.faults.add(fault("GetRoom", "AccessDeniedException"))
    failed = await refused(facade, tagged(room.arn, {"b": "2"}), "tags")
    assert failed.code() is grpc.StatusCode.PERMISSION_DENIED
    assert report_of(failed) == {"not_applied": "tags"}
    assert await calls(facade) == ["GetRoom"]


async def test_a_failed_first_read_of_the_tags_applied_nothing(facade: Facade) -> None:
    room = await made(facade, {"a": "1"}, request_id=True)
    desired = {"b": "2", RESERVED_TAG: room.tags[RESERVED_TAG]}
    facade.emulator.state.faults.add(fault("ListTagsForResource", INTERNAL))
    failed = await refused(facade, tagged(room.arn, desired, name="renamed"), "name", "tags")
    # A read resent after each 500, then given up: nothing that changes the room was sent.
    assert failed.code() is grpc.StatusCode.INTERNAL
    assert report_of(failed) == {"not_applied": "fields,tags"}
    assert "tags_may_be_changed" not in error_info(failed).metadata
    assert set(await calls(facade)) == {"ListTagsForResource"}


async def test_a_room_deleted_before_its_tags_is_not_found_with_the_fields_applied(
    facade: Facade,
) -> None:
    room = await made(facade, {"a": "1"})
    # The room goes between UpdateRoom and TagResource.
    facade.emulator.state.faults.add(FaultRule(operation="TagResource", latency_ms=3000, times=1))
    change = tagged(room.arn, {"a": "2"}, name="x")
    call = asyncio.ensure_future(update(facade, change, "name", "tags"))
    await until(lambda: facade.emulator.state.recorded("TagResource"))
    await facade.stub.DeleteRoom(pb.DeleteRoomRequest(arn=room.arn), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert report_of(caught.value) == {"applied": "fields", "not_applied": "tags"}


@pytest.mark.parametrize(
    ("rule", "code", "reason", "report"),
    [
        # The tag call is out to AWS when the deadline comes: it may have run.
        (
            FaultRule(operation="TagResource", latency_ms=5000),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "DEADLINE_EXCEEDED",
            {"applied": "fields", "maybe_applied": "tags"},
        ),
        # Throttled, and its next slot opens after the deadline: shed at once, unsent.
        (
            FaultRule(operation="TagResource", error=THROTTLE),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "RATE_LIMIT_EXCEEDED",
            {"applied": "fields", "not_applied": "tags"},
        ),
    ],
    ids=["out-to-aws", "throttled"],
)
async def test_the_deadline_during_the_tags_says_what_was_applied(
    make_facade: MakeFacade,
    rule: FaultRule,
    code: grpc.StatusCode,
    reason: str,
    report: dict[str, str],
) -> None:
    # TagResource's slots 10 s apart: once throttled, a call's next slot is
    # past its deadline.
    async with make_facade(operation_rates={"TagResource": 0.1}) as facade:
        room = await made(facade, {"a": "1"})
        facade.emulator.state.faults.add(rule)
        change = tagged(room.arn, {"a": "2"}, name="renamed")
        failed = await refused(facade, change, "name", "tags", deadline_s=2)
    assert failed.code() is code
    assert error_info(failed).reason == reason
    assert report_of(failed) == report


async def test_the_drain_answers_an_update_mid_tags_with_what_was_applied(
    make_facade: MakeFacade,
) -> None:
    async with make_facade(grace_s=0.5) as facade:
        room = await made(facade, {"a": "1"})
        facade.emulator.state.faults.add(FaultRule(operation="TagResource", latency_ms=5000))
        change = tagged(room.arn, {"a": "2"}, name="renamed")
        call = asyncio.ensure_future(update(facade, change, "name", "tags", deadline_s=30))
        await until(lambda: facade.emulator.state.recorded("TagResource"))
        await facade.service.drain(0.5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    info = error_info(caught.value)
    assert info.reason == "SHUTDOWN_IN_FLIGHT"
    assert info.metadata["tags_may_be_changed"] == "true"
    assert (info.metadata["applied"], info.metadata["maybe_applied"]) == ("fields", "tags")


# --- the parts, alone ------------------------------------------------------------------


def test_the_diff_never_touches_the_reserved_tag_nor_aws_own() -> None:
    current = {RESERVED_TAG: "id", "aws:cloudformation:stack-name": "s", "a": "1", "b": "2"}
    assert diff(current, {"a": "1", "c": "3"}) == TagDiff(set={"c": "3"}, remove=("b",))
    assert diff(current, {RESERVED_TAG: "id"}) == TagDiff(set={}, remove=("a", "b"))


def test_the_tags_are_named_apart_only_when_their_calls_ended_apart() -> None:
    progress = Progress(fields=True)
    progress.sending(Part.FIELDS)
    progress.done()
    remove, set_ = progress.plan(TagDiff(set={"a": "1"}, remove=("b",)))
    assert (remove, set_) == (Part.TAGS_REMOVED, Part.TAGS_SET)
    progress.sending(remove)
    assert progress.report(maybe_ran=False).metadata() == {
        "applied": "fields",
        "not_applied": "tags",
    }
    progress.done()
    progress.sending(set_)
    assert progress.report(maybe_ran=True).metadata() == {
        "applied": "fields,tags_removed",
        "maybe_applied": "tags_set",
    }
