"""Assembling the server: services, health, reflection, and their lifecycle."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from ivschat.v1 import room_service_pb2 as pb
from ivschat.v1 import room_service_pb2_grpc as pb_grpc

from ivschat_grpc.aws import IvsChat, StaticCredentials
from ivschat_grpc.batch import BatchLimits
from ivschat_grpc.config import Settings
from ivschat_grpc.malformed import MalformedRequestInterceptor
from ivschat_grpc.servicer import RoomService

log = logging.getLogger(__name__)

SERVICE_NAME: Final = pb.DESCRIPTOR.services_by_name["RoomService"].full_name
SERVING: Final = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: Final = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True, slots=True)
class Service:
    """Service is a started server, its bound port, its health and its servicer."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    rooms: RoomService

    async def drain(self, grace_s: float) -> None:
        """Say NOT_SERVING, refuse new RPCs, and let running ones finish within grace_s.

        Batch streams stop reading and answer what they read. Requests still
        out to AWS for streams that already closed are awaited too, so the
        AWS client is not closed under them.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        await self.health.enter_graceful_shutdown()
        self.rooms.begin_drain()
        await self.server.stop(grace_s)
        pending = list(self.rooms.background)
        remaining = deadline - loop.time()
        if pending and remaining > 0:
            await asyncio.wait(pending, timeout=remaining)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def build_server(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    credentials: StaticCredentials | None = None,
) -> Service:
    """Open the AWS client, bind, start and report SERVING; returns the bound port.

    Everything opened here closes with stack: the server stops first (with
    settings.grace_s), then the AWS client closes.
    """
    health_servicer = health.aio.HealthServicer()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, NOT_SERVING)

    aws = await IvsChat.open(settings.aws(), stack, credentials)

    server = grpc.aio.server(interceptors=(MalformedRequestInterceptor(SERVICE_NAME),))
    rooms = RoomService(
        aws,
        settings.default_timeout_s,
        BatchLimits(settings.batch_window, settings.max_items_per_stream),
        settings.max_streams,
    )
    pb_grpc.add_RoomServiceServicer_to_server(rooms, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(_address(settings.host, settings.port))
    await server.start()
    service = Service(server, port, health_servicer, rooms)
    stack.push_async_callback(service.drain, settings.grace_s)

    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, SERVING)
    log.info("serving %s on %s", SERVICE_NAME, _address(settings.host, port))
    return service
