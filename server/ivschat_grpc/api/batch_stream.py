"""One BatchCreateRooms stream: read within a window, answer every item once.

The reader takes the next request only after a window slot frees up, and a
slot frees only when an item's response has been handed to gRPC. So a stream
holds at most `window` items in memory, and a client that stops reading its
responses stops the server reading its requests: its own stream stalls, and
nothing else does.

When a stream ends early, nothing more is sent to AWS. Items still waiting
for a send slot are stopped; an item whose request is already out is left to
finish, because AWS may be creating its room. On a client cancel or deadline
nobody is left to answer. On a server drain the stream stops reading,
answers what it has read (items never sent get UNAVAILABLE, safe to retry),
and the servicer then ends it with UNAVAILABLE. If the grace period is about
to end with items still out to AWS, each is answered INTERNAL with
room_may_exist first (`answer_in_flight`), never left to a bare "retry".

A stream that owes nothing (every item read has been answered and handed to
gRPC) and receives nothing for the idle timeout is closed UNAVAILABLE, so a
forgotten stream does not hold its place forever.

Every item read is answered exactly once, whatever happens to its task: a
done-callback answers for a task that ended without answering (cancelled
before it was sent: NOT_SENT; a bug: INTERNAL). The end marker is posted
from a finally, so the stream always ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final

from ivschat.v1 import room_service_pb2 as pb

from ivschat_grpc import errors
from ivschat_grpc.api.malformed import Undecodable
from ivschat_grpc.aws import request_checks
from ivschat_grpc.aws.message_limits import CORRELATION_ID_MAX
from ivschat_grpc.core.calls import CallControl, CallFailed
from ivschat_grpc.core.creator import Creator
from ivschat_grpc.core.lifecycle import Lifecycle
from ivschat_grpc.core.outcomes import Outcome
from ivschat_grpc.core.pacing import Priority
from ivschat_grpc.core.violations import Violation
from ivschat_grpc.runtime.telemetry import Metrics

log = logging.getLogger(__name__)

# The AWS operation these calls make, as the error messages name it.
_CREATE_ROOM: Final = "CreateRoom"

_END: Final = object()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _discard(future: asyncio.Future[Any]) -> None:
    """Cancel future, and retrieve whatever it ends with, so it is never reported."""
    future.cancel()
    future.add_done_callback(_retrieve)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """BatchLimits bounds one stream."""

    window: int
    max_items: int | None
    # A stream that owes nothing and hears nothing for this long is closed.
    idle_timeout_s: float | None = None


def _error(correlation_id: str, failure: errors.Failure) -> pb.BatchCreateRoomsResponse:
    return pb.BatchCreateRoomsResponse(
        correlation_id=correlation_id,
        error=failure.to_status_proto(),
        aws_request_id=failure.request_id or "",
    )


@dataclass(slots=True)
class _Item:
    """_Item is one accepted item while its task runs."""

    cid: str
    exactly_once: bool = False
    control: CallControl = field(default_factory=CallControl)
    started: float = field(default_factory=time.perf_counter)
    answered: bool = False


class Batch:
    """Batch works through one stream's requests and yields one response for each."""

    def __init__(
        self,
        creator: Creator[pb.Room],
        requests: AsyncIterator[Any],
        limits: BatchLimits,
        lifecycle: Lifecycle,
        metrics: Metrics,
    ) -> None:
        self._creator = creator
        self._requests = requests
        self._limits = limits
        self._lifecycle = lifecycle
        self._metrics = metrics
        self._window = asyncio.Semaphore(limits.window)
        self._results: asyncio.Queue[object] = asyncio.Queue()
        self._work: dict[asyncio.Task[None], _Item] = {}
        self._in_flight_ids: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self._drain = asyncio.Event()
        self._failed: BaseException | None = None
        # Items read and not yet answered, or answered and not yet handed to
        # gRPC: each holds a window slot. Zero means the stream owes nothing.
        self._held = 0
        self._last_activity = asyncio.get_running_loop().time()
        # Items accepted and not yet answered; the reader ends once none is left.
        self._unanswered = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self.items_read = 0
        # Set when the stream was closed for owing nothing and hearing nothing.
        self.idled = False

    @property
    def draining(self) -> bool:
        """Whether the server asked this stream to wind down."""
        return self._drain.is_set()

    async def responses(self) -> AsyncIterator[pb.BatchCreateRoomsResponse]:
        """Every item's response, in completion order, until the stream is done.

        Raises the reader's error, if it failed, after answering what it read.
        """
        self._reader = asyncio.create_task(self._read())
        finished = False
        try:
            while True:
                response = await self._results.get()
                if response is _END:
                    break
                assert isinstance(response, pb.BatchCreateRoomsResponse)  # noqa: S101 - queue invariant
                yield response
                self._release()
            finished = True
        finally:
            if not finished:
                self._abandon()
        if self._failed is not None:
            raise self._failed

    def begin_drain(self) -> None:
        """Stop reading; answer what was read; send nothing more to AWS."""
        self._drain.set()
        self._stop_unsent()

    # --- reading -------------------------------------------------------------

    def _idle_for(self) -> float | None:
        """Seconds left before the stream counts as idle; None while it owes something."""
        if self._limits.idle_timeout_s is None or self._held:
            return None
        quiet = asyncio.get_running_loop().time() - self._last_activity
        return max(0.0, self._limits.idle_timeout_s - quiet)

    async def _until(self, step: asyncio.Future[Any], drained: asyncio.Future[Any]) -> bool:
        """Wait for step, a drain, or idleness; True if step finished, even as the drain began.

        A read that grpc completed is never thrown away: it is accepted and answered.
        A step given up on is cancelled and its outcome retrieved, so no task is
        left pending and no exception goes unretrieved, however the stream ends.
        """
        try:
            while not step.done():
                # While the stream owes an answer, look again every so often:
                # its last answer starts the idle clock.
                idle_for = self._idle_for()
                await asyncio.wait(
                    {step, drained},
                    timeout=self._limits.idle_timeout_s if idle_for is None else idle_for,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if step.done() or drained.done():
                    break
                if self._idle_for() == 0.0:
                    self.idled = True
                    break
        except BaseException:
            _discard(step)
            raise
        if step.done():
            return True
        _discard(step)
        return False

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        drained = asyncio.ensure_future(self._drain.wait())
        try:
            while not self.draining:
                if self._window.locked():
                    slot = asyncio.ensure_future(self._window.acquire())
                    if not await self._until(slot, drained):
                        break
                else:
                    await self._window.acquire()  # free now: returns at once
                read = asyncio.ensure_future(anext(self._requests))
                if not await self._until(read, drained):
                    self._window.release()
                    break
                try:
                    request = read.result()
                except StopAsyncIteration:
                    self._window.release()
                    break
                self._held += 1
                self._last_activity = loop.time()
                self._accept(request)
        except Exception as exc:
            log.exception("reading a batch stream failed")
            self._failed = exc
        finally:
            _discard(drained)
            try:
                await self._quiet.wait()
            finally:
                self._results.put_nowait(_END)

    def _release(self) -> None:
        self._held -= 1
        self._last_activity = asyncio.get_running_loop().time()
        self._window.release()

    def _accept(self, request: object) -> None:
        self.items_read += 1
        if isinstance(request, Undecodable):
            self._answer(_error("", errors.malformed(request.type_name, request.field)))
            return
        assert isinstance(request, pb.BatchCreateRoomsRequest)  # noqa: S101 - the deserializer's type
        cid = request.correlation_id
        limit = self._limits.max_items
        if limit is not None and self.items_read > limit:
            self._answer(_error(cid, errors.items_per_stream_exceeded(limit)))
            return
        violations: list[Violation] = []
        if not cid:
            violations.append(Violation(("correlationId",), "must not be empty"))
        elif len(cid) > CORRELATION_ID_MAX:
            violations.append(
                Violation(("correlationId",), f"must be at most {CORRELATION_ID_MAX} characters")
            )
        elif cid in self._in_flight_ids:
            violations.append(Violation(("correlationId",), "repeats an item still in flight"))
        params, room_violations = request_checks.create_room(request.room)
        if not request.HasField("room"):
            violations.append(Violation(("room",), "is required"))
        else:
            violations += [Violation(("room", *v.path), v.message) for v in room_violations]
        if violations:
            self._answer(_error(cid, errors.invalid_request(violations)))
            return
        self._in_flight_ids.add(cid)
        self._unanswered += 1
        self._quiet.clear()
        item = _Item(cid, request.room.HasField("request_id"))
        task = asyncio.create_task(self._create(item, request.room, params))
        self._work[task] = item
        # An item out to AWS outlives a closed stream, and the drain waits for it.
        self._lifecycle.track(task)
        task.add_done_callback(self._finished)

    # --- working ---------------------------------------------------------------

    async def _create(
        self, item: _Item, room: pb.CreateRoomRequest, params: dict[str, Any]
    ) -> None:
        try:
            created = await self._creator.create(
                room, params, None, priority=Priority.BULK, control=item.control
            )
            response = pb.BatchCreateRoomsResponse(
                correlation_id=item.cid,
                room=created.resource,
                aws_request_id=created.aws_request_id or "",
            )
        except CallFailed as e:
            response = _error(item.cid, errors.from_failed(e, _CREATE_ROOM))
        self._answer_item(item, response)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """Forget a task, and answer for it if it ended without answering."""
        item = self._work.pop(task, None)
        if item is None or item.answered:
            return
        if task.cancelled():
            # With a request_id, another call's (or our shielded owner's) work may
            # be creating the room: say so, and that the same id will find it.
            outcome = Outcome.UNFINISHED if item.exactly_once else Outcome.ABANDONED
            failure = errors.build(outcome, operation=_CREATE_ROOM)
        else:
            log.error("batch item %r failed unexpectedly", item.cid, exc_info=task.exception())
            failure = errors.unexpected()
        self._answer_item(item, _error(item.cid, failure))

    def _answer_item(self, item: _Item, response: pb.BatchCreateRoomsResponse) -> None:
        if item.answered:
            # Answered "may exist" as the drain ran out; AWS has now answered too.
            log.warning(
                "batch item %r finished after the drain answered it",
                item.cid,
                extra={"code": "OK" if response.HasField("room") else "ERROR"},
            )
            return
        item.answered = True
        self._in_flight_ids.discard(item.cid)
        self._unanswered -= 1
        if not self._unanswered:
            self._quiet.set()
        self._answer(response, item.started)

    def _answer(self, response: pb.BatchCreateRoomsResponse, started: float | None = None) -> None:
        code = "OK" if response.HasField("room") else errors.code_name(response.error.code)
        self._metrics.batch_items.labels(code).inc()
        if log.isEnabledFor(logging.INFO):  # the fields cost something on every item
            duration = None if started is None else round((time.perf_counter() - started) * 1000, 3)
            log.info(
                "batch item",
                extra={
                    "correlation_id": response.correlation_id,
                    "code": code,
                    "duration_ms": duration,
                    "aws_request_id": response.aws_request_id or None,
                },
            )
        self._results.put_nowait(response)

    def answer_in_flight(self) -> None:
        """Answer every item still out to AWS now, as one whose room may exist.

        The drain calls this before its grace ends, so that no such item is left
        for the server's stop to end with a bare "retry". Its task goes on, and
        AWS's answer, when it comes, is only logged.
        """
        self._drain.set()
        self._stop_unsent()
        for item in list(self._work.values()):
            # The others were just stopped, and their tasks answer "not sent".
            if not item.answered and item.control.may_have_created(item.exactly_once):
                failure = errors.build(Outcome.SHUT_DOWN_IN_FLIGHT, operation=_CREATE_ROOM)
                self._answer_item(item, _error(item.cid, failure))

    def _stop_unsent(self) -> None:
        for task, item in list(self._work.items()):
            item.control.stopped = True
            # One that may have made its room goes on finding out, until it is
            # answered or answer_in_flight answers for it.
            if not item.control.may_have_created(item.exactly_once):
                task.cancel()

    def _abandon(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self._stop_unsent()
