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
and the servicer then ends it with UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Final

from ivschat.v1 import room_service_pb2 as pb

from ivschat_grpc import contract, convert, errors, outcomes
from ivschat_grpc.aws import AwsCallError, CallControl, IvsChat
from ivschat_grpc.limits import CORRELATION_ID_MAX
from ivschat_grpc.malformed import Undecodable
from ivschat_grpc.pacing import Priority
from ivschat_grpc.telemetry import Metrics

log = logging.getLogger(__name__)

_END: Final = object()


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """BatchLimits bounds one stream."""

    window: int
    max_items: int | None


def _error(correlation_id: str, failure: errors.Failure) -> pb.BatchCreateRoomsResponse:
    return pb.BatchCreateRoomsResponse(
        correlation_id=correlation_id,
        error=failure.to_status_proto(),
        aws_request_id=failure.request_id or "",
    )


class Batch:
    """Batch works through one stream's requests and yields one response for each."""

    def __init__(
        self,
        aws: IvsChat,
        requests: AsyncIterator[Any],
        limits: BatchLimits,
        background: set[asyncio.Task[None]],
        metrics: Metrics,
    ) -> None:
        self._aws = aws
        self._requests = requests
        self._limits = limits
        self._background = background
        self._metrics = metrics
        self._window = asyncio.Semaphore(limits.window)
        self._results: asyncio.Queue[object] = asyncio.Queue()
        self._work: dict[asyncio.Task[None], CallControl] = {}
        self._in_flight_ids: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self.items_read = 0
        self.draining = False

    async def responses(self) -> AsyncIterator[pb.BatchCreateRoomsResponse]:
        """Every item's response, in completion order, until the stream is done."""
        self._reader = asyncio.create_task(self._read())
        finished = False
        try:
            while True:
                response = await self._results.get()
                if response is _END:
                    break
                assert isinstance(response, pb.BatchCreateRoomsResponse)  # noqa: S101 - queue invariant
                yield response
                self._window.release()
            finished = True
            await self._reader
        finally:
            if not finished:
                self._abandon()

    def begin_drain(self) -> None:
        """Stop reading; answer what was read; send nothing more to AWS."""
        self.draining = True
        if self._reader is not None:
            self._reader.cancel()
        self._stop_unsent(self._work.items())

    # --- reading -------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                await self._window.acquire()
                try:
                    request = await anext(self._requests)
                except StopAsyncIteration:
                    self._window.release()
                    break
                self._accept(request)
        except asyncio.CancelledError:
            if not self.draining:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        if self._work:
            await asyncio.wait(list(self._work))
        self._results.put_nowait(_END)

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
        violations: list[contract.Violation] = []
        if not cid:
            violations.append(contract.Violation(("correlationId",), "must not be empty"))
        elif len(cid) > CORRELATION_ID_MAX:
            violations.append(
                contract.Violation(
                    ("correlationId",), f"must be at most {CORRELATION_ID_MAX} characters"
                )
            )
        elif cid in self._in_flight_ids:
            violations.append(
                contract.Violation(("correlationId",), "repeats an item still in flight")
            )
        params = convert.to_aws_params(request.room)
        if not request.HasField("room"):
            violations.append(contract.Violation(("room",), "is required"))
        else:
            violations += [
                contract.Violation(("room", *v.path), v.message)
                for v in contract.check_create_room(params)
            ]
        if violations:
            self._answer(_error(cid, errors.invalid_request(violations)))
            return
        self._in_flight_ids.add(cid)
        control = CallControl()
        task = asyncio.create_task(self._create(cid, params, control))
        self._work[task] = control
        self._background.add(task)
        task.add_done_callback(self._forget)

    def _answer(self, response: pb.BatchCreateRoomsResponse, started: float | None = None) -> None:
        code = "OK" if response.HasField("room") else errors.code_name(response.error.code)
        self._metrics.batch_items.labels(code).inc()
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

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._work.pop(task, None)
        self._background.discard(task)

    # --- working ---------------------------------------------------------------

    async def _create(self, cid: str, params: dict[str, Any], control: CallControl) -> None:
        started = time.perf_counter()
        try:
            created = await self._aws.create_room(
                params, None, priority=Priority.BULK, control=control
            )
            response = pb.BatchCreateRoomsResponse(
                correlation_id=cid,
                room=convert.to_room(created.room),
                aws_request_id=created.request_id or "",
            )
        except AwsCallError as e:
            response = _error(
                cid,
                errors.from_aws(
                    e.code, http_status=e.http_status, fields=e.fields, request_id=e.request_id
                ),
            )
        except asyncio.CancelledError:
            if not self.draining:
                raise  # the stream is gone; nobody is left to answer
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            response = _error(cid, errors.from_aws(outcomes.ABANDONED))
        except Exception:
            log.exception("batch item %r failed unexpectedly", cid)
            response = _error(cid, errors.unexpected())
        finally:
            self._in_flight_ids.discard(cid)
        self._answer(response, started)

    @staticmethod
    def _stop_unsent(work: Iterable[tuple[asyncio.Task[None], CallControl]]) -> None:
        for task, control in list(work):
            control.stopped = True
            if not control.sending:
                task.cancel()

    def _abandon(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self._stop_unsent(self._work.items())
