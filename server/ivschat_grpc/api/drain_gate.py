"""The drain gate: once the drain begins, new calls are refused, and running ones counted.

Health is exempt: probes must keep seeing NOT_SERVING while the server drains,
and a Watch lasts as long as its prober, so the drain must not wait for it.
"""

from __future__ import annotations

from typing import Any

import grpc

from ivschat_grpc import errors
from ivschat_grpc.api.wrapping import HEALTH_PREFIX, Enter, GatingInterceptor, Leave
from ivschat_grpc.core.lifecycle import Lifecycle


class DrainGate(GatingInterceptor):
    """DrainGate refuses calls after the drain began (UNAVAILABLE) and counts the rest."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self._lifecycle = lifecycle

    async def _enter(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if self._lifecycle.draining:
            await errors.abort(context, errors.shutting_down())
        self._lifecycle.call_started()

    def covers(self, method: str) -> bool:
        return not method.startswith(HEALTH_PREFIX)

    def gate(self, method: str) -> tuple[Enter, Leave]:
        return self._enter, self._lifecycle.call_ended
