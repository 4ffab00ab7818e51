"""The error contract as one table: a row per outcome, AWS's and the facade's own.

Each row names the gRPC code, the rich detail that goes beside ErrorInfo, the
ErrorInfo reason, whether the operation's result may exist (so a caller must
not simply retry), and a fixed message. Messages are templates over the
operation's name and a few numbers; no exception text or stack trace ever
reaches a caller. docs/errors.md is generated from this table.

Adding an AWS operation adds rows here (and its own row in
core/operations.py), not code paths.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import grpc

from ivschat_grpc.core.outcomes import Outcome
from ivschat_grpc.core.tag_sync import State

AWS_DOMAIN: Final = "ivschat.amazonaws.com"
FACADE_DOMAIN: Final = "ivschat-grpc"


class Detail(enum.Enum):
    """Detail names the rich detail a row adds beside ErrorInfo."""

    NONE = "none"
    BAD_REQUEST = "BadRequest"
    PRECONDITION = "PreconditionFailure"
    RESOURCE = "ResourceInfo"
    QUOTA = "QuotaFailure"
    RETRY = "RetryInfo"
    # A quota of ours that a retry can meet later: which one, and when.
    QUOTA_RETRY = "QuotaFailure, RetryInfo"


class Refused(enum.StrEnum):
    """Refused names the facade's own answers that are not about an AWS call."""

    INVALID_REQUEST = "InvalidRequest"
    INVALID_REQUEST_CUT = "InvalidRequestCut"
    MALFORMED_REQUEST = "MalformedRequest"
    REQUEST_MISSING = "RequestMissing"
    ITEMS_PER_STREAM = "ItemsPerStream"
    TOO_MANY_STREAMS = "TooManyStreams"
    TOO_MANY_RPCS = "TooManyRpcs"
    IDLE = "Idle"
    SHUTTING_DOWN = "ShuttingDown"
    STREAM_SHUT_DOWN = "StreamShutDown"
    CALLER_UNAUTHENTICATED = "CallerUnauthenticated"
    CALLER_DENIED = "CallerDenied"
    UNEXPECTED = "Unexpected"


Key = Outcome | Refused


@dataclass(frozen=True, slots=True)
class Row:
    """Row is one outcome's answer.

    message may name {operation} (e.g. CreateRoom), {effect} (what may exist
    after it, from core/operations.py) and the numbers a builder passes. reason None
    means the AWS error code itself is the reason, in AWS's domain.
    """

    code: grpc.StatusCode
    detail: Detail
    message: str
    reason: str | None = None
    may_exist: bool = False
    retry_after_s: float = 0.0

    @property
    def domain(self) -> str:
        """ErrorInfo's domain: AWS's for its own codes, the facade's for the rest."""
        return AWS_DOMAIN if self.reason is None else FACADE_DOMAIN


_C = grpc.StatusCode
_REFUSED_CREDENTIALS: Final = Row(
    _C.INTERNAL,
    Detail.NONE,
    "AWS refused the service's own credentials for {operation}",
    "AWS_CREDENTIALS_REFUSED",
)

CONTRACT: Final[Mapping[Key, Row]] = {
    # --- AWS's answers
    Outcome.VALIDATION: Row(
        _C.INVALID_ARGUMENT, Detail.BAD_REQUEST, "AWS rejected the fields of {operation}"
    ),
    Outcome.ACCESS_DENIED: Row(
        _C.PERMISSION_DENIED,
        Detail.NONE,
        "AWS denied the service's role permission to call {operation}",
    ),
    Outcome.PENDING_VERIFICATION: Row(
        _C.FAILED_PRECONDITION,
        Detail.PRECONDITION,
        "the AWS account is pending verification; {operation} did not run",
    ),
    Outcome.NOT_FOUND: Row(
        _C.NOT_FOUND, Detail.RESOURCE, "a resource that {operation} names does not exist"
    ),
    Outcome.CONFLICT: Row(
        _C.ABORTED, Detail.RESOURCE, "{operation} conflicts with a resource's state"
    ),
    Outcome.QUOTA_EXCEEDED: Row(
        _C.RESOURCE_EXHAUSTED, Detail.QUOTA, "the AWS account's quota for {operation} is spent"
    ),
    Outcome.THROTTLED: Row(
        _C.RESOURCE_EXHAUSTED,
        Detail.RETRY,
        "AWS throttled {operation}; it did not run, retry later",
        retry_after_s=1.0,
    ),
    Outcome.INTERNAL_SERVER: Row(
        _C.INTERNAL,
        Detail.NONE,
        "AWS failed internally during {operation}; {effect}",
        may_exist=True,
    ),
    Outcome.SERVICE_UNAVAILABLE: Row(
        _C.UNAVAILABLE,
        Detail.RETRY,
        "AWS IVS Chat is unavailable; {operation} did not run, retry later",
        retry_after_s=1.0,
    ),
    # AWS will not authenticate the facade itself. The caller can do nothing
    # about it, hence INTERNAL rather than an auth code.
    Outcome.UNRECOGNIZED_CLIENT: _REFUSED_CREDENTIALS,
    Outcome.INVALID_SIGNATURE: _REFUSED_CREDENTIALS,
    Outcome.INCOMPLETE_SIGNATURE: _REFUSED_CREDENTIALS,
    Outcome.MISSING_AUTHENTICATION_TOKEN: _REFUSED_CREDENTIALS,
    Outcome.EXPIRED_TOKEN: _REFUSED_CREDENTIALS,
    Outcome.INVALID_CLIENT_TOKEN_ID: _REFUSED_CREDENTIALS,
    Outcome.SIGNATURE_DOES_NOT_MATCH: _REFUSED_CREDENTIALS,
    # --- no answer from AWS
    Outcome.UNREACHABLE: Row(
        _C.UNAVAILABLE,
        Detail.RETRY,
        "AWS IVS Chat could not be reached; {operation} did not run",
        "AWS_UNREACHABLE",
        retry_after_s=1.0,
    ),
    Outcome.CONNECTION_LOST: Row(
        _C.INTERNAL,
        Detail.NONE,
        "the connection to AWS broke after {operation} was sent; {effect}",
        "AWS_CONNECTION_LOST",
        may_exist=True,
    ),
    Outcome.READ_TIMEOUT: Row(
        _C.INTERNAL,
        Detail.NONE,
        "AWS did not answer {operation} in time; {effect}",
        "AWS_READ_TIMEOUT",
        may_exist=True,
    ),
    Outcome.DEADLINE_EXCEEDED: Row(
        _C.DEADLINE_EXCEEDED,
        Detail.NONE,
        "the deadline passed before AWS answered {operation}; {effect}",
        "DEADLINE_EXCEEDED",
        may_exist=True,
    ),
    Outcome.DEADLINE_NOT_SENT: Row(
        _C.DEADLINE_EXCEEDED,
        Detail.RETRY,
        "the deadline passed while the call waited for the {operation} rate; it was not sent",
        "DEADLINE_EXCEEDED_NOT_SENT",
        retry_after_s=1.0,
    ),
    # RetryInfo says when the bucket's next slot that nobody holds opens.
    Outcome.RATE_LIMITED: Row(
        _C.RESOURCE_EXHAUSTED,
        Detail.QUOTA_RETRY,
        "no slot of AWS's {operation} quota could be had in time (within the call's "
        "deadline, or its queue is full); it was not sent, retry after RetryInfo's delay",
        "RATE_LIMIT_EXCEEDED",
    ),
    Outcome.ABANDONED: Row(
        _C.UNAVAILABLE,
        Detail.RETRY,
        "the stream ended before this item was sent; {operation} did not run",
        "NOT_SENT",
        retry_after_s=1.0,
    ),
    Outcome.UNFINISHED: Row(
        _C.UNAVAILABLE,
        Detail.NONE,
        "the stream ended before this item finished; retry with the same request_id",
        "UNFINISHED",
        may_exist=True,
    ),
    Outcome.SHUT_DOWN_IN_FLIGHT: Row(
        _C.INTERNAL,
        Detail.NONE,
        "the server shut down while {operation} was out to AWS; {effect}",
        "SHUTDOWN_IN_FLIGHT",
        may_exist=True,
    ),
    Outcome.CREDENTIALS_MISSING: Row(
        _C.INTERNAL,
        Detail.NONE,
        "the service has no AWS credentials to call {operation}",
        "AWS_CREDENTIALS_MISSING",
    ),
    # --- the facade's refusals of a call, before anything is sent
    Outcome.REQUEST_ID_REUSED: Row(
        _C.INVALID_ARGUMENT,
        Detail.BAD_REQUEST,
        "request_id was already used for a different request",
        "REQUEST_ID_REUSED",
    ),
    Outcome.REQUEST_IN_PROGRESS: Row(
        _C.DEADLINE_EXCEEDED,
        Detail.RETRY,
        "a call with this request_id is still at work; retry with the same request_id",
        "REQUEST_IN_PROGRESS",
        retry_after_s=1.0,
    ),
    Outcome.OUTCOME_UNKNOWN: Row(
        _C.INTERNAL,
        Detail.NONE,
        "an earlier call with this request_id may have run {operation}; {effect}, "
        "and it is not sent again",
        "EARLIER_OUTCOME_UNKNOWN",
        may_exist=True,
    ),
    Outcome.STATE_UNAVAILABLE: Row(
        _C.UNAVAILABLE,
        Detail.RETRY,
        "the service could not record this request_id; nothing was sent to AWS, retry later",
        "STATE_UNAVAILABLE",
        retry_after_s=1.0,
    ),
    # --- the facade's own answers, not about an AWS call
    Refused.INVALID_REQUEST: Row(
        _C.INVALID_ARGUMENT,
        Detail.BAD_REQUEST,
        "the request has {violations} invalid field(s); see BadRequest details",
        "INVALID_REQUEST",
    ),
    # BadRequest names only the first violations, to keep the trailer small.
    Refused.INVALID_REQUEST_CUT: Row(
        _C.INVALID_ARGUMENT,
        Detail.BAD_REQUEST,
        "the request has {violations} invalid fields; BadRequest names the first {shown}",
        "INVALID_REQUEST",
    ),
    Refused.MALFORMED_REQUEST: Row(
        _C.INVALID_ARGUMENT,
        Detail.BAD_REQUEST,
        "the request could not be parsed; see BadRequest details",
        "MALFORMED_REQUEST",
    ),
    Refused.REQUEST_MISSING: Row(
        _C.INVALID_ARGUMENT,
        Detail.BAD_REQUEST,
        "the call sent no request message",
        "MALFORMED_REQUEST",
    ),
    Refused.ITEMS_PER_STREAM: Row(
        _C.RESOURCE_EXHAUSTED,
        Detail.QUOTA,
        "this stream has reached its item limit; send further items on a new stream",
        "BATCH_ITEMS_EXCEEDED",
    ),
    Refused.TOO_MANY_STREAMS: Row(
        _C.RESOURCE_EXHAUSTED,
        Detail.QUOTA,
        "too many batch streams are open; retry later",
        "BATCH_STREAMS_EXCEEDED",
    ),
    Refused.TOO_MANY_RPCS: Row(
        _C.RESOURCE_EXHAUSTED,
        Detail.QUOTA,
        "too many RPCs are running; retry shortly",
        "CONCURRENCY_LIMIT",
    ),
    Refused.IDLE: Row(
        _C.UNAVAILABLE,
        Detail.NONE,
        "nothing arrived for {timeout_s} s and nothing was in flight; the call was closed, "
        "every request read was answered",
        "IDLE_TIMEOUT",
    ),
    Refused.SHUTTING_DOWN: Row(
        _C.UNAVAILABLE,
        Detail.RETRY,
        "the server is shutting down; retry on another instance",
        "SHUTTING_DOWN",
        retry_after_s=1.0,
    ),
    Refused.STREAM_SHUT_DOWN: Row(
        _C.UNAVAILABLE,
        Detail.RETRY,
        "the server is shutting down; every item read was answered, send the rest elsewhere",
        "SHUTTING_DOWN",
        retry_after_s=1.0,
    ),
    Refused.CALLER_UNAUTHENTICATED: Row(
        _C.UNAUTHENTICATED,
        Detail.NONE,
        "send 'authorization: Bearer <token>' or a client certificate",
        "CREDENTIALS_MISSING",
    ),
    Refused.CALLER_DENIED: Row(
        _C.PERMISSION_DENIED, Detail.NONE, "these credentials are not allowed", "CREDENTIALS_DENIED"
    ),
    Refused.UNEXPECTED: Row(
        _C.INTERNAL, Detail.NONE, "the service failed unexpectedly", "INTERNAL"
    ),
}

# What a failed update made of several AWS calls (the fields, then the tags)
# adds to its row's message, naming its parts by state (core/tag_sync.py); its
# ErrorInfo metadata names them under the same states' keys.
PARTIAL_UPDATE: Final = "; of this update, {parts}; the same request sent again converges"
PARTIAL_STATES: Final[Mapping[State, str]] = {
    State.APPLIED: "applied: {parts}",
    State.MAYBE_APPLIED: "maybe applied: {parts}",
    State.NOT_APPLIED: "not applied: {parts}",
}

# Codes AWS may answer that nobody listed, by HTTP status class; the first match wins.
BY_STATUS: Final[Sequence[tuple[range, Key]]] = (
    (range(503, 504), Outcome.SERVICE_UNAVAILABLE),
    (range(500, 600), Outcome.INTERNAL_SERVER),
    (range(429, 430), Outcome.THROTTLED),
)


def row_for(code: str, http_status: int | None) -> tuple[Key, Row]:
    """The row for an AWS error code, or for its HTTP status when nobody listed the code."""
    outcome = Outcome.of(code)
    if outcome is not None:
        return outcome, CONTRACT[outcome]
    for statuses, key in BY_STATUS:
        if http_status in statuses:
            return key, CONTRACT[key]
    return Refused.UNEXPECTED, CONTRACT[Refused.UNEXPECTED]


def contract_markdown(http_statuses: Mapping[str, int]) -> str:
    """The table as Markdown: docs/errors.md holds this text.

    http_statuses gives the HTTP status AWS answers each of its codes with,
    from the service model.
    """
    rows = [
        "| outcome | HTTP | gRPC | ErrorInfo reason | detail | result may exist | resent here "
        "| message |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, row in CONTRACT.items():
        from_aws = isinstance(key, Outcome) and key.from_aws
        http = str(http_statuses.get(key, "")) if from_aws else "-"
        reason = "the AWS code" if row.reason is None else f"`{row.reason}`"
        detail = "" if row.detail is Detail.NONE else row.detail.value
        if row.detail is Detail.RETRY:
            detail += f" ({row.retry_after_s:g} s)"
        elif row.detail is Detail.QUOTA_RETRY:
            detail += " (until the next free slot)"
        message = row.message.format_map(_Shown())
        resent = "yes" if isinstance(key, Outcome) and key.resend else "no"
        rows.append(
            f"| `{key.value}` | {http or '-'} | {row.code.name} | {reason} | {detail or '-'} | "
            f"{'yes' if row.may_exist else 'no'} | {resent} | {message} |"
        )
    return "\n".join(rows) + "\n"


class _Shown(dict[str, str]):
    """Shows a message's placeholders as they read in the docs."""

    def __missing__(self, name: str) -> str:
        # The effect is the operation's own (core/operations.py): "the room may
        # exist" for CreateRoom, "the event may have been sent" for SendEvent.
        return "*its effect may have happened*" if name == "effect" else f"*{name}*"
