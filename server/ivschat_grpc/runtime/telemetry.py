"""What the service tells its operators: Prometheus metrics and logs (JSON, or text for people).

One interceptor sees every RPC, and records each call's method, code and
duration as a metric and as one log line. Handlers add fields to
that line (the AWS request id, attempts) through `rpc_fields()`.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

import grpc
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ivschat_grpc import errors
from ivschat_grpc.api.wrapping import HEALTH_PREFIX, Behavior, WrappingInterceptor, finish
from ivschat_grpc.core.outcomes import Outcome

log = logging.getLogger("ivschat_grpc.rpc")

# Fields a handler adds to its RPC's log line.
_FIELDS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "rpc_fields", default=None
)
# Log record attributes that become JSON fields; nothing else is copied, so no
# header, token or credential can reach a log line by accident.
LOG_FIELDS: Final = (
    "method",
    "code",
    "duration_ms",
    "aws_request_id",
    "correlation_id",
    "attempts",
    "peer",
    "items",
)
_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def rpc_fields() -> dict[str, Any]:
    """The current RPC's extra log fields (a throwaway dict outside an RPC)."""
    fields = _FIELDS.get()
    return fields if fields is not None else {}


def _known_fields(record: logging.LogRecord) -> dict[str, Any]:
    """record's LOG_FIELDS that are set: what both formats print, and nothing else."""
    out: dict[str, Any] = {}
    for name in LOG_FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            out[name] = value
    return out


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """JsonFormatter writes one JSON object per record, with only known fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out |= _known_fields(record)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


# A text value that needs quoting: one a reader could not tell from the
# next field (space, "=", a quote), or one that would end the line.
_NEEDS_QUOTES: Final = frozenset(' ="\\\n\r\t')


# A message's backslashes and line breaks, escaped as JSON would.
_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r"})


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if text == "" or not _NEEDS_QUOTES.isdisjoint(text):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """TextFormatter writes JsonFormatter's fields as one line for people.

    `2026-01-02T03:04:05.678+00:00 INFO ivschat_grpc.rpc: rpc method=... code=OK
    duration_ms=12.5`: the same known fields and nothing else, so what JSON
    keeps out (headers, tokens, user ids) stays out here too. A message or
    value with a line break is escaped, so one record stays one line; only a
    traceback follows on lines of its own.
    """

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(
            (
                _timestamp(record),
                record.levelname,
                f"{record.name}: {record.getMessage().translate(_ESCAPES)}",
                *(f"{k}={_text_value(v)}" for k, v in _known_fields(record).items()),
            )
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class Metrics:
    """Metrics holds the service's Prometheus metrics on a registry of its own."""

    def __init__(self, *, redis: bool = False) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rpcs = Counter(
            "ivschat_grpc_rpcs", "RPCs finished, by method and code", ["method", "code"], registry=r
        )
        self.rpc_seconds = Histogram(
            "ivschat_grpc_rpc_duration_seconds",
            "RPC duration",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "ivschat_grpc_rpcs_in_flight", "RPCs in progress", ["method"], registry=r
        )
        self.aws_calls = Counter(
            "ivschat_grpc_aws_calls",
            "CreateRoom calls sent to AWS, by outcome",
            ["outcome"],
            registry=r,
        )
        self.aws_seconds = Histogram(
            "ivschat_grpc_aws_call_duration_seconds",
            "AWS CreateRoom call duration, by outcome",
            ["outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.throttles_absorbed = Counter(
            "ivschat_grpc_aws_throttles_absorbed",
            "AWS throttles that were retried rather than returned",
            registry=r,
        )
        self.pacing_queue = Gauge(
            "ivschat_grpc_pacing_queue_depth", "calls waiting for a CreateRoom slot", registry=r
        )
        self.bucket_queue = Gauge(
            "ivschat_grpc_bucket_queue_depth",
            "calls waiting for a slot of their operation's quota, by operation",
            ["operation"],
            registry=r,
        )
        # Exported only with Redis (redis): without it there is nothing to be
        # down, and a series stuck at 0 would fire every "Redis down" alert.
        self.redis_up = Gauge(
            "ivschat_grpc_redis_up",
            "1 while Redis answers; 0 while pacing and exactly-once run in this process alone; "
            "absent without --redis-url",
            registry=r if redis else None,
        )
        self.shed = Counter(
            "ivschat_grpc_shed",
            "calls refused a slot of their operation's quota at once, unsent, by operation",
            ["operation"],
            registry=r,
        )
        self._shed_by: dict[str, Any] = {}
        self.batch_items = Counter(
            "ivschat_grpc_batch_items", "batch items answered, by code", ["code"], registry=r
        )

    def on_attempt(self, outcome: str, seconds: float, retried: bool) -> None:
        """Record one AWS attempt; adapter hook."""
        self.aws_calls.labels(outcome).inc()
        self.aws_seconds.labels(outcome).observe(seconds)
        if retried and outcome == Outcome.THROTTLED:
            self.throttles_absorbed.inc()

    def on_shed(self, operation: str) -> None:
        """Count one call shed by operation's bucket; adapter hook."""
        # The child looked up once per operation: sheds come by the thousand a second.
        child = self._shed_by.get(operation)
        if child is None:
            child = self._shed_by[operation] = self.shed.labels(operation)
        child.inc()

    def scrape(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)


async def serve_metrics(metrics: Metrics, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve /metrics over HTTP; return the runner (to clean up) and the bound port."""

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=metrics.scrape(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    # The runner's first address is the one site just bound: (host, port, ...).
    return runner, int(runner.addresses[0][1])


# A cancel this close to the deadline is the client's deadline, as it saw it.
_DEADLINE_SLACK_S: Final = 0.1


def _code_of(context: grpc.aio.ServicerContext[Any, Any], default: grpc.StatusCode) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        return errors.code_name(code)
    return default.name


def _ended_by(error: BaseException, context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The code a client sees for an RPC that ended by error."""
    if isinstance(error, grpc.aio.AbortError):
        return _code_of(context, grpc.StatusCode.UNKNOWN)
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        remaining = context.time_remaining()
        # The client's timer fires first: the server's deadline is the same
        # timeout counted from the call's arrival, later by the trip and any
        # backlog, so the client's cancel on its deadline finds a little left.
        if remaining is not None and remaining <= _DEADLINE_SLACK_S:
            return grpc.StatusCode.DEADLINE_EXCEEDED.name
        # A message over the size limit ends here too, as RESOURCE_EXHAUSTED
        # from grpc: the service cannot tell it from the caller's cancel.
        return grpc.StatusCode.CANCELLED.name
    return grpc.StatusCode.UNKNOWN.name  # what grpc answers for an unexpected exception


class _RpcMetrics:
    """_RpcMetrics holds one method's metric children, looked up once rather than per call."""

    def __init__(self, metrics: Metrics, method: str) -> None:
        self.method = method
        self.in_flight = metrics.in_flight.labels(method)
        self.seconds = metrics.rpc_seconds.labels(method)
        self._rpcs = metrics.rpcs
        self._answered: dict[str, Any] = {}

    def answered(self, code: str) -> Any:
        """The counter of this method's calls that ended with code."""
        child = self._answered.get(code)
        if child is None:
            child = self._answered[code] = self._rpcs.labels(self.method, code)
        return child


class RpcInterceptor(WrappingInterceptor):
    """RpcInterceptor counts, times and logs every RPC; health checks it only counts.

    Health is not logged: probes would drown the log. Every RPC is counted with
    the code its client saw, an unexpected exception as UNKNOWN.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def _exit(self, rpc: _RpcMetrics, code: str, started: float, fields: dict[str, Any]) -> None:
        seconds = time.perf_counter() - started
        rpc.in_flight.dec()
        rpc.answered(code).inc()
        rpc.seconds.observe(seconds)
        if log.isEnabledFor(logging.INFO):  # the fields cost something on every call
            log.info(
                "rpc",
                extra={"method": rpc.method, "code": code, "duration_ms": round(seconds * 1000, 3)}
                | fields,
            )

    def _counted(self, rpc: _RpcMetrics, code: str, started: float) -> None:
        rpc.answered(code).inc()
        rpc.seconds.observe(time.perf_counter() - started)

    def _count_only(self, method: str, behavior: Behavior) -> Behavior:
        """behavior (unary, or one request and a stream) counted and timed, no more."""
        rpc = _RpcMetrics(self._metrics, method)

        async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK.name
            try:
                return await finish(behavior(request, context), context)
            except BaseException as e:
                code = _ended_by(e, context)
                raise
            finally:
                self._counted(rpc, code, started)

        return run

    def wrap_other(self, method: str, handler: Any) -> Any:
        if method.startswith(HEALTH_PREFIX) and handler.unary_stream is not None:
            return handler._replace(unary_stream=self._count_only(method, handler.unary_stream))
        return handler

    def _begin(self, rpc: _RpcMetrics) -> tuple[float, dict[str, Any]]:
        fields: dict[str, Any] = {}
        _FIELDS.set(fields)
        rpc.in_flight.inc()
        return time.perf_counter(), fields

    def wrap_unary(self, method: str, behavior: Behavior) -> Behavior:
        if method.startswith(HEALTH_PREFIX):
            return self._count_only(method, behavior)
        rpc = _RpcMetrics(self._metrics, method)

        async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started, fields = self._begin(rpc)
            code = grpc.StatusCode.OK.name
            try:
                return await behavior(request, context)
            except BaseException as e:
                code = _ended_by(e, context)
                raise
            finally:
                self._exit(rpc, code, started, fields)

        return run

    def wrap_stream(self, method: str, behavior: Behavior) -> Behavior:
        rpc = _RpcMetrics(self._metrics, method)

        async def run(
            request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            started, fields = self._begin(rpc)
            code = grpc.StatusCode.OK.name
            try:
                async for response in behavior(request_iterator, context):
                    yield response
            except BaseException as e:
                code = _ended_by(e, context)
                raise
            finally:
                self._exit(rpc, code, started, fields)

        return run
