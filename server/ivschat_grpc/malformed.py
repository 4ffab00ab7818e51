"""Requests whose bytes are not a valid message: answered, never UNKNOWN.

grpcio answers a request that fails to deserialize with UNKNOWN and the
parser's exception text. The interceptor here makes deserialization total:
bad bytes become an :class:`Undecodable` that the handler turns into
INVALID_ARGUMENT, naming the field when a string holds invalid UTF-8.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError

from ivschat_grpc import errors
from ivschat_grpc.interceptors import Behavior, Handler, WrappingInterceptor, finish

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


class MalformedRequestInterceptor(WrappingInterceptor):
    """MalformedRequestInterceptor makes request parsing total for every method of every service.

    A call whose request has bad bytes ends INVALID_ARGUMENT, health and
    reflection included. The named service's streams are the exception: they
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
        inner = handler.unary_stream
        if inner is None or handler.request_deserializer is None:
            return handler  # client streaming: none is served here

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if isinstance(request, Undecodable):
                await errors.abort(context, failure(request))
            return await finish(inner(request, context), context)

        return handler._replace(
            request_deserializer=_total(handler.request_deserializer), unary_stream=unary_stream
        )

    def wrap_deserializer(self, method: str, deserializer: Behavior) -> Behavior:
        return _total(deserializer)

    def wrap_unary(self, method: str, behavior: Behavior) -> Behavior:
        async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if isinstance(request, Undecodable):
                await errors.abort(context, failure(request))
            return await behavior(request, context)

        return unary_unary
