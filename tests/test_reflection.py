"""Server reflection: every registered service, and the google.rpc detail types, resolve."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2

from tests.support.facade import Facade
from tests.support.processes import read_until, running, start_process, stop

INFO = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


async def _ask(
    channel: grpc.aio.Channel, *requests: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    reflect = channel.stream_stream(
        INFO,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return [reply async for reply in reflect(iter(requests), timeout=10)]


def _files(
    reply: reflection_pb2.ServerReflectionResponse,
) -> Iterator[descriptor_pb2.FileDescriptorProto]:
    assert reply.WhichOneof("message_response") == "file_descriptor_response", reply
    for raw in reply.file_descriptor_response.file_descriptor_proto:
        yield descriptor_pb2.FileDescriptorProto.FromString(raw)


async def test_the_detail_types_resolve_by_symbol_and_by_file(facade: Facade) -> None:
    by_symbol, by_file, status = await _ask(
        facade.channel,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="google.rpc.BadRequest"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="google/rpc/error_details.proto"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="google/rpc/status.proto"),
    )
    [symbol_file] = [f for f in _files(by_symbol) if f.name == "google/rpc/error_details.proto"]
    messages = {m.name for m in symbol_file.message_type}
    assert {"BadRequest", "ErrorInfo", "QuotaFailure", "RetryInfo"} <= messages
    assert "google/rpc/error_details.proto" in {f.name for f in _files(by_file)}
    [status_file] = [f for f in _files(status) if f.name == "google/rpc/status.proto"]
    assert [m.name for m in status_file.message_type] == ["Status"]


async def test_every_registered_service_is_listed_and_resolves(facade: Facade) -> None:
    [listing] = await _ask(facade.channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listing.list_services_response.service}
    assert {
        "ivschat.v1.RoomService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    replies = await _ask(
        facade.channel,
        *(reflection_pb2.ServerReflectionRequest(file_containing_symbol=n) for n in sorted(names)),
    )
    for name, reply in zip(sorted(names), replies, strict=True):
        package, _, service = name.rpartition(".")
        files = list(_files(reply))
        assert any(
            f.package == package and service in {s.name for s in f.service} for f in files
        ), name


@pytest.mark.skipif(shutil.which("npx") is None, reason="buf comes from npm: .ci/setup")
async def test_buf_curl_through_reflection_shows_a_bad_request_field_by_field() -> None:
    async with running("serve", "--emulator", "--port", "0") as (proc, lines):
        port = (await read_until(proc, lines, r"listening on 127\.0\.0\.1:(\d+)"))[1]
        curl = await start_process(
            "npx",
            "--no-install",
            "buf",
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "--reflect",
            "-d",
            '{"name": "not a name!", "maximum_message_length": 0}',
            f"http://127.0.0.1:{port}/ivschat.v1.RoomService/CreateRoom",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(curl.communicate(), 60)
        assert await stop(proc) == 0
    # buf curl exits with the gRPC code times 8 and prints the status as JSON.
    assert curl.returncode == grpc.StatusCode.INVALID_ARGUMENT.value[0] * 8, (out, err)
    status = json.loads(err or out)
    assert status["code"] == "invalid_argument"
    details = {d["type"]: d for d in status["details"]}
    assert set(details) == {"google.rpc.BadRequest", "google.rpc.ErrorInfo"}
    # buf 1.75 prints a detail's bytes, not its JSON, whatever reflection serves
    # (it formats errors with connect's error writer, which has no resolver).
    raw = details["google.rpc.BadRequest"]["value"]
    bad = error_details_pb2.BadRequest.FromString(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    fields = {v.field for v in bad.field_violations}
    assert fields == {"name", "maximum_message_length"}
