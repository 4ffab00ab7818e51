"""Hostile input, generated with hypothesis, against a real server and endpoint.

Requests at and past every boundary (unicode, control characters, huge maps,
unknown enum numbers, unknown fields) and raw bytes that are not a protobuf.
For each: no crash, never UNKNOWN; an invalid one is INVALID_ARGUMENT with field
details and never reaches the endpoint; a valid one is created.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.aws import request_checks
from ivschat_grpc.aws.connection import StaticCredentials
from ivschat_grpc.emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_SECRET_ACCESS_KEY,
    Emulator,
    EmulatorSettings,
)
from ivschat_grpc.runtime.assembly import build_server

from tests.support.facade import LOGGING_ARNS, facade_settings

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:"
CREATE = "/ivschat.v1.RoomService/CreateRoom"


class Running:
    """Running is a server and endpoint on a loop of their own, in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop = asyncio.Event()
        self.emulator = Emulator(
            EmulatorSettings(create_room_rate=None, logging_configurations=frozenset(LOGGING_ARNS))
        )
        self.port = 0
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),))

    async def _run(self) -> None:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.emulator)
            credentials = StaticCredentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)
            settings = facade_settings(self.emulator, grace_s=0.5, create_rate=None)
            service = await build_server(settings, stack, credentials=credentials)
            self.port = service.port
            self.ready.set()
            await self.stop.wait()

    def sent(self) -> int:
        return len(self.emulator.state.recorded("CreateRoom"))


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    empty = Path(tmp_path_factory.mktemp("aws")) / "empty"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty)}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            mp.delenv(k)
        for k, v in env.items():
            mp.setenv(k, v)
        server = Running()
        server.thread.start()
        assert server.ready.wait(60), "the server did not start"
    yield server
    server.loop.call_soon_threadsafe(server.stop.set)
    server.thread.join(30)


@pytest.fixture(scope="module")
def call(running: Running) -> Iterator[Any]:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield channel.unary_unary(
            CREATE,
            request_serializer=lambda b: b,
            response_deserializer=pb.CreateRoomResponse.FromString,
        )


# Text that is not a surrogate (protobuf strings must be valid UTF-8).
chars = st.characters(exclude_categories=["Cs"])
text = st.text(chars, max_size=140)
WIDE = "\U0001d400"  # a letter that takes 4 bytes in UTF-8
edgy = st.sampled_from(
    [
        "",
        "a" * 128,
        "a" * 129,
        "ok\n",
        "aws:x",
        "AWS:y",
        "tab\there",
        "é" * 256,
        "é" * 257,
        "\x00",
        "\u202e",
        WIDE * 128,
        " ",
        "_.:/=+-@",
    ]
)
names = st.one_of(st.none(), edgy, st.text(st.sampled_from("ab-_Z9 !é\n"), max_size=130))
ints = st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1), st.integers(-2, 502))
uris = st.one_of(
    st.just(""),
    st.builds(lambda s: LAMBDA + s, st.text(chars, min_size=0, max_size=130)),
    edgy,
    text,
)
tags = st.dictionaries(st.one_of(edgy, text), st.one_of(edgy, text), max_size=55)
logging_ids = st.lists(st.one_of(st.sampled_from(LOGGING_ARNS), edgy, text), max_size=5)
allowed = st.characters(categories=("L", "N", "Zs"))
tag_text = st.text(st.one_of(allowed, st.sampled_from("_.:/=+-@")), min_size=1, max_size=128)


@st.composite
def valid_requests(draw: st.DrawFn) -> pb.CreateRoomRequest:
    """Requests built to be valid, at and inside every boundary."""
    keys = tag_text.filter(lambda k: not k.lower().startswith("aws:"))
    request = pb.CreateRoomRequest(
        name=draw(st.text(st.sampled_from("azAZ09-_"), max_size=128)),
        maximum_message_length=draw(st.integers(1, 500)),
        maximum_message_rate_per_second=draw(st.integers(1, 100)),
        tags=draw(st.dictionaries(keys, tag_text, max_size=50)),
        logging_configuration_identifiers=draw(
            st.lists(st.sampled_from(LOGGING_ARNS), max_size=3, unique=True)
        ),
    )
    if draw(st.booleans()):
        request.message_review_handler.uri = LAMBDA + draw(
            st.text(allowed, min_size=1, max_size=100)
        )
        fallback = draw(st.sampled_from([0, 1, 2]))
        request.message_review_handler.fallback_result = fallback  # type: ignore[assignment]  # a known number
    return request


@st.composite
def requests(draw: st.DrawFn) -> tuple[pb.CreateRoomRequest, bytes]:
    """Half built to be valid, half anything: boundaries, unicode, unknown numbers and fields."""
    if draw(st.booleans()):
        request = draw(valid_requests())
    else:
        request = pb.CreateRoomRequest()
        name = draw(names)
        if name is not None:
            request.name = name
        for field_name in ("maximum_message_length", "maximum_message_rate_per_second"):
            value = draw(ints)
            if value is not None:
                setattr(request, field_name, value)
        if draw(st.booleans()):
            request.message_review_handler.uri = draw(uris)
            fallback = draw(st.integers(-3, 6))
            request.message_review_handler.fallback_result = fallback  # type: ignore[assignment]  # unknown numbers too
        request.tags.update(draw(tags))
        request.logging_configuration_identifiers.extend(draw(logging_ids))
        if draw(st.booleans()):
            request.request_id = draw(st.one_of(edgy, text))
    raw = request.SerializeToString()
    if draw(st.booleans()):
        raw += b"\xf8\x06\x2a"  # field 111, varint 42: unknown to the contract
    return request, raw


def details(error: Any) -> status_pb2.Status:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError(f"no details on {error}")


def violations_of(status: status_pb2.Status) -> list[str]:
    out: list[str] = []
    for d in status.details:
        bad = error_details_pb2.BadRequest()
        if d.Unpack(bad):
            out += [v.field for v in bad.field_violations]
    return out


def is_valid(request: pb.CreateRoomRequest) -> bool:
    _, violations = request_checks.create_room(request)
    return not violations


def check(call: Any, running: Running, raw: bytes, valid: bool) -> None:
    before = running.sent()
    error: Any = None
    try:
        call(raw, timeout=10)
    except grpc.RpcError as e:
        error = e
    code = grpc.StatusCode.OK if error is None else error.code()
    event(f"valid={valid} code={code.name}")
    assert code != grpc.StatusCode.UNKNOWN
    if error is not None:
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, error)
        assert violations_of(details(error)), "INVALID_ARGUMENT without field details"
    if valid:
        assert code == grpc.StatusCode.OK
        assert running.sent() == before + 1
    else:
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert running.sent() == before  # never reached the endpoint


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=requests())
def test_generated_requests(call: Any, running: Running, case: tuple[Any, bytes]) -> None:
    request, raw = case
    check(call, running, raw, is_valid(request))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_raw_bytes(call: Any, running: Running, raw: bytes) -> None:
    try:
        request = pb.CreateRoomRequest.FromString(raw)
    except Exception:  # noqa: BLE001 - any parse failure means: not a request
        request = None
    check(call, running, raw, request is not None and is_valid(request))
