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
from typing import TYPE_CHECKING, Any, Protocol, cast

import aioboto3
import aiohttp
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from ivschat_grpc import __version__
from ivschat_grpc.aws.connection import AwsConnection, StaticCredentials
from ivschat_grpc.core.calls import AwsCallError, CallControl, Created
from ivschat_grpc.core.outcomes import Outcome
from ivschat_grpc.core.pacing import Pacer, Priority

if TYPE_CHECKING:
    from types_aiobotocore_ivschat import IvschatClient


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


class _Unobserved:
    def on_attempt(self, outcome: str, seconds: float, retried: bool) -> None:
        pass


class IvsChat:
    """IvsChat is the process's one AWS IVS Chat client."""

    def __init__(
        self,
        client: IvschatClient,
        settings: AwsConnection,
        pacer: Pacer,
        observer: AttemptObserver | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._observer = observer or _Unobserved()
        self.pacer = pacer

    @classmethod
    async def open(
        cls,
        settings: AwsConnection,
        stack: AsyncExitStack,
        pacer: Pacer,
        credentials: StaticCredentials | None = None,
        observer: AttemptObserver | None = None,
    ) -> IvsChat:
        """Open the client on stack; it closes when the stack does.

        pacer is the process's one CreateRoom pacer, which assembly builds,
        so that whoever else needs it (the drain, metrics) shares the same one.
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
        return cls(client, settings, pacer, observer)

    async def create_room(
        self,
        params: Mapping[str, Any],
        timeout_s: float | None,
        *,
        priority: Priority = Priority.INTERACTIVE,
        control: CallControl | None = None,
    ) -> Created:
        """Call CreateRoom, retrying only what AWS did not run, all within timeout_s.

        Each attempt waits for a send slot from the pacer, so the process
        never sends faster than the quota nor more than max_in_flight at once,
        and unary callers (INTERACTIVE) go ahead of batch items (BULK).
        """
        control = control or CallControl()
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    if control.stopped:
                        raise AwsCallError(Outcome.ABANDONED, attempts=control.attempts)
                    await self.pacer.acquire(priority)
                    try:
                        if control.stopped:
                            raise AwsCallError(Outcome.ABANDONED, attempts=control.attempts)
                        control.attempts += 1
                        control.sending = True
                        sent_at = time.perf_counter()
                        try:
                            response = await self._client.create_room(**params)
                        except (ClientError, BotoCoreError) as exc:
                            control.sending = False
                            error = _classify(exc)
                            error.attempts = control.attempts
                            last_try = control.attempts >= self._settings.max_attempts
                            resend = Outcome.of(error.code)
                            retry = resend is not None and resend.resend and not last_try
                            self._observer.on_attempt(
                                error.code, time.perf_counter() - sent_at, retry
                            )
                            if not retry:
                                raise error from exc
                        else:
                            control.sending = False
                            self._observer.on_attempt("OK", time.perf_counter() - sent_at, False)
                            room = {k: v for k, v in response.items() if k != "ResponseMetadata"}
                            request_id = response["ResponseMetadata"].get("RequestId")
                            return Created(room, request_id, control.attempts)
                    finally:
                        self.pacer.release()
                    await asyncio.sleep(self._backoff(control.attempts))
        except TimeoutError as exc:
            # Cancelled mid-request, sending stays true: AWS may have run it.
            code = Outcome.DEADLINE_EXCEEDED if control.sending else Outcome.DEADLINE_NOT_SENT
            control.sending = False
            raise AwsCallError(code, attempts=control.attempts) from exc

    async def find_rooms(
        self, name: str | None, tag_key: str, tag_value: str, timeout_s: float | None
    ) -> list[dict[str, Any]]:
        """Every room tagged tag_key=tag_value (among rooms called name, if given).

        Pages through all of ListRooms, then reads each match in full with
        GetRoom. These calls are not CreateRoom's, so they take no pacing slots.
        """
        found: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(timeout_s):
                kwargs: dict[str, Any] = {"maxResults": 50}
                if name is not None:
                    kwargs["name"] = name
                while True:
                    page = await self._client.list_rooms(**kwargs)
                    for summary in page["rooms"]:
                        if summary.get("tags", {}).get(tag_key) == tag_value:
                            room = await self._client.get_room(identifier=summary["arn"])
                            found.append({k: v for k, v in room.items() if k != "ResponseMetadata"})
                    if not page.get("nextToken"):
                        return found
                    kwargs["nextToken"] = page["nextToken"]
        except (ClientError, BotoCoreError) as exc:
            raise _classify(exc) from exc
        except TimeoutError as exc:
            raise AwsCallError(Outcome.DEADLINE_NOT_SENT) from exc

    async def delete_room(self, arn: str, timeout_s: float | None) -> None:
        """Delete a room; an already deleted one is fine."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._client.delete_room(identifier=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != Outcome.NOT_FOUND:
                raise _classify(exc) from exc
        except BotoCoreError as exc:
            raise _classify(exc) from exc
        except TimeoutError as exc:
            raise AwsCallError(Outcome.DEADLINE_NOT_SENT) from exc

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


async def credentials_available(region: str) -> bool:
    """Whether AWS's standard chain finds credentials; never reveals them."""
    session = aioboto3.Session(region_name=region)
    # aioboto3 returns a coroutine here; its stubs declare the sync signature.
    pending = cast("Awaitable[object | None]", session.get_credentials())
    credentials = await pending
    return credentials is not None
