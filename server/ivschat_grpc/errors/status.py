"""Statuses built from the table's rows: ErrorInfo, the row's detail, and the trailers.

Every status carries google.rpc.ErrorInfo (reason: the AWS error code, or the
facade's own reason) plus the detail its row names, and travels as
grpc-status-details-bin through grpc_status.rpc_status.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Final, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message as ProtoMessage
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ivschat_grpc.core.calls import AwsCallError, CallFailed, RateLimited, Refusal
from ivschat_grpc.core.operations import OPERATIONS, Operation
from ivschat_grpc.core.outcomes import Outcome
from ivschat_grpc.core.tag_sync import Report
from ivschat_grpc.core.violations import MapKey, Violation
from ivschat_grpc.errors.table import (
    CONTRACT,
    PARTIAL_STATES,
    PARTIAL_UPDATE,
    Detail,
    Key,
    Refused,
    Row,
    row_for,
)

REQUEST_ID_KEY: Final = "aws-request-id"
# A status travels in a header, and gRPC clients refuse headers past 8 to
# 16 KiB, so BadRequest names at most this many fields (AIP-193: a useful
# subset), and says in ErrorInfo how many there were in all.
MAX_FIELD_VIOLATIONS: Final = 10
# A map key shown in a field path is cut to this many characters, twice the
# longest valid tag key, so that any key near the limit is still shown whole.
MAX_KEY_CHARS: Final = 256
# And any text that AWS sent back, to this many.
_MAX_TEXT: Final = 256


def code_name(code: int) -> str:
    """The name of a numeric gRPC status code, as in google.rpc.Status."""
    return _CODE_NAMES.get(code, str(code))


_CODE_NAMES: Final[Mapping[int, str]] = {c.value[0]: c.name for c in grpc.StatusCode}


@dataclass(frozen=True, slots=True)
class Failure:
    """Failure is a gRPC status ready to send, with its rich details."""

    code: grpc.StatusCode
    message: str
    details: Sequence[ProtoMessage] = ()
    request_id: str | None = None
    reason: str = ""

    def to_status_proto(self) -> status_pb2.Status:
        """The google.rpc.Status form, for trailers and batch items alike."""
        packed = []
        for d in self.details:
            a = any_pb2.Any()
            a.Pack(d)
            packed.append(a)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """Trailers: the binary status details, and AWS's request id if any."""
        status = rpc_status.to_status(self.to_status_proto())
        md: list[tuple[str, str | bytes]] = list(status.trailing_metadata)
        if self.request_id:
            md.append((REQUEST_ID_KEY, self.request_id))
        return tuple(md)


async def abort(context: grpc.aio.ServicerContext[Any, Any], failure: Failure) -> NoReturn:
    """End the RPC with failure's code, message and rich details."""
    if context.done():
        # The caller already gave up (cancel or deadline): nobody is left to tell.
        raise asyncio.CancelledError
    try:
        await context.abort(failure.code, failure.message, failure.trailing_metadata())
    except grpc.aio.AbortError:
        raise
    except Exception:  # noqa: BLE001 - grpc raises its private cygrpc.ExecuteBatchError here
        # grpc had ended the call already (a cancel, a deadline, or a message
        # over the size limit) before the service could see that it had.
        raise asyncio.CancelledError from None
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


class Interruptions:
    """Interruptions lets the drain end a running call with the answer it is owed.

    interrupt() cancels the call's task; the call's code, catching that
    CancelledError, asks take() for its answer and aborts with it. A cancel
    that came from elsewhere (the caller left) has no answer, and goes on.
    """

    def __init__(self) -> None:
        self._owed: dict[asyncio.Task[Any], Failure] = {}

    def interrupt(self, task: asyncio.Task[Any], failure: Failure) -> None:
        """Cancel task, whose call is then to end with failure."""
        self._owed[task] = failure
        task.cancel()

    def take(self, task: asyncio.Task[Any]) -> Failure | None:
        """The answer task was interrupted for, its cancel undone; None if it was not."""
        owed = self._owed.pop(task, None)
        if owed is not None:
            task.uncancel()
        return owed

    def forget(self, task: asyncio.Task[Any]) -> None:
        """Drop what is owed to a call that has ended."""
        self._owed.pop(task, None)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def proto_path(path: Iterable[str | int]) -> str:
    """Render an AWS member path as a proto field path: tags["k"], ids[3]."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, MapKey):
            key = part if len(part) <= MAX_KEY_CHARS else part[:MAX_KEY_CHARS] + "…"
            escaped = key.replace("\\", "\\\\").replace('"', '\\"')
            out += f'["{escaped}"]'
        else:
            out += f".{_snake(part)}" if out else _snake(part)
    return out


_AWS_NAME = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9.]*)(?:\[(?P<index>[^\]]*)\])?$")


def proto_path_from_aws_name(name: str) -> str:
    """Translate a fieldList name from AWS (camelCase, maybe indexed) to a proto path."""
    m = _AWS_NAME.match(name)
    if m is None:
        return name
    parts: list[str | int] = list(m["head"].split("."))
    index = m["index"]
    if index is not None:
        parts.append(int(index) if index.isdigit() else MapKey(index))
    return proto_path(parts)


# --- building a row's status -------------------------------------------------------


def _message(row: Row, known: Operation | None, numbers: Mapping[str, object]) -> str:
    # An operation's name is put in messages only if it is one of AWS's.
    name = known.name if known else "the call"
    effect = "its result may exist" if known is None else known.effect or "it changed nothing"
    return row.message.format(operation=name, effect=effect, **numbers)


def _violations(entries: Sequence[tuple[str, str]]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
            for f, d in entries[:MAX_FIELD_VIOLATIONS]
        ]
    )


def _retry(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromTimedelta(timedelta(seconds=seconds))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _quota(subject: str, description: str) -> error_details_pb2.QuotaFailure:
    return error_details_pb2.QuotaFailure(
        violations=[
            error_details_pb2.QuotaFailure.Violation(subject=subject, description=description)
        ]
    )


def build(
    key: Key,
    *,
    operation: str = "",
    reason: str | None = None,
    metadata: Mapping[str, str] | None = None,
    violations: Sequence[tuple[str, str]] = (),
    quota: tuple[str, str] | None = None,
    resource: tuple[str, str] | None = None,
    request_id: str | None = None,
    numbers: Mapping[str, object] | None = None,
    retry_after_s: float | None = None,
) -> Failure:
    """The status of key's row: ErrorInfo first, then the row's detail.

    reason overrides the row's (an AWS code nobody listed is its own reason).
    Each detail kind takes its content from the argument of its name;
    retry_after_s, if given, replaces the row's fixed delay.
    """
    row = CONTRACT[key]
    reason = reason or row.reason or str(key)
    info = dict(metadata or {})
    known = OPERATIONS.get(operation)
    if row.may_exist and (known is None or known.changes):
        # Each operation names what may exist after it: room_may_exist,
        # event_may_have_been_sent (core/operations.py).
        info[known.may_exist_key if known is not None else "room_may_exist"] = "true"
    if request_id:
        info["aws_request_id"] = request_id
    details: list[ProtoMessage] = [
        error_details_pb2.ErrorInfo(reason=reason, domain=row.domain, metadata=info)
    ]
    match row.detail:
        case Detail.BAD_REQUEST:
            details.append(_violations(violations))
        case Detail.PRECONDITION:
            details.append(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type="ACCOUNT_VERIFICATION",
                            subject="aws-account",
                            description="the AWS account must finish verification",
                        )
                    ]
                )
            )
        case Detail.RESOURCE:
            kind, name = resource or ("", "")
            details.append(error_details_pb2.ResourceInfo(resource_type=kind, resource_name=name))
        case Detail.QUOTA:
            details.append(_quota(*(quota or ("", "limit reached"))))
        case Detail.RETRY:
            details.append(_retry(row.retry_after_s if retry_after_s is None else retry_after_s))
        case Detail.QUOTA_RETRY:
            details.append(_quota(*(quota or ("", "limit reached"))))
            details.append(_retry(row.retry_after_s if retry_after_s is None else retry_after_s))
        case Detail.NONE:
            pass
    message = _message(row, known, numbers or {})
    return Failure(row.code, message, tuple(details), request_id, reason)


def from_aws(
    code: str,
    *,
    operation: str,
    http_status: int | None = None,
    fields: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> Failure:
    """Translate one AWS outcome, or an AWS code nobody listed, through the table."""
    fields = fields or {}
    key, row = row_for(code, http_status)
    outcome = Outcome.of(code)
    answered_by_aws = outcome is None or outcome.from_aws
    metadata = {"aws_error_code": code} if row.reason and answered_by_aws else {}
    entries = [e for e in fields.get("fieldList") or [] if isinstance(e, Mapping)]
    known = OPERATIONS.get(operation)
    violations = [_aws_violation(e, known) for e in entries[:MAX_FIELD_VIOLATIONS]]
    kind, name = str(fields.get("resourceType", "")), str(fields.get("resourceId", ""))
    limit = fields.get("limit")
    quota = (
        f"{kind}/{name}".strip("/") or "ROOM",
        f"limit {limit}" if limit is not None else "limit reached",
    )
    return build(
        key,
        operation=operation,
        reason=None if row.reason else code,
        metadata=metadata,
        violations=violations,
        quota=quota,
        resource=(kind, name),
        request_id=request_id,
    )


_AWS_MEMBER = re.compile(r"^(?P<member>[A-Za-z]*)(?P<rest>.*)$", re.DOTALL)
_INDEX = re.compile(r"^\[\d+\]$")
WITHHELD: Final = (
    "was refused by AWS, whose own words about it are withheld here: they may repeat "
    "the value; check it against the limits in ChatService's documentation"
)


def _aws_violation(entry: Mapping[str, Any], known: Operation | None) -> tuple[str, str]:
    """One fieldList entry from AWS as a proto path and description, its secrets left out."""
    name, message = str(entry.get("name", "")), str(entry.get("message", ""))
    path = proto_path_from_aws_name(name)
    if known is not None:
        m = _AWS_MEMBER.match(name)
        assert m is not None  # noqa: S101 - the pattern matches any string
        member, rest = m["member"], m["rest"]
        if known.secret_input:
            # Past the member, a name can hold a map key (a secret); past an
            # index, nothing the caller needs.
            rest = rest if _INDEX.match(rest) else ""
            message = WITHHELD
        renamed = known.proto_names.get(member)
        if renamed is not None:
            # Past the member, its nested members as the proto names them
            # (destinationConfiguration.s3.bucketName: s3.bucket_name).
            nested = "." + proto_path_from_aws_name(rest[1:]) if rest.startswith(".") else rest
            # A member renamed "" is one whose members the proto holds itself.
            path = (renamed + nested).lstrip(".") if renamed or nested else ""
            if not path and known.proto_prefix:
                path = known.proto_prefix.rstrip(".")  # the message itself
            else:
                path = known.proto_prefix + path
        else:
            path = proto_path_from_aws_name(member + rest) if member or rest else ""
            path = known.proto_prefix + path if path else path
    return path[:_MAX_TEXT], message[:_MAX_TEXT]


def from_failed(error: CallFailed, operation: str) -> Failure:
    """The status for a call that failed: at AWS, on the way there, or refused here."""
    if isinstance(error, Refusal):
        return build(
            error.outcome,
            operation=operation,
            violations=[(proto_path(v.path), v.message) for v in error.violations],
        )
    if isinstance(error, RateLimited):
        return rate_limited(error.operation, error.retry_after_s)
    assert isinstance(error, AwsCallError)  # noqa: S101 - the only other kind
    return from_aws(
        error.code,
        operation=operation,
        http_status=error.http_status,
        fields=error.fields,
        request_id=error.request_id,
    )


def rate_limited(operation: str, retry_after_s: float) -> Failure:
    """RESOURCE_EXHAUSTED for a call shed by operation's bucket: its quota, and when to retry."""
    known = OPERATIONS.get(operation)
    quota = f"{known.rate:g} calls a second per account and region" if known else "its rate"
    return build(
        Outcome.RATE_LIMITED,
        operation=operation,
        metadata={"operation": operation},
        quota=(f"operation:{operation}", quota),
        # Milliseconds: finer says nothing a client can act on.
        retry_after_s=math.ceil(retry_after_s * 1000) / 1000,
    )


def partial(failure: Failure, report: Report) -> Failure:
    """failure, of an update that several AWS calls make, saying which of its parts were applied.

    Its ErrorInfo metadata names the parts by state (core/tag_sync.REPORT_KEYS),
    and its message says the same, and that the same request converges.
    """
    first, *rest = failure.details
    assert isinstance(first, error_details_pb2.ErrorInfo)  # noqa: S101 - build() puts it first
    info = error_details_pb2.ErrorInfo()
    info.CopyFrom(first)
    info.metadata.update(report.metadata())
    parts = "; ".join(
        template.format(parts=", ".join(named))
        for state, template in PARTIAL_STATES.items()
        if (named := report.named(state))
    )
    message = failure.message + PARTIAL_UPDATE.format(parts=parts)
    return replace(failure, message=message, details=(info, *rest))


def invalid_request(violations: Sequence[Violation]) -> Failure:
    """INVALID_ARGUMENT for a request the facade refuses before calling AWS."""
    shown = min(len(violations), MAX_FIELD_VIOLATIONS)
    cut = len(violations) > shown
    return build(
        Refused.INVALID_REQUEST_CUT if cut else Refused.INVALID_REQUEST,
        metadata={"violations": str(len(violations)), "violations_shown": str(shown)}
        if cut
        else None,
        violations=[(proto_path(v.path), v.message) for v in violations],
        numbers={"violations": len(violations), "shown": shown},
    )


def malformed(type_name: str, field: str | None) -> Failure:
    """INVALID_ARGUMENT for bytes that do not parse as the request message."""
    description = (
        "holds a string that is not valid UTF-8"
        if field
        else f"the request is not a valid {type_name} message"
    )
    return build(Refused.MALFORMED_REQUEST, violations=[(field or type_name, description)])


def request_missing() -> Failure:
    """INVALID_ARGUMENT for a unary call that ended its side without sending its request."""
    return build(
        Refused.REQUEST_MISSING,
        violations=[("request", "the call ended without sending its request message")],
    )


def _limit(key: Refused, subject: str, limit: int) -> Failure:
    return build(key, metadata={"limit": str(limit)}, quota=(subject, f"limit {limit}"))


def items_per_stream_exceeded(limit: int) -> Failure:
    """RESOURCE_EXHAUSTED for a batch item past the per-stream maximum."""
    return _limit(Refused.ITEMS_PER_STREAM, "items per BatchCreateRooms stream", limit)


def too_many_streams(limit: int) -> Failure:
    """RESOURCE_EXHAUSTED for a batch stream past the concurrent-stream maximum."""
    return _limit(Refused.TOO_MANY_STREAMS, "concurrent BatchCreateRooms streams", limit)


def too_many_rpcs(limit: int, flag: str) -> Failure:
    """RESOURCE_EXHAUSTED for a call past a concurrency limit; flag names the limit."""
    return _limit(Refused.TOO_MANY_RPCS, f"concurrent RPCs ({flag})", limit)


def idle(timeout_s: float) -> Failure:
    """UNAVAILABLE for a call closed after timeout_s of silence while it owed nothing.

    Nothing of the call was in flight at AWS or unanswered, so it is safe to retry.
    """
    return build(
        Refused.IDLE,
        metadata={"idle_timeout_s": f"{timeout_s:g}"},
        numbers={"timeout_s": f"{timeout_s:g}"},
    )


def shutting_down(stream_ended: bool = False) -> Failure:
    """UNAVAILABLE for a call refused, or a batch stream ended, because the server drains."""
    return build(Refused.STREAM_SHUT_DOWN if stream_ended else Refused.SHUTTING_DOWN)


def unexpected() -> Failure:
    """INTERNAL for a bug of ours; the log has the traceback, the caller does not."""
    return build(Refused.UNEXPECTED)
