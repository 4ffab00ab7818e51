"""Sending an operation that AWS does not make idempotent at most once per request_id.

SendEvent takes no client token at AWS, and a duplicate event reaches every
user in the room, so the adapter never resends it after an outcome AWS may
have run. With a request_id (AIP-155) the service also keeps its outcome, in
the same store (and the same state machine) CreateRoom's request_ids use:

- the first call claims the id and sends; when AWS answers, the answer (the
  event's id) is recorded, and every later call with the id and the same
  request gets it back without sending;
- a call with the id and a different request is refused (REQUEST_ID_REUSED);
- a call while the first is still at work waits for it, and is refused
  (REQUEST_IN_PROGRESS) if its deadline comes first;
- a first call that certainly sent nothing (a throttle, a refused connection,
  a deadline spent waiting for the quota) forgets the claim, so a retry sends;
- a first call whose outcome is unknown (a 5xx, a lost connection, a deadline
  or a drain while the request was out, or a process that died mid-call,
  whose lease lapses) leaves the record unknown, and every later call with the
  id is answered OUTCOME_UNKNOWN: the event may have been sent, and nothing is
  sent again.

Unlike CreateRoom, there is nothing to look up: AWS keeps no record of sent
events that could tell whether one went out. The record's fingerprint is a
SHA-256 digest, so the store never holds the request's attributes in clear.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from typing import Any, Final

from google.protobuf.message import Message

from ivschat_grpc.core.calls import Answer, AwsCallError, CallControl, Operations, Refusal
from ivschat_grpc.core.creator import Heartbeat
from ivschat_grpc.core.idempotency import (
    Claim,
    StateUnavailable,
    Store,
    Verdict,
    claim_surviving_cancel,
    wait_or_refuse,
)
from ivschat_grpc.core.lifecycle import Lifecycle
from ivschat_grpc.core.outcomes import Outcome, Ran, ran

log = logging.getLogger(__name__)

# The proto field that carries the request_id, left out of the fingerprint.
_REQUEST_ID_FIELD: Final = "request_id"


def fingerprint(operation: str, request: Message) -> str:
    """A digest of operation and everything in request but its request_id."""
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField(_REQUEST_ID_FIELD)
    body.DiscardUnknownFields()  # a field this contract does not know changes nothing sent
    digest = hashlib.sha256(operation.encode() + b"\0")
    digest.update(body.SerializeToString(deterministic=True))
    return digest.hexdigest()


def record_key(operation: str, request_id: str) -> str:
    """The store's key for operation's request_id: apart from the creators' and each other's."""
    return f"{operation}/{request_id.lower()}"


def is_record_key(key: str) -> bool:
    """Whether key is one of record_key's: the creators' have no '/' (core/creator.Kind.key).

    A replica that cannot reach the shared store must not send for such a key
    unless it holds the record itself: another replica may have sent it, and
    unlike a room, a sent event cannot be looked up to find out.
    """
    return "/" in key


class Once:
    """Once sends a non-idempotent operation at most once per request_id (see the module)."""

    def __init__(
        self,
        aws: Operations,
        store: Store,
        claim_timeout_s: float,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self._aws = aws
        self._store = store
        self.heartbeat = Heartbeat(store, claim_timeout_s)
        # Releases that outlive their call's cancel; the drain waits for them.
        self.lifecycle = lifecycle or Lifecycle()

    async def send(
        self,
        operation: str,
        request_id: str,
        digest: str,
        params: Mapping[str, Any],
        timeout_s: float | None,
        *,
        result_member: str,
        control: CallControl | None = None,
    ) -> Answer:
        """Send operation once for request_id; a repeat gets result_member of the first answer."""
        control = control or CallControl()
        key = record_key(operation, request_id)
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        while True:
            claim = await self._claim(key, digest)
            if claim.verdict is Verdict.DONE:
                return Answer({result_member: claim.room.decode()}, None, 0)
            if claim.verdict in (Verdict.MISMATCH, Verdict.WAIT):
                await wait_or_refuse(self._store, key, claim, remaining())
                continue
            if claim.resolve_first:
                # An earlier call's outcome is unknown, or its owner died mid-call.
                await self._settle(key, claim.token, unknown=True)
                raise Refusal(Outcome.OUTCOME_UNKNOWN)
            return await self._own(
                operation, key, claim.token, params, remaining(), result_member, control
            )

    async def _own(
        self,
        operation: str,
        key: str,
        token: str,
        params: Mapping[str, Any],
        timeout_s: float | None,
        result_member: str,
        control: CallControl,
    ) -> Answer:
        self.heartbeat.hold(key, token)
        try:
            answer = await self._aws.call(operation, params, timeout_s, control=control)
        except AwsCallError as e:
            await self._settle(key, token, unknown=ran(e.code, e.http_status) is Ran.MAYBE)
            raise
        except BaseException:
            # Cancelled (the caller left, or the drain answers it): a request
            # that was out may have run.
            await self._settle(key, token, unknown=control.sending or control.maybe_ran)
            raise
        finally:
            self.heartbeat.drop(key, token)
        result = str(answer.result.get(result_member, ""))
        try:
            if not await self._store.finish(key, token, result.encode()):
                log.warning("a request_id's claim lapsed while its call was out; it was sent")
        except StateUnavailable:
            # The claim lapses, and a repeat is told the outcome is unknown: true enough.
            log.warning("could not record a sent request_id's answer")
        return answer

    async def _claim(self, key: str, digest: str) -> Claim:
        """Claim key; what a cancelled caller won is given back (see claim_surviving_cancel)."""

        def give_back(claim: Claim) -> None:
            self.lifecycle.track(
                asyncio.ensure_future(self._release(key, claim.token, unknown=claim.resolve_first))
            )

        return await claim_surviving_cancel(self._store, key, digest, give_back)

    async def _settle(self, key: str, token: str, *, unknown: bool) -> None:
        """Release the claim, through a cancel of the caller; the drain waits for it."""
        release = self.lifecycle.track(
            asyncio.ensure_future(self._release(key, token, unknown=unknown))
        )
        await asyncio.shield(release)

    async def _release(self, key: str, token: str, *, unknown: bool) -> None:
        try:
            await self._store.release(key, token, unknown=unknown)
        except StateUnavailable:
            log.warning("could not release a request_id claim; its lease will lapse")

    async def close(self) -> None:
        """Stop the heartbeat; the drain calls it once every call has ended."""
        await self.heartbeat.close()
