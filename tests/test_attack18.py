"""An attack on issue 18's work: logging configurations, tags through Update, exactly-once.

Each test is a finding: sound where it passes as first written, or the test a
fix came with (the commit says which).
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as lc_pb_grpc
from ivschat.v1 import room_service_pb2 as room_pb
from ivschat_grpc.aws import convert
from ivschat_grpc.aws.adapter import IvsChat
from ivschat_grpc.aws.connection import AwsConnection, StaticCredentials
from ivschat_grpc.core.calls import AwsCallError
from ivschat_grpc.core.creator import (
    LOGGING_CONFIGURATIONS,
    RESERVED_TAG,
    Creator,
    certainly_not_created,
)
from ivschat_grpc.core.idempotency import MemoryStore
from ivschat_grpc.core.operations import OPERATIONS
from ivschat_grpc.core.outcomes import Outcome
from ivschat_grpc.core.pacing import Pacer
from ivschat_grpc.emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    Emulator,
    FaultRule,
)

from tests.support.facade import Facade
from tests.support.richstatus import field_violations
from tests.support.waiting import until

CREATE = "CreateLoggingConfiguration"


def tagged(emu: Emulator, request_id: str) -> list[str]:
    """The configurations at the endpoint that carry request_id's tag."""
    return [
        c["arn"]
        for c in emu.state.logging_configurations.values()
        if c["tags"].get(RESERVED_TAG) == request_id
    ]


async def adapter(emu: Emulator, stack: AsyncExitStack, **kwargs: Any) -> IvsChat:
    settings = AwsConnection(
        region=DEFAULT_REGION, endpoint_url=emu.url, create_rate=None, **kwargs
    )
    pacers = {name: Pacer(None, settings.max_in_flight) for name in OPERATIONS}
    credentials = StaticCredentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)
    return await IvsChat.open(settings, stack, pacers, credentials)


# --- 1. a certain failure after an ambiguous attempt -------------------------------


async def test_a_certain_failure_after_an_unseen_create_leaves_the_repeat_to_find_it(
    emulator: Emulator,
) -> None:
    # The first create's answer is lost (the read times out at 0.3 s) and the
    # lookup after it finds nothing, since AWS is still at work; the retry is
    # refused for certain (the account's quota). AWS then finishes the first.
    # A repeat of the request must find that configuration, not make another:
    # the refusal came after an ambiguity, so the create may have run.
    request = lc_pb.CreateLoggingConfigurationRequest(
        logging_configuration=lc_pb.LoggingConfiguration(
            name="late", s3=lc_pb.S3Destination(bucket_name="chat-logs")
        ),
        request_id=str(uuid.uuid4()),
    )
    params = convert.to_create_logging_configuration_params(request)
    emulator.state.faults.add(FaultRule(operation=CREATE, latency_ms=1500, times=1))
    emulator.state.faults.add(
        FaultRule(operation=CREATE, error=Outcome.QUOTA_EXCEEDED.value, times=1)
    )
    async with AsyncExitStack() as stack:
        aws = await adapter(emulator, stack, read_timeout_s=0.3)
        creator = Creator(
            aws, MemoryStore(3600, 60), lease_s=60, settle_s=0.3, kind=LOGGING_CONFIGURATIONS
        )
        with pytest.raises(AwsCallError) as caught:
            await creator.create(request, params, 10)
        # Not the quota's certain no, which would tell the caller nothing was
        # made: the first attempt's ambiguity, since that create may have run.
        assert caught.value.code != Outcome.QUOTA_EXCEEDED
        assert not certainly_not_created(caught.value)
        await until(lambda: len(tagged(emulator, request.request_id)) == 1)
        repeat = await creator.create(request, params, 10)
        await creator.close()
    assert tagged(emulator, request.request_id) == [repeat.resource.arn]


# --- 2. AWS's own tags on a resource read and sent back ------------------------------

STACK_TAG = "aws:cloudformation:stack-name"


def plant_aws_tag(emu: Emulator, arn: str) -> None:
    """Give the resource at arn a tag of AWS's own, as CloudFormation gives what it makes."""
    for resource in (*emu.state.rooms.values(), *emu.state.logging_configurations.values()):
        if resource["arn"] == arn:
            resource["tags"][STACK_TAG] = "chat-stack"


async def test_a_room_read_and_sent_back_with_aws_own_tag_updates(facade: Facade) -> None:
    made = await facade.stub.CreateRoom(
        room_pb.CreateRoomRequest(name="stacked", tags={"team": "a"}), timeout=10
    )
    plant_aws_tag(facade.emulator, made.room.arn)
    room = await facade.stub.GetRoom(room_pb.GetRoomRequest(arn=made.room.arn), timeout=10)
    assert room.tags[STACK_TAG] == "chat-stack"
    # Read, change, send back (AIP-134): the tag AWS set comes back as it was.
    room.tags["team"] = "b"
    room.name = "renamed"
    answer = await facade.stub.UpdateRoom(room_pb.UpdateRoomRequest(room=room), timeout=10)
    assert dict(answer.tags) == {STACK_TAG: "chat-stack", "team": "b"}
    masked = await facade.stub.UpdateRoom(
        room_pb.UpdateRoomRequest(room=room, update_mask=field_mask_pb2.FieldMask(paths=["tags"])),
        timeout=10,
    )
    assert dict(masked.tags) == {STACK_TAG: "chat-stack", "team": "b"}
    assert facade.emulator.state.recorded("UntagResource") == []


@pytest.mark.parametrize(
    ("key", "value"), [(STACK_TAG, "another-stack"), ("AWS:made-up", "x"), ("aws:new", "1")]
)
async def test_setting_or_changing_an_aws_tag_is_refused_naming_it_before_anything_changes(
    facade: Facade, key: str, value: str
) -> None:
    lc = lc_pb_grpc.LoggingConfigurationServiceStub(facade.channel)
    config = await lc.CreateLoggingConfiguration(
        lc_pb.CreateLoggingConfigurationRequest(
            logging_configuration=lc_pb.LoggingConfiguration(
                s3=lc_pb.S3Destination(bucket_name="chat-logs"), tags={"team": "a"}
            )
        ),
        timeout=10,
    )
    plant_aws_tag(facade.emulator, config.arn)
    facade.emulator.state.requests.clear()
    sent = lc_pb.LoggingConfiguration(
        arn=config.arn, name="renamed", tags={STACK_TAG: "chat-stack", key: value}
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lc.UpdateLoggingConfiguration(
            lc_pb.UpdateLoggingConfigurationRequest(
                logging_configuration=sent,
                update_mask=field_mask_pb2.FieldMask(paths=["name", "tags"]),
            ),
            timeout=10,
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(caught.value)) == [f'logging_configuration.tags["{key}"]']
    # Only the read was sent: nothing changed.
    assert [r.operation for r in facade.emulator.state.requests] == ["ListTagsForResource"]
