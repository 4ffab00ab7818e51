"""ivschat-grpc batch-create, run as a process against a real server."""

from __future__ import annotations

import fcntl
import json
import socket
from pathlib import Path
from typing import Any

from ivschat_grpc.aws.validation import bounds
from ivschat_grpc.cli import batch_create as batch_module
from ivschat_grpc.cli.exit_codes import BatchCreate
from ivschat_grpc.core.creator import RESERVED_TAG

from tests.support.facade import Facade
from tests.support.processes import run_command

TIMEOUT_S = 120


async def batch_create(*args: str) -> tuple[int, str, str]:
    return await run_command("batch-create", *args)


def results(path: Path) -> list[dict[str, Any]]:
    """The result lines of an output file, without its request_id namespace line."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in lines if "correlation_id" in r]


def own_tags(room: dict[str, Any]) -> dict[str, str]:
    """A room's tags but the one the service adds for its request_id."""
    return {k: v for k, v in room["tags"].items() if k != RESERVED_TAG}


async def test_jsonl_with_failures_then_resume(facade: Facade, tmp_path: Path) -> None:
    requests = tmp_path / "rooms.jsonl"
    lines = [json.dumps({"correlation_id": f"r{i}", "name": f"room-{i}"}) for i in range(20)]
    lines.append(json.dumps({"correlation_id": "bad", "name": "no spaces allowed"}))
    lines.append("{not json")
    lines.append(json.dumps({"name": "no-id", "tags": {"team": "red"}}))
    requests.write_text("\n".join(lines) + "\n")
    output = tmp_path / "results.jsonl"
    server = f"127.0.0.1:{facade.service.port}"

    code, _, err = await batch_create(
        str(requests), "--server", server, "--output", str(output), "--progress"
    )
    assert code == 1  # some items failed
    assert "/s ETA" in err
    assert "created 21, failed 2 (INVALID_ARGUMENT: 2), skipped 0 already created" in err
    first = results(output)
    assert len(first) == 23
    by_id = {r["correlation_id"]: r for r in first}
    assert by_id["r7"]["room"]["name"] == "room-7"
    assert own_tags(by_id["line-23"]["room"]) == {"team": "red"}
    bad = by_id["bad"]["error"]
    assert bad["code"] == "INVALID_ARGUMENT"
    assert any("room.name" in json.dumps(d) for d in bad["details"])
    assert by_id["line-22"]["error"]["code"] == "INVALID_ARGUMENT"
    assert len(facade.emulator.state.rooms) == 21

    code, _, err = await batch_create(str(requests), "--server", server, "--output", str(output))
    assert code == 1
    assert "created 0, failed 2 (INVALID_ARGUMENT: 2), skipped 21 already created" in err
    assert len(facade.emulator.state.rooms) == 21  # nothing created twice
    again = results(output)
    assert len(again) == 23  # the two failures' records are replaced, not added to
    assert sorted(r["correlation_id"] for r in again) == sorted(by_id)


async def test_csv_all_fields(facade: Facade, tmp_path: Path) -> None:
    arn = "arn:aws:ivschat:us-east-1:123456789012:logging-configuration/LogCfg0"
    lam = "arn:aws:lambda:us-east-1:123456789012:function:review"
    requests = tmp_path / "rooms.csv"
    requests.write_text(
        "correlation_id,name,maximum_message_length,maximum_message_rate_per_second,"
        "message_review_handler_uri,fallback_result,tags,logging_configuration_identifiers\n"
        f"a,alpha,100,20,{lam},deny,team=red;tier=gold,{arn}\n"
        "b,beta,,,,,,\n"
    )
    code, out, err = await batch_create(
        str(requests), "--server", f"127.0.0.1:{facade.service.port}"
    )
    assert code == 0, err
    by_id: dict[str, Any] = {
        r["correlation_id"]: r["room"] for r in map(json.loads, out.splitlines())
    }
    alpha = by_id["a"]
    assert alpha["name"] == "alpha"
    assert alpha["maximum_message_length"] == 100
    assert alpha["maximum_message_rate_per_second"] == 20
    assert alpha["message_review_handler"] == {
        "uri": lam,
        "fallback_result": "FALLBACK_RESULT_DENY",
    }
    assert own_tags(alpha) == {"team": "red", "tier": "gold"}
    assert alpha["logging_configuration_identifiers"] == [arn]
    assert by_id["b"]["maximum_message_length"] == 500
    assert "created 2, failed 0" in err


async def test_unreachable_server_is_a_stream_failure(tmp_path: Path) -> None:
    requests = tmp_path / "rooms.jsonl"
    requests.write_text('{"name": "x"}\n')
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        code, _, err = await batch_create(
            str(requests), "--server", f"127.0.0.1:{port}", "--timeout", "5"
        )
    assert code == 3
    assert "the stream failed: UNAVAILABLE" in err


async def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = await batch_create(str(tmp_path / "nope.jsonl"))
    assert code == 2
    assert "nope.jsonl" in err


def error_of(record: dict[str, Any]) -> tuple[str, str, list[str]]:
    """A failure record's code, message and the fields its BadRequest names."""
    error = record["error"]
    fields = [v["field"] for d in error.get("details", ()) for v in d.get("field_violations", ())]
    return error["code"], error["message"], fields


def no_raw_exception(text: str) -> None:
    for raw in ("invalid literal", "KeyError", "'MAYBE'", "Traceback", "Message type"):
        assert raw not in text


async def test_a_bad_csv_value_is_reported_under_its_own_id(facade: Facade, tmp_path: Path) -> None:
    requests = tmp_path / "rooms.csv"
    requests.write_text(
        "correlation_id,name,maximum_message_length,fallback_result,tags\n"
        "x1,ok-one,abc,,\n"
        "x2,ok-two,,maybe,\n"
        "x3,ok-three,99999999999,,team;tier=gold\n"
        ",no-id,1.5,,\n"
        "x5,ok-five,100,deny,team=red\n"
    )
    output = tmp_path / "results.jsonl"
    code, _, err = await batch_create(
        str(requests), "--server", f"127.0.0.1:{facade.service.port}", "--output", str(output)
    )
    assert code == BatchCreate.ITEMS_FAILED
    by_id = {r["correlation_id"]: r for r in results(output)}
    assert set(by_id) == {"x1", "x2", "x3", "line-5", "x5"}
    assert error_of(by_id["x1"]) == (
        "INVALID_ARGUMENT",
        'column maximum_message_length: "abc" is not a whole number (1 to 500)',
        ["room.maximum_message_length"],
    )
    assert by_id["x1"]["line"] == 2
    assert error_of(by_id["x2"]) == (
        "INVALID_ARGUMENT",
        'column fallback_result: "maybe" is not one of ALLOW, DENY',
        ["room.message_review_handler.fallback_result"],
    )
    # Every bad column of a line at once.
    assert error_of(by_id["x3"]) == (
        "INVALID_ARGUMENT",
        'column maximum_message_length: "99999999999" is not a whole number (1 to 500); '
        'column tags: "team" is not KEY=VALUE (pairs are separated by ";")',
        ["room.maximum_message_length", "room.tags"],
    )
    assert error_of(by_id["line-5"])[1] == (
        'column maximum_message_length: "1.5" is not a whole number (1 to 500)'
    )
    assert "room" in by_id["x5"]
    assert 'line 2: x1: column maximum_message_length: "abc" is not a whole number' in err
    assert 'line 3: x2: column fallback_result: "maybe" is not one of ALLOW, DENY' in err
    no_raw_exception(output.read_text() + err)
    (room,) = facade.emulator.state.rooms.values()  # no bad line reached AWS
    assert room["name"] == "ok-five"


async def test_a_bad_jsonl_field_is_reported_under_its_own_id(
    facade: Facade, tmp_path: Path
) -> None:
    requests = tmp_path / "rooms.jsonl"
    lines = [
        {"correlation_id": "j1", "name": "a", "colour": "red"},
        {"correlationId": "j2", "maximumMessageLength": "abc"},
        {"correlation_id": "j3", "message_review_handler": {"uri": "", "fallback_result": "maybe"}},
        {"correlation_id": "j4", "room": {"nmae": "x", "tags": {"team": 5}}},
        {"correlation_id": "j5", "name": "fine", "logging_configuration_identifiers": "arn"},
        {"correlation_id": "j6", "room": {"name": "wrapped"}},
        {
            "correlation_id": "j8",
            "name": "a",
            "maximumMessageLength": 5,
            "maximum_message_length": 5,
        },
    ]
    text = "\n".join(json.dumps(line) for line in lines)
    text += '\n{"correlation_id": "j7", "name": "cut short\n'
    requests.write_text(text)
    output = tmp_path / "results.jsonl"
    code, _, err = await batch_create(
        str(requests), "--server", f"127.0.0.1:{facade.service.port}", "--output", str(output)
    )
    assert code == BatchCreate.ITEMS_FAILED
    by_id = {r["correlation_id"]: r for r in results(output)}
    assert set(by_id) == {f"j{i}" for i in range(1, 9)}
    allowed = (
        "correlation_id, name, maximum_message_length, maximum_message_rate_per_second, "
        "message_review_handler, tags, logging_configuration_identifiers, request_id"
    )
    assert error_of(by_id["j1"]) == (
        "INVALID_ARGUMENT",
        f'unknown field "colour" (the fields are {allowed})',
        ["room.colour"],
    )
    assert error_of(by_id["j2"]) == (
        "INVALID_ARGUMENT",
        'field maximumMessageLength: "abc" is not a whole number (1 to 500)',
        ["room.maximum_message_length"],
    )
    assert error_of(by_id["j3"]) == (
        "INVALID_ARGUMENT",
        'field message_review_handler.fallback_result: "maybe" is not one of '
        "FALLBACK_RESULT_ALLOW, FALLBACK_RESULT_DENY",
        ["room.message_review_handler.fallback_result"],
    )
    _, message, fields = error_of(by_id["j4"])
    assert message == (
        'unknown field "room.nmae" (the fields are '
        + allowed.replace("correlation_id, ", "")
        + '); field room.tags: {"team": 5} is not an object of strings'
    )
    assert fields == ["room.nmae", "room.tags"]
    assert error_of(by_id["j5"])[1] == (
        'field logging_configuration_identifiers: "arn" is not a list of strings'
    )
    assert by_id["j6"]["room"]["name"] == "wrapped"
    assert error_of(by_id["j8"])[1] == (
        "field maximum_message_length: given twice, as maximum_message_length and "
        "maximumMessageLength"
    )
    assert error_of(by_id["j7"])[1].startswith("not JSON (")
    assert "line 1: j1: unknown field" in err
    no_raw_exception(output.read_text() + err)
    (room,) = facade.emulator.state.rooms.values()
    assert room["name"] == "wrapped"


async def test_a_csv_needs_its_header_and_no_extra_values(facade: Facade, tmp_path: Path) -> None:
    server = f"127.0.0.1:{facade.service.port}"
    columns = ", ".join(c.name for c in batch_module.CSV_COLUMNS)
    no_header = tmp_path / "noheader.csv"
    no_header.write_text("n1,noheader-one\n")
    code, _, err = await batch_create(str(no_header), "--server", server)
    assert code == BatchCreate.USAGE
    assert f"{no_header}: line 1 is not a header" in err
    assert columns in err
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("correlation_id,name,colour,\nu1,one,red,\n")
    code, _, err = await batch_create(str(unknown), "--server", server)
    assert code == BatchCreate.USAGE
    assert f'{unknown}: line 1: unknown columns "colour", "" (the columns are {columns}' in err
    twice = tmp_path / "twice.csv"
    twice.write_text("name,name\na,b\n")
    code, _, err = await batch_create(str(twice), "--server", server)
    assert code == BatchCreate.USAGE
    assert 'line 1: column "name" is named twice' in err
    assert not facade.emulator.state.rooms  # a refused file sends nothing

    extra = tmp_path / "extra.csv"
    extra.write_text('correlation_id,name\ne1,one,surplus\ne2,two,\n"e3","th\nree",x\ne4,four\n')
    output = tmp_path / "results.jsonl"
    code, _, err = await batch_create(str(extra), "--server", server, "--output", str(output))
    assert code == BatchCreate.ITEMS_FAILED
    by_id = {r["correlation_id"]: r for r in results(output)}
    assert error_of(by_id["e1"])[1] == (
        '3 values, but the header names 2 columns: "surplus" has no column '
        "(a value holding a comma needs double quotes)"
    )
    assert "room" in by_id["e2"]  # an empty value past the last column is no value
    assert by_id["e3"]["line"] == 4  # where the row starts: its name holds a line break
    assert "room" in by_id["e4"]
    assert by_id["e4"].get("line") is None


async def test_help_shows_the_csv_rules() -> None:
    code, out, _ = await batch_create("--help")
    assert code == 0
    assert "CSV_COLUMNS" not in out
    assert "first line" in out
    for column in batch_module.CSV_COLUMNS:
        assert column.name in out


def test_the_csv_ranges_are_the_contracts() -> None:
    assert {
        "maximum_message_length": (
            bounds("RoomMaxMessageLength").min,
            bounds("RoomMaxMessageLength").max,
        ),
        "maximum_message_rate_per_second": (
            bounds("RoomMaxMessageRatePerSecond").min,
            bounds("RoomMaxMessageRatePerSecond").max,
        ),
    } == batch_module.WHOLE_NUMBERS


async def test_a_fixed_line_rerun_replaces_its_failure_and_a_torn_line_is_dropped(
    facade: Facade, tmp_path: Path
) -> None:
    server = f"127.0.0.1:{facade.service.port}"
    requests = tmp_path / "rooms.csv"
    requests.write_text("correlation_id,name,maximum_message_length\na,alpha,\nb,beta,abc\n")
    output = tmp_path / "results.jsonl"
    code, _, _ = await batch_create(str(requests), "--server", server, "--output", str(output))
    assert code == BatchCreate.ITEMS_FAILED
    # A crash cut a third record short, after an earlier run left a duplicate.
    with output.open("a") as f:
        f.write(json.dumps({"correlation_id": "b", "error": {"code": "UNAVAILABLE"}}) + "\n")
        f.write('{"correlation_id": "c", "ro')
    requests.write_text(
        "correlation_id,name,maximum_message_length\na,alpha,\nb,beta,100\nc,gamma,\n"
    )
    code, _, err = await batch_create(str(requests), "--server", server, "--output", str(output))
    assert code == BatchCreate.OK, err
    assert "created 2, failed 0, skipped 1 already created" in err
    assert "dropped 1 line cut short" in err
    lines = [json.loads(line) for line in output.read_text().splitlines()]  # every line whole
    assert batch_module.NAMESPACE_KEY in lines[0]
    assert [r["correlation_id"] for r in lines[1:]] == ["a", "b", "c"]
    assert all("room" in r for r in lines[1:])
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".compacting")]  # noqa: ASYNC240 - a test's own folder, listed once
    assert sorted(r["name"] for r in facade.emulator.state.rooms.values()) == [
        "alpha",
        "beta",
        "gamma",
    ]


async def test_a_rewrite_cut_short_by_a_crash_leaves_the_output_whole(
    facade: Facade, tmp_path: Path
) -> None:
    server = f"127.0.0.1:{facade.service.port}"
    requests = tmp_path / "rooms.jsonl"
    requests.write_text('{"correlation_id": "a", "name": "a"}\n{"correlation_id": "b", "n": 1}\n')
    output = tmp_path / "results.jsonl"
    code, _, _ = await batch_create(str(requests), "--server", server, "--output", str(output))
    assert code == BatchCreate.ITEMS_FAILED
    before = output.read_text()
    # A run killed while it rewrote the file leaves its half-written new file beside it.
    stale = tmp_path / "results.jsonl.compacting"
    stale.write_text('{"correlation_id": "a", "ro')
    code, _, _ = await batch_create(str(requests), "--server", server, "--output", str(output))
    assert code == BatchCreate.ITEMS_FAILED
    assert output.read_text() == before  # b failed again: its record replaced, the same
    assert not stale.exists()
    requests.write_text('{"correlation_id": "a", "name": "a"}\n{"correlation_id": "b"}\n')
    code, _, err = await batch_create(str(requests), "--server", server, "--output", str(output))
    assert code == BatchCreate.OK, err
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert lines[0] == json.loads(before.splitlines()[0])  # the same namespace
    assert [(r["correlation_id"], "room" in r) for r in lines[1:]] == [("a", True), ("b", True)]
    assert len(facade.emulator.state.rooms) == 2


async def test_a_second_run_on_one_output_is_refused(tmp_path: Path) -> None:
    requests = tmp_path / "rooms.jsonl"
    requests.write_text('{"name": "x"}\n')
    output = tmp_path / "results.jsonl"
    output.write_text("")
    with output.open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, _, err = await batch_create(
            str(requests), "--server", "127.0.0.1:1", "--output", str(output)
        )
    assert code == BatchCreate.USAGE
    assert f"{output}: another batch-create is writing to it" in err


async def test_each_exit_code_is_what_its_documented_case_returns(
    facade: Facade, tmp_path: Path
) -> None:
    server = f"127.0.0.1:{facade.service.port}"
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text('{"correlation_id": "x", "name": "ok"}\n{"correlation_id": "y", "n": 1}\n')
    no_header = tmp_path / "noheader.csv"
    no_header.write_text("n1,noheader-one\n")
    cases = [
        (bad_line, BatchCreate.ITEMS_FAILED, "a line that is not a request"),
        (no_header, BatchCreate.USAGE, "a CSV header"),
        (tmp_path / "missing.jsonl", BatchCreate.USAGE, "an input file"),
    ]
    for path, expected, documented in cases:
        code, _, _ = await batch_create(str(path), "--server", server)
        assert code == expected, path
        assert documented in expected.meaning
    assert "bad input" not in BatchCreate.USAGE.meaning  # a bad line is not exit 2
