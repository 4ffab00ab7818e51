"""CreateRoom end to end: a real server, the real aioboto3 client, the local endpoint."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.cli import healthcheck
from ivschat_grpc.emulator import Emulator, FaultRule

from tests.support.env import use_emulator_credentials
from tests.support.facade import LOGGING_ARNS, Facade, facade_settings, serving
from tests.support.richstatus import detail, error_info, field_violations, status_of, trailer
from tests.support.waiting import until

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:review"


def created_count(emu: Emulator) -> int:
    return len(emu.state.rooms)


def create_calls(emu: Emulator) -> int:
    return len(emu.state.recorded("CreateRoom"))


async def test_minimal_request_sends_nothing_and_gets_aws_defaults(facade: Facade) -> None:
    call = facade.stub.CreateRoom(pb.CreateRoomRequest(), timeout=10)
    room = (await call).room
    [sent] = facade.emulator.state.recorded("CreateRoom")
    assert sent.body == {}
    stored = facade.emulator.state.rooms[room.id]
    assert room.arn == stored["arn"] == f"arn:aws:ivschat:us-east-1:123456789012:room/{room.id}"
    assert len(room.id) == 12
    assert room.name == ""
    assert room.maximum_message_length == 500
    assert room.maximum_message_rate_per_second == 10
    assert not room.HasField("message_review_handler")
    assert dict(room.tags) == {}
    assert list(room.logging_configuration_identifiers) == []
    created = room.create_time.ToDatetime(tzinfo=UTC)
    assert abs(datetime.now(UTC) - created).total_seconds() < 60
    assert room.update_time == room.create_time
    assert dict(await call.trailing_metadata())["aws-request-id"] == sent.request_id


async def test_maximal_request_round_trips_every_field(facade: Facade) -> None:
    tags = {f"{i:03d}" + "k" * 125: "v" * 256 for i in range(50)}
    request = pb.CreateRoomRequest(
        name="N" * 128,
        maximum_message_length=500,
        maximum_message_rate_per_second=100,
        tags=tags,
        logging_configuration_identifiers=list(LOGGING_ARNS),
    )
    request.message_review_handler.uri = LAMBDA
    request.message_review_handler.fallback_result = pb.FALLBACK_RESULT_DENY
    room = (await facade.stub.CreateRoom(request, timeout=10)).room
    [sent] = facade.emulator.state.recorded("CreateRoom")
    assert sent.body == {
        "name": "N" * 128,
        "maximumMessageLength": 500,
        "maximumMessageRatePerSecond": 100,
        "messageReviewHandler": {"uri": LAMBDA, "fallbackResult": "DENY"},
        "tags": tags,
        "loggingConfigurationIdentifiers": list(LOGGING_ARNS),
    }
    stored = facade.emulator.state.rooms[room.id]
    assert room.arn == stored["arn"]
    assert room.name == "N" * 128
    assert room.maximum_message_length == 500
    assert room.maximum_message_rate_per_second == 100
    assert room.message_review_handler.uri == LAMBDA
    assert room.message_review_handler.fallback_result == pb.FALLBACK_RESULT_DENY
    assert dict(room.tags) == tags
    assert list(room.logging_configuration_identifiers) == list(LOGGING_ARNS)
    assert (
        room.create_time.ToDatetime(tzinfo=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
        == stored["createTime"]
    )


async def test_explicit_zero_is_validated_not_defaulted(facade: Facade) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(maximum_message_length=0), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert create_calls(facade.emulator) == 0


async def test_unspecified_fallback_lets_aws_apply_allow(facade: Facade) -> None:
    request = pb.CreateRoomRequest()
    request.message_review_handler.uri = LAMBDA
    room = (await facade.stub.CreateRoom(request, timeout=10)).room
    assert facade.emulator.state.recorded("CreateRoom")[0].body == {
        "messageReviewHandler": {"uri": LAMBDA}
    }
    assert room.message_review_handler.fallback_result == pb.FALLBACK_RESULT_ALLOW


# Each row of the error table, driven by the endpoint's fault injection:
# (AWS error, gRPC code, detail type the row adds, rooms left, CreateRoom calls made)
ERROR_TABLE = [
    ("AccessDeniedException", grpc.StatusCode.PERMISSION_DENIED, None, 0, 1),
    (
        "PendingVerification",
        grpc.StatusCode.FAILED_PRECONDITION,
        error_details_pb2.PreconditionFailure,
        0,
        1,
    ),
    ("ResourceNotFoundException", grpc.StatusCode.NOT_FOUND, error_details_pb2.ResourceInfo, 0, 1),
    ("ConflictException", grpc.StatusCode.ABORTED, error_details_pb2.ResourceInfo, 0, 1),
    (
        "ServiceQuotaExceededException",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        error_details_pb2.QuotaFailure,
        0,
        1,
    ),
    ("InternalServerException", grpc.StatusCode.INTERNAL, None, 0, 1),
    ("ServiceUnavailable", grpc.StatusCode.UNAVAILABLE, error_details_pb2.RetryInfo, 0, 1),
    # Throttled calls did not run at AWS, so they are retried, up to 4 attempts.
    ("ThrottlingException", grpc.StatusCode.RESOURCE_EXHAUSTED, error_details_pb2.RetryInfo, 0, 4),
]


@pytest.mark.parametrize(
    ("aws_error", "code", "kind", "rooms", "calls"), ERROR_TABLE, ids=[r[0] for r in ERROR_TABLE]
)
async def test_error_table_row(
    facade: Facade,
    aws_error: str,
    code: grpc.StatusCode,
    kind: type | None,
    rooms: int,
    calls: int,
) -> None:
    facade.emulator.state.faults.add(FaultRule(error=aws_error))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(name="x"), timeout=10)
    err = info.value
    assert err.code() == code
    assert error_info(err).reason == aws_error
    assert error_info(err).domain == "ivschat.amazonaws.com"
    if kind is not None:
        detail(status_of(err), kind)
    assert created_count(facade.emulator) == rooms
    assert create_calls(facade.emulator) == calls
    recorded = facade.emulator.state.recorded("CreateRoom")
    assert trailer(err, "aws-request-id") == recorded[-1].request_id
    assert "Traceback" not in (err.details() or "")
    assert "botocore" not in (err.details() or "")


async def test_resource_and_quota_details_carry_aws_fields(facade: Facade) -> None:
    facade.emulator.state.faults.add(
        FaultRule(error="ServiceQuotaExceededException", times=1, fields={"limit": 1000}),
        FaultRule(error="ConflictException", times=1, fields={"resourceId": "AbCd"}),
    )
    with pytest.raises(grpc.aio.AioRpcError) as quota:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(), timeout=10)
    violation = detail(status_of(quota.value), error_details_pb2.QuotaFailure).violations[0]
    assert violation.description == "limit 1000"
    with pytest.raises(grpc.aio.AioRpcError) as conflict:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(), timeout=10)
    info = detail(status_of(conflict.value), error_details_pb2.ResourceInfo)
    assert (info.resource_type, info.resource_name) == ("ROOM", "AbCd")


async def test_aws_validation_exception_becomes_bad_request(facade: Facade) -> None:
    facade.emulator.state.faults.add(
        FaultRule(
            error="ValidationException",
            fields={
                "fieldList": [
                    {"name": "maximumMessageLength", "message": "too long"},
                    {"name": "loggingConfigurationIdentifiers[1]", "message": "bad"},
                    {"name": "tags[team]", "message": "bad tag"},
                ]
            },
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(info.value).reason == "ValidationException"
    assert field_violations(info.value) == {
        "maximum_message_length": "too long",
        "logging_configuration_identifiers[1]": "bad",
        'tags["team"]': "bad tag",
    }
    assert create_calls(facade.emulator) == 1


async def test_unknown_logging_configuration_is_not_found(facade: Facade) -> None:
    missing = "arn:aws:ivschat:us-east-1:123456789012:logging-configuration/Missing"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(
            pb.CreateRoomRequest(logging_configuration_identifiers=[missing]), timeout=10
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    resource = detail(status_of(info.value), error_details_pb2.ResourceInfo)
    assert resource.resource_name == "Missing"


async def test_throttling_once_is_absorbed(facade: Facade) -> None:
    facade.emulator.state.faults.add(FaultRule(error="ThrottlingException", times=2))
    room = (await facade.stub.CreateRoom(pb.CreateRoomRequest(name="t"), timeout=10)).room
    assert room.name == "t"
    assert create_calls(facade.emulator) == 3
    assert created_count(facade.emulator) == 1


@pytest.mark.parametrize("create", [False, True], ids=["not-created", "created"])
async def test_internal_error_is_never_retried(facade: Facade, create: bool) -> None:
    facade.emulator.state.faults.add(FaultRule(error="InternalServerException", create=create))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert error_info(info.value).metadata["room_may_exist"] == "true"
    assert create_calls(facade.emulator) == 1
    assert created_count(facade.emulator) == int(create)


@pytest.mark.parametrize("create", [False, True], ids=["before-create", "after-create"])
async def test_dropped_connection_is_never_retried(facade: Facade, create: bool) -> None:
    facade.emulator.state.faults.add(FaultRule(drop=True, create=create))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert error_info(info.value).reason == "AWS_CONNECTION_LOST"
    assert error_info(info.value).metadata["room_may_exist"] == "true"
    assert create_calls(facade.emulator) == 1
    assert created_count(facade.emulator) == int(create)


async def test_deadline_shorter_than_latency(
    facade: Facade, caplog: pytest.LogCaptureFixture
) -> None:
    facade.emulator.state.faults.add(FaultRule(latency_ms=3000))
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await facade.stub.CreateRoom(pb.CreateRoomRequest(), timeout=0.5)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The server answers just before the caller's own timer, with details.
        assert error_info(info.value).reason == "DEADLINE_EXCEEDED"
        assert error_info(info.value).metadata["room_may_exist"] == "true"
    # A request out when its caller's answer went may reach the endpoint after
    # it, on a loaded machine: "may exist" is the truth, so wait for each.
    await until(lambda: create_calls(facade.emulator) >= 5)
    assert create_calls(facade.emulator) == 5
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_server_default_deadline_applies_without_a_client_deadline(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_emulator_credentials(monkeypatch)
    emulator.state.faults.add(FaultRule(latency_ms=3000))
    settings = facade_settings(emulator, default_timeout_s=0.3, grace_s=0.1)
    async with serving(settings) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.RoomServiceStub(channel).CreateRoom(pb.CreateRoomRequest())
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_info(info.value).reason == "DEADLINE_EXCEEDED"
    assert error_info(info.value).metadata["room_may_exist"] == "true"
    assert create_calls(emulator) == 1


async def test_unreachable_endpoint_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    use_emulator_credentials(monkeypatch)
    # A bound socket that never listens refuses connections, and holding it
    # keeps any other process from taking the port meanwhile.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        settings = facade_settings(Emulator(), endpoint_url=url, grace_s=0.1)
        async with serving(settings) as (_, channel):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pb_grpc.RoomServiceStub(channel).CreateRoom(
                    pb.CreateRoomRequest(), timeout=10
                )
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(info.value).reason == "AWS_UNREACHABLE"
    detail(status_of(info.value), error_details_pb2.RetryInfo)


async def test_refused_credentials_are_internal(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_emulator_credentials(monkeypatch)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    async with serving(facade_settings(emulator, grace_s=0.1)) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.RoomServiceStub(channel).CreateRoom(pb.CreateRoomRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert error_info(info.value).reason == "AWS_CREDENTIALS_REFUSED"
    assert error_info(info.value).metadata["aws_error_code"] == "InvalidSignatureException"
    assert "not-the-secret" not in (info.value.details() or "")
    assert created_count(emulator) == 0


async def test_missing_credentials_are_internal(emulator: Emulator) -> None:
    async with serving(facade_settings(emulator, grace_s=0.1)) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.RoomServiceStub(channel).CreateRoom(pb.CreateRoomRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert error_info(info.value).reason == "AWS_CREDENTIALS_MISSING"
    assert create_calls(emulator) == 0


async def test_health_serving_and_reflection(facade: Facade) -> None:
    for service in ("", "ivschat.v1.RoomService"):
        status = await healthcheck.check(facade.channel, service)
        assert status == health_pb2.HealthCheckResponse.SERVING
    reflect = facade.channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    call = reflect(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names: set[str] = set()
    async for reply in call:
        names |= {s.name for s in reply.list_services_response.service}
    assert {"ivschat.v1.RoomService", "grpc.health.v1.Health"} <= names
