"""ivschat-grpc batch-create: stream a file of CreateRoom requests to a server.

Input is JSON Lines (one CreateRoomRequest per line, in proto JSON, with an
optional "correlation_id"; or a whole BatchCreateRoomsRequest with a "room")
or CSV (a header line first: the columns are below). A line without a
correlation id gets "line-N". A line that is not a request (a bad value, an
unknown field or column) is not sent: it is answered INVALID_ARGUMENT under
its correlation id, naming each bad field, and shown on stderr.

Output is one JSON line per correlation id, in --output, so a rerun with the
same --output skips every id already created and replaces the record of any
other. Results are appended as they come; the file is rewritten (a new file
renamed over the old) at the start and end of a run to keep one record per
id and to drop a line cut short by a crash.

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
import fcntl
import json
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from ivschat.v1 import room_service_pb2 as pb

from ivschat_grpc.cli import connection_flags, tls_hints
from ivschat_grpc.cli.exit_codes import BatchCreate
from ivschat_grpc.client import Connection, RoomClient, RoomServiceError
from ivschat_grpc.errors import code_name

if TYPE_CHECKING:
    # What a message class's DESCRIPTOR.fields holds under protobuf's upb backend.
    from google._upb._message import FieldDescriptor as UpbFieldDescriptor

# The whole-number fields' ranges, for messages (the service checks them; a
# test holds them to botocore's model, which this client-side module does not load).
WHOLE_NUMBERS: Final[Mapping[str, tuple[int, int]]] = {
    "maximum_message_length": (1, 500),
    "maximum_message_rate_per_second": (1, 100),
}
_INT32: Final = range(-(2**31), 2**31)
# The CSV fallback_result values (any case).
FALLBACK: Final = {"ALLOW": pb.FALLBACK_RESULT_ALLOW, "DENY": pb.FALLBACK_RESULT_DENY}


@dataclass(frozen=True)
class Column:
    """Column is one CSV column: the request field it fills and what its values look like."""

    name: str
    field: str  # the field path, relative to the item, that a BadRequest names
    takes: str


CSV_COLUMNS: Final = (
    Column("correlation_id", "correlation_id", "the line's id in the output (default line-N)"),
    Column("name", "room.name", "the room's name"),
    *(
        Column(name, f"room.{name}", "a whole number, {} to {}".format(*WHOLE_NUMBERS[name]))
        for name in WHOLE_NUMBERS
    ),
    Column(
        "message_review_handler_uri",
        "room.message_review_handler.uri",
        "the review handler's Lambda function ARN",
    ),
    Column(
        "fallback_result",
        "room.message_review_handler.fallback_result",
        "ALLOW or DENY (any case): if the handler fails or is late",
    ),
    Column("tags", "room.tags", 'KEY=VALUE pairs separated by ";": team=red;tier=gold'),
    Column(
        "logging_configuration_identifiers",
        "room.logging_configuration_identifiers",
        'logging configuration ARNs separated by ";"',
    ),
)
_BY_NAME: Final = {c.name: c for c in CSV_COLUMNS}
_COLUMN_LIST: Final = ", ".join(c.name for c in CSV_COLUMNS)


def csv_help() -> str:
    """The CSV rules for --help and docs/batches.md, from CSV_COLUMNS."""
    width = max(len(c.name) for c in CSV_COLUMNS) + 2
    rows = "\n".join(f"  {c.name:{width}}{c.takes}" for c in CSV_COLUMNS)
    return (
        "CSV input: the first line is a header naming the columns the file uses, in any\n"
        "order, each at most once (spaces around a name are ignored). A file without a\n"
        "header, or naming a column not below, is refused before anything is sent.\n"
        "An empty value leaves its field unset, so AWS's default applies. A value that\n"
        "holds a comma, a double quote or a line break is put in double quotes. A line\n"
        "with more values than the header has columns is not sent: it is answered\n"
        "INVALID_ARGUMENT, as a line with a bad value is.\n\n"
        f"{rows}\n"
    )


# The output file's first line names the namespace of the run's request_ids.
NAMESPACE_KEY: Final = "request_id_namespace"
# How many bad lines stderr shows; the output has every one.
_SHOWN_BAD_LINES: Final = 10


class FileError(Exception):
    """FileError is an input file that cannot be read as requests at all (exit USAGE)."""


class InputError(Exception):
    """InputError is a line that is not a request; it is answered locally.

    fields are (field path, what is wrong) pairs: the answer's BadRequest.
    """

    def __init__(
        self,
        message: str,
        number: int = 0,
        correlation_id: str = "",
        fields: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.line = number
        self.correlation_id = correlation_id or (f"line-{number}" if number else "")
        self.fields = fields


def _shown(value: object) -> str:
    """value as JSON, cut to a length that reads in one line."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole_number_hint(field_name: str) -> str:
    low, high = WHOLE_NUMBERS.get(field_name, (None, None))
    return f" ({low} to {high})" if low is not None else ""


# ---- CSV ------------------------------------------------------------------


def _csv_header(path: Path, header: list[str]) -> list[str]:
    """The header's column names, or FileError saying what the first line must be."""
    names = [h.strip() for h in header]
    allowed = f"the columns are {_COLUMN_LIST}; any order, each at most once"
    if not any(n in _BY_NAME for n in names):
        raise FileError(
            f"{path}: line 1 is not a header: a CSV file's first line names its columns ({allowed})"
        )
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        listed = ", ".join(json.dumps(n) for n in unknown)
        raise FileError(f"{path}: line 1: unknown column{plural} {listed} ({allowed})")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise FileError(f"{path}: line 1: column {json.dumps(twice[0])} is named twice")
    return names


def _from_csv_row(names: list[str], values: list[str], number: int) -> pb.BatchCreateRoomsRequest:
    row = dict(zip(names, values, strict=False))
    cid = row.get("correlation_id", "")
    problems: list[tuple[Column, str]] = []
    extra = [v for v in values[len(names) :] if v.strip()]
    if extra:
        listed = ", ".join(json.dumps(v) for v in extra)
        raise InputError(
            f"{len(values)} values, but the header names {len(names)} columns: {listed} "
            f"{'has' if len(extra) == 1 else 'have'} no column "
            "(a value holding a comma needs double quotes)",
            number,
            cid,
        )
    room = pb.CreateRoomRequest()
    if row.get("name"):
        room.name = row["name"]
    for field_name in WHOLE_NUMBERS:
        text = (row.get(field_name) or "").strip()
        if not text:
            continue
        # int() would also take "1_000"; a person means digits.
        if re.fullmatch(r"[+-]?[0-9]+", text) and int(text) in _INT32:
            setattr(room, field_name, int(text))
        else:
            hint = _whole_number_hint(field_name)
            problems.append((_BY_NAME[field_name], f"{_shown(text)} is not a whole number{hint}"))
    uri = row.get("message_review_handler_uri") or ""
    fallback = (row.get("fallback_result") or "").strip()
    if uri or fallback:
        room.message_review_handler.uri = uri
        if fallback.upper() in FALLBACK:
            room.message_review_handler.fallback_result = FALLBACK[fallback.upper()]
        elif fallback:
            problems.append(
                (_BY_NAME["fallback_result"], f"{_shown(fallback)} is not one of ALLOW, DENY")
            )
    tag_problem = _tags(row.get("tags") or "", room)
    if tag_problem:
        problems.append((_BY_NAME["tags"], tag_problem))
    ids = row.get("logging_configuration_identifiers") or ""
    room.logging_configuration_identifiers.extend(filter(None, ids.split(";")))
    if problems:
        raise InputError(
            "; ".join(f"column {c.name}: {what}" for c, what in problems),
            number,
            cid,
            tuple((c.field, what) for c, what in problems),
        )
    return pb.BatchCreateRoomsRequest(correlation_id=cid, room=room)


def _tags(text: str, room: pb.CreateRoomRequest) -> str:
    """Fill room's tags from k=v;k2=v2; what is wrong with text, or ""."""
    bad: list[str] = []
    twice: list[str] = []
    for pair in filter(None, text.split(";")):
        key, sep, value = pair.partition("=")
        if not sep:
            bad.append(pair)
        elif key in room.tags:
            twice.append(key)
        else:
            room.tags[key] = value
    if bad:
        listed = ", ".join(_shown(p) for p in bad)
        verb = "is" if len(bad) == 1 else "are"
        return f'{listed} {verb} not KEY=VALUE (pairs are separated by ";")'
    if twice:
        return f"tag {_shown(twice[0])} is given twice"
    return ""


def _csv_requests(path: Path, f: TextIO) -> Iterator[pb.BatchCreateRoomsRequest | InputError]:
    reader = csv.reader(f)
    try:
        header = next(reader)
    except StopIteration:
        return  # an empty file: nothing to send
    except csv.Error as e:
        raise FileError(f"{path}: line 1: {e}") from e
    names = _csv_header(path, header)
    while True:
        number = reader.line_num + 1  # where the row starts (a quoted value may span lines)
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise FileError(f"{path}: line {number}: {e}") from e
        if not values:
            continue  # a blank line
        try:
            request = _from_csv_row(names, values, number)
        except InputError as e:
            yield e
            continue
        if not request.correlation_id:
            request.correlation_id = f"line-{number}"
        yield request


# ---- JSON Lines -----------------------------------------------------------

# A line that does not parse may still start with its id: that is used, if so.
_LEADING_ID: Final = re.compile(r'\s*\{\s*"correlation_?[iI]d"\s*:\s*"([^"\\]{1,128})"')


@dataclass(frozen=True)
class _Problem:
    """_Problem is one bad field of a JSON line: the message's part and the BadRequest's."""

    message: str
    field: str  # the path a BadRequest names, relative to the item
    description: str

    @classmethod
    def unknown(cls, shown: str, path: str, allowed: str) -> _Problem:
        fields = f"(the fields are {allowed})"
        return cls(f"unknown field {json.dumps(shown)} {fields}", path, f"unknown field {fields}")

    @classmethod
    def bad(cls, shown: str, path: str, value: object, wanted: str) -> _Problem:
        what = f"{_shown(value)} is not {wanted}"
        return cls(f"field {shown}: {what}", path, what)


def _json_kind(field: FieldDescriptor | UpbFieldDescriptor) -> str:
    """What a field's JSON value must be, said for people."""
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return "an object of strings"
    if field.is_repeated:
        return "a list of strings"
    if field.enum_type is not None:
        names = [v.name for v in field.enum_type.values if v.number != 0]
        return "one of " + ", ".join(names)
    if field.message_type is not None:
        return "an object"
    if field.type == FieldDescriptor.TYPE_STRING:
        return "a string"
    return "a whole number" + _whole_number_hint(field.name)


def _check_json(
    message: type[Message],
    data: Mapping[str, object],
    shown: str,
    path: str,
    out: list[_Problem],
    also: tuple[str, ...] = (),
) -> None:
    """Every unknown field and every bad value in data, into out."""
    descriptor = message.DESCRIPTOR
    by_name = {f.name: f for f in descriptor.fields} | {f.json_name: f for f in descriptor.fields}
    allowed = ", ".join((*also, *(f.name for f in descriptor.fields)))
    seen: set[str] = set()
    for key, value in data.items():
        field = by_name.get(key)
        if field is None:
            out.append(_Problem.unknown(shown + key, path + key, allowed))
            continue
        if field.name in seen:  # as name and as its camelCase JSON name
            what = f"given twice, as {field.name} and {field.json_name}"
            out.append(_Problem(f"field {shown}{key}: {what}", path + field.name, what))
            continue
        seen.add(field.name)
        # A message field (not a map or list) is checked field by field, to name the bad one.
        if field.message_type is not None and not field.is_repeated and isinstance(value, dict):
            nested = getattr(message(), field.name)
            _check_json(
                type(nested),
                value,
                f"{shown}{key}.",
                f"{path}{field.name}.",
                out,
            )
            continue
        try:
            json_format.ParseDict({key: value}, message())
        except json_format.ParseError:
            out.append(_Problem.bad(shown + key, path + field.name, value, _json_kind(field)))


def _from_json_line(text: str, number: int) -> pb.BatchCreateRoomsRequest:
    try:
        data = json.loads(text)
    except ValueError as e:
        leading = _LEADING_ID.match(text)
        where = f" at column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        message = f"not JSON ({e.msg if isinstance(e, json.JSONDecodeError) else e}{where})"
        raise InputError(message, number, leading[1] if leading else "") from e
    if not isinstance(data, dict):
        raise InputError(f"not a JSON object but {_shown(data)}", number)
    cid: object = data.pop("correlation_id", data.pop("correlationId", None))
    problems: list[_Problem] = []
    if cid is None:
        cid = ""
    elif not isinstance(cid, str):
        problems.append(_Problem.bad("correlation_id", "correlation_id", cid, "a string"))
        cid = ""
    if "room" in data:
        room_data = data.pop("room")
        for key in data:
            problems.append(_Problem.unknown(key, key, "correlation_id, room"))
        if isinstance(room_data, dict):
            _check_json(
                pb.CreateRoomRequest,
                room_data,
                "room.",
                "room.",
                problems,
            )
        else:
            problems.append(_Problem.bad("room", "room", room_data, "an object"))
    else:
        room_data = data
        _check_json(
            pb.CreateRoomRequest,
            room_data,
            "",
            "room.",
            problems,
            also=("correlation_id",),
        )
    if problems:
        raise InputError(
            "; ".join(p.message for p in problems),
            number,
            cid,
            tuple((p.field, p.description) for p in problems),
        )
    try:
        room = json_format.ParseDict(room_data, pb.CreateRoomRequest())
    except json_format.ParseError as e:  # not expected: every field was parsed alone above
        raise InputError(f"not a CreateRoomRequest: {e}", number, cid) from e
    return pb.BatchCreateRoomsRequest(correlation_id=cid, room=room)


def _json_requests(f: TextIO) -> Iterator[pb.BatchCreateRoomsRequest | InputError]:
    for number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            request = _from_json_line(line, number)
        except InputError as e:
            yield e
            continue
        if not request.correlation_id:
            request.correlation_id = f"line-{number}"
        yield request


def read_requests(path: Path) -> Iterator[pb.BatchCreateRoomsRequest | InputError]:
    """Each line's request (or why it is not one), with default correlation ids.

    FileError (or OSError) when the file cannot be read as requests at all.
    """
    with path.open(newline="", encoding="utf-8") as f:
        if path.suffix.lower() == ".csv":
            yield from _csv_requests(path, f)
        else:
            yield from _json_requests(f)


# ---- the output file ------------------------------------------------------


class OutputBusy(Exception):
    """OutputBusy is an output file that another batch-create holds."""


def _locked(path: Path) -> int:
    """A descriptor of path, opened for appending and holding its exclusive lock.

    A run that compacts renames a new file over the path; one that locked the
    old file then holds a file nobody reads, so the lock is taken again until
    the locked file is the one the path names.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusy(f"{path}: another batch-create is writing to it") from None
        if os.path.samestat(os.fstat(fd), os.stat(path)):
            return fd
        os.close(fd)


def _is_created(record: Mapping[str, object]) -> bool:
    return "room" in record


class ResultFile:
    """ResultFile is --output: one record per correlation id, whichever run wrote it.

    A run appends each result as it comes (a crash loses none already given).
    Appends may leave an id with two records, and a crash may cut the last
    line short; compact() then writes the file anew, to a temporary file it
    renames over the old one, so a crash there leaves the old file whole.
    The record that counts for an id is the latest, but a created room's is
    never replaced by a failure.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = _locked(path)
        self._file = os.fdopen(self._fd, "a", encoding="utf-8")
        self.namespace: uuid.UUID | None = None
        self.records: dict[str, dict[str, Any]] = {}
        self._others: list[str] = []  # whole lines that are not results; kept as they are
        self.torn = 0
        self._lines = 0  # result lines in the file
        self._whole = True  # the file ends with a line break
        try:
            self._load()
            # A run killed mid-rewrite left it; with the lock held, nobody is writing it.
            self._temporary.unlink(missing_ok=True)
        except BaseException:
            self._file.close()
            raise

    @property
    def _temporary(self) -> Path:
        return self.path.with_name(self.path.name + ".compacting")

    def _load(self) -> None:
        with self.path.open(encoding="utf-8", newline="") as f:
            text = f.read()
        self._whole = text.endswith("\n") or not text
        for line in text.splitlines():
            try:
                result = json.loads(line)
            except ValueError:
                self.torn += 1  # a line cut short by an interrupted run
                continue
            if isinstance(result, dict) and "correlation_id" in result:
                self._keep(result)
            elif isinstance(result, dict) and NAMESPACE_KEY in result:
                if self.namespace is None:
                    try:
                        self.namespace = uuid.UUID(str(result[NAMESPACE_KEY]))
                    except ValueError:
                        continue
            else:
                self._others.append(line)

    def _keep(self, record: dict[str, Any]) -> None:
        self._lines += 1
        cid = str(record["correlation_id"])
        earlier = self.records.get(cid)
        if earlier is None or not _is_created(earlier) or _is_created(record):
            self.records[cid] = record

    @property
    def created(self) -> set[str]:
        return {cid for cid, r in self.records.items() if _is_created(r)}

    def append(self, record: dict[str, Any]) -> None:
        self._keep(record)
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()  # a crash loses no answer already given

    def compact(self, force: bool = False) -> None:
        """Rewrite the file as one record per id, if it is anything else (or force)."""
        if not force and self._whole and not self.torn and self._lines == len(self.records):
            return
        temporary = self._temporary
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held across the rename: no run takes the new file
            os.fchmod(fd, os.fstat(self._fd).st_mode & 0o7777)
            lines = [json.dumps({NAMESPACE_KEY: str(self.namespace)})] if self.namespace else []
            lines += self._others
            lines += [json.dumps(r) for r in self.records.values()]
            os.write(fd, "".join(line + "\n" for line in lines).encode())
            # Every later line's request_id hangs on the namespace: it must reach the disk
            # before the new file replaces the old one.
            os.fsync(fd)
            os.replace(temporary, self.path)
        except BaseException:
            os.close(fd)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself
        finally:
            os.close(directory)
        self._file.close()
        self._fd = fd
        self._file = os.fdopen(fd, "a", encoding="utf-8")
        self._lines = len(self.records)
        self._whole = True
        self.torn = 0

    def close(self) -> None:
        """Compact what this run appended over earlier records, then let the file go."""
        try:
            self.compact()
        finally:
            self._file.close()


def request_id_for(namespace: uuid.UUID, correlation_id: str) -> str:
    """The request_id a line with correlation_id gets in the run with namespace."""
    return str(uuid.uuid5(namespace, correlation_id))


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


def _local_failure(error: InputError) -> dict[str, Any]:
    """The record of a line that is not a request: INVALID_ARGUMENT, as the service words it."""
    status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message=str(error))
    if error.fields:
        status.details.add().Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=path, description=what)
                    for path, what in error.fields
                ]
            )
        )
    response = pb.BatchCreateRoomsResponse(correlation_id=error.correlation_id, error=status)
    return result_json(response) | {"line": error.line}


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
    try:
        total = sum(1 for r in read_requests(path))
    except FileError as e:
        err.write(f"ivschat-grpc: {e}\n")
        return BatchCreate.USAGE
    except (OSError, UnicodeDecodeError) as e:
        err.write(f"ivschat-grpc: {path}: {getattr(e, 'strerror', None) or e}\n")
        return BatchCreate.USAGE
    results: ResultFile | None = None
    if output:
        try:
            results = ResultFile(output)
        except OutputBusy as e:
            err.write(f"ivschat-grpc: {e}\n")
            return BatchCreate.USAGE
        except OSError as e:
            err.write(f"ivschat-grpc: {output}: {e.strerror or e}\n")
            return BatchCreate.USAGE
    code: int = BatchCreate.USAGE
    try:
        code = await _send(
            path, total, results, request_ids, progress, timeout_s, connection, out, err
        )
    finally:
        if results is not None:
            try:
                results.close()
            except OSError as e:
                # Every result is in the file already; only the rewrite to one per id failed.
                err.write(f"ivschat-grpc: {output}: could not rewrite it: {e.strerror or e}\n")
    return code


async def _send(
    path: Path,
    total: int,
    results: ResultFile | None,
    request_ids: bool,
    progress: bool | None,
    timeout_s: float | None,
    connection: Connection,
    out: TextIO,
    err: TextIO,
) -> int:
    if results is not None and request_ids and results.records and results.namespace is None:
        # A new namespace would give every unrecorded line a new request_id,
        # and a room the earlier run made could be made again.
        err.write(
            f"ivschat-grpc: {results.path} holds results but no readable {NAMESPACE_KEY} line "
            "(an older batch-create wrote it, or it was damaged), so a rerun could not reuse "
            "its request_ids: pass a new --output, or --no-request-ids to resume without them\n"
        )
        return BatchCreate.USAGE
    namespace = (results.namespace if results else None) or uuid.uuid4()
    if results is not None:
        if results.torn:
            err.write(
                f"ivschat-grpc: {results.path}: dropped {results.torn} line"
                f"{'s' if results.torn > 1 else ''} cut short by an interrupted run\n"
            )
        try:
            if request_ids and results.namespace is None:
                results.namespace = namespace
                results.compact(force=True)
            else:
                results.compact()
        except OSError as e:
            err.write(f"ivschat-grpc: {results.path}: could not rewrite it: {e.strerror or e}\n")
            return BatchCreate.USAGE
    skip = results.created if results else set()
    summary = Summary()
    bar = Progress(total, err, err.isatty() if progress is None else progress)
    local_failures: list[dict[str, Any]] = []
    bad_lines = 0

    def record(result: dict[str, Any]) -> None:
        if results is not None:
            results.append(result)
        else:
            out.write(json.dumps(result) + "\n")
            out.flush()
        if "room" in result:
            summary.created += 1
        else:
            summary.failed[str(result["error"].get("code", "UNKNOWN"))] += 1
        bar.step()

    def show(error: InputError) -> None:
        nonlocal bad_lines
        bad_lines += 1
        if bad_lines <= _SHOWN_BAD_LINES:
            if bar.enabled:
                err.write("\r")
            err.write(f"line {error.line}: {error.correlation_id}: {error}\n")

    async def requests() -> AsyncIterator[pb.BatchCreateRoomsRequest]:
        for request in read_requests(path):
            if isinstance(request, InputError):
                show(request)
                local_failures.append(_local_failure(request))
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
                record(result_json(response))
                while local_failures:
                    record(local_failures.pop(0))
        while local_failures:
            record(local_failures.pop(0))
    except RoomServiceError as e:
        while local_failures:  # answered here, so known whatever became of the stream
            record(local_failures.pop(0))
        if bar.enabled:
            err.write("\n")
        if await tls_hints.told(connection, e.code, e.message, err):
            return BatchCreate.TLS_MISMATCH
        err.write(f"ivschat-grpc: the stream failed: {e}\n")
        err.write(summary.line() + "\n")
        return BatchCreate.STREAM_FAILED
    if bar.enabled:
        err.write("\n")
    if bad_lines > _SHOWN_BAD_LINES:
        where = f"see {results.path}" if results else "see the output"
        err.write(
            f"... and {bad_lines - _SHOWN_BAD_LINES} more lines that are not requests: {where}\n"
        )
    err.write(summary.line() + "\n")
    return BatchCreate.ITEMS_FAILED if summary.failed else BatchCreate.OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """batch-create's flags: the file, the output and how to send it, then the connection."""
    parser.epilog = csv_help()
    parser.add_argument(
        "file", help="requests: .jsonl (one CreateRoomRequest a line) or .csv (rules below)"
    )
    parser.add_argument(
        "--output",
        help="keep results here, one JSON line per correlation id; a rerun skips the ids it "
        "records as created and replaces the others' records (default: print them)",
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
