"""ivschat-grpc create-, get-, list-, update- and delete-logging-configuration.

create-, get- and update-logging-configuration print the configuration as
JSON; list-logging-configurations prints {"logging_configurations": [...],
"next_page_token": "..."}: pass the token as --page-token for the next page,
or --all to follow every page. delete-logging-configuration prints nothing.
A configuration's destination is one of --s3-bucket, --log-group and
--delivery-stream. update-logging-configuration changes only what its flags
name (each flag is one update_mask path); its --tag flags together are the
configuration's whole tag map, which --clear-tags empties, as update-room's.
On failure each prints the status code, the message and every field
violation to stderr, and exits with a code per class of failure, numbered as
create-room's.

Every configuration is created with a request_id, as create-room's rooms are:
--request-id, or a new one that is printed to stderr first. Running the
command again with that --request-id and the same flags returns the same
configuration, never a second one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable
from typing import Final, TextIO

from google.protobuf import json_format
from google.protobuf.message import Message
from ivschat.v1 import logging_configuration_service_pb2 as pb

from ivschat_grpc.cli import connection_flags, create_room, room_commands, tls_hints
from ivschat_grpc.cli.exit_codes import LOGGING_COMMAND_BY_CODE, LoggingCommand, run_client
from ivschat_grpc.client import LoggingConfigurationClient, LoggingConfigurationServiceError

_ARN_HELP: Final = (
    "the configuration's ARN: arn:aws:ivschat:<region>:<account>:logging-configuration/<id>"
)
# Each destination flag: the oneof field (an update_mask path) and its one string.
_DESTINATIONS: Final = {
    "s3_bucket": ("s3", "bucket_name"),
    "log_group": ("cloud_watch_logs", "log_group_name"),
    "delivery_stream": ("firehose", "delivery_stream_name"),
}
_MAY_EXIST: Final = create_room.MayExist(
    "logging_configuration_may_exist",
    "the logging configuration may exist: retry only with the same --request-id",
    LoggingCommand.MAY_EXIST,
)


def _destination_flags(parser: argparse.ArgumentParser, *, required: bool) -> None:
    where = parser.add_mutually_exclusive_group(required=required)
    where.add_argument("--s3-bucket", metavar="BUCKET", help="log to this S3 bucket")
    where.add_argument("--log-group", metavar="NAME", help="log to this CloudWatch Logs log group")
    where.add_argument(
        "--delivery-stream", metavar="NAME", help="log to this Kinesis Data Firehose stream"
    )


def add_arguments(parser: argparse.ArgumentParser, *, command: str) -> None:
    """command's own arguments, then --timeout and the connection."""
    if command == "create-logging-configuration":
        parser.add_argument("--name", help="0-128 letters, digits, '-' and '_'")
        _destination_flags(parser, required=True)
        parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
        create_room.add_request_id_arguments(parser, "configuration")
    elif command == "list-logging-configurations":
        room_commands.add_paging_arguments(parser, "configurations")
        return
    else:
        parser.add_argument("arn", help=_ARN_HELP)
        if command == "update-logging-configuration":
            parser.add_argument("--name", help="0-128 letters, digits, '-' and '_'")
            _destination_flags(parser, required=False)
            room_commands.add_tag_replacement_arguments(parser, "configuration")
        elif command == "delete-logging-configuration":
            parser.add_argument(
                "--allow-missing",
                action="store_true",
                help="succeed if the configuration does not exist",
            )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    connection_flags.add_arguments(parser)


def config_from(args: argparse.Namespace) -> tuple[pb.LoggingConfiguration, list[str]]:
    """The configuration the flags describe, and the update_mask paths they name."""
    config, mask = pb.LoggingConfiguration(arn=getattr(args, "arn", "")), []
    if args.name is not None:
        config.name = args.name
        mask.append("name")
    for flag, (which, field) in _DESTINATIONS.items():
        value = getattr(args, flag)
        if value is not None:
            setattr(getattr(config, which), field, value)
            mask.append(which)
    return config, mask


def _json(message: Message) -> dict[str, object]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


async def _call(
    args: argparse.Namespace, logs: LoggingConfigurationClient, err: TextIO
) -> dict[str, object] | None:
    deadline = args.timeout
    if args.command == "create-logging-configuration":
        config, _ = config_from(args)
        config.tags.update(create_room.tags_from(args.tag))
        request = pb.CreateLoggingConfigurationRequest(logging_configuration=config)
        request_id = create_room.request_id_from(args)
        if request_id is not None:
            request.request_id = request_id
        create_room.say_request_id(request_id, args, err)
        return _json(await logs.create_logging_configuration(request, deadline_s=deadline))
    if args.command == "get-logging-configuration":
        return _json(await logs.get_logging_configuration(args.arn, deadline_s=deadline))
    if args.command == "list-logging-configurations":
        return await _list(logs, args)
    if args.command == "update-logging-configuration":
        config, mask = config_from(args)
        room_commands.replaced_tags(args, config.tags, mask)
        return _json(await logs.update_logging_configuration(config, mask, deadline_s=deadline))
    await logs.delete_logging_configuration(
        args.arn, deadline_s=deadline, allow_missing=args.allow_missing
    )
    return None


async def _list(logs: LoggingConfigurationClient, args: argparse.Namespace) -> dict[str, object]:
    """One page (or, with --all, every page from --page-token on) as printed."""

    def page(token: str) -> Awaitable[pb.ListLoggingConfigurationsResponse]:
        return logs.list_logging_configurations(
            deadline_s=args.timeout, page_size=args.page_size, page_token=token
        )

    return await room_commands.listed(
        page, lambda got: got.logging_configurations, "logging_configurations", args
    )


async def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the logging configuration command; print its answer or the failure; return its exit."""
    connection = connection_flags.connection_from(args, os.environ)
    async with LoggingConfigurationClient(connection) as logs:
        try:
            printed = await _call(args, logs, err)
        except LoggingConfigurationServiceError as e:
            if await tls_hints.told(connection, e.code, e.message, err):
                return LoggingCommand.TLS_MISMATCH
            return create_room.report(
                e, err, LOGGING_COMMAND_BY_CODE, LoggingCommand.FAILED, _MAY_EXIST
            )
    if printed is not None:
        out.write(json.dumps(printed) + "\n")
    return LoggingCommand.DONE


def main(args: argparse.Namespace) -> int:
    """Entry point for the logging configuration subcommands."""
    return run_client(run(args), LoggingCommand.USAGE)
