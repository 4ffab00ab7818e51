"""Reading google.rpc.Status details off a failed call, as any client would."""

from __future__ import annotations

from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

M = TypeVar("M", bound=Message)


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The rich status in the call's trailers; fails the test if absent."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            assert isinstance(value, bytes)
            status = status_pb2.Status.FromString(value)
            assert status.code == error.code().value[0]
            assert status.message == error.details()
            return status
    raise AssertionError(f"no rich status on {error.code()}: {error.details()}")


def detail(status: status_pb2.Status, kind: type[M]) -> M:
    """The one detail of kind in status."""
    name = kind().DESCRIPTOR.full_name
    found = [d for d in status.details if d.TypeName() == name]
    assert len(found) == 1, f"expected one {kind.__name__}, got {len(found)}"
    out = kind()
    found[0].Unpack(out)
    return out


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo every error status carries."""
    return detail(status_of(error), error_details_pb2.ErrorInfo)


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """BadRequest's violations as {field path: description}."""
    bad = detail(status_of(error), error_details_pb2.BadRequest)
    return {v.field: v.description for v in bad.field_violations}


def trailer(error_or_call: grpc.aio.AioRpcError, key: str) -> str | None:
    """One trailing metadata value."""
    for k, v in error_or_call.trailing_metadata() or ():
        if k == key:
            return str(v)
    return None
