"""ivschat-grpc batch-create: stream a file of CreateRoom requests to a server.

Input is JSON Lines (one CreateRoomRequest per line, in proto JSON, with an
optional "correlation_id"; or a whole BatchCreateRoomsRequest with a "room")
or CSV (see CSV_COLUMNS). A line without a correlation id gets "line-N".
Output is one JSON line per result, appended to --output, so a rerun with the
same --output skips every correlation id already created.

Each line is sent with a request_id (unless it sets its own, or
--no-request-ids is given): a UUIDv5 of its correlation id under a namespace
that the output file keeps on its first line. A rerun after any crash (of this
command, of the service, or both) sends every unrecorded line with the same
request_id as before, so the service returns a room it already made rather
than making a second. Without --output nothing keeps the namespace, and every
run is a new batch.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import grpc
from google.protobuf import json_format
from ivschat.v1 import room_service_pb2 as pb

from ivschat_grpc.aws.convert import FROM_AWS_FALLBACK
from ivschat_grpc.cli import connection_flags, tls_hints
from ivschat_grpc.cli.exit_codes import BatchCreate
from ivschat_grpc.client import Connection, RoomClient, RoomServiceError
from ivschat_grpc.errors import code_name

CSV_COLUMNS: Final = (
    "correlation_id",
    "name",
    "maximum_message_length",
    "maximum_message_rate_per_second",
    "message_review_handler_uri",
    "fallback_result",
    "tags",  # k=v;k2=v2
    "logging_configuration_identifiers",  # arn;arn
)
# The output file's first line names the namespace of the run's request_ids.
NAMESPACE_KEY: Final = "request_id_namespace"


class InputError(Exception):
    """InputError is a line that is not a request; it is answered locally."""

    def __init__(self, message: str, number: int = 0) -> None:
        super().__init__(message)
        self.correlation_id = f"line-{number}" if number else ""


def _tags(text: str, number: int) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in filter(None, text.split(";")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"line {number}: tag {pair!r} is not k=v", number)
        tags[key] = value
    return tags


def _from_json_line(text: str, number: int) -> pb.BatchCreateRoomsRequest:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InputError(f"line {number}: not JSON: {e}", number) from e
    if not isinstance(data, dict):
        raise InputError(f"line {number}: not a JSON object", number)
    try:
        if "room" in data:
            return json_format.ParseDict(data, pb.BatchCreateRoomsRequest())
        cid = data.pop("correlation_id", data.pop("correlationId", None))
        if cid is None:
            cid = ""
        elif not isinstance(cid, str):
            raise InputError(f"line {number}: correlation_id must be a string", number)
        room = json_format.ParseDict(data, pb.CreateRoomRequest())
    except json_format.ParseError as e:
        raise InputError(f"line {number}: {e}", number) from e
    return pb.BatchCreateRoomsRequest(correlation_id=str(cid), room=room)


def _from_csv_row(row: dict[str, str], number: int) -> pb.BatchCreateRoomsRequest:
    room = pb.CreateRoomRequest()
    try:
        if row.get("name"):
            room.name = row["name"]
        for column in ("maximum_message_length", "maximum_message_rate_per_second"):
            if row.get(column):
                setattr(room, column, int(row[column]))
        if row.get("message_review_handler_uri") or row.get("fallback_result"):
            room.message_review_handler.uri = row.get("message_review_handler_uri", "")
            fallback = row.get("fallback_result", "").upper()
            if fallback:
                room.message_review_handler.fallback_result = FROM_AWS_FALLBACK[fallback]
        room.tags.update(_tags(row.get("tags") or "", number))
        ids = row.get("logging_configuration_identifiers") or ""
        room.logging_configuration_identifiers.extend(filter(None, ids.split(";")))
    except (ValueError, KeyError) as e:
        raise InputError(f"line {number}: {e}", number) from e
    return pb.BatchCreateRoomsRequest(correlation_id=row.get("correlation_id") or "", room=room)


def read_requests(path: Path) -> Iterator[pb.BatchCreateRoomsRequest | InputError]:
    """Each line's request (or why it is not one), with default correlation ids."""
    with path.open(newline="") as f:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(f)
            unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS)
            if unknown:
                raise InputError(f"unknown CSV columns: {', '.join(sorted(unknown))}")
            rows: Iterator[tuple[int, Any]] = ((n + 2, row) for n, row in enumerate(reader))
            parse: Any = _from_csv_row
        else:
            rows = ((n + 1, line) for n, line in enumerate(f) if line.strip())
            parse = _from_json_line
        for number, row in rows:
            try:
                request = parse(row, number)
            except InputError as e:
                yield e
                continue
            if not request.correlation_id:
                request.correlation_id = f"line-{number}"
            yield request


@dataclass
class Recorded:
    """Recorded is what an earlier run left in the output file."""

    created: set[str] = field(default_factory=set)
    namespace: uuid.UUID | None = None
    results: int = 0  # result lines, created or not


def recorded(output: Path) -> Recorded:
    """The correlation ids an earlier run recorded as created, and its request_id namespace."""
    found = Recorded()
    if not output.exists():
        return found
    with output.open() as f:
        for line in f:
            try:
                result = json.loads(line)
            except ValueError:
                continue  # a line cut short by an interrupted run
            if not isinstance(result, dict):
                continue
            if "correlation_id" in result:
                found.results += 1
            if "room" in result:
                found.created.add(str(result.get("correlation_id", "")))
            elif found.namespace is None and NAMESPACE_KEY in result:
                try:
                    found.namespace = uuid.UUID(str(result[NAMESPACE_KEY]))
                except ValueError:
                    continue
    return found


def request_id_for(namespace: uuid.UUID, correlation_id: str) -> str:
    """The request_id a line with correlation_id gets in the run with namespace."""
    return str(uuid.uuid5(namespace, correlation_id))


def _open_output(output: Path, namespace: uuid.UUID | None) -> TextIO:
    """output for appending: after a line cut short by a crash, and its namespace first."""
    sink = output.open("a+")
    if sink.tell() > 0:
        sink.seek(sink.tell() - 1)
        if sink.read(1) != "\n":
            sink.write("\n")  # so the next result does not join the cut line
    if namespace is not None:
        sink.write(json.dumps({NAMESPACE_KEY: str(namespace)}) + "\n")
        sink.flush()
        # Every later line's request_id hangs on this one: it must reach the disk.
        os.fsync(sink.fileno())
    return sink


def result_json(response: pb.BatchCreateRoomsResponse) -> dict[str, Any]:
    """One result line: the room, or the error with its code's name and details."""
    out: dict[str, Any] = {"correlation_id": response.correlation_id}
    if response.HasField("room"):
        out["room"] = json_format.MessageToDict(response.room, preserving_proto_field_name=True)
    else:
        error = json_format.MessageToDict(response.error, preserving_proto_field_name=True)
        error["code"] = code_name(response.error.code)
        out["error"] = error
    if response.aws_request_id:
        out["aws_request_id"] = response.aws_request_id
    return out


@dataclass
class Progress:
    """Progress draws a one-line bar with rate and ETA on a terminal."""

    total: int
    stream: TextIO
    enabled: bool
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    _drawn: float = 0.0

    def step(self, force: bool = False) -> None:
        self.done += 1
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn < 0.1 and self.done < self.total):
            return
        self._drawn = now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        left = max(self.total - self.done, 0)
        eta = f"{left / rate:,.0f}s" if rate > 0 else "?"
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {rate:,.1f}/s ETA {eta} ")
        self.stream.flush()


@dataclass
class Summary:
    """Summary counts the run's outcomes."""

    created: int = 0
    skipped: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        failures = ", ".join(f"{code}: {n}" for code, n in sorted(self.failed.items()))
        failed = sum(self.failed.values())
        return (
            f"created {self.created}, failed {failed}"
            + (f" ({failures})" if failures else "")
            + f", skipped {self.skipped} already created"
        )


async def run(
    path: Path,
    *,
    connection: Connection,
    output: Path | None,
    progress: bool | None,
    timeout_s: float | None,
    request_ids: bool = True,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Stream path's requests to target; write results; return the exit code."""
    earlier = recorded(output) if output else Recorded()
    if output and request_ids and earlier.results and earlier.namespace is None:
        # A new namespace would give every unrecorded line a new request_id,
        # and a room the earlier run made could be made again.
        err.write(
            f"ivschat-grpc: {output} holds results but no readable {NAMESPACE_KEY} line (an "
            "older batch-create wrote it, or it was damaged), so a rerun could not reuse its "
            "request_ids: pass a new --output, or --no-request-ids to resume without them\n"
        )
        return BatchCreate.USAGE
    skip = earlier.created
    try:
        total = sum(1 for r in read_requests(path))
    except (OSError, InputError) as e:
        err.write(f"ivschat-grpc: {e}\n")
        return BatchCreate.USAGE
    summary = Summary()
    namespace = earlier.namespace or uuid.uuid4()
    new_namespace = request_ids and earlier.namespace is None
    sink = _open_output(output, namespace if new_namespace else None) if output else out
    bar = Progress(total, err, err.isatty() if progress is None else progress)
    local_failures: list[pb.BatchCreateRoomsResponse] = []

    def record(response: pb.BatchCreateRoomsResponse) -> None:
        sink.write(json.dumps(result_json(response)) + "\n")
        sink.flush()  # a crash loses no answer already given
        if response.HasField("room"):
            summary.created += 1
        else:
            summary.failed[code_name(response.error.code)] += 1
        bar.step()

    async def requests() -> AsyncIterator[pb.BatchCreateRoomsRequest]:
        for request in read_requests(path):
            if isinstance(request, InputError):
                local_failures.append(
                    pb.BatchCreateRoomsResponse(
                        correlation_id=request.correlation_id,
                        error={
                            "code": grpc.StatusCode.INVALID_ARGUMENT.value[0],
                            "message": str(request),
                        },
                    )
                )
                continue
            if request.correlation_id in skip:
                summary.skipped += 1
                bar.step()
                continue
            if request_ids and not request.room.HasField("request_id"):
                request.room.request_id = request_id_for(namespace, request.correlation_id)
            yield request

    try:
        async with RoomClient(connection) as rooms:
            async for response in rooms.batch_create(requests(), deadline_s=timeout_s):
                record(response)
                while local_failures:
                    record(local_failures.pop())
        while local_failures:
            record(local_failures.pop())
    except RoomServiceError as e:
        if bar.enabled:
            err.write("\n")
        if await tls_hints.told(connection, e.code, e.message, err):
            return BatchCreate.TLS_MISMATCH
        err.write(f"ivschat-grpc: the stream failed: {e}\n")
        err.write(summary.line() + "\n")
        return BatchCreate.STREAM_FAILED
    finally:
        if output:
            sink.close()
    if bar.enabled:
        err.write("\n")
    err.write(summary.line() + "\n")
    return BatchCreate.ITEMS_FAILED if summary.failed else BatchCreate.OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """batch-create's flags: the file, the output and how to send it, then the connection."""
    parser.add_argument("file", help="requests: .jsonl (one CreateRoomRequest a line) or .csv")
    parser.add_argument(
        "--output",
        help="append results here (JSON Lines); a rerun skips ids it records as created",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds for the whole stream")
    parser.add_argument(
        "--no-request-ids",
        dest="request_ids",
        action="store_false",
        help="send lines without a request_id, so a rerun may create a room twice "
        "(default: each line gets one derived from its correlation id)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: when stderr is a terminal)",
    )
    connection_flags.add_arguments(parser)


def main(args: Any) -> int:
    """Entry point for the batch-create subcommand."""
    return asyncio.run(
        run(
            Path(args.file),
            connection=connection_flags.connection_from(args, os.environ),
            output=Path(args.output) if args.output else None,
            progress=args.progress,
            timeout_s=args.timeout,
            request_ids=args.request_ids,
        )
    )
