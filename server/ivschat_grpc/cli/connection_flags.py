"""The client commands' connection flags: where the service is, its TLS, and the token.

create-room and batch-create both take them, declared here once, so the two
commands cannot come to spell or read them differently.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from ivschat_grpc.client import Connection

TOKEN_ENV: Final = "IVSCHAT_GRPC_TOKEN"  # noqa: S105 - the variable's name, not a token
# Where the quick start's `serve` listens.
DEFAULT_SERVER: Final = "127.0.0.1:50051"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The client side of the server's TLS and token options."""
    parser.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        metavar="HOST:PORT",
        help="where the service listens (default %(default)s)",
    )
    parser.add_argument(
        "--tls-ca", metavar="FILE", help="PEM file of the CA that signed the server's certificate"
    )
    parser.add_argument(
        "--tls-cert", metavar="FILE", help="PEM file of the client certificate chain, for mTLS"
    )
    parser.add_argument(
        "--tls-key", metavar="FILE", help="PEM file of the client private key, for mTLS"
    )
    parser.add_argument(
        "--tls-server-name", metavar="NAME", help="name to expect on the server's certificate"
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"file holding the bearer token (or set {TOKEN_ENV}); never a flag, so it stays "
        "out of process listings",
    )


def connection_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Connection:
    """Build a Connection from the parsed options; read files once."""

    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    token = environ.get(TOKEN_ENV) or None
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
    return Connection(
        target=args.server,
        tls_ca=read(args.tls_ca),
        client_cert=read(args.tls_cert),
        client_key=read(args.tls_key),
        server_name=args.tls_server_name,
        token=token,
    )
