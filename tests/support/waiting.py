"""Waiting for a condition by reading it, never by sleeping a guessed time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def until(condition: Callable[[], Any], limit_s: float = 30.0) -> None:
    """Return once condition() (maybe a coroutine) holds, checking often; fail after limit_s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.02)
