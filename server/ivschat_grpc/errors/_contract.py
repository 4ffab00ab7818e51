"""How AWS's answers become gRPC statuses: the product's error contract.

The table below is data, and the only place the mapping lives. Every status
carries google.rpc.ErrorInfo (reason: the AWS error code, or the facade's own
reason) plus the detail its row names. Messages are fixed text: no exception
text or stack trace ever reaches a caller.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message as ProtoMessage
from google.rpc import error_details_pb2, status_pb2

from ivschat_grpc.aws.validation import MapKey, Violation
from ivschat_grpc.core import outcomes

AWS_DOMAIN: Final = "ivschat.amazonaws.com"
FACADE_DOMAIN: Final = "ivschat-grpc"
REQUEST_ID_KEY: Final = "aws-request-id"
# Requests the facade refuses itself carry this ErrorInfo reason.
INVALID_REQUEST: Final = "INVALID_REQUEST"
# Requests whose bytes do not parse carry this one.
MALFORMED_REQUEST: Final = "MALFORMED_REQUEST"
# A status travels in a header, and gRPC clients refuse headers past 8 to
# 16 KiB, so BadRequest names at most this many fields (AIP-193: a useful
# subset), and says in ErrorInfo how many there were in all.
MAX_FIELD_VIOLATIONS: Final = 10
# A map key shown in a field path is cut to this many characters, twice the
# longest valid tag key, so that any key near the limit is still shown whole.
MAX_KEY_CHARS: Final = 256
# And any text that AWS sent back, to this many.
_MAX_TEXT: Final = 256


class Detail(enum.Enum):
    """Detail names the rich detail a row adds beside ErrorInfo."""

    NONE = enum.auto()
    BAD_REQUEST = enum.auto()
    PRECONDITION = enum.auto()
    RESOURCE = enum.auto()
    QUOTA = enum.auto()
    RETRY = enum.auto()
    # The call reached AWS, or may have: the room may exist.
    MAY_EXIST = enum.auto()


@dataclass(frozen=True, slots=True)
class Rule:
    """Rule is one row of the error table."""

    code: grpc.StatusCode
    detail: Detail
    message: str
    reason: str | None = None  # None: the AWS error code is the reason
    retry_after_s: float = 0.0


_CREDENTIALS_REFUSED = Rule(
    grpc.StatusCode.INTERNAL,
    Detail.NONE,
    "AWS refused the service's own credentials",
    reason="AWS_CREDENTIALS_REFUSED",
)

AWS_ERRORS: Final[Mapping[str, Rule]] = {
    "ValidationException": Rule(
        grpc.StatusCode.INVALID_ARGUMENT, Detail.BAD_REQUEST, "AWS rejected the request's fields"
    ),
    "AccessDeniedException": Rule(
        grpc.StatusCode.PERMISSION_DENIED,
        Detail.NONE,
        "AWS denied the service's role permission to create rooms",
    ),
    "PendingVerification": Rule(
        grpc.StatusCode.FAILED_PRECONDITION,
        Detail.PRECONDITION,
        "the AWS account is pending verification",
    ),
    "ResourceNotFoundException": Rule(
        grpc.StatusCode.NOT_FOUND, Detail.RESOURCE, "a resource the request names does not exist"
    ),
    "ConflictException": Rule(
        grpc.StatusCode.ABORTED, Detail.RESOURCE, "the request conflicts with a resource's state"
    ),
    "ServiceQuotaExceededException": Rule(
        grpc.StatusCode.RESOURCE_EXHAUSTED, Detail.QUOTA, "the AWS account's room quota is spent"
    ),
    "ThrottlingException": Rule(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        Detail.RETRY,
        "AWS throttled CreateRoom; it did not run, retry later",
        retry_after_s=1.0,
    ),
    "InternalServerException": Rule(
        grpc.StatusCode.INTERNAL,
        Detail.MAY_EXIST,
        "AWS failed internally; the room may exist",
    ),
    "ServiceUnavailable": Rule(
        grpc.StatusCode.UNAVAILABLE,
        Detail.RETRY,
        "AWS IVS Chat is unavailable; retry later",
        retry_after_s=1.0,
    ),
    # AWS's answers when it will not authenticate the facade itself. The
    # caller can do nothing about them, hence INTERNAL rather than an auth code.
    "UnrecognizedClientException": _CREDENTIALS_REFUSED,
    "InvalidSignatureException": _CREDENTIALS_REFUSED,
    "IncompleteSignatureException": _CREDENTIALS_REFUSED,
    "MissingAuthenticationTokenException": _CREDENTIALS_REFUSED,
    "ExpiredTokenException": _CREDENTIALS_REFUSED,
    "InvalidClientTokenId": _CREDENTIALS_REFUSED,
    "SignatureDoesNotMatch": _CREDENTIALS_REFUSED,
    # Outcomes where AWS gave no answer; their codes come from outcomes.py.
    outcomes.UNREACHABLE: Rule(
        grpc.StatusCode.UNAVAILABLE,
        Detail.RETRY,
        "AWS IVS Chat could not be reached; the room was not created",
        reason="AWS_UNREACHABLE",
        retry_after_s=1.0,
    ),
    outcomes.CONNECTION_LOST: Rule(
        grpc.StatusCode.INTERNAL,
        Detail.MAY_EXIST,
        "the connection to AWS broke after the request was sent; the room may exist",
        reason="AWS_CONNECTION_LOST",
    ),
    outcomes.READ_TIMEOUT: Rule(
        grpc.StatusCode.INTERNAL,
        Detail.MAY_EXIST,
        "AWS did not answer in time; the room may exist",
        reason="AWS_READ_TIMEOUT",
    ),
    outcomes.DEADLINE_EXCEEDED: Rule(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        Detail.MAY_EXIST,
        "the deadline passed before AWS answered; the room may exist",
        reason="DEADLINE_EXCEEDED",
    ),
    outcomes.DEADLINE_NOT_SENT: Rule(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        Detail.RETRY,
        "the deadline passed while the call waited for the CreateRoom rate; "
        "the room was not created",
        reason="DEADLINE_EXCEEDED_NOT_SENT",
        retry_after_s=1.0,
    ),
    outcomes.ABANDONED: Rule(
        grpc.StatusCode.UNAVAILABLE,
        Detail.RETRY,
        "the stream ended before this item was sent; the room was not created",
        reason="NOT_SENT",
        retry_after_s=1.0,
    ),
    outcomes.UNFINISHED: Rule(
        grpc.StatusCode.UNAVAILABLE,
        Detail.MAY_EXIST,
        "the stream ended before this item finished; retry with the same request_id",
        reason="UNFINISHED",
    ),
    outcomes.SHUT_DOWN_IN_FLIGHT: Rule(
        grpc.StatusCode.INTERNAL,
        Detail.MAY_EXIST,
        "the server shut down while the request was out to AWS; the room may exist "
        "(a request_id finds it: retry with the same one)",
        reason="SHUTDOWN_IN_FLIGHT",
    ),
    outcomes.REQUEST_ID_REUSED: Rule(
        grpc.StatusCode.INVALID_ARGUMENT,
        Detail.BAD_REQUEST,
        "request_id was already used for a different request",
        reason="REQUEST_ID_REUSED",
    ),
    outcomes.REQUEST_IN_PROGRESS: Rule(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        Detail.RETRY,
        "a call with this request_id is still creating the room; retry with the same request_id",
        reason="REQUEST_IN_PROGRESS",
        retry_after_s=1.0,
    ),
    outcomes.STATE_UNAVAILABLE: Rule(
        grpc.StatusCode.UNAVAILABLE,
        Detail.RETRY,
        "the service could not record this request_id; nothing was sent to AWS, retry later",
        reason="STATE_UNAVAILABLE",
        retry_after_s=1.0,
    ),
    outcomes.CREDENTIALS_MISSING: Rule(
        grpc.StatusCode.INTERNAL,
        Detail.NONE,
        "the service has no AWS credentials",
        reason="AWS_CREDENTIALS_MISSING",
    ),
}

# Codes AWS may answer that the table does not name, by HTTP status class.
_BY_STATUS: Final[Sequence[tuple[range, Rule]]] = (
    (range(503, 504), AWS_ERRORS["ServiceUnavailable"]),
    (range(500, 600), AWS_ERRORS["InternalServerException"]),
    (range(429, 430), AWS_ERRORS["ThrottlingException"]),
)
FALLBACK: Final = Rule(
    grpc.StatusCode.INTERNAL, Detail.NONE, "the service failed unexpectedly", reason="INTERNAL"
)


def code_name(code: int) -> str:
    """The name of a numeric gRPC status code, as in google.rpc.Status."""
    return _CODE_NAMES.get(code, str(code))


_CODE_NAMES: Final[Mapping[int, str]] = {c.value[0]: c.name for c in grpc.StatusCode}


def rule_for(code: str, http_status: int | None) -> Rule:
    """The table's row for an AWS error code, falling back on its HTTP status."""
    rule = AWS_ERRORS.get(code)
    if rule is not None:
        return rule
    for statuses, fallback in _BY_STATUS:
        if http_status in statuses:
            return fallback
    return FALLBACK


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
        md: list[tuple[str, str | bytes]] = [
            ("grpc-status-details-bin", self.to_status_proto().SerializeToString())
        ]
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


_AWS_NAME = re.compile(r"^(?P<head>[A-Za-z.]+)(?:\[(?P<index>[^\]]*)\])?$")


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


def _error_info(reason: str, domain: str, metadata: Mapping[str, str]) -> ProtoMessage:
    return error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=metadata)


def invalid_request(violations: Sequence[Violation]) -> Failure:
    """INVALID_ARGUMENT for a request the facade refuses before calling AWS."""
    shown = violations[:MAX_FIELD_VIOLATIONS]
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=proto_path(v.path), description=v.message
            )
            for v in shown
        ]
    )
    message = f"the request has {len(violations)} invalid field(s); see BadRequest details"
    metadata: dict[str, str] = {}
    if len(violations) > len(shown):
        message = (
            f"the request has {len(violations)} invalid fields; BadRequest names the first "
            f"{len(shown)}"
        )
        metadata = {"violations": str(len(violations)), "violations_shown": str(len(shown))}
    return Failure(
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
        (_error_info(INVALID_REQUEST, FACADE_DOMAIN, metadata), bad),
        reason=INVALID_REQUEST,
    )


def from_aws(
    code: str,
    *,
    http_status: int | None = None,
    fields: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> Failure:
    """Translate one AWS outcome through the table."""
    fields = fields or {}
    rule = rule_for(code, http_status)
    reason = rule.reason or code
    answered_by_aws = code not in outcomes.NOT_FROM_AWS
    metadata = {"aws_error_code": code} if rule.reason and answered_by_aws else {}
    if rule.detail is Detail.MAY_EXIST:
        metadata["room_may_exist"] = "true"
    if request_id:
        metadata["aws_request_id"] = request_id
    domain = FACADE_DOMAIN if rule.reason else AWS_DOMAIN
    details: list[ProtoMessage] = [_error_info(reason, domain, metadata)]
    details.extend(_detail(rule, fields))
    return Failure(rule.code, rule.message, tuple(details), request_id, reason)


def _detail(rule: Rule, fields: Mapping[str, Any]) -> list[ProtoMessage]:
    resource = f"{fields.get('resourceType', '')}/{fields.get('resourceId', '')}".strip("/")
    match rule.detail:
        case Detail.BAD_REQUEST:
            entries = fields.get("fieldList") or []
            return [
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=proto_path_from_aws_name(str(e.get("name", "")))[:_MAX_TEXT],
                            description=str(e.get("message", ""))[:_MAX_TEXT],
                        )
                        for e in [e for e in entries if isinstance(e, Mapping)][
                            :MAX_FIELD_VIOLATIONS
                        ]
                    ]
                )
            ]
        case Detail.PRECONDITION:
            return [
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type="ACCOUNT_VERIFICATION",
                            subject="aws-account",
                            description="the AWS account must finish verification",
                        )
                    ]
                )
            ]
        case Detail.RESOURCE:
            return [
                error_details_pb2.ResourceInfo(
                    resource_type=str(fields.get("resourceType", "")),
                    resource_name=str(fields.get("resourceId", "")),
                )
            ]
        case Detail.QUOTA:
            limit = fields.get("limit")
            return [
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(
                            subject=resource or "ROOM",
                            description=f"limit {limit}" if limit is not None else "limit reached",
                        )
                    ]
                )
            ]
        case Detail.RETRY:
            delay = duration_pb2.Duration()
            delay.FromTimedelta(timedelta(seconds=rule.retry_after_s))
            return [error_details_pb2.RetryInfo(retry_delay=delay)]
        case Detail.NONE | Detail.MAY_EXIST:
            return []


def malformed(type_name: str, field: str | None) -> Failure:
    """INVALID_ARGUMENT for bytes that do not parse as the request message."""
    description = (
        "holds a string that is not valid UTF-8"
        if field
        else f"the request is not a valid {type_name} message"
    )
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=field or type_name, description=description
            )
        ]
    )
    return Failure(
        grpc.StatusCode.INVALID_ARGUMENT,
        "the request could not be parsed; see BadRequest details",
        (_error_info(MALFORMED_REQUEST, FACADE_DOMAIN, {}), bad),
        reason=MALFORMED_REQUEST,
    )


def _limit(subject: str, limit: int, message: str, reason: str) -> Failure:
    quota = error_details_pb2.QuotaFailure(
        violations=[
            error_details_pb2.QuotaFailure.Violation(subject=subject, description=f"limit {limit}")
        ]
    )
    return Failure(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        message,
        (_error_info(reason, FACADE_DOMAIN, {"limit": str(limit)}), quota),
        reason=reason,
    )


def items_per_stream_exceeded(limit: int) -> Failure:
    """RESOURCE_EXHAUSTED for a batch item past the per-stream maximum."""
    return _limit(
        "items per BatchCreateRooms stream",
        limit,
        "this stream has reached its item limit; send further items on a new stream",
        "BATCH_ITEMS_EXCEEDED",
    )


def too_many_streams(limit: int) -> Failure:
    """RESOURCE_EXHAUSTED for a batch stream past the concurrent-stream maximum."""
    return _limit(
        "concurrent BatchCreateRooms streams",
        limit,
        "too many batch streams are open; retry later",
        "BATCH_STREAMS_EXCEEDED",
    )


def too_many_rpcs(limit: int, flag: str) -> Failure:
    """RESOURCE_EXHAUSTED for a call past a concurrency limit; flag names the limit."""
    return _limit(
        f"concurrent RPCs ({flag})",
        limit,
        "too many RPCs are running; retry shortly",
        "CONCURRENCY_LIMIT",
    )


def request_missing() -> Failure:
    """INVALID_ARGUMENT for a unary call that ended its side without sending its request."""
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="request", description="the call ended without sending its request message"
            )
        ]
    )
    return Failure(
        grpc.StatusCode.INVALID_ARGUMENT,
        "the call sent no request message",
        (_error_info(MALFORMED_REQUEST, FACADE_DOMAIN, {}), bad),
        reason=MALFORMED_REQUEST,
    )


def idle(timeout_s: float) -> Failure:
    """UNAVAILABLE for a call closed after timeout_s of silence while it owed nothing.

    Nothing of the call was in flight at AWS or unanswered, so it is safe to retry.
    """
    return Failure(
        grpc.StatusCode.UNAVAILABLE,
        f"nothing arrived for {timeout_s:g} s and nothing was in flight; the call was closed, "
        "every request read was answered",
        (_error_info("IDLE_TIMEOUT", FACADE_DOMAIN, {"idle_timeout_s": f"{timeout_s:g}"}),),
        reason="IDLE_TIMEOUT",
    )


def shutting_down(stream_ended: bool = False) -> Failure:
    """UNAVAILABLE for a call refused, or a batch stream ended, because the server drains."""
    delay = duration_pb2.Duration(seconds=1)
    message = (
        "the server is shutting down; every item read was answered, send the rest elsewhere"
        if stream_ended
        else "the server is shutting down; retry on another instance"
    )
    return Failure(
        grpc.StatusCode.UNAVAILABLE,
        message,
        (
            _error_info("SHUTTING_DOWN", FACADE_DOMAIN, {}),
            error_details_pb2.RetryInfo(retry_delay=delay),
        ),
        reason="SHUTTING_DOWN",
    )


def unexpected() -> Failure:
    """INTERNAL for a bug of ours; the log has the traceback, the caller does not."""
    return Failure(
        grpc.StatusCode.INTERNAL,
        FALLBACK.message,
        (_error_info("INTERNAL", FACADE_DOMAIN, {}),),
        reason="INTERNAL",
    )
