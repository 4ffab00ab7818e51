"""ivschat-grpc create-room and the Python client helper, end to end."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc.client import RoomClient, RoomServiceError
from ivschat_grpc.core.creator import RESERVED_TAG
from ivschat_grpc.emulator import Emulator, FaultRule
from ivschat_grpc.runtime.assembly import Service

from tests.support.env import use_emulator_credentials
from tests.support.facade import LOGGING_ARNS, Facade, facade_settings, serving
from tests.support.processes import run_command

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:review"


async def create_room(*args: str) -> tuple[int, str, str]:
    return await run_command("create-room", *args)


def at(service: Service) -> tuple[str, str]:
    return ("--server", f"127.0.0.1:{service.port}")


async def test_every_field_and_json_output(facade: Facade) -> None:
    code, out, err = await create_room(
        *at(facade.service),
        "--name",
        "cli-room",
        "--max-message-length",
        "120",
        "--max-message-rate",
        "7",
        "--review-handler-uri",
        LAMBDA,
        "--fallback-result",
        "deny",
        "--tag",
        "team=red",
        "--tag",
        "tier=gold",
        "--logging-configuration",
        LOGGING_ARNS[0],
    )
    assert code == 0, err
    room = json.loads(out)
    assert room["name"] == "cli-room"
    assert room["maximum_message_length"] == 120
    assert room["maximum_message_rate_per_second"] == 7
    assert room["message_review_handler"] == {
        "uri": LAMBDA,
        "fallback_result": "FALLBACK_RESULT_DENY",
    }
    request_id = room["tags"].pop(RESERVED_TAG)
    assert room["tags"] == {"team": "red", "tier": "gold"}
    assert f"request_id {request_id} " in err  # printed, so a person can retry with it
    assert room["logging_configuration_identifiers"] == [LOGGING_ARNS[0]]
    assert room["id"] in facade.emulator.state.rooms


async def test_field_violations_are_shown_with_a_distinct_exit_code(facade: Facade) -> None:
    code, out, err = await create_room(
        *at(facade.service),
        "--name",
        "no spaces",
        "--max-message-length",
        "0",
        "--tag",
        "aws:owner=me",
    )
    assert code == 3
    assert out == ""
    assert "error: INVALID_ARGUMENT:" in err
    assert "reason: INVALID_REQUEST" in err
    assert "  name: must be a match of the pattern" in err
    assert "  maximum_message_length: must be from 1 to 500, not 0" in err
    assert '  tags["aws:owner"]: key must not start with "aws:"' in err
    assert facade.emulator.state.recorded() == []


async def test_exit_codes_by_class_of_failure(facade: Facade) -> None:
    facade.emulator.state.faults.add(
        FaultRule(name="maybe", error="InternalServerException", times=1),
        FaultRule(name="gone", error="ResourceNotFoundException", times=1),
    )
    # Without a request_id nothing can resolve a 500: the room may exist.
    assert (await create_room(*at(facade.service), "--name", "maybe", "--no-request-id"))[0] == 7
    code, _, err = await create_room(*at(facade.service), "--name", "gone")
    assert code == 6
    assert "reason: ResourceNotFoundException" in err
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{closed.getsockname()[1]}"
        code, _, err = await create_room("--server", target, "--timeout", "5")
    assert code == 5
    assert "UNAVAILABLE" in err
    assert (await create_room(*at(facade.service), "--tag", "novalue"))[0] == 2


@asynccontextmanager
async def secured(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA
) -> AsyncIterator[Service]:
    leaf = ca.issue_cert("localhost")
    use_emulator_credentials(monkeypatch)
    settings = facade_settings(
        emulator,
        grace_s=0.5,
        create_rate=None,
        tls_cert=b"".join(p.bytes() for p in leaf.cert_chain_pems),
        tls_key=leaf.private_key_pem.bytes(),
        auth_tokens=("cli-token",),
    )
    async with serving(settings) as (service, _):
        yield service


async def test_tls_and_tokens_match_the_server(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca_file, token_file = tmp_path / "ca.pem", tmp_path / "token"
    ca.cert_pem.write_to_path(str(ca_file))
    token_file.write_text("cli-token\n")
    tls = ("--tls-ca", str(ca_file), "--tls-server-name", "localhost")
    async with secured(emulator, monkeypatch, ca) as service:
        code, _, err = await create_room(*at(service), *tls)
        assert code == 4
        assert "UNAUTHENTICATED" in err
        # The server's message speaks of headers; the command names its own ways.
        assert "--token-file FILE, or in IVSCHAT_GRPC_TOKEN" in err
        code, out, err = await create_room(*at(service), *tls, "--token-file", str(token_file))
        assert code == 0, err
        monkeypatch.setenv("IVSCHAT_GRPC_TOKEN", "cli-token")
        code, out, _ = await create_room(*at(service), *tls, "--name", "by-env")
        assert code == 0
        assert json.loads(out)["name"] == "by-env"
    assert len(emulator.state.rooms) == 2


async def test_python_client_helper(facade: Facade) -> None:
    target = f"127.0.0.1:{facade.service.port}"
    async with RoomClient.connect(target) as rooms:
        room = await rooms.create_room(pb.CreateRoomRequest(name="helper"), deadline_s=10)
        assert room.name == "helper"
        with pytest.raises(RoomServiceError) as info:
            await rooms.create_room(pb.CreateRoomRequest(name="bad!"), deadline_s=10)
        assert info.value.reason == "INVALID_REQUEST"
        assert set(info.value.field_violations) == {"name"}
        items: list[Any] = [
            pb.BatchCreateRoomsRequest(correlation_id=f"h{i}", room=pb.CreateRoomRequest())
            for i in range(3)
        ]
        results = [r async for r in rooms.batch_create(iter(items), deadline_s=10)]
    assert sorted(r.correlation_id for r in results) == ["h0", "h1", "h2"]
