"""The fault matrix: every injected fault x call style x request_id, end to end.

Each cell asserts three things: the status the caller gets, how many rooms (or
logging configurations) exist at the endpoint afterwards (the documented 0 or
1), and that the answer came within the call's deadline. The styles are
CreateRoom, BatchCreateRooms and CreateLoggingConfiguration, which is no more
idempotent at AWS than CreateRoom. The matrix is printed at the end of the
test run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import grpc
import pytest
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as lc_pb_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc import errors
from ivschat_grpc.emulator import Emulator, FaultRule

from tests.support.facade import LOGGING_ARNS, Facade
from tests.support.faultmatrix import FAULT_MATRIX

DEADLINE_S = 10.0
SHORT_DEADLINE_S = 1.0
# Slack for the answer's way back over loopback, on top of the deadline.
ANSWER_SLACK_S = 0.5


@dataclass(frozen=True)
class Fault:
    """Fault is one row: a rule and, per request_id case, (status, rooms afterwards)."""

    name: str
    rule: FaultRule
    without_id: tuple[str, int]
    with_id: tuple[str, int]
    deadline_s: float = DEADLINE_S


def always(error: str, code: str) -> Fault:
    return Fault(error, FaultRule(error=error), (code, 0), (code, 0))


FAULTS = [
    always("ValidationException", "INVALID_ARGUMENT"),
    always("AccessDeniedException", "PERMISSION_DENIED"),
    always("PendingVerification", "FAILED_PRECONDITION"),
    always("ResourceNotFoundException", "NOT_FOUND"),
    always("ConflictException", "ABORTED"),
    always("ServiceQuotaExceededException", "RESOURCE_EXHAUSTED"),
    Fault(
        "500, not created",
        FaultRule(error="InternalServerException", times=1),
        ("INTERNAL", 0),
        ("OK", 1),
    ),
    Fault(
        "500 after creating",
        FaultRule(error="InternalServerException", create=True, times=1),
        ("INTERNAL", 1),
        ("OK", 1),
    ),
    always("ServiceUnavailable", "UNAVAILABLE"),
    Fault(
        "latency past the deadline",
        FaultRule(latency_ms=2500, times=1),
        ("DEADLINE_EXCEEDED", 1),
        ("DEADLINE_EXCEEDED", 1),
        deadline_s=SHORT_DEADLINE_S,
    ),
    Fault(
        "connection dropped before creating",
        FaultRule(drop=True, times=1),
        ("INTERNAL", 0),
        ("OK", 1),
    ),
    Fault(
        "connection dropped after creating",
        FaultRule(drop=True, create=True, times=1),
        ("INTERNAL", 1),
        ("OK", 1),
    ),
    Fault(
        "throttled on every attempt",
        FaultRule(error="ThrottlingException"),
        ("RESOURCE_EXHAUSTED", 0),
        ("RESOURCE_EXHAUSTED", 0),
    ),
]


async def call_unary(facade: Facade, request: pb.CreateRoomRequest, deadline_s: float) -> str:
    try:
        await facade.stub.CreateRoom(request, timeout=deadline_s)
    except grpc.aio.AioRpcError as e:
        return e.code().name
    return "OK"


async def call_batch(facade: Facade, request: pb.CreateRoomRequest, deadline_s: float) -> str:
    item = pb.BatchCreateRoomsRequest(correlation_id="only", room=request)
    try:
        async for response in facade.stub.BatchCreateRooms(iter([item]), timeout=deadline_s):
            if response.HasField("error"):
                return errors.code_name(response.error.code)
            return "OK"
    except grpc.aio.AioRpcError as e:
        return e.code().name  # the stream itself ended: its deadline passed first
    return "NO ANSWER"


async def call_logging(facade: Facade, request: pb.CreateRoomRequest, deadline_s: float) -> str:
    config = lc_pb.LoggingConfiguration(
        name=request.name, s3=lc_pb.S3Destination(bucket_name="b-1")
    )
    create = lc_pb.CreateLoggingConfigurationRequest(logging_configuration=config)
    if request.HasField("request_id"):
        create.request_id = request.request_id
    stub = lc_pb_grpc.LoggingConfigurationServiceStub(facade.channel)
    try:
        await stub.CreateLoggingConfiguration(create, timeout=deadline_s)
    except grpc.aio.AioRpcError as e:
        return e.code().name
    return "OK"


# Each style: how it calls, the operation its faults target, and what it makes.
STYLES: dict[str, tuple[Any, str]] = {
    "unary": (call_unary, "CreateRoom"),
    "batch": (call_batch, "CreateRoom"),
    "logging": (call_logging, "CreateLoggingConfiguration"),
}


def made(emu: Emulator, style: str) -> int:
    """How many rooms, or logging configurations beyond those the endpoint started with."""
    if style == "logging":
        return len(emu.state.logging_configurations) - len(LOGGING_ARNS)
    return len(emu.state.rooms)


async def settled(emu: Emulator) -> None:
    """Wait until the endpoint has finished every request it received (an injected delay too)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while any(r.status == 0 and r.error is None for r in emu.state.requests):
        assert loop.time() - start < 30, "the endpoint never finished"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("with_id", [False, True], ids=["no-request-id", "request-id"])
@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_fault_matrix(facade: Facade, fault: Fault, style: str, with_id: bool) -> None:
    call, operation = STYLES[style]
    facade.emulator.state.faults.add(replace(fault.rule, operation=operation))
    request = pb.CreateRoomRequest(name="matrix")
    if with_id:
        request.request_id = str(uuid.uuid4())
    started = time.monotonic()
    status = await call(facade, request, fault.deadline_s)
    elapsed = time.monotonic() - started
    # A request_id's owner finishes its work after the caller's deadline, so wait for that too.
    await settled(facade.emulator)
    await facade.service.lifecycle.calls_done()
    await facade.service.lifecycle.work_done()
    rooms = made(facade.emulator, style)
    expected_status, expected_rooms = fault.with_id if with_id else fault.without_id
    FAULT_MATRIX.append((fault.name, style, with_id, status, rooms, elapsed))
    assert status == expected_status
    assert rooms == expected_rooms
    assert elapsed <= fault.deadline_s + ANSWER_SLACK_S
