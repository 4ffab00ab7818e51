"""Places for running calls: the service's and health's, each with its own limit.

grpc's own `maximum_concurrent_rpcs` counts a call from its first header,
before anything of the service runs, so calls that never authenticate, or
never send their request, could hold every place. Here a place is taken after
authentication (the wrapper runs inside AuthInterceptor) and given back when
the call ends. A call past the limit is refused at once, RESOURCE_EXHAUSTED,
rather than queued. Health has a budget apart, so probes and the service's
callers never crowd each other out.
"""

from __future__ import annotations

from typing import Any

import grpc

from ivschat_grpc import errors
from ivschat_grpc.api.wrapping import (
    HEALTH_PREFIX,
    Enter,
    GatingInterceptor,
    Handler,
    Leave,
    finish,
)


class _Budget:
    """_Budget is one limit and how much of it running calls hold."""

    def __init__(self, limit: int, flag: str) -> None:
        self.limit = limit
        self.held = 0
        self.refusal = errors.too_many_rpcs(limit, flag)

    async def take(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Hold a place for the call, or end it RESOURCE_EXHAUSTED; give_back() must follow."""
        if self.held >= self.limit:
            await errors.abort(context, self.refusal)
        self.held += 1

    def give_back(self) -> None:
        """Free the place of a call that has ended."""
        self.held -= 1


class ConcurrencyLimit(GatingInterceptor):
    """ConcurrencyLimit refuses a call at once when its budget's places are all held."""

    def __init__(self, max_rpcs: int, max_health_rpcs: int) -> None:
        self._rpcs = _Budget(max_rpcs, "--max-concurrent-rpcs")
        self._health = _Budget(max_health_rpcs, "--max-health-rpcs")

    @property
    def held(self) -> tuple[int, int]:
        """Places held now: the service's and health's."""
        return self._rpcs.held, self._health.held

    def _budget(self, method: str) -> _Budget:
        return self._health if method.startswith(HEALTH_PREFIX) else self._rpcs

    def gate(self, method: str) -> tuple[Enter, Leave]:
        budget = self._budget(method)
        return budget.take, budget.give_back

    def wrap_other(self, method: str, handler: Handler) -> Handler:
        inner = handler.unary_stream
        if inner is None:
            return handler  # client streaming: none is served here
        enter, leave = self.gate(method)

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await enter(context)
            try:
                return await finish(inner(request, context), context)
            finally:
                leave()

        return handler._replace(unary_stream=unary_stream)
