"""A second attack on issue 16's new work: what the first (test_attack.py) did not reach.

Each test is a finding: sound where it passes as first written, or the test a
fix came with (the commit says which).
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import field_mask_pb2
from ivschat.v1 import chat_service_pb2 as pb
from ivschat.v1 import chat_service_pb2_grpc as pb_grpc
from ivschat.v1 import room_service_pb2 as room_pb
from ivschat.v1 import room_service_pb2_grpc as room_pb_grpc
from ivschat_grpc.emulator import Emulator, FaultRule

from tests.support.env import use_emulator_credentials
from tests.support.facade import Facade, MakeFacade, facade_settings, serving
from tests.support.processes import RedisServer, service
from tests.support.richstatus import error_info, field_violations
from tests.support.waiting import until

MAY_HAVE_BEEN_SENT = "event_may_have_been_sent"


@asynccontextmanager
async def chat_replicas(
    emu: Emulator, redis_url: str, count: int
) -> AsyncIterator[list[tuple[pb_grpc.ChatServiceAsyncStub, room_pb_grpc.RoomServiceAsyncStub]]]:
    """count servers on one Redis: a ChatService and a RoomService stub for each."""
    async with AsyncExitStack() as stack:
        out = []
        for _ in range(count):
            settings = facade_settings(emu, grace_s=1.0, create_rate=None, redis_url=redis_url)
            _, channel = await stack.enter_async_context(serving(settings))
            out.append((pb_grpc.ChatServiceStub(channel), room_pb_grpc.RoomServiceStub(channel)))
        yield out


def events_by_request_id(emu: Emulator) -> Counter[str]:
    """How many events reached the endpoint for each request_id (kept in attribute 'rid')."""
    return Counter(
        a.fields["attributes"].get("rid", "") for a in emu.state.chat_actions("SendEvent")
    )


def send_request(arn: str, request_id: str) -> pb.SendEventRequest:
    return pb.SendEventRequest(
        room_arn=arn, event_name="goal", attributes={"rid": request_id}, request_id=request_id
    )


# --- 1. SendEvent's request_id while Redis is killed mid-run -----------------------


async def test_send_event_request_ids_survive_killing_redis_mid_run(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    use_emulator_credentials(monkeypatch)
    async with chat_replicas(emulator, redis_server.url, 2) as two:
        made = await two[0][1].CreateRoom(room_pb.CreateRoomRequest(name="r"), timeout=10)
        arn = made.room.arn
        answered = 0
        killed = asyncio.Event()
        # (replica, request_id) -> every answer: an event id, or (code, reason, may-have-sent)
        answers: dict[tuple[int, str], list[Any]] = {}

        async def call(replica: int, request_id: str) -> None:
            nonlocal answered
            got: Any
            try:
                got = (
                    await two[replica][0].SendEvent(send_request(arn, request_id), timeout=30)
                ).id
            except grpc.aio.AioRpcError as e:
                info = error_info(e)
                got = (e.code(), info.reason, info.metadata.get(MAY_HAVE_BEEN_SENT))
            answers.setdefault((replica, request_id), []).append(got)
            answered += 1
            if answered == 40 and not killed.is_set():
                killed.set()
                await redis_server.kill()

        async def worker(replica: int, ids: list[str]) -> None:
            for request_id in ids:
                await call(replica, request_id)
                await call(replica, request_id)  # the repeat, on the same replica

        ids = [[str(uuid.uuid4()) for _ in range(40)] for _ in range(2)]
        await asyncio.gather(*(worker(r, ids[r][w::4]) for r in range(2) for w in range(4)))
        assert killed.is_set()

    assert sum(len(v) for v in answers.values()) == 160  # each call answered once
    counts = events_by_request_id(emulator)
    assert [rid for rid, n in counts.items() if n > 1] == []
    for (_, request_id), (first, repeat) in answers.items():
        for got in (first, repeat):
            if isinstance(got, tuple):
                code, _reason, may = got
                assert code is not grpc.StatusCode.UNKNOWN, got
                if counts[request_id]:
                    # An event went out: the caller must not be told to retry freely.
                    assert code is not grpc.StatusCode.UNAVAILABLE, got
                    assert may == "true", got
        if isinstance(first, str):
            assert repeat == first  # a repeat gets the first event's id


async def test_a_send_event_repeat_on_another_replica_after_redis_died_is_not_sent_again(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    use_emulator_credentials(monkeypatch)
    async with chat_replicas(emulator, redis_server.url, 2) as two:
        made = await two[0][1].CreateRoom(room_pb.CreateRoomRequest(name="r"), timeout=10)
        request = send_request(made.room.arn, str(uuid.uuid4()))
        first = await two[0][0].SendEvent(request, timeout=10)
        await redis_server.kill()
        # The replica that sent it still answers from its own copy.
        assert (await two[0][0].SendEvent(request, timeout=10)).id == first.id
        # The other holds no record of it, and Redis cannot say: it must not send.
        outcome: Any
        try:
            outcome = (await two[1][0].SendEvent(request, timeout=10)).id
        except grpc.aio.AioRpcError as e:
            outcome = (e.code(), error_info(e).reason)
        # A new request_id on it is not known to have been sent anywhere either.
        fresh: Any
        try:
            fresh = await two[1][0].SendEvent(
                send_request(made.room.arn, str(uuid.uuid4())), timeout=10
            )
        except grpc.aio.AioRpcError as e:
            fresh = (e.code(), error_info(e).reason)
    assert events_by_request_id(emulator)[request.request_id] == 1, outcome
    assert outcome == (grpc.StatusCode.UNAVAILABLE, "STATE_UNAVAILABLE")
    assert fresh == (grpc.StatusCode.UNAVAILABLE, "STATE_UNAVAILABLE")


# --- 3. SIGTERM of a real process with ChatService calls in flight -----------------


async def test_sigterm_answers_each_chat_call_in_flight_once(endpoint: Emulator) -> None:
    arn = str(endpoint.state.create_room({"name": "direct"})["arn"])
    for operation in ("CreateChatToken", "SendEvent"):
        endpoint.state.faults.add(FaultRule(operation=operation, latency_ms=5000))
    async with service("--grace", "1") as (proc, address):
        channel = grpc.aio.insecure_channel(address)
        stub = pb_grpc.ChatServiceStub(channel)
        tokens = [
            stub.CreateChatToken(
                pb.CreateChatTokenRequest(room_arn=arn, user_id=f"u{i}"), timeout=30
            )
            for i in range(3)
        ]
        events = [
            stub.SendEvent(pb.SendEventRequest(room_arn=arn, event_name="plain"), timeout=30),
            stub.SendEvent(send_request(arn, str(uuid.uuid4())), timeout=30),
        ]
        calls: list[asyncio.Future[Any]] = [
            *(asyncio.ensure_future(c) for c in tokens),
            *(asyncio.ensure_future(c) for c in events),
        ]
        await until(
            lambda: (
                len(endpoint.state.recorded("CreateChatToken")) == 3
                and len(endpoint.state.recorded("SendEvent")) == 2
            )
        )
        proc.send_signal(signal.SIGTERM)
        results = await asyncio.gather(*calls, return_exceptions=True)
        await channel.close()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    for result in results:
        assert isinstance(result, grpc.aio.AioRpcError), result
        assert result.code() is grpc.StatusCode.INTERNAL, (result.code(), result.details())
        assert error_info(result).reason == "SHUTDOWN_IN_FLIGHT"
    for result in results[3:]:
        assert isinstance(result, grpc.aio.AioRpcError)
        assert error_info(result).metadata[MAY_HAVE_BEEN_SENT] == "true"


# --- 4. one operation's bucket does not hold up another's --------------------------


async def test_a_saturated_create_room_bucket_holds_up_no_other_operation(
    make_facade: MakeFacade,
) -> None:
    async with make_facade(create_rate=5.0) as facade:
        made = await facade.stub.CreateRoom(room_pb.CreateRoomRequest(name="seen"), timeout=10)
        arn = made.room.arn
        answers: list[room_pb.BatchCreateRoomsResponse] = []

        async def batch() -> None:
            items = (
                room_pb.BatchCreateRoomsRequest(
                    correlation_id=f"b{i}", room=room_pb.CreateRoomRequest(name=f"b{i}")
                )
                for i in range(50)
            )
            async for answer in facade.stub.BatchCreateRooms(items, timeout=120):
                answers.append(answer)

        running = asyncio.ensure_future(batch())
        await until(lambda: len(answers) >= 2)  # the batch is paced at 5/s from here
        chat = pb_grpc.ChatServiceStub(facade.channel)
        got = await asyncio.gather(
            *(facade.stub.GetRoom(room_pb.GetRoomRequest(arn=arn), timeout=30) for _ in range(5)),
            *(
                chat.CreateChatToken(
                    pb.CreateChatTokenRequest(room_arn=arn, user_id="u"), timeout=30
                )
                for _ in range(5)
            ),
        )
        outstanding = 50 - len(answers)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert len(got) == 10
    # Every other call was served while the batch still waited for CreateRoom slots.
    assert outstanding > 0


# --- 5. ListRooms page tokens across a Redis outage, and after deletions -----------


async def test_a_token_from_a_replica_that_started_without_redis_is_refused_by_one_with_it(
    make_facade: MakeFacade, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path / "late.sock")  # not running yet
    try:
        async with make_facade(redis_url=redis.url) as alone:
            for name in ("a", "b"):
                await alone.stub.CreateRoom(room_pb.CreateRoomRequest(name=name), timeout=10)
            page = await alone.stub.ListRooms(room_pb.ListRoomsRequest(page_size=1), timeout=10)
            token = page.next_page_token
            await redis.start()
            async with make_facade(redis_url=redis.url) as shared:
                before = len(shared.emulator.state.recorded("ListRooms"))
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await shared.stub.ListRooms(
                        room_pb.ListRoomsRequest(page_token=token), timeout=10
                    )
                assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                violations = field_violations(caught.value)
                assert set(violations) == {"page_token"}
                assert "another service instance" in violations["page_token"]
                assert len(shared.emulator.state.recorded("ListRooms")) == before
            # The replica that issued it still takes it, Redis back or not.
            rest = await alone.stub.ListRooms(
                room_pb.ListRoomsRequest(page_token=token), timeout=10
            )
            assert [s.name for s in rest.rooms] == ["a"]
    finally:
        await redis.stop()


async def test_a_token_replayed_after_its_rooms_were_deleted_pages_what_is_left(
    make_facade: MakeFacade,
) -> None:
    async with make_facade() as facade:
        arns = []
        for name in ("a", "b", "c", "d"):
            made = await facade.stub.CreateRoom(room_pb.CreateRoomRequest(name=name), timeout=10)
            arns.append(made.room.arn)
        page = await facade.stub.ListRooms(room_pb.ListRoomsRequest(page_size=2), timeout=10)
        assert [s.name for s in page.rooms] == ["d", "c"]
        token = page.next_page_token
        for arn in arns:
            await facade.stub.DeleteRoom(room_pb.DeleteRoomRequest(arn=arn), timeout=10)
        # Every room gone: the token is still this service's, and the page is empty.
        for _ in range(2):  # and replayed, the same
            rest = await facade.stub.ListRooms(
                room_pb.ListRoomsRequest(page_size=2, page_token=token), timeout=10
            )
            assert list(rest.rooms) == []
            assert rest.next_page_token == ""


# --- 6. UpdateRoom racing DeleteRoom ------------------------------------------------


async def test_update_room_racing_delete_room_is_answered_ok_or_not_found(
    make_facade: MakeFacade,
) -> None:
    # Room in each bucket's queue for all twenty (10 s of 5 a second), so that
    # none is shed: the race is the point, not the quota.
    async with make_facade(max_queue_wait=10.0) as facade:
        arns = []
        for i in range(20):
            made = await facade.stub.CreateRoom(room_pb.CreateRoomRequest(name=f"r{i}"), timeout=10)
            arns.append(made.room.arn)

        def update(arn: str) -> Any:
            return facade.stub.UpdateRoom(
                room_pb.UpdateRoomRequest(
                    room=room_pb.Room(arn=arn, name="renamed"),
                    update_mask=field_mask_pb2.FieldMask(paths=["name"]),
                ),
                timeout=10,
            )

        def delete(arn: str) -> Any:
            return facade.stub.DeleteRoom(room_pb.DeleteRoomRequest(arn=arn), timeout=10)

        # Each pair at once, in both orders.
        calls = [c for i, arn in enumerate(arns) for c in ((update, delete)[:: 1 - 2 * (i % 2)])]
        pairs = [f(arn) for arn, f in zip((a for a in arns for _ in (0, 1)), calls, strict=True)]
        results = await asyncio.gather(*pairs, return_exceptions=True)
    codes = Counter(
        r.code() if isinstance(r, grpc.aio.AioRpcError) else grpc.StatusCode.OK for r in results
    )
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND}, codes
    # Every delete succeeded: nothing else deletes.
    assert codes[grpc.StatusCode.OK] >= 20
    assert facade.emulator.state.rooms == {}


# --- 8. hostile ChatService input --------------------------------------------------

FOUR = "\U0001f600"  # four bytes of UTF-8, one character (code point)
AT_1024 = {"k": FOUR * 255 + "abc"}  # 1 + 1020 + 3 bytes
AT_1025 = {"k": FOUR * 255 + "abcd"}


def chat_requests(arn: str) -> dict[str, tuple[str, Any]]:
    return {
        "token-1024-bytes": (
            "CreateChatToken",
            pb.CreateChatTokenRequest(room_arn=arn, user_id="u", attributes=AT_1024),
        ),
        "event-1024-bytes": (
            "SendEvent",
            pb.SendEventRequest(room_arn=arn, event_name="e", attributes=AT_1024),
        ),
        "token-empty-key": (
            "CreateChatToken",
            pb.CreateChatTokenRequest(room_arn=arn, user_id="u", attributes={"": "v"}),
        ),
        "event-empty-key": (
            "SendEvent",
            pb.SendEventRequest(room_arn=arn, event_name="e", attributes={"": ""}),
        ),
        # AWS's length limits count characters (Smithy's length trait: code
        # points), not bytes, and not UTF-16 units: 128 four-byte ones fit.
        "user-id-128-four-byte-characters": (
            "CreateChatToken",
            pb.CreateChatTokenRequest(room_arn=arn, user_id=FOUR * 128),
        ),
        "disconnect-128-four-byte-characters": (
            "DisconnectUser",
            pb.DisconnectUserRequest(room_arn=arn, user_id=FOUR * 128, reason=FOUR * 256),
        ),
    }


@pytest.mark.parametrize("case", list(chat_requests("")))
async def test_hostile_chat_input_at_a_limit_reaches_aws(facade: Facade, case: str) -> None:
    arn = (await facade.stub.CreateRoom(room_pb.CreateRoomRequest(name="h"), timeout=10)).room.arn
    method, request = chat_requests(arn)[case]
    await getattr(pb_grpc.ChatServiceStub(facade.channel), method)(request, timeout=10)
    assert [r.status for r in facade.emulator.state.recorded(method)] == [200]


ROOM = "arn:aws:ivschat:us-east-1:123456789012:room/AbCdEfGhIjKl"
PAST: dict[str, tuple[str, Any, str]] = {
    "token-1025-bytes": (
        "CreateChatToken",
        pb.CreateChatTokenRequest(room_arn=ROOM, user_id="u", attributes=AT_1025),
        "attributes",
    ),
    "event-1025-bytes": (
        "SendEvent",
        pb.SendEventRequest(room_arn=ROOM, event_name="e", attributes=AT_1025),
        "attributes",
    ),
    "user-id-129-four-byte-characters": (
        "CreateChatToken",
        pb.CreateChatTokenRequest(room_arn=ROOM, user_id=FOUR * 129),
        "user_id",
    ),
    "delete-message-reason-empty": (
        "DeleteMessage",
        pb.DeleteMessageRequest(room_arn=ROOM, id="A" * 12, reason=""),
        "reason",
    ),
    "disconnect-reason-257-four-byte-characters": (
        "DisconnectUser",
        pb.DisconnectUserRequest(room_arn=ROOM, user_id="u", reason=FOUR * 257),
        "reason",
    ),
    "session-zero-explicitly": (
        "CreateChatToken",
        pb.CreateChatTokenRequest(room_arn=ROOM, user_id="u", session_duration_minutes=0),
        "session_duration_minutes",
    ),
}


@pytest.mark.parametrize("case", list(PAST))
async def test_hostile_chat_input_past_a_limit_is_named_and_never_sent(
    facade: Facade, case: str
) -> None:
    method, request, field = PAST[case]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(pb_grpc.ChatServiceStub(facade.channel), method)(request, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(caught.value)
    assert list(violations) == [field]
    assert FOUR not in (caught.value.details() or "") + violations[field]  # no value echoed
    assert facade.emulator.state.recorded(method) == []


# --- 7. the local endpoint's admin routes answer a bad body in JSON ----------------


@pytest.mark.parametrize(
    ("method", "path", "data", "says"),
    [
        ("POST", "faults", b"{not json", "must be JSON"),
        ("POST", "faults", b'{"latency_ms": "slow"}', "latency_ms"),
        ("PUT", "quota", b'{"rate": 5}', "create_room_per_second"),
        ("PUT", "quota", b'{"create_room_per_second": -1}', "positive"),
        ("PUT", "logging-configurations", b'{"arns": 3}', "arns"),
    ],
)
async def test_an_admin_route_answers_a_bad_body_in_json(
    emulator: Emulator, method: str, path: str, data: bytes, says: str
) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.request(method, f"{emulator.url}/_emulator/{path}", data=data)
        assert resp.status == 400
        assert resp.content_type == "application/json"
        answer = await resp.json()
    assert set(answer) == {"message"}
    assert says in answer["message"]
