"""LoggingConfigurationService end to end: a real server, aioboto3 and the local endpoint.

Every RPC, its boundaries, each modeled error, paging, masks, and exactly-once
creation; the fault matrix, the SIGKILL and the shared buckets are in
test_fault_matrix.py, test_durable.py and test_scale_out.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from ivschat.v1 import logging_configuration_service_pb2 as pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as pb_grpc
from ivschat.v1 import room_service_pb2 as room_pb
from ivschat_grpc.core.creator import RESERVED_TAG
from ivschat_grpc.emulator import Emulator, EmulatorSettings, FaultRule

from tests.support.facade import LOGGING_ARNS, Facade, MakeFacade, facade_with
from tests.support.richstatus import detail, error_info, field_violations, status_of, trailer
from tests.support.waiting import until

MISSING = "arn:aws:ivschat:us-east-1:123456789012:logging-configuration/AbCdEfGhIjKl"
# The emulator fixture's account holds these three already, of its ten.
HELD = len(LOGGING_ARNS)
ACCOUNT_QUOTA = 10
CREATE = "CreateLoggingConfiguration"


def stub(facade: Facade) -> pb_grpc.LoggingConfigurationServiceAsyncStub:
    return pb_grpc.LoggingConfigurationServiceStub(facade.channel)


def s3(bucket: str = "chat-logs", **fields: Any) -> pb.LoggingConfiguration:
    return pb.LoggingConfiguration(s3=pb.S3Destination(bucket_name=bucket), **fields)


async def create(
    facade: Facade, config: pb.LoggingConfiguration, request_id: str | None = None
) -> pb.LoggingConfiguration:
    request = pb.CreateLoggingConfigurationRequest(
        logging_configuration=config, request_id=request_id
    )
    return await stub(facade).CreateLoggingConfiguration(request, timeout=20)


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def sent(facade: Facade, operation: str) -> list[Any]:
    """The bodies of operation's requests that the endpoint received."""
    return [r.body for r in facade.emulator.state.recorded(operation)]


def tagged(emu: Emulator, request_id: str) -> list[str]:
    """The configurations at the endpoint that carry request_id's tag."""
    return [
        c["arn"]
        for c in emu.state.logging_configurations.values()
        if c["tags"].get(RESERVED_TAG) == request_id
    ]


# --- the RPCs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "destination"),
    [
        (s3("chat-logs"), {"s3": {"bucketName": "chat-logs"}}),
        (
            pb.LoggingConfiguration(
                cloud_watch_logs=pb.CloudWatchLogsDestination(log_group_name="/ivs/chat")
            ),
            {"cloudWatchLogs": {"logGroupName": "/ivs/chat"}},
        ),
        (
            pb.LoggingConfiguration(
                firehose=pb.FirehoseDestination(delivery_stream_name="chat.stream")
            ),
            {"firehose": {"deliveryStreamName": "chat.stream"}},
        ),
    ],
    ids=["s3", "cloud_watch_logs", "firehose"],
)
async def test_create_get_list_and_delete_each_destination(
    facade: Facade, config: pb.LoggingConfiguration, destination: dict[str, Any]
) -> None:
    config.name = "audit"
    config.tags["team"] = "red"
    made = await create(facade, config)
    assert sent(facade, CREATE) == [
        {"name": "audit", "destinationConfiguration": destination, "tags": {"team": "red"}}
    ]
    assert made.arn.endswith(f":logging-configuration/{made.id}")
    assert len(made.id) == 12
    assert made.WhichOneof("destination") == config.WhichOneof("destination")
    assert (made.name, dict(made.tags)) == ("audit", {"team": "red"})
    assert made.state == pb.LOGGING_CONFIGURATION_STATE_ACTIVE
    assert made.create_time.seconds > 0
    assert made.update_time.seconds > 0
    got = await stub(facade).GetLoggingConfiguration(
        pb.GetLoggingConfigurationRequest(arn=made.arn), timeout=10
    )
    assert got == made
    page = await stub(facade).ListLoggingConfigurations(
        pb.ListLoggingConfigurationsRequest(), timeout=10
    )
    (summary,) = [c for c in page.logging_configurations if c.arn == made.arn]
    assert summary.SerializeToString() == made.SerializeToString()  # every field, the same
    assert page.next_page_token == ""
    await stub(facade).DeleteLoggingConfiguration(
        pb.DeleteLoggingConfigurationRequest(arn=made.arn), timeout=10
    )
    assert made.arn not in facade.emulator.state.logging_configurations


async def test_each_call_puts_aws_request_id_in_the_trailers(facade: Facade) -> None:
    call = stub(facade).CreateLoggingConfiguration(
        pb.CreateLoggingConfigurationRequest(logging_configuration=s3()), timeout=10
    )
    await call
    (record,) = facade.emulator.state.recorded(CREATE)
    assert dict(await call.trailing_metadata())["aws-request-id"] == record.request_id


async def test_update_sends_only_the_masked_name(facade: Facade) -> None:
    made = await create(facade, s3(name="before"))
    change = s3("ignored-bucket", arn=made.arn, name="after")
    answer = await update(facade, change, "name")
    assert sent(facade, "UpdateLoggingConfiguration") == [{"identifier": made.arn, "name": "after"}]
    assert (answer.name, answer.s3.bucket_name) == ("after", "chat-logs")
    assert answer.tags == made.tags  # AWS's Update returns the tags


async def update(facade: Facade, config: pb.LoggingConfiguration, *paths: str) -> Any:
    request = pb.UpdateLoggingConfigurationRequest(
        logging_configuration=config, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
    return await stub(facade).UpdateLoggingConfiguration(request, timeout=10)


async def test_a_masked_destination_replaces_the_old_one_whole(facade: Facade) -> None:
    made = await create(facade, s3(name="keep"))
    change = pb.LoggingConfiguration(
        arn=made.arn, firehose=pb.FirehoseDestination(delivery_stream_name="to-firehose")
    )
    answer = await update(facade, change, "firehose")
    assert sent(facade, "UpdateLoggingConfiguration") == [
        {
            "identifier": made.arn,
            "destinationConfiguration": {"firehose": {"deliveryStreamName": "to-firehose"}},
        }
    ]
    assert answer.WhichOneof("destination") == "firehose"
    assert answer.name == "keep"


@pytest.mark.parametrize(
    ("paths", "body"),
    [
        ((), {"name": "set", "destinationConfiguration": {"s3": {"bucketName": "new-bucket"}}}),
        (("*",), {"name": "set", "destinationConfiguration": {"s3": {"bucketName": "new-bucket"}}}),
        (("s3", "firehose"), {"destinationConfiguration": {"s3": {"bucketName": "new-bucket"}}}),
    ],
    ids=["empty-mask-sets-what-is-set", "star", "either-destination"],
)
async def test_masks_send_what_aip_134_says(
    facade: Facade, paths: tuple[str, ...], body: dict[str, Any]
) -> None:
    made = await create(facade, s3())
    await update(facade, s3("new-bucket", arn=made.arn, name="set"), *paths)
    assert sent(facade, "UpdateLoggingConfiguration") == [{"identifier": made.arn, **body}]


@pytest.mark.parametrize(
    ("config", "paths", "says"),
    [
        (s3(), ("state",), "names 'state'"),
        (s3(), ("s3.bucket_name",), "names 's3.bucket_name'"),
        (s3(), ("firehose",), "names firehose, but logging_configuration sets s3"),
        (pb.LoggingConfiguration(name="x"), ("s3",), "sets none"),
        (pb.LoggingConfiguration(name="x"), ("*",), "names a destination"),
    ],
    ids=["output-field", "sub-path", "other-destination", "none-set", "star"],
)
async def test_a_mask_that_cannot_be_sent_is_refused_naming_update_mask(
    facade: Facade, config: pb.LoggingConfiguration, paths: tuple[str, ...], says: str
) -> None:
    config.arn = MISSING
    error = await refused(update(facade, config, *paths))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error)
    assert list(violations) == ["update_mask"]
    assert says in violations["update_mask"]
    assert sent(facade, "UpdateLoggingConfiguration") == []


async def test_update_of_a_missing_configuration_is_not_found(facade: Facade) -> None:
    error = await refused(update(facade, s3(arn=MISSING, name="x"), "name"))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    info = detail(status_of(error), error_details_pb2.ResourceInfo)
    assert info.resource_name == "AbCdEfGhIjKl"


async def test_delete_is_not_found_then_ok_with_allow_missing(facade: Facade) -> None:
    error = await refused(
        stub(facade).DeleteLoggingConfiguration(
            pb.DeleteLoggingConfigurationRequest(arn=MISSING), timeout=10
        )
    )
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error_info(error).reason == "ResourceNotFoundException"
    assert "DeleteLoggingConfiguration" in (error.details() or "")
    await stub(facade).DeleteLoggingConfiguration(
        pb.DeleteLoggingConfigurationRequest(arn=MISSING, allow_missing=True), timeout=10
    )


async def test_a_delete_whose_answer_was_lost_is_resent_and_succeeds(facade: Facade) -> None:
    made = await create(facade, s3())
    facade.emulator.state.faults.add(
        FaultRule(operation="DeleteLoggingConfiguration", drop=True, create=True, times=1)
    )
    await stub(facade).DeleteLoggingConfiguration(
        pb.DeleteLoggingConfigurationRequest(arn=made.arn), timeout=10
    )
    # The first attempt deleted it; the resend found nothing, which is the answer sought.
    assert len(sent(facade, "DeleteLoggingConfiguration")) == 2
    assert made.arn not in facade.emulator.state.logging_configurations


async def test_get_is_resent_after_a_500(facade: Facade) -> None:
    facade.emulator.state.faults.add(
        FaultRule(operation="GetLoggingConfiguration", error="InternalServerException", times=1)
    )
    got = await stub(facade).GetLoggingConfiguration(
        pb.GetLoggingConfigurationRequest(arn=LOGGING_ARNS[0]), timeout=10
    )
    assert got.arn == LOGGING_ARNS[0]
    assert len(sent(facade, "GetLoggingConfiguration")) == 2


# --- boundaries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        s3(name="n" * 128),
        s3(name="A-z_0-9"),
        s3("abc"),
        s3("b" * 63),
        s3("a.b-c"),
        pb.LoggingConfiguration(
            cloud_watch_logs=pb.CloudWatchLogsDestination(log_group_name="g" * 512)
        ),
        pb.LoggingConfiguration(
            cloud_watch_logs=pb.CloudWatchLogsDestination(log_group_name="/a.b-c_d#e")
        ),
        pb.LoggingConfiguration(firehose=pb.FirehoseDestination(delivery_stream_name="f" * 64)),
        pb.LoggingConfiguration(firehose=pb.FirehoseDestination(delivery_stream_name="x")),
    ],
    ids=[
        "name-128",
        "name-chars",
        "bucket-3",
        "bucket-63",
        "bucket-chars",
        "log-group-512",
        "log-group-chars",
        "stream-64",
        "stream-1",
    ],
)
async def test_values_at_their_limits_are_created(
    facade: Facade, config: pb.LoggingConfiguration
) -> None:
    made = await create(facade, config)
    assert made.WhichOneof("destination") == config.WhichOneof("destination")
    assert made.name == config.name


@pytest.mark.parametrize(
    ("config", "field", "says"),
    [
        (s3(name="n" * 129), "logging_configuration.name", "0 to 128 characters long, not 129"),
        (s3(name="no spaces"), "logging_configuration.name", "pattern"),
        (s3("ab"), "logging_configuration.s3.bucket_name", "3 to 63 characters long, not 2"),
        (s3("b" * 64), "logging_configuration.s3.bucket_name", "3 to 63 characters long, not 64"),
        (s3("Upper"), "logging_configuration.s3.bucket_name", "pattern"),
        (
            pb.LoggingConfiguration(
                cloud_watch_logs=pb.CloudWatchLogsDestination(log_group_name="g" * 513)
            ),
            "logging_configuration.cloud_watch_logs.log_group_name",
            "1 to 512 characters long, not 513",
        ),
        (
            pb.LoggingConfiguration(cloud_watch_logs=pb.CloudWatchLogsDestination()),
            "logging_configuration.cloud_watch_logs.log_group_name",
            "pattern",  # and 1 to 512 characters: one field, two violations
        ),
        (
            pb.LoggingConfiguration(
                cloud_watch_logs=pb.CloudWatchLogsDestination(log_group_name="a b")
            ),
            "logging_configuration.cloud_watch_logs.log_group_name",
            "pattern",
        ),
        (
            pb.LoggingConfiguration(firehose=pb.FirehoseDestination(delivery_stream_name="f" * 65)),
            "logging_configuration.firehose.delivery_stream_name",
            "1 to 64 characters long, not 65",
        ),
        (
            pb.LoggingConfiguration(firehose=pb.FirehoseDestination(delivery_stream_name="a/b")),
            "logging_configuration.firehose.delivery_stream_name",
            "pattern",
        ),
        (
            pb.LoggingConfiguration(name="no-destination"),
            "logging_configuration",
            "exactly one destination: s3, cloud_watch_logs, firehose",
        ),
        (s3(tags={"aws:x": "1"}), 'logging_configuration.tags["aws:x"]', "aws:"),
        (s3(tags={RESERVED_TAG: "x"}), f'logging_configuration.tags["{RESERVED_TAG}"]', "reserved"),
    ],
    ids=[
        "name-129",
        "name-chars",
        "bucket-2",
        "bucket-64",
        "bucket-chars",
        "log-group-513",
        "log-group-empty",
        "log-group-chars",
        "stream-65",
        "stream-chars",
        "no-destination",
        "aws-tag",
        "reserved-tag",
    ],
)
async def test_a_bad_value_is_named_at_its_proto_path_and_never_sent(
    facade: Facade, config: pb.LoggingConfiguration, field: str, says: str
) -> None:
    error = await refused(create(facade, config))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error)
    assert list(violations) == [field]
    assert says in violations[field]
    assert sent(facade, CREATE) == []


async def test_every_violation_is_named_at_once(facade: Facade) -> None:
    config = s3("ab", name="n" * 129, tags={"aws:t": "v"})
    error = await refused(create(facade, config, request_id="not-a-uuid"))
    assert set(field_violations(error)) == {
        "logging_configuration.name",
        "logging_configuration.s3.bucket_name",
        'logging_configuration.tags["aws:t"]',
        "request_id",
    }


@pytest.mark.parametrize(
    ("arn", "says"),
    [
        ("", "logging-configuration"),  # and 1 to 128 characters long
        ("AbCdEfGhIjKl", "logging-configuration"),
        ("arn:aws:ivschat:us-east-1:123456789012:room/AbCdEfGhIjKl", "logging-configuration"),
        (MISSING + "x" * (129 - len(MISSING)), "1 to 128 characters long, not 129"),
    ],
    ids=["empty", "bare-id", "room-arn", "129-chars"],
)
@pytest.mark.parametrize("method", ["Get", "Delete", "Update"])
async def test_a_bad_arn_is_named_and_never_sent(
    facade: Facade, method: str, arn: str, says: str
) -> None:
    if method == "Update":
        call = update(facade, pb.LoggingConfiguration(arn=arn, name="x"), "name")
        field = "logging_configuration.arn"
    else:
        request = getattr(pb, f"{method}LoggingConfigurationRequest")(arn=arn)
        call = getattr(stub(facade), f"{method}LoggingConfiguration")(request, timeout=10)
        field = "arn"
    error = await refused(call)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error)
    assert list(violations) == [field]
    assert says in violations[field]
    assert facade.emulator.state.recorded(f"{method}LoggingConfiguration") == []


# --- each modeled error --------------------------------------------------------------


async def test_the_accounts_quota_is_resource_exhausted_with_its_limit(facade: Facade) -> None:
    for i in range(ACCOUNT_QUOTA - HELD):
        await create(facade, s3(name=f"c{i}"))
    error = await refused(create(facade, s3(name="one-too-many")))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(error).reason == "ServiceQuotaExceededException"
    quota = detail(status_of(error), error_details_pb2.QuotaFailure)
    assert quota.violations[0].description == f"limit {ACCOUNT_QUOTA}"
    assert len(facade.emulator.state.logging_configurations) == ACCOUNT_QUOTA


async def test_deleting_one_a_room_uses_is_aborted_as_a_conflict(facade: Facade) -> None:
    made = await create(facade, s3())
    room = room_pb.CreateRoomRequest(name="logged", logging_configuration_identifiers=[made.arn])
    await facade.stub.CreateRoom(room, timeout=10)
    error = await refused(
        stub(facade).DeleteLoggingConfiguration(
            pb.DeleteLoggingConfigurationRequest(arn=made.arn), timeout=10
        )
    )
    assert error.code() is grpc.StatusCode.ABORTED
    assert error_info(error).reason == "ConflictException"
    assert detail(status_of(error), error_details_pb2.ResourceInfo).resource_name == made.id
    assert made.arn in facade.emulator.state.logging_configurations


async def test_aws_validation_names_the_field_as_the_proto_does(facade: Facade) -> None:
    # AWS's own checks can refuse what the model allows; its fieldList is translated.
    field = {"name": "destinationConfiguration.s3.bucketName", "message": "no such bucket"}
    facade.emulator.state.faults.add(
        FaultRule(operation=CREATE, error="ValidationException", fields={"fieldList": [field]})
    )
    error = await refused(create(facade, s3()))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "ValidationException"
    assert field_violations(error) == {"logging_configuration.s3.bucket_name": "no such bucket"}


async def test_aws_validation_of_an_update_names_the_arn_inside_the_configuration(
    facade: Facade,
) -> None:
    field = {"name": "identifier", "message": "bad"}
    facade.emulator.state.faults.add(
        FaultRule(
            operation="UpdateLoggingConfiguration",
            error="ValidationException",
            fields={"fieldList": [field, {"name": "destinationConfiguration", "message": "one"}]},
        )
    )
    error = await refused(update(facade, s3(arn=LOGGING_ARNS[0]), "s3"))
    assert field_violations(error) == {
        "logging_configuration.arn": "bad",
        "logging_configuration": "one",
    }


@pytest.mark.parametrize(
    "operation",
    [
        CREATE,
        "GetLoggingConfiguration",
        "ListLoggingConfigurations",
        "UpdateLoggingConfiguration",
        "DeleteLoggingConfiguration",
    ],
)
async def test_access_denied_is_permission_denied_naming_the_operation(
    facade: Facade, operation: str
) -> None:
    facade.emulator.state.faults.add(FaultRule(operation=operation, error="AccessDeniedException"))
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        CREATE: lambda: create(facade, s3()),
        "GetLoggingConfiguration": lambda: stub(facade).GetLoggingConfiguration(
            pb.GetLoggingConfigurationRequest(arn=LOGGING_ARNS[0]), timeout=10
        ),
        "ListLoggingConfigurations": lambda: stub(facade).ListLoggingConfigurations(
            pb.ListLoggingConfigurationsRequest(), timeout=10
        ),
        "UpdateLoggingConfiguration": lambda: update(
            facade, s3(arn=LOGGING_ARNS[0], name="x"), "name"
        ),
        "DeleteLoggingConfiguration": lambda: stub(facade).DeleteLoggingConfiguration(
            pb.DeleteLoggingConfigurationRequest(arn=LOGGING_ARNS[0]), timeout=10
        ),
    }
    error = await refused(calls[operation]())
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "AccessDeniedException"
    assert operation in (error.details() or "")
    assert trailer(error, "aws-request-id")


@pytest.mark.parametrize(
    ("operation", "code"),
    [("PendingVerification", "FAILED_PRECONDITION"), ("ConflictException", "ABORTED")],
)
async def test_the_other_modeled_errors_of_create_follow_the_table(
    facade: Facade, operation: str, code: str
) -> None:
    facade.emulator.state.faults.add(FaultRule(operation=CREATE, error=operation))
    error = await refused(create(facade, s3()))
    assert error.code().name == code
    assert "logging_configuration_may_exist" not in error_info(error).metadata


# --- paging --------------------------------------------------------------------------


async def listed(facade: Facade, page_size: int, token: str = "") -> Any:
    request = pb.ListLoggingConfigurationsRequest(page_size=page_size, page_token=token)
    return await stub(facade).ListLoggingConfigurations(request, timeout=10)


@pytest.mark.parametrize("page_size", [1, 2, 4])
async def test_pages_of_any_size_hold_every_configuration_once(
    facade: Facade, page_size: int
) -> None:
    made = [(await create(facade, s3(name=f"p{i}"))).arn for i in range(2)]
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = await listed(facade, page_size, token)
        assert len(page.logging_configurations) <= page_size
        seen += [c.arn for c in page.logging_configurations]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted([*LOGGING_ARNS, *made])
    assert pages == -(-(HELD + 2) // page_size)


@pytest.mark.parametrize(("size", "sent_as"), [(0, 50), (50, 50), (51, 50), (1000, 50)])
async def test_page_size_is_coerced_to_at_most_50(facade: Facade, size: int, sent_as: int) -> None:
    await listed(facade, size)
    assert sent(facade, "ListLoggingConfigurations") == [{"maxResults": sent_as}]


async def test_a_negative_page_size_is_named_and_never_sent(facade: Facade) -> None:
    error = await refused(listed(facade, -1))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "must not be negative" in field_violations(error)["page_size"]
    assert sent(facade, "ListLoggingConfigurations") == []


@pytest.mark.parametrize(
    ("token", "says"),
    [("garbage", "another service instance"), ("x" * 5000, "another service instance")],
    ids=["garbage", "too-long"],
)
async def test_a_token_not_issued_here_is_refused_and_never_sent(
    facade: Facade, token: str, says: str
) -> None:
    error = await refused(listed(facade, 1, token))
    assert says in field_violations(error)["page_token"]
    assert sent(facade, "ListLoggingConfigurations") == []


async def test_a_list_rooms_token_is_refused_here_and_the_other_way_round(
    facade: Facade,
) -> None:
    for name in ("a", "b"):
        await facade.stub.CreateRoom(room_pb.CreateRoomRequest(name=name), timeout=10)
    rooms_token = (
        await facade.stub.ListRooms(room_pb.ListRoomsRequest(page_size=1), timeout=10)
    ).next_page_token
    error = await refused(listed(facade, 1, rooms_token))
    assert "was issued by ListRooms" in field_violations(error)["page_token"]
    ours = (await listed(facade, 1)).next_page_token
    error = await refused(facade.stub.ListRooms(room_pb.ListRoomsRequest(page_token=ours)))
    assert "was issued by ListLoggingConfigurations" in field_violations(error)["page_token"]


async def test_a_token_from_a_process_with_another_key_is_refused(
    facade: Facade, make_facade: MakeFacade
) -> None:
    token = (await listed(facade, 1)).next_page_token
    # Without Redis each process has a key of its own.
    async with make_facade(idempotency_store="memory") as other:
        error = await refused(listed(other, 1, token))
    assert "another service instance" in field_violations(error)["page_token"]


# --- exactly once --------------------------------------------------------------------


def rid() -> str:
    return str(uuid.uuid4())


async def test_a_repeated_request_id_returns_the_first_configuration(facade: Facade) -> None:
    request_id = rid()
    first = await create(facade, s3(name="once", tags={"team": "red"}), request_id)
    again = await create(facade, s3(name="once", tags={"team": "red"}), request_id)
    assert again == first
    assert first.tags[RESERVED_TAG] == request_id
    assert tagged(facade.emulator, request_id) == [first.arn]
    assert len(sent(facade, CREATE)) == 1


async def test_a_request_id_with_another_request_is_refused(facade: Facade) -> None:
    request_id = rid()
    await create(facade, s3(name="original"), request_id)
    error = await refused(create(facade, s3(name="different"), request_id))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "REQUEST_ID_REUSED"
    assert set(field_violations(error)) == {"request_id"}


async def test_one_request_id_makes_a_room_and_a_configuration_apart(facade: Facade) -> None:
    request_id = rid()
    room = await facade.stub.CreateRoom(
        room_pb.CreateRoomRequest(name="same-id", request_id=request_id), timeout=10
    )
    config = await create(facade, s3(name="same-id"), request_id)
    assert room.room.tags[RESERVED_TAG] == config.tags[RESERVED_TAG] == request_id


async def test_request_id_leaves_room_for_49_tags_only(facade: Facade) -> None:
    tags = {f"k{i}": "v" for i in range(50)}
    error = await refused(create(facade, s3(tags=tags), rid()))
    assert "at most 49 tags" in field_violations(error)["logging_configuration.tags"]
    made = await create(facade, s3(tags=tags))  # without request_id, 50 fit
    assert len(made.tags) == 50


@pytest.mark.parametrize(
    ("fault", "creates"),
    [
        (FaultRule(operation=CREATE, error="InternalServerException", create=True, times=1), 1),
        (FaultRule(operation=CREATE, drop=True, create=True, times=1), 1),
        (FaultRule(operation=CREATE, error="InternalServerException", times=1), 2),
        (FaultRule(operation=CREATE, drop=True, times=1), 2),
    ],
    ids=["500-created", "dropped-after", "500-not-created", "dropped-before"],
)
async def test_ambiguity_is_looked_up_before_any_retry(
    facade: Facade, fault: FaultRule, creates: int
) -> None:
    facade.emulator.state.faults.add(fault)
    request_id = rid()
    made = await create(facade, s3(name="ambiguous"), request_id)
    assert tagged(facade.emulator, request_id) == [made.arn]
    assert len(sent(facade, CREATE)) == creates  # a retry only when it was not created
    assert sent(facade, "ListLoggingConfigurations")  # it looked first


async def test_without_request_id_an_ambiguity_is_never_resent(facade: Facade) -> None:
    facade.emulator.state.faults.add(
        FaultRule(operation=CREATE, error="InternalServerException", create=True, times=1)
    )
    error = await refused(create(facade, s3(name="blind")))
    assert error.code() is grpc.StatusCode.INTERNAL
    assert error_info(error).metadata["logging_configuration_may_exist"] == "true"
    assert "the logging configuration may exist" in (error.details() or "")
    assert len(sent(facade, CREATE)) == 1
    assert sent(facade, "ListLoggingConfigurations") == []
    assert len(facade.emulator.state.logging_configurations) == HELD + 1


async def test_an_unresolved_ambiguity_says_so_and_a_later_retry_finds_it(
    facade: Facade,
) -> None:
    request_id = rid()
    facade.emulator.state.faults.add(
        FaultRule(operation=CREATE, error="InternalServerException", create=True, times=1),
        # Safe to resend, so the lookup tries it on every attempt (AwsConnection.max_attempts).
        FaultRule(operation="ListLoggingConfigurations", error="InternalServerException", times=4),
    )
    error = await refused(create(facade, s3(name="unclear"), request_id))
    assert error.code() is grpc.StatusCode.INTERNAL
    assert error_info(error).metadata["logging_configuration_may_exist"] == "true"
    made = await create(facade, s3(name="unclear"), request_id)
    assert tagged(facade.emulator, request_id) == [made.arn]
    assert len(sent(facade, CREATE)) == 1


@pytest.fixture
async def unlimited(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Facade]:
    """A facade on an endpoint whose account may hold any number of configurations."""
    settings = EmulatorSettings(create_room_rate=None, logging_configuration_quota=None)
    async with Emulator(settings) as emu, facade_with(emu, monkeypatch) as made:
        yield made


async def test_the_lookup_pages_through_every_configuration(unlimited: Facade) -> None:
    # More than one page of 50 before it, listed oldest first: it is on page two.
    for i in range(55):
        unlimited.emulator.state.create_logging_configuration(
            {"name": f"old{i}", "destinationConfiguration": {"s3": {"bucketName": "old"}}}
        )
    unlimited.emulator.state.faults.add(
        FaultRule(operation=CREATE, error="InternalServerException", create=True, times=1)
    )
    request_id = rid()
    made = await create(unlimited, s3(name="late"), request_id)
    assert tagged(unlimited.emulator, request_id) == [made.arn]
    assert len(sent(unlimited, CREATE)) == 1
    listings = sent(unlimited, "ListLoggingConfigurations")
    assert listings[0] == {"maxResults": 50}
    assert "nextToken" in listings[1]


async def test_a_late_duplicate_is_deleted_keeping_the_one_the_caller_was_given(
    make_facade: MakeFacade,
) -> None:
    # The first attempt answers 500 having made nothing, so the service looks,
    # finds nothing, and makes the configuration the caller gets. A create that
    # AWS runs late, tagged with the same id, lands afterwards; the second look
    # deletes it, and keeps the caller's.
    async with make_facade(idempotency_recheck_s=1.5) as facade:
        facade.emulator.state.faults.add(
            FaultRule(operation=CREATE, error="InternalServerException", times=1)
        )
        request_id = rid()
        made = await create(facade, s3(name="twice"), request_id)
        late = facade.emulator.state.create_logging_configuration(
            {
                "name": "twice",
                "destinationConfiguration": {"s3": {"bucketName": "chat-logs"}},
                "tags": {RESERVED_TAG: request_id},
            }
        )
        await until(lambda: len(sent(facade, "DeleteLoggingConfiguration")) == 1, 20)
        assert sent(facade, "DeleteLoggingConfiguration") == [{"identifier": late["arn"]}]
        assert tagged(facade.emulator, request_id) == [made.arn]
        assert await create(facade, s3(name="twice"), request_id) == made
