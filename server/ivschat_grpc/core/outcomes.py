"""Names for the outcomes of an AWS call that AWS itself did not answer.

The adapter reports them, the error table maps them; neither owns the other.
"""

from typing import Final

# The connection was never made (refused, unreachable, DNS): AWS did not run
# the call, so it is safe to retry.
UNREACHABLE: Final = "EndpointUnreachable"
# The connection broke after the request went out: AWS may have run it.
CONNECTION_LOST: Final = "ConnectionLost"
# botocore's read timeout fired: AWS may have run it.
READ_TIMEOUT: Final = "ReadTimeout"
# The caller's deadline fired while the request was out: AWS may have run it.
DEADLINE_EXCEEDED: Final = "DeadlineExceeded"
# The caller's deadline fired while the call waited to be sent (for a pacing
# slot, a connection slot or a retry's backoff): AWS did not run it.
DEADLINE_NOT_SENT: Final = "DeadlineExceededNotSent"
# The caller stopped the call (a batch stream ended) before it was sent.
ABANDONED: Final = "Abandoned"
# A batch item with a request_id whose stream ended while it was being worked
# on: the room may exist; the same request_id finds it.
UNFINISHED: Final = "Unfinished"
# The server's grace period ran out while the request was out to AWS: AWS
# may have run it, and the caller is told so before the server stops.
SHUT_DOWN_IN_FLIGHT: Final = "ShutDownInFlight"
# A request_id came back with a different request than the one it created.
REQUEST_ID_REUSED: Final = "RequestIdReused"
# A call with the same request_id is still creating the room; this one gave up waiting.
REQUEST_IN_PROGRESS: Final = "RequestInProgress"
# The standard credential chain found nothing to sign with.
CREDENTIALS_MISSING: Final = "CredentialsMissing"
# The idempotency store could not record a claim (a full disk, say), so the
# call was never sent to AWS.
STATE_UNAVAILABLE: Final = "StateUnavailable"

# Every outcome above: none of them is an error code AWS sent.
NOT_FROM_AWS: Final = frozenset(
    {
        UNREACHABLE,
        CONNECTION_LOST,
        READ_TIMEOUT,
        DEADLINE_EXCEEDED,
        DEADLINE_NOT_SENT,
        ABANDONED,
        UNFINISHED,
        SHUT_DOWN_IN_FLIGHT,
        REQUEST_ID_REUSED,
        REQUEST_IN_PROGRESS,
        CREDENTIALS_MISSING,
        STATE_UNAVAILABLE,
    }
)
