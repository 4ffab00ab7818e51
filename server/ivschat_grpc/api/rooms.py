"""The RoomService servicer: validate, call the adapter, translate. Nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc

from ivschat_grpc import errors
from ivschat_grpc.api.batch_stream import Batch, BatchLimits
from ivschat_grpc.api.unary import AwsServicer, guarded
from ivschat_grpc.aws import convert, request_checks
from ivschat_grpc.core.calls import Operations
from ivschat_grpc.core.creator import Creator
from ivschat_grpc.core.lifecycle import Lifecycle
from ivschat_grpc.core.page_tokens import PageTokens
from ivschat_grpc.runtime.telemetry import Metrics

log = logging.getLogger(__name__)


class RoomService(AwsServicer, pb_grpc.RoomServiceServicer):
    """RoomService exposes IVS Chat's rooms over gRPC: create, batch, get, list, update, delete."""

    def __init__(
        self,
        creator: Creator[pb.Room],
        aws: Operations,
        default_timeout_s: float,
        batch_limits: BatchLimits,
        max_streams: int,
        metrics: Metrics,
        lifecycle: Lifecycle,
        page_tokens: PageTokens,
    ) -> None:
        super().__init__(aws, default_timeout_s)
        self._creator = creator
        self._page_tokens = page_tokens
        self._lifecycle = lifecycle
        self._batch_limits = batch_limits
        self._max_streams = max_streams
        self._metrics = metrics
        self._batches: set[Batch] = set()

    def begin_drain(self) -> None:
        """Make every open batch stop reading and finish what it has read."""
        for batch in self._batches:
            batch.begin_drain()

    def answer_now(self) -> None:
        """Answer every call and batch item still at work, as the grace period ends.

        Whatever is out to AWS is answered INTERNAL with room_may_exist; a call
        not yet sent is stopped and answered UNAVAILABLE, since nothing ran.
        """
        for batch in self._batches:
            batch.answer_in_flight()
        super().answer_now()

    @guarded
    async def CreateRoom(
        self,
        request: pb.CreateRoomRequest,
        context: grpc.aio.ServicerContext[pb.CreateRoomRequest, pb.CreateRoomResponse],
    ) -> pb.CreateRoomResponse:
        """Create one room, or end with the error table's status."""
        checked = request_checks.create_room(request)
        return pb.CreateRoomResponse(
            room=await self._created(context, self._creator, request, checked)
        )

    @guarded
    async def GetRoom(
        self,
        request: pb.GetRoomRequest,
        context: grpc.aio.ServicerContext[pb.GetRoomRequest, pb.Room],
    ) -> pb.Room:
        """Read one room, or end with the error table's status."""
        result = await self._result(context, "GetRoom", request_checks.get_room(request))
        return convert.to_room(result)

    @guarded
    async def ListRooms(
        self,
        request: pb.ListRoomsRequest,
        context: grpc.aio.ServicerContext[pb.ListRoomsRequest, pb.ListRoomsResponse],
    ) -> pb.ListRoomsResponse:
        """One page of rooms; AWS's nextToken goes back sealed, bound to the filters."""
        result = await self._result(
            context, "ListRooms", request_checks.list_rooms(request, self._page_tokens)
        )
        aws_token = result.get("nextToken")
        filters = request_checks.list_filters(request)
        return pb.ListRoomsResponse(
            rooms=[convert.to_room_summary(r) for r in result.get("rooms", ())],
            next_page_token=(
                self._page_tokens.issue(aws_token, filters, listing="ListRooms")
                if aws_token
                else ""
            ),
        )

    @guarded
    async def UpdateRoom(
        self,
        request: pb.UpdateRoomRequest,
        context: grpc.aio.ServicerContext[pb.UpdateRoomRequest, pb.Room],
    ) -> pb.Room:
        """Change the masked fields and tags of one room, or end with the error table's status."""
        return convert.to_room(await self._update(context, request_checks.update_room(request)))

    @guarded
    async def DeleteRoom(
        self,
        request: pb.DeleteRoomRequest,
        context: grpc.aio.ServicerContext[pb.DeleteRoomRequest, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        """Delete one room; a missing one is NOT_FOUND unless allow_missing (_deleted)."""
        checked = request_checks.delete_room(request)
        await self._deleted(context, "DeleteRoom", checked, allow_missing=request.allow_missing)
        return empty_pb2.Empty()

    async def BatchCreateRooms(
        self,
        request_iterator: AsyncIterator[pb.BatchCreateRoomsRequest],
        context: grpc.aio.ServicerContext[pb.BatchCreateRoomsRequest, pb.BatchCreateRoomsResponse],
    ) -> AsyncIterator[pb.BatchCreateRoomsResponse]:
        """Create a room per item, answering each once; see batch.py."""
        if len(self._batches) >= self._max_streams:
            await errors.abort(context, errors.too_many_streams(self._max_streams))
        batch = Batch(
            self._creator, request_iterator, self._batch_limits, self._lifecycle, self._metrics
        )
        self._batches.add(batch)
        try:
            async for response in batch.responses():
                yield response
        except Exception:
            log.exception("BatchCreateRooms failed unexpectedly")
            await errors.abort(context, errors.unexpected())
        finally:
            self._batches.discard(batch)
        if batch.draining:
            await errors.abort(context, errors.shutting_down(stream_ended=True))
        if batch.idled:
            await errors.abort(context, errors.idle(self._batch_limits.idle_timeout_s or 0.0))
