"""Every command's exit codes, as data: the commands return them, the docs are generated.

A script that runs a command decides by these numbers, so each is part of the
command's contract; tools/generate.py writes the tables in docs/ from here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final, Self

import grpc


class ExitCode(enum.IntEnum):
    """ExitCode is a command's exit status, with what it means to the caller."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> Self:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member


class Serve(ExitCode):
    """Serve is how `ivschat-grpc serve` (and `emulator`) ends."""

    STOPPED = 0, "stopped: a signal drained it, and every accepted call was answered"
    BAD_SETTING = 2, "a bad setting, flag or environment variable; one line on stderr names it"


class CreateRoom(ExitCode):
    """CreateRoom is how `ivschat-grpc create-room` ends."""

    CREATED = 0, "created"
    USAGE = 2, "bad flags or files"
    INVALID = 3, "invalid input"
    DENIED = 4, "not allowed"
    RETRY_LATER = 5, "retry later"
    MISSING = 6, "a named resource is missing, or the account is not ready"
    MAY_EXIST = 7, "the outcome is unknown: the room may exist (this takes precedence)"
    FAILED = 8, "any other failure"


# The status codes behind each of create-room's failure exits.
CREATE_ROOM_BY_CODE: Final[Mapping[grpc.StatusCode, CreateRoom]] = {
    grpc.StatusCode.INVALID_ARGUMENT: CreateRoom.INVALID,
    grpc.StatusCode.OUT_OF_RANGE: CreateRoom.INVALID,
    grpc.StatusCode.UNAUTHENTICATED: CreateRoom.DENIED,
    grpc.StatusCode.PERMISSION_DENIED: CreateRoom.DENIED,
    grpc.StatusCode.UNAVAILABLE: CreateRoom.RETRY_LATER,
    grpc.StatusCode.RESOURCE_EXHAUSTED: CreateRoom.RETRY_LATER,
    grpc.StatusCode.ABORTED: CreateRoom.RETRY_LATER,
    grpc.StatusCode.DEADLINE_EXCEEDED: CreateRoom.RETRY_LATER,
    grpc.StatusCode.NOT_FOUND: CreateRoom.MISSING,
    grpc.StatusCode.FAILED_PRECONDITION: CreateRoom.MISSING,
}


class BatchCreate(ExitCode):
    """BatchCreate is how `ivschat-grpc batch-create` ends."""

    OK = 0, "every item was created (or was already, in an earlier run)"
    ITEMS_FAILED = 1, "some items failed; the output has each one's error"
    USAGE = 2, "bad flags, or an input or output file that cannot be used as it is"
    STREAM_FAILED = 3, "the stream itself failed; rerun with the same --output to resume"


class Healthcheck(ExitCode):
    """Healthcheck is how `python -m ivschat_grpc.healthcheck` ends."""

    SERVING = 0, "the server reports SERVING"
    NOT_SERVING = 1, "anything else"


COMMANDS: Final[Mapping[str, type[ExitCode]]] = {
    "serve": Serve,
    "create-room": CreateRoom,
    "batch-create": BatchCreate,
    "healthcheck": Healthcheck,
}


def markdown(command: str) -> str:
    """command's exit codes as a Markdown table, for docs/."""
    rows = ["| exit code | meaning |", "|---|---|"]
    for member in COMMANDS[command]:
        codes = [c.name for c, e in CREATE_ROOM_BY_CODE.items() if e is member]
        also = f" ({', '.join(codes)})" if codes and command == "create-room" else ""
        rows.append(f"| {member.value} | {member.meaning}{also} |")
    return "\n".join(rows) + "\n"
