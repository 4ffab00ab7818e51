"""What the replicas share through Redis, and what each does alone when Redis is gone.

With --redis-url, every replica draws each operation's send slots from one
bucket per operation in Redis and keeps request_id records there. AWS's
quotas belong to the account, not the replica, so three replicas pacing
alone at 5/s would be throttled at 15/s.

When Redis does not answer, each replica falls back on its own:
- pacing CreateRoom at --redis-down-create-rate, which should be the account's
  rate divided by the most replicas that can run (the HPA's maxReplicas), and
  every other operation at the same fraction of its own quota;
- exactly-once within this process only: each replica keeps a copy of the
  records of its own calls, so a call in flight when Redis went away still ends
  once, and a repeat sent to the same replica still gets the same room. A
  SendEvent request_id this replica holds no record of is refused, unsent
  (STATE_UNAVAILABLE): another replica may have sent it, and a second event
  reaches every user in the room, where a second room can at least be found.
It says so in the ivschat_grpc_redis_up metric, a log line, and the health of
the service named REDIS_HEALTH, and goes back to Redis when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Final

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ivschat_grpc.core.idempotency import Claim, MemoryStore, StateUnavailable, Verdict
from ivschat_grpc.replicas.redis_store import RedisStore

log = logging.getLogger(__name__)

# The health service name that says whether Redis answers. The service itself
# stays SERVING without Redis: it goes on, degraded, as described above.
REDIS_HEALTH: Final = "ivschat-grpc.redis"
# A Redis that takes longer than this to answer counts as gone: pacing must not
# stall behind it.
REDIS_TIMEOUT_S: Final = 0.5
PROBE_INTERVAL_S: Final = 1.0
# The failures that mean "Redis is not there", as opposed to a bug in a script.
REDIS_DOWN: Final = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def connect(url: str) -> aioredis.Redis:
    """A Redis client that fails fast rather than retrying: the fallback is the retry."""
    return aioredis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )


class SharedState:
    """SharedState knows whether Redis answers, and tells the metric, the log and health.

    Operations report what they saw; a probe pings Redis every PROBE_INTERVAL_S
    so a return is noticed even without traffic, and an outage while idle too.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        on_change: Callable[[bool], Coroutine[Any, Any, None]],
        fallback_rate: float,
    ) -> None:
        self._redis = client
        self._on_change = on_change
        self._fallback_rate = fallback_rate
        self.up = True
        self._changing: set[asyncio.Task[None]] = set()
        self._stopping = False

    def stop_probing(self) -> None:
        """Make probe return at its next round."""
        self._stopping = True

    def _set(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        task = asyncio.get_running_loop().create_task(self._on_change(up))
        self._changing.add(task)
        task.add_done_callback(self._changing.discard)

    def failed(self, exc: BaseException) -> None:
        """An operation found Redis gone."""
        if self.up:
            # The exception's type only: its text can carry the Redis address.
            log.warning(
                "Redis unreachable (%s): pacing locally, CreateRoom at %s/s and every other "
                "operation at the same share of its quota; exactly-once within this process only",
                type(exc).__name__,
                self._fallback_rate,
            )
        self._set(False)

    def answered(self) -> None:
        """An operation reached Redis."""
        if not self.up:
            log.warning("Redis reachable again: shared pacing and exactly-once restored")
        self._set(True)

    async def probe(self) -> None:
        """Ping Redis until stop_probing; cancel to stop at once.

        The flag as well as the cancel: redis-py can swallow a cancel that lands
        inside a command and finish the command as if nothing happened, and
        the loop would then go on for ever.
        """
        while not self._stopping:
            try:
                await self._redis.ping()
            except REDIS_DOWN as e:
                self.failed(e)
            else:
                self.answered()
            await asyncio.sleep(PROBE_INTERVAL_S)


class LocalSlots:
    """LocalSlots spaces send slots 1/rate apart in this process alone."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._next = 0.0

    def start_after(self, when: float) -> None:
        """Open no slot sooner than one interval after when (this clock's time)."""
        self._next = max(self._next, when + self._interval)

    def reserve_now(self) -> float:
        """Reserve the next slot; seconds until it opens."""
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        return slot - now


# One bucket for all replicas, as a schedule: KEYS[1] holds the time (µs, by
# Redis's clock) of the next free slot. Each call takes that slot, or now if it
# has passed, moves it one interval on, and answers how long to wait for it.
# Slots go out in the order calls reach Redis, so a replica that asks gets the
# next one whatever the others do, and one alone gets every slot.
_RESERVE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local after = slot + interval
redis.call('SET', KEYS[1], string.format('%.0f', after),
  'PX', math.floor((after - now) / 1000) + 1000)
return slot - now
"""


class SharedSlots:
    """SharedSlots hands out an operation's send slots from the bucket every replica shares."""

    def __init__(
        self,
        state: SharedState,
        client: aioredis.Redis,
        key: str,
        rate: float,
        fallback: LocalSlots,
    ) -> None:
        self._state = state
        self._key = key
        self._interval_us = round(1_000_000 / rate)
        self._script = client.register_script(_RESERVE)
        self._fallback = fallback
        # The last shared slot this replica took (monotonic time): calls that
        # hold one still send when Redis goes, so local slots start after it.
        self._last_shared = 0.0

    async def reserve(self) -> float:
        """Reserve the next shared slot (or a local one without Redis); seconds until it opens."""
        if self._state.up:
            try:
                micros = await self._script(keys=[self._key], args=[self._interval_us])
            except REDIS_DOWN as e:
                self._state.failed(e)
            except redis.exceptions.ResponseError:
                pass  # Redis answers but cannot write (out of memory): pace alone this once
            else:
                self._state.answered()
                wait = max(0.0, int(micros) / 1_000_000)
                self._last_shared = max(self._last_shared, time.monotonic() + wait)
                return wait
        self._fallback.start_after(self._last_shared)
        return self._fallback.reserve_now()


def bucket_key(region: str, operation: str = "CreateRoom") -> str:
    """The Redis key of an operation's bucket: each quota is per account and region."""
    return f"ivschat-grpc:pace:{operation}:{region}"


class FallbackStore:
    """FallbackStore keeps records in Redis, and a copy of its own calls' in this process.

    The copy (a MemoryStore holding this process's claims for two budgets) is
    what the process uses while Redis is gone. Records finished then are written
    to Redis when it answers again, unless Redis has another owner's by then.
    """

    def __init__(
        self,
        state: SharedState,
        shared: RedisStore,
        own: MemoryStore,
        shared_only: Callable[[str], bool] = lambda _: False,
    ) -> None:
        self._state = state
        self._shared = shared
        self._own = own
        # The request_ids never claimed without Redis unless this process holds their record.
        self._shared_only = shared_only
        # This process's open claims: request_id -> (fingerprint, made without Redis).
        self._claims: dict[str, tuple[str, bool]] = {}
        # Finished without Redis: request_id -> (fingerprint, token, room).
        self._unsynced: dict[str, tuple[str, str, bytes]] = {}

    async def _try(self, op: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        """(True, op's result), or (False, None) if Redis is, or just went, away.

        A Redis that answers with an error (out of memory, a read-only replica)
        is there but cannot keep records: StateUnavailable.
        """
        if not self._state.up:
            return False, None
        try:
            result = await op()
        except REDIS_DOWN as e:
            self._state.failed(e)
            return False, None
        except redis.exceptions.ResponseError as e:
            # Its type only: an error reply may quote the command.
            raise StateUnavailable(type(e).__name__) from e
        self._state.answered()
        return True, result

    async def claim(self, request_id: str, fingerprint: str) -> Claim:
        if request_id in self._unsynced:
            # Finished here while Redis was gone, and not yet written there: an
            # empty Redis would hand out the id again, and the room twice.
            await self.sync()
            if request_id in self._unsynced:
                return await self._own.claim(request_id, fingerprint)
        ok, claim = await self._try(lambda: self._shared.claim(request_id, fingerprint))
        if ok:
            if claim.verdict is Verdict.OWNER:
                self._own.adopt(request_id, fingerprint, claim.token)
                self._claims[request_id] = (fingerprint, False)
            return claim  # type: ignore[no-any-return]  # _try is untyped; this is a Claim
        mine = await self._own.claim(request_id, fingerprint)
        if mine.verdict is Verdict.OWNER:
            if self._shared_only(request_id) and not mine.resolve_first:
                # New to this process: only Redis could say whether another
                # replica sent it. Nothing is sent, so the claim is forgotten.
                await self._own.release(request_id, mine.token, unknown=False)
                raise StateUnavailable("Redis unreachable")
            self._claims[request_id] = (fingerprint, True)
        return mine

    async def finish(self, request_id: str, token: str, room: bytes) -> bool:
        fingerprint, without_redis = self._claims.pop(request_id, ("", True))
        owned = await self._own.finish(request_id, token, room)
        if not without_redis:
            ok, shared_owned = await self._try(lambda: self._shared.finish(request_id, token, room))
            if ok:
                return bool(shared_owned)
        if owned and fingerprint:
            self._unsynced[request_id] = (fingerprint, token, room)
            await self.sync()
        return owned

    async def peek(self, request_id: str) -> bytes:
        ok, room = await self._try(lambda: self._shared.peek(request_id))
        if ok and room:
            return bytes(room)
        return await self._own.peek(request_id)

    async def renew(self, request_id: str, token: str) -> bool:
        mine = await self._own.renew(request_id, token)
        _, without_redis = self._claims.get(request_id, ("", True))
        if not without_redis:
            ok, shared_owned = await self._try(lambda: self._shared.renew(request_id, token))
            if ok:
                return bool(shared_owned)
        return mine

    async def release(self, request_id: str, token: str, *, unknown: bool) -> None:
        self._claims.pop(request_id, None)
        await self._own.release(request_id, token, unknown=unknown)
        await self._try(lambda: self._shared.release(request_id, token, unknown=unknown))

    async def wait(self, request_id: str, timeout_s: float | None) -> None:
        ok, _ = await self._try(lambda: self._shared.wait(request_id, timeout_s))
        if not ok:
            await self._own.wait(request_id, timeout_s)

    async def sync(self) -> None:
        """Write the records finished while Redis was gone, where Redis has no other owner's."""
        while self._unsynced and self._state.up:
            request_id, (fingerprint, token, room) = next(iter(self._unsynced.items()))
            put = partial(self._shared.put_done, request_id, fingerprint, token, room)
            try:
                ok, _ = await self._try(put)
            except StateUnavailable:
                return  # Redis cannot write now; the next sync tries again
            if not ok:
                return
            self._unsynced.pop(request_id, None)
