"""Optional OpenTelemetry traces: one span per RPC, exported over OTLP.

Off by default. With --tracing otlp, spans go to the collector that the
standard OTEL_EXPORTER_OTLP_* variables name (by default one on localhost).
"""

from __future__ import annotations

from typing import Final

import grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

MODES: Final = ("off", "otlp")


def provider_for(mode: str) -> TracerProvider | None:
    """A tracer provider that exports as mode says, or None when tracing is off."""
    if mode == "off":
        return None
    # Imported here: the exporter loads a gRPC client stack nobody needs when off.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "ivschat-grpc"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def interceptor(provider: TracerProvider) -> grpc.aio.ServerInterceptor:
    """The server interceptor that opens a span per RPC."""
    return aio_server_interceptor(tracer_provider=provider)  # type: ignore[no-untyped-call, no-any-return]  # the instrumentation is untyped
