"""The RoomService servicer: validate, call the adapter, translate. Nothing else."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc

from ivschat_grpc import contract, convert, errors
from ivschat_grpc.aws import AwsCallError, IvsChat

log = logging.getLogger(__name__)


async def abort(context: grpc.aio.ServicerContext[Any, Any], failure: errors.Failure) -> NoReturn:
    """End the RPC with failure's code, message and rich details."""
    await context.abort(failure.code, failure.message, failure.trailing_metadata())
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[S, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]


def guarded(handler: Handler[S, Req, Resp]) -> Handler[S, Req, Resp]:
    """Turn a bug into INTERNAL with ErrorInfo, never UNKNOWN with its text."""

    @wraps(handler)
    async def run(self: S, request: Req, context: grpc.aio.ServicerContext[Req, Resp]) -> Resp:
        try:
            return await handler(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("%s failed unexpectedly", handler.__name__)
            await abort(context, errors.unexpected())

    return run


class RoomService(pb_grpc.RoomServiceServicer):
    """RoomService exposes IVS Chat's CreateRoom over gRPC."""

    def __init__(self, aws: IvsChat, default_timeout_s: float) -> None:
        self._aws = aws
        self._default_timeout_s = default_timeout_s

    @guarded
    async def CreateRoom(
        self,
        request: pb.CreateRoomRequest,
        context: grpc.aio.ServicerContext[pb.CreateRoomRequest, pb.CreateRoomResponse],
    ) -> pb.CreateRoomResponse:
        """Create one room, or end with the error table's status."""
        params = convert.to_aws_params(request)
        violations = contract.check_create_room(params)
        if violations:
            await abort(context, errors.invalid_request(violations))
        remaining = context.time_remaining()
        timeout = self._default_timeout_s if remaining is None else remaining
        try:
            created = await self._aws.create_room(params, timeout)
        except AwsCallError as e:
            failure = errors.from_aws(
                e.code, http_status=e.http_status, fields=e.fields, request_id=e.request_id
            )
            log.info("CreateRoom failed: %s after %d attempt(s)", e.code, e.attempts)
            await abort(context, failure)
        if created.request_id:
            context.set_trailing_metadata(((errors.REQUEST_ID_KEY, created.request_id),))
        return pb.CreateRoomResponse(room=convert.to_room(created.room))
