"""Every command's exit codes, as data: the commands return them, the docs are generated.

A script that runs a command decides by these numbers, so each is part of the
command's contract; tools/generate.py writes the tables in docs/ from here.
"""

from __future__ import annotations

import asyncio
import enum
import sys
from collections.abc import Coroutine, Mapping
from typing import Any, Final, Self

import grpc


class ExitCode(enum.IntEnum):
    """ExitCode is a command's exit status, with what it means to the caller."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> Self:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member


# Every client command's 9: the same words, since it means one thing.
_TLS_MISMATCH: Final = (
    "the connection's TLS does not fit the server's: plaintext to a TLS server or the "
    "reverse, a server certificate that --tls-ca or --tls-server-name does not accept, "
    "or no client certificate for an mTLS server; one line on stderr says which flags "
    "to fix, and a retry cannot help"
)


class Serve(ExitCode):
    """Serve is how `ivschat-grpc serve` (and `emulator`) ends."""

    STOPPED = 0, "stopped: a signal drained it, and every accepted call was answered"
    BAD_SETTING = (
        2,
        "a bad setting, flag or environment variable, or no server extra installed; "
        "one line on stderr names it",
    )


class RoomCommand(ExitCode):
    """RoomCommand is how `ivschat-grpc create-room`, `get-room`, `list-rooms`, `update-room`
    and `delete-room` end."""

    DONE = (
        0,
        (
            "done: the room is printed (create-room, get-room, update-room), the rooms are "
            "(list-rooms), or the room is deleted (delete-room)"
        ),
    )
    USAGE = 2, "bad flags or files"
    INVALID = 3, "invalid input"
    DENIED = 4, "not allowed"
    RETRY_LATER = 5, "retry later"
    MISSING = 6, "a named resource is missing, or the account is not ready"
    MAY_EXIST = 7, "create-room's outcome is unknown: the room may exist (this takes precedence)"
    FAILED = 8, "any other failure"
    TLS_MISMATCH = 9, _TLS_MISMATCH


# The status codes behind each of the room commands' failure exits.
ROOM_COMMAND_BY_CODE: Final[Mapping[grpc.StatusCode, RoomCommand]] = {
    grpc.StatusCode.INVALID_ARGUMENT: RoomCommand.INVALID,
    grpc.StatusCode.OUT_OF_RANGE: RoomCommand.INVALID,
    grpc.StatusCode.UNAUTHENTICATED: RoomCommand.DENIED,
    grpc.StatusCode.PERMISSION_DENIED: RoomCommand.DENIED,
    grpc.StatusCode.UNAVAILABLE: RoomCommand.RETRY_LATER,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RoomCommand.RETRY_LATER,
    grpc.StatusCode.ABORTED: RoomCommand.RETRY_LATER,
    grpc.StatusCode.DEADLINE_EXCEEDED: RoomCommand.RETRY_LATER,
    grpc.StatusCode.NOT_FOUND: RoomCommand.MISSING,
    grpc.StatusCode.FAILED_PRECONDITION: RoomCommand.MISSING,
}


class ChatCommand(ExitCode):
    """ChatCommand is how the chat commands (create-chat-token, send-event, ...) end.

    Numbered as the room commands are, so a script can treat them alike.
    """

    DONE = 0, "done: the answer is printed as JSON"
    USAGE = 2, "bad flags or files"
    INVALID = 3, "invalid input"
    DENIED = 4, "not allowed"
    RETRY_LATER = 5, "retry later"
    MISSING = 6, "the room is missing, or the account is not ready"
    MAY_HAVE_RUN = (
        7,
        (
            "the outcome is unknown: send-event's event may have been sent, so retry only with "
            "the same --request-id (this takes precedence)"
        ),
    )
    FAILED = 8, "any other failure"
    TLS_MISMATCH = 9, _TLS_MISMATCH


# The status codes behind each of the chat commands' failure exits: the room commands'.
CHAT_COMMAND_BY_CODE: Final[Mapping[grpc.StatusCode, ChatCommand]] = {
    code: ChatCommand[exit.name] for code, exit in ROOM_COMMAND_BY_CODE.items()
}


class LoggingCommand(ExitCode):
    """LoggingCommand is how the logging configuration commands (create-logging-configuration,
    ...) end.

    Numbered as the room commands are, so a script can treat them alike.
    """

    DONE = (
        0,
        (
            "done: the configuration is printed (create-, get- and "
            "update-logging-configuration), the configurations are "
            "(list-logging-configurations), or it is deleted (delete-logging-configuration)"
        ),
    )
    USAGE = 2, "bad flags or files"
    INVALID = 3, "invalid input"
    DENIED = 4, "not allowed"
    RETRY_LATER = 5, "retry later"
    MISSING = 6, "the logging configuration is missing, or the account is not ready"
    MAY_EXIST = (
        7,
        (
            "the outcome is unknown: create-logging-configuration's configuration may exist, "
            "so retry only with the same --request-id (this takes precedence)"
        ),
    )
    FAILED = 8, "any other failure"
    TLS_MISMATCH = 9, _TLS_MISMATCH


# The status codes behind each of the logging configuration commands' failure
# exits: the room commands'.
LOGGING_COMMAND_BY_CODE: Final[Mapping[grpc.StatusCode, LoggingCommand]] = {
    code: LoggingCommand[exit.name] for code, exit in ROOM_COMMAND_BY_CODE.items()
}
LOGGING_COMMANDS: Final = (
    "create-logging-configuration",
    "get-logging-configuration",
    "list-logging-configurations",
    "update-logging-configuration",
    "delete-logging-configuration",
)


class BatchCreate(ExitCode):
    """BatchCreate is how `ivschat-grpc batch-create` ends."""

    OK = 0, "every item was created (or was already, in an earlier run)"
    ITEMS_FAILED = (
        1,
        (
            "some items failed: the service refused them, or a line that is not a request (a bad "
            "value, an unknown field or column, extra values) was answered INVALID_ARGUMENT "
            "without being sent; the output has each one's error under its correlation id, and "
            "the other lines went on"
        ),
    )
    USAGE = (
        2,
        (
            "nothing was sent: bad flags, an input file that cannot be read, a CSV header "
            "that is missing or names an unknown column, or an output file that cannot be "
            "used (another batch-create writes to it, or it lost its request_id namespace)"
        ),
    )
    STREAM_FAILED = 3, "the stream itself failed; rerun with the same --output to resume"
    # Numbered as the room and chat commands' own, so that 9 means one thing.
    TLS_MISMATCH = 9, _TLS_MISMATCH


class Healthcheck(ExitCode):
    """Healthcheck is how `python -m ivschat_grpc.healthcheck` ends; stdout names the outcome.

    A probe that treats every non-zero exit as a failure still works; a person
    or a script can tell a stopped server from a misspelt service.
    """

    SERVING = 0, "SERVING: the server reports the service SERVING"
    NOT_SERVING = (
        1,
        (
            "NOT_SERVING: the server reports the service NOT_SERVING (starting, draining, or "
            "Redis unreachable for ivschat-grpc.redis); or it answers the check with another "
            "error, whose code is printed instead"
        ),
    )
    USAGE = 2, "bad arguments"
    UNKNOWN_SERVICE = (
        3,
        (
            "UNKNOWN_SERVICE: the server answers, but knows no such service (a misspelt name, "
            "or ivschat-grpc.redis on a server without --redis-url)"
        ),
    )
    UNREACHABLE = (
        4,
        (
            "UNREACHABLE: nothing answered at ADDRESS within --timeout: nothing listens there, "
            "the name does not resolve, or the port speaks TLS (probe the plaintext --health-port)"
        ),
    )


# The status codes of a failed check behind the healthcheck's exits.
HEALTHCHECK_BY_CODE: Final[Mapping[grpc.StatusCode, Healthcheck]] = {
    grpc.StatusCode.NOT_FOUND: Healthcheck.UNKNOWN_SERVICE,
    grpc.StatusCode.UNAVAILABLE: Healthcheck.UNREACHABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: Healthcheck.UNREACHABLE,
}


COMMANDS: Final[Mapping[str, type[ExitCode]]] = {
    "serve": Serve,
    "create-room": RoomCommand,
    "get-room": RoomCommand,
    "list-rooms": RoomCommand,
    "update-room": RoomCommand,
    "delete-room": RoomCommand,
    "create-chat-token": ChatCommand,
    "send-event": ChatCommand,
    "disconnect-user": ChatCommand,
    "delete-message": ChatCommand,
    **dict.fromkeys(LOGGING_COMMANDS, LoggingCommand),
    "batch-create": BatchCreate,
    "healthcheck": Healthcheck,
}


_BY_CODE: Final[Mapping[str, Mapping[grpc.StatusCode, ExitCode]]] = {
    "create-room": ROOM_COMMAND_BY_CODE,
    "get-room": ROOM_COMMAND_BY_CODE,
    "list-rooms": ROOM_COMMAND_BY_CODE,
    "update-room": ROOM_COMMAND_BY_CODE,
    "delete-room": ROOM_COMMAND_BY_CODE,
    **dict.fromkeys(
        ("create-chat-token", "send-event", "disconnect-user", "delete-message"),
        CHAT_COMMAND_BY_CODE,
    ),
    **dict.fromkeys(LOGGING_COMMANDS, LOGGING_COMMAND_BY_CODE),
    "healthcheck": HEALTHCHECK_BY_CODE,
}


def run_client(command: Coroutine[Any, Any, int], usage: ExitCode) -> int:
    """Run a client command to its exit code; a flag or file it cannot use exits usage."""
    try:
        return asyncio.run(command)
    except (ValueError, OSError) as e:
        print(f"ivschat-grpc: {e}", file=sys.stderr)
        return usage


def markdown(command: str) -> str:
    """command's exit codes as a Markdown table, for docs/."""
    rows = ["| exit code | meaning |", "|---|---|"]
    for member in COMMANDS[command]:
        by_code = _BY_CODE.get(command, {})
        codes = [c.name for c, e in by_code.items() if e is member]
        also = f" ({', '.join(codes)})" if codes else ""
        rows.append(f"| {member.value} | {member.meaning}{also} |")
    return "\n".join(rows) + "\n"
