"""A logging configuration's tags through UpdateLoggingConfiguration, end to end.

The same tag diff and partial-update report as UpdateRoom's (core/tag_sync.py,
tested at length in test_room_tags.py); here, that they hold for the second
kind of resource: its own update operation, its own read, its field paths.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from ivschat.v1 import logging_configuration_service_pb2 as pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as pb_grpc
from ivschat_grpc.core.creator import RESERVED_TAG
from ivschat_grpc.emulator import FaultRule

from tests.support.facade import Facade
from tests.support.richstatus import error_info, field_violations

UPDATE = "UpdateLoggingConfiguration"


def stub(facade: Facade) -> pb_grpc.LoggingConfigurationServiceAsyncStub:
    return pb_grpc.LoggingConfigurationServiceStub(facade.channel)


async def made(facade: Facade, tags: dict[str, str], *, request_id: bool = False) -> str:
    config = pb.LoggingConfiguration(s3=pb.S3Destination(bucket_name="chat-logs"), tags=tags)
    request = pb.CreateLoggingConfigurationRequest(logging_configuration=config)
    if request_id:
        request.request_id = str(uuid.uuid4())
    arn = (await stub(facade).CreateLoggingConfiguration(request, timeout=20)).arn
    facade.emulator.state.requests.clear()
    return arn


async def update(facade: Facade, config: pb.LoggingConfiguration, *paths: str) -> Any:
    request = pb.UpdateLoggingConfigurationRequest(
        logging_configuration=config, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
    return await stub(facade).UpdateLoggingConfiguration(request, timeout=10)


async def refused(facade: Facade, config: pb.LoggingConfiguration, *paths: str) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await update(facade, config, *paths)
    return caught.value


async def tags_now(facade: Facade, arn: str) -> dict[str, str]:
    got = await stub(facade).GetLoggingConfiguration(
        pb.GetLoggingConfigurationRequest(arn=arn), timeout=10
    )
    return dict(got.tags)


def operations(facade: Facade) -> list[str]:
    return [r.operation for r in facade.emulator.state.recorded()]


async def test_get_returns_the_tags_with_the_reserved_one(facade: Facade) -> None:
    arn = await made(facade, {"team": "red"}, request_id=True)
    tags = await tags_now(facade, arn)
    assert tags["team"] == "red"
    assert RESERVED_TAG in tags


async def test_a_tags_mask_sends_only_the_diff_and_no_update(facade: Facade) -> None:
    arn = await made(facade, {"a": "1", "b": "2"})
    answer = await update(
        facade, pb.LoggingConfiguration(arn=arn, tags={"a": "9", "c": "3"}), "tags"
    )
    assert dict(answer.tags) == {"a": "9", "c": "3"}
    assert operations(facade) == ["GetLoggingConfiguration", "UntagResource", "TagResource"]
    assert await tags_now(facade, arn) == {"a": "9", "c": "3"}


async def test_name_and_tags_send_the_update_first_then_the_tags(facade: Facade) -> None:
    arn = await made(facade, {"a": "1"})
    change = pb.LoggingConfiguration(arn=arn, name="renamed", tags={"b": "2"})
    answer = await update(facade, change, "name", "tags")
    assert (answer.name, dict(answer.tags)) == ("renamed", {"b": "2"})
    assert operations(facade) == [UPDATE, "UntagResource", "TagResource"]


async def test_star_with_no_tags_removes_every_tag_but_the_reserved_one(facade: Facade) -> None:
    arn = await made(facade, {"a": "1"}, request_id=True)
    change = pb.LoggingConfiguration(arn=arn, s3=pb.S3Destination(bucket_name="other"))
    answer = await update(facade, change, "*")
    assert list(answer.tags) == [RESERVED_TAG]
    assert list(await tags_now(facade, arn)) == [RESERVED_TAG]


async def test_the_reserved_tag_cannot_be_set_changed_or_removed(facade: Facade) -> None:
    arn = await made(facade, {}, request_id=True)
    kept = (await tags_now(facade, arn))[RESERVED_TAG]
    changed = pb.LoggingConfiguration(arn=arn, tags={RESERVED_TAG: str(uuid.uuid4())})
    failed = await refused(facade, changed, "tags")
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
    path = f'logging_configuration.tags["{RESERVED_TAG}"]'
    assert list(field_violations(failed)) == [path]
    assert UPDATE not in operations(facade)
    assert "TagResource" not in operations(facade)
    # A map that leaves it out keeps it: it is never removed.
    await update(facade, pb.LoggingConfiguration(arn=arn, tags={"x": "1"}), "tags")
    assert await tags_now(facade, arn) == {RESERVED_TAG: kept, "x": "1"}
    # Set on one that has none, it is refused too.
    plain = await made(facade, {})
    failed = await refused(
        facade, pb.LoggingConfiguration(arn=plain, tags={RESERVED_TAG: kept}), "tags"
    )
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_bad_tags_are_named_at_their_proto_path_and_nothing_is_sent(
    facade: Facade,
) -> None:
    arn = await made(facade, {})
    bad = pb.LoggingConfiguration(arn=arn, tags={"a;x": "1", "k" * 129: "v", "v": "x" * 257})
    failed = await refused(facade, bad, "tags")
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
    fields = set(field_violations(failed))
    assert all(f.startswith("logging_configuration.tags") for f in fields), fields
    assert len(fields) == 3
    assert operations(facade) == []


async def test_a_failed_tag_call_after_the_update_says_so_and_a_repeat_converges(
    facade: Facade,
) -> None:
    arn = await made(facade, {"a": "1"})
    change = pb.LoggingConfiguration(arn=arn, name="renamed", tags={"a": "1", "b": "2"})
    facade.emulator.state.faults.add(
        FaultRule(operation="TagResource", error="AccessDeniedException")
    )
    failed = await refused(facade, change, "name", "tags")
    assert failed.code() is grpc.StatusCode.PERMISSION_DENIED
    metadata = error_info(failed).metadata
    assert (metadata["applied"], metadata["not_applied"]) == ("fields", "tags")
    assert "the same request sent again converges" in (failed.details() or "")
    facade.emulator.state.faults.clear()
    answer = await update(facade, change, "name", "tags")
    assert (answer.name, dict(answer.tags)) == ("renamed", {"a": "1", "b": "2"})
    assert await tags_now(facade, arn) == {"a": "1", "b": "2"}


async def test_a_failed_update_applied_nothing(facade: Facade) -> None:
    arn = await made(facade, {"a": "1"})
    facade.emulator.state.faults.add(FaultRule(operation=UPDATE, error="ConflictException"))
    change = pb.LoggingConfiguration(arn=arn, name="renamed", tags={"b": "2"})
    failed = await refused(facade, change, "name", "tags")
    assert error_info(failed).metadata["not_applied"] == "fields,tags"
    assert await tags_now(facade, arn) == {"a": "1"}
