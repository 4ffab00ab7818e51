"""ivschat-grpc get-room and delete-room: read or delete one room by its ARN.

get-room prints the room as JSON, as create-room does; delete-room prints
nothing. On failure both print the status code, the message and every field
violation to stderr, and exit with a code per class of failure, numbered as
create-room's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

from google.protobuf import json_format

from ivschat_grpc.cli import connection_flags
from ivschat_grpc.cli.create_room import report
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


async def run(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Get or delete the room; print the room or the failure; return the exit code."""
    async with RoomClient(connection_flags.connection_from(args, os.environ)) as rooms:
        try:
            if args.command == "delete-room":
                await rooms.delete_room(
                    args.arn, deadline_s=args.timeout, allow_missing=args.allow_missing
                )
                return RoomCommand.DONE
            room = await rooms.get_room(args.arn, deadline_s=args.timeout)
        except RoomServiceError as e:
            return report(e, err, ROOM_COMMAND_BY_CODE, RoomCommand.FAILED)
    out.write(json.dumps(json_format.MessageToDict(room, preserving_proto_field_name=True)) + "\n")
    return RoomCommand.DONE


def main(args: argparse.Namespace) -> int:
    """Entry point for the get-room and delete-room subcommands."""
    return run_client(run(args), RoomCommand.USAGE)
