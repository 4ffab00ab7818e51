"""Every outcome an AWS call can have, and what each says about whether AWS ran it.

The members whose value is an AWS error code are AWS's answers; the others are
what the adapter or the facade saw when AWS gave none. Each carries the two
facts the rest of the service decides by:

- ran: whether AWS may have run the call. Only a call that AWS certainly did
  not run may be sent again, or answered "retry, nothing happened".
- resend: whether the adapter sends it again by itself (within its attempts).

The error table (errors/table.py) maps each member to a gRPC status; this
module knows nothing of gRPC, so the core can decide by it too.
"""

from __future__ import annotations

import enum
from typing import Self


class Ran(enum.Enum):
    """Ran says whether AWS may have run a call that ended in an outcome."""

    NO = "no"
    MAYBE = "maybe"


class Outcome(enum.StrEnum):
    """Outcome is how one AWS call ended, when it did not succeed."""

    ran: Ran
    from_aws: bool
    resend: bool

    def __new__(cls, value: str, ran: Ran, from_aws: bool, resend: bool = False) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.ran = ran
        member.from_aws = from_aws
        member.resend = resend
        return member

    # --- AWS's answers: the error codes of the ivschat model, and its common ones.
    VALIDATION = "ValidationException", Ran.NO, True
    ACCESS_DENIED = "AccessDeniedException", Ran.NO, True
    PENDING_VERIFICATION = "PendingVerification", Ran.NO, True
    NOT_FOUND = "ResourceNotFoundException", Ran.NO, True
    CONFLICT = "ConflictException", Ran.NO, True
    QUOTA_EXCEEDED = "ServiceQuotaExceededException", Ran.NO, True
    # AWS refused before running it, so sending it again cannot run it twice.
    THROTTLED = "ThrottlingException", Ran.NO, True, True
    INTERNAL_SERVER = "InternalServerException", Ran.MAYBE, True
    # A 503 from AWS's front end: the call did not reach the service.
    SERVICE_UNAVAILABLE = "ServiceUnavailable", Ran.NO, True
    # AWS will not authenticate the facade itself.
    UNRECOGNIZED_CLIENT = "UnrecognizedClientException", Ran.NO, True
    INVALID_SIGNATURE = "InvalidSignatureException", Ran.NO, True
    INCOMPLETE_SIGNATURE = "IncompleteSignatureException", Ran.NO, True
    MISSING_AUTHENTICATION_TOKEN = "MissingAuthenticationTokenException", Ran.NO, True
    EXPIRED_TOKEN = "ExpiredTokenException", Ran.NO, True
    INVALID_CLIENT_TOKEN_ID = "InvalidClientTokenId", Ran.NO, True
    SIGNATURE_DOES_NOT_MATCH = "SignatureDoesNotMatch", Ran.NO, True

    # --- No answer from AWS.
    # The connection was never made (refused, unreachable, DNS).
    UNREACHABLE = "EndpointUnreachable", Ran.NO, False, True
    # The connection broke after the request went out.
    CONNECTION_LOST = "ConnectionLost", Ran.MAYBE, False
    # botocore's read timeout fired while the request was out.
    READ_TIMEOUT = "ReadTimeout", Ran.MAYBE, False
    # The caller's deadline fired while the request was out.
    DEADLINE_EXCEEDED = "DeadlineExceeded", Ran.MAYBE, False
    # The caller's deadline fired while the call waited to be sent (for a pacing
    # slot, a connection slot or a retry's backoff).
    DEADLINE_NOT_SENT = "DeadlineExceededNotSent", Ran.NO, False
    # The operation's bucket had no slot for the call within its deadline, or
    # too many calls already waited for one: it was refused at once, unsent.
    RATE_LIMITED = "RateLimited", Ran.NO, False
    # The caller stopped the call (a batch stream ended) before it was sent.
    ABANDONED = "Abandoned", Ran.NO, False
    # A batch item with a request_id whose stream ended while it was being
    # worked on; the same request_id finds its room.
    UNFINISHED = "Unfinished", Ran.MAYBE, False
    # The server's grace period ran out while the request was out to AWS.
    SHUT_DOWN_IN_FLIGHT = "ShutDownInFlight", Ran.MAYBE, False
    # The standard credential chain found nothing to sign with.
    CREDENTIALS_MISSING = "CredentialsMissing", Ran.NO, False

    # --- The facade's own refusals, before anything is sent (core.calls.Refusal).
    # A request_id came back with a different request than the one it created.
    REQUEST_ID_REUSED = "RequestIdReused", Ran.NO, False
    # A call with the same request_id is still at work; this one gave up waiting.
    REQUEST_IN_PROGRESS = "RequestInProgress", Ran.NO, False
    # An earlier call with the same request_id, of an operation that is never
    # resent (SendEvent), ended without knowing whether AWS ran it, or its
    # process died mid-call; this one is not sent.
    OUTCOME_UNKNOWN = "EarlierOutcomeUnknown", Ran.MAYBE, False
    # The idempotency store could not record a claim (a full disk, say).
    STATE_UNAVAILABLE = "StateUnavailable", Ran.NO, False

    @classmethod
    def of(cls, code: str) -> Outcome | None:
        """The member for an error code, or None for a code nobody listed."""
        return cls._value2member_map_.get(code)  # type: ignore[return-value] # the map holds members


def ran(code: str, http_status: int | None) -> Ran:
    """Whether AWS may have run a call that failed with code (and HTTP status).

    A code nobody listed is judged by its status: AWS runs nothing it answers
    with a 4xx. Anything else may have run.
    """
    outcome = Outcome.of(code)
    if outcome is not None:
        return outcome.ran
    if http_status is not None and 400 <= http_status < 500:
        return Ran.NO
    return Ran.MAYBE
