"""ChatService end to end: a real server, aioboto3 and the local endpoint."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from ivschat.v1 import chat_service_pb2 as pb
from ivschat.v1 import chat_service_pb2_grpc as pb_grpc
from ivschat.v1 import room_service_pb2 as room_pb
from ivschat.v1 import room_service_pb2_grpc as room_pb_grpc
from ivschat_grpc.emulator import Emulator, EmulatorSettings, FaultRule

from tests.support.env import use_emulator_credentials
from tests.support.facade import Facade, MakeFacade, facade_settings, facade_with, serving
from tests.support.processes import service
from tests.support.richstatus import error_info, field_violations, trailer
from tests.support.waiting import until

MISSING = "arn:aws:ivschat:us-east-1:123456789012:room/AbCdEfGhIjKl"
SEND = pb.CHAT_TOKEN_CAPABILITY_SEND_MESSAGE
DISCONNECT = pb.CHAT_TOKEN_CAPABILITY_DISCONNECT_USER
DELETE = pb.CHAT_TOKEN_CAPABILITY_DELETE_MESSAGE


def chat(facade: Facade) -> pb_grpc.ChatServiceAsyncStub:
    return pb_grpc.ChatServiceStub(facade.channel)


async def room_of(facade: Facade) -> str:
    made = await facade.stub.CreateRoom(room_pb.CreateRoomRequest(name="chat"), timeout=10)
    return made.room.arn


@pytest.fixture
async def arn(facade: Facade) -> str:
    return await room_of(facade)


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


# --- each RPC, answered -----------------------------------------------------------


async def test_create_chat_token_returns_a_token_whose_times_follow_the_session(
    facade: Facade, arn: str
) -> None:
    before = datetime.now(UTC)
    call = chat(facade).CreateChatToken(
        pb.CreateChatTokenRequest(
            room_arn=arn,
            user_id="u-1",
            capabilities=[SEND, DISCONNECT, DELETE],
            session_duration_minutes=17,
            attributes={"team": "red"},
        ),
        timeout=10,
    )
    token = await call
    assert token.token
    assert dict(await call.trailing_metadata() or ())["aws-request-id"]
    session_end = token.session_expiration_time.ToDatetime(tzinfo=UTC)
    assert before + timedelta(minutes=17) - timedelta(seconds=1) <= session_end
    assert session_end <= datetime.now(UTC) + timedelta(minutes=17)
    assert token.token_expiration_time.ToDatetime(tzinfo=UTC) > before
    (made,) = facade.emulator.state.chat_actions("CreateChatToken")
    assert made.fields["capabilities"] == ["SEND_MESSAGE", "DISCONNECT_USER", "DELETE_MESSAGE"]
    assert made.fields["sessionDurationInMinutes"] == 17


async def test_create_chat_token_leaves_the_session_to_aws_when_unset(
    facade: Facade, arn: str
) -> None:
    await chat(facade).CreateChatToken(
        pb.CreateChatTokenRequest(room_arn=arn, user_id="u"), timeout=10
    )
    (sent,) = facade.emulator.state.recorded("CreateChatToken")
    assert sent.body == {"roomIdentifier": arn, "userId": "u"}


async def test_send_event_sends_one_event_and_returns_its_id(facade: Facade, arn: str) -> None:
    sent = await chat(facade).SendEvent(
        pb.SendEventRequest(room_arn=arn, event_name="goal", attributes={"score": "1-0"}),
        timeout=10,
    )
    (event,) = facade.emulator.state.chat_actions("SendEvent")
    assert sent.id == event.fields["id"]
    assert event.fields["attributes"] == {"score": "1-0"}


async def test_disconnect_user_and_delete_message_reach_the_room(facade: Facade, arn: str) -> None:
    await chat(facade).DisconnectUser(
        pb.DisconnectUserRequest(room_arn=arn, user_id="u-2", reason="spam"), timeout=10
    )
    deleted = await chat(facade).DeleteMessage(
        pb.DeleteMessageRequest(room_arn=arn, id="AbCdEfGhIjKl", reason="spam"), timeout=10
    )
    state = facade.emulator.state
    assert [a.fields for a in state.chat_actions("DisconnectUser")] == [
        {"userId": "u-2", "reason": "spam"}
    ]
    (deletion,) = state.chat_actions("DeleteMessage")
    assert deleted.id == deletion.fields["id"]
    assert deletion.fields["messageId"] == "AbCdEfGhIjKl"


# --- each constraint at its boundaries ---------------------------------------------

ARN = MISSING  # valid in form: only the facade's checks are at stake below


def token_request(**fields: Any) -> pb.CreateChatTokenRequest:
    return pb.CreateChatTokenRequest(**{"room_arn": ARN, "user_id": "u", **fields})


BAD: list[tuple[str, str, Any, str]] = [
    ("CreateChatToken", "user_id", token_request(user_id=""), "must be 1 to 128"),
    ("CreateChatToken", "user_id", token_request(user_id="u" * 129), "must be 1 to 128"),
    (
        "CreateChatToken",
        "session_duration_minutes",
        token_request(session_duration_minutes=0),
        "from 1 to 180",
    ),
    (
        "CreateChatToken",
        "session_duration_minutes",
        token_request(session_duration_minutes=181),
        "from 1 to 180",
    ),
    (
        "CreateChatToken",
        "attributes",
        token_request(attributes={"k": "v" * 1024}),  # 1025 bytes
        "at most 1024 bytes",
    ),
    (
        "CreateChatToken",
        "capabilities[1]",
        token_request(capabilities=[SEND, pb.CHAT_TOKEN_CAPABILITY_UNSPECIFIED]),
        "must not be CHAT_TOKEN_CAPABILITY_UNSPECIFIED",
    ),
    (
        "CreateChatToken",
        "capabilities[1]",
        token_request(capabilities=[SEND, SEND]),
        "repeats capabilities[0]",
    ),
    ("CreateChatToken", "capabilities[0]", token_request(capabilities=[9]), "must be one of"),
    ("SendEvent", "event_name", pb.SendEventRequest(room_arn=ARN, event_name=""), "1 to 100"),
    (
        "SendEvent",
        "event_name",
        pb.SendEventRequest(room_arn=ARN, event_name="e" * 101),
        "1 to 100",
    ),
    (
        "SendEvent",
        "attributes",
        pb.SendEventRequest(room_arn=ARN, event_name="e", attributes={"é": "v" * 1023}),
        "at most 1024 bytes",
    ),
    (
        "SendEvent",
        "request_id",
        pb.SendEventRequest(room_arn=ARN, event_name="e", request_id="not-a-uuid"),
        "must be a UUID",
    ),
    (
        "DisconnectUser",
        "user_id",
        pb.DisconnectUserRequest(room_arn=ARN, user_id="u" * 129),
        "1 to 128",
    ),
    (
        "DisconnectUser",
        "reason",
        pb.DisconnectUserRequest(room_arn=ARN, user_id="u", reason=""),
        "1 to 256",
    ),
    (
        "DisconnectUser",
        "reason",
        pb.DisconnectUserRequest(room_arn=ARN, user_id="u", reason="r" * 257),
        "1 to 256",
    ),
    ("DeleteMessage", "id", pb.DeleteMessageRequest(room_arn=ARN, id="A" * 11), "12 to 12"),
    ("DeleteMessage", "id", pb.DeleteMessageRequest(room_arn=ARN, id="A" * 13), "12 to 12"),
    (
        "DeleteMessage",
        "id",
        pb.DeleteMessageRequest(room_arn=ARN, id="AbCdEf-hIjKl"),
        "must be a match of the pattern",
    ),
    (
        "DeleteMessage",
        "reason",
        pb.DeleteMessageRequest(room_arn=ARN, id="A" * 12, reason="r" * 257),
        "1 to 256",
    ),
]


@pytest.mark.parametrize(
    ("method", "field", "request_", "says"),
    BAD,
    ids=[f"{m}-{f}-{i}" for i, (m, f, *_) in enumerate(BAD)],
)
async def test_a_value_past_a_boundary_is_named_and_never_reaches_aws(
    facade: Facade, method: str, field: str, request_: Any, says: str
) -> None:
    failed = await refused(getattr(chat(facade), method)(request_, timeout=10))
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(failed)
    assert list(violations) == [field]
    assert says in violations[field]
    assert facade.emulator.state.recorded(method) == []


GOOD: list[tuple[str, Any]] = [
    ("CreateChatToken", token_request(user_id="u")),
    ("CreateChatToken", token_request(user_id="u" * 128)),
    ("CreateChatToken", token_request(session_duration_minutes=1)),
    ("CreateChatToken", token_request(session_duration_minutes=180)),
    ("CreateChatToken", token_request(attributes={"k": "v" * 1023})),  # 1024 bytes
    ("SendEvent", pb.SendEventRequest(room_arn=ARN, event_name="e")),
    ("SendEvent", pb.SendEventRequest(room_arn=ARN, event_name="e" * 100)),
    (
        "SendEvent",
        pb.SendEventRequest(room_arn=ARN, event_name="e", attributes={"é": "v" * 1022}),
    ),
    ("DisconnectUser", pb.DisconnectUserRequest(room_arn=ARN, user_id="u" * 128, reason="r")),
    ("DisconnectUser", pb.DisconnectUserRequest(room_arn=ARN, user_id="u", reason="r" * 256)),
    ("DeleteMessage", pb.DeleteMessageRequest(room_arn=ARN, id="A" * 12, reason="r" * 256)),
]


@pytest.mark.parametrize(
    ("method", "request_"), GOOD, ids=[f"{m}-{i}" for i, (m, _) in enumerate(GOOD)]
)
async def test_a_value_at_a_boundary_reaches_aws(
    facade: Facade, method: str, request_: Any
) -> None:
    room = await room_of(facade)
    request_.room_arn = room
    await getattr(chat(facade), method)(request_, timeout=10)
    assert [r.status for r in facade.emulator.state.recorded(method)] == [200]


REQUESTS: dict[str, Callable[[str], Any]] = {
    "CreateChatToken": lambda arn: token_request(room_arn=arn),
    "SendEvent": lambda arn: pb.SendEventRequest(room_arn=arn, event_name="e"),
    "DisconnectUser": lambda arn: pb.DisconnectUserRequest(room_arn=arn, user_id="u"),
    "DeleteMessage": lambda arn: pb.DeleteMessageRequest(room_arn=arn, id="A" * 12),
}


@pytest.mark.parametrize("method", list(REQUESTS))
async def test_a_bare_room_id_is_refused_with_the_arn_form_in_the_message(
    facade: Facade, method: str
) -> None:
    failed = await refused(
        getattr(chat(facade), method)(REQUESTS[method]("AbCdEfGhIjKl"), timeout=10)
    )
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(failed)
    assert list(violations) == ["room_arn"]
    assert "arn:aws:ivschat:<region>:<account>:room/<id>" in violations["room_arn"]
    assert facade.emulator.state.recorded(method) == []


@pytest.mark.parametrize("method", list(REQUESTS))
async def test_a_bad_room_arn_is_refused(facade: Facade, method: str) -> None:
    bad = "arn:aws:ivschat:us-east-1:123456789012:room/" + "a" * 100
    failed = await refused(getattr(chat(facade), method)(REQUESTS[method](bad), timeout=10))
    assert list(field_violations(failed)) == ["room_arn"]
    assert facade.emulator.state.recorded(method) == []


async def test_get_room_shows_the_arn_form_for_a_bare_id_too(facade: Facade) -> None:
    failed = await refused(
        facade.stub.GetRoom(room_pb.GetRoomRequest(arn="AbCdEfGhIjKl"), timeout=10)
    )
    assert "arn:aws:ivschat:<region>:<account>:room/<id>" in field_violations(failed)["arn"]


async def test_every_violation_comes_at_once(facade: Facade) -> None:
    request = pb.CreateChatTokenRequest(
        room_arn="AbCdEfGhIjKl",
        user_id="",
        session_duration_minutes=0,
        attributes={"k": "v" * 2000},
    )
    failed = await refused(chat(facade).CreateChatToken(request, timeout=10))
    assert set(field_violations(failed)) == {
        "room_arn",
        "user_id",
        "session_duration_minutes",
        "attributes",
    }


# --- each modeled error ------------------------------------------------------------


@pytest.mark.parametrize("method", list(REQUESTS))
async def test_a_missing_room_is_not_found_naming_the_operation(
    facade: Facade, method: str
) -> None:
    failed = await refused(getattr(chat(facade), method)(REQUESTS[method](MISSING), timeout=10))
    assert failed.code() is grpc.StatusCode.NOT_FOUND
    assert error_info(failed).reason == "ResourceNotFoundException"
    assert method in (failed.details() or "")
    assert trailer(failed, "aws-request-id")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("AccessDeniedException", grpc.StatusCode.PERMISSION_DENIED),
        ("PendingVerification", grpc.StatusCode.FAILED_PRECONDITION),
        ("ValidationException", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
@pytest.mark.parametrize("method", list(REQUESTS))
async def test_each_modeled_error_goes_through_the_table(
    facade: Facade, arn: str, method: str, error: str, code: grpc.StatusCode
) -> None:
    facade.emulator.state.faults.add(FaultRule(operation=method, error=error))
    failed = await refused(getattr(chat(facade), method)(REQUESTS[method](arn), timeout=10))
    assert failed.code() is code
    assert error_info(failed).reason == error
    assert method in (failed.details() or "")
    assert len(facade.emulator.state.recorded(method)) == 1  # AWS answered: not resent


@pytest.mark.parametrize("method", list(REQUESTS))
async def test_throttles_are_retried_within_the_deadline(
    facade: Facade, arn: str, method: str
) -> None:
    facade.emulator.state.faults.add(
        FaultRule(operation=method, error="ThrottlingException", times=2)
    )
    await getattr(chat(facade), method)(REQUESTS[method](arn), timeout=10)
    assert [r.status for r in facade.emulator.state.recorded(method)] == [429, 429, 200]


# --- resends: all but SendEvent's ambiguity ---------------------------------------


@pytest.mark.parametrize("method", ["CreateChatToken", "DisconnectUser", "DeleteMessage"])
async def test_an_ambiguous_outcome_is_resent_for_what_is_safe_to_repeat(
    facade: Facade, arn: str, method: str
) -> None:
    facade.emulator.state.faults.add(
        FaultRule(operation=method, error="InternalServerException", create=True, times=1)
    )
    await getattr(chat(facade), method)(REQUESTS[method](arn), timeout=10)
    assert [r.status for r in facade.emulator.state.recorded(method)] == [500, 200]


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(operation="SendEvent", error="InternalServerException", create=True),
        FaultRule(operation="SendEvent", drop=True, create=True),
    ],
    ids=["500", "drop"],
)
@pytest.mark.parametrize("with_request_id", [False, True])
async def test_send_event_is_never_resent_after_an_ambiguous_outcome(
    facade: Facade, arn: str, rule: FaultRule, with_request_id: bool
) -> None:
    facade.emulator.state.faults.add(rule)
    request = pb.SendEventRequest(room_arn=arn, event_name="goal")
    if with_request_id:
        request.request_id = str(uuid.uuid4())
    failed = await refused(chat(facade).SendEvent(request, timeout=10))
    assert failed.code() is grpc.StatusCode.INTERNAL
    info = error_info(failed)
    assert info.metadata["event_may_have_been_sent"] == "true"
    assert "room_may_exist" not in info.metadata
    assert "the event may have been sent" in (failed.details() or "")
    assert len(facade.emulator.state.recorded("SendEvent")) == 1
    assert len(facade.emulator.state.chat_actions("SendEvent")) == 1
    if with_request_id:
        # Not sent again by a retry either: its outcome stays unknown.
        facade.emulator.state.faults.clear()
        again = await refused(chat(facade).SendEvent(request, timeout=10))
        assert again.code() is grpc.StatusCode.INTERNAL
        assert error_info(again).reason == "EARLIER_OUTCOME_UNKNOWN"
        assert error_info(again).metadata["event_may_have_been_sent"] == "true"
        assert len(facade.emulator.state.recorded("SendEvent")) == 1


# --- SendEvent's request_id --------------------------------------------------------


async def test_a_repeated_request_id_returns_the_first_event_without_sending(
    facade: Facade, arn: str
) -> None:
    request = pb.SendEventRequest(
        room_arn=arn, event_name="goal", attributes={"k": "v"}, request_id=str(uuid.uuid4())
    )
    first = await chat(facade).SendEvent(request, timeout=10)
    second = await chat(facade).SendEvent(request, timeout=10)
    assert first.id == second.id
    assert len(facade.emulator.state.chat_actions("SendEvent")) == 1
    assert len(facade.emulator.state.recorded("SendEvent")) == 1


async def test_a_request_id_with_a_different_request_is_invalid_argument(
    facade: Facade, arn: str
) -> None:
    request_id = str(uuid.uuid4())
    await chat(facade).SendEvent(
        pb.SendEventRequest(
            room_arn=arn, event_name="goal", attributes={"k": "a"}, request_id=request_id
        ),
        timeout=10,
    )
    failed = await refused(
        chat(facade).SendEvent(
            pb.SendEventRequest(
                room_arn=arn, event_name="goal", attributes={"k": "b"}, request_id=request_id
            ),
            timeout=10,
        )
    )
    assert failed.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(failed).reason == "REQUEST_ID_REUSED"
    assert list(field_violations(failed)) == ["request_id"]
    assert len(facade.emulator.state.chat_actions("SendEvent")) == 1


async def test_a_request_id_at_work_is_refused_as_create_room_refuses_it(
    facade: Facade, arn: str
) -> None:
    facade.emulator.state.faults.add(FaultRule(operation="SendEvent", latency_ms=1500, times=1))
    request = pb.SendEventRequest(room_arn=arn, event_name="goal", request_id=str(uuid.uuid4()))
    first = asyncio.ensure_future(chat(facade).SendEvent(request, timeout=10))
    await until(lambda: facade.emulator.state.recorded("SendEvent"))
    failed = await refused(chat(facade).SendEvent(request, timeout=0.3))
    assert failed.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_info(failed).reason == "REQUEST_IN_PROGRESS"
    sent = await first
    # Once the first is done, the repeat gets its event.
    assert (await chat(facade).SendEvent(request, timeout=10)).id == sent.id
    assert len(facade.emulator.state.chat_actions("SendEvent")) == 1


async def test_a_request_id_whose_first_call_sent_nothing_sends_on_retry(
    facade: Facade, arn: str
) -> None:
    # Throttled past the deadline: never sent, so the retry goes ahead.
    facade.emulator.state.faults.add(FaultRule(operation="SendEvent", error="ThrottlingException"))
    request = pb.SendEventRequest(room_arn=arn, event_name="goal", request_id=str(uuid.uuid4()))
    failed = await refused(chat(facade).SendEvent(request, timeout=2))
    assert "event_may_have_been_sent" not in error_info(failed).metadata
    facade.emulator.state.faults.clear()
    await chat(facade).SendEvent(request, timeout=10)
    assert len(facade.emulator.state.chat_actions("SendEvent")) == 1


async def test_a_request_id_survives_a_restart_on_the_same_state_dir(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    settings = {"state_dir": tmp_path / "state"}
    async with facade_with(emulator, monkeypatch, **settings) as one:
        arn = await room_of(one)
        request = pb.SendEventRequest(room_arn=arn, event_name="goal", request_id=str(uuid.uuid4()))
        first = await chat(one).SendEvent(request, timeout=10)
    async with facade_with(emulator, monkeypatch, **settings) as two:
        assert (await chat(two).SendEvent(request, timeout=10)).id == first.id
    assert len(emulator.state.chat_actions("SendEvent")) == 1


async def test_a_request_id_whose_process_died_mid_call_is_never_sent_again(
    endpoint: Emulator, tmp_path: Path
) -> None:
    state = ("--state-dir", str(tmp_path / "st"))
    room = await endpoint_room(endpoint)
    request = pb.SendEventRequest(room_arn=room, event_name="goal", request_id=str(uuid.uuid4()))
    endpoint.state.faults.add(FaultRule(operation="SendEvent", latency_ms=2000, times=1))
    async with service(*state) as (proc, address):
        channel = grpc.aio.insecure_channel(address)
        call = pb_grpc.ChatServiceStub(channel).SendEvent(request, timeout=30)
        await until(lambda: endpoint.state.recorded("SendEvent"))
        proc.send_signal(signal.SIGKILL)
        with pytest.raises(grpc.aio.AioRpcError):
            await call
        await channel.close()
    await until(lambda: endpoint.state.chat_actions("SendEvent"))  # AWS sent it all the same
    async with service(*state) as (_, address):
        channel = grpc.aio.insecure_channel(address)
        # The dead owner's claim lapses within the claim timeout; the deadline covers it.
        failed = await refused(pb_grpc.ChatServiceStub(channel).SendEvent(request, timeout=20))
        await channel.close()
    assert failed.code() is grpc.StatusCode.INTERNAL
    assert error_info(failed).reason == "EARLIER_OUTCOME_UNKNOWN"
    assert error_info(failed).metadata["event_may_have_been_sent"] == "true"
    assert len(endpoint.state.recorded("SendEvent")) == 1


async def endpoint_room(emu: Emulator) -> str:
    """A room made at emu directly, as AWS's console would."""
    return str(emu.state.create_room({"name": "direct"})["arn"])


# --- the drain ---------------------------------------------------------------------


@pytest.mark.parametrize("with_request_id", [False, True])
async def test_the_drain_answers_an_in_flight_send_event_may_have_been_sent(
    make_facade: MakeFacade, with_request_id: bool
) -> None:
    async with make_facade(grace_s=0.5) as facade:
        arn = await room_of(facade)
        facade.emulator.state.faults.add(FaultRule(operation="SendEvent", latency_ms=5000))
        request = pb.SendEventRequest(room_arn=arn, event_name="goal")
        if with_request_id:
            request.request_id = str(uuid.uuid4())
        call = asyncio.ensure_future(chat(facade).SendEvent(request, timeout=30))
        await until(lambda: facade.emulator.state.recorded("SendEvent"))
        await facade.service.drain(0.5)
        failed = await refused(call)
    assert failed.code() is grpc.StatusCode.INTERNAL
    info = error_info(failed)
    assert info.reason == "SHUTDOWN_IN_FLIGHT"
    assert info.metadata["event_may_have_been_sent"] == "true"


# --- the quotas --------------------------------------------------------------------

CHAT_QUOTA = 20.0  # lowered from AWS's 100 and 200 to keep the run short


CHAT_OPERATIONS = ("CreateChatToken", "SendEvent", "DisconnectUser", "DeleteMessage")


@asynccontextmanager
async def quota_endpoint() -> AsyncIterator[Emulator]:
    """An endpoint that throttles each chat operation past CHAT_QUOTA, as AWS does past its own."""
    quotas = dict.fromkeys(CHAT_OPERATIONS, CHAT_QUOTA)
    async with Emulator(EmulatorSettings(create_room_rate=None, quotas=quotas)) as emu:
        yield emu


async def burst(stubs: list[pb_grpc.ChatServiceAsyncStub], arn: str, each: int) -> None:
    """each calls of every chat operation at once, spread over stubs."""
    calls = [
        getattr(stubs[i % len(stubs)], method)(REQUESTS[method](arn), timeout=60)
        for method in CHAT_OPERATIONS
        for i in range(each)
    ]
    await asyncio.gather(*calls)


def throttled(emu: Emulator) -> list[str]:
    return [r.operation for r in emu.state.requests if r.status == 429]


async def test_each_chat_bucket_holds_its_quota_with_no_throttles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rates = dict.fromkeys(CHAT_OPERATIONS, CHAT_QUOTA)
    async with (
        quota_endpoint() as emu,
        facade_with(emu, monkeypatch, operation_rates=rates) as facade,
    ):
        await burst([chat(facade)], await room_of(facade), int(2 * CHAT_QUOTA))
        sent = [r for r in emu.state.requests if r.operation in CHAT_OPERATIONS]
    assert len(sent) == 4 * 2 * CHAT_QUOTA
    assert throttled(emu) == []


async def test_three_replicas_on_one_redis_share_each_chat_bucket(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    use_emulator_credentials(monkeypatch)
    rates = dict.fromkeys(CHAT_OPERATIONS, CHAT_QUOTA)
    async with AsyncExitStack() as stack:
        emu = await stack.enter_async_context(quota_endpoint())
        stubs, rooms = [], []
        for _ in range(3):
            settings = facade_settings(
                emu, grace_s=1.0, create_rate=None, redis_url=redis_url, operation_rates=rates
            )
            _, channel = await stack.enter_async_context(serving(settings))
            stubs.append(pb_grpc.ChatServiceStub(channel))
            rooms.append(room_pb_grpc.RoomServiceStub(channel))
        made = await rooms[0].CreateRoom(room_pb.CreateRoomRequest(name="shared"), timeout=10)
        await burst(stubs, made.room.arn, int(2 * CHAT_QUOTA))
    assert len([r for r in emu.state.requests if r.operation in CHAT_OPERATIONS]) == 160
    assert throttled(emu) == []
