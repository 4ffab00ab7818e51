"""The logging configuration commands, end to end, as a person runs them."""

from __future__ import annotations

import json

from ivschat_grpc.core.creator import RESERVED_TAG
from ivschat_grpc.emulator import FaultRule

from tests.support.facade import LOGGING_ARNS, Facade
from tests.support.processes import run_command

MISSING = "arn:aws:ivschat:us-east-1:123456789012:logging-configuration/AbCdEfGhIjKl"


def at(facade: Facade) -> tuple[str, str]:
    return ("--server", f"127.0.0.1:{facade.service.port}")


async def test_create_prints_it_and_a_retry_with_the_printed_request_id_returns_it(
    facade: Facade,
) -> None:
    flags = ("--name", "audit", "--s3-bucket", "chat-logs", "--tag", "team=red")
    code, out, err = await run_command("create-logging-configuration", *flags, *at(facade))
    assert code == 0, err
    made = json.loads(out)
    assert made["s3"] == {"bucket_name": "chat-logs"}
    assert made["state"] == "LOGGING_CONFIGURATION_STATE_ACTIVE"
    request_id = err.split()[1]  # "request_id <uuid> (pass it as --request-id to retry)"
    assert made["tags"] == {"team": "red", RESERVED_TAG: request_id}
    code, again, err = await run_command(
        "create-logging-configuration", *flags, "--request-id", request_id, *at(facade)
    )
    assert code == 0, err
    assert json.loads(again) == made
    assert "request_id" not in err  # given, so not printed
    assert len(facade.emulator.state.recorded("CreateLoggingConfiguration")) == 1


async def test_create_needs_exactly_one_destination(facade: Facade) -> None:
    code, _, err = await run_command("create-logging-configuration", *at(facade))
    assert code == 2
    assert "one of the arguments --s3-bucket --log-group --delivery-stream is required" in err
    code, _, err = await run_command(
        "create-logging-configuration", "--s3-bucket", "a-b", "--log-group", "g", *at(facade)
    )
    assert code == 2
    assert "not allowed with argument" in err


async def test_a_bad_value_exits_3_naming_the_field(facade: Facade) -> None:
    code, _, err = await run_command(
        "create-logging-configuration", "--s3-bucket", "ab", "--no-request-id", *at(facade)
    )
    assert code == 3
    assert "  logging_configuration.s3.bucket_name: " in err
    assert facade.emulator.state.recorded("CreateLoggingConfiguration") == []


async def test_a_create_that_may_have_run_exits_7(facade: Facade) -> None:
    facade.emulator.state.faults.add(
        FaultRule(
            operation="CreateLoggingConfiguration",
            error="InternalServerException",
            create=True,
            times=1,
        )
    )
    code, _, err = await run_command(
        "create-logging-configuration", "--log-group", "g", "--no-request-id", *at(facade)
    )
    assert code == 7
    assert "the logging configuration may exist: retry only with the same --request-id" in err


async def test_get_update_and_delete_by_arn(facade: Facade) -> None:
    code, out, err = await run_command(
        "create-logging-configuration", "--delivery-stream", "s", *at(facade)
    )
    assert code == 0, err
    arn = json.loads(out)["arn"]
    code, out, err = await run_command(
        "update-logging-configuration",
        arn,
        "--name",
        "renamed",
        "--s3-bucket",
        "moved",
        *at(facade),
    )
    assert code == 0, err
    updated = json.loads(out)
    assert (updated["name"], updated["s3"]) == ("renamed", {"bucket_name": "moved"})
    assert "firehose" not in updated
    body = facade.emulator.state.recorded("UpdateLoggingConfiguration")[-1].body
    assert body == {
        "identifier": arn,
        "name": "renamed",
        "destinationConfiguration": {"s3": {"bucketName": "moved"}},
    }
    code, out, err = await run_command("get-logging-configuration", arn, *at(facade))
    assert code == 0, err
    assert json.loads(out) == updated
    code, out, err = await run_command("delete-logging-configuration", arn, *at(facade))
    assert (code, out) == (0, ""), err
    assert arn not in facade.emulator.state.logging_configurations


async def test_a_missing_configuration_exits_6_unless_allowed(facade: Facade) -> None:
    code, _, err = await run_command("get-logging-configuration", MISSING, *at(facade))
    assert code == 6
    assert "error: NOT_FOUND" in err
    code, _, err = await run_command("delete-logging-configuration", MISSING, *at(facade))
    assert code == 6
    code, _, err = await run_command(
        "delete-logging-configuration", MISSING, "--allow-missing", *at(facade)
    )
    assert code == 0, err
    code, _, err = await run_command(
        "update-logging-configuration", MISSING, "--name", "x", *at(facade)
    )
    assert code == 6


async def test_list_pages_by_token_and_all_follows_every_page(facade: Facade) -> None:
    seen: list[str] = []
    token = ""
    for _ in range(2):
        flags = ("--page-token", token) if token else ()
        code, out, err = await run_command(
            "list-logging-configurations", "--page-size", "1", *flags, *at(facade)
        )
        assert code == 0, err
        printed = json.loads(out)
        seen += [c["arn"] for c in printed["logging_configurations"]]
        token = printed["next_page_token"]
    assert seen == list(LOGGING_ARNS[:2])
    assert token
    code, out, err = await run_command(
        "list-logging-configurations", "--all", "--page-size", "1", *at(facade)
    )
    assert code == 0, err
    printed = json.loads(out)
    assert [c["arn"] for c in printed["logging_configurations"]] == list(LOGGING_ARNS)
    assert printed["next_page_token"] == ""
    code, _, err = await run_command(
        "list-logging-configurations", "--page-token", "forged", *at(facade)
    )
    assert code == 3
    assert "  page_token: " in err


async def test_update_tags_replace_the_whole_map_and_clear_keeps_the_reserved_tag(
    facade: Facade,
) -> None:
    code, out, err = await run_command(
        "create-logging-configuration", "--s3-bucket", "b-1", "--tag", "old=1", *at(facade)
    )
    assert code == 0, err
    arn = json.loads(out)["arn"]
    code, out, err = await run_command(
        "update-logging-configuration", arn, "--tag", "a=1", "--tag", "b=2", *at(facade)
    )
    assert code == 0, err
    tags = json.loads(out)["tags"]
    assert {k: v for k, v in tags.items() if k != RESERVED_TAG} == {"a": "1", "b": "2"}
    assert RESERVED_TAG in tags
    assert facade.emulator.state.recorded("UpdateLoggingConfiguration") == []
    code, out, err = await run_command(
        "update-logging-configuration", arn, "--clear-tags", *at(facade)
    )
    assert code == 0, err
    assert list(json.loads(out)["tags"]) == [RESERVED_TAG]
