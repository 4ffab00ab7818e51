"""TLS, mTLS, tokens, message and concurrency limits, and metrics: a real server, end to end."""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc
from ivschat_grpc.cli import healthcheck
from ivschat_grpc.emulator import Emulator, FaultRule
from ivschat_grpc.runtime.assembly import build_server

from tests.support.env import use_emulator_credentials
from tests.support.facade import Facade, MakeFacade, facade_settings, server
from tests.support.richstatus import error_info

SERVER_NAME = "localhost"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_channel(port: int, ca: trustme.CA, client: trustme.LeafCert | None = None) -> Any:
    key = client.private_key_pem.bytes() if client else None
    chain = client.cert_chain_pems[0].bytes() if client else None
    creds = grpc.ssl_channel_credentials(ca.cert_pem.bytes(), key, chain)
    # The certificate names localhost; the connection goes to 127.0.0.1.
    options = [("grpc.ssl_target_name_override", SERVER_NAME)]
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", creds, options=options)


def server_tls(ca: trustme.CA) -> dict[str, bytes]:
    leaf = ca.issue_cert(SERVER_NAME, "127.0.0.1")
    return {
        "tls_cert": b"".join(p.bytes() for p in leaf.cert_chain_pems),
        "tls_key": leaf.private_key_pem.bytes(),
    }


async def create(channel: Any, token: str | None = None) -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    try:
        await pb_grpc.RoomServiceStub(channel).CreateRoom(
            pb.CreateRoomRequest(name="secure"), timeout=10, metadata=metadata
        )
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def test_tls_with_rotated_tokens(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA
) -> None:
    async with (
        server(
            emulator, monkeypatch, auth_tokens=("old-token", "new-token"), **server_tls(ca)
        ) as service,
        tls_channel(service.port, ca) as channel,
    ):
        assert await create(channel) == grpc.StatusCode.UNAUTHENTICATED
        assert await create(channel, "wrong-token") == grpc.StatusCode.PERMISSION_DENIED
        assert await create(channel, "old-token") == grpc.StatusCode.OK
        assert await create(channel, "new-token") == grpc.StatusCode.OK
        # Probes carry no token.
        assert await healthcheck.check(channel) == health_pb2.HealthCheckResponse.SERVING
    assert len(emulator.state.rooms) == 2
    assert len(emulator.state.recorded("CreateRoom")) == 2  # refused calls never reached AWS


async def test_token_errors_carry_error_info(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        server(emulator, monkeypatch, auth_tokens=("s3cret",)) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await pb_grpc.RoomServiceStub(channel).CreateRoom(pb.CreateRoomRequest(), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as wrong:
            await pb_grpc.RoomServiceStub(channel).CreateRoom(
                pb.CreateRoomRequest(), timeout=5, metadata=(("authorization", "Bearer s3creT"),)
            )
        # Batch streams are guarded too.
        with pytest.raises(grpc.aio.AioRpcError) as stream:
            async for _ in pb_grpc.RoomServiceStub(channel).BatchCreateRooms(iter([]), timeout=5):
                pass
    assert error_info(missing.value).reason == "CREDENTIALS_MISSING"
    assert error_info(wrong.value).reason == "CREDENTIALS_DENIED"
    assert stream.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "s3cret" not in (wrong.value.details() or "")


async def test_mtls_allow_list(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA
) -> None:
    allowed = ca.issue_cert("svc-a.internal")
    other = ca.issue_cert("svc-b.internal")
    stranger = trustme.CA().issue_cert("svc-a.internal")
    async with server(
        emulator,
        monkeypatch,
        tls_client_ca=ca.cert_pem.bytes(),
        allowed_clients=("svc-a.internal",),
        health_port=0,
        **server_tls(ca),
    ) as service:
        async with tls_channel(service.port, ca, allowed) as channel:
            assert await create(channel) == grpc.StatusCode.OK
        async with tls_channel(service.port, ca, other) as channel:
            assert await create(channel) == grpc.StatusCode.PERMISSION_DENIED
        async with tls_channel(service.port, ca, stranger) as channel:
            assert await create(channel) == grpc.StatusCode.UNAVAILABLE  # handshake refused
        async with tls_channel(service.port, ca) as channel:
            assert await create(channel) == grpc.StatusCode.UNAVAILABLE  # no certificate
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            assert await create(channel) == grpc.StatusCode.UNAVAILABLE  # no TLS at all
        # Probes without a certificate use the plaintext health-only port.
        assert service.health_port is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.health_port}") as channel:
            assert await healthcheck.check(channel) == health_pb2.HealthCheckResponse.SERVING
            assert await create(channel) == grpc.StatusCode.UNIMPLEMENTED
    assert len(emulator.state.rooms) == 1


async def test_oversized_message_is_resource_exhausted(facade: Facade) -> None:
    # The largest valid request passes: 50 tags of 4-byte letters at full length.
    wide = "\U0001d400"
    tags = {f"{i:02d}" + wide * 126: wide * 256 for i in range(50)}
    ok = await facade.stub.CreateRoom(pb.CreateRoomRequest(tags=tags), timeout=10)
    assert len(ok.room.tags) == 50
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await facade.stub.CreateRoom(pb.CreateRoomRequest(name="x" * 200_000), timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(facade.emulator.state.recorded("CreateRoom")) == 1


async def test_concurrency_limit_is_resource_exhausted_at_once(
    emulator: Emulator, make_facade: MakeFacade
) -> None:
    emulator.state.faults.add(FaultRule(latency_ms=1500))
    async with make_facade(max_concurrent_rpcs=2) as made:
        stub = made.stub
        results = await asyncio.gather(
            *(stub.CreateRoom(pb.CreateRoomRequest(), timeout=10) for _ in range(4)),
            return_exceptions=True,
        )
    codes = sorted(r.code().name if isinstance(r, grpc.aio.AioRpcError) else "OK" for r in results)
    assert codes == ["OK", "OK", "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"]
    assert len(emulator.state.recorded("CreateRoom")) == 2


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus exposition text (0 when absent)."""
    for line in text.splitlines():
        m = re.match(rf"{name}(?:{{(.*)}})? (\S+)$", line)
        if not m:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m[1] or ""))
        if found == labels:
            return float(m[2])
    return 0.0


async def test_metrics_after_known_traffic(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.state.faults.add(FaultRule(name="bumpy", error="ThrottlingException", times=1))
    async with (
        server(emulator, monkeypatch, metrics_port=0) as service,
        grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
    ):
        stub = pb_grpc.RoomServiceStub(channel)
        await stub.CreateRoom(pb.CreateRoomRequest(name="a"), timeout=10)
        await stub.CreateRoom(pb.CreateRoomRequest(name="bumpy"), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.CreateRoom(pb.CreateRoomRequest(name="bad name"), timeout=10)
        items = [
            pb.BatchCreateRoomsRequest(correlation_id=f"m{i}", room=pb.CreateRoomRequest())
            for i in range(3)
        ] + [pb.BatchCreateRoomsRequest(correlation_id="")]
        assert len([r async for r in stub.BatchCreateRooms(iter(items), timeout=10)]) == 4
        async with aiohttp.ClientSession() as http:
            resp = await http.get(f"http://127.0.0.1:{service.metrics_port}/metrics")
            text = await resp.text()
    create = "/ivschat.v1.RoomService/CreateRoom"
    batch = "/ivschat.v1.RoomService/BatchCreateRooms"
    assert metric(text, "ivschat_grpc_rpcs_total", code="OK", method=create) == 2
    assert metric(text, "ivschat_grpc_rpcs_total", code="INVALID_ARGUMENT", method=create) == 1
    assert metric(text, "ivschat_grpc_rpcs_total", code="OK", method=batch) == 1
    assert metric(text, "ivschat_grpc_rpc_duration_seconds_count", method=create) == 3
    assert metric(text, "ivschat_grpc_aws_calls_total", outcome="OK") == 5
    assert metric(text, "ivschat_grpc_aws_calls_total", outcome="ThrottlingException") == 1
    assert metric(text, "ivschat_grpc_aws_throttles_absorbed_total") == 1
    assert metric(text, "ivschat_grpc_aws_call_duration_seconds_count", outcome="OK") == 5
    assert metric(text, "ivschat_grpc_batch_items_total", code="OK") == 3
    assert metric(text, "ivschat_grpc_batch_items_total", code="INVALID_ARGUMENT") == 1
    assert metric(text, "ivschat_grpc_rpcs_in_flight", method=create) == 0
    assert "ivschat_grpc_pacing_queue_depth 0.0" in text
    for operation in ("CreateRoom", "ListRooms", "GetRoom", "DeleteRoom", "CreateChatToken"):
        assert f'ivschat_grpc_bucket_queue_depth{{operation="{operation}"}} 0.0' in text


async def test_tracing_opens_a_span_per_rpc(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_emulator_credentials(monkeypatch)
    settings = facade_settings(emulator, grace_s=1.0, create_rate=None)
    async with AsyncExitStack() as stack:
        service = await build_server(settings, stack, tracer_provider=provider)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = pb_grpc.RoomServiceStub(channel)
            await stub.CreateRoom(pb.CreateRoomRequest(name="traced"), timeout=10)
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.CreateRoom(pb.CreateRoomRequest(name="not traced!"), timeout=10)
            # A server-streaming method works under the tracing interceptor too.
            health: Any = health_pb2_grpc.HealthStub(channel)  # generated, untyped
            watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=10)
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
    spans = [s for s in exporter.get_finished_spans() if "CreateRoom" in s.name]
    assert len(spans) == 2
    codes = sorted(int(str((s.attributes or {}).get("rpc.grpc.status_code"))) for s in spans)
    assert codes == [grpc.StatusCode.OK.value[0], grpc.StatusCode.INVALID_ARGUMENT.value[0]]
