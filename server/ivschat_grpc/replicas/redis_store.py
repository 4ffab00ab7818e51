"""request_id records in Redis, so exactly-once holds across replicas and restarts.

Each transition is one Lua script, run atomically by Redis, with time taken
from the Redis server so that replicas agree on leases. The state machine is
the one in core/idempotency.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Final

import redis.asyncio as aioredis

from ivschat_grpc.core.idempotency import Claim, Verdict, new_token

# Atomic claim in Redis; time comes from the Redis server, so replicas agree.
_CLAIM: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('SET', KEYS[1], cjson.encode({s='pending', f=ARGV[1], t=ARGV[2],
    l=now + tonumber(ARGV[3])}), 'PX', ARGV[4])
  return {'owner', ARGV[2], '0'}
end
local r = cjson.decode(raw)
if r.f ~= ARGV[1] then return {'mismatch', '', '0'} end
if r.s == 'done' then return {'done', r.room, '0'} end
if r.s == 'unknown' or r.l < now then
  r.s = 'pending'; r.t = ARGV[2]; r.l = now + tonumber(ARGV[3])
  redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
  -- A record in use must outlive its lease, whatever is left of its retention.
  if redis.call('PTTL', KEYS[1]) < 2 * tonumber(ARGV[3]) then
    redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
  end
  return {'owner', ARGV[2], '1'}
end
return {'wait', '', '0'}
"""
# Finish or release, only by the owner holding the token.
_SETTLE: Final = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local r = cjson.decode(raw)
if r.t ~= ARGV[1] then return 0 end
if ARGV[2] == 'forget' then redis.call('DEL', KEYS[1]) return 1 end
r.s = ARGV[2]
if ARGV[2] == 'done' then r.room = ARGV[3] end
redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
return 1
"""
# The owner's heartbeat: one more lease, only for the token that holds the claim.
_RENEW: Final = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local r = cjson.decode(raw)
if r.t ~= ARGV[1] or r.s ~= 'pending' then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
r.l = now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
if redis.call('PTTL', KEYS[1]) < 2 * tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
end
return 1
"""
# A record finished without Redis, written back: unless another owner holds it.
_PUT_DONE: Final = """
local raw = redis.call('GET', KEYS[1])
if raw then
  local r = cjson.decode(raw)
  if r.s == 'done' or r.t ~= ARGV[2] then return 0 end
  r.s = 'done'; r.room = ARGV[3]
  redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
  return 1
end
redis.call('SET', KEYS[1], cjson.encode({s='done', f=ARGV[1], t=ARGV[2], l=0, room=ARGV[3]}),
  'PX', ARGV[4])
return 1
"""
_POLL_S: Final = 0.05


class RedisStore:
    """RedisStore keeps records in Redis: exactly-once across replicas and restarts."""

    def __init__(self, client: aioredis.Redis, retention_s: float, lease_s: float) -> None:
        self._redis = client
        self._retention_ms = int(retention_s * 1000)
        self._lease_ms = int(lease_s * 1000)
        self._claim = client.register_script(_CLAIM)
        self._settle = client.register_script(_SETTLE)
        self._put_done = client.register_script(_PUT_DONE)
        self._renew = client.register_script(_RENEW)

    @staticmethod
    def key(request_id: str) -> str:
        """The Redis key of a request_id's record."""
        return f"ivschat-grpc:request:{request_id}"

    async def claim(self, request_id: str, fingerprint: str) -> Claim:
        args: list[str | int] = [fingerprint, new_token(), self._lease_ms, self._retention_ms]
        reply = await self._claim(keys=[self.key(request_id)], args=args)
        # A client made with decode_responses answers str, a plain one bytes.
        verdict, value, resolve = (v.decode() if isinstance(v, bytes) else str(v) for v in reply)
        kind = Verdict(verdict)
        if kind is Verdict.DONE:
            return Claim(kind, room=bytes.fromhex(value))
        return Claim(kind, token=value, resolve_first=resolve == "1")

    async def finish(self, request_id: str, token: str, room: bytes) -> bool:
        owned = await self._settle(keys=[self.key(request_id)], args=[token, "done", room.hex()])
        return bool(owned)

    async def peek(self, request_id: str) -> bytes:
        raw = await self._redis.get(self.key(request_id))
        if raw is None:
            return b""
        record = json.loads(raw)
        return bytes.fromhex(record["room"]) if record.get("s") == "done" else b""

    async def renew(self, request_id: str, token: str) -> bool:
        return bool(await self._renew(keys=[self.key(request_id)], args=[token, self._lease_ms]))

    async def release(self, request_id: str, token: str, *, unknown: bool) -> None:
        state = "unknown" if unknown else "forget"
        await self._settle(keys=[self.key(request_id)], args=[token, state, ""])

    async def put_done(self, request_id: str, fingerprint: str, token: str, room: bytes) -> bool:
        """Record room as done unless another owner's record is there; True if written."""
        args: list[str | int] = [fingerprint, token, room.hex(), self._retention_ms]
        return bool(await self._put_done(keys=[self.key(request_id)], args=args))

    async def wait(self, request_id: str, timeout_s: float | None) -> None:
        # At most one lease: by then the owner has finished, or died and can be replaced.
        lease_s = self._lease_ms / 1000
        deadline = time.monotonic() + (lease_s if timeout_s is None else min(timeout_s, lease_s))
        while time.monotonic() < deadline:
            raw = await self._redis.get(self.key(request_id))
            if raw is None or json.loads(raw).get("s") != "pending":
                return
            await asyncio.sleep(_POLL_S)
