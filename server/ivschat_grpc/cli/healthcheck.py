"""A small grpc.health.v1 client, for container probes and for people.

`python -m ivschat_grpc.healthcheck [ADDRESS] [SERVICE]` prints one word
(SERVING, NOT_SERVING, UNKNOWN_SERVICE, UNREACHABLE, or the code of another
error) and exits with a code per outcome (exit_codes.Healthcheck), so that a
stopped server, a draining one and a misspelt service each read as
themselves. No downloaded probe binary is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2

from ivschat_grpc.cli import tls_hints
from ivschat_grpc.cli.exit_codes import HEALTHCHECK_BY_CODE, Healthcheck
from ivschat_grpc.client import Connection

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


async def probe(address: str, service: str, timeout_s: float, err: TextIO) -> tuple[str, int]:
    """What to print and the exit code: the reported status, or what kept it from one."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            status = await check(channel, service, timeout_s)
        except grpc.aio.AioRpcError as e:
            exit = HEALTHCHECK_BY_CODE.get(e.code(), Healthcheck.NOT_SERVING)
            if exit is Healthcheck.UNKNOWN_SERVICE:
                err.write(f"the server at {address} knows no service {service!r}\n")
            else:
                err.write(f"{e.code().name}: {e.details()}\n")
            if exit is Healthcheck.UNREACHABLE:
                hint = await tls_hints.tls_hint(Connection(address), e.code(), e.details() or "")
                if hint is not None:
                    err.write("the port speaks TLS: probe the server's plaintext --health-port\n")
            word = e.code().name if exit is Healthcheck.NOT_SERVING else exit.name
            return word, exit
    if status == health_pb2.HealthCheckResponse.SERVING:
        return "SERVING", Healthcheck.SERVING
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status), Healthcheck.NOT_SERVING


def main(argv: list[str] | None = None) -> int:
    """Print the server's health at ADDRESS in one word; exit with its Healthcheck code."""
    parser = argparse.ArgumentParser(
        prog="python -m ivschat_grpc.healthcheck",
        description="Ask a server's grpc.health.v1 for a service's status, in plaintext. "
        "Exits " + ", ".join(f"{code.value} {code.name}" for code in Healthcheck) + ".",
    )
    parser.add_argument("address", nargs="?", default="127.0.0.1:50051", help="host:port")
    parser.add_argument("service", nargs="?", default="", help="service name; empty for all")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for the answer (default 5)"
    )
    args = parser.parse_args(argv)
    word, exit = asyncio.run(probe(args.address, args.service, args.timeout, sys.stderr))
    print(word)
    return exit
