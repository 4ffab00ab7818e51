"""The adapter: the only module that knows aioboto3 and botocore.

One aioboto3 session and one client serve the whole process; they are opened
on the caller's AsyncExitStack and closed with it. botocore's own retries are
off, because botocore would re-send a CreateRoom after a 5xx or a read
timeout, when AWS may already have created the room. This module retries only
what AWS certainly did not run: throttling, and connections that were never
made. Everything else surfaces at once as an :class:`AwsCallError`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

import aioboto3
import aiohttp
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConfigParseError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from ivschat_grpc import __version__
from ivschat_grpc.aws.connection import AwsConnection, StaticCredentials
from ivschat_grpc.core.calls import Answer, AwsCallError, CallControl, Lookup, RateLimited
from ivschat_grpc.core.operations import OPERATIONS, Operation
from ivschat_grpc.core.outcomes import Outcome, Ran, ran
from ivschat_grpc.core.pacing import Pacer, Priority, Shed

if TYPE_CHECKING:
    from types_aiobotocore_ivschat import IvschatClient

# The client's method for each operation: CreateRoom is create_room.
_METHODS: Final[Mapping[str, str]] = {
    name: "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    for name in OPERATIONS
}
# Outcomes after which an operation that is safe to repeat is sent again: AWS
# may have run it, or did not, but either way it may succeed the next time.
_TRANSIENT: Final = frozenset(
    {
        Outcome.SERVICE_UNAVAILABLE,
        Outcome.INTERNAL_SERVER,
        Outcome.CONNECTION_LOST,
        Outcome.READ_TIMEOUT,
    }
)


def _classify(exc: Exception) -> AwsCallError:
    if isinstance(exc, ClientError):
        response: Mapping[str, Any] = exc.response
        meta = response.get("ResponseMetadata", {})
        fields = {k: v for k, v in response.items() if k not in ("Error", "ResponseMetadata")}
        return AwsCallError(
            str(response.get("Error", {}).get("Code", "Unknown")),
            http_status=meta.get("HTTPStatusCode"),
            fields=fields,
            request_id=meta.get("RequestId"),
        )
    if isinstance(exc, EndpointConnectionError):
        # aiobotocore wraps both a refused connect and a reset mid-request in
        # this one class; only the former is certainly unsent.
        cause = exc.kwargs.get("error")
        sent = not isinstance(cause, aiohttp.ClientConnectorError)
        return AwsCallError(Outcome.CONNECTION_LOST if sent else Outcome.UNREACHABLE)
    if isinstance(exc, ConnectTimeoutError):
        return AwsCallError(Outcome.UNREACHABLE)
    if isinstance(exc, ConnectionClosedError):
        return AwsCallError(Outcome.CONNECTION_LOST)
    if isinstance(exc, ReadTimeoutError):
        return AwsCallError(Outcome.READ_TIMEOUT)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AwsCallError(Outcome.CREDENTIALS_MISSING)
    return AwsCallError(type(exc).__name__)


class AttemptObserver(Protocol):
    """AttemptObserver hears of every attempt sent to AWS (for metrics)."""

    def on_attempt(self, outcome: str, seconds: float, retried: bool) -> None:
        """outcome is "OK" or the failure's code; retried says another attempt follows."""

    def on_shed(self, operation: str) -> None:
        """A call was refused a slot of operation's bucket, unsent."""


class _Unobserved:
    def on_attempt(self, outcome: str, seconds: float, retried: bool) -> None:
        pass

    def on_shed(self, operation: str) -> None:
        pass


class IvsChat:
    """IvsChat is the process's one AWS IVS Chat client."""

    def __init__(
        self,
        client: IvschatClient,
        settings: AwsConnection,
        pacers: Mapping[str, Pacer],
        observer: AttemptObserver | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._observer = observer or _Unobserved()
        self._pacers = pacers

    @classmethod
    async def open(
        cls,
        settings: AwsConnection,
        stack: AsyncExitStack,
        pacers: Mapping[str, Pacer],
        credentials: StaticCredentials | None = None,
        observer: AttemptObserver | None = None,
    ) -> IvsChat:
        """Open the client on stack; it closes when the stack does.

        pacers holds one pacer per operation (core/operations.py), which
        assembly builds, so that whoever else needs them (metrics) shares them.
        """
        session = _session(settings, credentials)
        config = AioConfig(
            region_name=settings.region,
            connect_timeout=settings.connect_timeout_s,
            read_timeout=settings.read_timeout_s,
            max_pool_connections=settings.max_pool_connections,
            retries={"total_max_attempts": 1, "mode": "standard"},
            user_agent_extra=f"ivschat-grpc/{__version__}",
            # Every request was already checked against the same model (contract.py)
            # before it got here; botocore's second check cost ~5% of a call's CPU.
            parameter_validation=False,
        )
        client = await stack.enter_async_context(
            session.client("ivschat", endpoint_url=settings.endpoint_url, config=config)
        )
        return cls(client, settings, pacers, observer)

    async def create(
        self,
        operation: str,
        params: Mapping[str, Any],
        timeout_s: float | None,
        *,
        priority: Priority = Priority.INTERACTIVE,
        control: CallControl | None = None,
    ) -> Answer:
        """Call a create (CreateRoom), retrying only what AWS did not run, all within timeout_s.

        Each attempt waits for a send slot from the operation's pacer, so the
        process never sends faster than the quota nor more than max_in_flight
        at once, and unary callers (INTERACTIVE) go ahead of batch items (BULK).
        A create is never resent after an outcome AWS may have run (its row).
        """
        return await self._call(operation, params, timeout_s, priority, control or CallControl())

    async def call(
        self,
        operation: str,
        params: Mapping[str, Any],
        timeout_s: float | None,
        *,
        control: CallControl | None = None,
    ) -> Answer:
        """Call operation for a caller, resending what its row allows, within timeout_s."""
        return await self._call(
            operation, params, timeout_s, Priority.INTERACTIVE, control or CallControl()
        )

    async def find(
        self,
        lookup: Lookup,
        params: Mapping[str, Any],
        tag_key: str,
        tag_value: str,
        timeout_s: float | None,
    ) -> list[dict[str, Any]]:
        """Every resource tagged tag_key=tag_value, as lookup finds them (params: the create's).

        Pages through all of lookup's listing, filtered by the create's members
        that it names, then reads each match in full if it names a read, all
        within timeout_s. These are the service's own lookups: they draw from
        their operations' buckets behind callers' work (BULK).
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        found: list[dict[str, Any]] = []
        # Every listing takes at most 50 a page (ListRooms, ListLoggingConfigurations).
        kwargs: dict[str, Any] = {"maxResults": 50}
        kwargs.update({f: params[f] for f in lookup.filters if params.get(f) is not None})
        while True:
            page = (await self._lookup(lookup.listing, kwargs, left())).result
            for summary in page[lookup.items]:
                if summary.get("tags", {}).get(tag_key) != tag_value:
                    continue
                if lookup.read is None:
                    found.append(dict(summary))
                else:
                    whole = await self._lookup(lookup.read, {"identifier": summary["arn"]}, left())
                    found.append(dict(whole.result))
            if not page.get("nextToken"):
                return found
            kwargs["nextToken"] = page["nextToken"]

    async def delete(self, operation: str, arn: str, timeout_s: float | None) -> None:
        """Delete a resource by its ARN (DeleteRoom); an already deleted one is fine."""
        try:
            await self._lookup(operation, {"identifier": arn}, timeout_s)
        except AwsCallError as e:
            if e.code != Outcome.NOT_FOUND:
                raise

    async def _lookup(
        self, operation: str, params: Mapping[str, Any], timeout_s: float | None
    ) -> Answer:
        """One of the service's own calls: behind callers' work, and never creating anything."""
        try:
            return await self._call(operation, params, timeout_s, Priority.BULK, CallControl())
        except AwsCallError as e:
            if e.code == Outcome.DEADLINE_EXCEEDED:
                # A lookup or a delete out when the deadline came makes no room.
                raise AwsCallError(Outcome.DEADLINE_NOT_SENT, attempts=e.attempts) from e
            raise

    def _may_resend(self, operation: Operation, error: AwsCallError) -> bool:
        """Whether a failed attempt may be sent again: what AWS did not run, always;
        what it may have run, only for an operation that is safe to repeat."""
        outcome = Outcome.of(error.code)
        if outcome is not None and outcome.resend:
            return True
        if not operation.resend_ambiguous:
            return False
        transient = error.http_status is not None and error.http_status >= 500
        return transient or outcome in _TRANSIENT

    async def _call(
        self,
        name: str,
        params: Mapping[str, Any],
        timeout_s: float | None,
        priority: Priority,
        control: CallControl,
    ) -> Answer:
        """Send one operation, paced by its own bucket, resending what its row allows."""
        operation = OPERATIONS[name]
        pacer = self._pacers[name]
        send = getattr(self._client, _METHODS[name])
        # Only CreateRoom's attempts are counted, as ivschat_grpc_aws_attempts says.
        observed = name == "CreateRoom"
        loop = asyncio.get_running_loop()
        # The last failure after which AWS may have run the call, for a change:
        # a shed resend must not say that nothing happened.
        ambiguous: AwsCallError | None = None
        try:
            async with asyncio.timeout(timeout_s) as scope:
                while True:
                    if control.stopped:
                        raise AwsCallError(Outcome.ABANDONED, attempts=control.attempts)
                    when = min(
                        (w for w in (scope.when(), control.wait_until) if w is not None),
                        default=None,
                    )
                    try:
                        await pacer.acquire(priority, None if when is None else when - loop.time())
                    except Shed as shed:
                        if ambiguous is not None:
                            raise ambiguous from None
                        self._observer.on_shed(name)
                        raise RateLimited(
                            name, shed.retry_after_s, attempts=control.attempts
                        ) from None
                    try:
                        if control.stopped:
                            raise AwsCallError(Outcome.ABANDONED, attempts=control.attempts)
                        control.attempts += 1
                        control.sending = True
                        sent_at = time.perf_counter()
                        try:
                            response = await send(**params)
                        except (ClientError, BotoCoreError) as exc:
                            control.sending = False
                            error = _classify(exc)
                            error.attempts = control.attempts
                            last_try = control.attempts >= self._settings.max_attempts
                            retry = self._may_resend(operation, error) and not last_try
                            if retry and ran(error.code, error.http_status) is Ran.MAYBE:
                                control.maybe_ran = True
                                ambiguous = error if operation.changes else None
                            if observed:
                                self._observer.on_attempt(
                                    error.code, time.perf_counter() - sent_at, retry
                                )
                            if not retry:
                                raise error from exc
                        else:
                            control.sending = False
                            if observed:
                                seconds = time.perf_counter() - sent_at
                                self._observer.on_attempt("OK", seconds, False)
                            result = {k: v for k, v in response.items() if k != "ResponseMetadata"}
                            request_id = response["ResponseMetadata"].get("RequestId")
                            return Answer(result, request_id, control.attempts)
                    finally:
                        pacer.release()
                    await asyncio.sleep(self._backoff(control.attempts))
        except TimeoutError as exc:
            # Cancelled mid-request, sending stays true: AWS may have run it.
            # So may an earlier attempt that was resent: then it was sent, too.
            sent = control.sending or control.maybe_ran
            code = Outcome.DEADLINE_EXCEEDED if sent else Outcome.DEADLINE_NOT_SENT
            control.sending = False
            raise AwsCallError(code, attempts=control.attempts) from exc

    def _backoff(self, attempt: int) -> float:
        # Full jitter, as AWS's architecture blog recommends for throttling.
        ceiling = min(self._settings.backoff_cap_s, self._settings.backoff_base_s * 2**attempt)
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


def _session(settings: AwsConnection, credentials: StaticCredentials | None) -> aioboto3.Session:
    if credentials is None:
        return aioboto3.Session(region_name=settings.region)
    return aioboto3.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        region_name=settings.region,
    )


class AwsChainError(Exception):
    """AwsChainError is AWS's standard chain refusing its own settings: a profile, a file."""


async def credentials_available(region: str) -> bool:
    """Whether AWS's standard chain finds credentials; never reveals them.

    A chain that cannot even be read (a profile named that no file holds, an
    unparsable config file, half a key pair) raises AwsChainError, naming the
    setting to fix: it is a bad setting, not a missing one.
    """
    try:
        session = aioboto3.Session(region_name=region)
        # aioboto3 returns a coroutine here; its stubs declare the sync signature.
        pending = cast("Awaitable[object | None]", session.get_credentials())
        credentials = await pending
    except ProfileNotFound as e:
        raise AwsChainError(
            f"AWS_PROFILE: no profile {e.kwargs.get('profile')!r} in AWS's config or "
            "credentials file; name one that exists, or unset AWS_PROFILE"
        ) from None
    except PartialCredentialsError as e:
        raise AwsChainError(
            f"AWS credentials from {e.kwargs.get('provider')} lack {e.kwargs.get('cred_var')}"
        ) from None
    except ConfigParseError as e:
        raise AwsChainError(f"AWS's config file {e.kwargs.get('path')} cannot be parsed") from None
    return credentials is not None
