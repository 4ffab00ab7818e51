"""The RoomService servicer: validate, call the adapter, translate. Nothing else."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps
from typing import Any, Final, TypeVar

import grpc
from google.protobuf import empty_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc

from ivschat_grpc import errors
from ivschat_grpc.api.batch_stream import Batch, BatchLimits
from ivschat_grpc.aws import convert, request_checks
from ivschat_grpc.core.calls import Answer, CallControl, CallFailed, Operations
from ivschat_grpc.core.creator import Creator, Result
from ivschat_grpc.core.lifecycle import Lifecycle
from ivschat_grpc.core.operations import OPERATIONS
from ivschat_grpc.core.outcomes import Outcome
from ivschat_grpc.core.page_tokens import PageTokens
from ivschat_grpc.core.violations import Violation
from ivschat_grpc.runtime.telemetry import Metrics, rpc_fields

log = logging.getLogger(__name__)

# The AWS operation these calls make, as the error messages name it.
_CREATE_ROOM: Final = "CreateRoom"


# The share of a caller's remaining time kept back for the answer's way home,
# so a DEADLINE_EXCEEDED with details reaches the caller before its own timer
# fires and leaves it with a bare status.
ANSWER_MARGIN: Final = 0.1
ANSWER_MARGIN_MAX_S: Final = 0.1


def aws_timeout(remaining_s: float | None, default_s: float) -> float:
    """The time an AWS call may take inside a call with remaining_s left."""
    if remaining_s is None:
        return default_s
    return max(0.0, remaining_s - min(remaining_s * ANSWER_MARGIN, ANSWER_MARGIN_MAX_S))


def _answered(
    context: grpc.aio.ServicerContext[Any, Any], request_id: str | None, attempts: int
) -> None:
    """Log an answered call's AWS request id and attempts, and put the id in the trailers."""
    rpc_fields().update(aws_request_id=request_id, attempts=attempts)
    if request_id:
        context.set_trailing_metadata(((errors.REQUEST_ID_KEY, request_id),))


S = TypeVar("S")
T = TypeVar("T")
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
            if context.done():
                raise asyncio.CancelledError from None  # the call ended under us
            log.exception("%s failed unexpectedly", handler.__name__)
            await errors.abort(context, errors.unexpected())

    return run


class RoomService(pb_grpc.RoomServiceServicer):
    """RoomService exposes IVS Chat's rooms over gRPC: create, batch, get, list, update, delete."""

    def __init__(
        self,
        creator: Creator,
        aws: Operations,
        default_timeout_s: float,
        batch_limits: BatchLimits,
        max_streams: int,
        metrics: Metrics,
        lifecycle: Lifecycle,
        page_tokens: PageTokens,
    ) -> None:
        self._creator = creator
        self._page_tokens = page_tokens
        self._aws = aws
        self._lifecycle = lifecycle
        self._default_timeout_s = default_timeout_s
        self._batch_limits = batch_limits
        self._max_streams = max_streams
        self._metrics = metrics
        self._batches: set[Batch] = set()
        # Unary calls at work, by the task that runs them; and, once the drain
        # must answer them, the answer each is owed.
        self._calls: dict[asyncio.Task[Any], tuple[CallControl, bool, str]] = {}
        self._interruptions = errors.Interruptions()

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
        for task, (control, with_request_id, operation) in self._calls.items():
            control.stopped = True  # nothing more is sent for it
            # A read changed nothing, so "retry" is true of it whatever happened.
            may_have_run = control.may_have_created(with_request_id) or control.maybe_ran
            self._interruptions.interrupt(
                task,
                errors.build(Outcome.SHUT_DOWN_IN_FLIGHT, operation=operation)
                if may_have_run and OPERATIONS[operation].changes
                else errors.shutting_down(),
            )

    @guarded
    async def CreateRoom(
        self,
        request: pb.CreateRoomRequest,
        context: grpc.aio.ServicerContext[pb.CreateRoomRequest, pb.CreateRoomResponse],
    ) -> pb.CreateRoomResponse:
        """Create one room, or end with the error table's status."""
        params, violations = request_checks.create_room(request)

        def create(timeout: float, control: CallControl) -> Awaitable[Result]:
            return self._creator.create(request, params, timeout, control=control)

        created = await self._at_aws(
            context,
            _CREATE_ROOM,
            violations,
            create,
            with_request_id=request.HasField("request_id"),
        )
        assert created is not None  # noqa: S101 - nothing is tolerated: a failure aborted
        _answered(context, created.aws_request_id, created.attempts)
        return pb.CreateRoomResponse(room=created.room)

    @guarded
    async def GetRoom(
        self,
        request: pb.GetRoomRequest,
        context: grpc.aio.ServicerContext[pb.GetRoomRequest, pb.Room],
    ) -> pb.Room:
        """Read one room, or end with the error table's status."""
        params, violations = request_checks.get_room(request)
        answer = await self._at_aws(context, "GetRoom", violations, self._send("GetRoom", params))
        assert answer is not None  # noqa: S101 - nothing is tolerated: a failure aborted
        _answered(context, answer.request_id, answer.attempts)
        return convert.to_room(answer.result)

    @guarded
    async def ListRooms(
        self,
        request: pb.ListRoomsRequest,
        context: grpc.aio.ServicerContext[pb.ListRoomsRequest, pb.ListRoomsResponse],
    ) -> pb.ListRoomsResponse:
        """One page of rooms; AWS's nextToken goes back sealed, bound to the filters."""
        params, violations = request_checks.list_rooms(request, self._page_tokens)
        send = self._send("ListRooms", params)
        answer = await self._at_aws(context, "ListRooms", violations, send)
        assert answer is not None  # noqa: S101 - nothing is tolerated: a failure aborted
        _answered(context, answer.request_id, answer.attempts)
        aws_token = answer.result.get("nextToken")
        filters = request_checks.list_filters(request)
        return pb.ListRoomsResponse(
            rooms=[convert.to_room_summary(r) for r in answer.result.get("rooms", ())],
            next_page_token=self._page_tokens.issue(aws_token, filters) if aws_token else "",
        )

    @guarded
    async def UpdateRoom(
        self,
        request: pb.UpdateRoomRequest,
        context: grpc.aio.ServicerContext[pb.UpdateRoomRequest, pb.Room],
    ) -> pb.Room:
        """Change the masked fields of one room, or end with the error table's status."""
        params, violations = request_checks.update_room(request)
        send = self._send("UpdateRoom", params)
        answer = await self._at_aws(context, "UpdateRoom", violations, send)
        assert answer is not None  # noqa: S101 - nothing is tolerated: a failure aborted
        _answered(context, answer.request_id, answer.attempts)
        return convert.to_room(answer.result)

    @guarded
    async def DeleteRoom(
        self,
        request: pb.DeleteRoomRequest,
        context: grpc.aio.ServicerContext[pb.DeleteRoomRequest, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        """Delete one room; a missing one is NOT_FOUND unless allow_missing.

        A NOT_FOUND is no failure either when an earlier attempt, resent, may
        have run: it deleted the room, and its answer was lost.
        """
        params, violations = request_checks.delete_room(request)

        def gone(error: CallFailed, control: CallControl) -> bool:
            missing = error.code == Outcome.NOT_FOUND
            return missing and (request.allow_missing or control.maybe_ran)

        send = self._send("DeleteRoom", params)
        answer = await self._at_aws(context, "DeleteRoom", violations, send, tolerate=gone)
        if answer is not None:
            _answered(context, answer.request_id, answer.attempts)
        return empty_pb2.Empty()

    def _send(
        self, operation: str, params: dict[str, Any]
    ) -> Callable[[float, CallControl], Awaitable[Answer]]:
        """A send of operation with params through the adapter, for _at_aws."""

        def send(timeout: float, control: CallControl) -> Awaitable[Answer]:
            return self._aws.call(operation, params, timeout, control=control)

        return send

    async def _at_aws(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        operation: str,
        violations: list[Violation],
        send: Callable[[float, CallControl], Awaitable[T]],
        *,
        with_request_id: bool = False,
        tolerate: Callable[[CallFailed, CallControl], bool] | None = None,
    ) -> T | None:
        """Refuse violations, or send within the caller's deadline; a failure ends the call.

        The call is registered for the drain, which may end it with the answer
        it is owed. A failure tolerate accepts ends nothing: the answer is None,
        and AWS's request id goes in the trailers.
        """
        if violations:
            await errors.abort(context, errors.invalid_request(violations))
        timeout = aws_timeout(context.time_remaining(), self._default_timeout_s)
        control = CallControl()
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - grpc runs every call in a task
        self._calls[task] = (control, with_request_id, operation)
        try:
            return await send(timeout, control)
        except CallFailed as e:
            if tolerate is not None and tolerate(e, control):
                _answered(context, e.request_id, e.attempts)
                return None
            rpc_fields().update(aws_request_id=e.request_id, attempts=e.attempts)
            await errors.abort(context, errors.from_failed(e, operation))
        except asyncio.CancelledError:
            owed = self._interruptions.take(task)
            if owed is None:
                raise
            await errors.abort(context, owed)
        finally:
            del self._calls[task]
            self._interruptions.forget(task)

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
