"""What a call to AWS reports back to the core: how it failed, and how to stop it.

The adapter raises these and the core decides by them, so neither the core nor
the servicers need to know botocore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ivschat_grpc.core.outcomes import Outcome
from ivschat_grpc.core.pacing import Priority
from ivschat_grpc.core.violations import Violation


class CallFailed(Exception):
    """CallFailed is a call that ended without its result; code names the outcome.

    code is an Outcome, or an AWS error code that nobody listed.
    """

    def __init__(self, code: str, *, attempts: int = 0) -> None:
        super().__init__(code)
        self.code = code
        self.attempts = attempts
        self.http_status: int | None = None
        self.fields: Mapping[str, Any] = {}
        self.request_id: str | None = None


class AwsCallError(CallFailed):
    """AwsCallError is an AWS call's failure, reduced to what the error table needs."""

    def __init__(
        self,
        code: str,
        *,
        http_status: int | None = None,
        fields: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(code, attempts=attempts)
        self.http_status = http_status
        self.fields = fields or {}
        self.request_id = request_id


class RateLimited(AwsCallError):
    """RateLimited is a call its operation's bucket refused a slot: shed, never sent.

    operation is the bucket's (an Update's tags are TagResource's), and
    retry_after_s is how long until a slot opens that nobody ahead holds.
    """

    def __init__(self, operation: str, retry_after_s: float, *, attempts: int = 0) -> None:
        super().__init__(Outcome.RATE_LIMITED, attempts=attempts)
        self.operation = operation
        self.retry_after_s = retry_after_s


class Refusal(CallFailed):
    """Refusal is the facade's own no, given before anything was sent to AWS.

    violations name the request's fields at fault, if the refusal is about them.
    """

    def __init__(self, outcome: Outcome, violations: Sequence[Violation] = ()) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.violations = tuple(violations)


@dataclass(slots=True)
class CallControl:
    """CallControl lets a caller stop a call between attempts, never mid-request.

    sending is true while a request is out to AWS: then its answer must be
    awaited, because AWS may be creating the room.
    """

    stopped: bool = False
    sending: bool = False
    attempts: int = 0
    # An earlier attempt, resent, may have run: its effect may be why a later
    # attempt fails (a delete finding no room).
    maybe_ran: bool = False
    # When the caller stops waiting (the loop's time), where the call's own
    # timeout outlives it (an owner of a request_id): no slot is waited for
    # past it, since a call sent then would be answered to nobody.
    wait_until: float | None = None

    def may_have_created(self, with_request_id: bool) -> bool:
        """Whether AWS may have made the room: a request is out, or, with a
        request_id (whose owner looks before it retries), an earlier attempt may have.
        """
        return self.sending or (with_request_id and self.attempts > 0)


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer is an operation's output and AWS's request id."""

    result: Mapping[str, Any]
    request_id: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Lookup:
    """Lookup is how the service finds the resources a create made, by their tag.

    listing is the operation that pages through them, and items the member of
    its output that holds a page's; filters are the create's members that the
    listing takes as filters too (a room's name); read, if given, is the
    operation that reads each match whole, where the listing's summaries
    lack members.
    """

    listing: str
    items: str
    filters: tuple[str, ...] = ()
    read: str | None = None


class Operations(Protocol):
    """Operations is how a servicer calls any IVS Chat operation; the adapter provides it."""

    async def call(
        self,
        operation: str,
        params: Mapping[str, Any],
        timeout_s: float | None,
        *,
        control: CallControl | None = None,
    ) -> Answer:
        """Call operation, paced to its quota, resending what its row allows."""


class Resources(Protocol):
    """Resources is what the core asks of AWS about what it creates; the adapter provides it."""

    async def create(
        self,
        operation: str,
        params: Mapping[str, Any],
        timeout_s: float | None,
        *,
        priority: Priority = ...,
        control: CallControl | None = None,
    ) -> Answer:
        """Call a create once per attempt, retrying only what AWS did not run."""

    async def find(
        self,
        lookup: Lookup,
        params: Mapping[str, Any],
        tag_key: str,
        tag_value: str,
        timeout_s: float | None,
    ) -> list[dict[str, Any]]:
        """Every resource tagged tag_key=tag_value, found as lookup says (params: the create's)."""

    async def delete(self, operation: str, arn: str, timeout_s: float | None) -> None:
        """Delete a resource by its ARN; an already deleted one is fine."""
