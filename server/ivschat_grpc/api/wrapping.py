"""The one place that knows how a method's behavior is wrapped, and when.

grpc describes a method by a handler, a tuple of behaviors and (de)serializers.
A WrappingInterceptor subclass only says which methods it covers and how it
wraps a unary or a bidirectional-streaming behavior.

The wrappers are applied once, when a service is registered (`Registrar`),
rather than as grpc.aio interceptors: an interceptor runs a coroutine per
interceptor and rebuilds the handler on every call, which a profile of the
CreateRoom hot path showed as pure overhead, since every method's wrapping is
known before the server starts. The class still works as an interceptor.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Protocol

import grpc

# Health's methods: exempt from the drain gate and authentication, counted apart.
HEALTH_PREFIX: Final = "/grpc.health.v1.Health/"

Behavior = Any  # grpc types handler behaviors loosely
Handler = Any  # grpc.RpcMethodHandler, a named tuple that grpc's stubs leave generic


async def finish(answers: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    """Run what a behavior returned to its end: await a coroutine, or write what it yields.

    A wrapper that calls a behavior itself must take both styles: a unary
    behavior returns a coroutine, and a server-streaming one either yields its
    answers or writes them itself (health's Watch does).
    """
    if inspect.isasyncgen(answers):
        async for answer in answers:
            await context.write(answer)
        return None
    return await answers


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

    def wrap_other(self, method: str, handler: Handler) -> Handler:
        """The handler to use for a server- or client-streaming method."""
        return handler

    def wrap_deserializer(self, method: str, deserializer: Behavior) -> Behavior:
        """The request deserializer to use instead of deserializer."""
        return deserializer

    def wrap_handler(self, method: str, handler: Handler) -> Handler:
        """The handler to serve method with instead of handler."""
        if not self.covers(method):
            return handler
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
            return self.wrap_other(method, handler)
        return handler._replace(**changes)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler: Handler = await continuation(handler_call_details)
        if handler is None:
            return None  # type: ignore[return-value]  # an unknown method: grpc answers UNIMPLEMENTED
        return self.wrap_handler(handler_call_details.method, handler)  # type: ignore[no-any-return]  # as above


# What a gate does with a call on its way in: let it pass, or end it (abort).
Enter = Callable[[grpc.aio.ServicerContext[Any, Any]], Awaitable[None]]
# And on its way out, once it was let in.
Leave = Callable[[], None]


def hold_nothing() -> None:
    """Leave for a gate that holds nothing while a call runs."""


class GatingInterceptor(WrappingInterceptor):
    """GatingInterceptor lets each call in, or ends it, before its behavior runs, and sees it out.

    A subclass says, once per method, what a call does on the way in and on
    the way out (gate); unary and bidirectional-streaming calls are wrapped
    here alike, and the way out runs only for a call that was let in.
    """

    def gate(self, method: str) -> tuple[Enter, Leave]:
        """The way in and the way out for method's calls."""
        raise NotImplementedError

    def wrap_unary(self, method: str, behavior: Behavior) -> Behavior:
        enter, leave = self.gate(method)

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await enter(context)
            try:
                return await behavior(request, context)
            finally:
                leave()

        return unary

    def wrap_stream(self, method: str, behavior: Behavior) -> Behavior:
        enter, leave = self.gate(method)

        async def stream(
            requests: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            await enter(context)
            try:
                async for response in behavior(requests, context):
                    yield response
            finally:
                leave()

        return stream


class RequestReader(Protocol):
    """RequestReader has the service read a unary call's request, inside every wrapper.

    inside() gives the innermost behavior, which reads the request; outside()
    gives grpc a handler that starts the wrappers before any request is read.
    """

    def inside(self, method: str, handler: Handler) -> Handler:
        """handler with a behavior that reads its own request."""

    def outside(self, method: str, handler: Handler) -> Handler:
        """The handler grpc serves, which runs handler before reading anything."""


def wrap(
    method: str,
    handler: Handler,
    wrappers: Sequence[WrappingInterceptor],
    reader: RequestReader | None = None,
) -> Handler:
    """handler wrapped by every wrapper, the first outermost, as grpc orders interceptors."""
    if reader is not None:
        handler = reader.inside(method, handler)
    for wrapper in reversed(wrappers):
        handler = wrapper.wrap_handler(method, handler)
    if reader is not None:
        handler = reader.outside(method, handler)
    return handler


class _WrappedGeneric(grpc.GenericRpcHandler):
    """_WrappedGeneric answers a generic handler's lookups with wrapped handlers, each made once."""

    def __init__(
        self,
        inner: grpc.GenericRpcHandler,
        wrappers: Sequence[WrappingInterceptor],
        reader: RequestReader | None,
    ):
        self._inner = inner
        self._wrappers = wrappers
        self._reader = reader
        # Only methods the inner handler serves are kept, so unknown names cannot grow this.
        self._made: dict[str, Handler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler:
        method = handler_call_details.method
        made = self._made.get(method)
        if made is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                return None
            made = self._made[method] = wrap(method, handler, self._wrappers, self._reader)
        return made


class Registrar:
    """Registrar stands in for a grpc.aio.Server when a generated add_*_to_server registers.

    It passes every handler on wrapped, so a call runs the wrappers' code and
    nothing else of theirs.
    """

    def __init__(
        self,
        server: grpc.aio.Server,
        wrappers: Sequence[WrappingInterceptor],
        reader: RequestReader | None = None,
    ) -> None:
        self._server = server
        self._wrappers = tuple(wrappers)
        self._reader = reader

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        """Register generic handlers whose answers are wrapped."""
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedGeneric(h, self._wrappers, self._reader) for h in handlers)
        )

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Handler]) -> None:
        """Register each method's wrapped handler."""
        self._server.add_registered_method_handlers(
            service,
            {
                name: wrap(f"/{service}/{name}", h, self._wrappers, self._reader)
                for name, h in handlers.items()
            },
        )
