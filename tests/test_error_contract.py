"""The error contract as data: one table, one enum, and the docs written from them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from ivschat.v1 import room_service_pb2 as pb
from ivschat_grpc import errors
from ivschat_grpc.aws.validation import service_model
from ivschat_grpc.core.outcomes import Outcome, Ran
from ivschat_grpc.emulator import FaultRule
from ivschat_grpc.errors.table import CONTRACT, Detail, Refused

from tests.support.facade import Facade
from tests.support.richstatus import detail, status_of
from tools import docs_tables

ROOT = Path(__file__).resolve().parent.parent


def test_every_error_the_model_names_has_an_outcome_and_a_row() -> None:
    modeled = {n for n, s in service_model()["shapes"].items() if s.get("exception")}
    assert modeled  # the model is read, not an empty stand-in
    for name in modeled:
        outcome = Outcome.of(name)
        assert outcome is not None, name
        assert outcome.from_aws, name
        assert outcome in CONTRACT, name


def test_every_outcome_and_refusal_has_exactly_one_row() -> None:
    assert set(CONTRACT) == set(Outcome) | set(Refused)


@pytest.mark.parametrize("outcome", list(Outcome), ids=str)
def test_a_row_never_says_retry_for_what_aws_may_have_run(outcome: Outcome) -> None:
    row = CONTRACT[outcome]
    if outcome.ran is Ran.MAYBE:
        assert row.may_exist
        assert row.detail is not Detail.RETRY
        assert row.code is not grpc.StatusCode.UNAVAILABLE or outcome is Outcome.UNFINISHED
    if row.may_exist:
        assert outcome.ran is Ran.MAYBE
    if outcome.resend:
        assert outcome.ran is Ran.NO


def test_each_aws_error_code_is_spelled_in_one_python_table() -> None:
    codes = [o.value for o in Outcome if o.from_aws]
    for code in codes:
        found = subprocess.run(  # noqa: S603 - a fixed argv, no shell
            ["git", "grep", "-l", "-w", "-F", code, "--", "server/*.py"],  # noqa: S607 - git from PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        assert found == ["server/ivschat_grpc/core/outcomes.py"], (code, found)


def test_the_tables_in_docs_are_what_the_code_says() -> None:
    assert docs_tables.stale() == []


async def test_messages_name_the_operation_that_failed(facade: Facade) -> None:
    facade.emulator.state.faults.add(FaultRule(error=Outcome.ACCESS_DENIED))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(name="denied"), timeout=10)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "CreateRoom" in (caught.value.details() or "")
    info = detail(status_of(caught.value), error_details_pb2.ErrorInfo)
    assert info.reason == "AccessDeniedException"
    assert info.domain == "ivschat.amazonaws.com"


async def test_a_reused_request_id_is_the_facades_refusal_with_its_field(facade: Facade) -> None:
    request_id = "0b9d6f52-3c5e-4c1e-9a57-0a8c2e4f6b10"
    await facade.stub.CreateRoom(pb.CreateRoomRequest(name="a", request_id=request_id), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await facade.stub.CreateRoom(
            pb.CreateRoomRequest(name="b", request_id=request_id), timeout=10
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    info = detail(status_of(caught.value), error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("REQUEST_ID_REUSED", errors.FACADE_DOMAIN)
    assert "aws_error_code" not in info.metadata  # nothing AWS said
    bad = detail(status_of(caught.value), error_details_pb2.BadRequest)
    assert [v.field for v in bad.field_violations] == ["request_id"]
