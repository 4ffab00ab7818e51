"""A small grpc.health.v1 client, for container probes and for people.

`python -m ivschat_grpc.healthcheck [ADDRESS] [SERVICE]` exits 0 when the
server answers SERVING, 1 otherwise. No downloaded probe binary is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
from grpc_health.v1 import health_pb2

from ivschat_grpc.cli.exit_codes import Healthcheck

CHECK = "/grpc.health.v1.Health/Check"


async def check(channel: grpc.aio.Channel, service: str = "", timeout_s: float = 5.0) -> int:
    """The serving status the server reports for service."""
    call = channel.unary_unary(
        CHECK,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    reply = await call(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    return int(reply.status)


async def _probe(address: str, service: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            return await check(channel, service) == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError:
            return False


def main(argv: list[str] | None = None) -> int:
    """Exit 0 if the server at ADDRESS is SERVING, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="python -m ivschat_grpc.healthcheck",
        description="Exit 0 if the server reports SERVING over grpc.health.v1.",
    )
    parser.add_argument("address", nargs="?", default="127.0.0.1:50051", help="host:port")
    parser.add_argument("service", nargs="?", default="", help="service name; empty for all")
    args = parser.parse_args(argv)
    serving = asyncio.run(_probe(args.address, args.service))
    print("SERVING" if serving else "NOT_SERVING")
    return Healthcheck.SERVING if serving else Healthcheck.NOT_SERVING


if __name__ == "__main__":
    sys.exit(main())
