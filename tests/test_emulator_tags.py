"""The local endpoint's tag operations at /tags/{resourceArn}, through aioboto3 and real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError, ConnectionClosedError
from ivschat_grpc.emulator import (
    Emulator,
    EmulatorSettings,
    FaultRule,
)
from yarl import URL

from tests.support.env import direct_client, signed_headers

# botocore's own checks off, so that what the endpoint refuses reaches it.
NO_RETRIES = AioConfig(
    retries={"total_max_attempts": 1}, read_timeout=5, parameter_validation=False
)
LOGS = {"cloudWatchLogs": {"logGroupName": "chat-logs"}}
ACCOUNT = "arn:aws:ivschat:us-east-1:123456789012"


@pytest.fixture
async def endpoint() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorSettings(create_room_rate=None, quotas={})) as emu:
        yield emu


@pytest.fixture
async def ivschat(endpoint: Emulator) -> AsyncIterator[Any]:
    async with direct_client(endpoint.url, NO_RETRIES) as client:
        yield client


async def test_a_rooms_tags_are_set_listed_and_removed(ivschat: Any) -> None:
    room = await ivschat.create_room(name="tagged", tags={"team": "red"})
    arn = room["arn"]
    tagged = await ivschat.tag_resource(resourceArn=arn, tags={"env": "prod", "team": "blue"})
    assert tagged["ResponseMetadata"]["HTTPStatusCode"] == 200
    listed = await ivschat.list_tags_for_resource(resourceArn=arn)
    assert listed["tags"] == {"team": "blue", "env": "prod"}
    assert (await ivschat.get_room(identifier=arn))["tags"] == {"team": "blue", "env": "prod"}
    [summary] = (await ivschat.list_rooms(name="tagged"))["rooms"]
    assert summary["tags"] == {"team": "blue", "env": "prod"}
    # A key the room lacks is no error; keys that need encoding in a query string arrive whole.
    await ivschat.tag_resource(resourceArn=arn, tags={"a b/c=d+e@f:g": "v"})
    untagged = await ivschat.untag_resource(
        resourceArn=arn, tagKeys=["team", "absent", "a b/c=d+e@f:g"]
    )
    assert untagged["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert (await ivschat.list_tags_for_resource(resourceArn=arn))["tags"] == {"env": "prod"}
    assert (await ivschat.get_room(identifier=arn))["updateTime"] == room["updateTime"]


async def test_a_logging_configurations_tags_too(ivschat: Any) -> None:
    made = await ivschat.create_logging_configuration(
        destinationConfiguration=LOGS, tags={"team": "red"}
    )
    arn = made["arn"]
    await ivschat.tag_resource(resourceArn=arn, tags={"env": "dev"})
    await ivschat.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert (await ivschat.list_tags_for_resource(resourceArn=arn))["tags"] == {"env": "dev"}
    assert (await ivschat.get_logging_configuration(identifier=arn))["tags"] == {"env": "dev"}
    [summary] = (await ivschat.list_logging_configurations())["loggingConfigurations"]
    assert summary["tags"] == {"env": "dev"}


@pytest.mark.parametrize(
    ("arn", "resource_type"),
    [
        (f"{ACCOUNT}:room/NoSuchRoom12", "ROOM"),
        (f"{ACCOUNT}:logging-configuration/NoSuchLogs12", "LOGGING_CONFIGURATION"),
        # Another account's or region's: not this endpoint's, so not found.
        ("arn:aws:ivschat:eu-west-1:123456789012:room/NoSuchRoom12", "ROOM"),
    ],
)
async def test_an_unknown_resource_is_not_found(ivschat: Any, arn: str, resource_type: str) -> None:
    for call in (
        ivschat.tag_resource(resourceArn=arn, tags={"k": "v"}),
        ivschat.untag_resource(resourceArn=arn, tagKeys=["k"]),
        ivschat.list_tags_for_resource(resourceArn=arn),
    ):
        with pytest.raises(ivschat.exceptions.ResourceNotFoundException) as caught:
            await call
        assert caught.value.response["resourceId"] == arn.rsplit("/", 1)[-1]
        assert caught.value.response["resourceType"] == resource_type


async def test_a_room_arn_that_names_a_deleted_room_is_not_found(ivschat: Any) -> None:
    room = await ivschat.create_room()
    await ivschat.delete_room(identifier=room["arn"])
    with pytest.raises(ivschat.exceptions.ResourceNotFoundException):
        await ivschat.list_tags_for_resource(resourceArn=room["arn"])


@pytest.mark.parametrize(
    "arn",
    [
        f"{ACCOUNT}:r/abc123",  # what botocore's model pattern takes, and no ARN is
        f"{ACCOUNT}:channel/abc123",
        "arn:aws:ivs:us-east-1:123456789012:room/abc123",
        "abc123",
    ],
)
async def test_a_bad_arn_is_a_validation_error(ivschat: Any, arn: str) -> None:
    for call in (
        ivschat.tag_resource(resourceArn=arn, tags={"k": "v"}),
        ivschat.untag_resource(resourceArn=arn, tagKeys=["k"]),
        ivschat.list_tags_for_resource(resourceArn=arn),
    ):
        with pytest.raises(ivschat.exceptions.ValidationException) as caught:
            await call
        [field] = caught.value.response["fieldList"]
        assert field["name"] == "resourceArn"
        assert "room/<id>" in field["message"]


async def test_reserved_and_malformed_keys_are_refused_and_nothing_changes(ivschat: Any) -> None:
    room = await ivschat.create_room(tags={"keep": "1"})
    with pytest.raises(ivschat.exceptions.ValidationException) as caught:
        await ivschat.tag_resource(resourceArn=room["arn"], tags={"aws:x": "1", "ok": "v#"})
    names = [f["name"] for f in caught.value.response["fieldList"]]
    assert names == ["tags[aws:x]", "tags[ok]"]
    with pytest.raises(ivschat.exceptions.ValidationException) as caught:
        await ivschat.untag_resource(resourceArn=room["arn"], tagKeys=["keep", "AWS:x"])
    assert [f["name"] for f in caught.value.response["fieldList"]] == ["tagKeys[1]"]
    # The keys travel in the query string; none at all is a missing member.
    with pytest.raises(ivschat.exceptions.ValidationException) as caught:
        await ivschat.untag_resource(resourceArn=room["arn"], tagKeys=[])
    assert caught.value.response["fieldList"] == [{"name": "tagKeys", "message": "is required"}]
    assert (await ivschat.list_tags_for_resource(resourceArn=room["arn"]))["tags"] == {"keep": "1"}


async def test_a_resource_holds_at_most_50_tags_after_the_merge(ivschat: Any) -> None:
    room = await ivschat.create_room(tags={f"k{i}": "" for i in range(48)})
    # Replacing a tag adds none: 48 + 1 replaced + 2 new = 50.
    await ivschat.tag_resource(resourceArn=room["arn"], tags={"k0": "x", "n1": "", "n2": ""})
    with pytest.raises(ivschat.exceptions.ValidationException) as caught:
        await ivschat.tag_resource(resourceArn=room["arn"], tags={"n3": ""})
    assert caught.value.response["fieldList"] == [
        {"name": "tags", "message": "must leave the resource at most 50 tags, not 51"}
    ]
    tags = (await ivschat.list_tags_for_resource(resourceArn=room["arn"]))["tags"]
    assert len(tags) == 50
    assert tags["k0"] == "x"
    with pytest.raises(ivschat.exceptions.ValidationException) as caught:
        await ivschat.tag_resource(resourceArn=room["arn"], tags={f"m{i}": "" for i in range(51)})
    assert caught.value.response["fieldList"][0]["name"] == "tags"


async def test_the_record_holds_the_arn_and_keys(ivschat: Any, endpoint: Emulator) -> None:
    room = await ivschat.create_room()
    await ivschat.tag_resource(resourceArn=room["arn"], tags={"a": "1"})
    await ivschat.untag_resource(resourceArn=room["arn"], tagKeys=["a", "b"])
    await ivschat.list_tags_for_resource(resourceArn=room["arn"])
    async with aiohttp.ClientSession() as http:
        record = await (await http.get(f"{endpoint.url}/_emulator/requests")).json()
    assert [(r["operation"], r["body"], r["status"]) for r in record[1:]] == [
        ("TagResource", {"resourceArn": room["arn"], "tags": {"a": "1"}}, 200),
        ("UntagResource", {"resourceArn": room["arn"], "tagKeys": ["a", "b"]}, 200),
        ("ListTagsForResource", {"resourceArn": room["arn"]}, 200),
    ]


# --- faults and quotas -------------------------------------------------------------


async def test_faults_target_the_tag_operations(ivschat: Any, endpoint: Emulator) -> None:
    room = await ivschat.create_room(name="flaky")
    arn = room["arn"]
    endpoint.state.faults.add(
        FaultRule(operation="TagResource", error="InternalServerException", create=True, times=1),
        # Every time: aiohttp sends a DELETE (as idempotent) once more on a
        # fresh connection when a reused one drops before the answer.
        FaultRule(operation="UntagResource", drop=True, create=True),
        FaultRule(operation="ListTagsForResource", name="flaky", error="ResourceNotFoundException"),
    )
    with pytest.raises(ivschat.exceptions.InternalServerException):
        await ivschat.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
    assert endpoint.state.rooms[room["id"]]["tags"] == {"a": "1", "b": "2"}
    with pytest.raises(ConnectionClosedError):
        await ivschat.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert endpoint.state.rooms[room["id"]]["tags"] == {"b": "2"}
    assert endpoint.state.recorded("UntagResource")[-1].error == "ConnectionDropped"
    # The rule names the room: another room's tags are listed.
    other = await ivschat.create_room(name="steady")
    assert (await ivschat.list_tags_for_resource(resourceArn=other["arn"]))["tags"] == {}
    with pytest.raises(ivschat.exceptions.ResourceNotFoundException):
        await ivschat.list_tags_for_resource(resourceArn=arn)


@pytest.mark.parametrize("operation", ["TagResource", "UntagResource", "ListTagsForResource"])
async def test_each_is_throttled_past_its_aws_quota(operation: str) -> None:
    # 60 at once against 10 a second: some are throttled by the quota itself.
    async with (
        Emulator(EmulatorSettings(create_room_rate=None)) as emu,
        direct_client(emu.url, NO_RETRIES) as client,
    ):
        arn = emu.state.arn("AbCdEfGhIjKl")
        call: Callable[[], Awaitable[Any]] = {
            "TagResource": lambda: client.tag_resource(resourceArn=arn, tags={"k": "v"}),
            "UntagResource": lambda: client.untag_resource(resourceArn=arn, tagKeys=["k"]),
            "ListTagsForResource": lambda: client.list_tags_for_resource(resourceArn=arn),
        }[operation]
        outcomes = await asyncio.gather(*(call() for _ in range(60)), return_exceptions=True)
    throttled = [e for e in outcomes if isinstance(e, client.exceptions.ThrottlingException)]
    assert throttled
    assert throttled[0].response["limit"] == 10
    assert throttled[0].response["resourceId"] == operation
    assert all(isinstance(e, ClientError) for e in outcomes)


# --- the wire: paths, query strings and signatures ------------------------------------


def _signed(emu: Emulator, method: str, path_and_query: str) -> dict[str, str]:
    return signed_headers(f"{emu.url}{path_and_query}", method=method)


async def test_a_signature_over_the_encoded_arn_and_query_is_checked(
    endpoint: Emulator,
) -> None:
    room = endpoint.state.create_room({"tags": {"a b": "1", "c+d": "2", "e": "3"}})
    path = "/tags/" + quote(room["arn"], safe="")
    assert "%3A" in path
    assert "%2F" in path
    query = "?tagKeys=a%20b&tagKeys=c%2Bd"
    async with aiohttp.ClientSession() as http:
        url = f"{endpoint.url}{path}{query}"
        signed = _signed(endpoint, "DELETE", path + query)
        resp = await http.delete(URL(url, encoded=True), headers=signed)
        assert resp.status == 200, await resp.text()
        assert room["tags"] == {"e": "3"}
        unsigned = await http.get(URL(f"{endpoint.url}{path}", encoded=True))
        assert unsigned.status == 403
        assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
        # Signed for one key, sent for another: the query string is part of the signature.
        other = f"{endpoint.url}{path}?tagKeys=e"
        resp = await http.delete(URL(other, encoded=True), headers=signed)
        assert resp.status == 403
        assert resp.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert room["tags"] == {"e": "3"}


async def test_an_arn_whose_slash_is_not_encoded_is_no_operation(endpoint: Emulator) -> None:
    # AWS's reference says the ARN must be URL-encoded; SDKs encode it.
    path = f"/tags/{ACCOUNT}:room/AbCdEfGhIjKl"
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{endpoint.url}{path}", headers=_signed(endpoint, "GET", path))
        assert resp.status == 404
        assert resp.headers["x-amzn-ErrorType"] == "UnknownOperationException"
