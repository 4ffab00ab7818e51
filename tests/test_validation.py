"""Every documented constraint at its boundary, end to end, and never sent to AWS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aioboto3
import grpc
import pytest
from aiobotocore.config import AioConfig
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.aws import validation
from ivschat_grpc.emulator import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, Emulator

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
    state = facade.emulator.state
    state.register_logging_configurations(
        [*state.logging_configurations, *request.logging_configuration_identifiers]
    )
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


# --- the walker is generic: operations nothing serves yet, straight from the model ---

ROOM = "arn:aws:ivschat:us-east-1:123456789012:room/abc123"
TAG_RULE = "letters, digits, spaces and _ . : / = + - @"


def found(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (validation.aws_field_name(v.path), v.message) for v in validation.check(operation, params)
    ]


@pytest.mark.parametrize("operation", sorted(validation.service_model()["operations"]))
def test_every_operation_input_is_walkable(operation: str) -> None:
    # An empty input names exactly the model's required members, and nothing raises.
    shape = validation.service_model()["shapes"][validation.input_shape_name(operation)]
    assert found(operation, {}) == [(m, "is required") for m in shape.get("required", [])]


def test_update_room_required_ranges_and_tag_rules_from_the_shapes() -> None:
    assert found(
        "UpdateRoom",
        {
            "name": "n" * 129,
            "maximumMessageRatePerSecond": 0,
            "messageReviewHandler": {"fallbackResult": "MAYBE"},
            "loggingConfigurationIdentifiers": [ROOM],
        },
    ) == [
        ("identifier", "is required"),
        ("name", "must be 0 to 128 characters long, not 129"),
        ("maximumMessageRatePerSecond", "must be from 1 to 100, not 0"),
        ("messageReviewHandler.fallbackResult", "must be one of ALLOW, DENY"),
        (
            "loggingConfigurationIdentifiers[0]",
            "must be a logging configuration ARN, "
            "arn:aws:ivschat:<region>:<account>:logging-configuration/<id>",
        ),
    ]


def test_tag_rules_apply_wherever_tags_appear() -> None:
    # TagResource's tags and UntagResource's keys (a query-string list) share
    # CreateRoom's tag shapes, so the additions follow them there.
    def tag_findings(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
        return found(operation, params)

    tags = {"aws:mine": "v", "ok": "v#"}
    assert tag_findings("TagResource", {"resourceArn": ROOM, "tags": tags}) == [
        ("tags[aws:mine]", 'key must not start with "aws:"'),
        ("tags[ok]", f"value may hold only {TAG_RULE}"),
    ]
    assert tag_findings("UntagResource", {"resourceArn": ROOM, "tagKeys": ["a#b", "fine"]}) == [
        ("tagKeys[0]", f"key may hold only {TAG_RULE}"),
    ]
    assert tag_findings("UntagResource", {"resourceArn": ROOM, "tagKeys": ["k"] * 51}) == [
        ("tagKeys", "must hold at most 50 tag keys, not 51"),
    ]
    many = {f"k{i}": "" for i in range(51)}
    assert tag_findings("TagResource", {"resourceArn": ROOM, "tags": many}) == [
        ("tags", "must hold at most 50 tags, not 51"),
    ]
    logs = {"cloudWatchLogs": {"logGroupName": "logs"}}
    tagged = {"destinationConfiguration": logs, "tags": {"AWS:x": "y"}}
    assert tag_findings("CreateLoggingConfiguration", tagged) == [
        ("tags[AWS:x]", 'key must not start with "aws:"'),
    ]


RESOURCE_ARN_HINT = (
    "must be a room or logging configuration ARN, "
    "arn:aws:ivschat:<region>:<account>:room/<id> or "
    "arn:aws:ivschat:<region>:<account>:logging-configuration/<id>"
)


def test_uri_members_are_checked_like_body_members() -> None:
    assert found("ListTagsForResource", {"resourceArn": "arn:aws:s3:::bucket"}) == [
        ("resourceArn", RESOURCE_ARN_HINT),
    ]


@pytest.mark.parametrize("operation", ["TagResource", "UntagResource", "ListTagsForResource"])
@pytest.mark.parametrize(
    ("arn", "ok"),
    [
        (ROOM, True),
        ("arn:aws:ivschat:eu-west-1:123456789012:logging-configuration/AbCdEf123456", True),
        # What the model's own pattern takes: a one-letter resource type, which no ARN has.
        ("arn:aws:ivschat:us-east-1:123456789012:r/abc123", False),
        ("arn:aws:ivschat:us-east-1:123456789012:channel/abc123", False),
        ("arn:aws:ivschat:us-east-1:123456789012:rooms/abc123", False),
        ("arn:aws:ivs:us-east-1:123456789012:room/abc123", False),
        ("arn:aws:ivschat:us-east-1:123456789012:room/", False),
        ("arn:aws:ivschat:us-east-1:123456789012:room/abc123\n", False),
        ("abc123", False),
    ],
)
def test_resource_arn_takes_rooms_and_logging_configurations_only(
    operation: str, arn: str, ok: bool
) -> None:
    # The model's ResourceArn pattern is corrected (validation.CORRECTIONS):
    # as the model states it, no room ARN would pass, and nothing could be tagged.
    params: dict[str, Any] = {"resourceArn": arn, "tags": {}, "tagKeys": []}
    expected = [] if ok else [("resourceArn", RESOURCE_ARN_HINT)]
    assert found(operation, params) == expected


_EXACTLY_ONE = ("", "must set exactly one of s3, cloudWatchLogs, firehose")


@pytest.mark.parametrize(
    ("destination", "violations"),
    [
        ({"s3": {"bucketName": "abc"}}, []),
        ({"s3": {"bucketName": "a" * 63}}, []),
        ({"s3": {"bucketName": "my.logs-1"}}, []),
        (
            {"s3": {"bucketName": "ab"}},
            [("s3.bucketName", "must be 3 to 63 characters long, not 2")],
        ),
        (
            {"s3": {"bucketName": "a" * 64}},
            [("s3.bucketName", "must be 3 to 63 characters long, not 64")],
        ),
        (
            {"s3": {"bucketName": "Logs"}},
            [("s3.bucketName", "must be a match of the pattern [a-z0-9-.]+")],
        ),
        ({"cloudWatchLogs": {"logGroupName": "/aws/ivs.chat_logs#1-"}}, []),
        ({"cloudWatchLogs": {"logGroupName": "l" * 512}}, []),
        (
            {"cloudWatchLogs": {"logGroupName": ""}},
            [
                ("cloudWatchLogs.logGroupName", "must be 1 to 512 characters long, not 0"),
                # The model's pattern asks for a character too, and says so.
                (
                    "cloudWatchLogs.logGroupName",
                    "must be a match of the pattern [\\.\\-_/#A-Za-z0-9]+",
                ),
            ],
        ),
        (
            {"cloudWatchLogs": {"logGroupName": "l" * 513}},
            [("cloudWatchLogs.logGroupName", "must be 1 to 512 characters long, not 513")],
        ),
        (
            {"cloudWatchLogs": {"logGroupName": "a b"}},
            [
                (
                    "cloudWatchLogs.logGroupName",
                    "must be a match of the pattern [\\.\\-_/#A-Za-z0-9]+",
                )
            ],
        ),
        ({"firehose": {"deliveryStreamName": "Stream_1.a-b"}}, []),
        ({"firehose": {"deliveryStreamName": "f" * 64}}, []),
        (
            {"firehose": {"deliveryStreamName": "f" * 65}},
            [("firehose.deliveryStreamName", "must be 1 to 64 characters long, not 65")],
        ),
        (
            {"firehose": {"deliveryStreamName": "a/b"}},
            [("firehose.deliveryStreamName", "must be a match of the pattern [a-zA-Z0-9_.-]+")],
        ),
        ({"s3": {}}, [("s3.bucketName", "is required")]),
        # Exactly one kind of destination: none, or two, names the destination itself.
        ({}, [_EXACTLY_ONE]),
        ({"s3": {"bucketName": "abc"}, "firehose": {"deliveryStreamName": "f"}}, [_EXACTLY_ONE]),
    ],
)
def test_logging_destinations_at_their_documented_bounds(
    destination: dict[str, Any], violations: list[tuple[str, str]]
) -> None:
    expected = [
        (".".join(p for p in ("destinationConfiguration", path) if p), message)
        for path, message in violations
    ]
    identifier = LOGCFG + "AbCdEf123456"
    update = {"identifier": identifier, "destinationConfiguration": destination}
    assert found("CreateLoggingConfiguration", {"destinationConfiguration": destination}) == (
        expected
    )
    assert found("UpdateLoggingConfiguration", update) == expected


@pytest.mark.parametrize(
    ("identifier", "ok"),
    [
        (LOGCFG + "AbCdEf123456", True),
        (logcfg_arn(128), True),
        (logcfg_arn(129), False),
        (LOGCFG, False),
        (ROOM, False),
        ("AbCdEf123456", False),
    ],
)
def test_logging_configuration_identifiers_are_arns(identifier: str, ok: bool) -> None:
    for operation in ("GetLoggingConfiguration", "DeleteLoggingConfiguration"):
        messages = [m for _, m in found(operation, {"identifier": identifier})]
        if ok:
            assert messages == []
        elif len(identifier) > 128:
            assert messages == ["must be 1 to 128 characters long, not 129"]
        else:
            assert messages == [
                "must be a logging configuration ARN, "
                "arn:aws:ivschat:<region>:<account>:logging-configuration/<id>"
            ]


def test_untag_keys_follow_the_tag_key_rules() -> None:
    assert found("UntagResource", {"resourceArn": ROOM, "tagKeys": []}) == []
    assert found("UntagResource", {"resourceArn": ROOM, "tagKeys": ["k" * 128] * 50}) == []
    assert found("UntagResource", {"resourceArn": ROOM, "tagKeys": ["", "k" * 129, "aws:x"]}) == [
        ("tagKeys[0]", "must be 1 to 128 characters long, not 0"),
        ("tagKeys[1]", "must be 1 to 128 characters long, not 129"),
        ("tagKeys[2]", 'key must not start with "aws:"'),
    ]


def test_create_chat_token_enums_ranges_and_maps() -> None:
    assert found(
        "CreateChatToken",
        {
            "userId": "",
            "capabilities": ["SEND_MESSAGE", "SHOUT"],
            "sessionDurationInMinutes": 181,
            "attributes": {"k": 1},
        },
    ) == [
        ("roomIdentifier", "is required"),
        ("userId", "must be 1 to 128 characters long, not 0"),
        ("capabilities[1]", "must be one of SEND_MESSAGE, DISCONNECT_USER, DELETE_MESSAGE"),
        ("sessionDurationInMinutes", "must be from 1 to 180, not 181"),
        ("attributes[k]", "must be a string"),
    ]
    assert found(
        "CreateChatToken",
        {"roomIdentifier": ROOM, "userId": "u", "sessionDurationInMinutes": True},
    ) == [("sessionDurationInMinutes", "must be an integer")]


def test_send_event_types_and_lengths() -> None:
    assert found(
        "SendEvent", {"roomIdentifier": ROOM, "eventName": "e" * 101, "attributes": []}
    ) == [
        ("eventName", "must be 1 to 100 characters long, not 101"),
        ("attributes", "must be a map of strings to strings"),
    ]


def test_create_logging_configuration_nested_required_and_union() -> None:
    assert found("CreateLoggingConfiguration", {"name": "x", "tags": {}}) == [
        ("destinationConfiguration", "is required"),
    ]
    assert found(
        "CreateLoggingConfiguration",
        {"destinationConfiguration": {"s3": {}, "firehose": {"deliveryStreamName": "d s"}}},
    ) == [
        ("destinationConfiguration", "must set exactly one of s3, cloudWatchLogs, firehose"),
        ("destinationConfiguration.s3.bucketName", "is required"),
        (
            "destinationConfiguration.firehose.deliveryStreamName",
            "must be a match of the pattern [a-zA-Z0-9_.-]+",
        ),
    ]
    assert (
        found(
            "CreateLoggingConfiguration",
            {"destinationConfiguration": {"cloudWatchLogs": {"logGroupName": "logs"}}},
        )
        == []
    )


def test_unknown_members_are_ignored_as_aws_ignores_them() -> None:
    assert found("CreateRoom", {"futureMember": {"anything": 1}}) == []


def test_a_named_shape_can_be_checked_alone() -> None:
    assert found("Tags", {"aws:x": "y"}) == [("[aws:x]", 'key must not start with "aws:"')]
    with pytest.raises(KeyError):
        validation.check("NoSuchOperation", {})


# --- the local endpoint checks every operation it serves with the same walker ---


@pytest.fixture
async def unchecked(emulator: Emulator) -> AsyncIterator[Any]:
    """A client that sends whatever it is given, as a careless SDK would."""
    session = aioboto3.Session(
        aws_access_key_id=DEFAULT_ACCESS_KEY_ID,
        aws_secret_access_key=DEFAULT_SECRET_ACCESS_KEY,
        region_name="us-east-1",
    )
    config = AioConfig(retries={"total_max_attempts": 1}, parameter_validation=False)
    async with session.client("ivschat", endpoint_url=emulator.url, config=config) as client:
        yield client


@pytest.mark.parametrize("operation", ["get_room", "delete_room"])
async def test_endpoint_checks_room_identifiers(unchecked: Any, operation: str) -> None:
    with pytest.raises(unchecked.exceptions.ValidationException) as info:
        await getattr(unchecked, operation)(identifier="arn:aws:ivschat:us-east-1:1:room/")
    response = info.value.response
    assert response["Error"]["Message"] == "identifier is invalid"
    assert response["fieldList"] == [
        {
            "name": "identifier",
            # RoomIdentifier's hint, which shows the ARN form a bare id lacks.
            "message": "must be a room ARN, arn:aws:ivschat:<region>:<account>:room/<id>; "
            "a bare room id is not accepted",
        }
    ]


async def test_endpoint_checks_every_list_rooms_member(unchecked: Any, emulator: Emulator) -> None:
    with pytest.raises(unchecked.exceptions.ValidationException) as info:
        await unchecked.list_rooms(
            maxResults=51,
            name="bad name",
            messageReviewHandlerUri="arn:aws:sns:us-east-1:123456789012:topic",
            nextToken="%%%",
        )
    response = info.value.response
    assert response["Error"]["Message"] == "invalid ListRooms input"
    assert [(f["name"], f["message"]) for f in response["fieldList"]] == [
        ("maxResults", "must be from 1 to 50, not 51"),
        ("name", "must be a match of the pattern [a-zA-Z0-9-_]*"),
        (
            "messageReviewHandlerUri",
            "must be empty, or a Lambda function ARN: "
            "arn:aws:lambda:<region>:<12-digit account>:function:<name>",
        ),
        ("nextToken", "is not a valid token"),
    ]
    assert emulator.state.rooms == {}
