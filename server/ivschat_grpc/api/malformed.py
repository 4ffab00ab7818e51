"""Requests that are not a valid message, or never come: answered, never UNKNOWN.

grpcio answers a request that fails to deserialize with UNKNOWN and the
parser's exception text. The interceptor here makes deserialization total:
bad bytes become an :class:`Undecodable` that the handler turns into
INVALID_ARGUMENT, naming the field when a string holds invalid UTF-8.

grpcio also reads a unary call's request before any of the service's code
runs. A call that half-closes without one is then never answered, and one
that sends nothing holds its place until its deadline, unseen by logs,
metrics and authentication. :class:`UnaryReader` serves unary methods as
client-streaming ones instead, so the wrappers run on the headers first and
the request is read last, within the idle timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError

from ivschat_grpc import errors
from ivschat_grpc.api.wrapping import Behavior, Handler, WrappingInterceptor, finish

_LENGTH_DELIMITED = 2


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Undecodable stands in for a request that did not parse."""

    type_name: str
    field: str | None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise DecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _skip(data: bytes, pos: int, wire_type: int) -> int:
    if wire_type == 0:
        return _varint(data, pos)[1]
    if wire_type == 1:
        return pos + 8
    if wire_type == 5:
        return pos + 4
    raise DecodeError("unsupported wire type")


def bad_utf8_field(desc: Descriptor, data: bytes, prefix: str = "") -> str | None:
    """The proto path of the first string field holding invalid UTF-8, if any."""
    seen: dict[int, int] = {}
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            number, wire_type = key >> 3, key & 7
            if wire_type != _LENGTH_DELIMITED:
                pos = _skip(data, pos, wire_type)
                continue
            length, pos = _varint(data, pos)
            chunk, pos = data[pos : pos + length], pos + length
            fd = desc.fields_by_number.get(number)
            if fd is None:
                continue
            index = seen.get(number, 0)
            seen[number] = index + 1
            path = f"{prefix}.{fd.name}" if prefix else fd.name
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                if bad_utf8_field(fd.message_type, chunk) is not None:
                    return path
            elif fd.message_type is not None:
                found = bad_utf8_field(fd.message_type, chunk, path)
                if found is not None:
                    return found
            elif fd.type == FieldDescriptor.TYPE_STRING:
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError:
                    return f"{path}[{index}]" if fd.is_repeated else path
    except DecodeError:
        return None
    return None


def _total(deserialize: Any) -> Callable[[bytes], Any]:
    # A generated FromString is a classmethod: its __self__ is the message class.
    desc: Descriptor = deserialize.__self__.DESCRIPTOR

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            try:
                field = bad_utf8_field(desc, data)
            except Exception:  # noqa: BLE001 - naming the field is best effort; the answer is not
                field = None
            return Undecodable(desc.full_name, field)

    return parse


def failure(request: Undecodable) -> errors.Failure:
    """INVALID_ARGUMENT for bytes that are not a request."""
    return errors.malformed(request.type_name, request.field)


# What the wrappers are given as a unary call's request: it is read after them.
UNREAD: Final = object()


class UnaryReader:
    """UnaryReader reads each unary call's one request inside the wrappers (a RequestReader).

    A call that ends its side without a request, or whose request does not
    parse, is answered INVALID_ARGUMENT at once; one whose request has not
    come within idle_timeout_s is closed UNAVAILABLE (nothing of it ran).

    Once the server drains (`close`), a call still waiting for its request,
    or whose request comes later, is answered UNAVAILABLE SHUTTING_DOWN: it
    neither holds up the drain nor reaches AWS. Methods under exempt_prefix
    (health, whose probes must see the drain) are served on.
    """

    def __init__(self, idle_timeout_s: float, exempt_prefix: str) -> None:
        self._idle_s = idle_timeout_s
        self._exempt = exempt_prefix
        self._closed = False
        self._waiting: set[asyncio.Task[Any]] = set()
        self._interruptions = errors.Interruptions()

    def close(self) -> None:
        """Answer calls still waiting for their request now, and refuse later requests."""
        self._closed = True
        for task in self._waiting:
            self._interruptions.interrupt(task, errors.shutting_down())

    async def _read(self, context: grpc.aio.ServicerContext[Any, Any], drains: bool) -> Any:
        task = asyncio.current_task() if drains else None
        if task is not None:
            if self._closed:
                await errors.abort(context, errors.shutting_down())
            self._waiting.add(task)
        try:
            async with asyncio.timeout(self._idle_s):
                request = await context.read()
        except TimeoutError:
            await errors.abort(context, errors.idle(self._idle_s))
        except asyncio.CancelledError:
            owed = None if task is None else self._interruptions.take(task)
            if owed is None:
                raise
            await errors.abort(context, owed)
        finally:
            if task is not None:
                self._waiting.discard(task)
                self._interruptions.forget(task)
        if task is not None and self._closed:
            await errors.abort(context, errors.shutting_down())  # it came as the drain began
        if request is grpc.aio.EOF:
            await errors.abort(context, errors.request_missing())
        if isinstance(request, Undecodable):
            await errors.abort(context, failure(request))
        return request

    def inside(self, method: str, handler: Handler) -> Handler:
        """handler, its unary request read by the service (see UnaryReader)."""
        drains = not method.startswith(self._exempt)
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def unary_unary(_: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return await unary(await self._read(context, drains), context)

            return handler._replace(unary_unary=unary_unary)
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            async def unary_stream(_: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return await finish(stream(await self._read(context, drains), context), context)

            return handler._replace(unary_stream=unary_stream)
        return handler

    def outside(self, method: str, handler: Handler) -> Handler:
        """The client-streaming handler grpc serves in handler's place."""
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def stream_unary(_: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return await unary(UNREAD, context)

            return grpc.stream_unary_rpc_method_handler(
                stream_unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            async def stream_stream(
                _: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                # The answers are written, not yielded; still an async generator,
                # since the tracing interceptor iterates a streaming behavior.
                await finish(stream(UNREAD, context), context)
                return
                yield  # pragma: no cover - marks this an async generator

            return grpc.stream_stream_rpc_method_handler(
                stream_stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


class MalformedRequestInterceptor(WrappingInterceptor):
    """MalformedRequestInterceptor makes request parsing total for every method of every service.

    A call whose request has bad bytes ends INVALID_ARGUMENT, health and
    reflection included; a unary request's bytes are checked where
    UnaryReader reads it. The named service's streams are the exception: they
    get an Undecodable item, which the batch answers like any invalid item, and
    the stream goes on.
    """

    def __init__(self, service: str) -> None:
        self._prefix = f"/{service}/"

    def covers(self, method: str) -> bool:
        return True

    def wrap_stream(self, method: str, behavior: Behavior) -> Behavior:
        if method.startswith(self._prefix):
            return behavior

        async def stream_stream(
            request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            async def parsed() -> AsyncIterator[Any]:
                async for request in request_iterator:
                    if isinstance(request, Undecodable):
                        await errors.abort(context, failure(request))
                    yield request

            async for response in behavior(parsed(), context):
                yield response

        return stream_stream

    def wrap_other(self, method: str, handler: Handler) -> Handler:
        if handler.request_deserializer is None:
            return handler
        return handler._replace(request_deserializer=_total(handler.request_deserializer))

    def wrap_deserializer(self, method: str, deserializer: Behavior) -> Behavior:
        return _total(deserializer)
