"""ivschat-grpc create-room: create one room from the command line and print it as JSON.

On failure it prints the status code, the message and every field violation
to stderr, and exits with a code that says what kind of failure it was.

Every room is created with a request_id: --request-id, or a new one that is
printed to stderr first. Running the command again with that --request-id and
the same flags returns the same room, never a second one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TextIO

import grpc
from google.protobuf import json_format
from ivschat.v1 import room_service_pb2 as pb

from ivschat_grpc.cli import connection_flags, tls_hints
from ivschat_grpc.cli.exit_codes import ROOM_COMMAND_BY_CODE, ExitCode, RoomCommand, run_client
from ivschat_grpc.client import RoomClient, RoomServiceError

# The --fallback-result choices.
FALLBACK: Final = {"allow": pb.FALLBACK_RESULT_ALLOW, "deny": pb.FALLBACK_RESULT_DENY}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """create-room's flags: one per CreateRoomRequest field, then the connection."""
    parser.add_argument("--name")
    parser.add_argument("--max-message-length", type=int, help="1-500 (AWS default 500)")
    parser.add_argument("--max-message-rate", type=int, help="1-100 a second (AWS default 10)")
    parser.add_argument("--review-handler-uri", metavar="LAMBDA_ARN")
    parser.add_argument("--fallback-result", choices=sorted(FALLBACK))
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--logging-configuration", action="append", default=[], metavar="ARN")
    add_request_id_arguments(parser, "room")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    connection_flags.add_arguments(parser)


def request_from(args: argparse.Namespace) -> pb.CreateRoomRequest:
    """The CreateRoomRequest the flags describe; unset flags stay unset."""
    request = pb.CreateRoomRequest()
    if args.name is not None:
        request.name = args.name
    if args.max_message_length is not None:
        request.maximum_message_length = args.max_message_length
    if args.max_message_rate is not None:
        request.maximum_message_rate_per_second = args.max_message_rate
    if args.review_handler_uri is not None or args.fallback_result is not None:
        request.message_review_handler.uri = args.review_handler_uri or ""
        if args.fallback_result:
            request.message_review_handler.fallback_result = FALLBACK[args.fallback_result]
    request.tags.update(tags_from(args.tag))
    request.logging_configuration_identifiers.extend(args.logging_configuration)
    request_id = request_id_from(args)
    if request_id is not None:
        request.request_id = request_id
    return request


def tags_from(pairs: list[str]) -> dict[str, str]:
    """The tags that --tag KEY=VALUE flags give, the later of two with one key winning."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--tag {pair!r} is not KEY=VALUE")
        tags[key] = value
    return tags


def add_request_id_arguments(parser: argparse.ArgumentParser, noun: str) -> None:
    """--request-id and --no-request-id, for a command that creates one noun."""
    once = parser.add_mutually_exclusive_group()
    once.add_argument(
        "--request-id",
        metavar="UUID",
        help=f"retry an earlier call exactly once: the same UUID and flags return the same {noun} "
        "(default: a new one, printed to stderr)",
    )
    once.add_argument(
        "--no-request-id",
        dest="with_request_id",
        action="store_false",
        help=f"send no request_id, which leaves room for a 50th tag; a retry may then create a "
        f"second {noun}",
    )


def request_id_from(args: argparse.Namespace) -> str | None:
    """The request_id to send: --request-id, a new UUID, or none with --no-request-id."""
    if args.request_id is not None:
        return str(args.request_id)
    return str(uuid.uuid4()) if args.with_request_id else None


def say_request_id(request_id: str | None, args: argparse.Namespace, err: TextIO) -> None:
    """Print a request_id made up here, so that a person can retry with it."""
    if request_id is not None and args.request_id is None:
        err.write(f"request_id {request_id} (pass it as --request-id to retry)\n")
        err.flush()


@dataclass(frozen=True, slots=True)
class MayExist:
    """MayExist is what a command says, and how it exits, when its work may have been done."""

    key: str  # the ErrorInfo metadata key, "true" when it may have been
    says: str
    exit: ExitCode


ROOM_MAY_EXIST: Final = MayExist(
    "room_may_exist", "the room may exist: check before creating it again", RoomCommand.MAY_EXIST
)


def report(
    error: RoomServiceError,
    err: TextIO,
    by_code: Mapping[grpc.StatusCode, ExitCode] = ROOM_COMMAND_BY_CODE,
    otherwise: ExitCode = RoomCommand.FAILED,
    may_exist: MayExist = ROOM_MAY_EXIST,
) -> int:
    """Print a failure for people; return its exit code (by_code's, or otherwise).

    An error whose ErrorInfo says may_exist's key exits may_exist's code, first.
    """
    err.write(f"error: {error.code.name}: {error.message}\n")
    if error.reason:
        err.write(f"reason: {error.reason}\n")
    for path, description in error.field_violations.items():
        err.write(f"  {path}: {description}\n")
    if error.metadata.get(may_exist.key) == "true":
        err.write(may_exist.says + "\n")
        return may_exist.exit
    if error.retry_after_s is not None:
        err.write(f"retry after {error.retry_after_s:g} s\n")
    hint_token(error, err)
    return by_code.get(error.code, otherwise)


def hint_token(error: RoomServiceError, err: TextIO) -> None:
    """Say how to pass a token, after an UNAUTHENTICATED: the server's words speak of headers."""
    if error.code is grpc.StatusCode.UNAUTHENTICATED:
        err.write(
            f"pass the caller token with --token-file FILE, or in {connection_flags.TOKEN_ENV}\n"
        )


async def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Create the room; print it or the failure; return the exit code."""
    request = request_from(args)
    say_request_id(request.request_id if request.HasField("request_id") else None, args, err)
    connection = connection_flags.connection_from(args, os.environ)
    async with RoomClient(connection) as rooms:
        try:
            room = await rooms.create_room(request, deadline_s=args.timeout)
        except RoomServiceError as e:
            if await tls_hints.told(connection, e.code, e.message, err):
                return RoomCommand.TLS_MISMATCH
            return report(e, err)
    out.write(json.dumps(json_format.MessageToDict(room, preserving_proto_field_name=True)) + "\n")
    return RoomCommand.DONE


def main(args: argparse.Namespace) -> int:
    """Entry point for the create-room subcommand."""
    return run_client(run(args), RoomCommand.USAGE)
