"""ivschat-grpc create-chat-token, send-event, disconnect-user and delete-message.

Each prints its answer as JSON on stdout: create-chat-token the token and
its expiry times (the token is the command's purpose, and goes nowhere
else), send-event and delete-message the event's id, disconnect-user {}.
On failure each prints the status code, the message and every field
violation to stderr, and exits with a code per class of failure, numbered
as create-room's.

A user id is a secret, and a command line is visible to every user of the
machine (ps, /proc): pass it with --user-id-file FILE, or --user-id-file -
to read it from stdin. --user-id is there for tests and laptops. The same
holds for --attribute: pass --attributes-file FILE (a JSON object of
strings) where attribute values are secret.

send-event takes --request-id: the same UUID and flags send the event at
most once, and a repeat after success prints the first event's id.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TextIO

from google.protobuf import json_format
from ivschat.v1 import chat_service_pb2 as pb

from ivschat_grpc.cli import connection_flags, create_room, tls_hints
from ivschat_grpc.cli.exit_codes import CHAT_COMMAND_BY_CODE, ChatCommand, run_client
from ivschat_grpc.client import ChatClient, ChatServiceError

COMMANDS: Final = ("create-chat-token", "send-event", "disconnect-user", "delete-message")
_CAPABILITIES: Final = {
    "SEND_MESSAGE": pb.CHAT_TOKEN_CAPABILITY_SEND_MESSAGE,
    "DISCONNECT_USER": pb.CHAT_TOKEN_CAPABILITY_DISCONNECT_USER,
    "DELETE_MESSAGE": pb.CHAT_TOKEN_CAPABILITY_DELETE_MESSAGE,
}
_ARN_HELP: Final = "the room's ARN: arn:aws:ivschat:<region>:<account>:room/<id>"


def _user_flags(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--user-id-file",
        metavar="FILE",
        help="file holding the user id ('-': stdin); keeps it out of process listings",
    )
    who.add_argument("--user-id", help="the user id itself: visible in process listings")


def _attribute_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an attribute (repeatable): visible in process listings",
    )
    parser.add_argument(
        "--attributes-file", metavar="FILE", help="a JSON object of string attributes"
    )


def add_arguments(parser: argparse.ArgumentParser, *, command: str) -> None:
    """command's own arguments, then --timeout and the connection."""
    parser.add_argument("room_arn", help=_ARN_HELP)
    if command == "create-chat-token":
        _user_flags(parser)
        parser.add_argument(
            "--capability", action="append", default=[], choices=sorted(_CAPABILITIES)
        )
        parser.add_argument("--session-duration-minutes", type=int, help="1-180 (AWS default 60)")
        _attribute_flags(parser)
    elif command == "send-event":
        parser.add_argument("event_name", help="the event's name, 1-100 characters")
        _attribute_flags(parser)
        parser.add_argument(
            "--request-id",
            metavar="UUID",
            help="send at most once: the same UUID and flags return the first event's id",
        )
    elif command == "disconnect-user":
        _user_flags(parser)
        parser.add_argument("--reason", help="told to the user, 1-256 characters")
    else:
        parser.add_argument("message_id", help="the message's id, 12 letters and digits")
        parser.add_argument("--reason", help="told to the room's users, 1-256 characters")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    connection_flags.add_arguments(parser)


def _user_id(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.user_id is not None:
        return str(args.user_id)
    source = "stdin" if args.user_id_file == "-" else repr(args.user_id_file)
    try:
        if args.user_id_file == "-":
            user_id = stdin.readline().rstrip("\r\n")
        else:
            user_id = Path(args.user_id_file).read_text().rstrip("\r\n")
    except OSError as e:
        # The error's kind only: its text names the file, which is said already.
        raise ValueError(f"--user-id-file: cannot read {source} ({e.strerror or e})") from None
    if not user_id:
        # A user id AWS would refuse anyway; said here, where the fault is.
        raise ValueError(f"--user-id-file: {source} holds no user id on its first line")
    return user_id


def _attributes(args: argparse.Namespace) -> dict[str, str]:
    out: dict[str, str] = {}
    if args.attributes_file:
        try:
            loaded = json.loads(Path(args.attributes_file).read_text())
        except OSError as e:
            raise ValueError(
                f"--attributes-file: cannot read {args.attributes_file!r} ({e.strerror or e})"
            ) from None
        except ValueError:
            # Not the parser's message: it can quote the file, whose values may be secret.
            raise ValueError("--attributes-file must hold a JSON object of strings") from None
        if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
        ):
            raise ValueError("--attributes-file must hold a JSON object of strings")
        out.update(loaded)
    for pair in args.attribute:
        key, sep, value = pair.partition("=")
        if not sep:
            # The key only: the value may be secret.
            raise ValueError(f"--attribute {key!r}... is not KEY=VALUE")
        out[key] = value
    return out


_EVENT_MAY_HAVE_BEEN_SENT: Final = create_room.MayExist(
    "event_may_have_been_sent",
    "the event may have been sent: retry only with the same --request-id",
    ChatCommand.MAY_HAVE_RUN,
)


def _report(error: ChatServiceError, err: TextIO) -> int:
    """Print a failure for people; return its exit code."""
    return create_room.report(
        error, err, CHAT_COMMAND_BY_CODE, ChatCommand.FAILED, _EVENT_MAY_HAVE_BEEN_SENT
    )


async def _call(args: argparse.Namespace, chat: ChatClient, stdin: TextIO) -> Mapping[str, Any]:
    deadline = args.timeout
    if args.command == "create-chat-token":
        token = await chat.create_chat_token(
            args.room_arn,
            _user_id(args, stdin),
            deadline_s=deadline,
            capabilities=[_CAPABILITIES[c] for c in args.capability],
            session_duration_minutes=args.session_duration_minutes,
            attributes=_attributes(args),
        )
        return json_format.MessageToDict(token, preserving_proto_field_name=True)
    if args.command == "send-event":
        event_id = await chat.send_event(
            args.room_arn,
            args.event_name,
            deadline_s=deadline,
            attributes=_attributes(args),
            request_id=args.request_id,
        )
        return {"id": event_id}
    if args.command == "disconnect-user":
        await chat.disconnect_user(
            args.room_arn, _user_id(args, stdin), deadline_s=deadline, reason=args.reason
        )
        return {}
    deleted = await chat.delete_message(
        args.room_arn, args.message_id, deadline_s=deadline, reason=args.reason
    )
    return {"id": deleted}


async def run(
    args: argparse.Namespace,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    stdin: TextIO = sys.stdin,
) -> int:
    """Run the chat command; print its answer or the failure; return the exit code."""
    connection = connection_flags.connection_from(args, os.environ)
    async with ChatClient(connection) as chat:
        try:
            answer = await _call(args, chat, stdin)
        except ChatServiceError as e:
            if await tls_hints.told(connection, e.code, e.message, err):
                return ChatCommand.TLS_MISMATCH
            return _report(e, err)
    out.write(json.dumps(answer) + "\n")
    return ChatCommand.DONE


def main(args: argparse.Namespace) -> int:
    """Entry point for the chat subcommands."""
    return run_client(run(args), ChatCommand.USAGE)
