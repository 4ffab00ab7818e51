"""Every documented constraint at its boundary, end to end, and never sent to AWS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from ivschat.v1 import room_service_pb2 as pb

from tests.support.facade import Facade
from tests.support.richstatus import error_info, field_violations

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:"
LOGCFG = "arn:aws:ivschat:us-east-1:123456789012:logging-configuration/"


def lambda_arn(total: int) -> str:
    return LAMBDA + "f" * (total - len(LAMBDA))


def logcfg_arn(total: int) -> str:
    return LOGCFG + "L" * (total - len(LOGCFG))


Build = Callable[[], pb.CreateRoomRequest]


def req(**kwargs: Any) -> Build:
    return lambda: pb.CreateRoomRequest(**kwargs)


def handler(uri: str = "", fallback: int = pb.FALLBACK_RESULT_UNSPECIFIED) -> Build:
    def build() -> pb.CreateRoomRequest:
        r = pb.CreateRoomRequest()
        r.message_review_handler.uri = uri
        r.message_review_handler.fallback_result = fallback  # type: ignore[assignment]  # unknown numbers are the point
        return r

    return build


# (case id, request, the field path that must be named, or None when valid)
CASES: list[tuple[str, Build, str | None]] = [
    ("name empty", req(name=""), None),
    ("name 128", req(name="n" * 128), None),
    ("name 129", req(name="n" * 129), "name"),
    ("name all allowed chars", req(name="azAZ09-_"), None),
    ("name space", req(name="a b"), "name"),
    ("name trailing newline", req(name="abc\n"), "name"),
    ("name unicode letter", req(name="é"), "name"),
    ("max length 0", req(maximum_message_length=0), "maximum_message_length"),
    ("max length 1", req(maximum_message_length=1), None),
    ("max length 500", req(maximum_message_length=500), None),
    ("max length 501", req(maximum_message_length=501), "maximum_message_length"),
    ("max length negative", req(maximum_message_length=-1), "maximum_message_length"),
    ("rate 0", req(maximum_message_rate_per_second=0), "maximum_message_rate_per_second"),
    ("rate 1", req(maximum_message_rate_per_second=1), None),
    ("rate 100", req(maximum_message_rate_per_second=100), None),
    ("rate 101", req(maximum_message_rate_per_second=101), "maximum_message_rate_per_second"),
    ("uri empty", handler(""), None),
    ("uri 170", handler(lambda_arn(170)), None),
    ("uri 171", handler(lambda_arn(171)), "message_review_handler.uri"),
    (
        "uri not lambda",
        handler("arn:aws:sns:us-east-1:123456789012:topic"),
        "message_review_handler.uri",
    ),
    (
        "uri 11-digit account",
        handler("arn:aws:lambda:us-east-1:12345678901:function:f"),
        "message_review_handler.uri",
    ),
    ("uri trailing newline", handler(lambda_arn(60) + "\n"), "message_review_handler.uri"),
    ("fallback allow", handler(lambda_arn(60), pb.FALLBACK_RESULT_ALLOW), None),
    ("fallback deny", handler(lambda_arn(60), pb.FALLBACK_RESULT_DENY), None),
    (
        "fallback unknown number",
        handler(lambda_arn(60), 7),
        "message_review_handler.fallback_result",
    ),
    ("tags 50", req(tags={f"k{i}": "v" for i in range(50)}), None),
    ("tags 51", req(tags={f"k{i}": "v" for i in range(51)}), "tags"),
    ("tag key empty", req(tags={"": "v"}), 'tags[""]'),
    ("tag key 128", req(tags={"k" * 128: "v"}), None),
    ("tag key 129", req(tags={"k" * 129: "v"}), f'tags["{"k" * 129}"]'),
    ("tag value empty", req(tags={"k": ""}), None),
    ("tag value 256 code points", req(tags={"k": "é" * 256}), None),
    ("tag value 257 code points", req(tags={"k": "é" * 257}), 'tags["k"]'),
    ("tag key aws prefix", req(tags={"aws:owner": "v"}), 'tags["aws:owner"]'),
    ("tag key AWS prefix any case", req(tags={"AWS:owner": "v"}), 'tags["AWS:owner"]'),
    ("tag key allowed punctuation", req(tags={"a_.:/=+-@ b": "c_.:/=+-@ d"}), None),
    ("tag key unicode letters", req(tags={"clé 名前": "valeur"}), None),
    ("tag key control char", req(tags={"a\tb": "v"}), 'tags["a\tb"]'),
    ("tag value bad char", req(tags={"k": "v#1"}), 'tags["k"]'),
    ("tag key quote escaped", req(tags={'a"b': "v"}), 'tags["a\\"b"]'),
    (
        "logging 3",
        req(logging_configuration_identifiers=[logcfg_arn(80 + i) for i in range(3)]),
        None,
    ),
    (
        "logging 4",
        req(logging_configuration_identifiers=[logcfg_arn(80 + i) for i in range(4)]),
        "logging_configuration_identifiers",
    ),
    ("logging id 128", req(logging_configuration_identifiers=[logcfg_arn(128)]), None),
    (
        "logging id 129",
        req(logging_configuration_identifiers=[logcfg_arn(129)]),
        "logging_configuration_identifiers[0]",
    ),
    (
        "logging id empty",
        req(logging_configuration_identifiers=[""]),
        "logging_configuration_identifiers[0]",
    ),
    (
        "logging id bad",
        req(logging_configuration_identifiers=[logcfg_arn(80), "arn:aws:ivschat:x"]),
        "logging_configuration_identifiers[1]",
    ),
    (
        "logging id trailing newline",
        req(logging_configuration_identifiers=[logcfg_arn(80) + "\n"]),
        "logging_configuration_identifiers[0]",
    ),
]


@pytest.mark.parametrize(("build", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_constraint_boundaries(facade: Facade, build: Build, field: str | None) -> None:
    request = build()
    facade.emulator.state.logging_configurations.update(request.logging_configuration_identifiers)
    if field is None:
        response = await facade.stub.CreateRoom(request, timeout=10)
        assert response.room.id
        assert len(facade.emulator.state.rooms) == 1
        return
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(info.value)
    assert field in violations, violations
    assert error_info(info.value).reason == "INVALID_REQUEST"
    assert facade.emulator.state.recorded() == []


async def test_all_violations_in_one_status(facade: Facade) -> None:
    request = pb.CreateRoomRequest(
        name="bad name!",
        maximum_message_length=0,
        maximum_message_rate_per_second=101,
        tags={"aws:x": "y", "ok": "fine"},
        # Three, the most allowed: a longer list is one violation, its items unchecked.
        logging_configuration_identifiers=["a", logcfg_arn(80), "b"],
    )
    request.message_review_handler.uri = "not-an-arn"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(info.value)) == {
        "name",
        "maximum_message_length",
        "maximum_message_rate_per_second",
        "message_review_handler.uri",
        'tags["aws:x"]',
        "logging_configuration_identifiers[0]",
        "logging_configuration_identifiers[2]",
    }
    assert "bad name!" not in (info.value.details() or "")  # a fixed message, no echo of input
    assert facade.emulator.state.recorded() == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"\xff\xff\xff", "ivschat.v1.CreateRoomRequest"),
        (b"\x0a\x02\xc3\x28", "name"),
        (b"\x22\x03\x0a\x01\xff", "message_review_handler.uri"),
        (b"\x2a\x06\x0a\x01k\x12\x01\xff", "tags"),
        (b"\x32\x01a\x32\x01\xff", "logging_configuration_identifiers[1]"),
    ],
    ids=["corrupt", "name", "uri", "tag", "logging-id"],
)
async def test_bytes_that_do_not_parse_are_invalid_argument(
    facade: Facade, raw: bytes, field: str
) -> None:
    call = facade.channel.unary_unary(
        "/ivschat.v1.RoomService/CreateRoom",
        request_serializer=lambda b: b,
        response_deserializer=pb.CreateRoomResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(raw, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(info.value).reason == "MALFORMED_REQUEST"
    assert field in field_violations(info.value)
    assert "DecodeError" not in (info.value.details() or "")
    assert facade.emulator.state.recorded() == []
