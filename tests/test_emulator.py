"""The local endpoint, through aioboto3's real client and real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aioboto3
import aiohttp
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from ivschat_grpc.core.operations import OPERATIONS as AWS_OPERATIONS
from ivschat_grpc.emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_SECRET_ACCESS_KEY,
    Emulator,
    EmulatorSettings,
    FaultRule,
)
from ivschat_grpc.emulator.server import OPERATIONS as EMULATED

from tests.support.env import signed_headers
from tests.support.facade import LOGGING_ARNS

NO_RETRIES = AioConfig(retries={"total_max_attempts": 1}, read_timeout=2)


def client_for(
    emu: Emulator,
    secret: str = DEFAULT_SECRET_ACCESS_KEY,
    *,
    region: str = "us-east-1",
    key: str = DEFAULT_ACCESS_KEY_ID,
) -> Any:
    session = aioboto3.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name=region
    )
    return session.client("ivschat", endpoint_url=emu.url, config=NO_RETRIES)


@pytest.fixture
async def ivschat(emulator: Emulator) -> AsyncIterator[Any]:
    async with client_for(emulator) as client:
        yield client


async def test_create_room_applies_aws_defaults(ivschat: Any, emulator: Emulator) -> None:
    room = await ivschat.create_room()
    assert len(room["id"]) == 12
    assert room["id"].isalnum()
    assert room["id"].isascii()
    assert room["arn"] == f"arn:aws:ivschat:us-east-1:123456789012:room/{room['id']}"
    assert room["maximumMessageLength"] == 500
    assert room["maximumMessageRatePerSecond"] == 10
    assert room["name"] == ""
    assert isinstance(room["createTime"], datetime)
    assert room["createTime"] == room["updateTime"]
    assert abs(datetime.now(UTC) - room["createTime"]).total_seconds() < 60
    assert room["ResponseMetadata"]["RequestId"]


async def test_review_handler_fallback_defaults_to_allow(ivschat: Any) -> None:
    uri = "arn:aws:lambda:us-east-1:123456789012:function:review"
    room = await ivschat.create_room(messageReviewHandler={"uri": uri})
    assert room["messageReviewHandler"] == {"uri": uri, "fallbackResult": "ALLOW"}


async def test_get_list_delete_round_trip(ivschat: Any) -> None:
    created = [await ivschat.create_room(name=f"room-{i}") for i in range(5)]
    await ivschat.create_room(name="other")
    got = await ivschat.get_room(identifier=created[0]["arn"])
    assert got["id"] == created[0]["id"]
    seen: list[str] = []
    kwargs: dict[str, Any] = {"maxResults": 2}
    while True:
        page = await ivschat.list_rooms(**kwargs)
        seen += [r["id"] for r in page["rooms"] if r["name"].startswith("room-")]
        assert len(page["rooms"]) <= 2
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert sorted(seen) == sorted(r["id"] for r in created)
    named = await ivschat.list_rooms(name="other")
    assert [r["name"] for r in named["rooms"]] == ["other"]
    await ivschat.delete_room(identifier=created[0]["arn"])
    with pytest.raises(ivschat.exceptions.ResourceNotFoundException) as info:
        await ivschat.get_room(identifier=created[0]["arn"])
    assert info.value.response["resourceId"] == created[0]["id"]
    assert info.value.response["resourceType"] == "ROOM"


async def test_validation_names_every_bad_field(ivschat: Any, emulator: Emulator) -> None:
    with pytest.raises(ivschat.exceptions.ValidationException) as info:
        await ivschat.create_room(
            name="bad name",
            maximumMessageLength=501,
            tags={"aws:reserved": "x"},
            loggingConfigurationIdentifiers=["not-an-arn"],
        )
    response = info.value.response
    assert response["reason"] == "FIELD_VALIDATION_FAILED"
    names = {f["name"] for f in response["fieldList"]}
    assert names == {
        "name",
        "maximumMessageLength",
        "tags[aws:reserved]",
        "loggingConfigurationIdentifiers[0]",
    }
    assert emulator.state.rooms == {}


async def test_unknown_logging_configuration_is_not_found(ivschat: Any) -> None:
    missing = "arn:aws:ivschat:us-east-1:123456789012:logging-configuration/Nope"
    with pytest.raises(ivschat.exceptions.ResourceNotFoundException) as info:
        await ivschat.create_room(loggingConfigurationIdentifiers=[LOGGING_ARNS[0], missing])
    assert info.value.response["resourceId"] == "Nope"


@pytest.mark.parametrize(
    ("error", "fields"),
    [
        ("ValidationException", {"reason": "FIELD_VALIDATION_FAILED"}),
        ("AccessDeniedException", {}),
        ("PendingVerification", {}),
        ("ResourceNotFoundException", {"resourceId": "InjectedRoom", "resourceType": "ROOM"}),
        ("ConflictException", {"resourceId": "InjectedRoom", "resourceType": "ROOM"}),
        (
            "ServiceQuotaExceededException",
            {"resourceId": "InjectedRoom", "resourceType": "ROOM", "limit": 50000},
        ),
        ("ThrottlingException", {"resourceId": "CreateRoom", "resourceType": "ROOM", "limit": 5}),
        ("InternalServerException", {}),
    ],
)
async def test_every_documented_error_arrives_as_its_modeled_exception(
    ivschat: Any, emulator: Emulator, error: str, fields: dict[str, Any]
) -> None:
    emulator.state.faults.add(FaultRule(error=error, times=1))
    with pytest.raises(getattr(ivschat.exceptions, error)) as info:
        await ivschat.create_room(name="x")
    response = info.value.response
    assert response["Error"]["Code"] == error
    for key, value in fields.items():
        assert response[key] == value
    assert emulator.state.rooms == {}
    # The rule was used up: the next call succeeds.
    assert (await ivschat.create_room(name="y"))["name"] == "y"


async def test_service_unavailable_is_a_503(ivschat: Any, emulator: Emulator) -> None:
    emulator.state.faults.add(FaultRule(error="ServiceUnavailable", times=1))
    with pytest.raises(ClientError) as info:
        await ivschat.create_room()
    assert info.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


@pytest.mark.parametrize("create", [False, True])
async def test_internal_error_with_or_without_the_room(
    ivschat: Any, emulator: Emulator, create: bool
) -> None:
    emulator.state.faults.add(FaultRule(error="InternalServerException", create=create, times=1))
    with pytest.raises(ivschat.exceptions.InternalServerException):
        await ivschat.create_room(name="maybe")
    assert len(emulator.state.rooms) == (1 if create else 0)


@pytest.mark.parametrize("create", [False, True])
async def test_dropped_connection_before_or_after_creating(
    ivschat: Any, emulator: Emulator, create: bool
) -> None:
    emulator.state.faults.add(FaultRule(drop=True, create=create, times=1))
    with pytest.raises(ConnectionClosedError):
        await ivschat.create_room(name="dropped")
    assert len(emulator.state.rooms) == (1 if create else 0)
    assert emulator.state.recorded("CreateRoom")[-1].error == "ConnectionDropped"


async def test_latency_is_added(ivschat: Any, emulator: Emulator) -> None:
    emulator.state.faults.add(FaultRule(latency_ms=5000, times=1))
    with pytest.raises(ReadTimeoutError):
        await ivschat.create_room(name="slow")  # the client's read timeout is 2 s


async def test_faults_match_by_name(ivschat: Any, emulator: Emulator) -> None:
    emulator.state.faults.add(FaultRule(name="doomed", error="ConflictException"))
    assert (await ivschat.create_room(name="fine"))["name"] == "fine"
    for _ in range(2):
        with pytest.raises(ivschat.exceptions.ConflictException):
            await ivschat.create_room(name="doomed")


async def test_quota_throttles_beyond_its_rate() -> None:
    async with Emulator(EmulatorSettings(create_room_rate=2)) as emu, client_for(emu) as client:
        results = await asyncio.gather(
            *(client.create_room() for _ in range(6)), return_exceptions=True
        )
        throttled = [r for r in results if isinstance(r, client.exceptions.ThrottlingException)]
        assert len(throttled) == 4  # a burst of 2, then the bucket is empty
        assert throttled[0].response["limit"] == 2
        assert len(emu.state.rooms) == 2
        emu.state.set_quota(None)
        assert (await client.create_room())["id"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"secret": "wrong-secret"}, "InvalidSignatureException"),
        ({"key": "unknown-key"}, "UnrecognizedClientException"),
        ({"region": "eu-west-1"}, "InvalidSignatureException"),
    ],
)
async def test_bad_signatures_are_refused(
    emulator: Emulator, kwargs: dict[str, str], code: str
) -> None:
    async with client_for(emulator, **kwargs) as client:
        with pytest.raises(ClientError) as info:
            await client.create_room(name="x")
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert emulator.state.rooms == {}


async def test_signature_for_another_service_is_refused(emulator: Emulator) -> None:
    body = json.dumps({"name": "x"}).encode()
    headers = _signed(emulator, "/CreateRoom", body, service="ivs")
    async with aiohttp.ClientSession() as http:
        url = f"{emulator.url}/CreateRoom"
        resp = await http.post(url, data=body, headers=headers)
        assert resp.status == 403
        assert resp.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
        assert "ivschat" in (await resp.json())["message"]
        unsigned = await http.post(f"{emulator.url}/CreateRoom", json={"name": "x"})
        assert unsigned.status == 403
        assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert emulator.state.rooms == {}


async def test_admin_routes_set_faults_quota_and_read_the_record(
    ivschat: Any, emulator: Emulator
) -> None:
    admin = f"{emulator.url}/_emulator"
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{admin}/faults", json={"error": "ConflictException", "times": 1})
        assert resp.status == 200
        bad = await http.post(f"{admin}/faults", json={"error": "NoSuchError"})
        assert bad.status == 400
        with pytest.raises(ivschat.exceptions.ConflictException):
            await ivschat.create_room(name="a")
        await ivschat.create_room(name="b")
        record = await (await http.get(f"{admin}/requests?operation=CreateRoom")).json()
        assert [(r["body"]["name"], r["status"], r["error"]) for r in record] == [
            ("a", 409, "ConflictException"),
            ("b", 200, None),
        ]
        assert record[1]["roomId"] in emulator.state.rooms
        assert (await http.delete(f"{admin}/requests")).status == 200
        assert await (await http.get(f"{admin}/requests")).json() == []
        resp = await http.put(f"{admin}/quota", json={"create_room_per_second": 1})
        assert resp.status == 200
        await ivschat.create_room()
        with pytest.raises(ivschat.exceptions.ThrottlingException):
            await ivschat.create_room()
        resp = await http.put(f"{admin}/logging-configurations", json={"arns": []})
        assert resp.status == 200
        assert emulator.state.logging_configurations == {}


async def test_faults_given_at_start_apply() -> None:
    settings = EmulatorSettings(
        create_room_rate=None, faults=(FaultRule(error="AccessDeniedException", times=1),)
    )
    async with Emulator(settings) as emu, client_for(emu) as client:
        with pytest.raises(client.exceptions.AccessDeniedException):
            await client.create_room()
        assert (await client.create_room())["id"]


def _signed(
    emulator: Emulator,
    path: str,
    body: bytes,
    service: str = "ivschat",
    content_type: str = "application/json",
) -> dict[str, str]:
    """Headers that sign a POST of body to path for service, as botocore signs."""
    return signed_headers(f"{emulator.url}{path}", body, service=service, content_type=content_type)


async def _aws_shaped(resp: aiohttp.ClientResponse, status: int, error_type: str) -> None:
    assert resp.status == status
    assert resp.headers["x-amzn-ErrorType"] == error_type
    assert resp.headers["x-amzn-RequestId"]
    assert resp.content_type == "application/json"
    assert isinstance((await resp.json())["message"], str)


async def test_a_body_nested_past_the_parser_is_a_json_refusal_not_a_crash(
    emulator: Emulator,
) -> None:
    deep = b"[" * 1000
    async with aiohttp.ClientSession() as http:
        unsigned = await http.post(f"{emulator.url}/CreateRoom", data=deep)
        await _aws_shaped(unsigned, 403, "MissingAuthenticationTokenException")
        signed = await http.post(
            f"{emulator.url}/CreateRoom", data=deep, headers=_signed(emulator, "/CreateRoom", deep)
        )
        await _aws_shaped(signed, 400, "ValidationException")
    assert emulator.state.rooms == {}


ROOM_TAGS = "/tags/arn:aws:ivschat:us-east-1:123456789012:room/abc"


@pytest.mark.parametrize(
    ("method", "path", "status", "error_type"),
    [
        (
            "GET",
            "/tags/arn:aws:ivschat:us-east-1:123456789012:room/abc",
            404,
            "UnknownOperationException",
        ),
        (
            "POST",
            "/tags/arn:aws:ivschat:us-east-1:123456789012:room/abc",
            404,
            "UnknownOperationException",
        ),
        ("GET", "/CreateRoom", 405, "UnknownOperationException"),
    ],
)
async def test_unrouted_requests_get_aws_shaped_json(
    emulator: Emulator, method: str, path: str, status: int, error_type: str
) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.request(method, f"{emulator.url}{path}")
        await _aws_shaped(resp, status, error_type)


async def test_a_body_over_a_mebibyte_gets_aws_shaped_json(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{emulator.url}/CreateRoom", data=b" " * (1024 * 1024 + 1))
        await _aws_shaped(resp, 413, "RequestEntityTooLargeException")


# -1, not a number, " 1", "0_1", and a position far past the end.
@pytest.mark.parametrize("token", ["LTE=", "bm90LWEtbnVtYmVy", "IDE=", "MF8x", "OTk5OTk5OTk5"])
async def test_list_rooms_refuses_a_token_it_never_gave(ivschat: Any, token: str) -> None:
    with pytest.raises(ivschat.exceptions.ValidationException) as caught:
        await ivschat.list_rooms(nextToken=token)
    fields = caught.value.response["fieldList"]
    assert [f["name"] for f in fields] == ["nextToken"]


async def test_a_quota_body_with_another_key_is_refused_not_taken_as_off(
    emulator: Emulator,
) -> None:
    url = f"{emulator.url}/_emulator/quota"
    async with aiohttp.ClientSession() as http:
        assert (await http.put(url, json={"create_room_per_second": 2})).status == 200
        assert (await http.put(url, json={"rate": 5})).status == 400
    assert emulator.state.quota is not None  # still the 2/s set first, not turned off
    assert emulator.state.quota.rate == 2


async def _raw_exchange(emulator: Emulator, *parts: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send parts over one connection, each once the last is flushed; read the answer."""
    reader, writer = await asyncio.open_connection(emulator.settings.host, emulator.port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
        head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    finally:
        writer.close()
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status_line.encode(), headers, body


_POST = b"POST /CreateRoom HTTP/1.1\r\nHost: localhost\r\n"


# Requests aiohttp's own parser refuses before any route or middleware runs.
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="request-line"),
        pytest.param(b"POST /CreateRoom HTTP/9\r\n\r\n", id="http-version"),
        pytest.param(_POST + b"Bad Header: \x01\r\n\r\n", id="header"),
        pytest.param(
            _POST + b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n", id="chunk-size"
        ),
        pytest.param(_POST + b"Content-Length: abc\r\n\r\n{}", id="content-length"),
        pytest.param(
            _POST + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            id="length-and-chunked",
        ),
        # A Content-Length shorter than the body: the rest reads as a request line.
        pytest.param(_POST + b"Content-Length: 2\r\n\r\n{}}{}\r\n\r\n", id="length-short"),
    ],
)
async def test_malformed_http_gets_aws_shaped_json(emulator: Emulator, raw: bytes) -> None:
    status, headers, body = await _raw_exchange(emulator, raw)
    assert status.split()[1] == b"400"
    assert headers["x-amzn-errortype"] == "SerializationException"
    assert headers["x-amzn-requestid"]
    assert headers["content-type"].startswith("application/json")
    assert isinstance(json.loads(body)["message"], str)
    assert emulator.state.rooms == {}


async def test_a_bad_chunk_after_the_headers_is_json_too(emulator: Emulator) -> None:
    # The headers are read and routed first; the body fails in the handler's read.
    headers = _POST + b"Transfer-Encoding: chunked\r\n\r\n"
    status, answer, body = await _raw_exchange(emulator, headers, b"2\r\n{}\r\nZZ\r\n\r\n")
    assert status.split()[1] == b"400"
    assert answer["x-amzn-errortype"] == "SerializationException"
    assert json.loads(body)["message"]
    assert emulator.state.rooms == {}


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "error_type"),
    [
        # An empty body is the empty object, as AWS's JSON protocols read it.
        ("/CreateRoom", b"", "application/json", 200, None),
        ("/GetRoom", b"", "application/json", 400, "ValidationException"),
        ("/CreateRoom", b"[1, 2]", "application/json", 400, "ValidationException"),
        ("/CreateRoom", b'"room"', "application/json", 400, "ValidationException"),
        ("/CreateRoom", b"null", "application/json", 400, "ValidationException"),
        ("/CreateRoom", b'{"name": "\xff\xfe"}', "application/json", 400, "ValidationException"),
        ("/CreateRoom", b"{not json", "application/json", 400, "ValidationException"),
        # The body decides, not the label: AWS's SDKs all send application/json.
        ("/CreateRoom", b'{"name": "typed"}', "text/plain", 200, None),
    ],
    ids=["empty", "empty-get", "array", "string", "null", "not-utf8", "not-json", "text-plain"],
)
async def test_odd_bodies_get_json_answers(
    emulator: Emulator,
    path: str,
    body: bytes,
    content_type: str,
    status: int,
    error_type: str | None,
) -> None:
    headers = _signed(emulator, path, body, content_type=content_type)
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{emulator.url}{path}", data=body, headers=headers)
        if error_type is not None:
            await _aws_shaped(resp, status, error_type)
        else:
            assert resp.status == status
            assert resp.headers["x-amzn-RequestId"]
            assert (await resp.json())["id"]
    record = emulator.state.requests[-1]
    assert (record.status, record.error) == (status, error_type)


async def test_list_rooms_validates_its_filters(ivschat: Any) -> None:
    with pytest.raises(ivschat.exceptions.ValidationException) as caught:
        await ivschat.list_rooms(
            messageReviewHandlerUri="not-a-lambda", loggingConfigurationIdentifier="not-an-arn"
        )
    names = {f["name"] for f in caught.value.response["fieldList"]}
    assert names == {"messageReviewHandlerUri", "loggingConfigurationIdentifier"}


async def test_every_operation_has_its_aws_quota_by_default() -> None:
    async with Emulator() as emu, aiohttp.ClientSession() as http:
        resp = await http.get(f"{emu.url}/_emulator/operations")
        listed = {row["operation"]: row["quota"] for row in await resp.json()}
    assert listed == {op: AWS_OPERATIONS[op].rate for op in EMULATED}


async def test_the_default_quota_throttles_a_read_burst() -> None:
    # 30 GetRooms at once against 5 a second: most are throttled, and say so as AWS does.
    async with Emulator() as emu, client_for(emu) as client:
        arn = emu.state.arn("AbCdEfGhIjKl")
        outcomes = await asyncio.gather(
            *(client.get_room(identifier=arn) for _ in range(30)), return_exceptions=True
        )
    throttled = [e for e in outcomes if isinstance(e, client.exceptions.ThrottlingException)]
    assert throttled
    assert throttled[0].response["limit"] == 5
    assert throttled[0].response["resourceId"] == "GetRoom"
    assert all(isinstance(e, ClientError) for e in outcomes)
