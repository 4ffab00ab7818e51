"""The local endpoint's logging configurations, through aioboto3's real client and real HTTP."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from ivschat_grpc.emulator import Emulator, EmulatorSettings, FaultRule

from tests.support.endpoint import GIVEN_LOGGING_ARN, UNCHECKED, unthrottled_settings
from tests.support.env import direct_client
from tests.support.waiting import until

LOGS = {"cloudWatchLogs": {"logGroupName": "chat-logs"}}
BUCKET = {"s3": {"bucketName": "chat-logs-bucket"}}
REGISTERED = GIVEN_LOGGING_ARN
ARN_PREFIX = "arn:aws:ivschat:us-east-1:123456789012:logging-configuration/"
# Long enough that no loaded machine sees a change finish while a test looks at it.
FOREVER_S = 600.0


async def test_create_answers_every_member_and_get_returns_it(unchecked: Any) -> None:
    made = await unchecked.create_logging_configuration(
        name="logs-1", destinationConfiguration=LOGS, tags={"team": "chat"}
    )
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert made["ResponseMetadata"]["RequestId"]
    assert len(made["id"]) == 12
    assert made["id"].isalnum()
    assert made["id"].isascii()
    assert made["arn"] == ARN_PREFIX + made["id"]
    assert made["name"] == "logs-1"
    assert made["destinationConfiguration"] == LOGS
    assert made["tags"] == {"team": "chat"}
    # Create's output shape allows ACTIVE alone; with no delay it is ACTIVE at once.
    assert made["state"] == "ACTIVE"
    assert isinstance(made["createTime"], datetime)
    assert made["createTime"] == made["updateTime"]
    got = await unchecked.get_logging_configuration(identifier=made["arn"])
    members = ("arn", "id", "name", "createTime", "updateTime", "destinationConfiguration")
    assert {k: got[k] for k in (*members, "state", "tags")} == {
        k: made[k] for k in (*members, "state", "tags")
    }


async def test_name_and_tags_are_optional(unchecked: Any) -> None:
    made = await unchecked.create_logging_configuration(destinationConfiguration=BUCKET)
    assert made["name"] == ""
    assert made["tags"] == {}
    assert made["destinationConfiguration"] == BUCKET


@pytest.mark.parametrize("destination", [{}, {**LOGS, **BUCKET}])
async def test_exactly_one_destination_kind(
    unchecked: Any, unthrottled: Emulator, destination: dict[str, Any]
) -> None:
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await unchecked.create_logging_configuration(destinationConfiguration=destination)
    response = caught.value.response
    assert response["reason"] == "FIELD_VALIDATION_FAILED"
    assert [f["name"] for f in response["fieldList"]] == ["destinationConfiguration"]
    assert list(unthrottled.state.logging_configurations) == [REGISTERED]


async def test_validation_names_every_bad_field(unchecked: Any, unthrottled: Emulator) -> None:
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await unchecked.create_logging_configuration(
            name="not a name",
            destinationConfiguration={"s3": {"bucketName": "UPPER"}},
            tags={"aws:mine": "x"},
        )
    names = {f["name"] for f in caught.value.response["fieldList"]}
    assert names == {"name", "destinationConfiguration.s3.bucketName", "tags[aws:mine]"}
    bare_id = "AbCdEf123456"
    for call in (
        unchecked.get_logging_configuration(identifier=bare_id),
        unchecked.update_logging_configuration(identifier=bare_id, name="x"),
        unchecked.delete_logging_configuration(identifier=bare_id),
    ):
        with pytest.raises(unchecked.exceptions.ValidationException) as caught:
            await call
        [field] = caught.value.response["fieldList"]
        assert field["name"] == "identifier"
        assert "logging-configuration/<id>" in field["message"]
    assert list(unthrottled.state.logging_configurations) == [REGISTERED]


async def test_update_changes_the_members_given(unchecked: Any) -> None:
    made = await unchecked.create_logging_configuration(
        name="before", destinationConfiguration=LOGS
    )
    renamed = await unchecked.update_logging_configuration(identifier=made["arn"], name="after")
    assert renamed["name"] == "after"
    assert renamed["destinationConfiguration"] == LOGS
    assert renamed["state"] == "ACTIVE"
    assert renamed["createTime"] == made["createTime"]
    assert renamed["updateTime"] >= made["updateTime"]
    moved = await unchecked.update_logging_configuration(
        identifier=made["arn"], destinationConfiguration=BUCKET
    )
    assert moved["name"] == "after"
    assert moved["destinationConfiguration"] == BUCKET
    got = await unchecked.get_logging_configuration(identifier=made["arn"])
    assert (got["name"], got["destinationConfiguration"]) == ("after", BUCKET)


async def test_update_refuses_two_destination_kinds_and_changes_nothing(unchecked: Any) -> None:
    made = await unchecked.create_logging_configuration(destinationConfiguration=LOGS)
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await unchecked.update_logging_configuration(
            identifier=made["arn"], destinationConfiguration={**LOGS, **BUCKET}
        )
    assert [f["name"] for f in caught.value.response["fieldList"]] == ["destinationConfiguration"]
    got = await unchecked.get_logging_configuration(identifier=made["arn"])
    assert got["destinationConfiguration"] == LOGS


async def test_delete_answers_204_and_then_it_is_not_found(unchecked: Any) -> None:
    made = await unchecked.create_logging_configuration(destinationConfiguration=LOGS)
    deleted = await unchecked.delete_logging_configuration(identifier=made["arn"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    for call in (
        unchecked.get_logging_configuration(identifier=made["arn"]),
        unchecked.update_logging_configuration(identifier=made["arn"], name="x"),
        unchecked.delete_logging_configuration(identifier=made["arn"]),
    ):
        with pytest.raises(unchecked.exceptions.ResourceNotFoundException) as caught:
            await call
        assert caught.value.response["resourceId"] == made["id"]
        assert caught.value.response["resourceType"] == "LOGGING_CONFIGURATION"


async def test_the_registered_configurations_are_active(
    unchecked: Any, unthrottled: Emulator
) -> None:
    got = await unchecked.get_logging_configuration(identifier=REGISTERED)
    assert got["state"] == "ACTIVE"
    assert got["id"] == "LogCfg0"
    assert got["destinationConfiguration"] == {
        "cloudWatchLogs": {"logGroupName": "ivschat-emulator"}
    }
    other = ARN_PREFIX + "FromAdmin"
    admin = f"{unthrottled.url}/_emulator/logging-configurations"
    async with aiohttp.ClientSession() as http:
        resp = await http.put(admin, json={"arns": [REGISTERED, other]})
        assert await resp.json() == {"arns": sorted([REGISTERED, other])}
        bad = await http.put(admin, json={"arns": ["arn:aws:ivschat:us-east-1:1:room/abc"]})
        assert bad.status == 400
        assert "arn:aws:ivschat:us-east-1:1:room/abc" in (await bad.json())["message"]
    assert (await unchecked.get_logging_configuration(identifier=other))["state"] == "ACTIVE"
    made = await unchecked.create_logging_configuration(destinationConfiguration=LOGS)
    # A reset forgets what was made, and the configurations given at start exist again.
    unthrottled.state.reset()
    assert list(unthrottled.state.logging_configurations) == [REGISTERED]
    with pytest.raises(unchecked.exceptions.ResourceNotFoundException):
        await unchecked.get_logging_configuration(identifier=made["arn"])


# --- rooms and the configurations they name ------------------------------------


async def test_rooms_name_only_configurations_that_exist(unchecked: Any) -> None:
    made = await unchecked.create_logging_configuration(destinationConfiguration=LOGS)
    room = await unchecked.create_room(loggingConfigurationIdentifiers=[made["arn"], REGISTERED])
    assert room["loggingConfigurationIdentifiers"] == [made["arn"], REGISTERED]
    missing = ARN_PREFIX + "NoSuchConfig"
    for call in (
        unchecked.create_room(loggingConfigurationIdentifiers=[missing]),
        unchecked.update_room(identifier=room["arn"], loggingConfigurationIdentifiers=[missing]),
    ):
        with pytest.raises(unchecked.exceptions.ResourceNotFoundException) as caught:
            await call
        assert caught.value.response["resourceId"] == "NoSuchConfig"
        assert caught.value.response["resourceType"] == "LOGGING_CONFIGURATION"


async def test_a_configuration_a_room_uses_cannot_be_deleted_until_detached(
    unchecked: Any, unthrottled: Emulator
) -> None:
    made = await unchecked.create_logging_configuration(destinationConfiguration=LOGS)
    room = await unchecked.create_room(loggingConfigurationIdentifiers=[made["arn"]])
    with pytest.raises(unchecked.exceptions.ConflictException) as caught:
        await unchecked.delete_logging_configuration(identifier=made["arn"])
    assert caught.value.response["resourceId"] == made["id"]
    assert caught.value.response["resourceType"] == "LOGGING_CONFIGURATION"
    assert "UpdateRoom" in caught.value.response["Error"]["Message"]
    assert made["arn"] in unthrottled.state.logging_configurations
    await unchecked.update_room(identifier=room["arn"], loggingConfigurationIdentifiers=[])
    await unchecked.delete_logging_configuration(identifier=made["arn"])
    with pytest.raises(unchecked.exceptions.ResourceNotFoundException):
        await unchecked.create_room(loggingConfigurationIdentifiers=[made["arn"]])


async def test_a_deleted_room_no_longer_holds_its_configuration(unchecked: Any) -> None:
    made = await unchecked.create_logging_configuration(destinationConfiguration=LOGS)
    room = await unchecked.create_room(loggingConfigurationIdentifiers=[made["arn"]])
    await unchecked.delete_room(identifier=room["arn"])
    await unchecked.delete_logging_configuration(identifier=made["arn"])


# --- states ----------------------------------------------------------------------


async def test_a_change_is_creating_updating_or_deleting_until_its_delay_is_over() -> None:
    async with (
        Emulator(unthrottled_settings(logging_configuration_delay_s=0.2)) as emu,
        direct_client(emu.url, UNCHECKED) as client,
    ):

        async def active(arn: str) -> bool:
            got = await client.get_logging_configuration(identifier=arn)
            return bool(got["state"] == "ACTIVE")

        made = await client.create_logging_configuration(destinationConfiguration=LOGS)
        # The model's Create output allows ACTIVE alone; a delay is the endpoint's
        # own, and its answer says where the configuration is (docs/local-unthrottled.md).
        assert made["state"] == "CREATING"
        await until(lambda: active(made["arn"]))
        settled = await client.get_logging_configuration(identifier=made["arn"])
        assert settled["updateTime"] > made["updateTime"]
        updated = await client.update_logging_configuration(identifier=made["arn"], name="n")
        assert (updated["state"], updated["name"]) == ("UPDATING", "n")
        await until(lambda: active(made["arn"]))
        await client.delete_logging_configuration(identifier=made["arn"])
        assert made["arn"] in emu.state.logging_configurations

        async def gone() -> bool:
            try:
                await client.get_logging_configuration(identifier=made["arn"])
            except client.exceptions.ResourceNotFoundException:
                return True
            return False

        await until(gone)


async def test_a_configuration_mid_change_refuses_another_change() -> None:
    async with (
        Emulator(unthrottled_settings(logging_configuration_delay_s=FOREVER_S)) as emu,
        direct_client(emu.url, UNCHECKED) as client,
    ):
        made = await client.create_logging_configuration(destinationConfiguration=LOGS)
        got = await client.get_logging_configuration(identifier=made["arn"])
        assert got["state"] == "CREATING"
        listed = await client.list_logging_configurations()
        assert {c["arn"]: c["state"] for c in listed["loggingConfigurations"]} == {
            REGISTERED: "ACTIVE",
            made["arn"]: "CREATING",
        }
        for call in (
            client.update_logging_configuration(identifier=made["arn"], name="x"),
            client.delete_logging_configuration(identifier=made["arn"]),
        ):
            with pytest.raises(client.exceptions.ConflictException) as caught:
                await call
            assert caught.value.response["resourceId"] == made["id"]
            assert "CREATING" in caught.value.response["Error"]["Message"]
        # A room may name one still being made, as it is not being deleted.
        await client.create_room(loggingConfigurationIdentifiers=[made["arn"]])
        await client.delete_logging_configuration(identifier=REGISTERED)
        assert (await client.get_logging_configuration(identifier=REGISTERED))["state"] == (
            "DELETING"
        )
        # One being deleted can no longer be named by a room.
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            await client.create_room(loggingConfigurationIdentifiers=[REGISTERED])


# --- the account's quota, and each operation's --------------------------------------


async def test_the_account_holds_at_most_its_quota_of_configurations() -> None:
    async with (
        Emulator(unthrottled_settings(logging_configuration_quota=3)) as emu,
        direct_client(emu.url, UNCHECKED) as client,
    ):
        made = [
            await client.create_logging_configuration(destinationConfiguration=LOGS)
            for _ in range(2)
        ]
        with pytest.raises(client.exceptions.ServiceQuotaExceededException) as caught:
            await client.create_logging_configuration(destinationConfiguration=LOGS)
        response = caught.value.response
        assert response["limit"] == 3
        assert response["resourceType"] == "LOGGING_CONFIGURATION"
        assert response["resourceId"] == "123456789012"
        assert len(emu.state.logging_configurations) == 3
        await client.delete_logging_configuration(identifier=made[0]["arn"])
        assert (await client.create_logging_configuration(destinationConfiguration=LOGS))["id"]


async def test_the_default_quota_is_ten_configurations() -> None:
    assert EmulatorSettings().logging_configuration_quota == 10
    assert EmulatorSettings().logging_configuration_delay_s == 0


@pytest.mark.parametrize("operation", ["GetLoggingConfiguration", "ListLoggingConfigurations"])
async def test_each_operation_is_throttled_past_its_aws_quota(operation: str) -> None:
    # 30 at once against 3 a second: some are throttled by the quota itself.
    async with (
        Emulator(EmulatorSettings(create_room_rate=None)) as emu,
        direct_client(emu.url, UNCHECKED) as client,
    ):
        call = {
            "GetLoggingConfiguration": lambda: client.get_logging_configuration(
                identifier=ARN_PREFIX + "AbCdEf123456"
            ),
            "ListLoggingConfigurations": client.list_logging_configurations,
        }[operation]
        outcomes = await asyncio.gather(*(call() for _ in range(30)), return_exceptions=True)
    throttled = [e for e in outcomes if isinstance(e, client.exceptions.ThrottlingException)]
    assert throttled
    assert throttled[0].response["limit"] == 3
    assert throttled[0].response["resourceId"] == operation


# --- paging ------------------------------------------------------------------------


async def test_list_pages_oldest_first_with_strict_tokens(unchecked: Any) -> None:
    made = [REGISTERED] + [
        (await unchecked.create_logging_configuration(name=f"c{i}", destinationConfiguration=LOGS))[
            "arn"
        ]
        for i in range(4)
    ]
    seen: list[str] = []
    kwargs: dict[str, Any] = {"maxResults": 2}
    while True:
        page = await unchecked.list_logging_configurations(**kwargs)
        assert len(page["loggingConfigurations"]) <= 2
        seen += [c["arn"] for c in page["loggingConfigurations"]]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert seen == made
    whole = await unchecked.list_logging_configurations()
    assert [c["arn"] for c in whole["loggingConfigurations"]] == made
    assert "nextToken" not in whole
    summary = whole["loggingConfigurations"][1]
    assert summary["name"] == "c0"
    assert summary["destinationConfiguration"] == LOGS
    assert summary["state"] == "ACTIVE"
    assert isinstance(summary["createTime"], datetime)
    # A token ListRooms gave is not one of this list's.
    for i in range(3):
        await unchecked.create_room(name=f"r{i}")
    rooms_token = (await unchecked.list_rooms(maxResults=1))["nextToken"]
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await unchecked.list_logging_configurations(nextToken=rooms_token)
    assert [f["name"] for f in caught.value.response["fieldList"]] == ["nextToken"]


@pytest.mark.parametrize(("max_results", "ok"), [(0, False), (1, True), (50, True), (51, False)])
async def test_max_results_is_1_to_50(unchecked: Any, max_results: int, ok: bool) -> None:
    # botocore's own check would refuse 0 before sending; the endpoint must too.
    call = unchecked.list_logging_configurations(maxResults=max_results)
    if ok:
        assert len((await call)["loggingConfigurations"]) == 1
        return
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await call
    assert [f["name"] for f in caught.value.response["fieldList"]] == ["maxResults"]


@pytest.mark.parametrize(
    "token", ["bm90LWEtdG9rZW4=", "bG9nZ2luZy1jb25maWd1cmF0aW9uczo5OTk=", "%%"]
)
async def test_list_refuses_a_token_it_never_gave(unchecked: Any, token: str) -> None:
    # Not a token; one of this list's kind at a position it never gave (999); not base64.
    with pytest.raises(unchecked.exceptions.ValidationException) as caught:
        await unchecked.list_logging_configurations(nextToken=token)
    assert [f["name"] for f in caught.value.response["fieldList"]] == ["nextToken"]


# --- faults ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "fields"),
    [
        ("ConflictException", {"resourceType": "LOGGING_CONFIGURATION"}),
        ("AccessDeniedException", {}),
        ("PendingVerification", {}),
        ("ResourceNotFoundException", {"resourceType": "LOGGING_CONFIGURATION"}),
        ("ServiceQuotaExceededException", {"resourceType": "LOGGING_CONFIGURATION", "limit": 10}),
        ("ThrottlingException", {"resourceId": "CreateLoggingConfiguration", "limit": 3}),
        ("InternalServerException", {}),
    ],
)
async def test_every_modeled_error_can_be_injected(
    unchecked: Any, unthrottled: Emulator, error: str, fields: dict[str, Any]
) -> None:
    unthrottled.state.faults.add(
        FaultRule(operation="CreateLoggingConfiguration", error=error, times=1)
    )
    with pytest.raises(ClientError) as caught:
        await unchecked.create_logging_configuration(destinationConfiguration=LOGS)
    response: Any = caught.value.response
    assert response["Error"]["Code"] == error
    for key, value in fields.items():
        assert response[key] == value
    assert list(unthrottled.state.logging_configurations) == [REGISTERED]


@pytest.mark.parametrize("create", [False, True])
async def test_500_or_a_drop_before_or_after_creating(
    unchecked: Any, unthrottled: Emulator, create: bool
) -> None:
    rules = [
        FaultRule(operation="CreateLoggingConfiguration", error="InternalServerException"),
        FaultRule(operation="CreateLoggingConfiguration", drop=True),
    ]
    for rule in rules:
        rule.create, rule.times = create, 1
        unthrottled.state.faults.add(rule)
        with pytest.raises((unchecked.exceptions.InternalServerException, ConnectionClosedError)):
            await unchecked.create_logging_configuration(destinationConfiguration=LOGS)
    records = unthrottled.state.recorded("CreateLoggingConfiguration")
    assert [r.error for r in records] == ["InternalServerException", "ConnectionDropped"]
    made = [r.logging_configuration_id for r in records]
    assert len(unthrottled.state.logging_configurations) == 1 + (2 if create else 0)
    if create:
        assert {ARN_PREFIX + i for i in made if i} == set(
            unthrottled.state.logging_configurations
        ) - {REGISTERED}
    else:
        assert made == [None, None]


async def test_a_rule_with_a_name_matches_the_configuration_a_request_names(
    unchecked: Any, unthrottled: Emulator
) -> None:
    doomed = await unchecked.create_logging_configuration(
        name="doomed", destinationConfiguration=LOGS
    )
    fine = await unchecked.create_logging_configuration(name="fine", destinationConfiguration=LOGS)
    unthrottled.state.faults.add(
        FaultRule(operation="DeleteLoggingConfiguration", name="doomed", error="ConflictException")
    )
    await unchecked.delete_logging_configuration(identifier=fine["arn"])
    with pytest.raises(unchecked.exceptions.ConflictException):
        await unchecked.delete_logging_configuration(identifier=doomed["arn"])
    unthrottled.state.faults.clear()
    unthrottled.state.faults.add(
        FaultRule(operation="DeleteLoggingConfiguration", name="doomed", create=True, drop=True)
    )
    with pytest.raises(ConnectionClosedError):
        await unchecked.delete_logging_configuration(identifier=doomed["arn"])
    assert doomed["arn"] not in unthrottled.state.logging_configurations


async def test_the_record_keeps_what_create_made(unthrottled: Emulator, unchecked: Any) -> None:
    made = await unchecked.create_logging_configuration(destinationConfiguration=LOGS)
    async with aiohttp.ClientSession() as http:
        url = f"{unthrottled.url}/_emulator/requests?operation=CreateLoggingConfiguration"
        [record] = await (await http.get(url)).json()
    assert record["loggingConfigurationId"] == made["id"]
    assert record["roomId"] is None
    assert record["body"] == {"destinationConfiguration": LOGS}
    assert record["status"] == 200
