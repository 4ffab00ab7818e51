"""request_id records: their state machine, the store protocol, and the in-process store.

The SQLite store (core/sqlite_store.py) and the Redis one (replicas/redis_store.py)
follow the same protocol.

A record follows one request_id through one state machine:
- pending: an owner is creating the room, under a short lease that it renews
  while it works (a heartbeat). A duplicate waits. If the owner dies, the lease
  lapses within seconds and the next caller takes over. It must then look the
  room up first, since the dead owner may have created it.
- done: the room exists; duplicates get it back.
- unknown: the last attempt ended ambiguously and could not be resolved; the
  next caller takes over and looks the room up before it creates anything.
A record for a request that certainly created nothing is deleted, so a retry
can go ahead. Records live for the retention window, then expire.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ivschat_grpc.core.calls import Refusal
from ivschat_grpc.core.outcomes import Outcome
from ivschat_grpc.core.violations import Violation


class Verdict(enum.Enum):
    """Verdict is what a claim on a request_id found."""

    OWNER = "owner"  # go ahead and create (look it up first if resolve_first)
    DONE = "done"  # the room exists: room holds it
    WAIT = "wait"  # another call is creating it: wait, then claim again
    MISMATCH = "mismatch"  # the request_id was used for a different request


@dataclass(frozen=True, slots=True)
class Claim:
    """Claim is a claim's outcome; an owner's token proves it on finish or release."""

    verdict: Verdict
    token: str = ""
    room: bytes = b""
    resolve_first: bool = False


class StateUnavailable(Exception):
    """StateUnavailable is a store that cannot read or write its records (a full disk, say)."""


class Store(Protocol):
    """Store keeps idempotency records; every method is atomic per request_id."""

    async def claim(self, request_id: str, fingerprint: str) -> Claim:
        """Take ownership of request_id, or say why not."""

    async def finish(self, request_id: str, token: str, room: bytes) -> bool:
        """Record the result (a serialized Room, say); False if token lost the id."""

    async def peek(self, request_id: str) -> bytes:
        """The recorded room, or b"" if there is none yet."""

    async def renew(self, request_id: str, token: str) -> bool:
        """Extend the owner's lease by one lease; False if token no longer owns the id."""

    async def release(self, request_id: str, token: str, *, unknown: bool) -> None:
        """Give up ownership: unknown if the room may exist, else forget the record."""

    async def wait(self, request_id: str, timeout_s: float | None) -> None:
        """Return once request_id is no longer pending (or timeout_s has passed)."""


async def claim_surviving_cancel(
    store: Store, key: str, digest: str, give_back: Callable[[Claim], None]
) -> Claim:
    """Claim key even if the caller is cancelled meanwhile; a claim it then won goes to give_back.

    The store's claim runs to its end whatever happens to the caller, since
    its record stays either way: an ownership nobody uses must be given back,
    or the next caller waits out its lease. A store that cannot record the
    claim fails the call before anything is sent.
    """
    claiming = asyncio.ensure_future(store.claim(key, digest))
    try:
        return await asyncio.shield(claiming)
    except asyncio.CancelledError:
        claiming.add_done_callback(lambda done: _give_back_won(done, give_back))
        raise
    except StateUnavailable:
        raise Refusal(Outcome.STATE_UNAVAILABLE) from None


async def wait_or_refuse(store: Store, key: str, claim: Claim, left_s: float | None) -> None:
    """For a claim another request holds: refuse it, or wait until key's record changes.

    A different request under the same key is refused; so is a wait past the
    caller's deadline, with the record still pending.
    """
    if claim.verdict is Verdict.MISMATCH:
        raise Refusal(
            Outcome.REQUEST_ID_REUSED,
            [Violation(("request_id",), "was already used for a different request")],
        )
    if left_s is not None and left_s <= 0:
        raise Refusal(Outcome.REQUEST_IN_PROGRESS)
    try:
        await store.wait(key, left_s)
    except StateUnavailable:
        raise Refusal(Outcome.STATE_UNAVAILABLE) from None


def _give_back_won(claiming: asyncio.Future[Any], give_back: Callable[[Claim], None]) -> None:
    if claiming.cancelled() or claiming.exception() is not None:
        return
    claim: Claim = claiming.result()
    if claim.verdict is Verdict.OWNER:
        give_back(claim)


def new_token() -> str:
    """A fresh owner's token: proof of ownership on finish, renew and release."""
    return secrets.token_hex(8)


class Waiters:
    """Waiters wake the calls waiting on a request_id in this process when its record changes."""

    def __init__(self) -> None:
        self._changed: dict[str, asyncio.Event] = {}

    def notify(self, request_id: str) -> None:
        """Wake every call waiting on request_id."""
        event = self._changed.pop(request_id, None)
        if event is not None:
            event.set()

    async def wait(self, request_id: str, deadline: float) -> None:
        """Return when request_id changes, or at deadline (time.monotonic()), whichever is first."""
        event = self._changed.setdefault(request_id, asyncio.Event())
        # A loop's timer may fire a little early (uvloop's are in whole
        # milliseconds), so the deadline is checked rather than trusted.
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue
            return


@dataclass(slots=True)
class _Record:
    fingerprint: str
    state: str
    token: str
    lease_until: float
    expires_at: float
    room: bytes = b""


class MemoryStore:
    """MemoryStore keeps records in this process: exactly-once within one replica."""

    def __init__(self, retention_s: float, lease_s: float) -> None:
        self._retention_s = retention_s
        self._lease_s = lease_s
        # Insertion order is expiry order, as every record gets the same retention.
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._waiters = Waiters()

    def _purge(self, now: float) -> None:
        while self._records:
            request_id, record = next(iter(self._records.items()))
            if record.expires_at > now:
                return
            del self._records[request_id]

    def _extend(self, request_id: str, record: _Record, now: float) -> None:
        # A record in use must outlive its lease, whatever is left of its retention.
        if record.expires_at < now + 2 * self._lease_s:
            record.expires_at = now + 2 * self._lease_s
            self._records.move_to_end(request_id)

    async def claim(self, request_id: str, fingerprint: str) -> Claim:
        now = time.monotonic()
        self._purge(now)
        record = self._records.get(request_id)
        if record is None:
            token = new_token()
            self._records[request_id] = _Record(
                fingerprint, "pending", token, now + self._lease_s, now + self._retention_s
            )
            return Claim(Verdict.OWNER, token)
        if record.fingerprint != fingerprint:
            return Claim(Verdict.MISMATCH)
        if record.state == "done":
            return Claim(Verdict.DONE, room=record.room)
        if record.state == "unknown" or record.lease_until < now:
            record.state, record.token = "pending", new_token()
            record.lease_until = now + self._lease_s
            self._extend(request_id, record, now)
            return Claim(Verdict.OWNER, record.token, resolve_first=True)
        return Claim(Verdict.WAIT)

    def adopt(self, request_id: str, fingerprint: str, token: str) -> None:
        """Hold, as pending under token, a claim made in another store."""
        now = time.monotonic()
        self._purge(now)
        self._records[request_id] = _Record(
            fingerprint, "pending", token, now + self._lease_s, now + self._retention_s
        )
        self._records.move_to_end(request_id)  # keep insertion order as expiry order

    async def finish(self, request_id: str, token: str, room: bytes) -> bool:
        record = self._records.get(request_id)
        owned = record is not None and record.token == token
        if record is not None and owned:
            record.state, record.room = "done", room
        self._waiters.notify(request_id)
        return owned

    async def peek(self, request_id: str) -> bytes:
        record = self._records.get(request_id)
        return record.room if record is not None and record.state == "done" else b""

    async def renew(self, request_id: str, token: str) -> bool:
        record = self._records.get(request_id)
        if record is None or record.token != token or record.state != "pending":
            return False
        now = time.monotonic()
        record.lease_until = now + self._lease_s
        self._extend(request_id, record, now)
        return True

    async def release(self, request_id: str, token: str, *, unknown: bool) -> None:
        record = self._records.get(request_id)
        if record is not None and record.token == token:
            if unknown:
                record.state = "unknown"
            else:
                del self._records[request_id]
        self._waiters.notify(request_id)

    async def wait(self, request_id: str, timeout_s: float | None) -> None:
        record = self._records.get(request_id)
        if record is None or record.state != "pending":
            return
        deadline = record.lease_until
        if timeout_s is not None:
            deadline = min(deadline, time.monotonic() + timeout_s)
        await self._waiters.wait(request_id, deadline)
