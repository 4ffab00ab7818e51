"""The local endpoint's tag operations at /tags/{resourceArn}, through aioboto3 and real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from ivschat_grpc.emulator import (
    Emulator,
    EmulatorSettings,
    FaultRule,
)
from yarl import URL

from tests.support.endpoint import UNCHECKED
from tests.support.env import direct_client, signed_headers

LOGS = {"cloudWatchLogs": {"logGroupName": "chat-logs"}}
ACCOUNT = "arn:aws:ivschat:us-east-1:123456789012"


async def test_a_rooms_tags_are_set_listed_and_removed(unchecked: Any) -> None:
    room = await unchecked.create_room(name="tagged", tags={"team": "red"})
    arn = room["arn"]
    tagged = await unchecked.tag_resource(resourceArn=arn, tags={"env": "prod", "team": "blue"})
    assert tagged["ResponseMetadata"]["HTTPStatusCode"] == 200
    listed = await unchecked.list_tags_for_resource(resourceArn=arn)
    assert listed["tags"] == {"team": "blue", "env": "prod"}
    assert (await unchecked.get_room(identifier=arn))["tags"] == {"team": "blue", "env": "prod"}
    [summary] = (await unchecked.list_rooms(name="tagged"))["rooms"]
    assert summary["tags"] == {"team": "blue", "env": "prod"}
    # A key the room lacks is no error; keys that need encoding in a query string arrive whole.
    await unchecked.tag_resource(resourceArn=arn, tags={"a b/c=d+e@f:g": "v"})
    untagged = await unchecked.untag_resource(
        resourceArn=arn, tagKeys=["team", "absent", "a b/c=d+e@f:g"]
    )
    assert untagged["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert (await unchecked.list_tags_for_resource(resourceArn=arn))["tags"] == {"env": "prod"}
    assert (await unchecked.get_room(identifier=arn))["updateTime"] == room["updateTime"]


async def test_a_logging_configurations_tags_too(unchecked: Any) -> None:
    made = await unchecked.create_logging_configuration(
        destinationConfiguration=LOGS, tags={"team": "red"}
    )
    arn = made["arn"]
    await unchecked.tag_resource(resourceArn=arn, tags={"env": "dev"})
    await unchecked.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert (await unchecked.list_tags_for_resource(resourceArn=arn))["tags"] == {"env": "dev"}
    assert (await unchecked.get_logging_configuration(identifier=arn))["tags"] == {"env": "dev"}
    listed = (await unchecked.list_logging_configurations())["loggingConfigurations"]
    assert [c["tags"] for c in listed if c["arn"] == arn] == [{"env": "dev"}]


def _each_tag_operation(client: Any, arn: str) -> list[Awaitable[Any]]:
    """A call of each tag operation on arn, for a test that expects one answer of all three."""
    return [
        client.tag_resource(resourceArn=arn, tags={"k": "v"}),
        client.untag_resource(resourceArn=arn, tagKeys=["k"]),
        client.list_tags_for_resource(resourceArn=arn),
    ]


@pytest.mark.parametrize(
    ("arn", "resource_type"),
    [
        (f"{ACCOUNT}:room/NoSuchRoom12", "ROOM"),
        (f"{ACCOUNT}:logging-configuration/NoSuchLogs12", "LOGGING_CONFIGURATION"),
        # Another account's or region's: not this endpoint's, so not found.
        ("arn:aws:ivschat:eu-west-1:123456789012:room/NoSuchRoom12", "ROOM"),
    ],
)
async def test_an_unknown_resource_is_not_found(
    unchecked: Any, arn: str, resource_type: str
) -> None:
    for call in _each_tag_operation(unchecked, arn):
        with pytest.raises(unchecked.exceptions.ResourceNotFoundException) as caught:
            await call
        assert caught.value.response["resourceId"] == arn.rsplit("/", 1)[-1]
        assert caught.value.response["resourceType"] == resource_type


async def test_a_room_arn_that_names_a_deleted_room_is_not_found(unchecked: Any) -> None:
    room = await unchecked.create_room()
    await unchecked.delete_room(identifier=room["arn"])
    with pytest.raises(unchecked.exceptions.ResourceNotFoundException):
        await unchecked.list_tags_for_resource(resourceArn=room["arn"])


@pytest.mark.parametrize(
    "arn",
    [
        f"{ACCOUNT}:r/abc123",  # what botocore's model pattern takes, and no ARN is
        f"{ACCOUNT}:channel/abc123",
        "arn:aws:ivs:us-east-1:123456789012:room/abc123",
        "abc123",
    ],
)
async def test_a_bad_arn_is_a_validation_error(unchecked: Any, arn: str) -> None:
    for call in _each_tag_operation(unchecked, arn):
        with pytest.raises(unchecked.exceptions.ValidationException) as caught:
            await call
        [field] = caught.value.response["fieldList"]
        assert field["name"] == "resourceArn"
        assert "room/<id>" in field["message"]


async def test_reserved_and_malformed_keys_are_refused_and_nothing_changes(unchecked: Any) -> None:
    room = await unchecked.create_room(tags={"keep": "1"})
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await unchecked.tag_resource(resourceArn=room["arn"], tags={"aws:x": "1", "ok": "v#"})
    names = [f["name"] for f in caught.value.response["fieldList"]]
    assert names == ["tags[aws:x]", "tags[ok]"]
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await unchecked.untag_resource(resourceArn=room["arn"], tagKeys=["keep", "AWS:x"])
    assert [f["name"] for f in caught.value.response["fieldList"]] == ["tagKeys[1]"]
    # The keys travel in the query string; none at all is a missing member.
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await unchecked.untag_resource(resourceArn=room["arn"], tagKeys=[])
    assert caught.value.response["fieldList"] == [{"name": "tagKeys", "message": "is required"}]
    assert (await unchecked.list_tags_for_resource(resourceArn=room["arn"]))["tags"] == {
        "keep": "1"
    }


async def test_a_resource_holds_at_most_50_tags_after_the_merge(unchecked: Any) -> None:
    room = await unchecked.create_room(tags={f"k{i}": "" for i in range(48)})
    # Replacing a tag adds none: 48 + 1 replaced + 2 new = 50.
    await unchecked.tag_resource(resourceArn=room["arn"], tags={"k0": "x", "n1": "", "n2": ""})
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await unchecked.tag_resource(resourceArn=room["arn"], tags={"n3": ""})
    assert caught.value.response["fieldList"] == [
        {"name": "tags", "message": "must leave the resource at most 50 tags, not 51"}
    ]
    tags = (await unchecked.list_tags_for_resource(resourceArn=room["arn"]))["tags"]
    assert len(tags) == 50
    assert tags["k0"] == "x"
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await unchecked.tag_resource(resourceArn=room["arn"], tags={f"m{i}": "" for i in range(51)})
    assert caught.value.response["fieldList"][0]["name"] == "tags"


async def test_the_record_holds_the_arn_and_keys(unchecked: Any, unthrottled: Emulator) -> None:
    room = await unchecked.create_room()
    await unchecked.tag_resource(resourceArn=room["arn"], tags={"a": "1"})
    await unchecked.untag_resource(resourceArn=room["arn"], tagKeys=["a", "b"])
    await unchecked.list_tags_for_resource(resourceArn=room["arn"])
    async with aiohttp.ClientSession() as http:
        record = await (await http.get(f"{unthrottled.url}/_emulator/requests")).json()
    assert [(r["operation"], r["body"], r["status"]) for r in record[1:]] == [
        ("TagResource", {"resourceArn": room["arn"], "tags": {"a": "1"}}, 200),
        ("UntagResource", {"resourceArn": room["arn"], "tagKeys": ["a", "b"]}, 200),
        ("ListTagsForResource", {"resourceArn": room["arn"]}, 200),
    ]


# --- faults and quotas -------------------------------------------------------------


async def test_faults_target_the_tag_operations(unchecked: Any, unthrottled: Emulator) -> None:
    room = await unchecked.create_room(name="flaky")
    arn = room["arn"]
    unthrottled.state.faults.add(
        FaultRule(operation="TagResource", error="InternalServerException", create=True, times=1),
        # Every time: aiohttp sends a DELETE (as idempotent) once more on a
        # fresh connection when a reused one drops before the answer.
        FaultRule(operation="UntagResource", drop=True, create=True),
        FaultRule(operation="ListTagsForResource", name="flaky", error="ResourceNotFoundException"),
    )
    with pytest.raises(unchecked.exceptions.InternalServerException):
        await unchecked.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
    assert unthrottled.state.rooms[room["id"]]["tags"] == {"a": "1", "b": "2"}
    with pytest.raises(ConnectionClosedError):
        await unchecked.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert unthrottled.state.rooms[room["id"]]["tags"] == {"b": "2"}
    assert unthrottled.state.recorded("UntagResource")[-1].error == "ConnectionDropped"
    # The rule names the room: another room's tags are listed.
    other = await unchecked.create_room(name="steady")
    assert (await unchecked.list_tags_for_resource(resourceArn=other["arn"]))["tags"] == {}
    with pytest.raises(unchecked.exceptions.ResourceNotFoundException):
        await unchecked.list_tags_for_resource(resourceArn=arn)


@pytest.mark.parametrize("operation", ["TagResource", "UntagResource", "ListTagsForResource"])
async def test_each_is_throttled_past_its_aws_quota(operation: str) -> None:
    # 60 at once against 10 a second: some are throttled by the quota itself.
    async with (
        Emulator(EmulatorSettings(create_room_rate=None)) as emu,
        direct_client(emu.url, UNCHECKED) as client,
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
    unthrottled: Emulator,
) -> None:
    room = unthrottled.state.create_room({"tags": {"a b": "1", "c+d": "2", "e": "3"}})
    path = "/tags/" + quote(room["arn"], safe="")
    assert "%3A" in path
    assert "%2F" in path
    query = "?tagKeys=a%20b&tagKeys=c%2Bd"
    async with aiohttp.ClientSession() as http:
        url = f"{unthrottled.url}{path}{query}"
        signed = _signed(unthrottled, "DELETE", path + query)
        resp = await http.delete(URL(url, encoded=True), headers=signed)
        assert resp.status == 200, await resp.text()
        assert room["tags"] == {"e": "3"}
        unsigned = await http.get(URL(f"{unthrottled.url}{path}", encoded=True))
        assert unsigned.status == 403
        assert unsigned.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
        # Signed for one key, sent for another: the query string is part of the signature.
        other = f"{unthrottled.url}{path}?tagKeys=e"
        resp = await http.delete(URL(other, encoded=True), headers=signed)
        assert resp.status == 403
        assert resp.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert room["tags"] == {"e": "3"}


async def test_an_arn_whose_slash_is_not_encoded_is_no_operation(unthrottled: Emulator) -> None:
    # AWS's reference says the ARN must be URL-encoded; SDKs encode it.
    path = f"/tags/{ACCOUNT}:room/AbCdEfGhIjKl"
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{unthrottled.url}{path}", headers=_signed(unthrottled, "GET", path))
        assert resp.status == 404
        assert resp.headers["x-amzn-ErrorType"] == "UnknownOperationException"
