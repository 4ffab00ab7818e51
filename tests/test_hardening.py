"""What a hostile caller or a bad day could still do (issue 14), each shown not to work.

Places for calls go only to callers who authenticate, and health has its own;
a unary call without its request is answered at once; silent calls and
streams are closed; a drain that runs out answers "may exist", never
"retry", for work out at AWS; cancelled streams leave no asyncio error; and
batch items get their share of the quota while unary calls saturate it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.emulator import Emulator, FaultRule

from tests.support.facade import MakeFacade, server
from tests.support.processes import service
from tests.support.richstatus import error_info, field_violations
from tests.support.waiting import until

CREATE = "/ivschat.v1.RoomService/CreateRoom"
TOKEN = "tok-hardening-1"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


def create_without_request(channel: grpc.aio.Channel, method: str = CREATE) -> Any:
    """A call to a unary method that sends no request before it half-closes."""
    return channel.stream_unary(
        method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.CreateRoomResponse.FromString,
    )


async def silent() -> AsyncIterator[pb.CreateRoomRequest]:
    """Requests that never come, on a call that never half-closes."""
    await asyncio.Event().wait()
    yield pb.CreateRoomRequest()  # pragma: no cover - never reached


async def test_unauthenticated_calls_cannot_take_the_places_of_authenticated_ones(
    emulator: Emulator, make_facade: MakeFacade
) -> None:
    emulator.state.faults.add(FaultRule(latency_ms=0))
    async with make_facade(max_concurrent_rpcs=4, max_health_rpcs=4, auth_tokens=(TOKEN,)) as made:
        channel = made.channel
        stub = pb_grpc.RoomServiceStub(channel)
        # Without a token: calls that never send their request, calls that end
        # their side without one, and health watches, far past every limit.
        never = [
            asyncio.ensure_future(create_without_request(channel)(silent(), timeout=30))
            for _ in range(20)
        ]
        empty = [create_without_request(channel)(iter(()), timeout=30) for _ in range(20)]
        health: Any = health_pb2_grpc.HealthStub(channel)  # generated, untyped
        watches = [health.Watch(health_pb2.HealthCheckRequest(), timeout=30) for _ in range(20)]
        for call in empty:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        for call in never:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Health is served without a token, in a budget of its own.
        watch_codes = []
        for watch in watches:
            try:
                await watch.read()
                watch_codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as e:
                watch_codes.append(e.code())
        assert watch_codes.count(grpc.StatusCode.OK) == 4
        assert watch_codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 16
        # The service's places are all free for a caller with a token.
        created = await asyncio.gather(
            *(stub.CreateRoom(pb.CreateRoomRequest(), timeout=10, metadata=AUTH) for _ in range(4))
        )
        assert len({c.room.id for c in created}) == 4
        for watch in watches:
            watch.cancel()


async def test_a_full_service_budget_refuses_with_details_and_leaves_health_alone(
    emulator: Emulator, make_facade: MakeFacade
) -> None:
    emulator.state.faults.add(FaultRule(latency_ms=1500))
    async with make_facade(max_concurrent_rpcs=1, max_health_rpcs=1) as made:
        service_, channel = made.service, made.channel
        stub = pb_grpc.RoomServiceStub(channel)
        slow = asyncio.ensure_future(stub.CreateRoom(pb.CreateRoomRequest(), timeout=10))
        await until(lambda: service_.pacer.in_flight == 1)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateRoom(pb.CreateRoomRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_info(refused.value)
        assert (info.reason, info.metadata["limit"]) == ("CONCURRENCY_LIMIT", "1")
        health: Any = health_pb2_grpc.HealthStub(channel)  # generated, untyped
        answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        await slow


async def test_a_unary_call_without_its_request_is_answered_invalid_argument_at_once(
    emulator: Emulator, make_facade: MakeFacade
) -> None:
    async with make_facade(metrics_port=0) as made:
        service_, channel = made.service, made.channel
        for method in (CREATE, "/grpc.health.v1.Health/Check"):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                # Before, grpc never answered such a call: it waited out its deadline.
                await create_without_request(channel, method)(iter(()), timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error_info(refused.value).reason == "MALFORMED_REQUEST"
            assert list(field_violations(refused.value)) == ["request"]
        watch: Any = channel.stream_stream(
            "/grpc.health.v1.Health/Watch",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )(iter(()))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await watch.read()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        counted = f'ivschat_grpc_rpcs_total{{code="INVALID_ARGUMENT",method="{CREATE}"}} 1.0'
        # abort sends the status before the interceptor counts it: read until counted.
        await until(lambda: counted in service_.metrics.scrape().decode(), limit_s=5)
    assert not emulator.state.recorded("CreateRoom")


async def test_silent_calls_and_streams_are_closed_after_the_idle_timeout(
    emulator: Emulator, make_facade: MakeFacade
) -> None:
    # The one item's answer takes longer than the idle timeout: a stream that
    # owes an answer is not idle.
    emulator.state.faults.add(FaultRule(latency_ms=600))
    async with make_facade(idle_timeout_s=0.3) as made:
        channel = made.channel
        with pytest.raises(grpc.aio.AioRpcError) as closed:
            await create_without_request(channel)(silent())
        assert closed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(closed.value).reason == "IDLE_TIMEOUT"

        async def one_then_silence() -> AsyncIterator[pb.BatchCreateRoomsRequest]:
            yield pb.BatchCreateRoomsRequest(correlation_id="only", room=pb.CreateRoomRequest())
            await asyncio.Event().wait()

        stream = pb_grpc.RoomServiceStub(channel).BatchCreateRooms(one_then_silence())
        answers: list[pb.BatchCreateRoomsResponse] = []

        async def read_all() -> None:
            async for answer in stream:
                answers.append(answer)

        with pytest.raises(grpc.aio.AioRpcError) as closed:
            await read_all()
        assert [(a.correlation_id, a.HasField("room")) for a in answers] == [("only", True)]
        assert closed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(closed.value).reason == "IDLE_TIMEOUT"
    assert len(emulator.state.rooms) == 1


def reason_of(status: Any) -> tuple[str, dict[str, str]]:
    """ErrorInfo's reason and metadata from a batch item's google.rpc.Status."""
    from google.rpc import error_details_pb2

    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason, dict(info.metadata)
    return "", {}


async def test_a_drain_that_runs_out_answers_may_exist_for_work_out_at_aws(
    endpoint: Emulator,
) -> None:
    endpoint.state.faults.add(FaultRule(latency_ms=3000))
    args = ("--grace", "1", "--create-rate", "20", "--idempotency-store", "memory")
    async with service(*args) as (proc, address), grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RoomServiceStub(channel)
        unary = [
            asyncio.ensure_future(stub.CreateRoom(pb.CreateRoomRequest(name=f"u{i}"), timeout=30))
            for i in range(2)
        ]
        keyed = asyncio.ensure_future(
            stub.CreateRoom(
                pb.CreateRoomRequest(name="k0", request_id="7d3a6c1e-4a8e-4b5e-9d5c-0c4f2b1a9e01"),
                timeout=30,
            )
        )

        async def items() -> AsyncIterator[pb.BatchCreateRoomsRequest]:
            for i in range(40):
                yield pb.BatchCreateRoomsRequest(
                    correlation_id=f"b{i}", room=pb.CreateRoomRequest(name=f"b{i}")
                )
            await asyncio.Event().wait()  # the stream stays open: the drain ends it

        answers: list[pb.BatchCreateRoomsResponse] = []

        async def consume() -> grpc.aio.AioRpcError | None:
            try:
                async for answer in stub.BatchCreateRooms(items(), timeout=30):
                    answers.append(answer)
            except grpc.aio.AioRpcError as e:
                return e
            return None

        batch = asyncio.ensure_future(consume())
        await until(lambda: len(endpoint.state.recorded("CreateRoom")) >= 10)
        proc.send_signal(signal.SIGTERM)
        results = await asyncio.gather(*unary, keyed, return_exceptions=True)
        ended = await batch
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    sent = {r.body["name"] for r in endpoint.state.recorded("CreateRoom")}
    for result in results:
        assert isinstance(result, grpc.aio.AioRpcError)
        assert result.code() == grpc.StatusCode.INTERNAL
        info = error_info(result)
        assert (info.reason, info.metadata["room_may_exist"]) == ("SHUTDOWN_IN_FLIGHT", "true")
    # Every item read got one answer. Each one sent to AWS is "may exist",
    # never "retry"; each one not sent is "retry", with nothing created.
    assert len({a.correlation_id for a in answers}) == len(answers) > 0
    for answer in answers:
        reason, metadata = reason_of(answer.error)
        if answer.correlation_id in sent:
            assert answer.error.code == grpc.StatusCode.INTERNAL.value[0]
            assert (reason, metadata.get("room_may_exist")) == ("SHUTDOWN_IN_FLIGHT", "true")
        else:
            assert answer.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
            assert reason == "NOT_SENT"
    assert sent <= {a.correlation_id for a in answers} | {"u0", "u1", "k0"}
    assert ended is not None
    assert ended.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(ended).reason == "SHUTTING_DOWN"
    # The rooms the drain said may exist do: AWS finishes them after the service is gone.
    await until(lambda: len(endpoint.state.rooms) == len(sent))


async def test_cancelled_and_timed_out_streams_leave_no_asyncio_error(
    endpoint: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint.state.faults.add(FaultRule(latency_ms=200))
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    args = ("--create-rate", "off", "--log-level", "INFO", "--idempotency-store", "memory")
    async with service(*args) as (proc, address), grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RoomServiceStub(channel)

        async def items(n: int) -> AsyncIterator[pb.BatchCreateRoomsRequest]:
            for i in range(n):
                yield pb.BatchCreateRoomsRequest(
                    correlation_id=f"c{i}", room=pb.CreateRoomRequest()
                )
            await asyncio.Event().wait()

        async def cancel_after_first() -> None:
            call = stub.BatchCreateRooms(items(3), timeout=30)
            await call.read()
            call.cancel()

        async def cancel_at_once() -> None:
            call = stub.BatchCreateRooms(items(2), timeout=30)
            await asyncio.sleep(0)
            call.cancel()

        async def time_out() -> None:
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async for _ in stub.BatchCreateRooms(items(2), timeout=0.3):
                    pass
            assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        for round_ in range(5):
            await asyncio.gather(
                *(cancel_after_first() for _ in range(10)),
                *(cancel_at_once() for _ in range(10)),
                *(time_out() for _ in range(5)),
            )
            del round_
        # The service still answers, and then drains to a clean exit.
        await stub.CreateRoom(pb.CreateRoomRequest(), timeout=10)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        assert proc.stderr is not None
        stderr = (await proc.stderr.read()).decode()
    assert os.environ.get("PYTHONASYNCIODEBUG") == "1"
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(r.get("msg") == "rpc" for r in records), "the log was read"
    errors = [
        r
        for r in records
        if r["level"] in ("ERROR", "CRITICAL")
        or "never retrieved" in r["msg"]
        or "was destroyed but it is pending" in r["msg"]
        or "was never awaited" in r["msg"]
    ]
    assert errors == []
    assert "Traceback" not in "\n".join(line for line in stderr.splitlines() if line[:1] != "{")


async def test_batch_items_get_their_share_while_unary_calls_saturate_the_quota(
    emulator: Emulator, make_facade: MakeFacade
) -> None:
    async with make_facade(create_rate=40.0, aws_max_in_flight=1) as made:
        service_, channel = made.service, made.channel
        stub = pb_grpc.RoomServiceStub(channel)
        done = asyncio.Event()

        async def caller(n: int) -> None:
            while not done.is_set():
                await stub.CreateRoom(pb.CreateRoomRequest(name=f"u{n}"), timeout=30)

        callers = [asyncio.ensure_future(caller(n)) for n in range(12)]
        await until(lambda: service_.pacer.waiting >= 8)

        async def items() -> AsyncIterator[pb.BatchCreateRoomsRequest]:
            for i in range(200):
                yield pb.BatchCreateRoomsRequest(
                    correlation_id=f"b{i}", room=pb.CreateRoomRequest(name=f"b{i}")
                )

        batch = stub.BatchCreateRooms(items(), timeout=60)
        await until(
            lambda: (
                sum(
                    1
                    for r in emulator.state.recorded("CreateRoom")
                    if r.body["name"].startswith("b")
                )
                >= 1
            )
        )
        start = len(emulator.state.recorded("CreateRoom"))
        await until(lambda: len(emulator.state.recorded("CreateRoom")) >= start + 50)
        done.set()
        batch.cancel()
        await asyncio.gather(*callers)
    names = [r.body["name"] for r in emulator.state.recorded("CreateRoom")][start : start + 50]
    batch_share = sum(1 for n in names if n.startswith("b"))
    # One send slot in five goes to a waiting batch item.
    assert batch_share >= 50 // 5 - 1, names
    assert any(n.startswith("u") for n in names)


async def test_the_plaintext_health_port_answers_garbage_and_silence_like_the_main_port(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        server(emulator, monkeypatch, health_port=0, max_health_rpcs=1) as service_,
        grpc.aio.insecure_channel(f"127.0.0.1:{service_.health_port}") as channel,
    ):
        check = "/grpc.health.v1.Health/Check"
        garbage: Any = channel.unary_unary(check, request_serializer=lambda b: b)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await garbage(b"\xff\xff\xff", timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(refused.value).reason == "MALFORMED_REQUEST"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await create_without_request(channel, check)(iter(()), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # Health's budget here is this port's own.
        health: Any = health_pb2_grpc.HealthStub(channel)  # generated, untyped
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=30)
        await watch.read()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        watch.cancel()


async def test_a_health_flood_on_the_main_port_leaves_the_probe_port_serving(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        server(
            emulator, monkeypatch, health_port=0, max_health_rpcs=2, auth_tokens=(TOKEN,)
        ) as service_,
        grpc.aio.insecure_channel(f"127.0.0.1:{service_.port}") as main,
        grpc.aio.insecure_channel(f"127.0.0.1:{service_.health_port}") as probes,
    ):
        flood: Any = health_pb2_grpc.HealthStub(main)  # generated, untyped
        watches = [flood.Watch(health_pb2.HealthCheckRequest(), timeout=30) for _ in range(5)]
        codes = []
        for watch in watches:
            try:
                await watch.read()
                codes.append("OK")
            except grpc.aio.AioRpcError as e:
                codes.append(e.code().name)
        assert sorted(codes) == ["OK"] * 2 + ["RESOURCE_EXHAUSTED"] * 3
        probe: Any = health_pb2_grpc.HealthStub(probes)  # generated, untyped
        answer = await probe.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        for watch in watches:
            watch.cancel()


async def test_calls_that_die_before_their_request_are_counted_as_their_clients_saw(
    make_facade: MakeFacade,
) -> None:
    async with make_facade() as made:
        service_, channel = made.service, made.channel
        for method in (CREATE, "/grpc.health.v1.Health/Check"):
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await create_without_request(channel, method)(silent(), timeout=0.2)
            assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        in_flight = f'ivschat_grpc_rpcs_in_flight{{method="{CREATE}"}}'

        def running() -> float:
            scrape = service_.metrics.scrape().decode()
            return next(float(r.split()[1]) for r in scrape.splitlines() if r.startswith(in_flight))

        call = create_without_request(channel)(silent())
        await until(lambda: running() == 1)
        call.cancel()
        await until(lambda: running() == 0)
        expected = {
            f'ivschat_grpc_rpcs_total{{code="DEADLINE_EXCEEDED",method="{CREATE}"}}',
            'ivschat_grpc_rpcs_total{code="DEADLINE_EXCEEDED",method="/grpc.health.v1.Health/Check"}',
            f'ivschat_grpc_rpcs_total{{code="CANCELLED",method="{CREATE}"}}',
        }

        def counted() -> set[str]:
            scrape = service_.metrics.scrape().decode()
            return {
                line.split(" ")[0]
                for line in scrape.splitlines()
                if line.startswith("ivschat_grpc_rpcs_total{") and not line.endswith(" 0.0")
            }

        # A client can see its status a moment before the service counts it.
        await until(lambda: counted() >= expected, limit_s=5)
    assert counted() == expected


async def test_the_drain_answers_calls_whose_request_is_missing_or_late_and_sends_nothing(
    endpoint: Emulator,
) -> None:
    args = ("--grace", "30", "--idempotency-store", "memory")
    async with service(*args) as (proc, address), grpc.aio.insecure_channel(address) as channel:
        late = asyncio.Event()

        async def late_request() -> AsyncIterator[pb.CreateRoomRequest]:
            await late.wait()
            yield pb.CreateRoomRequest(name="late")

        silent_call = create_without_request(channel)(silent(), timeout=60)
        late_call = create_without_request(channel)(late_request(), timeout=60)
        health: Any = health_pb2_grpc.HealthStub(channel)  # generated, untyped
        await health.Check(health_pb2.HealthCheckRequest(), timeout=10)  # both calls are open
        proc.send_signal(signal.SIGTERM)
        # The silent call is answered at once; before, it held the drain for its grace.
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await silent_call
        assert (ended.value.code(), error_info(ended.value).reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "SHUTTING_DOWN",
        )
        # So is the call whose request has not come: the drain does not wait for it.
        # Its request is sent only after the answer, as grpc's client reports a
        # write to a call the server has ended as INTERNAL "Internal error from
        # Core", whatever the server answered (it failed CI once so).
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await late_call
        assert (ended.value.code(), error_info(ended.value).reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "SHUTTING_DOWN",
        )
        late.set()  # too late: none of it reaches AWS
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    assert not endpoint.state.recorded("CreateRoom")


async def test_a_drain_answers_a_batch_item_settling_an_ambiguous_create_as_may_exist(
    endpoint: Emulator,
) -> None:
    # AWS makes the room and answers 500; the item's owner waits to look it up.
    endpoint.state.faults.add(FaultRule(error="InternalServerException", create=True, times=1))
    args = ("--grace", "1", "--idempotency-settle", "20", "--idempotency-store", "memory")
    async with service(*args) as (proc, address), grpc.aio.insecure_channel(address) as channel:
        item = pb.BatchCreateRoomsRequest(
            correlation_id="b0",
            room=pb.CreateRoomRequest(name="b0", request_id="6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"),
        )

        async def items() -> AsyncIterator[pb.BatchCreateRoomsRequest]:
            yield item
            await asyncio.Event().wait()

        call = pb_grpc.RoomServiceStub(channel).BatchCreateRooms(items(), timeout=60)
        await until(lambda: len(endpoint.state.rooms) == 1)
        proc.send_signal(signal.SIGTERM)
        answer: Any = await call.read()
        assert answer.correlation_id == "b0"
        assert answer.error.code == grpc.StatusCode.INTERNAL.value[0]
        reason, metadata = reason_of(answer.error)
        assert (reason, metadata.get("room_may_exist")) == ("SHUTDOWN_IN_FLIGHT", "true")
        assert await asyncio.wait_for(proc.wait(), 60) == 0


async def test_a_drain_says_a_delete_out_at_aws_may_have_deleted_and_a_read_may_be_retried(
    endpoint: Emulator,
) -> None:
    room_id = endpoint.state.create_room({"name": "doomed"})["id"]
    arn = endpoint.state.arn(room_id)
    endpoint.state.faults.add(
        FaultRule(operation="DeleteRoom", latency_ms=3000),
        FaultRule(operation="GetRoom", latency_ms=3000),
    )
    args = ("--grace", "1", "--idempotency-store", "memory")
    async with service(*args) as (proc, address), grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RoomServiceStub(channel)
        delete = asyncio.ensure_future(stub.DeleteRoom(pb.DeleteRoomRequest(arn=arn), timeout=30))
        read = asyncio.ensure_future(stub.GetRoom(pb.GetRoomRequest(arn=arn), timeout=30))
        await until(
            lambda: bool(
                endpoint.state.recorded("DeleteRoom") and endpoint.state.recorded("GetRoom")
            )
        )
        proc.send_signal(signal.SIGTERM)
        deleted, got = await asyncio.gather(delete, read, return_exceptions=True)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert isinstance(deleted, grpc.aio.AioRpcError)
    assert deleted.code() is grpc.StatusCode.INTERNAL  # never a bare "retry elsewhere"
    assert error_info(deleted).reason == "SHUTDOWN_IN_FLIGHT"
    assert "the room may be deleted" in (deleted.details() or "")
    assert isinstance(got, grpc.aio.AioRpcError)
    assert got.code() is grpc.StatusCode.UNAVAILABLE  # a read changed nothing: retry is true
    assert error_info(got).reason == "SHUTTING_DOWN"
