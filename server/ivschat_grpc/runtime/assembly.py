"""Assembling the server: services, security, limits, telemetry, and drain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from ivschat.v1 import chat_service_pb2 as chat_pb
from ivschat.v1 import chat_service_pb2_grpc as chat_pb_grpc
from ivschat.v1 import logging_configuration_service_pb2 as lc_pb
from ivschat.v1 import logging_configuration_service_pb2_grpc as lc_pb_grpc
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc

from ivschat_grpc.api.admission import ConcurrencyLimit
from ivschat_grpc.api.batch_stream import BatchLimits
from ivschat_grpc.api.chat import ChatService
from ivschat_grpc.api.drain_gate import DrainGate
from ivschat_grpc.api.logging_configurations import LoggingConfigurationService
from ivschat_grpc.api.malformed import MalformedRequestInterceptor, UnaryReader
from ivschat_grpc.api.rooms import RoomService
from ivschat_grpc.api.security import AuthInterceptor, server_credentials
from ivschat_grpc.api.wrapping import HEALTH_PREFIX, Registrar, WrappingInterceptor
from ivschat_grpc.aws.adapter import IvsChat
from ivschat_grpc.aws.connection import StaticCredentials
from ivschat_grpc.core.creator import LOGGING_CONFIGURATIONS, ROOMS, Creator, Kind, M
from ivschat_grpc.core.idempotency import MemoryStore, Store
from ivschat_grpc.core.lifecycle import Lifecycle
from ivschat_grpc.core.once import Once, is_record_key
from ivschat_grpc.core.operations import OPERATIONS
from ivschat_grpc.core.pacing import Pacer, queue_bound
from ivschat_grpc.core.page_tokens import PageTokens
from ivschat_grpc.core.sqlite_store import SqliteStore, StateDirError
from ivschat_grpc.runtime.settings import ConfigError, Settings
from ivschat_grpc.runtime.telemetry import Metrics, RpcInterceptor, serve_metrics

# Redis's client and OpenTelemetry's SDK are imported where they are used, only
# with --redis-url or --tracing: they took a fifth of the time to SERVING.
if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from ivschat_grpc.replicas.shared_state import FallbackStore, SharedSlots

log = logging.getLogger(__name__)

SERVICE_NAME: Final = pb.DESCRIPTOR.services_by_name["RoomService"].full_name
CHAT_SERVICE_NAME: Final = chat_pb.DESCRIPTOR.services_by_name["ChatService"].full_name
LOGGING_SERVICE_NAME: Final = lc_pb.DESCRIPTOR.services_by_name[
    "LoggingConfigurationService"
].full_name
# The names health reports on: the server's own ("") and each service's.
HEALTH_NAMES: Final = ("", SERVICE_NAME, CHAT_SERVICE_NAME, LOGGING_SERVICE_NAME)
# Reflection serves the files in protobuf's default pool. No service imports
# these, so a client that resolves a status detail by its type's name (grpcurl
# decoding google.rpc.BadRequest) needs them in the pool: naming them here puts
# them there whatever else is imported.
DETAIL_FILES: Final = (error_details_pb2.DESCRIPTOR.name, status_pb2.DESCRIPTOR.name)


class _Registered:
    """Passes each registration on and keeps the service's name, for reflection."""

    def __init__(self, registrar: Any) -> None:
        self._registrar = registrar
        self._services: dict[str, None] = {}

    @property
    def services(self) -> tuple[str, ...]:
        """The services registered so far, in order, each once."""
        return tuple(self._services)

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        """Register generic handlers; those that serve one service name it."""
        for handler in handlers:
            if isinstance(handler, grpc.ServiceRpcHandler):
                self._services[handler.service_name()] = None
        self._registrar.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Any]) -> None:
        """Register one service's method handlers."""
        self._services[service] = None
        self._registrar.add_registered_method_handlers(service, handlers)


SERVING: Final = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: Final = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True, slots=True)
class Service:
    """Service is a started server: its ports, health, servicer and telemetry."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    rooms: RoomService
    metrics: Metrics
    lifecycle: Lifecycle
    pacer: Pacer
    pacers: Mapping[str, Pacer]
    creator: Creator[pb.Room]
    reader: UnaryReader
    chat: ChatService
    once: Once
    logging_configurations: LoggingConfigurationService
    logging_creator: Creator[lc_pb.LoggingConfiguration]
    metrics_port: int | None = None
    health_server: grpc.aio.Server | None = None
    health_port: int | None = None

    async def drain(self, grace_s: float) -> None:
        """Drain within grace_s: NOT_SERVING, refuse new RPCs, finish the running ones.

        Health keeps answering (NOT_SERVING) while running RPCs finish, so
        probes see the drain. Batch streams stop reading, answer what they
        read, and end UNAVAILABLE. Shortly before the grace ends
        (`answer_margin`), every call and item still out to AWS is answered
        INTERNAL with its operation's may-exist key (room_may_exist,
        event_may_have_been_sent), and one not yet sent UNAVAILABLE. Requests
        still out to AWS are then awaited for what is left of the grace, so the
        AWS client is not closed under them.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        answer_at = deadline - answer_margin(grace_s)
        await self.health.enter_graceful_shutdown()
        self.lifecycle.begin_drain()
        self.reader.close()
        self.rooms.begin_drain()
        try:
            await asyncio.wait_for(self.lifecycle.calls_done(), max(0.0, answer_at - loop.time()))
        except TimeoutError:
            log.warning("grace period nearly over with calls at work; answering them now")
            self.rooms.answer_now()
            self.chat.answer_now()
            self.logging_configurations.answer_now()
            try:
                await asyncio.wait_for(
                    self.lifecycle.calls_done(), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                log.warning("grace period over with RPCs still running; cancelling them")
        await self.server.stop(max(0.0, deadline - loop.time()))
        await self.lifecycle.work_done(max(0.0, deadline - loop.time()))
        await self.creator.close()
        await self.logging_creator.close()
        await self.once.close()


def answer_margin(grace_s: float) -> float:
    """How long before the grace ends the drain answers what is still at work.

    A tenth of the grace, between 50 ms and 1 s: enough for the answers to be
    written before the server's stop cancels every call.
    """
    return min(grace_s, max(0.05, min(1.0, grace_s / 10)))


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _cannot_listen(flag: str, address: str) -> str:
    return (
        f"{flag}: cannot listen on {address}: the port is in use, "
        "or the address is not this machine's"
    )


# How many calls gRPC core may hold before the service picks them up, per
# --max-concurrent-rpcs place. Past its own default (1000, at random up to
# 3000) core cancels new calls itself, CANCELLED with no status, before any of
# the service runs; a flood of 2000 calls lost a tenth of them so. With room
# enough, every call reaches the service, whose own limit answers each one
# RESOURCE_EXHAUSTED with details; the bound still caps what a flood can hold.
PENDING_PER_PLACE: Final = 16
PENDING_MIN: Final = 4096


def pending_limit(max_concurrent_rpcs: int) -> int:
    """The calls gRPC core may hold unpicked before it cancels new ones itself."""
    return max(PENDING_MIN, PENDING_PER_PLACE * max_concurrent_rpcs)


def _options(settings: Settings) -> list[tuple[str, Any]]:
    ms = 1000
    listen = settings.listen
    pending = pending_limit(settings.limits.max_concurrent_rpcs)
    return [
        ("grpc.max_receive_message_length", settings.limits.max_message_bytes),
        ("grpc.keepalive_time_ms", int(listen.keepalive_time_s * ms)),
        ("grpc.keepalive_timeout_ms", int(listen.keepalive_timeout_s * ms)),
        ("grpc.keepalive_permit_without_calls", 1),
        # A client that pings more often than this gets GOAWAY (too_many_pings).
        (
            "grpc.http2.min_ping_interval_without_data_ms",
            int(listen.min_client_ping_interval_s * ms),
        ),
        ("grpc.http2.max_ping_strikes", 2),
        # gRPC sets SO_REUSEPORT by default, and then a second server on the
        # same port starts without error and takes half the calls.
        ("grpc.so_reuseport", 0),
        # Equal limits: core's random early refusal between the two is off.
        ("grpc.server.max_pending_requests", pending),
        ("grpc.server.max_pending_requests_hard_limit", pending),
    ]


async def _share(
    settings: Settings,
    region: str,
    stack: AsyncExitStack,
    metrics: Metrics,
    health_servicer: health.aio.HealthServicer,
) -> tuple[FallbackStore, Mapping[str, SharedSlots], PageTokens]:
    """Connect to Redis: the shared store, buckets and page token key, with their fallbacks,
    and the probe."""
    from ivschat_grpc.replicas import shared_state
    from ivschat_grpc.replicas.page_token_key import shared_page_tokens
    from ivschat_grpc.replicas.redis_store import RedisStore
    from ivschat_grpc.replicas.shared_state import (
        PROBE_INTERVAL_S,
        FallbackStore,
        LocalSlots,
        SharedSlots,
    )

    assert settings.redis.url is not None  # noqa: S101 - the caller checked
    client = shared_state.connect(settings.redis.url)
    stack.push_async_callback(client.aclose)
    store: FallbackStore | None = None

    async def changed(up: bool) -> None:
        if up and store is not None:
            # Redis is reported back only once this process's records from the
            # outage are in it, so that a caller who waits for that sees them.
            await store.sync()
            up = state.up  # it may have gone again meanwhile
        metrics.redis_up.set(1 if up else 0)
        await health_servicer.set(shared_state.REDIS_HEALTH, SERVING if up else NOT_SERVING)

    state = shared_state.SharedState(client, changed, settings.redis.down_create_rate)
    ids = settings.idempotency
    store = FallbackStore(
        state,
        RedisStore(client, ids.retention_s, ids.claim_timeout_s),
        # Only this process's own calls are kept here, for as long as one can be open.
        MemoryStore(2 * ids.lease_s, ids.claim_timeout_s),
        shared_only=is_record_key,
    )
    slots: dict[str, SharedSlots] = {}
    # Without Redis each replica takes the share of every quota that
    # --redis-down-create-rate is of CreateRoom's.
    share = settings.redis.down_create_rate / OPERATIONS["CreateRoom"].rate
    for name in OPERATIONS:
        rate = settings.aws.rate(name)
        if rate is None:
            continue
        down = settings.redis.down_create_rate if name == "CreateRoom" else rate * share
        key = shared_state.bucket_key(region, name)
        slots[name] = SharedSlots(state, client, key, rate, LocalSlots(down))
    # Start knowing: a Redis that is down at start is a fallback, not a failure to start.
    try:
        await client.ping()
    except shared_state.REDIS_DOWN as e:
        state.failed(e)  # which reports the change itself
    else:
        await changed(True)
    page_tokens = await shared_page_tokens(client, region)
    probe = asyncio.get_running_loop().create_task(state.probe())

    async def stop_probe() -> None:
        state.stop_probing()
        probe.cancel()
        # Bounded, for a cancel that the Redis client swallows mid-command.
        await asyncio.wait({probe}, timeout=2 * PROBE_INTERVAL_S)

    stack.push_async_callback(stop_probe)
    return store, slots, page_tokens


async def build_server(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    credentials: StaticCredentials | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Service:
    """Open the AWS client, bind, start and report SERVING; returns the bound port.

    Everything opened here closes with stack: the server drains first (within
    settings.limits.grace_s), then the metrics endpoint stops, then the AWS client closes.
    """
    health_servicer = health.aio.HealthServicer()
    for name in HEALTH_NAMES:
        await health_servicer.set(name, NOT_SERVING)

    metrics = Metrics(redis=settings.store == "redis")
    connection = settings.aws.connection()
    ids, limits, listen = settings.idempotency, settings.limits, settings.listen
    store: Store
    slots: Mapping[str, SharedSlots] = {}
    # Without Redis, a key of this process's own: its page tokens work here only.
    page_tokens = PageTokens.random()
    if settings.store == "redis":
        store, slots, page_tokens = await _share(
            settings, connection.region, stack, metrics, health_servicer
        )
    elif settings.store == "sqlite":
        try:
            sqlite = SqliteStore.open(ids.state_dir, ids.retention_s, ids.claim_timeout_s)
        except StateDirError as e:
            raise ConfigError(str(e)) from None
        stack.callback(sqlite.close)
        store = sqlite
    else:
        store = MemoryStore(ids.retention_s, ids.claim_timeout_s)
    # One bucket per operation, at AWS's quota; CreateRoom's rate is a setting.
    pacers: dict[str, Pacer] = {}
    for name in OPERATIONS:
        rate = settings.aws.rate(name)
        bound = queue_bound(rate, settings.aws.max_queue_wait_s)
        shared = slots.get(name)
        pacers[name] = Pacer(rate, connection.max_in_flight, shared=shared, max_waiting=bound)
    pacer = pacers["CreateRoom"]
    metrics.pacing_queue.set_function(lambda: pacer.waiting)
    for name, each in pacers.items():
        # A bound method, so each operation's gauge reads its own pacer.
        metrics.bucket_queue.labels(name).set_function(each.waiting_count)
    aws = await IvsChat.open(connection, stack, pacers, credentials, observer=metrics)

    lifecycle = Lifecycle()
    rpcs = RpcInterceptor(metrics)
    # The gate first: a call refused because the server drains is not counted.
    wrappers: list[WrappingInterceptor] = [DrainGate(lifecycle), rpcs]
    if settings.authenticates_callers:
        wrappers.append(
            AuthInterceptor(
                settings.auth.tokens,
                settings.auth.allowed_clients,
                settings.tls.client_ca is not None,
            )
        )
    # After authentication: a caller it refuses never holds a place.
    admission = ConcurrencyLimit(limits.max_concurrent_rpcs, limits.max_health_rpcs)
    malformed = MalformedRequestInterceptor(SERVICE_NAME)
    wrappers += [admission, malformed]
    reader = UnaryReader(limits.idle_timeout_s, HEALTH_PREFIX)
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if tracer_provider is not None or settings.telemetry.tracing != "off":
        from ivschat_grpc.runtime import tracing

        tracer_provider = tracer_provider or tracing.provider_for(settings.telemetry.tracing)
        if tracer_provider is not None:
            interceptors.append(tracing.interceptor(tracer_provider))
            stack.callback(tracer_provider.shutdown)
    server = grpc.aio.server(
        interceptors=interceptors or None,
        options=_options(settings),
    )
    # The generated add_* functions take any server.
    registrar: Any = Registrar(server, wrappers, reader)

    def creator_of(kind: Kind[M]) -> Creator[M]:
        # Every kind on the same store and settings: a request_id's record is apart by its key.
        return Creator(
            aws,
            store,
            ids.lease_s,
            ids.settle_s,
            ids.claim_timeout_s,
            ids.recheck_s,
            lifecycle,
            kind=kind,
        )

    creator = creator_of(ROOMS)
    batch = settings.batch
    rooms = RoomService(
        creator,
        aws,
        limits.default_timeout_s,
        BatchLimits(batch.window, batch.max_items_per_stream, limits.idle_timeout_s),
        batch.max_streams,
        metrics,
        lifecycle,
        page_tokens,
    )
    # Every service registers through `registered`, before reflection: it
    # names them all to reflection clients.
    registered: Any = _Registered(registrar)  # as registrar: the add_* functions take any server
    pb_grpc.add_RoomServiceServicer_to_server(rooms, registered)
    once = Once(aws, store, ids.claim_timeout_s, lifecycle)
    chat = ChatService(aws, once, limits.default_timeout_s)
    chat_pb_grpc.add_ChatServiceServicer_to_server(chat, registered)
    logging_creator = creator_of(LOGGING_CONFIGURATIONS)
    logging_configurations = LoggingConfigurationService(
        logging_creator, aws, limits.default_timeout_s, page_tokens
    )
    lc_pb_grpc.add_LoggingConfigurationServiceServicer_to_server(logging_configurations, registered)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registered)
    # Not enable_server_reflection: it registers on the server itself, past the wrappers.
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(  # type: ignore[no-untyped-call]  # generated, untyped
        reflection.aio.ReflectionServicer((*registered.services, reflection.SERVICE_NAME)),
        registrar,
    )
    address = _address(listen.host, listen.port)
    tls = settings.tls
    try:
        if tls.cert is not None and tls.key is not None:
            creds = server_credentials(tls.cert, tls.key, tls.client_ca)
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:
        raise ConfigError(_cannot_listen("--port", address)) from None
        if settings.insecure:
            log.warning(
                "listening on %s without TLS%s (--insecure)",
                address,
                "" if settings.authenticates_callers else " or caller authentication",
            )

    health_server, health_port = None, None
    if listen.health_port is not None:
        # Probes (kubelet's among them) speak plaintext and carry no client
        # certificate, so health alone is also served on its own port.
        health_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        # A budget of its own: a flood of unauthenticated health calls on the
        # main port cannot refuse the probes here.
        probe_limits = ConcurrencyLimit(limits.max_concurrent_rpcs, limits.max_health_rpcs)
        health_registrar: Any = Registrar(health_server, [rpcs, probe_limits, malformed], reader)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_registrar)
        health_address = _address(listen.health_host, listen.health_port)
        try:
            health_port = health_server.add_insecure_port(health_address)
        except RuntimeError:
            raise ConfigError(_cannot_listen("--health-port", health_address)) from None
        await health_server.start()
        stack.push_async_callback(health_server.stop, 0)

    metrics_port = None
    telemetry = settings.telemetry
    if telemetry.metrics_port is not None:
        try:
            runner, metrics_port = await serve_metrics(
                metrics, telemetry.metrics_host, telemetry.metrics_port
            )
        except OSError:
            metrics_address = _address(telemetry.metrics_host, telemetry.metrics_port)
            raise ConfigError(_cannot_listen("--metrics-port", metrics_address)) from None
        stack.push_async_callback(runner.cleanup)

    await server.start()
    service = Service(
        server,
        port,
        health_servicer,
        rooms,
        metrics,
        lifecycle,
        pacer,
        pacers,
        creator,
        reader,
        chat,
        once,
        logging_configurations,
        logging_creator,
        metrics_port=metrics_port,
        health_server=health_server,
        health_port=health_port,
    )
    stack.push_async_callback(service.drain, limits.grace_s)

    for name in HEALTH_NAMES:
        await health_servicer.set(name, SERVING)
    log.info(
        "serving %s, %s and %s on %s",
        SERVICE_NAME,
        CHAT_SERVICE_NAME,
        LOGGING_SERVICE_NAME,
        _address(listen.host, port),
    )
    return service
