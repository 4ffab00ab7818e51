"""Garbage to any method is INVALID_ARGUMENT, and metrics count what the client saw."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from ivschat_grpc.runtime.telemetry import Metrics, RpcInterceptor

from tests.support.facade import Facade
from tests.support.richstatus import error_info
from tests.support.waiting import until

GARBAGE = b"\xff\xff\xff"


def answered(facade: Facade, method: str, code: str) -> bool:
    line = f'ivschat_grpc_rpcs_total{{code="{code}",method="{method}"}}'
    scrape = facade.service.metrics.scrape().decode()
    return any(row.startswith(line) and not row.endswith(" 0.0") for row in scrape.splitlines())


@pytest.mark.parametrize(
    ("method", "kind", "answer"),
    [
        ("/grpc.health.v1.Health/Check", "unary_unary", health_pb2.HealthCheckResponse),
        ("/grpc.health.v1.Health/Watch", "unary_stream", health_pb2.HealthCheckResponse),
        (
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            "stream_stream",
            reflection_pb2.ServerReflectionResponse,
        ),
    ],
    ids=["health-check", "health-watch", "reflection"],
)
async def test_garbage_to_health_and_reflection_is_invalid_argument_and_counted_so(
    facade: Facade, method: str, kind: str, answer: Any
) -> None:
    make = getattr(facade.channel, kind)
    call = make(method, request_serializer=lambda b: b, response_deserializer=answer.FromString)

    async def send() -> None:
        if kind == "unary_unary":
            await call(GARBAGE, timeout=10)
            return
        async for _ in call(iter([GARBAGE]) if kind == "stream_stream" else GARBAGE, timeout=10):
            pass

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await send()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(info.value).reason == "MALFORMED_REQUEST"
    # grpc.aio's abort sends the status before the interceptor's finally runs,
    # so the client can see the answer a moment before it is counted.
    await until(lambda: answered(facade, method, "INVALID_ARGUMENT"), limit_s=5)


async def test_an_unexpected_exception_is_counted_as_the_unknown_the_client_sees() -> None:
    metrics = Metrics()
    rpcs = RpcInterceptor(metrics)

    async def broken(request: Any, context: Any) -> Any:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        await rpcs.wrap_unary("/x.v1.Service/Broken", broken)(object(), object())
    scrape = metrics.scrape().decode()
    assert 'ivschat_grpc_rpcs_total{code="UNKNOWN",method="/x.v1.Service/Broken"} 1.0' in scrape
    assert 'code="OK"' not in scrape
