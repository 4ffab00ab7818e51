"""The ivschat-grpc command, one module per subcommand."""

from __future__ import annotations

import os
from collections.abc import MutableMapping, Sequence


def quiet_grpc_core(environ: MutableMapping[str, str] = os.environ) -> None:
    """Keep gRPC core's own log lines off the terminal, unless GRPC_VERBOSITY asks for them.

    Core prints lines such as `ssl_transport_security.cc:... Handshake failed`
    on stderr, between the command's own messages and a server's JSON lines;
    the command says what went wrong itself. grpcio reads GRPC_VERBOSITY once,
    when it is imported (checked with grpcio 1.85), so this runs before any
    module that imports grpc.
    """
    environ.setdefault("GRPC_VERBOSITY", "NONE")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ivschat-grpc command."""
    quiet_grpc_core()
    # Imported only now: it imports grpc, which must see GRPC_VERBOSITY first.
    from ivschat_grpc.cli.command import main as command

    return command(argv)


__all__ = ["main", "quiet_grpc_core"]
