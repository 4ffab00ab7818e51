"""Creating a resource exactly once per request_id, on top of AWS creates that are not idempotent.

AWS's CreateRoom and CreateLoggingConfiguration take no client token and
names need not be unique, so a blind retry can make a second resource. With a
request_id (AIP-155), the service:

1. claims the id in the idempotency store (a duplicate waits, or gets the
   resource), and renews the claim while it works, so a claim whose owner died
   lapses within one claim timeout rather than after the owner's whole budget;
2. tags the resource ivschat-grpc:request-id=<id>, so it can be found again;
3. after an ambiguous failure (5xx, read timeout, connection lost after
   sending), looks the resource up (its listing, then the tag) *before* it
   retries: found, it is returned; not found, the create is retried;
4. records the resource, so every later call with the id gets the same one;
5. after an ambiguous attempt or a takeover, looks once more when AWS's
   longest plausible delay has passed, and deletes any resource a late create
   made beside the one the caller was given. The record says that look is
   owed, so if this process dies first, the next call with the id, in any
   process, looks again (at once, or when the delay has passed).

What differs between rooms and logging configurations (the create, the
lookup, the delete, the message a record holds) is a :class:`Kind`; one
Creator serves each kind.

Without a request_id nothing here runs, and ambiguous failures are never retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from google.protobuf import unknown_fields
from google.protobuf.message import Message
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import room_service_pb2 as pb

from ivschat_grpc.aws import convert
from ivschat_grpc.core.calls import Answer, AwsCallError, CallControl, Lookup, Resources
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
from ivschat_grpc.core.pacing import Priority

log = logging.getLogger(__name__)

RESERVED_TAG: Final = "ivschat-grpc:request-id"
# Lookups and creates after ambiguous failures, before giving the caller the ambiguity.
_ROUNDS: Final = 3
# Kept back from the owner's budget (at most this, at most 10 %), so it stops
# before its record's retention could run out under it.
_LEASE_MARGIN_S: Final = 1.0
# How long closing waits for a cancelled background task to end.
_CLOSE_WAIT_S: Final = 1.0
# A record whose resource a late create may still duplicate carries when its
# last look is due (Unix seconds, a double) in this field of the stored
# message, which neither Room nor LoggingConfiguration defines. Any reader
# parses such a record as its message: a replica still on an older version,
# sharing Redis during an upgrade, returns the room and ignores the field.
# Records without it are settled.
_LOOK_DUE_FIELD: Final = 536_870_911  # the largest field number protobuf allows
_FIXED64: Final = 1  # the wire type of a double


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


_LOOK_DUE_TAG: Final = _varint(_LOOK_DUE_FIELD << 3 | _FIXED64)
# The most request_ids one process remembers having looked at again.
_LOOKED_MAX: Final = 10_000


M = TypeVar("M", bound=Message)


def encode_record(resource: Message, look_due: float | None) -> bytes:
    """The stored form of resource; look_due: when a last look for duplicates is owed."""
    body = resource.SerializeToString()
    if look_due is None:
        return body
    return body + _LOOK_DUE_TAG + struct.pack("<d", look_due)


def decode_record(record: bytes, message: type[M]) -> tuple[M, float | None]:
    """The message in a stored record, and when its owed look is due (None if none is)."""
    resource = message.FromString(record)
    due = None
    fields = unknown_fields.UnknownFieldSet(resource)
    for index in range(len(fields)):  # a sequence that its type stubs do not call iterable
        entry = fields[index]
        if entry.field_number == _LOOK_DUE_FIELD and entry.wire_type == _FIXED64:
            (due,) = struct.unpack("<d", struct.pack("<Q", entry.data))
    resource.DiscardUnknownFields()  # nobody is handed the field
    return resource, due


def certainly_not_created(error: AwsCallError) -> bool:
    """Whether a failed attempt cannot have created the resource."""
    return ran(error.code, error.http_status) is Ran.NO


@dataclass(frozen=True, slots=True)
class Kind(Generic[M]):
    """Kind is one kind of resource a Creator makes: AWS's operations for it, and its message."""

    # The AWS operation that creates one, and the one that deletes one by ARN.
    create: str
    delete: str
    # How one is found again by its tag.
    lookup: Lookup
    # What a caller is given and a record holds, made from AWS's members.
    message: type[M]
    to_message: Callable[[Mapping[str, Any]], M]
    # Put before a request_id to make its record's key, so that one id used
    # for two kinds makes two records. Rooms' keys are the bare id, as they
    # were before there was a second kind, so their records stay valid. No
    # prefix holds a '/', which marks Once's keys (core/once.is_record_key):
    # what a creator makes can be looked up, so a replica without Redis may
    # go on making it.
    key_prefix: str = ""

    def key(self, request_id: str) -> str:
        """The store's key for request_id's record of this kind."""
        return self.key_prefix + request_id


ROOMS: Final[Kind[pb.Room]] = Kind(
    "CreateRoom",
    "DeleteRoom",
    # A room's name narrows the listing, and its summary lacks the message
    # limits, so each match is read whole.
    Lookup("ListRooms", "rooms", filters=("name",), read="GetRoom"),
    pb.Room,
    convert.to_room,
)
LOGGING_CONFIGURATIONS: Final[Kind[lc_pb.LoggingConfiguration]] = Kind(
    "CreateLoggingConfiguration",
    "DeleteLoggingConfiguration",
    # No filter, and each summary carries every member: an account holds ten
    # by default, so the whole listing is a page or two.
    Lookup("ListLoggingConfigurations", "loggingConfigurations"),
    lc_pb.LoggingConfiguration,
    convert.to_logging_configuration,
    key_prefix="logging-configuration:",
)


@dataclass(frozen=True, slots=True)
class Result(Generic[M]):
    """Result is the resource a call returns, and how it was obtained."""

    resource: M
    aws_request_id: str | None
    attempts: int
    replayed: bool  # an earlier call with the same request_id created it


def fingerprint(request: Message) -> str:
    """A digest of everything in the request but its request_id."""
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField("request_id")
    body.DiscardUnknownFields()  # a field this contract does not know cannot change the room
    return hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()


class Heartbeat:
    """Heartbeat renews the claims this process's owners hold, every third of a claim timeout.

    One task renews them all, and only while there are any. An owner whose
    claim could not be renewed in time has lost it: another call may own the
    request_id now, so it starts no further AWS call.
    """

    def __init__(self, store: Store, claim_timeout_s: float) -> None:
        self._store = store
        self._timeout_s = claim_timeout_s
        self._held: dict[tuple[str, str], _Held] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def hold(self, request_id: str, token: str) -> _Held:
        """Keep request_id's claim (proved by token) alive until drop."""
        loop = asyncio.get_running_loop()
        held = _Held(loop.time())
        self._held[(request_id, token)] = held
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._beat())
        return held

    def drop(self, request_id: str, token: str) -> None:
        """Stop renewing request_id's claim."""
        self._held.pop((request_id, token), None)

    async def close(self) -> None:
        """Stop renewing; the drain calls it once every owner has finished.

        Bounded: a store client that swallows the cancel (redis-py can, mid-
        command) must not hold the drain; the flag ends the loop then.
        """
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=_CLOSE_WAIT_S)

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self._timeout_s / 3
        while self._held and not self._closed:
            await asyncio.sleep(interval)
            for (request_id, token), held in list(self._held.items()):
                if held.lost or loop.time() - held.renewed_at < interval:
                    continue
                try:
                    owned = await self._store.renew(request_id, token)
                except Exception:  # noqa: BLE001 - any store failure: the claim may lapse, nothing more
                    owned = loop.time() - held.renewed_at < self._timeout_s
                else:
                    if owned:
                        held.renewed_at = loop.time()
                if not owned:
                    held.lost = True
                    log.warning("an owner lost its request_id claim: its lease lapsed")


@dataclass(slots=True)
class _Held:
    """_Held is one owner's claim under the heartbeat."""

    renewed_at: float
    lost: bool = False


class Creator(Generic[M]):
    """Creator makes one kind of resource: directly, or exactly once per request_id."""

    def __init__(
        self,
        aws: Resources,
        store: Store,
        lease_s: float,
        settle_s: float = 2.0,
        claim_timeout_s: float = 5.0,
        recheck_s: float = 40.0,
        lifecycle: Lifecycle | None = None,
        *,
        kind: Kind[M],
    ) -> None:
        self._aws = aws
        self._kind = kind
        self._store = store
        # A create sent by an owner that died or gave up may still land at AWS
        # this long after: then the service looks once more.
        self._recheck_s = recheck_s
        self._rechecks: set[asyncio.Task[None]] = set()
        # request_ids whose owed look this process has scheduled or made.
        self._looked: set[str] = set()
        # The most one owner may spend on a request_id, AWS calls included.
        self._lease_s = lease_s
        self.heartbeat = Heartbeat(store, claim_timeout_s)
        # How long a request that went unanswered may still be at work in AWS:
        # the lookup waits this long, so it does not miss a resource being created.
        self._settle_s = settle_s
        # An owner's work outlives its caller's deadline or cancel, so that the
        # resource it may be creating is recorded; duplicates meanwhile wait for
        # it, and so does the drain.
        self.lifecycle = lifecycle or Lifecycle()

    @property
    def operation(self) -> str:
        """The AWS operation this creator's creates are: CreateRoom, say."""
        return self._kind.create

    async def create(
        self,
        request: Message,
        params: Mapping[str, Any],
        timeout_s: float | None,
        *,
        priority: Priority = Priority.INTERACTIVE,
        control: CallControl | None = None,
    ) -> Result[M]:
        """Create what request describes (params: its AWS form), within timeout_s.

        request is the create's proto, whose optional request_id field decides
        whether the create is made exactly once.
        """
        control = control or CallControl()
        if not request.HasField("request_id"):
            created = await self._send_create(params, timeout_s, priority, control)
            return Result(
                self._kind.to_message(created.result), created.request_id, created.attempts, False
            )
        # Any kind's create request has it, which Message's type cannot say.
        request_id = str(getattr(request, "request_id")).lower()  # noqa: B009
        tagged = {**params, "tags": {**params.get("tags", {}), RESERVED_TAG: request_id}}
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        # The owner works on past the caller's deadline, for what it sent, but
        # waits for no slot past it: the caller is told at once instead.
        control.wait_until = deadline
        digest = fingerprint(request)
        while True:
            claimed_at = loop.time()
            claim = await self._claim(request_id, digest)
            if claim.verdict is Verdict.DONE:
                resource, due = decode_record(claim.room, self._kind.message)
                if due is not None:
                    self._look_again(request_id, params, _arn(resource), due)
                return Result(resource, None, 0, True)
            if claim.verdict in (Verdict.MISMATCH, Verdict.WAIT):
                await wait_or_refuse(self._store, self._kind.key(request_id), claim, remaining())
                continue
            margin = min(_LEASE_MARGIN_S, 0.1 * self._lease_s)
            owner_deadline = claimed_at + self._lease_s - margin
            work = self.lifecycle.track(
                asyncio.ensure_future(
                    self._own(
                        request_id,
                        claim.token,
                        claim.resolve_first,
                        tagged,
                        priority,
                        control,
                        owner_deadline,
                    )
                )
            )
            # If the caller leaves (deadline, cancel), nobody awaits the work's result.
            work.add_done_callback(_consume)
            try:
                return await asyncio.wait_for(asyncio.shield(work), remaining())
            except TimeoutError:
                # The work goes on and records the resource; retry with the same request_id.
                raise AwsCallError(Outcome.DEADLINE_EXCEEDED) from None

    def _send_create(
        self,
        params: Mapping[str, Any],
        timeout_s: float | None,
        priority: Priority,
        control: CallControl,
    ) -> Awaitable[Answer]:
        return self._aws.create(
            self._kind.create, params, timeout_s, priority=priority, control=control
        )

    def _find(
        self, params: Mapping[str, Any], request_id: str, timeout_s: float | None
    ) -> Awaitable[list[dict[str, Any]]]:
        """Every resource of this kind tagged with request_id (params: the create's)."""
        return self._aws.find(self._kind.lookup, params, RESERVED_TAG, request_id, timeout_s)

    def _delete(self, arn: str, timeout_s: float | None) -> Awaitable[None]:
        return self._aws.delete(self._kind.delete, arn, timeout_s)

    async def _claim(self, request_id: str, digest: str) -> Claim:
        """Claim request_id; a cancelled caller's win is given back (claim_surviving_cancel)."""

        def give_back(claim: Claim) -> None:
            # The drain waits for it, as for owners.
            self.lifecycle.track(
                asyncio.ensure_future(
                    self._release(request_id, claim.token, unknown=claim.resolve_first)
                )
            )

        key = self._kind.key(request_id)
        return await claim_surviving_cancel(self._store, key, digest, give_back)

    async def _own(
        self,
        request_id: str,
        token: str,
        resolve: bool,
        params: Mapping[str, Any],
        priority: Priority,
        control: CallControl,
        deadline: float,
    ) -> Result[M]:
        # The owner's budget ends before its lease does: after that, another caller
        # may take over, and two owners must never work at once.
        loop = asyncio.get_running_loop()
        held = self.heartbeat.hold(self._kind.key(request_id), token)

        def remaining() -> float:
            # A lost claim may be another call's now: start nothing more at AWS.
            return 0.0 if held.lost else max(0.0, deadline - loop.time())

        # A takeover means an earlier owner may have sent a create: treat it as ambiguous.
        state = _Rounds(resolve, settle=resolve, ambiguity=resolve)
        try:
            outcome = await self._rounds(
                request_id, token, state, params, remaining, priority, control
            )
        except AwsCallError as e:
            # After an ambiguous attempt, even a certain refusal of the next
            # leaves the resource maybe made (a lookup can miss a create AWS
            # is still at work on): the next owner must look before creating.
            unknown = state.ambiguity or not certainly_not_created(e)
            await asyncio.shield(self._release(request_id, token, unknown=unknown))
            raise
        except BaseException:
            # Cancelled (the server is stopping): the resource may exist. Settle the record.
            await asyncio.shield(self._release(request_id, token, unknown=True))
            raise
        else:
            if state.ambiguity:
                due = time.time() + self._recheck_s
                self._look_again(request_id, params, _arn(outcome.resource), due)
            return outcome
        finally:
            self.heartbeat.drop(self._kind.key(request_id), token)

    def _look_again(
        self, request_id: str, params: Mapping[str, Any], kept_arn: str, due: float
    ) -> None:
        """Look for duplicates of kept_arn once due (Unix time) has passed, once per process."""
        if request_id in self._looked:
            return
        if len(self._looked) >= _LOOKED_MAX:
            self._looked.clear()  # at worst, a later call looks once more
        self._looked.add(request_id)
        delay = max(0.0, due - time.time())
        task = asyncio.get_running_loop().create_task(
            self._recheck(request_id, params, kept_arn, delay)
        )
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    async def _recheck(
        self, request_id: str, params: Mapping[str, Any], kept_arn: str, delay: float
    ) -> None:
        """Delete every resource tagged with request_id but the one its callers were given."""
        await asyncio.sleep(delay)
        try:
            found = await self._find(params, request_id, self._recheck_s)
            for resource in found:
                if resource.get("arn") != kept_arn:
                    await self._delete(resource["arn"], self._recheck_s)
                    log.warning("deleted what a late %s made twice", self._kind.create)
        except AwsCallError as e:
            # The record still says a look is owed: the next call with the id tries again.
            self._looked.discard(request_id)
            log.warning("could not look again for a late create (%s)", e.code)

    async def close(self) -> None:
        """Stop the heartbeat and the pending second looks; the drain calls it last."""
        for task in list(self._rechecks):
            task.cancel()
        if self._rechecks:
            await asyncio.wait(set(self._rechecks), timeout=_CLOSE_WAIT_S)
        await self.heartbeat.close()

    async def _release(self, request_id: str, token: str, *, unknown: bool) -> None:
        """Give the claim back; a store that cannot is left to the lease, which lapses."""
        try:
            await self._store.release(self._kind.key(request_id), token, unknown=unknown)
        except StateUnavailable:
            log.warning("could not release a request_id claim; its lease will lapse")

    async def _rounds(
        self,
        request_id: str,
        token: str,
        state: _Rounds,
        params: Mapping[str, Any],
        remaining: Any,
        priority: Priority,
        control: CallControl,
    ) -> Result[M]:
        ambiguous: AwsCallError | None = None
        # The first ambiguous attempt's failure: after it, no later failure
        # can say the resource was not made (a lookup can miss a create AWS is
        # still at work on), so the caller is given this one instead.
        first: AwsCallError | None = None
        for _ in range(_ROUNDS):
            if state.resolve:
                if state.settle:
                    # A request that went unanswered may still be at work in AWS.
                    await asyncio.sleep(min(self._settle_s, remaining()))
                try:
                    found = await self._find(params, request_id, remaining())
                except AwsCallError as lookup:
                    raise (ambiguous or lookup) from lookup
                if found:
                    return await self._settle(request_id, token, found, remaining, control)
                state.resolve, state.settle, ambiguous = False, False, None  # not created
            try:
                created = await self._send_create(params, remaining(), priority, control)
            except AwsCallError as e:
                if not certainly_not_created(e) and e.code != Outcome.DEADLINE_EXCEEDED:
                    state.resolve, state.settle, state.ambiguity = True, True, True
                    ambiguous = e  # find out before retrying
                    first = first or e
                    continue
                if first is not None and certainly_not_created(e):
                    raise first from e
                raise
            if state.ambiguity:
                # An earlier attempt may yet show up: converge on one resource.
                try:
                    found = await self._find(params, request_id, remaining())
                except AwsCallError:
                    # The lookup was shed or timed out, but this resource exists:
                    # it is the answer, and the look its record owes converges later.
                    found = [dict(created.result)]
                return await self._settle(request_id, token, found, remaining, control)
            resource = self._kind.to_message(created.result)
            return await self._record(request_id, token, resource, created, control)
        assert ambiguous is not None  # noqa: S101 - only ambiguity loops
        raise ambiguous

    async def _settle(
        self,
        request_id: str,
        token: str,
        found: list[dict[str, Any]],
        remaining: Any,
        control: CallControl,
    ) -> Result[M]:
        """Keep one resource of those tagged with request_id (the earliest), delete the rest."""
        keep, *extra = sorted(found, key=lambda r: (r.get("createTime"), r.get("arn")))
        for duplicate in extra:
            try:
                await self._delete(duplicate["arn"], remaining())
            except AwsCallError as e:
                # The kept one exists, so it is still the answer; the look the
                # record owes deletes what is left.
                log.warning("could not delete what %s made twice (%s)", self._kind.create, e.code)
        resource = self._kind.to_message(keep)
        # Only ambiguity leads here: a late create may yet duplicate the resource.
        due = time.time() + self._recheck_s
        return await self._record(
            request_id, token, resource, None, control, replayed=True, look_due=due
        )

    async def _record(
        self,
        request_id: str,
        token: str,
        resource: M,
        created: Answer | None,
        control: CallControl,
        *,
        replayed: bool = False,
        look_due: float | None = None,
    ) -> Result[M]:
        """Record resource; if another owner took over meanwhile, return what it recorded.

        look_due, if given, is when the record's owed look for duplicates is due.
        """
        aws_request_id = created.request_id if created is not None else None
        key = self._kind.key(request_id)
        try:
            if await self._store.finish(key, token, encode_record(resource, look_due)):
                return Result(resource, aws_request_id, control.attempts, replayed)
            # Our lease ran out and another call owns the id now: its resource is the answer.
            done = await self._store.peek(key)
        except StateUnavailable:
            # The resource exists and is tagged; the claim lapses, and the next
            # call with this request_id looks it up and finds it.
            log.warning("could not record a created resource; a retry will look it up")
            return Result(resource, aws_request_id, control.attempts, replayed)
        if done:
            recorded, _ = decode_record(done, self._kind.message)
            if _arn(recorded) != _arn(resource):
                await self._delete(_arn(resource), None)
            return Result(recorded, None, control.attempts, True)
        return Result(resource, None, control.attempts, replayed)


def _arn(resource: Message) -> str:
    """A resource's ARN: every kind's message has one."""
    return str(getattr(resource, "arn"))  # noqa: B009 - which Message's type cannot say


@dataclass(slots=True)
class _Rounds:
    """_Rounds is what an owner knows about earlier attempts on its request_id."""

    resolve: bool  # the resource may exist: look it up before creating
    settle: bool = False  # a request may still be at work in AWS: wait before looking
    ambiguity: bool = False  # an attempt was ambiguous: converge after creating


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve an abandoned owner's result, so its failure is not reported as unhandled."""
    if not task.cancelled():
        task.exception()
