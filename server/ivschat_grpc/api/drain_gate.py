"""The drain gate: once the drain begins, new calls are refused, and running ones counted.

Health is exempt: probes must keep seeing NOT_SERVING while the server drains,
and a Watch lasts as long as its prober, so the drain must not wait for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from ivschat_grpc import errors
from ivschat_grpc.api.wrapping import HEALTH_PREFIX, Behavior, WrappingInterceptor
from ivschat_grpc.core.lifecycle import Lifecycle


class DrainGate(WrappingInterceptor):
    """DrainGate refuses calls after the drain began (UNAVAILABLE) and counts the rest."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self._lifecycle = lifecycle

    async def _enter(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if self._lifecycle.draining:
            await errors.abort(context, errors.shutting_down())
        self._lifecycle.call_started()

    def wrap_unary(self, method: str, behavior: Behavior) -> Behavior:
        if method.startswith(HEALTH_PREFIX):
            return behavior

        async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await self._enter(context)
            try:
                return await behavior(request, context)
            finally:
                self._lifecycle.call_ended()

        return run

    def wrap_stream(self, method: str, behavior: Behavior) -> Behavior:
        async def run(
            request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            await self._enter(context)
            try:
                async for response in behavior(request_iterator, context):
                    yield response
            finally:
                self._lifecycle.call_ended()

        return run
