"""The body every unary call to AWS shares: deadline, drain, the table's status, trailers.

RoomService, ChatService and LoggingConfigurationService each check a request
and say what to send; the rest of a unary call is the same for all, and lives
here once: the refusal of violations, the AWS timeout within the caller's
deadline, the registration the drain answers from, the error table's status,
and the AWS request id in the trailers and the log line. So do the standard
methods that need more than one send: a create, exactly once per request_id
(core/creator.py); a delete that may find its resource gone; and an Update
that masks tags, which makes several AWS calls (the resource's own update,
then the tag calls), one after the other within the one deadline, each
failure saying which parts of the update were applied (core/tag_sync.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import wraps
from typing import Any, Final, TypeVar

import grpc
from google.protobuf.message import Message

from ivschat_grpc import errors
from ivschat_grpc.aws import request_checks
from ivschat_grpc.core import tag_sync
from ivschat_grpc.core.calls import Answer, CallControl, CallFailed, Operations
from ivschat_grpc.core.creator import Creator, M, Result
from ivschat_grpc.core.operations import OPERATIONS
from ivschat_grpc.core.outcomes import Outcome, Ran, ran
from ivschat_grpc.core.tag_sync import Part, Progress, Update
from ivschat_grpc.core.violations import Violation
from ivschat_grpc.runtime.telemetry import rpc_fields

log = logging.getLogger(__name__)

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


def answered(
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
Send = Callable[[float, CallControl], Awaitable[T]]


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
            # The name of the method only: a request's fields may be secret.
            log.exception("%s failed unexpectedly", handler.__name__)
            await errors.abort(context, errors.unexpected())

    return run


class AwsServicer:
    """AwsServicer runs unary calls to AWS for a servicer, and answers them when the drain must."""

    def __init__(self, aws: Operations, default_timeout_s: float) -> None:
        self._aws = aws
        self._default_timeout_s = default_timeout_s
        # Unary calls at work, by the task that runs them (with the progress of
        # the update they are part of, if any); and, once the drain must
        # answer them, the answer each is owed.
        self._calls: dict[asyncio.Task[Any], tuple[CallControl, bool, str, Progress | None]] = {}
        self._interruptions = errors.Interruptions()

    def answer_now(self) -> None:
        """Answer every unary call still at work, as the grace period ends.

        A call out to AWS (or, with a request_id, one that sent an attempt)
        whose operation changes something is answered INTERNAL with its
        operation's may-exist key; one not yet sent, or a read, is stopped
        and answered UNAVAILABLE, since nothing it did needs minding.
        """
        for task, (control, with_request_id, operation, progress) in self._calls.items():
            control.stopped = True  # nothing more is sent for it
            # A read changed nothing, so "retry" is true of it whatever happened.
            may_have_run = control.may_have_created(with_request_id) or control.maybe_ran
            changes = may_have_run and OPERATIONS[operation].changes
            owed = (
                errors.build(Outcome.SHUT_DOWN_IN_FLIGHT, operation=operation)
                if changes
                else errors.shutting_down()
            )
            if progress is not None:
                owed = errors.partial(owed, progress.report(maybe_ran=changes))
            self._interruptions.interrupt(task, owed)

    def _send(self, operation: str, params: Mapping[str, Any]) -> Send[Answer]:
        """A send of operation with params through the adapter, for _at_aws."""

        def send(timeout: float, control: CallControl) -> Awaitable[Answer]:
            return self._aws.call(operation, params, timeout, control=control)

        return send

    async def _result(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        operation: str,
        checked: tuple[dict[str, Any], list[Violation]],
        send: Send[Answer] | None = None,
    ) -> Mapping[str, Any]:
        """AWS's result for a call that must succeed: checked is (params, violations).

        The send is operation's through the adapter unless one is given; any
        failure ends the call (see _at_aws), and the AWS request id of an
        answer goes in the trailers.
        """
        params, violations = checked
        answer = await self._at_aws(
            context, operation, violations, send or self._send(operation, params)
        )
        assert answer is not None  # noqa: S101 - nothing is tolerated: a failure aborted
        answered(context, answer.request_id, answer.attempts)
        return answer.result

    async def _update(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        checked: tuple[Update, list[Violation]],
    ) -> Mapping[str, Any]:
        """AWS's result for an Update RPC (AIP-134): the resource's own update, then its tags.

        Without masked tags, it is the update operation's _result. With them,
        the current tags come from the first call's answer: the update's, or,
        with no field masked, the read's (GetRoom's); when the tags sent could
        be refused for what the resource carries, ListTagsForResource reads
        them before anything is sent that changes it. UntagResource, then
        TagResource, make them the tags sent, and the answer's tags are those
        of the first answer with that diff applied, not read again. A failure
        of any call says which parts were applied (core/tag_sync.py).
        """
        update, violations = checked
        desired = update.tags
        if desired is None:
            assert update.params is not None  # noqa: S101 - an update of nothing but fields
            return await self._result(context, update.operation, (dict(update.params), violations))
        if violations:
            await errors.abort(context, errors.invalid_request(violations))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + aws_timeout(context.time_remaining(), self._default_timeout_s)
        progress = Progress(fields=update.params is not None)

        async def call(operation: str, params: Mapping[str, Any], part: Part | None) -> Any:
            progress.sending(part)
            send = self._send(operation, params)
            answer = await self._at_aws(
                context, operation, [], send, deadline=deadline, progress=progress
            )
            assert answer is not None  # noqa: S101 - nothing is tolerated: a failure aborted
            answered(context, answer.request_id, answer.attempts)
            progress.done()
            return answer.result

        async def refuse_against(current: Mapping[str, str]) -> None:
            refused = request_checks.tags_against(current, desired, update.tags_path)
            if refused:
                await errors.abort(context, errors.invalid_request(refused))

        if update.params is None:
            resource = await call(*update.read, None)
            await refuse_against(resource.get("tags") or {})
        else:
            if update.check_first:
                listed = await call("ListTagsForResource", {"resourceArn": update.arn}, None)
                await refuse_against(listed.get("tags") or {})
            # Otherwise nothing the resource carries can refuse the tags sent
            # (request_checks.tags_need_current), so the fields go first.
            resource = await call(update.operation, update.params, Part.FIELDS)
        current: Mapping[str, str] = resource.get("tags") or {}
        change = tag_sync.diff(current, desired)
        remove_part, set_part = progress.plan(change)
        if remove_part is not None:
            keys = {"resourceArn": update.arn, "tagKeys": list(change.remove)}
            await call("UntagResource", keys, remove_part)
        if set_part is not None:
            tags = {"resourceArn": update.arn, "tags": dict(change.set)}
            await call("TagResource", tags, set_part)
        return {**resource, "tags": tag_sync.applied(current, change)}

    async def _created(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        creator: Creator[M],
        request: Message,
        checked: tuple[dict[str, Any], list[Violation]],
    ) -> M:
        """The resource creator made for request (checked: its AWS params and violations).

        With a request_id, the creator makes it exactly once (core/creator.py);
        without one, a create AWS may have run is never resent.
        """
        params, violations = checked

        def create(timeout: float, control: CallControl) -> Awaitable[Result[M]]:
            return creator.create(request, params, timeout, control=control)

        created = await self._at_aws(
            context,
            creator.operation,
            violations,
            create,
            with_request_id=request.HasField("request_id"),
        )
        assert created is not None  # noqa: S101 - nothing is tolerated: a failure aborted
        answered(context, created.aws_request_id, created.attempts)
        return created.resource

    async def _deleted(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        operation: str,
        checked: tuple[dict[str, Any], list[Violation]],
        *,
        allow_missing: bool,
    ) -> None:
        """Delete one resource (AIP-135); a missing one is NOT_FOUND unless allow_missing.

        A NOT_FOUND is no failure either when an earlier attempt, resent, may
        have run: it deleted the resource, and its answer was lost.
        """
        params, violations = checked

        def gone(error: CallFailed, control: CallControl) -> bool:
            missing = error.code == Outcome.NOT_FOUND
            return missing and (allow_missing or control.maybe_ran)

        send = self._send(operation, params)
        answer = await self._at_aws(context, operation, violations, send, tolerate=gone)
        if answer is not None:
            answered(context, answer.request_id, answer.attempts)

    async def _at_aws(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        operation: str,
        violations: list[Violation],
        send: Send[T],
        *,
        with_request_id: bool = False,
        tolerate: Callable[[CallFailed, CallControl], bool] | None = None,
        deadline: float | None = None,
        progress: Progress | None = None,
    ) -> T | None:
        """Refuse violations, or send within the caller's deadline; a failure ends the call.

        The call is registered for the drain, which may end it with the answer
        it is owed. A failure tolerate accepts ends nothing: the answer is None,
        and AWS's request id goes in the trailers. deadline (the loop's time)
        is the one an earlier call of the same RPC worked out; progress, the
        update this call is part of, whose report every failure carries.
        """
        if violations:
            await errors.abort(context, errors.invalid_request(violations))
        if deadline is None:
            timeout = aws_timeout(context.time_remaining(), self._default_timeout_s)
        else:
            timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        control = CallControl()
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - grpc runs every call in a task
        self._calls[task] = (control, with_request_id, operation, progress)
        try:
            return await send(timeout, control)
        except CallFailed as e:
            if tolerate is not None and tolerate(e, control):
                answered(context, e.request_id, e.attempts)
                return None
            rpc_fields().update(aws_request_id=e.request_id, attempts=e.attempts)
            failure = errors.from_failed(e, operation)
            if progress is not None:
                maybe_ran = control.maybe_ran or ran(e.code, e.http_status) is Ran.MAYBE
                failure = errors.partial(failure, progress.report(maybe_ran=maybe_ran))
            await errors.abort(context, failure)
        except asyncio.CancelledError:
            owed = self._interruptions.take(task)
            if owed is None:
                raise
            await errors.abort(context, owed)
        finally:
            del self._calls[task]
            self._interruptions.forget(task)
