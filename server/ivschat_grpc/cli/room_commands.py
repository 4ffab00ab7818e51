"""ivschat-grpc get-room, list-rooms, update-room and delete-room: rooms by their ARN.

get-room and update-room print the room as JSON, as create-room does;
list-rooms prints {"rooms": [...], "next_page_token": "..."}: pass the token
as --page-token, with the same filters, for the next page, or --all to follow
every page. update-room changes only what its flags name (each flag is one
update_mask path); its --tag flags together are the room's whole tag map,
which --clear-tags empties (the reserved ivschat-grpc:request-id tag is kept
either way). delete-room prints nothing. On failure each prints the
status code, the message and every field violation to stderr, and exits with
a code per class of failure, numbered as create-room's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, TextIO

from google.protobuf import json_format
from google.protobuf.message import Message
from ivschat.v1 import room_service_pb2 as pb

from ivschat_grpc.cli import connection_flags, tls_hints
from ivschat_grpc.cli.create_room import FALLBACK, report, tags_from
from ivschat_grpc.cli.exit_codes import ROOM_COMMAND_BY_CODE, RoomCommand, run_client
from ivschat_grpc.client import RoomClient, RoomServiceError


def add_arguments(parser: argparse.ArgumentParser, *, delete: bool) -> None:
    """The room's ARN, delete-room's --allow-missing, then the connection."""
    parser.add_argument("arn", help="the room's ARN: arn:aws:ivschat:<region>:<account>:room/<id>")
    if delete:
        parser.add_argument(
            "--allow-missing", action="store_true", help="succeed if the room does not exist"
        )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    connection_flags.add_arguments(parser)


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    """list-rooms' filters and paging, then the connection."""
    parser.add_argument("--name", default="", help="only rooms with exactly this name")
    parser.add_argument(
        "--review-handler-uri",
        default="",
        metavar="LAMBDA_ARN",
        help="only rooms it reviews",
    )
    parser.add_argument(
        "--logging-configuration", default="", metavar="ARN", help="only rooms logging to it"
    )
    add_paging_arguments(parser, "rooms", ", with the same filters")


def add_paging_arguments(parser: argparse.ArgumentParser, noun: str, same: str = "") -> None:
    """A list command's paging (of noun, with the same what, if any), then the connection."""
    parser.add_argument("--page-size", type=int, default=0, help=f"1-50 {noun} a page (default 50)")
    parser.add_argument("--page-token", default="", help=f"a next_page_token printed before{same}")
    parser.add_argument(
        "--all", action="store_true", help=f"follow every page and print all the {noun} at once"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a page (default 30)")
    connection_flags.add_arguments(parser)


def add_update_arguments(parser: argparse.ArgumentParser) -> None:
    """update-room's fields, each flag one update_mask path, then the connection."""
    parser.add_argument("arn", help="the room's ARN: arn:aws:ivschat:<region>:<account>:room/<id>")
    parser.add_argument("--name")
    parser.add_argument("--max-message-length", type=int, help="1-500")
    parser.add_argument("--max-message-rate", type=int, help="1-100 a second")
    handler = parser.add_mutually_exclusive_group()
    handler.add_argument(
        "--review-handler-uri",
        metavar="LAMBDA_ARN",
        help="set the review handler; with no --fallback-result, AWS's default (allow) applies",
    )
    handler.add_argument(
        "--detach-review-handler", action="store_true", help="remove the review handler"
    )
    parser.add_argument(
        "--fallback-result", choices=sorted(FALLBACK), help="with --review-handler-uri"
    )
    logging = parser.add_mutually_exclusive_group()
    logging.add_argument(
        "--logging-configuration",
        action="append",
        metavar="ARN",
        help="the room's logging configurations, replacing its own (repeatable)",
    )
    logging.add_argument(
        "--no-logging-configurations",
        action="store_true",
        help="detach every logging configuration",
    )
    add_tag_replacement_arguments(parser, "room")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    connection_flags.add_arguments(parser)


def add_tag_replacement_arguments(parser: argparse.ArgumentParser, noun: str) -> None:
    """--tag and --clear-tags, for an update command: together they are the whole tag map."""
    tags = parser.add_mutually_exclusive_group()
    tags.add_argument(
        "--tag",
        action="append",
        metavar="KEY=VALUE",
        help=f"the {noun}'s tags, replacing its own (repeatable); ivschat-grpc:request-id is kept",
    )
    tags.add_argument(
        "--clear-tags",
        action="store_true",
        help="remove every tag but ivschat-grpc:request-id",
    )


def replaced_tags(
    args: argparse.Namespace, tags: MutableMapping[str, str], mask: list[str]
) -> None:
    """Put the tags --tag or --clear-tags give into tags, and mask them, if either was given."""
    if args.tag is not None:
        tags.update(tags_from(args.tag))
        mask.append("tags")
    if args.clear_tags:
        mask.append("tags")  # and no tags: the resource keeps none of its own


def update_from(args: argparse.Namespace) -> tuple[pb.Room, list[str]]:
    """The room and update_mask the flags describe: only the flags given are masked."""
    room, mask = pb.Room(arn=args.arn), []
    if args.name is not None:
        room.name = args.name
        mask.append("name")
    if args.max_message_length is not None:
        room.maximum_message_length = args.max_message_length
        mask.append("maximum_message_length")
    if args.max_message_rate is not None:
        room.maximum_message_rate_per_second = args.max_message_rate
        mask.append("maximum_message_rate_per_second")
    if args.fallback_result is not None and args.review_handler_uri is None:
        raise ValueError("--fallback-result needs --review-handler-uri: AWS sets both at once")
    if args.review_handler_uri is not None:
        room.message_review_handler.uri = args.review_handler_uri
        if args.fallback_result is not None:
            room.message_review_handler.fallback_result = FALLBACK[args.fallback_result]
        mask.append("message_review_handler")
    if args.detach_review_handler:
        mask.append("message_review_handler")  # unset: an empty uri, which detaches
    if args.logging_configuration is not None:
        room.logging_configuration_identifiers.extend(args.logging_configuration)
        mask.append("logging_configuration_identifiers")
    if args.no_logging_configurations:
        mask.append("logging_configuration_identifiers")
    replaced_tags(args, room.tags, mask)
    return room, mask


def _json(message: Message) -> dict[str, object]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


async def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the room command; print its result or the failure; return the exit code."""
    update = update_from(args) if args.command == "update-room" else None
    connection = connection_flags.connection_from(args, os.environ)
    async with RoomClient(connection) as rooms:
        try:
            if args.command == "delete-room":
                await rooms.delete_room(
                    args.arn, deadline_s=args.timeout, allow_missing=args.allow_missing
                )
                return RoomCommand.DONE
            if args.command == "list-rooms":
                printed = await _list(rooms, args)
            elif update is not None:
                printed = _json(await rooms.update_room(*update, deadline_s=args.timeout))
            else:
                printed = _json(await rooms.get_room(args.arn, deadline_s=args.timeout))
        except RoomServiceError as e:
            if await tls_hints.told(connection, e.code, e.message, err):
                return RoomCommand.TLS_MISMATCH
            return report(e, err, ROOM_COMMAND_BY_CODE, RoomCommand.FAILED)
    out.write(json.dumps(printed) + "\n")
    return RoomCommand.DONE


async def _list(rooms: RoomClient, args: argparse.Namespace) -> dict[str, object]:
    """One page (or, with --all, every page from --page-token on) as printed."""
    filters = {
        "name": args.name,
        "message_review_handler_uri": args.review_handler_uri,
        "logging_configuration_identifier": args.logging_configuration,
    }

    def page(token: str) -> Awaitable[pb.ListRoomsResponse]:
        return rooms.list_rooms(
            deadline_s=args.timeout, page_size=args.page_size, page_token=token, **filters
        )

    return await listed(page, lambda got: got.rooms, "rooms", args)


async def listed(
    page: Callable[[str], Awaitable[Any]],
    items: Callable[[Any], Iterable[Message]],
    key: str,
    args: argparse.Namespace,
) -> dict[str, object]:
    """What a list command prints: one page of items under key (or, with --all, every page
    from --page-token on), and the next page's token."""
    found: list[dict[str, object]] = []
    token = args.page_token
    while True:
        got = await page(token)
        found += [_json(item) for item in items(got)]
        token = got.next_page_token
        if not (args.all and token):
            return {key: found, "next_page_token": token}


def main(args: argparse.Namespace) -> int:
    """Entry point for the get-room, list-rooms, update-room and delete-room subcommands."""
    return run_client(run(args), RoomCommand.USAGE)
