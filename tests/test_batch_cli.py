"""ivschat-grpc batch-create, run as a process against a real server."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

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
    assert len(results(output)) == 25


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
