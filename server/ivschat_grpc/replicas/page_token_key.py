"""The ListRooms page token key that every replica on one Redis shares.

The first replica to start puts a random key in Redis (SET NX); every replica
then reads the one that is there, so a page_token issued by one is accepted by
all. A replica that cannot reach Redis at start uses a key of its own, and
says so: its tokens work only on it, until it restarts with Redis up.

The key is kept without expiry: were it to vanish (Redis flushed), replicas
started afterwards would set a new one, and tokens would then work only on
the replicas that share a key; a caller is told to start from the first page.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from ivschat_grpc.core.page_tokens import KEY_BYTES, PageTokens, new_key
from ivschat_grpc.replicas.shared_state import REDIS_DOWN

log = logging.getLogger(__name__)


def key_name(region: str) -> str:
    """The Redis key holding the page token key; AWS's tokens are per account and region."""
    return f"ivschat-grpc:page-token-key:{region}"


async def shared_page_tokens(client: aioredis.Redis, region: str) -> PageTokens:
    """Page tokens under the key in Redis, set by whichever replica came first.

    Falls back on a key of this process's own when Redis does not answer or
    holds something that is not a key.
    """
    name = key_name(region)
    try:
        await client.set(name, new_key(), nx=True)
        key = await client.get(name)
    except REDIS_DOWN as e:
        # The exception's type only: its text can carry the Redis address.
        log.warning(
            "Redis unreachable at start (%s): ListRooms page tokens work on this replica only",
            type(e).__name__,
        )
        return PageTokens.random()
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        log.warning(
            "Redis key %s does not hold a %d-byte key: ListRooms page tokens work on this "
            "replica only",
            name,
            KEY_BYTES,
        )
        return PageTokens.random()
    return PageTokens(key)
