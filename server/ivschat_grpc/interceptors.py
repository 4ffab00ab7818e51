"""The one place that knows how a grpc.aio interceptor swaps a method's behavior.

grpc hands an interceptor the method's handler, a tuple of behaviors and
(de)serializers; a subclass here only says which methods it covers and how it
wraps a unary or a bidirectional-streaming behavior.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

Behavior = Any  # grpc types handler behaviors loosely


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """WrappingInterceptor replaces parts of a method's handler; subclasses pick which."""

    def covers(self, method: str) -> bool:
        """Whether this interceptor applies to method ("/package.Service/Method")."""
        return True

    def wrap_unary(self, method: str, behavior: Behavior) -> Behavior:
        """The unary-unary behavior to use instead of behavior."""
        return behavior

    def wrap_stream(self, method: str, behavior: Behavior) -> Behavior:
        """The stream-stream behavior to use instead of behavior."""
        return behavior

    def wrap_other(self, method: str, handler: Any) -> Any:
        """The handler to use for a server- or client-streaming method."""
        return handler

    def wrap_deserializer(self, method: str, deserializer: Behavior) -> Behavior:
        """The request deserializer to use instead of deserializer."""
        return deserializer

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler: Any = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self.covers(method):
            return handler  # type: ignore[no-any-return]  # grpc's handler tuple is untyped
        changes: dict[str, Any] = {}
        if handler.request_deserializer is not None:
            changes["request_deserializer"] = self.wrap_deserializer(
                method, handler.request_deserializer
            )
        if handler.unary_unary is not None:
            changes["unary_unary"] = self.wrap_unary(method, handler.unary_unary)
        elif handler.stream_stream is not None:
            changes["stream_stream"] = self.wrap_stream(method, handler.stream_stream)
        else:
            return self.wrap_other(method, handler)  # type: ignore[no-any-return]  # as above
        return handler._replace(**changes)  # type: ignore[no-any-return]  # as above
